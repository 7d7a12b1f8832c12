"""The identity, whose gradient reverse mode computes once instead of once per consumer."""

from __future__ import annotations

import jax


@jax.custom_jvp
def gradient_computed_once(x: jax.Array) -> jax.Array:
    """``x`` unchanged; in reverse mode its incoming gradient is written out once.

    The gradient arriving at a block's output is often a long elementwise chain (on a
    residual stream, the sum over the blocks above it). XLA:CPU fuses such a chain into each
    of its consumers and so computes it several times; in the tutorial UNet's attention
    blocks three times, once through a transposed copy (~7 % of its training step; on the
    residual blocks the same barrier measured no gain). An optimisation barrier on the
    tangent makes the transposed program materialise it instead, on the CPU only (other
    backends keep XLA's fusion). Forward mode is unaffected.
    """
    return x


@gradient_computed_once.defjvp
def _gradient_computed_once_jvp(primals, tangents):
    return primals[0], jax.lax.platform_dependent(
        tangents[0], cpu=jax.lax.optimization_barrier, default=lambda t: t
    )
