"""One DDPM / DDIM step against the posterior it should sample."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from artifex.generative_models.core.configuration.diffusion_config import NoiseScheduleConfig
from artifex.generative_models.core.noise_schedule import create_noise_schedule
from artifex.generative_models.models.diffusion.samplers.coefficients import step_coefficients
from artifex.generative_models.models.diffusion.samplers.ddim import ddim_step
from artifex.generative_models.models.diffusion.samplers.ddpm import ddpm_step

SCHED = create_noise_schedule(NoiseScheduleConfig(schedule_type="cosine", num_timesteps=200))


def _step_inputs(steps: int, i: int):
    c = step_coefficients(SCHED, steps)
    ci = jax.tree.map(lambda a: a[i], c)
    k1, k2 = jax.random.split(jax.random.key(i))
    x0 = jax.random.uniform(k1, (4096,), minval=-1, maxval=1)
    eps = jax.random.normal(k2, x0.shape)
    x_t = ci.signal * x0 + ci.sigma * eps
    return ci, x_t, x0, eps


def test_ddim_eta1_is_ddpm_mean_and_variance():
    for steps, i in [(200, 5), (200, 150), (20, 3), (20, 18)]:
        c, x_t, x0, eps = _step_inputs(steps, i)
        zero = jnp.zeros_like(x0)
        one = jnp.ones_like(x0)
        ddpm_mean = ddpm_step(x_t, x0, eps, c, zero, None)
        ddim_mean = ddim_step(x_t, x0, eps, c, zero, 1.0)
        np.testing.assert_allclose(ddim_mean, ddpm_mean, atol=2e-5)
        ddpm_std = ddpm_step(x_t, x0, eps, c, one, None) - ddpm_mean
        ddim_std = ddim_step(x_t, x0, eps, c, one, 1.0) - ddim_mean
        np.testing.assert_allclose(ddim_std, ddpm_std, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(ddpm_std, np.sqrt(float(c.variance)), rtol=1e-5)


def test_ddim_eta0_ignores_noise_and_matches_closed_form():
    c, x_t, x0, eps = _step_inputs(50, 10)
    a = ddim_step(x_t, x0, eps, c, jnp.zeros_like(x0), 0.0)
    b = ddim_step(x_t, x0, eps, c, 5 * jnp.ones_like(x0), 0.0)
    np.testing.assert_array_equal(a, b)
    ab_s = float(c.alpha_bar_s)
    np.testing.assert_allclose(a, np.sqrt(ab_s) * x0 + np.sqrt(1 - ab_s) * eps, atol=1e-5)


def test_last_step_returns_x0():
    c, x_t, x0, eps = _step_inputs(10, 9)
    noise = jnp.ones_like(x0)
    np.testing.assert_allclose(ddpm_step(x_t, x0, eps, c, noise, None), x0, atol=1e-6)
    np.testing.assert_allclose(ddim_step(x_t, x0, eps, c, noise, 1.0), x0, atol=1e-6)
