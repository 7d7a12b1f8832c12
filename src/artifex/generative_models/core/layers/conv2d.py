"""Convolution layers of the networks: ``nnx.Conv`` with host-side initialisation.

Forward pass and both gradients are XLA's own convolution on every backend. An earlier version
computed the kernel gradient on the CPU as one matrix product per kernel tap, which was 3-6x
faster per FLOP with jaxlib 0.10.2; with jaxlib 0.11.1 XLA's own gradient is faster on every
3x3 convolution of the tutorial UNet and the training step is 12-15 % quicker without the
per-tap form, so it was dropped. ``benchmarks/conv_kernel_gradient.py`` keeps the comparison
for other CPUs and versions (figures in ``docs/benchmarks.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

from flax import nnx

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
        rngs=rngs,
    )
