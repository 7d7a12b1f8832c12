r"""``lax.conv_general_dilated`` whose derivatives are laid out for XLA:CPU's fast kernels.

Reverse mode differentiates a convolution :math:`y = x \star W` through two more
convolutions: the input gradient, :math:`\partial L/\partial y` convolved with the flipped
kernel, and the kernel gradient

.. math::

    \frac{\partial L}{\partial W} = \sum_{c=1}^{n} \sum_{b \in B_c} \sum_{h,w}
    x_{b,\,\mathrm{window}(h,w)} \otimes \frac{\partial L}{\partial y_{b,h,w}},

a contraction over the batch that splits exactly over any partition of it into chunks
:math:`B_c`. On the CPU (jaxlib 0.11.1) two things are done differently from XLA's own
derivatives; other platforms keep XLA's, chosen at lowering time by
``lax.platform_dependent``.

**Layout.** XLA:CPU runs a convolution on its fast kernels only in the canonical layout:
batch first and features last in the input and the output, the kernel as (spatial, in,
out) (HLO ``dim_labels=b01f_01io->b01f``). JAX's derivatives are convolutions in other
layouts (the input gradient reads the kernel as (spatial, out, in), the kernel gradient
treats features as the batch). At the top level of a program XLA transposes their operands
into the canonical layout, but not inside a loop body: in a ``lax.scan`` (gradient
accumulation over microbatches) both derivatives ran as naive loops, 10-200x slower
(``benchmarks/conv_kernel_gradient.py --scan``). So each tangent term is written with its
operands transposed such that JAX's transposition of it is already canonical, with the
transposes explicit where XLA can see and fuse them.

**Chunks.** XLA:CPU computes the kernel gradient 2-3x slower per FLOP when it spans a whole
training batch (60-80 against 150-250 GFLOP/s on 2 cores) than over chunks of about
:data:`PIXELS_PER_CHUNK` output positions, so it is summed over batch chunks.

**Strides.** The input gradient of a strided convolution is computed as that of the
unit-stride convolution, on the cotangent spread onto the input grid (:func:`_input_term`).

**Pointwise kernels.** A 1x1 convolution with unit strides and no padding is a matrix
product over the channel axis. Its tangent terms are written as 2-D matrix products of the
``(positions, channels)`` views, whose transposes XLA:CPU runs as plain matrix products:
the kernel gradient of the tutorial UNet's skip convolutions ran ~10x faster that way than
as a convolution whose window is the whole feature map.

The rule is a custom JVP, not a custom VJP, so forward mode (``jax.jvp``, ``jax.jacfwd``)
works as for any convolution; reverse mode transposes the tangent terms into the gradients.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax
from jax.custom_derivatives import SymbolicZero

#: Output positions per chunk; the fewest FLOPs a chunk must carry to be worth its fixed cost
#: (small layers are not split: no faster, and each chunk is one more convolution to
#: compile); the most chunks one gradient is split into. Chosen from timings of the UNet's
#: training step on a 2-core x86-64 CPU (``benchmarks/conv_kernel_gradient.py``).
PIXELS_PER_CHUNK = 1024
MIN_CHUNK_FLOPS = 128e6
MAX_CHUNKS = 32


def chunk_count(batch: int, positions_per_example: int, flops_per_position: float) -> int:
    """How many batch chunks the kernel gradient is split into (1: not split)."""
    positions = batch * positions_per_example
    by_size = round(positions / PIXELS_PER_CHUNK)
    by_work = int(positions * flops_per_position // MIN_CHUNK_FLOPS)
    return max(1, min(batch, MAX_CHUNKS, by_size, by_work))


def _chunk_bounds(size: int, chunks: int) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` ranges of near-equal length covering ``range(size)``."""
    edges = [size * i // chunks for i in range(chunks + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _inverse(perm: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sorted(range(len(perm)), key=perm.__getitem__))


def _canonical_perms(numbers: lax.ConvDimensionNumbers):
    """Permutations taking the caller's layout to (batch, spatial, feature) / (spatial, in, out)."""
    lhs, rhs, out = numbers
    return (
        (lhs[0], *lhs[2:], lhs[1]),
        (*rhs[2:], rhs[1], rhs[0]),
        (out[0], *out[2:], out[1]),
    )


def _input_term(conv: Callable, x_dot, kernel):
    """``conv(x_dot, kernel)`` (canonical layouts) against the kernel stored (spatial, out, in).

    JAX transposes it into ``conv(g, flip(kernel))`` with the kernel read as (spatial, in,
    out) of that convolution: the canonical layout. A strided convolution is written as the
    unit-stride one followed by a strided slice, so that its transpose is the cotangent
    spread onto the input grid (a padding) and a unit-stride convolution: XLA:CPU ran JAX's
    form, a convolution with a dilated input, off its fast kernels (the tutorial UNet's
    32x32 downsampling gradient took 116 ms in a profile of a ~4 s step).
    """
    s = kernel.ndim - 2
    swapped = jnp.swapaxes(kernel, s, s + 1)
    canonical = (0, s + 1, *range(1, s + 1))
    numbers = lax.ConvDimensionNumbers(canonical, (s, s + 1, *range(s)), canonical)
    strides = tuple(conv.keywords["window_strides"])
    if any(k != 1 for k in strides) and _undilated(conv):
        pads = conv.keywords["padding"]
        if isinstance(pads, str):
            pads = lax.padtype_to_pads(x_dot.shape[1:-1], kernel.shape[:s], strides, pads)
        full = conv(
            x_dot, swapped, dimension_numbers=numbers, window_strides=(1,) * s, padding=pads
        )
        out = [
            (x_dot.shape[1 + d] + lo + hi - kernel.shape[d]) // strides[d] + 1
            for d, (lo, hi) in enumerate(pads)
        ]
        return lax.slice(
            full,
            (0,) * (s + 2),
            (full.shape[0], *[strides[d] * (out[d] - 1) + 1 for d in range(s)], full.shape[-1]),
            (1, *strides, 1),
        )
    return conv(x_dot, swapped, dimension_numbers=numbers)


def _undilated(conv: Callable) -> bool:
    """Whether ``conv`` (a partial of ``lax.conv_general_dilated``) has no dilations."""
    return all(
        all(d == 1 for d in (conv.keywords.get(name) or ()))
        for name in ("lhs_dilation", "rhs_dilation")
    )


def _kernel_term(conv: Callable, x, kernel_dot):
    """``conv(x, kernel_dot)`` (canonical layouts) over batch chunks, transposed for the gradient.

    Each chunk is computed from the input stored (features, spatial, batch) and the kernel
    (in, spatial, out), into an output stored (spatial, batch, out), which is what makes
    JAX's transpose, ``dL/dk = sum_c conv(x_c, g_c)``, canonical: features as its batch, the
    examples as its contracted features. The chunks read the kernel tangent through a float32
    round trip, so that low-precision kernels add their partial gradients up in float32.
    """
    n = x.ndim
    s = n - 2
    batch = x.shape[0]
    chunks = chunk_count(batch, math.prod(x.shape[1:-1]), 2 * kernel_dot.size)
    x_t = jnp.transpose(x, (n - 1, *range(1, n - 1), 0))
    k_t = jnp.transpose(kernel_dot, (s, *range(s), s + 1))
    transposed = (n - 1, 0, *range(1, n - 1))
    numbers = lax.ConvDimensionNumbers(transposed, transposed, (s, n - 1, *range(s)))
    if chunks == 1:
        y_t = conv(x_t, k_t, dimension_numbers=numbers)
    else:
        wide = k_t.astype(jnp.float32)  # each chunk's gradient is converted, then summed
        y_t = lax.concatenate(
            [
                conv(
                    lax.slice_in_dim(x_t, start, stop, axis=n - 1),
                    wide.astype(k_t.dtype),
                    dimension_numbers=numbers,
                )
                for start, stop in _chunk_bounds(batch, chunks)
            ],
            s,
        )
    return jnp.transpose(y_t, (s, *range(s), s + 1))


def _pointwise_term(conv: Callable, lhs, rhs):
    """A 1x1 convolution's tangent term, ``lhs @ rhs``, on the (positions, channels) views.

    Serves both terms: ``x_dot @ W`` transposes to ``g @ W.T``, ``x @ W_dot`` to ``x.T @ g``.
    """
    flat = lhs.reshape(-1, lhs.shape[-1])
    out_dtype = conv.keywords.get("preferred_element_type")  # the convolution's own
    y = lax.dot(flat, rhs.reshape(rhs.shape[-2:]), preferred_element_type=out_dtype)
    return y.reshape(*lhs.shape[:-1], rhs.shape[-1])


def _in_canonical_layout(term: Callable, numbers, lhs, rhs):
    """``term`` (written for canonical layouts) applied to operands in the caller's layout."""
    lhs_perm, rhs_perm, out_perm = _canonical_perms(numbers)
    y = term(jnp.transpose(lhs, lhs_perm), jnp.transpose(rhs, rhs_perm))
    return jnp.transpose(y, _inverse(out_perm))


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1, 2))
def _conv(conv: Callable, numbers: lax.ConvDimensionNumbers, pointwise: bool, x, kernel):
    return conv(x, kernel, dimension_numbers=numbers)


