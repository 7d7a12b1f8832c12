"""The MNIST VAE example: script and notebook stay identical, presets resolve, smoke run works."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples/generative_models/image/vae/vae_mnist_training.py"
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
    assert headline.startswith(f"artifex VAE on MNIST: backend {jax.default_backend()}, preset ")
    if expected == "cpu":
        assert headline.endswith("(expect ~10 min on 2 cores)")
        assert config["max_steps"] == "6000" and config["batch_size"] == "64"
        assert config["importance_samples"] == "100" and config["eval_samples"] == "1000"
        assert config["test_images"] == "1000"


def test_full_preset_and_flags_resolve(dry_run):
    _, config = dry_run("--preset", "full")
    assert config["epochs"] == "200" and config["max_steps"] == "None"
    assert config["hidden_dims"] == "(64, 128)" and config["latent_dim"] == "32"
    assert config["importance_samples"] == "1000"
    _, config = dry_run(
        "--preset", "cpu", "--latent-dim", "2", "--decoder", "gaussian", "--beta", "0.5",
        "--max-steps", "10", "--batch-size", "32", "--seed", "7",
    )  # fmt: skip
    assert config["latent_dim"] == "2" and config["decoder"] == "gaussian"
    assert config["beta"] == "0.5" and config["max_steps"] == "10"
    assert config["batch_size"] == "32" and config["seed"] == "7"
    _, config = dry_run("--smoke", "--epochs", "2")
    assert config["preset"] == "smoke" and config["epochs"] == "2"
    assert config["max_steps"] == "None"


def test_notebook_smoke_run(smoke_env, run_notebook, tmp_path):
    """The notebook (cell for cell the script, see above) runs in a kernel, figures inline."""
    out = tmp_path / "out"
    stdout, images = run_notebook(
        NOTEBOOK, ["--smoke", "--output-dir", str(out)], smoke_env, tmp_path
    )
    assert images >= 4, f"{images} figures shown inline"
    assert stdout.splitlines()[0].startswith("artifex VAE on MNIST: backend cpu, preset")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == SMOKE_STEPS and summary["config"]["preset"] == "smoke"
    assert summary["train_examples"] == 3500 and summary["test_examples"] == 1000
    bounds = summary["likelihood"]
    assert bounds["num_importance_samples"] == 10 and bounds["nll"] == -bounds["iwae"]
    assert np.isfinite([bounds["elbo"], bounds["iwae"]]).all()
    assert bounds["elbo"] <= bounds["iwae"] < 0  # nats of binary digits: a log-probability
    assert np.isfinite(summary["best_validation_elbo"])
    quality = summary["quality"]
    assert quality["num_samples"] == 100 and sum(quality["class_histogram"]) == 100
    assert summary["samples_per_second"] > 0 and summary["num_params"] > 1000
    for key in ("date", "backend", "device", "cpu_count", "load_average", "total_seconds"):
        assert key in summary, key
    names = {Path(f).name for f in summary["files"]}
    expected = {"reconstructions.png", "prior_samples.png", "interpolation.png"}
    expected |= {"latent_manifold.png", "latent_scatter.png"}  # the smoke latent is 2-D
    assert expected | {"samples_final.png", "training_curve.png", "model"} <= names
    for f in summary["files"]:
        assert Path(f).exists(), f
    assert (out / "checkpoints" / str(SMOKE_STEPS)).is_dir()

    import matplotlib.image

    pairs = matplotlib.image.imread(out / "reconstructions.png")
    assert pairs.shape[1] > 4 * pairs.shape[0]  # two rows of ten digits

    from artifex.generative_models.models.vae import VAEModel
    from artifex.generative_models.training.checkpointing import load_model

    model = load_model(out / "model")
    assert isinstance(model, VAEModel) and model.config.latent_dim == 2
    assert list(model.config.hidden_dims) == summary["config"]["hidden_dims"]
