"""The MNIST diffusion tutorial: script and notebook stay identical, and both run.

The two smoke runs use the same arguments and share a persistent JAX compilation cache, so
the second one (the notebook) reuses the first one's compiled programs.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples/generative_models/image/diffusion/diffusion_mnist_training.py"
NOTEBOOK = SCRIPT.with_suffix(".ipynb")
SMOKE_STEPS = 3


def cells(path: Path) -> list[tuple[str, str]]:
    """(cell type, source) of every cell, as jupytext reads the file."""
    import jupytext

    notebook = jupytext.read(path)
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def test_notebook_has_the_scripts_cells():
    script_cells, notebook_cells = cells(SCRIPT), cells(NOTEBOOK)
    assert len(script_cells) > 10
    for index, (expected, actual) in enumerate(zip(script_cells, notebook_cells, strict=False)):
        assert actual == expected, (
            f"cell {index} differs between {SCRIPT.name} and {NOTEBOOK.name}; run "
            f"`jupytext --sync {SCRIPT.relative_to(ROOT)}` after editing either file"
        )
    assert len(notebook_cells) == len(script_cells), "the two files have different cell counts"


def test_notebook_is_paired_and_stored_without_outputs():
    notebook = json.loads(NOTEBOOK.read_text())
    assert notebook["metadata"]["jupytext"]["formats"] == "ipynb,py:percent"
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_auto_preset_follows_the_backend(resolved_config):
    config = resolved_config()
    expected = "cpu" if jax.default_backend() == "cpu" else "full"
    assert config["preset"] == expected
    if expected == "cpu":
        assert config["hidden_dims"] == "(16, 32, 64, 64)"
        assert config["max_steps"] == "2400" and config["batch_size"] == "32"


def test_full_preset_is_the_tutorial_configuration(resolved_config):
    config = resolved_config("--preset", "full")
    assert config["preset"] == "full"
    assert config["seed"] == "42"
    assert config["epochs"] == "50" and config["max_steps"] == "None"
    assert config["batch_size"] == "256"
    assert config["num_timesteps"] == "1000" and config["image_size"] == "32"
    assert config["peak_lr"] == "0.0001" and config["warmup_steps"] == "500"
    assert config["hidden_dims"] == "(64, 128, 256)"
    assert config["attention_resolutions"] == "(8,)"
    assert config["num_res_blocks"] == "2" and config["time_embedding_dim"] == "128"
    assert config["sampler"] == "ddim" and config["sampling_steps"] == "100"
    assert config["schedule"] == "cosine" and config["loss"] == "huber"


def test_experiment_flags_change_the_configuration(resolved_config):
    config = resolved_config(
        "--preset",
        "full",
        "--model",
        "large",
        "--schedule",
        "linear",
        "--loss",
        "mse",
        "--sampler",
        "ddpm",
        "--dataset",
        "fashion_mnist",
        "--epochs",
        "3",
        "--seed",
        "7",
    )
    assert config["hidden_dims"] == "(128, 256, 512)"
    assert config["attention_resolutions"] == "(8, 16)"
    assert config["num_res_blocks"] == "3"
    assert config["schedule"] == "linear" and config["loss"] == "mse"
    assert config["sampler"] == "ddpm" and config["sampling_steps"] == "1000"
    assert config["dataset"] == "fashion_mnist"
    assert config["epochs"] == "3" and config["max_steps"] == "None"
    assert config["seed"] == "7"
    config = resolved_config("--preset", "cpu", "--sampling-steps", "20", "--batch-size", "32")
    assert config["sampling_steps"] == "20" and config["batch_size"] == "32"
    assert config["microbatch_size"] == "16"  # the cpu preset's, which divides 32


def test_cpu_preset_microbatches_follow_the_batch(resolved_config):
    assert resolved_config("--preset", "full")["microbatch_size"] == "None"
    assert resolved_config("--preset", "cpu")["microbatch_size"] == "16"
    assert resolved_config("--preset", "cpu", "--microbatch-size", "32")["microbatch_size"] == "32"
    # a batch the preset's chunk does not divide runs whole instead of failing in the trainer
    assert resolved_config("--preset", "cpu", "--batch-size", "40")["microbatch_size"] == "None"


@pytest.mark.parametrize("count", ["50", "-1"])
def test_too_few_eval_samples_stop_before_training(count, capsys):
    """The metric's minimum is checked when the flags are read, not after the training."""
    import runpy

    with pytest.MonkeyPatch.context() as patch, pytest.raises(SystemExit) as exit_info:
        patch.setattr(sys, "argv", [str(SCRIPT), "--dry-run", "--smoke", "--eval-samples", count])
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert f"--eval-samples {count}: the quality metric needs at least 100" in error
    assert "pass 0 to skip" in error


