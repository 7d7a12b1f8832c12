"""conv2d: same values and gradients as XLA's convolution."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from artifex.generative_models.core.layers.conv2d import conv, conv2d


@pytest.mark.parametrize(
    ("kernel", "strides", "padding"),
    [
        ((3, 3), (1, 1), "SAME"),
        ((1, 1), (1, 1), "SAME"),
        ((3, 3), (1, 1), ((2, 0), (1, 1))),
        ((3, 2), (1, 1), "VALID"),
    ],
)
def test_matches_xla_values_and_gradients(kernel, strides, padding):
    kx, kw, kg = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (3, 8, 10, 5))
    w = jax.random.normal(kw, (*kernel, 5, 7))

    def reference(x, w):
        return lax.conv_general_dilated(
            x, w, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    def ours(x, w):
        return conv2d(x, w, strides, padding)

    y_ref, y = reference(x, w), ours(x, w)
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-5)
    g = jax.random.normal(kg, y.shape)
    grads_ref = jax.grad(lambda x, w: jnp.sum(reference(x, w) * g), argnums=(0, 1))(x, w)
    grads = jax.jit(jax.grad(lambda x, w: jnp.sum(ours(x, w) * g), argnums=(0, 1)))(x, w)
    for a, b in zip(grads, grads_ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_rejects_what_it_does_not_implement():
    x, w = jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 2))
    with pytest.raises(ValueError, match="stride 1, no dilation"):
        conv2d(x, w, (1, 1), "SAME", rhs_dilation=(2, 2))
    with pytest.raises(ValueError, match="stride 1"):
        conv2d(x, w, (2, 2), "SAME")


def test_layer_uses_it_at_stride_one_only():
    from flax import nnx

    assert conv(2, 3, (3, 3), rngs=nnx.Rngs(0)).conv_general_dilated is conv2d
    assert conv(2, 3, (3, 3), strides=2, rngs=nnx.Rngs(0)).conv_general_dilated is not conv2d
