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

Near :math:`\bar\alpha_s = 1` the direction coefficient is a small difference of numbers
close to 1, which float32 would get wrong by up to ~1%. It is evaluated as

.. math::

    1 - \bar\alpha_s - \sigma^2 = (1 - \eta^2)(1 - \bar\alpha_s)
                                 + \eta^2 (1 - \bar\alpha_s - \tilde\beta),

with both brackets computed on the host in float64: for :math:`0 \le \eta \le 1` the two
terms are non-negative, so nothing cancels at run time (and :math:`\eta` stays a traced
value: changing it does not recompile the sampler).
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
    eta_sq = eta**2
    sigma_sq = eta_sq * c.variance
    direction_sq = (1.0 - eta_sq) * c.one_minus_alpha_bar_s + eta_sq * c.ddim_direction_sq
    direction = jnp.sqrt(jnp.maximum(direction_sq, 0.0))
    return c.alpha_bar_s**0.5 * x0 + direction * eps + sigma_sq**0.5 * noise
