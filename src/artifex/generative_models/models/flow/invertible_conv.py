r"""Channel mixing between couplings: Glow's invertible 1x1 convolution, RealNVP's reversal.

**Invertible 1x1 convolution** (Kingma & Dhariwal 2018). Every pixel's channel vector is
multiplied by one :math:`C\times C` matrix, :math:`y_{nhw} = W x_{nhw}`, so

.. math::

    \log\left|\det \frac{\partial y}{\partial x}\right| = H\,W \log|\det W|.

:math:`W` is kept in LU form, which makes the determinant a sum instead of an
:math:`O(C^3)` decomposition at every step:

.. math::

    W = P\,L\,(U + \operatorname{diag}(s)),\qquad \log|\det W| = \sum_c \log|s_c|,

with :math:`P` a fixed permutation, :math:`L` unit lower-triangular and :math:`U` strictly
upper-triangular (both learned, masked), and :math:`s = \operatorname{sign}(s_0)\,e^{\ell}`
(the sign is fixed, the log-magnitude :math:`\ell` learned). At initialisation
:math:`W` is a random rotation (the LU decomposition of a random orthogonal matrix), so
:math:`\log|\det W| = 0` but the channels are mixed. The inverse,
:math:`x = (U + \operatorname{diag}(s))^{-1} L^{-1} P^\top y`, takes two triangular solves.

**Reversal** (RealNVP's alternation): :math:`y_c = x_{C-1-c}`, a permutation with
:math:`\log|\det J| = 0` and no parameters. It swaps the two halves the next coupling splits,
so every channel is transformed every second step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
from flax import nnx


class FixedVariable(nnx.Variable):
    """Part of the layer that is saved with the weights but not trained (P, sign(s))."""


def _host_generator(key: jax.Array) -> np.random.Generator:
    # Drawn with NumPy from the JAX key: no per-shape XLA compile at construction.
    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())


class InvertibleConv1x1(nnx.Module):
    """Glow's LU-parameterised invertible 1x1 convolution.

    Args:
      channels: the input's channel count.
      rngs: ``params`` draws the initial rotation.
    """

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        rng = _host_generator(rngs.params())
        rotation, _ = np.linalg.qr(rng.standard_normal((channels, channels)))
        p, lower, upper = scipy.linalg.lu(rotation)  # rotation = p @ lower @ upper
        diagonal = np.diag(upper)
        self.permutation = FixedVariable(jnp.asarray(p, jnp.float32))
        self.sign = FixedVariable(jnp.asarray(np.sign(diagonal), jnp.float32))
        self.lower = nnx.Param(jnp.asarray(np.tril(lower, -1), jnp.float32))
        self.upper = nnx.Param(jnp.asarray(np.triu(upper, 1), jnp.float32))
        self.log_s = nnx.Param(jnp.asarray(np.log(np.abs(diagonal)), jnp.float32))

    def _factors(self) -> tuple[jax.Array, jax.Array]:
        """``L`` (unit lower) and ``U + diag(s)`` (upper), masked so that gradients cannot
        leave the triangular structure."""
        channels = self.log_s[...].shape[0]
        eye = jnp.eye(channels, dtype=jnp.float32)
        lower = jnp.tril(self.lower[...], -1) + eye
        upper = jnp.triu(self.upper[...], 1) + jnp.diag(self.sign[...] * jnp.exp(self.log_s[...]))
        return lower, upper

    def weight(self) -> jax.Array:
        """The ``C x C`` matrix ``W = P L (U + diag(s))``."""
        lower, upper = self._factors()
        return self.permutation[...] @ lower @ upper

    def forward(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(y, log_det)`` with ``y_nhw = W x_nhw`` and ``log_det`` of shape ``(N,)``."""
        y = jnp.einsum("ij,nhwj->nhwi", self.weight(), x)
        log_det = x.shape[1] * x.shape[2] * jnp.sum(self.log_s[...])
        return y, jnp.broadcast_to(log_det, x.shape[:1])

    def inverse(self, y: jax.Array) -> jax.Array:
        lower, upper = self._factors()
        n, h, w, c = y.shape
        columns = self.permutation[...].T @ y.reshape(-1, c).T  # P^{-1} = P^T
        columns = jax.scipy.linalg.solve_triangular(lower, columns, lower=True, unit_diagonal=True)
        columns = jax.scipy.linalg.solve_triangular(upper, columns, lower=False)
        return columns.T.reshape(n, h, w, c)


class ChannelReverse(nnx.Module):
    """RealNVP's fixed reversal of the channel order (no parameters, ``log_det = 0``)."""

    def forward(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        return x[..., ::-1], jnp.zeros(x.shape[:1], x.dtype)

    def inverse(self, y: jax.Array) -> jax.Array:
        return y[..., ::-1]


def channel_mixing(kind: str, channels: int, *, rngs: nnx.Rngs) -> nnx.Module:
    """The layer ``FlowConfig.invertible_conv`` names: ``"1x1"`` or ``"reverse"``."""
    if kind == "1x1":
        return InvertibleConv1x1(channels, rngs=rngs)
    if kind == "reverse":
        return ChannelReverse()
    raise ValueError(f"invertible_conv={kind!r} is not supported; choose '1x1' or 'reverse'")
