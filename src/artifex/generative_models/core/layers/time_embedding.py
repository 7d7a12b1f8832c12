"""Timestep embedding: sinusoidal features followed by a small MLP."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.core.layers.dense import linear


def sinusoidal_embedding(t: jax.Array, dim: int, max_period: float = 10_000.0) -> jax.Array:
    """Transformer-style features of integer timesteps ``t`` (shape ``(B,)``) -> ``(B, dim)``.

    Half the features are ``sin(t * w_k)``, half ``cos(t * w_k)``, with frequencies
    ``w_k = max_period ** (-k / (dim / 2))`` spanning one to ``max_period`` steps.
    """
    half = dim // 2
    freqs = jnp.exp(-jnp.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
    args = t.astype(jnp.float32)[:, None] * freqs[None, :]
    return jnp.concatenate([jnp.sin(args), jnp.cos(args)], axis=-1)


class TimestepEmbedding(nnx.Module):
    """``sinusoidal(t) -> Linear -> act -> Linear``, all ``dim`` wide."""

    def __init__(self, dim: int, activation: Callable, *, rngs: nnx.Rngs):
        self.dim = dim
        self.activation = activation
        self.linear1 = linear(dim, dim, rngs=rngs)
        self.linear2 = linear(dim, dim, rngs=rngs)

    def __call__(self, t: jax.Array) -> jax.Array:
        h = sinusoidal_embedding(t, self.dim)
        return self.linear2(self.activation(self.linear1(h)))
