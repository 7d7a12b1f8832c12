"""Single-head spatial self-attention over all pixels of a feature map."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.core.layers.dense import linear
from artifex.generative_models.core.layers.gradient_barrier import gradient_computed_once
from artifex.generative_models.core.layers.normalization import group_norm


class AttentionBlock(nnx.Module):
    """``x + proj(softmax(q k^T / sqrt(C)) v)`` with ``q, k, v`` from the normalised pixels."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.norm = group_norm(channels, rngs=rngs)
        self.qkv = linear(channels, 3 * channels, rngs=rngs)
        self.proj = linear(channels, channels, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        b, h, w, c = x.shape
        tokens = self.norm(x).reshape(b, h * w, 1, c)  # (batch, length, heads, channels)
        q, k, v = jnp.split(self.qkv(tokens), 3, axis=-1)
        out = jax.nn.dot_product_attention(q, k, v)
        # computed once: XLA:CPU fused the incoming gradient into all three of its consumers
        return gradient_computed_once(x + self.proj(out).reshape(b, h, w, c))
