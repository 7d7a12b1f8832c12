r"""The logit transform: the flow's fixed first layer (RealNVP, Dinh et al. 2017; MAF,
Papamakarios et al. 2017).

The centred dequantised image :math:`x = y - 1/2`, :math:`y \in [0, 1)`, is mapped to the real
line by

.. math::

    p = \alpha + (1 - 2\alpha)\,y,\qquad h = \operatorname{logit}(p) = \log p - \log(1 - p),

    \log\left|\det \frac{\partial h}{\partial x}\right|
    = \sum_i \big(\log(1 - 2\alpha) - \log p_i - \log(1 - p_i)\big),

with inverse :math:`y = (\sigma(h) - \alpha) / (1 - 2\alpha)`. The constant :math:`\alpha`
keeps :math:`p` inside :math:`(0, 1)` at :math:`y = 0`.

Why: MNIST pixels sit mostly at the two ends of the range (background 0, strokes 255), where
a good density must be sharp: the dequantised background fills one bin of width
:math:`2^{-b}`. The logit stretches both ends (its derivative :math:`1 / (p(1 - p))` is
:math:`\approx 1/\alpha` there), so that the learned layers start much closer to the right
scale. It is exact and its log-determinant is counted, so the bits/dim stay those of the
density of :math:`y`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx


class LogitTransform(nnx.Module):
    """``h = logit(alpha + (1 - 2 alpha)(x + 1/2))`` for centred inputs ``x`` in [-1/2, 1/2).

    Args:
      alpha: the margin kept from 0 and 1, in ``(0, 1/2)``.
    """

    def __init__(self, alpha: float):
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"logit_alpha={alpha!r} must be in (0, 0.5)")
        self.alpha = float(alpha)

    def forward(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """``(h, log_det)`` with ``log_det`` of shape ``(N,)``."""
        p = self.alpha + (1.0 - 2.0 * self.alpha) * (x + 0.5)
        log_p, log_q = jnp.log(p), jnp.log1p(-p)
        log_det = jnp.sum(math.log(1.0 - 2.0 * self.alpha) - log_p - log_q, axis=(1, 2, 3))
        return log_p - log_q, log_det

    def inverse(self, h: jax.Array) -> jax.Array:
        return (jax.nn.sigmoid(h) - self.alpha) / (1.0 - 2.0 * self.alpha) - 0.5
