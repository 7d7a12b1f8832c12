"""The CIFAR-10 example: script and notebook stay identical, presets resolve, smoke run works."""

from __future__ import annotations

import contextlib
import io
import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples/generative_models/image/diffusion/diffusion_cifar10_training.py"
NOTEBOOK = SCRIPT.with_suffix(".ipynb")


def cells(path: Path) -> list[tuple[str, str]]:
    import jupytext

    return [(cell.cell_type, cell.source.strip()) for cell in jupytext.read(path).cells]


def test_notebook_matches_the_script_and_has_no_outputs():
    assert cells(NOTEBOOK) == cells(SCRIPT), (
        f"run `jupytext --sync {SCRIPT.relative_to(ROOT)}` after editing either file"
    )
    notebook = json.loads(NOTEBOOK.read_text())
    assert notebook["metadata"]["jupytext"]["formats"] == "ipynb,py:percent"
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def dry_run(*argv: str) -> dict[str, str]:
    stdout = io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(stdout),
        pytest.raises(SystemExit) as exit_info,
    ):
        patch.setattr(sys, "argv", [str(SCRIPT), "--dry-run", *argv])
        runpy.run_path(str(SCRIPT), run_name="__main__")
    assert exit_info.value.code == 0
    lines = [line.strip().split(": ", 1) for line in stdout.getvalue().splitlines()]
    return {line[0]: line[1] for line in lines if len(line) == 2}


def test_full_preset_is_the_documented_configuration():
    config = dry_run("--preset", "full")
    assert config["preset"] == "full" and config["epochs"] == "100"
    assert config["batch_size"] == "128" and config["hidden_dims"] == "(128, 256, 256)"
    assert config["attention_resolutions"] == "(16, 8)"
    assert config["ema_decay"] == "0.9999" and config["sample_every_epochs"] == "5"
    config = dry_run("--smoke", "--max-steps", "5")
    assert config["preset"] == "smoke" and config["max_steps"] == "5"
    assert config["attention_resolutions"] == "(16, 8)"


def test_notebook_smoke_run_on_synthetic_data(smoke_env, run_notebook, tmp_path):
    """The notebook (cell for cell the script) runs in a kernel on the synthetic fallback,
    states backend, preset and time first, and shows its two figures inline."""
    out = tmp_path / "out"
    env = {**smoke_env, "TFDS_DATA_DIR": str(tmp_path / "no_tfds")}  # CIFAR-10 absent
    stdout, images = run_notebook(NOTEBOOK, ["--smoke", "--output-dir", str(out)], env, tmp_path)
    assert stdout.splitlines()[0] == (
        "artifex DDPM on CIFAR-10: backend cpu, preset smoke (expect under a minute; chosen by "
        "--smoke)"
    )
    assert images == 2, f"{images} figures shown inline"
    assert "SYNTHETIC DATA" in stdout
    assert "trained 3 steps" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["train_examples"] == 64
    assert np.isfinite(summary["final_loss"])
    import matplotlib.image

    grid = matplotlib.image.imread(out / "samples" / "samples_final.png")
    assert grid.ndim == 3 and np.ptp(grid[..., :3]) > 0.2
    assert (out / "samples" / "training_curve.png").is_file()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["3"]
    assert (out / "best_model").is_dir() is False  # 3 steps never finish an epoch of 8