def _conv_jvp(conv, numbers, pointwise, primals, tangents):
    x, kernel = primals
    x_dot, kernel_dot = tangents
    xla = functools.partial(conv, dimension_numbers=numbers)
    y = xla(x, kernel)
    input_term, kernel_term_ = (
        (_pointwise_term, _pointwise_term) if pointwise else (_input_term, _kernel_term)
    )

    def on_cpu(term):
        return functools.partial(_in_canonical_layout, functools.partial(term, conv), numbers)

    terms = []
    if not isinstance(x_dot, SymbolicZero):  # skip the term of an input not differentiated
        terms.append(lax.platform_dependent(x_dot, kernel, cpu=on_cpu(input_term), default=xla))
    if not isinstance(kernel_dot, SymbolicZero):

        def kernel_term(x, kernel_dot):
            return lax.platform_dependent(x, kernel_dot, cpu=on_cpu(kernel_term_), default=xla)

        # Checkpointed: the batch chunks of x are sliced again in the backward pass, where
        # they fuse into the gradient's own copies, instead of being kept from the forward.
        terms.append(jax.checkpoint(kernel_term)(x, kernel_dot))
    return y, sum(terms[1:], terms[0]) if terms else jnp.zeros_like(y)


_conv.defjvp(_conv_jvp, symbolic_zeros=True)


