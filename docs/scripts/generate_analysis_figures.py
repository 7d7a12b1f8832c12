"""Regenerate the figures and tables of the analysis guide (docs/guides/analysis.md).

    python docs/scripts/generate_analysis_figures.py \\
        --analysis-run outputs/diffusion_analysis --comparison-run outputs/ddim_comparison_mnist

The schedule and forward-process figures are drawn here from the current code. The others
are copied from runs of the two example scripts (``diffusion_analysis.py`` and
``ddim_vs_ddpm_comparison.py``); the comparison table is rebuilt from that run's
``results.json`` so the page shows exactly what was measured.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import jax
import numpy as np

from artifex.generative_models.analysis import plot_beta_schedules, save_forward_process
from artifex.generative_models.analysis.sampler_comparison import SamplerResult, SamplerSetting
from artifex.generative_models.core.configuration import NoiseScheduleConfig
from artifex.generative_models.core.noise_schedule import create_noise_schedule

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "examples" / "generative_models" / "image" / "diffusion"))
from comparison_report import comparison_table, summary_lines  # noqa: E402 - the example's

ASSETS = ROOT / "docs" / "assets" / "analysis"
SNIPPETS = ROOT / "docs" / "snippets"
ANALYSIS_FILES = ("mse_vs_timestep.png", "interpolation.png")
COMPARISON_FILES = (
    "timing_quality.png",
    "samples_ddpm_1000.png",
    "samples_ddim_0050_eta0.png",
    "samples_ddim_0010_eta0.png",
    "samples_ddpm_0050.png",
)


def real_digits(count: int = 4) -> np.ndarray:
    from artifex.data import make_train_iterator

    batches = make_train_iterator("mnist", 8, seed=0, offline_fallback=True)
    return np.asarray(next(batches)["image"])[:count]


def draw_schedule_figures() -> None:
    plot_beta_schedules(ASSETS / "schedules.png")
    digits = real_digits()
    for kind in ("linear", "cosine"):
        schedule = create_noise_schedule(NoiseScheduleConfig(schedule_type=kind))
        save_forward_process(
            digits, schedule, ASSETS / f"forward_{kind}.png", key=jax.random.key(0)
        )


def load_results(run: Path) -> tuple[dict, list[SamplerResult]]:
    data = json.loads((run / "results.json").read_text())
    results = []
    for r in data["results"]:
        setting = SamplerSetting(r["scheduler"], r["steps"], r["eta"])
        results.append(
            SamplerResult(
                setting,
                r["n_samples"],
                r["first_call_s"],
                r["run_times_s"],
                fid=r["fid"],
                kid=r["kid"],
                measured_compile_s=r.get("compile_s"),
            )
        )
    return data, results


def copy_comparison(run: Path) -> None:
    for name in COMPARISON_FILES:
        shutil.copy(run / name, ASSETS / f"comparison_{name}")
    data, results = load_results(run)
    lines = [f"- **{k}**: {v}" for k, v in data["context"].items()]
    lines += ["", comparison_table(results), ""]
    lines += [f"- {line}" for line in summary_lines(results)]
    (SNIPPETS / "ddim_comparison.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--analysis-run", type=Path, help="output dir of diffusion_analysis.py")
    parser.add_argument(
        "--comparison-run", type=Path, help="output dir of ddim_vs_ddpm_comparison.py"
    )
    args = parser.parse_args()
    ASSETS.mkdir(parents=True, exist_ok=True)
    draw_schedule_figures()
    if args.analysis_run is not None:
        for name in ANALYSIS_FILES:
            shutil.copy(args.analysis_run / name, ASSETS / name)
    if args.comparison_run is not None:
        copy_comparison(args.comparison_run)
    print(f"figures in {ASSETS}")


if __name__ == "__main__":
    main()
