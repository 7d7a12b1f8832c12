"""Noise schedules against closed-form NumPy, posterior against Gaussian conjugacy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from artifex.generative_models.core.configuration.diffusion_config import (
    SCHEDULE_TYPES,
    NoiseScheduleConfig,
)
from artifex.generative_models.core.noise_schedule import NoiseSchedule, create_noise_schedule


def schedule(kind: str, T: int = 1000, b0: float = 1e-4, b1: float = 0.02) -> NoiseSchedule:
    return create_noise_schedule(
        NoiseScheduleConfig(schedule_type=kind, num_timesteps=T, beta_start=b0, beta_end=b1)
    )


def test_linear_betas():
    np.testing.assert_allclose(schedule("linear").betas, np.linspace(1e-4, 0.02, 1000))


@pytest.mark.parametrize("kind", ["scaled_linear", "quadratic"])
def test_scaled_linear_betas_have_linear_square_roots(kind):
    betas = schedule(kind).betas
    np.testing.assert_allclose(np.sqrt(betas), np.linspace(0.01, np.sqrt(0.02), 1000))


def test_sigmoid_betas():
    betas = schedule("sigmoid").betas
    u = np.linspace(-6, 6, 1000)
    np.testing.assert_allclose(betas, 1e-4 + (0.02 - 1e-4) * (1 / (1 + np.exp(-u))))
    assert np.all(np.diff(betas) > 0)


def test_cosine_follows_nichol_dhariwal():
    T, s = 1000, 0.008
    sched = schedule("cosine", T)

    def f(t):
        return np.cos((t / T + s) / (1 + s) * np.pi / 2) ** 2

    t = np.arange(T)
    unclipped = sched.betas < 0.999
    np.testing.assert_allclose(
        sched.alphas_cumprod[unclipped], (f(t + 1) / f(0))[unclipped], rtol=1e-10
    )
    assert sched.betas.max() == pytest.approx(0.999)  # the last beta would be 1
    assert sched.betas[-1] == pytest.approx(0.999)
    # beta_start / beta_end do not enter the cosine schedule.
    np.testing.assert_array_equal(sched.betas, schedule("cosine", T, 1e-3, 0.5).betas)


@pytest.mark.parametrize("kind", SCHEDULE_TYPES)
def test_derived_tables(kind):
    sched = schedule(kind, T=200)
    ab = np.cumprod(1 - sched.betas)
    np.testing.assert_allclose(sched.alphas_cumprod, ab, rtol=1e-12)
    np.testing.assert_allclose(sched.alphas_cumprod_prev, np.append(1.0, ab[:-1]))
    np.testing.assert_allclose(sched.sqrt_one_minus_alphas_cumprod**2, 1 - ab, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(sched.snr(jnp.arange(200))), ab / (1 - ab), rtol=1e-5)
    assert float(sched.alpha_bar(jnp.asarray(-1))) == 1.0
    assert np.all(np.diff(ab) < 0)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_posterior_matches_gaussian_conjugacy(kind):
    """q(x_{t-1}|x_t,x_0) ∝ q(x_t|x_{t-1}) q(x_{t-1}|x_0): multiply the two Gaussians."""
    sched = schedule(kind)
    beta = sched.betas[1:]
    alpha = 1 - beta
    ab_prev = np.cumprod(1 - sched.betas)[:-1]
    # precision of the product = 1/(1 - ab_prev) + alpha/beta
    variance = 1.0 / (1.0 / (1 - ab_prev) + alpha / beta)
    coef_x0 = variance * np.sqrt(ab_prev) / (1 - ab_prev)
    coef_xt = variance * np.sqrt(alpha) / beta
    np.testing.assert_allclose(sched.posterior_variance[1:], variance, rtol=1e-9)
    np.testing.assert_allclose(sched.posterior_mean_coef1[1:], coef_x0, rtol=1e-9)
    np.testing.assert_allclose(sched.posterior_mean_coef2[1:], coef_xt, rtol=1e-9)
    # t = 0 goes straight to the data: mean x0, no noise.
    assert sched.posterior_mean_coef1[0] == pytest.approx(1.0)
    assert sched.posterior_mean_coef2[0] == 0.0
    assert sched.posterior_variance[0] == 0.0
    np.testing.assert_allclose(
        sched.posterior_log_variance_clipped[1:], np.log(variance), rtol=1e-9
    )


def test_add_noise_moments():
    sched = schedule("cosine")
    t = jnp.array([0, 250, 500, 999])
    x0 = jnp.broadcast_to(jnp.array([0.5, -1.0, 1.0, 0.25])[:, None, None, None], (4, 64, 64, 8))
    noise = jax.random.normal(jax.random.key(0), x0.shape)
    x_t = np.asarray(sched.add_noise(x0, noise, t)).reshape(4, -1)
    ab = sched.alphas_cumprod[np.asarray(t)]
    expected_mean = np.sqrt(ab) * np.array([0.5, -1.0, 1.0, 0.25])
    n = x_t.shape[1]
    np.testing.assert_allclose(x_t.mean(axis=1), expected_mean, atol=5 / np.sqrt(n))
    np.testing.assert_allclose(x_t.var(axis=1), 1 - ab, rtol=0.05, atol=1e-4)


def test_one_shared_object_per_config():
    a = create_noise_schedule(NoiseScheduleConfig(schedule_type="cosine"))
    b = create_noise_schedule(NoiseScheduleConfig(schedule_type="cosine"))
    c = create_noise_schedule(NoiseScheduleConfig(schedule_type="linear"))
    assert a is b and a == b and hash(a) == hash(b)
    assert a != c
    with pytest.raises(TypeError):
        create_noise_schedule({"schedule_type": "cosine"})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("schedule_type", "sigmoid"),
        ("num_timesteps", 500),
        ("beta_start", 1e-3),
        ("beta_end", 0.03),
    ],
)
def test_every_schedule_field_changes_the_betas(field, value):
    base = NoiseScheduleConfig(schedule_type="linear")
    changed = NoiseScheduleConfig(**{**base.__dict__, field: value})
    a, b = create_noise_schedule(base).betas, create_noise_schedule(changed).betas
    assert a.shape != b.shape or not np.allclose(a, b)
