r"""Sampling timesteps and the per-step coefficients of a run, computed once on the host in
float64.

Notation for one step from timestep :math:`t` to the next one :math:`s < t` (``s = -1`` is
the clean end, :math:`\bar\alpha_{-1} = 1`): :math:`\alpha = \sqrt{\bar\alpha}` and
:math:`\sigma = \sqrt{1 - \bar\alpha}` (VP scale and noise level),
:math:`\lambda = \log(\alpha / \sigma)` (half the log-SNR), :math:`h = \lambda_s - \lambda_t > 0`,
and Karras et al.'s noise level :math:`\sigma^K = \sigma / \alpha = e^{-\lambda}`. At the
clean end :math:`\sigma_s = 0` and :math:`\lambda_s = \infty`; every coefficient that would
involve them is set explicitly to its limit (the step returns the :math:`\hat x_0` it was
given), so no ``inf`` or ``nan`` reaches the compiled loop.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from artifex.generative_models.core.noise_schedule import NoiseSchedule, posterior_coefficients
from artifex.generative_models.models.diffusion.samplers import SPACINGS


class StepCoefficients(NamedTuple):
    """What one step from ``t`` to ``s`` needs (each field: one value per step, float32)."""

    t: jax.Array  # integer timestep fed to the network
    signal: jax.Array  # sqrt(abar_t)
    sigma: jax.Array  # sqrt(1 - abar_t)
    alpha_bar_s: jax.Array  # abar_s (1 at the final step)
    coef_x0: jax.Array  # posterior mean coefficient of x0
    coef_xt: jax.Array  # posterior mean coefficient of x_t
    variance: jax.Array  # posterior variance of q(x_s | x_t, x0)
    one_minus_alpha_bar_s: jax.Array  # 1 - abar_s
    ddim_direction_sq: jax.Array  # 1 - abar_s - variance: DDIM's eta = 1 direction squared
    # -- ODE solvers (euler, heun, dpm_solver++); see the module docstring for the names --
    t_next: jax.Array  # integer timestep s (int32; -1 at the final step)
    signal_next: jax.Array  # sqrt(abar_s) (1 at the final step)
    sigma_next: jax.Array  # sqrt(1 - abar_s) (0 at the final step)
    sigma_ratio: jax.Array  # sigma_s / sigma_t: the weight of x_t (0 at the final step)
    euler_x0: jax.Array  # alpha_s (1 - e^{-h}): first-order weight of x0 (1 at the final step)
    heun_x0_change: jax.Array  # alpha_s (e^h - 1) / 2: Heun's correction (0 at the final step)
    dpm_x0: jax.Array  # DPM-Solver++(2M) weight of this step's x0
    dpm_prev_x0: jax.Array  # DPM-Solver++(2M) weight of the previous step's x0


def _check_steps(num_timesteps: int, steps) -> None:
    if (
        isinstance(steps, bool)
        or not isinstance(steps, int | np.integer)
        or not (1 <= steps <= num_timesteps)
    ):
        raise ValueError(
            f"steps={steps!r} must be an integer in [1, {num_timesteps}] (num_timesteps)"
        )


def check_spacing(spacing) -> None:
    """Raise a ``ValueError`` naming ``spacing`` and the choices unless it is one of them."""
    if not isinstance(spacing, str) or spacing not in SPACINGS:
        choices = ", ".join(repr(s) for s in SPACINGS)
        raise ValueError(f"spacing={spacing!r} is not supported; choose one of {choices}")


def sampling_timesteps(num_timesteps: int, steps: int, spacing: str = "linspace") -> np.ndarray:
    r"""``steps`` distinct timesteps in ``[0, T-1]``, descending, placed by ``spacing``.

    With ``T = num_timesteps`` and ``S = steps`` (0-based timesteps; Lin et al. 2024, Table 2):

    * ``"linspace"``: ``round(linspace(T-1, 0, S))``, from ``T-1`` down to ``0``
      (``S = 1``: just ``T-1``). ``S = T`` visits every timestep.
    * ``"leading"``: ``i * floor(T/S)`` for ``i = S-1 ... 0``: ends at ``0`` but starts at
      ``(S-1) floor(T/S) <= T - floor(T/S)``, so the chain never sees the noisiest
      timesteps although it starts from pure noise (e.g. ``900, 800, ..., 0`` for
      ``T = 1000, S = 10``). The count is ``S`` even when ``S`` does not divide ``T``.
    * ``"trailing"``: ``round(T - i T/S) - 1`` for ``i = 0 ... S-1``: starts at ``T-1`` and
      ends at ``round(T/S) - 1`` (``999, 899, ..., 99``).

    Every run still ends with one step to clean data (:math:`\bar\alpha = 1`) after its last
    timestep.
    """
    _check_steps(num_timesteps, steps)
    check_spacing(spacing)
    T, S = num_timesteps, int(steps)
    if spacing == "leading":
        return (np.arange(S - 1, -1, -1) * (T // S)).astype(np.int32)
    if spacing == "trailing":
        return (np.round(T - np.arange(S) * (T / S)) - 1).astype(np.int32)
    if S == 1:
        return np.array([T - 1], dtype=np.int32)
    return np.round(np.linspace(T - 1, 0, S)).astype(np.int32)


def _ode_coefficients(ab_t: np.ndarray, ab_s: np.ndarray) -> dict[str, np.ndarray]:
    """Float64 weights of the ODE solvers for steps ``abar_t -> abar_s`` (last: ``abar_s = 1``)."""
    interior = np.ones(ab_s.shape, dtype=bool)
    interior[-1] = False  # the final step, to abar_s = 1
    lam_t = 0.5 * (np.log(ab_t) - np.log1p(-ab_t))
    lam_s = np.full_like(ab_s, np.inf)
    lam_s[interior] = 0.5 * (np.log(ab_s[interior]) - np.log1p(-ab_s[interior]))
    h = lam_s - lam_t  # > 0; inf at the final step
    alpha_s = np.sqrt(ab_s)
    sigma_ratio = np.sqrt((1.0 - ab_s) / (1.0 - ab_t))
    euler_x0 = np.ones_like(ab_s)
    heun = np.zeros_like(ab_s)
    euler_x0[interior] = alpha_s[interior] * -np.expm1(-h[interior])
    heun[interior] = 0.5 * alpha_s[interior] * np.expm1(h[interior])
    # DPM-Solver++(2M): D = (1 + 1/(2r)) x0_t - x0_prev / (2r), r = h_prev / h. The first
    # step has no history and the final one (h = inf) is the first-order limit x_s = x0_t.
    dpm_x0, dpm_prev = euler_x0.copy(), np.zeros_like(ab_s)
    second = np.flatnonzero(interior)
    second = second[second >= 1]
    if second.size:
        h_prev = lam_t[second] - lam_t[second - 1]
        half_inv_r = 0.5 * h[second] / h_prev
        dpm_x0[second] = euler_x0[second] * (1.0 + half_inv_r)
        dpm_prev[second] = -euler_x0[second] * half_inv_r
    return {
        "sigma_ratio": sigma_ratio,
        "euler_x0": euler_x0,
        "heun_x0_change": heun,
        "dpm_x0": dpm_x0,
        "dpm_prev_x0": dpm_prev,
    }


def step_coefficients(
    schedule: NoiseSchedule, steps: int, spacing: str = "linspace"
) -> StepCoefficients:
    """Coefficients for every step of a ``steps``-step run over ``schedule``."""
    ts = sampling_timesteps(schedule.num_timesteps, steps, spacing)
    prev = np.append(ts[1:], -1)  # -1: the clean-data end of the chain
    alpha_bar = np.concatenate([[1.0], schedule.alphas_cumprod])
    ab_t, ab_s = alpha_bar[ts + 1], alpha_bar[prev + 1]
    coef_x0, coef_xt, variance = posterior_coefficients(ab_t, ab_s)
    f32 = lambda a: jnp.asarray(np.asarray(a, dtype=np.float32))  # noqa: E731
    ode = {name: f32(value) for name, value in _ode_coefficients(ab_t, ab_s).items()}
    return StepCoefficients(
        t=jnp.asarray(ts, dtype=jnp.int32),
        signal=f32(np.sqrt(ab_t)),
        sigma=f32(np.sqrt(1.0 - ab_t)),
        alpha_bar_s=f32(ab_s),
        coef_x0=f32(coef_x0),
        coef_xt=f32(coef_xt),
        variance=f32(variance),
        # Differences of numbers near 1, taken here in float64: in float32 at run time,
        # 1 - abar_s - sigma^2 loses up to ~1% where abar_s is close to 1.
        one_minus_alpha_bar_s=f32(1.0 - ab_s),
        ddim_direction_sq=f32(np.maximum(1.0 - ab_s - variance, 0.0)),
        t_next=jnp.asarray(prev, dtype=jnp.int32),
        signal_next=f32(np.sqrt(ab_s)),
        sigma_next=f32(np.sqrt(1.0 - ab_s)),
        **ode,
    )
