r"""DPM-Solver++(2M): multistep, second order, data prediction (Lu et al. 2022, Alg. 2).

With :math:`\lambda = \log(\alpha/\sigma)`, the probability-flow ODE written for the data
prediction :math:`\hat x_0` has the exact solution

.. math::

    x_s = \frac{\sigma_s}{\sigma_t}\, x_t
          + \sigma_s \int_{\lambda_t}^{\lambda_s} e^{\lambda}\, \hat x_0(\lambda)\, d\lambda .

Holding :math:`\hat x_0` constant gives the first-order step (DDIM with :math:`\eta = 0`),
:math:`x_s = \frac{\sigma_s}{\sigma_t} x_t + \alpha_s (1 - e^{-h}) \hat x_0`,
:math:`h = \lambda_s - \lambda_t`. The 2M step replaces :math:`\hat x_0` with a linear
extrapolation from the previous step's prediction, at no extra network evaluation:

.. math::

    x_s = \frac{\sigma_s}{\sigma_t}\, x_t + \alpha_s (1 - e^{-h})\, D,\qquad
    D = \Big(1 + \frac{1}{2r}\Big) \hat x_0^{(t)} - \frac{1}{2r}\, \hat x_0^{(t')},\qquad
    r = \frac{h'}{h},

where :math:`t' > t` is the previous timestep and :math:`h' = \lambda_t - \lambda_{t'}`.
The loop carries :math:`\hat x_0^{(t')}` (after clipping, when ``clip_denoised``) from step
to step. All weights are computed on the host in float64 (``sigma_ratio``, ``dpm_x0``,
``dpm_prev_x0``), including :math:`1 - e^{-h}` as ``-expm1(-h)``. Two steps are
first order by construction: the first (no history: the weight of the carried value is
exactly 0) and the last, to :math:`\sigma_s = 0` (:math:`\lambda_s = \infty`, :math:`r = 0`),
whose first-order limit is :math:`x_s = \hat x_0`, as DDIM's last step.

The extrapolation weight :math:`1/(2r)` is large where a step is much longer in
:math:`\lambda` than the one before. With ``spacing="linspace"`` and few steps that happens
on the last interior step, into ``t = 0`` (:math:`\bar\alpha_0 \approx 1`, so
:math:`\lambda_0` is large): there the method overshoots, and ``spacing="trailing"``,
whose grid stops short of ``t = 0``, is the better choice.

The scheduler name is ``"dpm_solver++"``.
"""

from __future__ import annotations

import jax

from artifex.generative_models.models.diffusion.samplers.coefficients import StepCoefficients


def dpm_solver_step(
    x_t: jax.Array, x0: jax.Array, prev_x0: jax.Array, c: StepCoefficients
) -> jax.Array:
    """One DPM-Solver++(2M) step from ``x_t`` with this step's ``x0`` and the previous one."""
    return c.sigma_ratio * x_t + c.dpm_x0 * x0 + c.dpm_prev_x0 * prev_x0
