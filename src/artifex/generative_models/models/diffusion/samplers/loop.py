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
from artifex.generative_models.models.diffusion.samplers.dpm_solver import dpm_solver_step
from artifex.generative_models.models.diffusion.samplers.euler import euler_step
from artifex.generative_models.models.diffusion.samplers.heun import heun_step

#: One-evaluation, memoryless step rules ``step(x_t, x0, eps, c, noise, eta)``.
STEP_FUNCTIONS = {"ddpm": ddpm_step, "ddim": ddim_step, "euler": euler_step}
#: The rules among them that draw fresh noise at every step.
STOCHASTIC = frozenset({"ddpm", "ddim"})


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
    spacing: str = "linspace",
) -> jax.Array:
    """Denoise ``x_start`` (pure noise at the first sampling timestep) to data in ``steps``
    steps placed by ``spacing`` (see :func:`.coefficients.sampling_timesteps`).

    ``denoise(x_t, t)`` is the network (``t``: one timestep per example). Call this inside
    ``jit``: the Python here only builds the scan body once. The scan carries ``(x, memory)``:
    ``memory`` is the previous step's ``x0`` for the multistep ``"dpm_solver++"`` and empty
    for every other rule, whose computation is the same as without it.
    """
    if scheduler not in (*STEP_FUNCTIONS, "heun", "dpm_solver++"):
        raise ValueError(f"scheduler={scheduler!r} is not supported")
    coefs = step_coefficients(schedule, steps, spacing)
    keys = jax.random.split(key, steps)

    def predict(x: jax.Array, t_value, signal, sigma) -> tuple[jax.Array, jax.Array]:
        """``(x0, eps)`` from the network at ``x``; the clipped ``x0`` when clipping."""
        t = jnp.full((x.shape[0],), t_value, dtype=jnp.int32)
        x0, eps = to_x0_and_eps(prediction_type, denoise(x, t), x, signal, sigma)
        if clip_denoised:
            x0 = jnp.clip(x0, -1.0, 1.0)
            eps = eps_from_x0(x, x0, signal, sigma)
        return x0, eps

    def body(carry, inputs):
        x, memory = carry
        c, step_key = inputs
        x0, eps = predict(x, c.t, c.signal, c.sigma)
        if scheduler == "dpm_solver++":
            return (dpm_solver_step(x, x0, memory, c), x0), None
        if scheduler == "heun":

            def x0_at_next(y: jax.Array) -> jax.Array:
                return predict(y, c.t_next, c.signal_next, c.sigma_next)[0]

            return (heun_step(x, x0, x0_at_next, c), memory), None
        noise = jax.random.normal(step_key, x.shape, x.dtype) if scheduler in STOCHASTIC else None
        return (STEP_FUNCTIONS[scheduler](x, x0, eps, c, noise, eta), memory), None

    memory = jnp.zeros_like(x_start) if scheduler == "dpm_solver++" else ()
    (x, _), _ = jax.lax.scan(body, (x_start, memory), (coefs, keys))
    return x
