"""Residual block conditioned on the timestep embedding (Ho et al. 2020)."""

from __future__ import annotations

from collections.abc import Callable

import jax
from flax import nnx

from artifex.generative_models.core.layers.normalization import group_norm


class ResidualBlock(nnx.Module):
    """``x + conv(drop(act(norm(conv(act(norm(x))) + proj(temb)))))``.

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
        self.conv1 = nnx.Conv(in_channels, out_channels, (3, 3), rngs=rngs)
        self.time_proj = nnx.Linear(time_embedding_dim, out_channels, rngs=rngs)
        self.norm2 = group_norm(out_channels, rngs=rngs)
        self.dropout = nnx.Dropout(dropout_rate)
        self.conv2 = nnx.Conv(out_channels, out_channels, (3, 3), rngs=rngs)
        self.skip = (
            nnx.Conv(in_channels, out_channels, (1, 1), rngs=rngs)
            if in_channels != out_channels
            else None
        )

    def __call__(
        self, x: jax.Array, temb: jax.Array, dropout_key: jax.Array | None = None
    ) -> jax.Array:
        h = self.conv1(self.activation(self.norm1(x)))
        h = h + self.time_proj(self.activation(temb))[:, None, None, :]
        h = self.activation(self.norm2(h))
        h = self.dropout(h, deterministic=dropout_key is None, rngs=dropout_key)
        h = self.conv2(h)
        return (x if self.skip is None else self.skip(x)) + h
