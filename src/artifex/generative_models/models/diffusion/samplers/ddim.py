r"""DDIM sampling (Song et al. 2021).

One step from :math:`t` to :math:`s < t`, with :math:`\hat x_0, \hat\epsilon` from the network:

.. math::

    x_s = \sqrt{\bar\alpha_s}\,\hat x_0
          + \sqrt{1 - \bar\alpha_s - \sigma^2}\,\hat\epsilon + \sigma z,\qquad
    \sigma = \eta \sqrt{\tilde\beta},\quad
    \tilde\beta = \frac{1 - \bar\alpha_s}{1 - \bar\alpha_t}
                  \Big(1 - \frac{\bar\alpha_t}{\bar\alpha_s}\Big).

:math:`\eta = 0` is deterministic; :math:`\eta = 1` has exactly DDPM's posterior variance
(and mean). When :math:`\hat x_0` is clipped, :math:`\hat\epsilon` is recomputed from the
clipped value so that both terms describe the same :math:`x_t`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from artifex.generative_models.models.diffusion.samplers.coefficients import StepCoefficients


def ddim_step(
    x_t: jax.Array, x0: jax.Array, eps: jax.Array, c: StepCoefficients, noise: jax.Array, eta
) -> jax.Array:
    """One DDIM update; ``x_t`` enters only through ``x0`` and ``eps``."""
    del x_t
    sigma_sq = eta**2 * c.variance
    direction = jnp.sqrt(jnp.maximum(1.0 - c.alpha_bar_s - sigma_sq, 0.0))
    return c.alpha_bar_s**0.5 * x0 + direction * eps + sigma_sq**0.5 * noise
