r"""Group normalisation sized for any channel count.

For an input :math:`x` of shape ``(N, ..., C)`` with channels split into :math:`G` groups of
:math:`C/G`, each example and group is normalised over its positions and channels,

.. math::

    y = \frac{x - \mu_{n,g}}{\sqrt{\sigma^2_{n,g} + \epsilon}}\,\gamma_c + \beta_c ,

computed as one affine map per example and channel, :math:`y = a_{n,c}\,x + d_{n,c}` with
:math:`a = \gamma / \sqrt{\sigma^2 + \epsilon}` and :math:`d = \beta - a\mu`. The statistics
come from per-channel sums of :math:`x` and :math:`x^2` (reductions along the contiguous
channel axis), then per group, always in float32, so a bfloat16 network normalises with
float32 statistics.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.core.layers.initializers import ones, zeros


class GroupNorm(nnx.Module):
    """Group normalisation with a learned per-channel scale and bias (module docstring).

    Args:
      channels: size of the last (channel) axis.
      num_groups: number of channel groups; must divide ``channels``.
      epsilon: added to the variance.
      rngs: parameter keys (one draw each for ``scale`` and ``bias``, as ``nnx.GroupNorm``).
    """

    def __init__(self, channels: int, num_groups: int, *, epsilon: float = 1e-5, rngs: nnx.Rngs):
        if num_groups <= 0 or channels % num_groups:
            raise ValueError(
                f"GroupNorm: num_groups={num_groups} must be positive and divide "
                f"channels={channels}; use a divisor of {channels}"
            )
        self.num_groups = num_groups
        self.epsilon = epsilon
        self.scale = nnx.Param(ones(rngs.params(), (channels,), jnp.float32))
        self.bias = nnx.Param(zeros(rngs.params(), (channels,), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        n, c, g = x.shape[0], x.shape[-1], self.num_groups
        axes = tuple(range(1, x.ndim - 1))
        wide = x.astype(jnp.float32)
        count = math.prod(x.shape[1:-1]) * (c // g)
        sums = jnp.sum(wide, axis=axes).reshape(n, g, c // g).sum(-1)
        squares = jnp.sum(wide * wide, axis=axes).reshape(n, g, c // g).sum(-1)
        mean = sums / count
        variance = jnp.maximum(squares / count - mean * mean, 0.0)
        inverse = jnp.repeat(jax.lax.rsqrt(variance + self.epsilon), c // g, axis=1)
        a = inverse * self.scale[...].astype(jnp.float32)
        d = self.bias[...].astype(jnp.float32) - jnp.repeat(mean, c // g, axis=1) * a
        shape = (n,) + (1,) * len(axes) + (c,)
        return (wide * a.reshape(shape) + d.reshape(shape)).astype(x.dtype)


def group_norm(channels: int, *, rngs: nnx.Rngs) -> GroupNorm:
    """GroupNorm with 32 groups, or the largest count dividing ``channels`` below that."""
    return GroupNorm(channels, math.gcd(32, channels), epsilon=1e-5, rngs=rngs)
