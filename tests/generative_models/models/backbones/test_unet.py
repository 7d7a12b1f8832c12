"""Every backbone field changes the network (parameter count or output)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artifex.generative_models.core.configuration.backbone_config import UNetBackboneConfig
from artifex.generative_models.models.backbones.unet import UNet

BASE = UNetBackboneConfig(
    hidden_dims=(8, 16),
    activation="silu",
    time_embedding_dim=8,
    attention_resolutions=(),
    num_res_blocks=1,
)
X = jax.random.normal(jax.random.key(1), (2, 8, 8, 1))
T = jnp.array([3, 40])


def build(**changes) -> UNet:
    return UNet(dataclasses.replace(BASE, **changes), image_size=8, rngs=nnx.Rngs(0))


def n_params(model: UNet) -> int:
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def test_output_shape_and_finite():
    y = build()(X, T)
    assert y.shape == X.shape
    assert np.isfinite(np.asarray(y)).all()


@pytest.mark.parametrize(
    "changes",
    [
        {"hidden_dims": (8, 24)},
        {"hidden_dims": (8, 16, 16)},
        {"num_res_blocks": 2},
        {"time_embedding_dim": 16},
        {"attention_resolutions": (8,)},
        {"attention_resolutions": (4,)},
    ],
)
def test_structural_fields_change_parameter_count(changes):
    assert n_params(build(**changes)) != n_params(build())


def test_attention_at_each_listed_size():
    both = n_params(build(attention_resolutions=(8, 4)))
    top, bottom = (
        n_params(build(attention_resolutions=(8,))),
        n_params(build(attention_resolutions=(4,))),
    )
    assert both - n_params(build()) == (top - n_params(build())) + (bottom - n_params(build()))


@pytest.mark.parametrize("activation", ["gelu", "relu", "elu", "leaky_relu", "tanh"])
def test_activation_changes_output(activation):
    base = build()(X, T)
    other = build(activation=activation)(X, T)  # same init key, same params
    assert n_params(build(activation=activation)) == n_params(build())
    assert not np.allclose(base, other, atol=1e-4)


def test_channels():
    model = build(in_channels=3, out_channels=2)
    y = model(jnp.ones((2, 8, 8, 3)), T)
    assert y.shape == (2, 8, 8, 2)


def test_channel_mult_that_agrees_is_the_same_network():
    assert n_params(build(channel_mult=(1, 2))) == n_params(build())
    with pytest.raises(ValueError, match="channel_mult"):
        build(channel_mult=(1, 3))


def test_dropout_rate_acts_only_in_training():
    model = build(dropout_rate=0.5)
    plain = build()
    key = jax.random.key(7)
    np.testing.assert_allclose(model(X, T), plain(X, T), atol=1e-6)  # deterministic w/o key
    a, b = model(X, T, dropout_key=key), model(X, T, dropout_key=key)
    np.testing.assert_array_equal(a, b)  # same key, same mask
    assert not np.allclose(a, model(X, T), atol=1e-4)
    assert not np.allclose(a, model(X, T, dropout_key=jax.random.key(8)), atol=1e-4)
    np.testing.assert_allclose(plain(X, T, dropout_key=key), plain(X, T), atol=1e-6)


def test_timestep_changes_output():
    model = build()
    assert not np.allclose(model(X, T), model(X, T + 5), atol=1e-5)
