"""``import artifex.evaluation`` is cheap, and scoring never imports TensorFlow."""

from __future__ import annotations

import subprocess
import sys


def test_package_import_is_light_and_scoring_needs_no_tensorflow() -> None:
    code = (
        "import sys, numpy as np, artifex.evaluation as ev\n"
        "print(sorted(m for m in ('jax', 'flax', 'tensorflow') if m in sys.modules))\n"
        "from artifex.evaluation.digits import load_digits\n"
        "result = ev.MNISTQualityMetric.load().score(load_digits('test')[0][:100])\n"
        "print(result.num_samples, 'tensorflow' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.split("\n")[:2] == ["[]", "100 False"]
