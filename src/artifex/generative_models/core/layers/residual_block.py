"""Residual block conditioned on the timestep embedding (Ho et al. 2020)."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.core.layers.conv2d import conv
from artifex.generative_models.core.layers.dense import linear
from artifex.generative_models.core.layers.normalization import group_norm


class ResidualBlock(nnx.Module):
    """``x + conv(drop(act(norm(h) * (1 + scale) + shift)))``, ``h = conv(act(norm(x)))``.

    ``(scale, shift)`` are projected from the timestep embedding. Conditioning after the
    normalisation (Nichol & Dhariwal 2021) keeps it intact even when a group holds a
    single channel, where a plain added bias would be normalised away.
    A 1x1 convolution matches channels on the skip path when they change.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        time_embedding_dim: int,
        activation: Callable,
        dropout_rate: float,
        *,
        rngs: nnx.Rngs,
    ):
        self.activation = activation
        self.norm1 = group_norm(in_channels, rngs=rngs)
        self.conv1 = conv(in_channels, out_channels, (3, 3), rngs=rngs)
        self.time_proj = linear(time_embedding_dim, 2 * out_channels, rngs=rngs)
        self.norm2 = group_norm(out_channels, rngs=rngs)
        self.dropout = nnx.Dropout(dropout_rate)
        self.conv2 = conv(out_channels, out_channels, (3, 3), rngs=rngs)
        self.skip = (
            conv(in_channels, out_channels, (1, 1), rngs=rngs)
            if in_channels != out_channels
            else None
        )

    def __call__(
        self, x: jax.Array, temb: jax.Array, dropout_key: jax.Array | None = None
    ) -> jax.Array:
        h = self.conv1(self.activation(self.norm1(x)))
        scale, shift = jnp.split(self.time_proj(self.activation(temb))[:, None, None, :], 2, -1)
        h = self.activation(self.norm2(h) * (1.0 + scale) + shift)
        h = self.dropout(h, deterministic=dropout_key is None, rngs=dropout_key)
        h = self.conv2(h)
        return (x if self.skip is None else self.skip(x)) + h
