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
