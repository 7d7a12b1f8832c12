"""TrainState: the in-step EMA equals the seed loop's host-side EMA; one object, own buffers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artifex.generative_models.training.checkpointing import flat_arrays
from artifex.generative_models.training.state import TrainState, copy_module


def test_in_step_ema_matches_the_seed_loop(micro_model, make_optimizer, trainer) -> None:
    """Seven steps with ema_update_every=2: the state's EMA copy equals ema_init/ema_update
    called on the host after steps 0, 2, 4 and 6, as a hand-written loop does."""
    images = jax.random.uniform(jax.random.key(5), (8, 8, 8, 1), minval=-1.0, maxval=1.0)
    seed_model = micro_model(0)
    seed_optimizer = make_optimizer(seed_model)
    seed_step = nnx.jit(trainer.train_step)
    for step in range(7):
        loss, metrics = seed_step(
            seed_model, seed_optimizer, {"image": images}, jax.random.key(step)
        )
        if trainer.ema_due(step):
            trainer.update_ema(seed_model)

    model = micro_model(0)
    state = trainer.init_state(model, make_optimizer(model))
    state_step = nnx.jit(trainer.train_step)
    for step in range(7):
        metrics = state_step(state, {"image": images}, jax.random.key(step))
    assert set(metrics) == {"loss", "grad_norm"}
    assert int(state.step[...]) == 7 and int(state.ema_count[...]) == 4
    assert int(trainer.ema_state.count) == 4
    params = flat_arrays(nnx.state(state.model, nnx.Param))
    for path, value in flat_arrays(nnx.state(seed_model, nnx.Param)).items():
        np.testing.assert_array_equal(params[path], value, err_msg=path)
    ema = flat_arrays(nnx.state(state.ema["model"], nnx.Param))
    for path, value in flat_arrays(trainer.ema_state.params).items():
        np.testing.assert_allclose(ema[path], value, rtol=1e-6, atol=1e-7, err_msg=path)
    assert state.sample_model() is state.ema["model"]


def test_sample_model_is_the_model_before_the_first_ema_update(micro_model, make_optimizer):
    model = micro_model(0)
    state = TrainState({"model": model}, {"model": make_optimizer(model)}, ema=("model",))
    assert state.sample_model() is model and state.model is model
    leaves = jax.tree.leaves(nnx.state(state))  # one tree: models, optimizer, EMA, counters
    buffers = [leaf.unsafe_buffer_pointer() for leaf in leaves if isinstance(leaf, jax.Array)]
    assert len(buffers) == len(set(buffers))  # nothing shared: every buffer can be donated


def test_copy_module_owns_its_buffers(micro_model) -> None:
    model = micro_model(0)
    copy = copy_module(model)
    kernel = model.backbone.conv_in.kernel
    assert copy.backbone.conv_in.kernel[...].unsafe_buffer_pointer() != (
        kernel[...].unsafe_buffer_pointer()
    )
    kernel[...] = jnp.zeros_like(kernel[...])
    assert float(jnp.abs(copy.backbone.conv_in.kernel[...]).sum()) > 0


def test_state_names_are_checked(micro_model, make_optimizer) -> None:
    model = micro_model(0)
    with pytest.raises(ValueError, match=r"optimizers \['generator'\] name no model"):
        TrainState({"model": model}, {"generator": make_optimizer(model)})
    with pytest.raises(ValueError, match=r"ema names \['g'\] are not models"):
        TrainState({"model": model}, {}, ema=("g",))
    with pytest.raises(AttributeError, match="index state.models"):
        _ = TrainState({"generator": model}, {}).model


def test_primary_model_is_what_samples(micro_model) -> None:
    """The only model, or "model", is primary by default; a GAN names its generator."""
    assert TrainState({"generator": micro_model(0)}, {}).primary == "generator"
    generator, discriminator = micro_model(0), micro_model(1)
    state = TrainState(
        {"generator": generator, "discriminator": discriminator},
        {},
        ema=("generator",),
        primary="generator",
    )
    assert state.sample_model() is generator  # no EMA update yet: the model itself
    state.ema_count[...] = 1
    assert state.sample_model() is state.ema["generator"]
    with pytest.raises(ValueError, match=r"primary='critic' is not a model"):
        TrainState({"generator": generator, "discriminator": discriminator}, {}, primary="critic")
    with pytest.raises(ValueError, match=r"primary='model' is not a model"):
        TrainState({"generator": generator, "discriminator": discriminator}, {})
