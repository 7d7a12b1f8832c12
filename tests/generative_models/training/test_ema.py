"""EMA: warm-up decay, one update per call, a model copy carrying the average."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artifex.generative_models.core.noise_schedule import create_noise_schedule
from artifex.generative_models.training.ema import ema_decay, ema_init, ema_update
from artifex.generative_models.training.trainers.diffusion_trainer import (
    DiffusionTrainer,
    DiffusionTrainingConfig,
)


def test_decay_warms_up_towards_the_maximum():
    counts = jnp.array([0, 1, 10, 90, 10_000_000])
    np.testing.assert_allclose(
        ema_decay(counts, 0.999), [0.1, 2 / 11, 11 / 20, 0.91, 0.999], rtol=1e-6
    )


def test_update_matches_the_recurrence():
    params = {"w": jnp.array([1.0, -2.0])}
    state = ema_init(params)
    expected = np.array([1.0, -2.0])
    for n, value in enumerate([3.0, 5.0, -1.0]):
        new = {"w": jnp.array([value, value])}
        state = ema_update(state, new, 0.5)
        d = min(0.5, (1 + n) / (10 + n))
        expected = d * expected + (1 - d) * value
        np.testing.assert_allclose(state.params["w"], expected, rtol=1e-6)
        assert int(state.count) == n + 1


def _perturb(model):
    for _path, p in nnx.iter_graph(model):
        if isinstance(p, nnx.Param):
            p[...] = p[...] + 1.0


def test_trainer_ema_model(tiny_model):
    trainer = DiffusionTrainer(
        create_noise_schedule(tiny_model.config.noise_schedule),
        DiffusionTrainingConfig(ema_decay=0.99, ema_update_every=3),
    )
    with pytest.raises(RuntimeError, match="update_ema"):
        trainer.ema_model(tiny_model)
    assert [trainer.ema_due(s) for s in range(7)] == [True, False, False, True, False, False, True]
    start = jax.tree.map(np.asarray, nnx.state(tiny_model, nnx.Param))
    trainer.update_ema(tiny_model)  # count 0 -> 1: average of start with itself
    _perturb(tiny_model)  # every parameter + 1
    trainer.update_ema(tiny_model)  # decay 2/11: ema = start + 9/11
    assert int(trainer.ema_state.count) == 2
    ema_model = trainer.ema_model(tiny_model)
    ema_params = nnx.state(ema_model, nnx.Param)
    jax.tree.map(
        lambda e, s: np.testing.assert_allclose(e, s + 9 / 11, rtol=1e-5, atol=1e-6),
        ema_params,
        start,
    )
    # the live model keeps its own weights, and the copy samples
    jax.tree.map(
        lambda p, s: np.testing.assert_allclose(p, s + 1.0, rtol=1e-6),
        nnx.state(tiny_model, nnx.Param),
        start,
    )
    assert ema_model.sample(2, scheduler="ddim", steps=2).shape == (2, 8, 8, 1)


def test_ema_state_checkpoints_with_orbax(tiny_model, tmp_path):
    ocp = pytest.importorskip("orbax.checkpoint")
    trainer = DiffusionTrainer(create_noise_schedule(tiny_model.config.noise_schedule))
    trainer.update_ema(tiny_model)
    trainer.update_ema(tiny_model)
    with ocp.StandardCheckpointer() as ckpt:
        ckpt.save(tmp_path / "ema", nnx.to_pure_dict(trainer.ema_state.params))
    with ocp.StandardCheckpointer() as ckpt:
        restored = ckpt.restore(tmp_path / "ema")
    fresh = DiffusionTrainer(trainer.noise_schedule)
    params = nnx.state(tiny_model, nnx.Param)
    nnx.replace_by_pure_dict(params, restored)
    fresh.ema_state = (params, trainer.ema_state.count)
    jax.tree.map(
        np.testing.assert_array_equal,
        nnx.state(fresh.ema_model(tiny_model), nnx.Param),
        trainer.ema_state.params,
    )
