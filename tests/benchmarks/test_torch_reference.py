"""The PyTorch comparison is optional: it starts without torch installed and says what it needs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "torch_reference.py"


def test_it_asks_for_a_torch_environment_instead_of_importing_torch():
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "--torch-python is required" in result.stderr
    assert "torch" not in sys.modules  # nothing in the suite imports it
