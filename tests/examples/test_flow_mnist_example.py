"""The MNIST flow example: script and notebook stay identical, presets resolve, smoke run works."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples/generative_models/image/flow/flow_mnist_training.py"
NOTEBOOK = SCRIPT.with_suffix(".ipynb")
SMOKE_STEPS = 3


@pytest.fixture
def dry_run(dry_run_script):
    """``dry_run(*argv) -> (first line, config)`` of this example."""
    return lambda *argv: dry_run_script(SCRIPT, *argv)


def test_notebook_has_the_scripts_cells_and_no_outputs(paired_notebook):
    paired_notebook(SCRIPT)


def test_auto_preset_follows_the_backend_and_says_so_first(dry_run):
    headline, config = dry_run()
    expected = "cpu" if jax.default_backend() == "cpu" else "full"
    assert config["preset"] == expected
    assert headline.startswith(
        f"artifex Glow flow on MNIST: backend {jax.default_backend()}, preset {expected} (expect"
    )
    if expected == "cpu":
        assert headline.endswith("(expect ~8 min on 2 cores)")
        assert config["max_steps"] == "3000" and config["batch_size"] == "64"
        assert config["steps_per_scale"] == "4" and config["hidden_channels"] == "64"
        assert config["test_images"] == "1000" and config["eval_samples"] == "1000"
        assert config["temperature"] == "1.0" and config["temperatures"] == "(0.5, 0.7, 1.0)"


def test_full_preset_and_flags_resolve(dry_run):
    _, config = dry_run("--preset", "full")
    assert config["epochs"] == "100" and config["max_steps"] == "None"
    assert config["steps_per_scale"] == "16" and config["hidden_channels"] == "256"
    assert config["test_images"] == "10000"
    _, config = dry_run(
        "--preset", "cpu", "--max-steps", "10", "--batch-size", "32", "--steps-per-scale", "2",
        "--invertible-conv", "reverse", "--temperature", "0.7", "--eval-samples", "0",
        "--seed", "7",
    )  # fmt: skip
    assert config["max_steps"] == "10" and config["batch_size"] == "32"
    assert config["steps_per_scale"] == "2" and config["invertible_conv"] == "reverse"
    assert config["temperature"] == "0.7" and config["eval_samples"] == "0"
    assert config["seed"] == "7"
    _, config = dry_run("--smoke", "--epochs", "2")
    assert config["preset"] == "smoke" and config["epochs"] == "2"
    assert config["max_steps"] == "None"


def test_notebook_smoke_run(smoke_env, run_notebook, tmp_path):
    """The notebook (cell for cell the script, see above) runs in a kernel, figures inline."""
    out = tmp_path / "out"
    stdout, images = run_notebook(
        NOTEBOOK, ["--smoke", "--output-dir", str(out)], smoke_env, tmp_path
    )
    assert images >= 2, f"{images} figures shown inline"
    first = stdout.splitlines()[0]
    assert first == "artifex Glow flow on MNIST: backend cpu, preset smoke (expect ~1 min)"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == SMOKE_STEPS and summary["config"]["preset"] == "smoke"
    assert summary["train_examples"] == 4000 and summary["test_examples"] == 200
    likelihood = summary["likelihood"]
    assert 1.0 < likelihood["test_bits_per_dim"] < 8.0  # a few steps: far from trained
    assert np.isfinite(likelihood["test_bits_per_dim_raw_weights"])
    assert len(likelihood["test_bits_per_dim_by_class"]) == 10
    assert likelihood["evaluations"][-1]["step"] == SMOKE_STEPS
    assert likelihood["round_trip_error"] < 1e-4  # the flow inverts exactly
    quality = summary["quality"]
    assert quality["num_samples"] == 100 and sum(quality["class_histogram"]) == 100
    assert quality["temperature"] == 1.0 and np.isfinite(quality["fid"])
    assert set(summary["fid_by_temperature"]) == {"0.5", "0.7", "1.0"}
    assert summary["fid_by_temperature"]["1.0"] == quality["fid"]
    assert summary["samples_per_second"] > 0 and summary["num_params"] > 1000
    for key in ("date", "backend", "device", "cpu_count", "load_average", "total_seconds"):
        assert key in summary, key
    names = {Path(f).name for f in summary["files"]}
    expected = {"bits_per_dim.png", "samples_by_temperature.png", "samples_final.png"}
    assert expected | {"training_curve.png", "model"} <= names
    for f in summary["files"]:
        assert Path(f).exists(), f
    assert (out / "checkpoints" / str(SMOKE_STEPS)).is_dir()

    import matplotlib.image

    panels = matplotlib.image.imread(out / "samples_by_temperature.png")
    assert panels.shape[1] > 2.5 * panels.shape[0]  # three grids side by side
    assert np.ptp(panels[..., :3]) > 0.5  # drawn samples, not a blank figure

    from artifex.generative_models.models.flow import FlowModel
    from artifex.generative_models.training.checkpointing import load_model

    model = load_model(out / "model")
    assert isinstance(model, FlowModel) and model.initialized
    assert model.config.steps_per_scale == summary["config"]["steps_per_scale"]
    assert model.config.hidden_channels == summary["config"]["hidden_channels"]
