"""``import artifex.data`` must stay cheap: the heavy stack loads only when data is used."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_package_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, artifex.data as d; "
        "assert callable(d.load_image_dataset.__call__); "
        "heavy = ('tensorflow', 'tensorflow_datasets', 'datarax', 'jax', 'mlxtend'); "
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
