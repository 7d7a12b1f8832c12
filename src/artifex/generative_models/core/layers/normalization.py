"""Group normalisation sized for any channel count."""

from __future__ import annotations

import math

from flax import nnx

from artifex.generative_models.core.layers.initializers import ones, zeros


def group_norm(channels: int, *, rngs: nnx.Rngs) -> nnx.GroupNorm:
    """GroupNorm with 32 groups, or the largest count dividing ``channels`` below that."""
    return nnx.GroupNorm(
        channels,
        num_groups=math.gcd(32, channels),
        epsilon=1e-5,
        scale_init=ones,
        bias_init=zeros,
        rngs=rngs,
    )
