"""Halving and doubling the spatial size of a feature map."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from artifex.generative_models.core.layers.conv2d import conv
from artifex.generative_models.core.layers.conv_gradients import conv_general_dilated

_NHWC = ("NHWC", "HWIO", "NHWC")

#: ``_TAPS[p, a, d]``: 1 where row tap ``d`` of a 3x3 kernel on the doubled map, at output
#: row parity ``p``, reads row ``i - 1 + p + a`` of the original map (``a`` in {0, 1}).
_TAPS = np.array([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]], np.float32)


def _doubled_then_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """``conv3x3(repeat2(x))`` as written: the form differentiated (see below)."""
    doubled = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    return conv_general_dilated(doubled, kernel, (1, 1), ((1, 1), (1, 1)), dimension_numbers=_NHWC)


@jax.custom_jvp
def doubled_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    r"""A 3x3 convolution (no bias, zero padding) of ``x`` doubled by nearest neighbours.

    Computed without the doubled map: output pixel :math:`(2i+p, 2j+q)` reads only a 2x2
    window of ``x``, through the kernel's taps summed onto it,
    :math:`K_{pq}[a,b] = \sum_{d,e} T_{p,a,d}\,T_{q,b,e}\,W[d,e]` (``_TAPS``). The four
    parities are one 2x2 convolution of ``x`` padded by one pixel, with ``4 * C_out``
    outputs, then interleaved: 16 instead of 36 multiply-adds per output pixel and channel
    pair. Derivatives are those of the direct form: XLA:CPU transposes the 2x2 form 10-20x
    slower than it runs it, so the speed-up is the forward pass (sampling, and the forward
    half of training). The folded form is chosen on the CPU, where it was measured faster
    (``docs/benchmarks.md``); other backends run the direct form.
    """
    return jax.lax.platform_dependent(x, kernel, cpu=_folded_conv, default=_doubled_then_conv)


def _folded_conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """:func:`doubled_conv` as one 2x2 convolution with ``4 * C_out`` outputs, interleaved."""
    b, h, w, _ = x.shape
    c_in, c_out = kernel.shape[2:]
    taps = jnp.asarray(_TAPS, kernel.dtype)
    folded = jnp.einsum("pad,qbe,deio->abipqo", taps, taps, kernel)  # parity-major outputs
    y = jax.lax.conv_general_dilated(
        x,
        folded.reshape(2, 2, c_in, 4 * c_out),
        (1, 1),
        ((1, 1), (1, 1)),
        dimension_numbers=_NHWC,
    ).reshape(b, h + 1, w + 1, 2, 2, c_out)
    # parity (p, q) of output pixel (i, j) is position (i + p, j + q) of the 2x2 convolution
    rows = jnp.stack([y[:, p : p + h, :, p] for p in range(2)], axis=2)
    both = jnp.stack([rows[:, :, :, q : q + w, q] for q in range(2)], axis=4)
    return both.reshape(b, 2 * h, 2 * w, c_out)


@doubled_conv.defjvp
def _doubled_conv_jvp(primals, tangents):
    # The direct form's primal is unused here (XLA removes it); only its tangent is kept.
    return doubled_conv(*primals), jax.jvp(_doubled_then_conv, primals, tangents)[1]


class Downsample(nnx.Module):
    """3x3 convolution with stride 2 (padding 1): ``(H, W) -> (H/2, W/2)``."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.conv = conv(channels, channels, (3, 3), strides=2, padding=((1, 1), (1, 1)), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.conv(x)


class Upsample(nnx.Module):
    """Nearest-neighbour doubling then a 3x3 convolution (no checkerboard artefacts).

    The pair is computed as :func:`doubled_conv`, without materialising the doubled map.
    """

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.conv = conv(channels, channels, (3, 3), rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        return doubled_conv(x, self.conv.kernel[...]) + self.conv.bias[...]
