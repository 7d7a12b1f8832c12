"""Sample quality against network evaluations: FID of one trained model per sampler and budget.

Loads the model the MNIST tutorial exports (``ema_model/`` of its output directory), draws the
same number of samples with the same key for every sampler at 5, 10, 20, 50 and 100 network
evaluations (DDPM at the schedule's full 1000), and scores them with the packaged MNIST
quality metric::

    python benchmarks/quality_vs_evaluations.py --run outputs/diffusion_mnist [--samples 250]

Heun costs two evaluations a step but one on the last (``2 * steps - 1``), so its budgets
are the nearest odd counts at or below each target (5, 9, 19, 49, 99). A sampler may name its
timestep spacing, ``heun:leading`` (default ``linspace``). Euler is left out by default: it
is the same map as DDIM with eta 0. Every row is written
as soon as it is measured (``benchmarks/results/quality_vs_evaluations.json``) and a rerun
with the same samples and seed skips it, so an interrupted run loses at most one row. The
table goes to ``docs/snippets/quality_vs_evaluations.md`` and the plot to
``docs/assets/samplers/quality_vs_evaluations.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks.common`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import common
from benchmarks.four_families import load

ROOT = Path(__file__).resolve().parent.parent
BUDGETS = (5, 10, 20, 50, 100)
SAMPLERS = ("ddim", "dpm_solver++", "heun", "heun:leading", "euler")
DEFAULT_SAMPLERS = ("ddim", "dpm_solver++", "heun", "heun:leading")
#: Display names, in the table and the plot.
NAMES = {
    "ddim": "DDIM (eta 0)",
    "dpm_solver++": "DPM-Solver++(2M)",
    "heun": "Heun (Karras)",
    "euler": "Euler (Karras)",
    "ddpm": "DDPM (ancestral)",
}


def split_spec(spec: str) -> tuple[str, str]:
    """``"heun:leading" -> ("heun", "leading")``; no spacing means ``linspace``."""
    scheduler, _, spacing = spec.partition(":")
    return scheduler, spacing or "linspace"


def display_name(spec: str) -> str:
    scheduler, spacing = split_spec(spec)
    return NAMES[scheduler] + ("" if spacing == "linspace" else f", {spacing}")


def steps_for(scheduler: str, evaluations: int) -> int:
    """Sampling steps that spend at most ``evaluations`` network evaluations."""
    return (evaluations + 1) // 2 if scheduler == "heun" else evaluations


def evaluations_of(scheduler: str, steps: int) -> int:
    """Network evaluations of a run of ``steps`` steps."""
    return 2 * steps - 1 if scheduler == "heun" else steps


def plan(samplers: tuple[str, ...], budgets: tuple[int, ...], ddpm_steps: int | None):
    """``(sampler spec, steps)`` of every row, cheapest first within each sampler."""
    rows = [(s, steps_for(split_spec(s)[0], b)) for s in samplers for b in sorted(budgets)]
    return rows + ([("ddpm", ddpm_steps)] if ddpm_steps else [])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="the tutorial's output directory")
    parser.add_argument("--samples", type=int, default=250)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samplers", nargs="+", default=list(DEFAULT_SAMPLERS), choices=SAMPLERS)
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS))
    parser.add_argument("--no-ddpm", action="store_true", help="leave out DDPM's 1000 steps")
    parser.add_argument(
        "--out", type=Path, default=common.RESULTS_DIR / "quality_vs_evaluations.json"
    )
    parser.add_argument(
        "--table", type=Path, default=ROOT / "docs/snippets/quality_vs_evaluations.md"
    )
    parser.add_argument(
        "--plot", type=Path, default=ROOT / "docs/assets/samplers/quality_vs_evaluations.png"
    )
    args = parser.parse_args(argv)

    import jax

    from artifex.evaluation import MNISTQualityMetric, evaluate_generator

    meta = common.machine()
    print(common.describe(meta))
    metric = MNISTQualityMetric.load()
    model = load("diffusion", args.run)
    summary = json.loads((args.run / "summary.json").read_text())
    num_timesteps = model.config.noise_schedule.num_timesteps
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    same = previous.get("samples") == args.samples and previous.get("seed") == args.seed
    rows: dict[str, Any] = previous.get("rows", {}) if same else {}
    todo = plan(tuple(args.samplers), tuple(args.budgets), None if args.no_ddpm else num_timesteps)
    key = jax.random.key(args.seed)
    for spec, steps in todo:
        name = f"{spec}-{steps}"
        if name in rows:
            continue
        scheduler, spacing = split_spec(spec)
        start = time.perf_counter()
        quality = evaluate_generator(
            lambda n, k, s=scheduler, st=steps, sp=spacing: model.sample(
                n, key=k, scheduler=s, steps=st, spacing=sp
            ),
            metric,
            args.samples,
            key,
            batch_size=min(args.batch, args.samples),
        )
        rows[name] = {
            "sampler": spec,
            "scheduler": scheduler,
            "spacing": spacing,
            "steps": steps,
            "evaluations": evaluations_of(scheduler, steps),
            "quality": quality.as_dict(),
            "seconds": round(time.perf_counter() - start, 1),
            "load_average": common.load_average(),
        }
        print(f"{display_name(spec)} {steps} steps: {quality}", flush=True)
        write(args, meta, summary, rows)
    write(args, meta, summary, rows)


def write(args: argparse.Namespace, meta: dict, summary: dict, rows: dict[str, Any]) -> None:
    """The JSON record, the Markdown table and the plot of every row measured so far."""
    payload = {
        "benchmark": "quality_vs_evaluations",
        "machine": meta,
        "model": {"run": str(args.run), "config": summary.get("config")},
        "samples": args.samples,
        "seed": args.seed,
        "rows": rows,
    }
    common.write_json(args.out, payload)
    by_sampler: dict[str, dict[int, dict]] = {}
    for row in rows.values():
        by_sampler.setdefault(row.get("sampler", row["scheduler"]), {})[row["evaluations"]] = row

    # One column per budget; Heun's odd counts (9 for 10, ...) go in the column they fit.
    def column(evaluations: int) -> int:
        return min((b for b in (*BUDGETS, 1000) if b >= evaluations), default=evaluations)

    budgets = sorted({column(e) for r in by_sampler.values() for e in r})
    lines = [
        "| Sampler | " + " | ".join(f"{b} evaluations" for b in budgets) + " |",
        "|---|" + "---:|" * len(budgets),
    ]
    for spec in (*SAMPLERS, "ddpm"):
        if spec not in by_sampler:
            continue
        cells = {column(e): (e, row) for e, row in by_sampler[spec].items()}
        text = []
        for budget in budgets:
            evaluations, row = cells.get(budget, (None, None))
            cell = "" if row is None else f"{row['quality']['fid']:.1f}"
            if row is not None and evaluations != budget:
                cell += f" ({evaluations})"
            text.append(cell)
        lines.append(f"| {display_name(spec)} | " + " | ".join(text) + " |")
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    plot(args.plot, by_sampler, args.samples)


def plot(path: Path, by_sampler: dict[str, dict[int, dict]], samples: int) -> None:
    """FID against evaluations, one line per sampler (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for spec, points in by_sampler.items():
        xs = sorted(points)
        ys = [points[x]["quality"]["fid"] for x in xs]
        style = "*" if spec == "ddpm" else "o-"
        ax.plot(xs, ys, style, label=display_name(spec), markersize=10 if spec == "ddpm" else 5)
    ax.set(
        xscale="log",
        yscale="log",
        xlabel="network evaluations",
        ylabel=f"FID ({samples} samples, MNIST-classifier features)",
        title="Sample quality against sampling cost",
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
