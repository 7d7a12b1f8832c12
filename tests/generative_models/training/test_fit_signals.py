"""Runs killed by SIGKILL or stopped by SIGINT resume to the uninterrupted run's exact state.

Each run is a separate process (``fit_child.py``). They share a persistent compilation
cache, so only the first compiles the train step.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from artifex.generative_models.training.checkpointing import TrainingCheckpointer

CHILD = Path(__file__).with_name("fit_child.py")


@pytest.fixture(scope="module")
def child_env(tmp_path_factory) -> dict[str, str]:
    return {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0",
        "JAX_COMPILATION_CACHE_DIR": str(tmp_path_factory.mktemp("jax_cache")),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }


def run_child(out: Path, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(CHILD), str(out), *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def final_arrays(out: Path) -> dict[str, np.ndarray]:
    with np.load(out / "final.npz") as data:
        return {name: data[name] for name in data.files}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, child_env) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("uninterrupted")
    result = run_child(out, child_env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "done at step 12, resumed from None" in result.stdout
    return final_arrays(out)


def assert_identical(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    for name in expected:
        np.testing.assert_array_equal(actual[name], expected[name], err_msg=name)


def test_sigkill_between_checkpoints_resumes_exactly(tmp_path, child_env, uninterrupted):
    killed = run_child(tmp_path, child_env, "--kill-at", "5")
    assert killed.returncode == -signal.SIGKILL
    assert "step 5" in killed.stdout and "step 6" not in killed.stdout
    # The asynchronous save of step 3 may still have been writing when the kill came: then
    # nothing is listed and the run starts over; either way it must end identically.
    steps = TrainingCheckpointer(tmp_path / "checkpoints").all_steps()
    assert steps in ([3], [])

    resumed = run_child(tmp_path, child_env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    if steps:
        assert "[artifex] resumed from checkpoint step 3" in resumed.stderr
    assert f"done at step 12, resumed from {steps[-1] if steps else None}" in resumed.stdout
    assert_identical(final_arrays(tmp_path), uninterrupted)


def test_sigint_saves_a_checkpoint_then_resumes_exactly(tmp_path, child_env, uninterrupted):
    interrupted = run_child(tmp_path, child_env, "--interrupt-at", "7")
    assert interrupted.returncode != 0
    assert "KeyboardInterrupt" in interrupted.stderr
    assert "[artifex] interrupted (SIGINT): checkpoint of step 7 saved" in interrupted.stderr
    assert TrainingCheckpointer(tmp_path / "checkpoints").all_steps() == [3, 6, 7]

    resumed = run_child(tmp_path, child_env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "done at step 12, resumed from 7" in resumed.stdout
    assert_identical(final_arrays(tmp_path), uninterrupted)


def test_sigterm_saves_a_checkpoint_exits_143_then_resumes_exactly(
    tmp_path, child_env, uninterrupted
):
    """What SLURM and Kubernetes send before pre-emption: finish the step, save, exit."""
    terminated = run_child(tmp_path, child_env, "--terminate-at", "5")
    assert terminated.returncode == 143, terminated.stderr[-3000:]
    assert "Traceback" not in terminated.stderr
    assert "[artifex] interrupted (SIGTERM): checkpoint of step 5 saved" in terminated.stderr
    assert TrainingCheckpointer(tmp_path / "checkpoints").all_steps() == [3, 5]

    resumed = run_child(tmp_path, child_env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "done at step 12, resumed from 5" in resumed.stdout
    assert_identical(final_arrays(tmp_path), uninterrupted)
