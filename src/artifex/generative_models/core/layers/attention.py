"""Single-head spatial self-attention over all pixels of a feature map."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.core.layers.dense import linear
from artifex.generative_models.core.layers.normalization import group_norm


@jax.custom_jvp
def _gradient_materialised(x: jax.Array) -> jax.Array:
    """The identity; reverse mode writes the incoming gradient out once.

    The gradient arriving at an attention block is a long elementwise chain (the residual
    stream's sum over the blocks above it). XLA:CPU fused that chain into each of its three
    consumers (the projection's weight and input gradients and the residual path), computing
    it three times, once through a transposed copy: ~5 % of the tutorial model's step. An
    optimisation barrier on the tangent makes the transposed program compute it once.
    """
    return x


@_gradient_materialised.defjvp
def _gradient_materialised_jvp(primals, tangents):
    return primals[0], jax.lax.optimization_barrier(tangents[0])


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
        return _gradient_materialised(x + self.proj(out).reshape(b, h, w, c))
