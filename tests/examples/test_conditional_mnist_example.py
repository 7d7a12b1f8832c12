"""The class-conditional MNIST example: paired notebook, presets, and a smoke run in a kernel."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples/generative_models/image/diffusion/conditional_mnist_training.py"
NOTEBOOK = SCRIPT.with_suffix(".ipynb")


def test_notebook_has_the_scripts_cells_and_no_outputs(paired_notebook):
    paired_notebook(SCRIPT)


def test_presets_resolve_and_the_first_line_says_backend_preset_and_time(dry_run_script):
    headline, config = dry_run_script(SCRIPT)
    backend = jax.default_backend()
    assert headline.startswith(f"artifex conditional DDPM on MNIST: backend {backend}, preset ")
    if backend == "cpu":
        assert "preset cpu (expect ~" in headline
        assert config["max_steps"] == "1500" and config["hidden_dims"] == "(16, 32, 64)"
        assert config["guidance_scales"] == "(0.0, 1.0, 2.0, 3.0, 5.0)"
    _, config = dry_run_script(
        SCRIPT, "--preset", "full", "--guidance-scales", "0", "4", "--sweep-samples", "500"
    )
    assert config["epochs"] == "50" and config["label_dropout"] == "0.1"
    assert config["guidance_scales"] == "(0.0, 4.0)" and config["sweep_samples"] == "500"
    _, config = dry_run_script(SCRIPT, "--dataset", "fashion_mnist")
    assert config["sweep_samples"] == "0"  # the metric scores digits only


def test_notebook_smoke_run(smoke_env, run_notebook, tmp_path):
    from artifex.generative_models.core.configuration import DDPMConfig
    from artifex.generative_models.training.checkpointing import best_model_metadata

    out = tmp_path / "out"
    stdout, images = run_notebook(
        NOTEBOOK, ["--smoke", "--output-dir", str(out)], smoke_env, tmp_path
    )
    assert stdout.splitlines()[0].startswith("artifex conditional DDPM on MNIST: backend cpu")
    assert images >= 3, f"{images} figures shown inline"  # curve, grid, guidance curve
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3
    sweep = summary["guidance_sweep"]
    assert [row["guidance_scale"] for row in sweep] == [0.0, 2.0]
    for row in sweep:
        assert 0.0 <= row["conditional_accuracy"] <= 1.0 and np.isfinite(row["fid"])
        assert row["num_samples"] == 100
    for name in ("digits_grid.png", "guidance_curve.png", "training_curve.png"):
        assert (out / name).stat().st_size > 1000, name
    config = DDPMConfig.from_dict(best_model_metadata(out / "ema_model")["config"])
    assert config.backbone.num_classes == 10
