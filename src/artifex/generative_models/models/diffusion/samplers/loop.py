"""The reverse-process loop shared by every sampler, as one ``lax.scan``."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from artifex.generative_models.core.noise_schedule import NoiseSchedule
from artifex.generative_models.core.prediction import eps_from_x0, to_x0_and_eps
from artifex.generative_models.models.diffusion.samplers.coefficients import step_coefficients
from artifex.generative_models.models.diffusion.samplers.ddim import ddim_step
from artifex.generative_models.models.diffusion.samplers.ddpm import ddpm_step

STEP_FUNCTIONS = {"ddpm": ddpm_step, "ddim": ddim_step}


def run_sampler(
    denoise: Callable[[jax.Array, jax.Array], jax.Array],
    schedule: NoiseSchedule,
    x_start: jax.Array,
    key: jax.Array,
    *,
    scheduler: str,
    steps: int,
    eta: jax.Array | float,
    prediction_type: str,
    clip_denoised: bool,
) -> jax.Array:
    """Denoise ``x_start`` (pure noise at ``t = T-1``) to data in ``steps`` steps.

    ``denoise(x_t, t)`` is the network (``t``: one timestep per example). Call this inside
    ``jit``: the Python here only builds the scan body once.
    """
    step = STEP_FUNCTIONS[scheduler]
    coefs = step_coefficients(schedule, steps)
    keys = jax.random.split(key, steps)

    def body(x: jax.Array, inputs):
        c, step_key = inputs
        t = jnp.full((x.shape[0],), c.t, dtype=jnp.int32)
        x0, eps = to_x0_and_eps(prediction_type, denoise(x, t), x, c.signal, c.sigma)
        if clip_denoised:
            x0 = jnp.clip(x0, -1.0, 1.0)
            eps = eps_from_x0(x, x0, c.signal, c.sigma)
        noise = jax.random.normal(step_key, x.shape, x.dtype)
        return step(x, x0, eps, c, noise, eta), None

    x, _ = jax.lax.scan(body, x_start, (coefs, keys))
    return x
