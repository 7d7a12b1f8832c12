r"""Activation normalisation (Glow, Kingma & Dhariwal 2018): a per-channel affine map.

For NHWC inputs with channels :math:`c`,

.. math::

    y_{nhwc} = s_c\,x_{nhwc} + b_c,\qquad s_c = e^{\ell_c},\qquad
    \log\left|\det \frac{\partial y}{\partial x}\right| = H\,W \sum_c \log|s_c| = H\,W\sum_c \ell_c,

the same for every example; the inverse is :math:`x = (y - b_c) / s_c`. The parameters are
the log-scale :math:`\ell` (so :math:`s > 0` always) and the bias :math:`b`.

*Data-dependent initialisation*: before training, :meth:`ActNorm.initialize` sets them from a
first batch so that the output has zero mean and unit variance per channel:

.. math::

    \ell_c = -\log(\sigma_c + \epsilon),\qquad b_c = -\mu_c\,s_c,

with :math:`\mu_c, \sigma_c` the mean and standard deviation of channel :math:`c` over the
batch and the spatial positions. Until then the layer is the identity (:math:`\ell = b = 0`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

#: Added to the standard deviation: a constant channel (e.g. an all-background border) would
#: otherwise get an infinite scale.
INIT_EPS = 1e-6


class FlowInitFlag(nnx.Variable):
    """Whether a data-dependent initialisation has run (saved with the weights, not trained)."""


class ActNorm(nnx.Module):
    """Per-channel scale and bias, initialised from data.

    Args:
      channels: the input's channel count.
    """

    def __init__(self, channels: int):
        self.log_scale = nnx.Param(jnp.zeros((channels,), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((channels,), jnp.float32))
        self.initialized = FlowInitFlag(jnp.zeros((), jnp.bool_))

    def initialize(self, x: jax.Array) -> None:
        """Set scale and bias so that ``forward(x)`` has zero mean, unit variance per channel
        (traceable: the model runs it inside one compiled pass)."""
        mean = jnp.mean(x, axis=(0, 1, 2))
        std = jnp.std(x, axis=(0, 1, 2))
        log_scale = -jnp.log(std + INIT_EPS)
        self.log_scale[...] = log_scale
        self.bias[...] = -mean * jnp.exp(log_scale)
        self.initialized[...] = jnp.ones((), jnp.bool_)

    def forward(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(y, log_det)`` with ``log_det`` of shape ``(N,)``."""
        log_scale = self.log_scale[...]
        y = x * jnp.exp(log_scale) + self.bias[...]
        height, width = x.shape[1], x.shape[2]
        log_det = height * width * jnp.sum(log_scale)
        return y, jnp.broadcast_to(log_det, x.shape[:1])

    def inverse(self, y: jax.Array) -> jax.Array:
        return (y - self.bias[...]) * jnp.exp(-self.log_scale[...])
