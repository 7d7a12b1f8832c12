"""``import artifex.data`` must stay cheap: the heavy stack loads only when data is used."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_package_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, artifex.data as d; "
        "assert callable(d.load_image_dataset.__call__); "
        "heavy = ('tensorflow', 'tensorflow_datasets', 'datarax', 'jax'); "
        "print([m for m in heavy if m in sys.modules])"
    )
    before = subprocess.run(
        [sys.executable, "-c", code.replace("callable(d.load_image_dataset.__call__)", "True")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert before.stdout.strip() == "[]"
    # Touching a loader name imports its module, still without TensorFlow or DataRax.
    after = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "tensorflow" not in after.stdout and "datarax" not in after.stdout


def test_preparing_and_reading_data_needs_no_tensorflow(tmp_path) -> None:
    """In an environment without TensorFlow (the locked one has none), the offline digits
    prepare, load and batch, and nothing tries to import TensorFlow."""
    code = f"""
import importlib.util, sys
assert importlib.util.find_spec("tensorflow") is None, "this check needs TensorFlow absent"
from artifex.data import make_train_iterator
it = make_train_iterator("mnist", 32, data_dir={str(tmp_path)!r}, offline_fallback=True)
batch = next(it)
print(tuple(batch["image"].shape), "tensorflow" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "(32, 32, 32, 1) False"


def test_the_locked_environments_hold_no_tensorflow() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for lock in ("requirements.lock", "requirements-cuda.lock"):
        names = {
            line.split("==")[0].lower()
            for line in (root / lock).read_text().splitlines()
            if "==" in line and not line.startswith((" ", "#"))
        }
        assert "tensorflow-datasets" in names
        assert not names & {"tensorflow", "tensorflow-cpu", "tf-keras", "keras"}, lock
