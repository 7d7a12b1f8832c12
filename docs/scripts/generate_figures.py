"""Regenerate the documentation's figures and measured results from the current code.

    python docs/scripts/generate_figures.py                      # everything (~30 min on 2 cores)
    python docs/scripts/generate_figures.py --only schedules forward
    python docs/scripts/generate_figures.py --tutorial-run outputs/diffusion_mnist

* ``schedules``: betas, alpha-bar and log-SNR of the linear and cosine schedules;
* ``forward``: real MNIST digits noised to several timesteps under both schedules;
* ``tutorial``: runs the MNIST tutorial with its CPU preset (or takes the output directory of a
  run you made with ``--tutorial-run``), copies its sample grid, training curve and data batch,
  and writes the results table that the tutorial page includes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from artifex.generative_models.core.configuration import NoiseScheduleConfig
from artifex.generative_models.core.noise_schedule import create_noise_schedule

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL = ROOT / "examples" / "generative_models" / "image" / "diffusion"
TUTORIAL_SCRIPT = TUTORIAL / "diffusion_mnist_training.py"
ASSETS = ROOT / "docs" / "assets"
SNIPPETS = ROOT / "docs" / "snippets"
NUM_TIMESTEPS = 1000
SCHEDULES = ("linear", "cosine")


def schedule(kind: str):
    return create_noise_schedule(
        NoiseScheduleConfig(schedule_type=kind, num_timesteps=NUM_TIMESTEPS)
    )


def first_step_below(alpha_bar: np.ndarray, level: float) -> int:
    return int(np.argmax(alpha_bar < level))


def plot_schedules(out_dir: Path) -> Path:
    """Betas, alpha-bar and log-SNR of both schedules, side by side."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    t = np.arange(NUM_TIMESTEPS)
    for kind in SCHEDULES:
        s = schedule(kind)
        ab = s.alphas_cumprod
        line = axes[0].plot(t, s.betas, label=kind)[0]
        axes[1].plot(t, ab, color=line.get_color(), label=kind)
        axes[2].plot(t, np.log(ab / (1.0 - ab)), color=line.get_color(), label=kind)
        below = first_step_below(ab, 0.01)
        axes[1].axvline(below, color=line.get_color(), linestyle=":", linewidth=1)
        axes[1].annotate(
            f"{kind}: < 0.01 from t={below}",
            (below, 0.5),
            rotation=90,
            fontsize=8,
            ha="right",
            va="center",
            color=line.get_color(),
        )
        print(
            f"{kind}: alpha_bar < 0.01 from t={below}, "
            f"alpha_bar[{NUM_TIMESTEPS // 2 - 1}]={ab[NUM_TIMESTEPS // 2 - 1]:.3f}"
        )
    axes[0].set(title="beta_t", yscale="log", xlabel="timestep t")
    axes[1].set(title="alpha-bar_t (signal variance left)", xlabel="timestep t")
    axes[2].set(title="log SNR", xlabel="timestep t")
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out_dir / "concepts" / "schedules.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_forward(out_dir: Path, seed: int = 0) -> Path:
    """Three real digits (a 2, a 5, a 7) noised to the same timesteps under both schedules."""
    import jax

    from artifex.data import load_mnist_or_offline, preprocess_images

    dataset = load_mnist_or_offline("train")
    rows = [int(np.flatnonzero(dataset.labels == label)[0]) for label in (2, 5, 7)]
    digits = np.asarray(preprocess_images(dataset.images[rows], 32))
    timesteps = [0, 100, 250, 500, 750, 900, 999]
    noise = np.asarray(jax.random.normal(jax.random.key(seed), digits.shape))
    fig, axes = plt.subplots(
        2 * len(digits), len(timesteps), figsize=(1.3 * len(timesteps), 1.35 * 2 * len(digits))
    )
    for row_block, kind in enumerate(SCHEDULES):
        s = schedule(kind)
        for d, digit in enumerate(digits):
            row = row_block * len(digits) + d
            for col, t in enumerate(timesteps):
                signal, sigma = s.sqrt_alphas_cumprod[t], s.sqrt_one_minus_alphas_cumprod[t]
                x_t = signal * digit + sigma * noise[d]
                ax = axes[row, col]
                ax.imshow(np.clip((x_t[..., 0] + 1) / 2, 0, 1), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if row == 0 or row == len(digits):
                    ax.set_title(f"t={t}", fontsize=9)
                if col == 0 and d == 0:
                    ax.set_ylabel(kind, fontsize=10)
    fig.tight_layout()
    path = out_dir / "concepts" / "forward_process.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_tutorial(output_dir: Path, *flags: str) -> Path:
    """Run the tutorial script with ``flags``, writing to ``output_dir``."""
    command = [sys.executable, str(TUTORIAL_SCRIPT), *flags, "--output-dir", str(output_dir)]
    print("running:", " ".join(command), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    return output_dir


def hardware(summary: dict) -> str:
    return (
        f"{summary['date'][:10]}, {summary['cpu_count']} CPU cores ({summary['device']}), "
        f"{summary['platform']}"
    )


def results_table(summary: dict, losses_tail: tuple[float, float] | None) -> str:
    """A Markdown table of a tutorial run, from its summary.json."""
    cfg = summary["config"]
    rows = [
        ("Measured on", hardware(summary)),
        (
            "Preset",
            f"`{cfg['preset']}`: UNet {tuple(cfg['hidden_dims'])}, "
            f"{cfg['num_res_blocks']} res block(s), attention at "
            f"{tuple(cfg['attention_resolutions'])}, batch {cfg['batch_size']}"
            + (
                f" in microbatches of {cfg['microbatch_size']}, "
                if cfg.get("microbatch_size")
                else ", "
            )
            + f"peak LR {cfg['peak_lr']:g}, predicts "
            f"{cfg.get('prediction_type', 'epsilon')}, "
            f"{cfg.get('loss_weighting', 'uniform')} weighting",
        ),
        ("Data", f"{cfg['dataset']}, {summary['train_examples']:,} training images"),
        ("Training steps", f"{summary['steps']:,}"),
        ("Final loss (mean of last 100 steps)", f"{summary['final_loss']:.4f} ({cfg['loss']})"),
    ]
    if losses_tail is not None:
        rows.append(
            (
                "Per-step loss, last 100 steps (5th-95th percentile)",
                f"{losses_tail[0]:.4f} - {losses_tail[1]:.4f}",
            )
        )
    rows += [
        ("First step (compilation)", f"{summary['compile_seconds']:.0f} s"),
        ("Training", f"{summary['train_seconds'] / 60:.1f} min"),
        (
            "Sampling 16 images",
            f"{summary['sample_seconds']:.0f} s "
            f"({cfg['sampler'].upper()}, {cfg['sampling_steps']} steps)",
        ),
        ("Whole script, wall time", f"{summary['total_seconds'] / 60:.1f} min"),
    ]
    quality = summary.get("quality")
    if quality:  # the sample-quality metric of artifex.evaluation
        rows.insert(
            -3,
            (
                "Sample quality (EMA weights)",
                f"FID {quality['fid']:.1f}, KID {quality['kid']:.3f} ± "
                f"{quality['kid_se']:.3f}, IS {quality['inception_score']:.2f} "
                f"({quality['num_samples']} samples; real held-out digits score FID 0.8 "
                "with 1,000 samples, 3.8 with 100, and IS 9.6)",
            ),
        )
    if "load_average" in summary:  # > 0 means other processes competed for the cores
        load = ", ".join(f"{x:.1f}" for x in summary["load_average"])
        rows.append(("Load average at the end (1, 5, 15 min)", load))
    lines = ["| | |", "| --- | --- |"] + [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines) + "\n"


def copy_tutorial_run(run_dir: Path, out_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    target = out_dir / "tutorial"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("samples_grid.png", "training_curve.png", "data_batch.png"):
        shutil.copyfile(run_dir / name, target / name)
    losses_file = run_dir / "losses.npy"
    tail = None
    if losses_file.exists():
        last = np.load(losses_file)[-100:]
        tail = (float(np.percentile(last, 5)), float(np.percentile(last, 95)))
    SNIPPETS.mkdir(parents=True, exist_ok=True)
    (SNIPPETS / "cpu_preset_results.md").write_text(results_table(summary, tail))
    shutil.copyfile(run_dir / "summary.json", SNIPPETS / "cpu_preset_summary.json")
    print(f"copied the run in {run_dir} to {target} and {SNIPPETS}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parts = ["schedules", "forward", "tutorial"]
    parser.add_argument("--only", nargs="+", choices=parts, default=parts)
    parser.add_argument("--out-dir", type=Path, default=ASSETS)
    parser.add_argument(
        "--tutorial-run", type=Path, help="output directory of an existing CPU-preset run to use"
    )
    args = parser.parse_args()
    plt.switch_backend("Agg")
    if "schedules" in args.only:
        print("wrote", plot_schedules(args.out_dir))
    if "forward" in args.only:
        print("wrote", plot_forward(args.out_dir))
    if "tutorial" in args.only:
        run_dir = args.tutorial_run or run_tutorial(
            ROOT / "outputs" / "docs_cpu_preset", "--preset", "cpu"
        )
        copy_tutorial_run(run_dir, args.out_dir)


if __name__ == "__main__":
    main()
