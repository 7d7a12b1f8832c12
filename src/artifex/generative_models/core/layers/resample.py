"""Halving and doubling the spatial size of a feature map."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.core.layers.conv2d import conv


class Downsample(nnx.Module):
    """3x3 convolution with stride 2 (padding 1): ``(H, W) -> (H/2, W/2)``."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.conv = conv(channels, channels, (3, 3), strides=2, padding=((1, 1), (1, 1)), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.conv(x)


class Upsample(nnx.Module):
    """Nearest-neighbour doubling then a 3x3 convolution (no checkerboard artefacts)."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.conv = conv(channels, channels, (3, 3), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
        return self.conv(x)
