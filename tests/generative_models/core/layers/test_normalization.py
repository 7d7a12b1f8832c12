"""GroupNorm against the closed form, computed independently in float64 numpy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artifex.generative_models.core.layers.normalization import GroupNorm, group_norm


def reference(x, groups, scale, bias, eps):
    """Two-pass mean and variance per example and group, in float64."""
    x = np.asarray(x, np.float64)
    n, c = x.shape[0], x.shape[-1]
    grouped = x.reshape(n, -1, groups, c // groups)
    mean = grouped.mean(axis=(1, 3), keepdims=True)
    var = ((grouped - mean) ** 2).mean(axis=(1, 3), keepdims=True)
    normed = ((grouped - mean) / np.sqrt(var + eps)).reshape(x.shape)
    return normed * np.asarray(scale, np.float64) + np.asarray(bias, np.float64)


@pytest.mark.parametrize(
    ("shape", "groups"), [((3, 4, 5, 8), 4), ((2, 6, 6, 12), 3), ((2, 7, 6), 2)]
)
def test_matches_closed_form_with_learned_scale_and_bias(shape, groups):
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    # an offset mean and uneven spread per channel, so centring and scaling both matter
    x = 3.0 + jax.random.normal(k1, shape) * jnp.linspace(0.5, 2.0, shape[-1])
    norm = GroupNorm(shape[-1], groups, epsilon=1e-5, rngs=nnx.Rngs(0))
    norm.scale[...] = jax.random.normal(k2, (shape[-1],))
    norm.bias[...] = jax.random.normal(k3, (shape[-1],))
    expected = reference(x, groups, norm.scale[...], norm.bias[...], 1e-5)
    np.testing.assert_allclose(np.asarray(norm(x)), expected, rtol=1e-4, atol=1e-4)


def test_gradient_matches_flax_group_norm():
    x = jax.random.normal(jax.random.key(1), (2, 4, 4, 16)) + 1.0
    ours = GroupNorm(16, 4, epsilon=1e-5, rngs=nnx.Rngs(0))
    theirs = nnx.GroupNorm(16, num_groups=4, epsilon=1e-5, rngs=nnx.Rngs(0))

    def loss(module, x):
        return jnp.sum(jnp.sin(module(x)) * jnp.arange(16.0))

    gx_ours = jax.grad(loss, argnums=1)(ours, x)
    gx_theirs = jax.grad(loss, argnums=1)(theirs, x)
    np.testing.assert_allclose(gx_ours, gx_theirs, rtol=1e-4, atol=1e-5)
    gp_ours = nnx.grad(loss)(ours, x)
    gp_theirs = nnx.grad(loss)(theirs, x)
    np.testing.assert_allclose(gp_ours.scale[...], gp_theirs.scale[...], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gp_ours.bias[...], gp_theirs.bias[...], rtol=1e-4, atol=1e-5)


def test_bfloat16_input_keeps_its_dtype_with_float32_statistics():
    x = (100.0 + jax.random.normal(jax.random.key(2), (2, 8, 8, 32))).astype(jnp.bfloat16)
    y = group_norm(32, rngs=nnx.Rngs(0))(x)
    assert y.dtype == jnp.bfloat16
    # a large mean cancels in float32 statistics; bfloat16 sums would lose the unit spread
    expected = reference(np.asarray(x, np.float32), 32, np.ones(32), np.zeros(32), 1e-5)
    np.testing.assert_allclose(np.asarray(y, np.float32), expected, atol=0.05)


def test_group_count_is_the_largest_divisor_up_to_32():
    assert group_norm(64, rngs=nnx.Rngs(0)).num_groups == 32
    assert group_norm(48, rngs=nnx.Rngs(0)).num_groups == 16
    assert group_norm(6, rngs=nnx.Rngs(0)).num_groups == 2


def test_rejects_groups_that_do_not_divide_channels():
    with pytest.raises(ValueError, match="num_groups=5 must be positive and divide channels=16"):
        GroupNorm(16, 5, rngs=nnx.Rngs(0))
