"""Upsample's folded 2x2 form against nearest-neighbour doubling then a 3x3 convolution."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from artifex.generative_models.core.layers.resample import (
    Downsample,
    Upsample,
    _folded_conv,
    doubled_conv,
)


def direct(x, kernel):
    """The definition, in float64 numpy: repeat each pixel 2x2, then a zero-padded 3x3 conv."""
    x = np.repeat(np.repeat(np.asarray(x, np.float64), 2, axis=1), 2, axis=2)
    kernel = np.asarray(kernel, np.float64)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h, w = x.shape[1:3]
    out = np.zeros((*x.shape[:3], kernel.shape[-1]))
    for dy in range(3):
        for dx in range(3):
            out += padded[:, dy : dy + h, dx : dx + w] @ kernel[dy, dx]
    return out


@pytest.mark.parametrize("shape", [(2, 4, 4, 3), (1, 3, 5, 2), (2, 1, 1, 4)])
def test_doubled_conv_matches_definition(shape):
    k1, k2 = jax.random.split(jax.random.key(0))
    x = jax.random.normal(k1, shape)
    kernel = jax.random.normal(k2, (3, 3, shape[-1], 5))
    out = doubled_conv(x, kernel)
    assert out.shape == (shape[0], 2 * shape[1], 2 * shape[2], 5)
    np.testing.assert_allclose(np.asarray(out), direct(x, kernel), rtol=1e-5, atol=1e-5)
    # the folded form itself, whichever form this backend's doubled_conv selects
    folded = _folded_conv(x, kernel)
    np.testing.assert_allclose(np.asarray(folded), direct(x, kernel), rtol=1e-5, atol=1e-5)


def reference_layer(module, x):
    """The layer written directly with jax: doubled map, then the module's own conv."""
    return module.conv(jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2))


def test_upsample_values_and_gradients_match_direct_form():
    x = jax.random.normal(jax.random.key(1), (2, 4, 4, 6))
    up = Upsample(6, rngs=nnx.Rngs(0))
    up.conv.bias[...] = jax.random.normal(jax.random.key(2), (6,))
    weights = jnp.arange(6.0) + 1.0

    def loss(fn, module, x):
        return jnp.sum(jnp.sin(fn(module, x)) * weights)

    np.testing.assert_allclose(up(x), reference_layer(up, x), rtol=1e-5, atol=1e-5)
    ours = nnx.grad(lambda m, x: loss(lambda m, x: m(x), m, x), argnums=(0, 1))(up, x)
    theirs = nnx.grad(lambda m, x: loss(reference_layer, m, x), argnums=(0, 1))(up, x)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        ours[0].conv.kernel[...], theirs[0].conv.kernel[...], rtol=1e-4, atol=1e-5
    )
    np.testing.assert_allclose(
        ours[0].conv.bias[...], theirs[0].conv.bias[...], rtol=1e-4, atol=1e-5
    )


def test_doubled_conv_forward_mode_matches_direct_form():
    k1, k2, k3, k4 = jax.random.split(jax.random.key(3), 4)
    x, dx = jax.random.normal(k1, (1, 3, 3, 2)), jax.random.normal(k2, (1, 3, 3, 2))
    kernel, dk = jax.random.normal(k3, (3, 3, 2, 3)), jax.random.normal(k4, (3, 3, 2, 3))
    out, tangent = jax.jvp(doubled_conv, (x, kernel), (dx, dk))
    # bilinear: the tangent is conv(dx, k) + conv(x, dk)
    np.testing.assert_allclose(out, direct(x, kernel), rtol=1e-5, atol=1e-5)
    expected = direct(dx, kernel) + direct(x, dk)
    np.testing.assert_allclose(tangent, expected, rtol=1e-5, atol=1e-5)


def test_bfloat16_upsample_keeps_dtype():
    up = Upsample(4, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(up)
    low = nnx.merge(graphdef, jax.tree.map(lambda p: p.astype(jnp.bfloat16), params))
    x = jax.random.normal(jax.random.key(4), (1, 2, 2, 4))
    out = low(x.astype(jnp.bfloat16))
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out, np.float32), reference_layer(up, x), atol=0.1)


def test_downsample_halves():
    assert Downsample(3, rngs=nnx.Rngs(0))(jnp.ones((1, 8, 6, 3))).shape == (1, 4, 3, 3)
