"""Data fixtures shared by the whole suite.

Tests that need data run on real MNIST digits: the 5,000 shipped digits prepared once per
session as the TFDS dataset ``mnist/offline_5k`` (about a second; no TensorFlow).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# One persistent XLA compilation cache for the session and every subprocess it starts (they
# inherit the environment): the example runs and the checkpoint/signal and multi-device tests
# compile the same small programs in several processes, and XLA:CPU compiles are slow.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _OWN_CACHE = tempfile.mkdtemp(prefix="artifex-xla-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE
else:
    _OWN_CACHE = None
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
# The suite's programs are tiny and run a few steps, so XLA:CPU's compile time dominates;
# skipping the backend's optimisation passes about halves it (inherited by subprocesses).
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    ).strip()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove the session's compilation cache (tens of MB), unless the user chose one."""
    if _OWN_CACHE is not None:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def offline_mnist_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """TFDS data dir holding the offline MNIST subset; ``TFDS_DATA_DIR`` points at it."""
    from artifex.data.offline_mnist import prepare_offline_mnist

    root = prepare_offline_mnist(tmp_path_factory.mktemp("tfds"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TFDS_DATA_DIR", str(root))
        yield root


@pytest.fixture(scope="session")
def offline_mnist_train(offline_mnist_dir: Path):
    """The offline ``mnist`` train split, loaded once through TFDS."""
    from artifex.data.datasets import load_image_dataset

    return load_image_dataset("mnist", "train", data_dir=offline_mnist_dir, config="offline_5k")
