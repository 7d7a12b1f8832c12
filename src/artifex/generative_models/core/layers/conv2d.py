r"""2-D convolution whose kernel gradient is computed as matrix products.

XLA's CPU backend runs the forward convolution and the input gradient through fast
library kernels, but emits the kernel gradient (a convolution that contracts over batch
and space) as generic loops: in a UNet training step that one op took ~90% of the
convolution time. Written per kernel tap instead,

.. math::

    \frac{\partial L}{\partial W_{ij}} = \sum_{b,h,w} x^{\mathrm{pad}}_{b,\,h + i,\,w + j}
    \otimes \frac{\partial L}{\partial y_{b,h,w}},

each tap is one ``(C_in, B H W) @ (B H W, C_out)`` matrix product, which the backend runs
at full speed (stride 1 only; strided convolutions keep XLA's gradient, fast for them).
The forward pass and the input gradient stay XLA's own; the values are the same up to
float summation order.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from artifex.generative_models.core.layers.initializers import lecun_normal, zeros

_NHWC = ("NHWC", "HWIO", "NHWC")


def _conv(x: jax.Array, kernel: jax.Array, strides, padding) -> jax.Array:
    return lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=_NHWC)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _conv_fast_grad(x, kernel, strides, padding):
    return _conv(x, kernel, strides, padding)


def _forward(x, kernel, strides, padding):
    return _conv(x, kernel, strides, padding), (x, kernel)


def kernel_gradient(x, grad_out, kernel_shape, padding) -> jax.Array:
    """``dL/dW`` of a stride-1 NHWC/HWIO convolution, one matrix product per kernel tap.

    The taps run in a ``lax.scan`` so that only one shifted window of ``x`` exists at a
    time; unrolled, XLA may materialise every window of every layer at once.
    """
    kh, kw, cin, cout = kernel_shape
    (pt, pb), (pl, pr) = padding
    xp = jnp.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
    batch, ho, wo, _ = grad_out.shape
    g = grad_out.reshape(-1, cout)

    def tap(carry, offset):
        window = lax.dynamic_slice(xp, (0, offset[0], offset[1], 0), (batch, ho, wo, cin))
        return carry, window.reshape(-1, cin).T @ g

    offsets = jnp.array([(i, j) for i in range(kh) for j in range(kw)], dtype=jnp.int32)
    _, taps = lax.scan(tap, None, offsets)
    return taps.reshape(kernel_shape)


def _backward(strides, padding, residuals, grad_out):
    x, kernel = residuals
    _, input_vjp = jax.vjp(lambda x_: _conv(x_, kernel, strides, padding), x)
    (grad_x,) = input_vjp(grad_out)
    return grad_x, kernel_gradient(x, grad_out, kernel.shape, padding)


_conv_fast_grad.defvjp(_forward, _backward)


def conv2d(
    inputs: jax.Array,
    kernel: jax.Array,
    window_strides: Sequence[int],
    padding: str | Sequence[tuple[int, int]],
    *,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count: int = 1,
    precision=None,
    **unused,
) -> jax.Array:
    """Drop-in for ``lax.conv_general_dilated`` as ``nnx.Conv`` calls it (2-D, NHWC/HWIO).

    Only plain stride-1 convolutions are supported: no dilation, no feature groups.
    """
    del dimension_numbers, precision, unused  # nnx.Conv's NHWC/HWIO numbers for 2-D inputs
    strides = tuple(int(s) for s in window_strides)
    if (
        inputs.ndim != 4
        or feature_group_count != 1
        or strides != (1, 1)
        or any(d not in (None, 1) and tuple(d) != (1, 1) for d in (lhs_dilation, rhs_dilation))
    ):
        raise ValueError(
            "conv2d supports 2-D NHWC convolutions with stride 1, no dilation, no groups"
        )
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(inputs.shape[1:3], kernel.shape[:2], strides, padding)
    padding = tuple((int(lo), int(hi)) for lo, hi in padding)
    return _conv_fast_grad(inputs, kernel, strides, padding)


def conv(
    in_features: int,
    out_features: int,
    kernel_size: tuple[int, int],
    *,
    strides: int = 1,
    padding: str | Sequence[tuple[int, int]] = "SAME",
    rngs: nnx.Rngs,
) -> nnx.Conv:
    """``nnx.Conv`` with host-side initialisation and, at stride 1, :func:`conv2d`.

    Strided convolutions keep XLA's own gradient, which is already fast for them.
    """
    return nnx.Conv(
        in_features,
        out_features,
        kernel_size,
        strides=strides,
        padding=padding,
        kernel_init=lecun_normal,
        bias_init=zeros,
        conv_general_dilated=conv2d if strides == 1 else lax.conv_general_dilated,
        rngs=rngs,
    )
