"""Importing artifex (and its visualization package) must not import matplotlib."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_matplotlib():
    code = "import sys, artifex, artifex.visualization; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
