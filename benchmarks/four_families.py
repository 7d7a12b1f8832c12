"""Four families on MNIST, scored the same way: one table, one grid per family.

Loads the models that the four example scripts export (their ``cpu`` preset runs), draws the
same number of samples from each with the same key, scores them with the packaged MNIST
quality metric (FID / KID / inception score against the same reference), times sampling
after compilation, and copies each run's likelihood and training time from its
``summary.json``::

    python benchmarks/four_families.py \\
        --diffusion outputs/diffusion_mnist --vae outputs/vae_mnist \\
        --gan outputs/gan_mnist --flow outputs/flow_mnist [--samples 500]

Writes ``benchmarks/results/four_families.json``, the table
``docs/snippets/four_families.md`` and a 4x4 grid per family in ``docs/assets/families/``.
A family whose run directory is not given is left out.
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

ROOT = Path(__file__).resolve().parent.parent

#: Where each example writes the model it exports, inside its output directory.
EXPORTS = {"diffusion": "ema_model", "vae": "model", "gan": "generator", "flow": "model"}
LABELS = {
    "diffusion": "Diffusion (DDPM, DDIM 100 steps)",
    "vae": "VAE (Bernoulli decoder)",
    "gan": "GAN (DCGAN, non-saturating)",
    "flow": "Flow (multi-scale Glow)",
}


def load(family: str, run: Path) -> Any:
    """The exported model of a run (the diffusion tutorial's export holds its config)."""
    from artifex.generative_models.training.checkpointing import (
        best_model_metadata,
        load_best_model,
        load_model,
    )

    export = run / EXPORTS[family]
    if family != "diffusion":
        return load_model(export)
    from flax import nnx

    from artifex.generative_models.core.configuration import DDPMConfig
    from artifex.generative_models.models.diffusion.ddpm import DDPMModel

    model = DDPMModel(DDPMConfig.from_dict(best_model_metadata(export)["config"]), rngs=nnx.Rngs(0))
    load_best_model(export, model)
    return model


def sampler(family: str, model: Any, summary: dict[str, Any]):
    """``generate(n, key)``: DDIM with the run's steps for diffusion, else ``model.sample``."""
    if family == "diffusion":
        steps = summary["config"]["sampling_steps"]
        return lambda n, k: model.sample(n, key=k, scheduler="ddim", steps=steps)
    return lambda n, k: model.sample(n, key=k)  # the family's default (flow: temperature 1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for family in EXPORTS:
        parser.add_argument(f"--{family}", type=Path, help=f"output directory of the {family} run")
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--batch", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=common.RESULTS_DIR / "four_families.json")
    parser.add_argument("--table", type=Path, default=ROOT / "docs/snippets/four_families.md")
    parser.add_argument("--grids", type=Path, default=ROOT / "docs/assets/families")
    args = parser.parse_args(argv)

    import jax
    import numpy as np
    from flax import nnx

    from artifex.evaluation import MNISTQualityMetric, evaluate_generator
    from artifex.visualization import save_image_grid

    meta = common.machine()
    print(common.describe(meta))
    metric = MNISTQualityMetric.load()
    # Rows of earlier invocations are kept, so families can be (re)measured one at a time.
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    rows = {
        family: row
        for family, row in previous.get("families", {}).items()
        if previous.get("samples") == args.samples and previous.get("seed") == args.seed
    }
    for family in EXPORTS:
        run = getattr(args, family)
        if run is None:
            continue
        summary = json.loads((run / "summary.json").read_text())
        model = load(family, run)
        generate = sampler(family, model, summary)
        key = jax.random.key(args.seed)
        batch = min(args.batch, args.samples)
        jax.block_until_ready(generate(batch, key))  # compile
        start = time.perf_counter()
        jax.block_until_ready(generate(batch, key))
        per_second = batch / (time.perf_counter() - start)
        quality = evaluate_generator(generate, metric, args.samples, key, batch_size=batch)
        grid = np.clip(np.asarray(generate(16, jax.random.key(args.seed + 1))), -1, 1)
        grid_path = save_image_grid(grid, args.grids / f"{family}.png", title=LABELS[family])
        params = sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
        likelihood = summary.get("likelihood") or {}
        rows[family] = {
            "label": LABELS[family],
            "quality": quality.as_dict(),
            "samples_per_second": round(per_second, 1),
            "sampling_parameters": int(params),
            "all_parameters": summary.get("num_params"),
            "train_seconds": round(summary["train_seconds"]),
            "train_load_average": summary.get("load_average"),
            "steps": summary.get("steps"),
            "nll_nats": likelihood.get("nll"),
            "bits_per_dim": likelihood.get("bits_per_dim", likelihood.get("test_bits_per_dim")),
            "grid": str(grid_path.relative_to(ROOT)) if grid_path.is_relative_to(ROOT) else None,
        }
        print(f"{family}: {quality} | {per_second:.0f} samples/s | {params} parameters")
        write(args, meta, rows)  # after each family: a long run keeps what it measured
    write(args, meta, rows)


def write(args: argparse.Namespace, meta: dict[str, Any], rows: dict[str, Any]) -> None:
    """The JSON record and the Markdown table of every family measured so far."""

    rows = {family: rows[family] for family in EXPORTS if family in rows}  # fixed order
    lines = [
        "| Family | FID | KID | IS | Likelihood | Parameters | Training (cpu preset) | Samples/s |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for row in rows.values():
        q = row["quality"]
        if row["bits_per_dim"] is not None:
            likelihood = f"{row['bits_per_dim']:.2f} bits/dim"
        elif row["nll_nats"] is not None:
            likelihood = f"{row['nll_nats']:.1f} nats (IWAE)"
        else:
            likelihood = "—"
        lines.append(
            f"| {row['label']} | {q['fid']:.1f} | {q['kid']:.2f} ± {q['kid_se']:.2f} | "
            f"{q['inception_score']:.2f} | {likelihood} | {row['sampling_parameters']:,} | "
            f"{row['train_seconds'] / 60:.1f} min ({row['steps']} steps) | "
            f"{row['samples_per_second']:,.{1 if row['samples_per_second'] < 100 else 0}f} |"
        )
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    payload = {
        "benchmark": "four_families",
        "machine": meta,
        "samples": args.samples,
        "seed": args.seed,
        "families": rows,
    }
    print(f"wrote {common.write_json(args.out, payload)} and {args.table}")


if __name__ == "__main__":
    main()
