"""The diffusion demo: the packaged model loads in one call and draws every digit, no training."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples/generative_models/image/diffusion/diffusion_demo.py"
NOTEBOOK = SCRIPT.with_suffix(".ipynb")


def test_notebook_has_the_scripts_cells_and_no_outputs(paired_notebook):
    paired_notebook(SCRIPT)


def test_first_line_names_backend_and_time(dry_run_script):
    headline, config = dry_run_script(SCRIPT, "--per-digit", "3")
    assert headline.startswith(f"artifex diffusion demo: backend {jax.default_backend()}")
    assert "no training" in headline and "expect under a minute" in headline
    assert config["per_digit"] == "3" and config["sampler"] == "dpm_solver++"


def test_notebook_draws_every_digit(smoke_env, run_notebook, tmp_path):
    """Run in a kernel with few samples: both figures shown inline."""
    out = tmp_path / "out"
    argv = ["--per-digit", "2", "--steps", "10", "--output-dir", str(out)]
    stdout, images = run_notebook(NOTEBOOK, argv, smoke_env, tmp_path)
    assert stdout.splitlines()[0].startswith("artifex diffusion demo: backend cpu")
    assert images == 2 and "20 digits in" in stdout
    assert (out / "every_digit.png").is_file() and (out / "guidance.png").is_file()


def test_the_packaged_model_draws_recognisable_digits():
    """The packaged metric's classifier reads most samples as the digit requested."""
    from artifex.evaluation import MNISTQualityMetric
    from artifex.pretrained import CONDITIONAL_MNIST_PATH, load_conditional_mnist

    metric = MNISTQualityMetric.load()
    assert CONDITIONAL_MNIST_PATH.stat().st_size <= 3_000_000
    model = load_conditional_mnist()
    assert model.num_classes == 10
    labels = np.arange(100) % 10
    digits = model.sample(
        100, key=0, labels=labels, scheduler="dpm_solver++", steps=10, guidance_scale=2.0
    )
    probs = metric.predict(np.clip(np.asarray(digits), -1, 1))[1]
    assert np.mean(probs.argmax(axis=1) == labels) >= 0.8  # the documented accuracy is higher
