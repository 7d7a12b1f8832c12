"""The full sampling loop with exact (closed-form) denoisers of Gaussian data.

For data ``x0 ~ N(mu, s^2)`` per pixel, ``E[x0 | x_t]`` is linear in ``x_t``:
``mu + a s^2 / (a^2 s^2 + 1 - a^2) (x_t - a mu)`` with ``a = sqrt(abar_t)``. Plugging it
into a sampler keeps every iterate Gaussian, so the exact mean and variance of its output
follow from propagating ``(mean, var)`` through the step's linear map in float64 -- an
independent reference for the whole compiled loop. With many steps both samplers approach
the data distribution itself.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from artifex.generative_models.core.configuration.diffusion_config import NoiseScheduleConfig
from artifex.generative_models.core.noise_schedule import create_noise_schedule
from artifex.generative_models.core.prediction import prediction_target
from artifex.generative_models.models.diffusion.samplers.coefficients import sampling_timesteps
from artifex.generative_models.models.diffusion.samplers.loop import run_sampler

MU, S = 0.3, 0.2
SCHED = create_noise_schedule(NoiseScheduleConfig(schedule_type="cosine", num_timesteps=200))


def oracle(prediction_type: str):
    """The Bayes-optimal network output for Gaussian data, for ``prediction_type``."""

    def denoise(x_t, t):
        ab = SCHED.alpha_bar(t)[:, None]
        a, sigma = jnp.sqrt(ab), jnp.sqrt(1 - ab)
        x0 = MU + a * S**2 / (ab * S**2 + 1 - ab) * (x_t - a * MU)
        eps = (x_t - a * x0) / sigma
        return prediction_target(prediction_type, x0, eps, a, sigma)

    return denoise


@functools.partial(jax.jit, static_argnames=("scheduler", "steps", "prediction_type", "clip"))
def sample(key, eta, *, scheduler, steps, prediction_type, clip=False):
    k1, k2 = jax.random.split(key)
    x_start = jax.random.normal(k1, (20_000, 1))
    return run_sampler(
        oracle(prediction_type),
        SCHED,
        x_start,
        k2,
        scheduler=scheduler,
        steps=steps,
        eta=eta,
        prediction_type=prediction_type,
        clip_denoised=clip,
    )


def reference_moments(scheduler: str, steps: int, eta: float) -> tuple[float, float]:
    """Mean and std of the sampler's output, by moment propagation in float64."""
    ab_all = np.cumprod(1 - SCHED.betas)
    ts = sampling_timesteps(SCHED.num_timesteps, steps)
    mean, var = 0.0, 1.0
    for i, t in enumerate(ts):
        ab_t = ab_all[t]
        ab_s = ab_all[ts[i + 1]] if i + 1 < len(ts) else 1.0
        a, sig = np.sqrt(ab_t), np.sqrt(1 - ab_t)
        k = a * S**2 / (ab_t * S**2 + 1 - ab_t)  # x0_hat = MU + k (x_t - a MU)
        x0_p, x0_q = k, MU - k * a * MU  # x0_hat = x0_p * x_t + x0_q
        eps_p, eps_q = (1 - a * x0_p) / sig, -a * x0_q / sig
        post_var = (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)
        if scheduler == "ddpm":
            c0 = np.sqrt(ab_s) * (1 - ab_t / ab_s) / (1 - ab_t)
            ct = np.sqrt(ab_t / ab_s) * (1 - ab_s) / (1 - ab_t)
            p, q, noise_var = c0 * x0_p + ct, c0 * x0_q, post_var
        else:
            noise_var = eta**2 * post_var
            d = np.sqrt(max(1 - ab_s - noise_var, 0.0))
            p = np.sqrt(ab_s) * x0_p + d * eps_p
            q = np.sqrt(ab_s) * x0_q + d * eps_q
        mean, var = p * mean + q, p**2 * var + noise_var
    return mean, np.sqrt(var)


@pytest.mark.parametrize(
    ("scheduler", "steps", "eta", "prediction_type"),
    [
        ("ddpm", 200, 0.0, "epsilon"),
        ("ddpm", 50, 0.0, "v_prediction"),
        ("ddim", 50, 0.0, "epsilon"),
        ("ddim", 20, 0.0, "x_start"),
        ("ddim", 50, 1.0, "v_prediction"),
    ],
)
def test_recovers_gaussian_data(scheduler, steps, eta, prediction_type):
    x = np.asarray(
        sample(
            jax.random.key(0),
            eta,
            scheduler=scheduler,
            steps=steps,
            prediction_type=prediction_type,
        )
    )
    mean, std = reference_moments(scheduler, steps, eta)
    assert x.mean() == pytest.approx(mean, abs=4 * std / np.sqrt(x.size))
    assert x.std() == pytest.approx(std, rel=0.03)


@pytest.mark.parametrize("scheduler", ["ddpm", "ddim"])
def test_many_steps_approach_the_data(scheduler):
    mean, std = reference_moments(scheduler, 200, 0.0)
    assert mean == pytest.approx(MU, abs=0.01)
    assert std == pytest.approx(S, rel=0.05)


def test_ddim_eta0_is_deterministic_given_the_start():
    kwargs = dict(scheduler="ddim", steps=20, prediction_type="epsilon")
    a = sample(jax.random.key(0), 0.0, **kwargs)
    # same start noise (first half of the key), different per-step keys:
    k_start = jax.random.split(jax.random.key(0))[0]
    x_start = jax.random.normal(k_start, (20_000, 1))
    b = run_sampler(
        oracle("epsilon"),
        SCHED,
        x_start,
        jax.random.key(123),
        scheduler="ddim",
        steps=20,
        eta=0.0,
        prediction_type="epsilon",
        clip_denoised=False,
    )
    np.testing.assert_allclose(a, b, atol=1e-5)
    c = sample(jax.random.key(0), 1.0, **kwargs)
    assert not np.allclose(a, c, atol=1e-3)


def test_clipping_keeps_ddim_consistent():
    """A network claiming x0 = 5 everywhere: clipped DDIM lands exactly on x0 = 1."""

    def far_out(x_t, t):
        return jnp.full_like(x_t, 5.0)

    x_start = jax.random.normal(jax.random.key(0), (64, 1))
    for scheduler in ("ddim", "ddpm"):
        x = run_sampler(
            far_out,
            SCHED,
            x_start,
            jax.random.key(1),
            scheduler=scheduler,
            steps=10,
            eta=0.0,
            prediction_type="x_start",
            clip_denoised=True,
        )
        np.testing.assert_allclose(x, 1.0, atol=1e-5)
        y = run_sampler(
            far_out,
            SCHED,
            x_start,
            jax.random.key(1),
            scheduler=scheduler,
            steps=10,
            eta=0.0,
            prediction_type="x_start",
            clip_denoised=False,
        )
        np.testing.assert_allclose(y, 5.0, atol=1e-4)
