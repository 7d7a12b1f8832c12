"""Importing artifex, its visualization or analysis packages must not import matplotlib."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_matplotlib():
    """The visualization and analysis packages import matplotlib only inside functions."""
    code = (
        "import sys, artifex, artifex.visualization, artifex.generative_models.analysis; "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
