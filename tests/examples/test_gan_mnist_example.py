"""The MNIST GAN tutorial: script and notebook agree, presets resolve, a smoke run works."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples/generative_models/image/gan/gan_mnist_training.py"
NOTEBOOK = SCRIPT.with_suffix(".ipynb")
SMOKE_STEPS = 3


@pytest.fixture
def resolved_config(dry_run_script):
    """The configuration this example prints for ``argv`` plus ``--dry-run``, and its first
    line as ``first_line``."""

    def resolve(*argv: str) -> dict[str, str]:
        first_line, config = dry_run_script(SCRIPT, *argv)
        return {"first_line": first_line, **config}

    return resolve


def test_notebook_has_the_scripts_cells_and_no_outputs(paired_notebook):
    paired_notebook(SCRIPT)


def test_presets_resolve(resolved_config):
    auto = resolved_config()
    expected = "cpu" if jax.default_backend() == "cpu" else "full"
    assert auto["preset"] == expected
    assert auto["first_line"].startswith(
        f"artifex GAN on MNIST: backend {jax.default_backend()}, preset {expected} (expect ~"
    )
    cpu = resolved_config("--preset", "cpu")
    assert cpu["max_steps"] == "3000" and cpu["batch_size"] == "64"
    assert cpu["generator_dims"] == "(64, 32)" and cpu["eval_samples"] == "1000"
    assert "expect ~7 min on 2 idle cores" in cpu["first_line"]
    full = resolved_config("--preset", "full", "--loss", "hinge", "--spectral-norm")
    assert full["preset"] == "full" and full["generator_dims"] == "(256, 128)"
    assert full["loss"] == "hinge" and full["spectral_norm"] == "True"
    assert full["learning_rate"] == "0.0002" and full["beta1"] == "0.5"
    smoke = resolved_config("--smoke", "--max-steps", "5", "--r1-gamma", "1.0")
    assert smoke["preset"] == "smoke" and smoke["max_steps"] == "5"
    assert smoke["r1_gamma"] == "1.0"


def test_notebook_smoke_run(smoke_env, run_notebook, tmp_path):
    """The notebook (cell for cell the script, see above) runs in a kernel, figures inline."""
    output_dir = tmp_path / "out"
    stdout, images = run_notebook(
        NOTEBOOK, ["--smoke", "--output-dir", str(output_dir)], smoke_env, tmp_path
    )
    assert images >= 3, f"{images} figures shown inline"
    first = stdout.splitlines()[0]
    assert first == "artifex GAN on MNIST: backend cpu, preset smoke (expect ~30 s)"
    assert "batch (16, 28, 28, 1)" in stdout

    summary = json.loads((output_dir / "summary.json").read_text())
    assert summary["steps"] == SMOKE_STEPS and summary["config"]["preset"] == "smoke"
    assert summary["backend"] == "cpu" and summary["train_examples"] == 4000
    quality = summary["quality"]
    assert quality["num_samples"] == 100 and sum(quality["class_histogram"]) == 100
    assert np.isfinite(quality["fid"]) and quality["fid"] > 0
    assert sum(summary["class_fractions"]) == pytest.approx(1.0)
    # Evaluated at step 2 (every 2 steps): that EMA generator is the best, exported model.
    assert [step for step, _ in summary["fid_history"]] == [2]
    assert summary["best_step"] == 2
    assert summary["best_fid_during_training"] == summary["fid_history"][0][1]
    assert summary["samples_per_second"] > 0
    assert summary["num_params"]["generator"] > 0 and summary["num_params"]["discriminator"] > 0
    for key in ("date", "device", "cpu_count", "load_average", "train_seconds", "total_seconds"):
        assert key in summary

    import matplotlib.image

    names = [Path(p).name for p in summary["files"]]
    assert names == ["samples_grid.png", "class_histogram.png", "gan_losses.png", "generator"]
    grid = matplotlib.image.imread(output_dir / "samples_grid.png")
    assert min(grid.shape[:2]) >= 300 and np.ptp(grid[..., :3]) > 0.5
    assert (output_dir / "checkpoints" / str(SMOKE_STEPS)).is_dir()

    from artifex.generative_models.models.gan import Generator
    from artifex.generative_models.training.checkpointing import load_model

    generator = load_model(output_dir / "generator")
    assert isinstance(generator, Generator)
    assert list(generator.config.generator_dims) == summary["config"]["generator_dims"]
