"""AttentionBlock: the closed form of single-head attention, and its derivatives."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from artifex.generative_models.core.layers import attention as at


def _reference(block: at.AttentionBlock, x: jax.Array) -> jax.Array:
    """``x + proj(softmax(q k^T / sqrt(C)) v)`` written out, without the block's helpers."""
    b, h, w, c = x.shape
    tokens = block.norm(x).reshape(b, h * w, c)
    q, k, v = jnp.split(tokens @ block.qkv.kernel[...] + block.qkv.bias[...], 3, axis=-1)
    weights = jax.nn.softmax(q @ jnp.swapaxes(k, 1, 2) / np.sqrt(c), axis=-1)
    out = (weights @ v) @ block.proj.kernel[...] + block.proj.bias[...]
    return x + out.reshape(b, h, w, c)


def _block_and_input():
    block = at.AttentionBlock(8, rngs=nnx.Rngs(0))
    # non-zero projection, so the attention path contributes to the value and gradient
    block.proj.kernel[...] = jax.random.normal(jax.random.key(1), block.proj.kernel.shape) / 3
    x = jax.random.normal(jax.random.key(2), (2, 4, 4, 8))
    return block, x


def test_value_and_gradient_match_the_closed_form() -> None:
    block, x = _block_and_input()
    weights = jax.random.normal(jax.random.key(3), x.shape)

    def loss(f):
        return lambda x: jnp.sum(jnp.tanh(f(x)) * weights)

    np.testing.assert_allclose(block(x), _reference(block, x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        jax.jit(jax.grad(loss(block)))(x),
        jax.jit(jax.grad(loss(lambda x: _reference(block, x))))(x),
        rtol=1e-4,
        atol=1e-5,
    )


def test_forward_mode_works() -> None:
    block, x = _block_and_input()
    tangent = jnp.ones_like(x)
    _, new = jax.jvp(block, (x,), (tangent,))
    _, ref = jax.jvp(lambda x: _reference(block, x), (x,), (tangent,))
    np.testing.assert_allclose(new, ref, rtol=1e-4, atol=1e-5)
