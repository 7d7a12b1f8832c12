r"""``lax.conv_general_dilated`` whose kernel gradient is summed over batch chunks on the CPU.

The kernel gradient of a convolution contracts over every output position of the batch,

.. math::

    \frac{\partial L}{\partial W} = \sum_{c=1}^{n} \sum_{b \in B_c} \sum_{h,w}
    x_{b,\,\mathrm{window}(h,w)} \otimes \frac{\partial L}{\partial y_{b,h,w}},

and the sum splits exactly over any partition of the batch into chunks :math:`B_c`. XLA:CPU
(jaxlib 0.11.1) computes that contraction 2-3x slower per FLOP than the forward convolution
when it spans a whole training batch (measured: 60-80 against 150-250 GFLOP/s on 2 cores);
over chunks of about :data:`PIXELS_PER_CHUNK` output positions the partial products run at
120-200 GFLOP/s. The forward pass and the input gradient stay XLA's own. On other platforms
(GPU, TPU) the gradient is XLA's unchanged: the chunked form is chosen at lowering time by
``lax.platform_dependent``. ``benchmarks/conv_kernel_gradient.py`` times both forms per
layer shape.

The rule is a custom JVP, not a custom VJP, so forward mode (``jax.jvp``, ``jax.jacfwd``)
works as for any convolution: the kernel's tangent term is written chunk by chunk, and
reverse mode transposes it into the chunked gradient.
"""

from __future__ import annotations

import functools
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


def _chunked_kernel_tangent(conv: Callable, x, kernel_tangent, batch_axis: int, out_spec):
    """``conv(x, dk)`` evaluated as one convolution per batch chunk, then concatenated.

    Its value is ``conv(x, dk)``; what matters is its transpose, which reverse mode builds
    from it: ``dL/dk = sum_c conv_kernel_gradient(x_c, g_c)``, one partial product per chunk.
    The chunks read the kernel tangent through a float32 round trip, so that low-precision
    kernels add their partial gradients up in float32.
    """
    out = jax.eval_shape(conv, x, kernel_tangent)
    positions = out.size // (out.shape[out_spec[0]] * out.shape[out_spec[1]])
    # 2 FLOPs per kernel entry at every output position (the kernel holds C_in / groups)
    chunks = chunk_count(x.shape[batch_axis], positions, 2 * kernel_tangent.size)
    if chunks == 1:
        return conv(x, kernel_tangent)
    wide = kernel_tangent.astype(jnp.float32)
    parts = [
        conv(lax.slice_in_dim(x, start, stop, axis=batch_axis), wide.astype(kernel_tangent.dtype))
        for start, stop in _chunk_bounds(x.shape[batch_axis], chunks)
    ]
    return lax.concatenate(parts, out_spec[0])


@functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1, 2))
def _conv(conv: Callable, batch_axis: int, out_spec: tuple, x, kernel):
    return conv(x, kernel)


def _conv_jvp(conv, batch_axis, out_spec, primals, tangents):
    x, kernel = primals
    x_dot, kernel_dot = tangents
    y = conv(x, kernel)
    terms = []
    if not isinstance(x_dot, SymbolicZero):  # skip the term of an input not differentiated
        terms.append(conv(x_dot, kernel))
    if not isinstance(kernel_dot, SymbolicZero):

        def kernel_term(x, kernel_dot):
            def chunked(x, kernel_dot):
                return _chunked_kernel_tangent(conv, x, kernel_dot, batch_axis, out_spec)

            return lax.platform_dependent(x, kernel_dot, cpu=chunked, default=conv)

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

    Only the kernel gradient differs, and only in how it is computed on the CPU (module
    docstring); the forward result and the input gradient are XLA's own.
    """
    conv = functools.partial(
        lax.conv_general_dilated,
        window_strides=window_strides,
        padding=padding,
        lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation,
        dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count,
        batch_group_count=batch_group_count,
        precision=precision,
        preferred_element_type=preferred_element_type,
        **kwargs,
    )
    if batch_group_count != 1:  # the batch is not free to split: keep XLA's gradient
        return conv(lhs, rhs)
    numbers = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    return _conv(conv, numbers.lhs_spec[0], tuple(numbers.out_spec), lhs, rhs)