def conv_general_dilated(
    lhs: jax.Array,
    rhs: jax.Array,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count: int = 1,
    batch_group_count: int = 1,
    precision=None,
    preferred_element_type=None,
    **kwargs,
) -> jax.Array:
    """Drop-in for :func:`jax.lax.conv_general_dilated` (same arguments, same values).

    Only the derivatives differ, and only in how they are computed on the CPU (module
    docstring); the forward result is XLA's own. Grouped convolutions keep XLA's
    derivatives everywhere.
    """
    numbers = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    conv = functools.partial(
        lax.conv_general_dilated,
        window_strides=window_strides,
        padding=padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation,
        feature_group_count=feature_group_count,
        batch_group_count=batch_group_count,
        precision=precision,
        preferred_element_type=preferred_element_type,
        **kwargs,
    )
    if feature_group_count != 1 or batch_group_count != 1:
        return conv(lhs, rhs, dimension_numbers=numbers)
    return _conv(
        conv,
        numbers,
        _is_pointwise(rhs.shape, numbers, window_strides, padding, lhs_dilation, rhs_dilation),
        lhs,
        rhs,
    )


def _is_pointwise(kernel_shape, numbers, strides, padding, lhs_dilation, rhs_dilation) -> bool:
    """Whether the convolution is a matrix product per position: 1x1, unit steps, no padding."""
    spatial = [kernel_shape[d] for d in numbers.rhs_spec[2:]]
    unpadded = isinstance(padding, str) or all(tuple(p) == (0, 0) for p in padding)
    return (
        all(size == 1 for size in spatial)
        and all(s == 1 for s in strides)
        and unpadded
        and all(d == 1 for d in (lhs_dilation or ()))
        and all(d == 1 for d in (rhs_dilation or ()))
    )
