r"""DDPM ancestral sampling (Ho et al. 2020) with the true posterior variance.

One step from :math:`t` to :math:`s < t` draws from the forward-process posterior with the
network's :math:`\hat x_0` plugged in:

.. math::

    x_s = c_0 \hat x_0 + c_t x_t + \sqrt{\tilde\beta}\, z,\qquad z \sim \mathcal{N}(0, I),

with :math:`c_0, c_t, \tilde\beta` from
:func:`artifex.generative_models.core.noise_schedule.posterior_coefficients`. With every
timestep this is the original sampler; with fewer steps it is the same chain on the
respaced schedule :math:`\bar\alpha_{\tau_i}` (Nichol & Dhariwal 2021). At the last step
:math:`\bar\alpha_s = 1`, so :math:`\tilde\beta = 0` and the output is :math:`\hat x_0`.
"""

from __future__ import annotations

import jax

from artifex.generative_models.models.diffusion.samplers.coefficients import StepCoefficients


def ddpm_step(
    x_t: jax.Array, x0: jax.Array, eps: jax.Array, c: StepCoefficients, noise: jax.Array, eta
) -> jax.Array:
    """Sample ``x_s ~ q(x_s | x_t, x0)``; ``eps`` and ``eta`` are unused (DDPM is fixed)."""
    del eps, eta
    mean = c.coef_x0 * x0 + c.coef_xt * x_t
    return mean + c.variance**0.5 * noise
