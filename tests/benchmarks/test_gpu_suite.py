"""The GPU suite runs where no test can: check here that every command it runs exists and
accepts the flags it passes, so a typo cannot waste a session on a lent GPU."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "benchmarks" / "gpu_suite.sh"


def commands() -> list[tuple[str, list[str]]]:
    """``(script, flags)`` of every ``part NAME LIMIT python SCRIPT ...`` line."""
    text = SUITE.read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        match = re.match(r"\s*part \S+ \d+ python (\S+)(.*)", line)
        if match:
            found.append((match.group(1), re.findall(r"(--[a-z][a-z0-9-]*)", match.group(2))))
    return found


def test_the_suite_is_valid_bash_and_runs_every_benchmark():
    subprocess.run(["bash", "-n", str(SUITE)], check=True)
    scripts = {script for script, _ in commands()}
    assert {
        "benchmarks/train_step.py",
        "benchmarks/mixed_precision.py",
        "benchmarks/sampling.py",
        "benchmarks/conv_kernel_gradient.py",
        "examples/generative_models/image/diffusion/diffusion_mnist_training.py",
    } <= scripts


def test_every_flag_it_passes_is_accepted():
    for script, flags in commands():
        help_text = subprocess.run(
            [sys.executable, str(ROOT / script), "--help"],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
        unknown = [flag for flag in flags if flag not in help_text]
        assert not unknown, f"{script} does not accept {unknown}"
