"""Sampling timesteps and per-step coefficients."""

from __future__ import annotations

import numpy as np
import pytest

from artifex.generative_models.core.configuration.diffusion_config import NoiseScheduleConfig
from artifex.generative_models.core.noise_schedule import create_noise_schedule
from artifex.generative_models.models.diffusion.samplers.coefficients import (
    sampling_timesteps,
    step_coefficients,
)


@pytest.mark.parametrize("steps", [1, 2, 10, 50, 99, 100])
def test_timesteps_are_distinct_descending_and_span_the_chain(steps):
    ts = sampling_timesteps(100, steps)
    assert len(ts) == steps
    assert ts[0] == 99
    assert np.all(np.diff(ts) < 0)
    if steps > 1:
        assert ts[-1] == 0


def test_full_chain_visits_every_timestep():
    np.testing.assert_array_equal(sampling_timesteps(1000, 1000), np.arange(999, -1, -1))


@pytest.mark.parametrize("steps", [0, 101, 2.5, True])
def test_bad_step_counts(steps):
    with pytest.raises(ValueError, match=r"steps=.* must be an integer in \[1, 100\]"):
        sampling_timesteps(100, steps)


def test_full_chain_coefficients_are_the_schedule_posterior():
    sched = create_noise_schedule(NoiseScheduleConfig(schedule_type="linear", num_timesteps=100))
    c = step_coefficients(sched, 100)
    order = np.arange(99, -1, -1)
    np.testing.assert_allclose(c.coef_x0, sched.posterior_mean_coef1[order], rtol=1e-5)
    np.testing.assert_allclose(c.coef_xt, sched.posterior_mean_coef2[order], rtol=1e-5)
    np.testing.assert_allclose(c.variance, sched.posterior_variance[order], rtol=1e-5, atol=1e-12)
    np.testing.assert_allclose(c.signal**2 + c.sigma**2, 1.0, rtol=1e-6)
    assert float(c.alpha_bar_s[-1]) == 1.0


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_direction_coefficient_matches_float64_near_alpha_bar_one(eta):
    """Cosine T=1000, DDIM 50 steps: the step t=20 -> s=0 has abar_s within 1e-5 of 1, where
    a float32 ``1 - abar_s - sigma^2`` loses ~1%; the update must match float64 math."""
    import jax.numpy as jnp

    from artifex.generative_models.models.diffusion.samplers.ddim import ddim_step

    sched = create_noise_schedule(NoiseScheduleConfig(schedule_type="cosine", num_timesteps=1000))
    c = step_coefficients(sched, 50)
    ts = np.asarray(c.t)
    i = int(np.flatnonzero(ts == 20)[0])
    assert ts[i + 1] == 0
    abar = np.asarray(sched.alphas_cumprod, np.float64)
    ab_t, ab_s = abar[20], abar[0]
    variance = (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)
    expected = np.sqrt(1 - ab_s - eta**2 * variance)
    if eta == 1.0:
        assert expected == pytest.approx(9.498e-4, rel=1e-3)  # the value the math gives
    step = {field: getattr(c, field)[i] for field in c._fields}
    coefficients = type(c)(**step)
    # x0 = 0 and no noise: the update is exactly the direction coefficient times eps.
    out = ddim_step(None, jnp.zeros(1), jnp.ones(1), coefficients, jnp.zeros(1), jnp.float32(eta))
    np.testing.assert_allclose(float(out[0]), expected, rtol=1e-5)


def test_spacings_match_lin_et_al_table_2():
    """T = 1000, S = 10 (Lin et al. 2024, Table 2, shifted to 0-based timesteps)."""
    expected = {
        "linspace": [999, 888, 777, 666, 555, 444, 333, 222, 111, 0],
        "leading": [900, 800, 700, 600, 500, 400, 300, 200, 100, 0],
        "trailing": [999, 899, 799, 699, 599, 499, 399, 299, 199, 99],
    }
    for spacing, ts in expected.items():
        np.testing.assert_array_equal(sampling_timesteps(1000, 10, spacing), ts)


def test_linspace_is_the_default_and_unchanged():
    for steps in (1, 3, 10, 49, 50):
        ts = sampling_timesteps(50, steps)
        np.testing.assert_array_equal(ts, sampling_timesteps(50, steps, "linspace"))
        old = [49] if steps == 1 else np.round(np.linspace(49, 0, steps)).astype(int)
        np.testing.assert_array_equal(ts, old)


@pytest.mark.parametrize("spacing", ["linspace", "leading", "trailing"])
def test_every_spacing_gives_distinct_descending_timesteps(spacing):
    for T in (1, 2, 3, 7, 10, 50, 64, 1000):
        for steps in sorted({s for s in (1, 2, 3, T // 3, T // 2, T - 1, T) if 1 <= s <= T}):
            ts = sampling_timesteps(T, steps, spacing)
            assert len(ts) == steps and ts.dtype == np.int32
            assert np.all(np.diff(ts) < 0) and ts[-1] >= 0 and ts[0] <= T - 1
            if spacing == "leading":
                assert ts[-1] == 0
            else:
                assert ts[0] == T - 1
    # the full chain is every timestep, whatever the spacing
    for spacing_ in ("linspace", "leading", "trailing"):
        np.testing.assert_array_equal(sampling_timesteps(100, 100, spacing_), np.arange(99, -1, -1))


@pytest.mark.parametrize("spacing", ["uniform", "Linspace", None, 1])
def test_bad_spacing_names_the_argument_and_the_choices(spacing):
    match = r"spacing=.* is not supported; choose one of 'linspace', 'leading', 'trailing'"
    with pytest.raises(ValueError, match=match):
        sampling_timesteps(100, 10, spacing)
    sched = create_noise_schedule(NoiseScheduleConfig(schedule_type="linear", num_timesteps=100))
    with pytest.raises(ValueError, match=match):
        step_coefficients(sched, 10, spacing)


def test_spacing_changes_only_the_timesteps():
    sched = create_noise_schedule(NoiseScheduleConfig(schedule_type="cosine", num_timesteps=1000))
    c = step_coefficients(sched, 10, "trailing")
    np.testing.assert_array_equal(c.t, sampling_timesteps(1000, 10, "trailing"))
    abar = np.asarray(sched.alphas_cumprod)[np.asarray(c.t)]
    np.testing.assert_allclose(c.signal, np.sqrt(abar), rtol=1e-6)
    assert float(c.alpha_bar_s[-1]) == 1.0  # the chain still ends at clean data
