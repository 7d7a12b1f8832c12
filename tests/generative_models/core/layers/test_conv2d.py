"""conv: an nnx.Conv with host-side initialisation that computes XLA's convolution."""

from __future__ import annotations

import jax
import numpy as np
from flax import nnx
from jax import lax

from artifex.generative_models.core.layers.conv2d import conv


def test_layer_is_xla_convolution_with_bias() -> None:
    layer = conv(3, 5, (3, 3), strides=2, rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
    expected = lax.conv_general_dilated(
        x, layer.kernel[...], (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )
    np.testing.assert_allclose(layer(x), expected + layer.bias[...], rtol=1e-5, atol=1e-5)
    assert layer(x).shape == (2, 4, 4, 5)


def test_initialisation_is_lecun_normal_and_zero_bias() -> None:
    layer = conv(64, 32, (3, 3), rngs=nnx.Rngs(0))
    kernel = np.asarray(layer.kernel[...])
    assert np.all(np.asarray(layer.bias[...]) == 0)
    np.testing.assert_allclose(kernel.std(), 1 / np.sqrt(64 * 9), rtol=0.05)
