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


def test_a_single_process_run_trains_with_fit_and_resumes(
    example, tmp_path, offline_mnist_dir, capsys, caplog
) -> None:
    """Two runs of ``main`` in this process (single-process mode): 2 steps with a checkpoint
    after each, then 3 steps, resumed from the second checkpoint."""
    import logging

    argv = [
        "--steps", "2", "--batch-size", "8", "--channels", "8,16,16", "--offline-fallback",
        "--output-dir", str(tmp_path / "run"), "--checkpoint-every", "1",
    ]  # fmt: skip
    example.main(argv)
    assert "2 steps, final loss" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == ["1", "2"]
    with caplog.at_level(logging.INFO, logger="artifex"):
        example.main(["--steps", "3", *argv[2:]])
    assert "3 steps" in capsys.readouterr().out
    assert "resumed from checkpoint step 2" in caplog.text
