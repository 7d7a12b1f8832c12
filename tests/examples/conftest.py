"""Helpers shared by the tutorial and documentation tests."""

from __future__ import annotations

import contextlib
import io
import os
import runpy
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TUTORIAL_SCRIPT = (
    ROOT / "examples" / "generative_models" / "image" / "diffusion" / "diffusion_mnist_training.py"
)


def run_dry(*argv: str) -> dict[str, str]:
    """The configuration the tutorial prints for ``argv`` plus ``--dry-run`` (in-process)."""
    import ipykernel  # noqa: F401 - imported but not running a kernel: still a script

    stdout = io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(stdout),
        pytest.raises(SystemExit) as exit_info,
    ):
        patch.setattr(sys, "argv", [str(TUTORIAL_SCRIPT), "--dry-run", *argv])
        runpy.run_path(str(TUTORIAL_SCRIPT), run_name="__main__")
    assert exit_info.value.code == 0
    config = {}
    for line in stdout.getvalue().splitlines():
        if line.startswith("  ") and ": " in line:
            name, value = line.strip().split(": ", 1)
            config[name] = value
    return config


@pytest.fixture
def resolved_config() -> Callable[..., dict[str, str]]:
    """``resolved_config(*flags)``: the tutorial's resolved configuration as printed strings."""
    return run_dry


@pytest.fixture(scope="session")
def smoke_env(offline_mnist_dir, tmp_path_factory) -> dict[str, str]:
    """Environment for the smoke runs: offline MNIST and a shared compilation cache."""
    cache = tmp_path_factory.mktemp("jax_cache")
    return {
        **os.environ,
        "TFDS_DATA_DIR": str(offline_mnist_dir),
        "JAX_COMPILATION_CACHE_DIR": str(cache),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PLATFORMS": "cpu",
        # Halves XLA's compile time on the CPU; the smoke runs execute only a few steps.
        "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"),
    }


def execute_notebook(
    notebook_path: Path, argv: list[str], env: dict[str, str], cwd: Path
) -> tuple[str, int]:
    """Run a paired notebook in a Jupyter kernel with flags ``argv`` (via ``ARTIFEX_ARGS``):
    its stdout text, and how many figures it showed inline."""
    import shlex

    import nbclient
    import nbformat

    notebook = nbformat.read(notebook_path, as_version=4)
    with pytest.MonkeyPatch.context() as patch:  # the kernel inherits this environment
        for name, value in {**env, "ARTIFEX_ARGS": shlex.join(argv)}.items():
            patch.setenv(name, value)
        nbclient.NotebookClient(
            notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
        ).execute()
    text, images = [], 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("name") == "stdout":
                text.append(output.get("text", ""))
            images += "image/png" in output.get("data", {})
    return "".join(text), images


@pytest.fixture
def run_notebook() -> Callable[..., tuple[str, int]]:
    """``run_notebook(path, argv, env, cwd) -> (stdout, inline figures)``: see above."""
    return execute_notebook


def script_dry_run(script: Path, *argv: str) -> tuple[str, dict[str, str]]:
    """The first printed line and the resolved ``  name: value`` configuration of an example
    run with ``--dry-run`` (in-process)."""
    stdout = io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stdout(stdout),
        pytest.raises(SystemExit) as exit_info,
    ):
        patch.setattr(sys, "argv", [str(script), "--dry-run", *argv])
        runpy.run_path(str(script), run_name="__main__")
    assert exit_info.value.code == 0
    lines = stdout.getvalue().splitlines()
    config = dict(
        line.strip().split(": ", 1) for line in lines if line.startswith("  ") and ": " in line
    )
    return lines[0], config


def check_paired_notebook(script: Path) -> None:
    """The script's notebook has its cells, is paired with it and is stored without outputs."""
    import json

    import jupytext

    def cells(path: Path) -> list[tuple[str, str]]:
        return [(c.cell_type, c.source.strip()) for c in jupytext.read(path).cells]

    notebook = script.with_suffix(".ipynb")
    assert len(cells(script)) > 10
    assert cells(notebook) == cells(script), (
        f"run `jupytext --to ipynb --update {script.relative_to(ROOT)}` after editing the script"
    )
    raw = json.loads(notebook.read_text())
    assert raw["metadata"]["jupytext"]["formats"] == "ipynb,py:percent"
    assert raw["metadata"]["kernelspec"]["name"] == "python3"
    for cell in raw["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


@pytest.fixture
def dry_run_script() -> Callable[..., tuple[str, dict[str, str]]]:
    """``dry_run_script(script, *argv) -> (first line, config)``: see :func:`script_dry_run`."""
    return script_dry_run


@pytest.fixture
def paired_notebook() -> Callable[[Path], None]:
    """``paired_notebook(script)`` asserts the notebook pairing: see above."""
    return check_paired_notebook
