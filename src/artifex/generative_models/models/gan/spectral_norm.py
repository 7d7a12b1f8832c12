r"""Spectrally normalised convolution (Miyato et al. 2018, "Spectral Normalization for GANs").

The kernel :math:`K` (HWIO) is read as the matrix :math:`W \in \mathbb{R}^{(h w c_{in})
\times c_{out}}` and divided by an estimate of its largest singular value,

.. math::

    \bar W = W / \sigma, \qquad \sigma = \lVert W u \rVert_2 \approx \sigma_{\max}(W),

where :math:`u` (a unit vector of :math:`\mathbb{R}^{c_{out}}`, held as a
:class:`PowerIterationVector`) estimates the top right-singular vector. Each
:meth:`SpectralNormConv.power_iteration` refines it,

.. math::

    v \leftarrow \frac{W u}{\lVert W u \rVert}, \qquad
    u \leftarrow \frac{W^\top v}{\lVert W^\top v \rVert},

and the trainer calls it once per discriminator update, so one or a few iterations per
step track :math:`\sigma_{\max}` as the weights drift. :math:`u` is a constant for the
gradient (``stop_gradient``); the gradient flows through :math:`\sigma` into :math:`W`.

Why not ``nnx.SpectralNorm`` (flax 0.12.12)? It writes :math:`\bar W` back into the wrapped
layer's ``Param`` on every call, evaluation calls included: the stored weights would change
outside the optimizer (also in the generator's update, which must leave the discriminator
alone), and the write is a side effect that cannot run inside ``jax.vjp``, through which the
R1 penalty takes the input gradient. Here the forward pass is pure and only
:meth:`~SpectralNormConv.power_iteration` changes state.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.core.layers.conv_gradients import conv_general_dilated
from artifex.generative_models.core.layers.initializers import lecun_normal, zeros

#: Added under the square root of a norm so that an all-zero vector normalises to zero.
EPSILON = 1e-12


class PowerIterationVector(nnx.Variable):
    """The singular-vector estimate ``u`` of a spectrally normalised kernel.

    Not an ``nnx.Param``: the optimizers (``wrt=nnx.Param``) and the EMA leave it alone, while
    checkpoints save it with the rest of the model.
    """


def l2_normalize(x: jax.Array) -> jax.Array:
    """``x / ||x||_2`` over all of ``x``."""
    return x * jax.lax.rsqrt(jnp.sum(x * x) + EPSILON)


def power_iteration(matrix: jax.Array, u: jax.Array, steps: int) -> jax.Array:
    """``steps`` rounds of ``u <- normalize(W^T normalize(W u))`` (``matrix`` is ``W``)."""
    for _ in range(steps):
        u = l2_normalize(matrix.T @ l2_normalize(matrix @ u))
    return u


def spectral_normalize(kernel: jax.Array, u: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(kernel / sigma, sigma)`` with ``sigma = ||W u||`` and ``u`` held constant."""
    matrix = kernel.reshape(-1, kernel.shape[-1])
    sigma = jnp.linalg.norm(matrix @ jax.lax.stop_gradient(u))
    return kernel / jnp.maximum(sigma, EPSILON), sigma


class SpectralNormConv(nnx.Module):
    """A 2-D convolution (NHWC, HWIO kernel) whose kernel is spectrally normalised.

    The first five arguments are those of ``nnx.Conv``: ``in_features``, ``out_features``,
    ``kernel_size``, ``strides`` and ``padding`` (``"SAME"``, ``"VALID"`` or one
    ``(low, high)`` pair per spatial axis).

    Args:
      power_iterations: rounds of :func:`power_iteration` per :meth:`power_iteration` call.
      rngs: the ``params`` stream draws the kernel (LeCun normal) and the initial ``u``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        kernel_size: tuple[int, int],
        *,
        strides: int = 1,
        padding: str | Sequence[tuple[int, int]] = "SAME",
        power_iterations: int = 1,
        rngs: nnx.Rngs,
    ):
        shape = (*kernel_size, in_features, out_features)
        self.kernel = nnx.Param(lecun_normal(rngs.params(), shape))
        self.bias = nnx.Param(zeros(rngs.params(), (out_features,)))
        self.u = PowerIterationVector(l2_normalize(lecun_normal(rngs.params(), (out_features,))))
        self.strides = (strides, strides)
        self.padding = padding if isinstance(padding, str) else tuple(map(tuple, padding))
        self.power_iterations = power_iterations

    def normalized_kernel(self) -> jax.Array:
        """The kernel the convolution uses: ``kernel / sigma``."""
        return spectral_normalize(self.kernel[...], self.u[...])[0]

    def sigma(self) -> jax.Array:
        """The current estimate of the kernel matrix's largest singular value."""
        return spectral_normalize(self.kernel[...], self.u[...])[1]

    def power_iteration(self) -> None:
        """Refine ``u`` toward the kernel's top right-singular vector (in place, traceable)."""
        matrix = jax.lax.stop_gradient(self.kernel[...]).reshape(-1, self.kernel.shape[-1])
        self.u[...] = power_iteration(matrix, self.u[...], self.power_iterations)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = conv_general_dilated(
            x,
            self.normalized_kernel().astype(x.dtype),
            window_strides=self.strides,
            padding=self.padding,
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        return y + self.bias[...]
