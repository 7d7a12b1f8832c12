r"""Heun's second-order sampler in Karras et al.'s form (Karras et al. 2022, Alg. 1).

In Karras et al.'s coordinates :math:`\tilde x = x / \alpha`,
:math:`\sigma^K = \sigma / \alpha` (see :mod:`.euler`), the Euler predictor
:math:`\tilde x'_s` is corrected with the slope at its end point:

.. math::

    d_t = \frac{\tilde x_t - \hat x_0}{\sigma^K_t},\qquad
    d'_s = \frac{\tilde x'_s - \hat x_0'}{\sigma^K_s},\qquad
    \tilde x_s = \tilde x_t + (\sigma^K_s - \sigma^K_t)\,\frac{d_t + d'_s}{2},

where :math:`\hat x_0' = D(\tilde x'_s; \sigma^K_s)` is a second network evaluation at
timestep :math:`s`. Substituting :math:`\tilde x'_s` and multiplying by :math:`\alpha_s`,
with :math:`\sigma^K_t / \sigma^K_s = e^{h}`:

.. math::

    x'_s = \frac{\sigma_s}{\sigma_t}\, x_t + \alpha_s (1 - e^{-h})\, \hat x_0,\qquad
    x_s = x'_s + \frac{\alpha_s (e^{h} - 1)}{2}\,(\hat x_0' - \hat x_0),

all three weights from the host in float64 (``sigma_ratio``, ``euler_x0``,
``heun_x0_change``). Both :math:`\hat x_0` are clipped when ``clip_denoised``. The last step
goes to :math:`\sigma_s = 0`, where :math:`d'_s` is undefined: as in Karras et al.'s
algorithm it is a plain Euler step, which returns :math:`\hat x_0`, with no second
evaluation. A run of ``steps`` steps costs ``2 * steps - 1`` network evaluations.

The correction's weight grows as :math:`e^h = \sigma^K_t / \sigma^K_s`. Karras et al. start
at :math:`\sigma^K = 80`; a VP schedule's noisiest timestep can lie far above that (about
2e4 for the cosine schedule at ``T = 1000``), and a first step from there to
:math:`\sigma^K = O(1)` overshoots badly at few steps. Use more steps there, or
``spacing="leading"``, whose first timestep is less noisy.
"""

from __future__ import annotations

from collections.abc import Callable

import jax

from artifex.generative_models.models.diffusion.samplers.coefficients import StepCoefficients


def heun_step(
    x_t: jax.Array,
    x0: jax.Array,
    x0_at_next: Callable[[jax.Array], jax.Array],
    c: StepCoefficients,
) -> jax.Array:
    """One Heun step; ``x0_at_next(x)`` is the (clipped) ``x0`` prediction at timestep
    ``c.t_next``, called only when there is a next timestep (not on the last step)."""
    x_euler = c.sigma_ratio * x_t + c.euler_x0 * x0

    def corrected() -> jax.Array:
        return x_euler + c.heun_x0_change * (x0_at_next(x_euler) - x0)

    return jax.lax.cond(c.t_next >= 0, corrected, lambda: x_euler)
