"""Convolution layers of the networks: ``nnx.Conv`` with host-side initialisation.

The forward pass is XLA's own convolution on every backend. On the CPU the derivatives are
laid out for XLA:CPU's fast kernels and the kernel gradient is summed over batch chunks
(:mod:`~artifex.generative_models.core.layers.conv_gradients`); other backends keep XLA's.
``benchmarks/conv_kernel_gradient.py`` times both forms (figures in ``docs/benchmarks.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

from flax import nnx

from artifex.generative_models.core.layers.conv_gradients import conv_general_dilated
from artifex.generative_models.core.layers.initializers import lecun_normal, zeros


def conv(
    in_features: int,
    out_features: int,
    kernel_size: tuple[int, int],
    *,
    strides: int = 1,
    padding: str | Sequence[tuple[int, int]] = "SAME",
    rngs: nnx.Rngs,
) -> nnx.Conv:
    """``nnx.Conv`` (NHWC/HWIO) whose weights are drawn on the host (no per-shape compile)."""
    return nnx.Conv(
        in_features,
        out_features,
        kernel_size,
        strides=strides,
        padding=padding,
        kernel_init=lecun_normal,
        bias_init=zeros,
        conv_general_dilated=conv_general_dilated,
        rngs=rngs,
    )
