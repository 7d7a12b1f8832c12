"""Faults that must not lose a run: kill -9 at random moments of saving and deleting, two
runs on one directory, a restore into another model, a damaged array file."""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from artifex.generative_models.training.checkpointing import (
    CorruptCheckpointError,
    TrainingCheckpointer,
)
from artifex.generative_models.training.fit import fit
from artifex.generative_models.training.fit_config import FitConfig
from artifex.generative_models.training.run_lock import DirectoryInUseError, RunLock

CHILD = Path(__file__).with_name("save_loop_child.py")
#: Kills per run of the random-kill test; ARTIFEX_FAULT_KILLS=20 for a longer trial.
KILLS = int(os.environ.get("ARTIFEX_FAULT_KILLS", "4"))


def restored_weight(directory: Path, step: int) -> float:
    """Restore ``step`` into a fresh state; every weight of it was set to the step number."""
    sys.path.insert(0, str(CHILD.parent))
    from save_loop_child import build_state

    state = build_state()
    TrainingCheckpointer(directory).restore(step, state)
    values = np.concatenate(
        [np.ravel(p) for p in jax.tree.leaves(nnx.state(state.model, nnx.Param))]
    )
    assert np.all(values == values[0])
    return float(values[0])


def test_random_kill_9_during_saves_and_deletions_never_leaves_a_broken_step(tmp_path):
    """A child saves step after step (each save deletes the one before); we kill -9 it at
    random moments, reopen the directory each time and restore every listed step."""
    rng = random.Random(0)
    directory, step, lost = tmp_path / "checkpoints", 1, 0
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    for _ in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, str(CHILD), str(directory), str(step)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert child.stdout.readline().strip() == "ready"
        assert child.stdout.readline().startswith("saved")  # then kill during later ones
        time.sleep(rng.uniform(0.0, 0.5))
        child.send_signal(signal.SIGKILL)
        child.wait()
        steps = TrainingCheckpointer(directory).all_steps()
        lost += not steps and step > 1  # a complete checkpoint existed before this kill
        for listed in steps:  # every listed step loads, with the weights it was saved with
            assert restored_weight(directory, listed) == listed
        step = (steps[-1] + 1) if steps else step
    assert lost == 0
    assert step > 1, "no save completed: the kills came too early to test anything"


def test_an_empty_step_directory_is_set_aside_with_a_warning(tmp_path, micro_model, caplog):
    checkpointer = TrainingCheckpointer(tmp_path)
    model = micro_model(0)
    checkpointer.save(3, model)
    checkpointer.close()
    (tmp_path / "100").mkdir()  # looks like the newest step, holds nothing
    reopened = TrainingCheckpointer(tmp_path)
    assert reopened.latest_step() == 3
    assert "checkpoint 100" in caplog.text and "incomplete" in caplog.text
    assert not (tmp_path / "100").exists() and any((tmp_path / ".invalid").iterdir())


def test_a_second_run_on_a_directory_in_use_is_refused_at_once(
    tmp_path, trainer, micro_model, make_optimizer, make_iterator
):
    config = FitConfig(output_dir=tmp_path, epochs=1, progress_bar=False, final_samples=False)
    model = micro_model(0)
    state = trainer.init_state(model, make_optimizer(model))
    with RunLock(tmp_path), pytest.raises(DirectoryInUseError, match=f"pid.{{0,4}}{os.getpid()}"):
        fit(trainer, state, make_iterator(), config)
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


def test_a_killed_holder_releases_the_lock(tmp_path):
    code = "import sys, time; from artifex.generative_models.training.run_lock import RunLock; "
    code += f"lock = RunLock({str(tmp_path)!r}); lock.acquire(); print('locked', flush=True); "
    code += "time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(DirectoryInUseError, match=str(holder.pid)):
        RunLock(tmp_path).acquire()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with RunLock(tmp_path):  # free again: the kernel released it with the process
        pass


def test_restoring_into_another_config_names_the_field(
    tmp_path, micro_model, make_model, tiny_config
):
    model = micro_model(0)
    TrainingCheckpointer(tmp_path).save(1, model)
    backbone = dataclasses.replace(tiny_config.backbone, hidden_dims=(4,), attention_resolutions=())
    other = make_model(tiny_config, backbone=backbone)
    expected = r"DDPMConfig\.backbone\.hidden_dims=\[8\].*hidden_dims=\(4,\)"
    with pytest.raises(ValueError, match=expected):
        TrainingCheckpointer(tmp_path).restore(1, other)


def test_restoring_with_another_optimizer_names_both(tmp_path, micro_model):
    import optax

    model = micro_model(0)
    adam = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
    TrainingCheckpointer(tmp_path).save(1, model, adam)
    sgd = nnx.Optimizer(model, optax.sgd(1e-3, momentum=0.9), wrt=nnx.Param)
    with pytest.raises(ValueError, match=r"ScaleByAdamState.*TraceState"):
        TrainingCheckpointer(tmp_path).restore(1, model, sgd)


def flip_bytes(step_dir: Path, count: int = 64) -> Path:
    """Invert ``count`` bytes in the middle of the step's largest array data file."""
    files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and "/d/" in str(p)]
    target = max(files, key=lambda p: p.stat().st_size)
    data = bytearray(target.read_bytes())
    middle = len(data) // 2
    for i in range(middle, min(middle + count, len(data))):
        data[i] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


def test_a_flipped_byte_is_refused_and_fit_resumes_from_the_step_before(
    tmp_path, trainer, micro_model, make_optimizer, make_iterator, caplog
):
    config = FitConfig(
        output_dir=tmp_path,
        epochs=2,
        checkpoint_every_epochs=1,
        max_to_keep=2,
        progress_bar=False,
        final_samples=False,
        async_checkpoints=False,
    )
    model = micro_model(0)
    fit(trainer, trainer.init_state(model, make_optimizer(model)), make_iterator(), config)
    checkpoints = TrainingCheckpointer(tmp_path / "checkpoints")
    assert checkpoints.all_steps() == [4, 8]
    flip_bytes(tmp_path / "checkpoints" / "8")
    fresh = micro_model(1)
    state = trainer.init_state(fresh, make_optimizer(fresh))
    with pytest.raises(CorruptCheckpointError, match="checkpoint 8"):
        checkpoints.restore(8, state)
    resumed = dataclasses.replace(config, resume=True, epochs=2)
    result = fit(trainer, state, make_iterator(), resumed)
    assert "checkpoint 8" in caplog.text and "trying the checkpoint before it" in caplog.text
    assert result.global_step == 8  # redid epoch 2 from the good step-4 checkpoint
