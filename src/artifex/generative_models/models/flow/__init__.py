"""Normalizing flows: a multi-scale RealNVP/Glow model and its invertible layers.

- :class:`~artifex.generative_models.models.flow.glow.FlowModel` - the multi-scale flow.
- :mod:`~artifex.generative_models.models.flow.actnorm` - per-channel affine, data init.
- :mod:`~artifex.generative_models.models.flow.invertible_conv` - LU 1x1 conv, reversal.
- :mod:`~artifex.generative_models.models.flow.coupling` - affine coupling.
- :mod:`~artifex.generative_models.models.flow.squeeze` - space-to-depth 2x2.
- :mod:`~artifex.generative_models.models.flow.split` - factor-out with a learned prior, and
  the learned prior of the last scale.
- :mod:`~artifex.generative_models.models.flow.logit` - the fixed logit first layer.
- :mod:`~artifex.generative_models.models.flow.dequantization` - uniform dequantisation,
  bits/dim.
"""

from artifex.generative_models.models.flow.actnorm import ActNorm
from artifex.generative_models.models.flow.coupling import AffineCoupling
from artifex.generative_models.models.flow.dequantization import (
    bits_per_dim,
    dequantize,
    image_levels,
    to_images,
)
from artifex.generative_models.models.flow.glow import FlowModel, FlowStep
from artifex.generative_models.models.flow.invertible_conv import (
    ChannelReverse,
    InvertibleConv1x1,
)
from artifex.generative_models.models.flow.logit import LogitTransform
from artifex.generative_models.models.flow.split import LearnedTopPrior, Split
from artifex.generative_models.models.flow.squeeze import squeeze, unsqueeze

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "ChannelReverse",
    "FlowModel",
    "FlowStep",
    "InvertibleConv1x1",
    "LearnedTopPrior",
    "LogitTransform",
    "Split",
    "bits_per_dim",
    "dequantize",
    "image_levels",
    "squeeze",
    "to_images",
    "unsqueeze",
]