def check_outputs(output_dir: Path) -> dict:
    """The run wrote a 4x4 sample grid, a training curve and a consistent summary."""
    import matplotlib.image

    grid = matplotlib.image.imread(output_dir / "samples_grid.png")
    curve = matplotlib.image.imread(output_dir / "training_curve.png")
    assert grid.ndim == 3 and min(grid.shape[:2]) >= 300
    assert curve.shape[1] > curve.shape[0] >= 300
    assert np.ptp(grid[..., :3]) > 0.5  # drawn samples, not a blank figure
    summary = json.loads((output_dir / "summary.json").read_text())
    assert summary["steps"] == SMOKE_STEPS
    assert summary["config"]["preset"] == "smoke"
    assert np.isfinite(summary["final_loss"]) and 0 < summary["final_loss"] < 5
    assert summary["backend"] == "cpu"
    assert summary["train_examples"] == 4000
    quality = summary["quality"]  # FID/KID of the metric's minimum of 100 samples
    assert quality["num_samples"] == 100 and sum(quality["class_histogram"]) == 100
    assert np.isfinite(quality["fid"]) and quality["fid"] > 0
    assert (output_dir / "checkpoints" / str(SMOKE_STEPS)).is_dir()
    names = [Path(p).name for p in summary["files"]]
    assert names == ["samples_grid.png", "training_curve.png", "ema_model"]
    check_export(output_dir / "ema_model", summary)
    return summary


def check_export(export_dir: Path, summary: dict) -> None:
    """The EMA export rebuilds the run's architecture from its stored config and loads."""
    from flax import nnx

    from artifex.generative_models.core.configuration import DDPMConfig
    from artifex.generative_models.models.diffusion.ddpm import DDPMModel
    from artifex.generative_models.training.checkpointing import (
        best_model_metadata,
        load_best_model,
    )

    meta = best_model_metadata(export_dir)
    assert meta["step"] == SMOKE_STEPS and meta["ema_weights"]
    config = DDPMConfig.from_dict(meta["config"])
    assert list(config.backbone.hidden_dims) == summary["config"]["hidden_dims"]
    assert config.prediction_type == summary["config"]["prediction_type"]
    model = DDPMModel(config, rngs=nnx.Rngs(params=0, sample=1))
    before = jax_leaves(nnx.state(model, nnx.Param))  # copied to numpy before loading
    load_best_model(export_dir, model)
    after = jax_leaves(nnx.state(model, nnx.Param))
    changed = [not np.array_equal(a, b) for a, b in zip(before, after, strict=True)]
    assert any(changed)  # the trained weights replaced the fresh initialisation


def jax_leaves(tree) -> list:
    import jax

    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_script_smoke_run(smoke_env, tmp_path):
    output_dir = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--output-dir", str(output_dir)],
        cwd=tmp_path,
        env=smoke_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "backend: cpu" in result.stdout
    assert "batch: shape (16, 32, 32, 1), dtype float32, range [-1.0, 1.0]" in result.stdout
    assert f"sample grid: {output_dir / 'samples_grid.png'}" in result.stdout
    assert f"training curve: {output_dir / 'training_curve.png'}" in result.stdout
    check_outputs(output_dir)


def test_notebook_smoke_run(smoke_env, tmp_path):
    import nbclient
    import nbformat

    output_dir = tmp_path / "out"
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    env = {**smoke_env, "ARTIFEX_ARGS": f"--smoke --output-dir {output_dir}"}
    with pytest.MonkeyPatch.context() as patch:  # the kernel inherits this environment
        for name, value in env.items():
            patch.setenv(name, value)
        nbclient.NotebookClient(
            notebook,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        ).execute()
    text = []
    images = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            text.append(output.get("text", ""))
            images += "image/png" in output.get("data", {})
    text = "".join(text)
    assert "preset: smoke" in text
    assert f"sample grid: {output_dir / 'samples_grid.png'}" in text
    assert images == 3  # training batch, samples and curve are shown inline
    check_outputs(output_dir)


def test_benchmark_cpu_preset_is_the_tutorials(resolved_config):
    """benchmarks/time_to_quality.py trains exactly the tutorial's CPU preset."""
    spec = importlib.util.spec_from_file_location("bench_common", ROOT / "benchmarks" / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    config = resolved_config("--preset", "cpu")
    for name, value in common.CPU_PRESET.items():
        assert config[name] == str(value), name


def test_missing_dataset_ends_with_the_reason_not_a_traceback(smoke_env, tmp_path):
    env = {**smoke_env, "TFDS_DATA_DIR": str(tmp_path / "empty")}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--dataset", "fashion_mnist"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Offline (CI), nothing can be downloaded; with a network the download would succeed.
    if result.returncode == 0:
        pytest.skip("Fashion-MNIST could be downloaded here")
    assert result.returncode == 1
    assert "error: TFDS dataset 'fashion_mnist' is not prepared" in result.stderr
    assert "Fashion-MNIST has no offline copy" in result.stderr
    assert "Traceback" not in result.stderr
