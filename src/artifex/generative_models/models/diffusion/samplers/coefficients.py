"""Per-step coefficients of a sampling run, computed once on the host in float64."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from artifex.generative_models.core.noise_schedule import NoiseSchedule, posterior_coefficients


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


def sampling_timesteps(num_timesteps: int, steps: int) -> np.ndarray:
    """``steps`` distinct timesteps from ``T-1`` down to ``0``, evenly spaced.

    ``steps == T`` visits every timestep; fewer steps skip evenly (both end at ``t = 0``).
    """
    if (
        isinstance(steps, bool)
        or not isinstance(steps, int | np.integer)
        or not (1 <= steps <= num_timesteps)
    ):
        raise ValueError(
            f"steps={steps!r} must be an integer in [1, {num_timesteps}] (num_timesteps)"
        )
    if steps == 1:
        return np.array([num_timesteps - 1])
    return np.round(np.linspace(num_timesteps - 1, 0, steps)).astype(np.int32)


def step_coefficients(schedule: NoiseSchedule, steps: int) -> StepCoefficients:
    """Coefficients for every step of a ``steps``-step run over ``schedule``."""
    ts = sampling_timesteps(schedule.num_timesteps, steps)
    prev = np.append(ts[1:], -1)  # -1: the clean-data end of the chain
    alpha_bar = np.concatenate([[1.0], schedule.alphas_cumprod])
    ab_t, ab_s = alpha_bar[ts + 1], alpha_bar[prev + 1]
    coef_x0, coef_xt, variance = posterior_coefficients(ab_t, ab_s)
    f32 = lambda a: jnp.asarray(np.asarray(a, dtype=np.float32))  # noqa: E731
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
    )
