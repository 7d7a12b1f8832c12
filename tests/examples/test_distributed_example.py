"""The multi-host example: its command line and how it decides to join a job.

Training itself is covered by tests/generative_models/training/distributed (the same
calls, on simulated devices and localhost processes).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "distributed" / "train_multihost.py"
SBATCH = ROOT / "examples" / "distributed" / "slurm_train.sbatch"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("train_multihost", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cluster_flags_come_all_together_or_not_at_all(example) -> None:
    args = example.parse_args(["--num-processes", "2", "--process-id", "0"])
    with pytest.raises(SystemExit, match="--coordinator-address, --num-processes"):
        example.initialize(args)


def test_a_single_process_without_slurm_joins_no_job(example, monkeypatch) -> None:
    import jax

    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    called = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **k: called.append(a))
    example.initialize(example.parse_args([]))
    assert called == []
    monkeypatch.setenv("SLURM_NTASKS", "2")  # under srun with 2 tasks: autodetection
    example.initialize(example.parse_args([]))
    assert called == [()]


def test_sbatch_script_launches_the_example_once_per_node() -> None:
    text = SBATCH.read_text()
    assert "--ntasks-per-node=1" in text
    assert "srun" in text and "examples/distributed/train_multihost.py" in text
    assert "--batch-size" in text and "--output-dir" in text
