r"""Deterministic Euler sampling in Karras et al.'s form (Karras et al. 2022, Alg. 1 without
the correction).

Karras et al. write the probability-flow ODE of the VP process in the coordinates
:math:`\tilde x = x / \alpha` and :math:`\sigma^K = \sigma / \alpha =
\sqrt{(1 - \bar\alpha) / \bar\alpha}`, where it becomes

.. math::

    \frac{d\tilde x}{d\sigma^K} = \frac{\tilde x - D(\tilde x; \sigma^K)}{\sigma^K},

with the denoiser :math:`D = \hat x_0` (the network's output converted to :math:`x_0`;
their input scaling :math:`1/\sqrt{(\sigma^K)^2 + 1} = \alpha` maps :math:`\tilde x` back to
:math:`x`, so the network sees :math:`x_t` at its integer timestep :math:`t`). One Euler step
from :math:`t` to :math:`s`:

.. math::

    \tilde x_s = \tilde x_t + (\sigma^K_s - \sigma^K_t)\,
                 \frac{\tilde x_t - \hat x_0}{\sigma^K_t}
               = \frac{\sigma^K_s}{\sigma^K_t}\,\tilde x_t
                 + \Big(1 - \frac{\sigma^K_s}{\sigma^K_t}\Big)\hat x_0 .

Since :math:`\alpha_s \sigma^K_s = \sigma_s` and :math:`\sigma^K_s / \sigma^K_t = e^{-h}`, in
the model's coordinates this is

.. math::

    x_s = \frac{\sigma_s}{\sigma_t}\, x_t + \alpha_s (1 - e^{-h})\, \hat x_0,

the two weights computed on the host in float64 (``sigma_ratio``, ``euler_x0``), so the
large :math:`\tilde x` and :math:`\sigma^K` of the noisy end never meet in float32. This is
algebraically DDIM with :math:`\eta = 0` (Song et al. 2021, Sec. 4.3; Karras et al. 2022,
Sec. 3): both are Euler on the same ODE; they differ only by float rounding. At the last
step :math:`\sigma_s = 0`: the weights are exactly :math:`(0, 1)` and the output is
:math:`\hat x_0` (the clipped one when ``clip_denoised``).
"""

from __future__ import annotations

import jax

from artifex.generative_models.models.diffusion.samplers.coefficients import StepCoefficients


def euler_step(
    x_t: jax.Array, x0: jax.Array, eps: jax.Array, c: StepCoefficients, noise, eta
) -> jax.Array:
    """One Euler step; ``eps``, ``noise`` and ``eta`` are unused (``eps`` is implied by
    ``x_t`` and ``x0``)."""
    del eps, noise, eta
    return c.sigma_ratio * x_t + c.euler_x0 * x0
