"""Eps-prediction MSE per timestep: closed forms on stub models, and an eager reference."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from PIL import Image

from artifex.generative_models.analysis import (
    evenly_spaced_timesteps,
    noise_prediction_mse,
    plot_noise_prediction_mse,
)
from artifex.generative_models.core.configuration import NoiseScheduleConfig
from artifex.generative_models.core.noise_schedule import create_noise_schedule


@dataclasses.dataclass(frozen=True)
class _Config:
    prediction_type: str


class ZeroModel(nnx.Module):
    """Predicts 0 whatever its input: the MSE then has a closed form."""

    def __init__(self, prediction_type: str):
        self.config = _Config(prediction_type)
        self.noise_schedule = create_noise_schedule(NoiseScheduleConfig(num_timesteps=100))
        self.scale = nnx.Param(jnp.zeros(()))

    def __call__(self, x_t, t):
        return jnp.zeros_like(x_t) * self.scale


X0 = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 1)).astype(np.float32)
TIMESTEPS = [0, 10, 50, 99]


def test_x_start_zero_predictor_has_closed_form_error():
    # x0_hat = 0  =>  eps_hat = x_t / sigma = eps + (a / sigma) x0  =>  MSE = SNR_t * mean(x0^2)
    model = ZeroModel("x_start")
    mse = noise_prediction_mse(model, X0, TIMESTEPS, key=jax.random.key(0))
    ab = model.noise_schedule.alphas_cumprod[TIMESTEPS]
    np.testing.assert_allclose(mse, ab / (1 - ab) * np.mean(X0.astype(np.float64) ** 2), rtol=1e-4)


def test_epsilon_zero_predictor_error_is_the_noise_power():
    key = jax.random.key(3)
    mse = noise_prediction_mse(ZeroModel("epsilon"), X0, TIMESTEPS, key=key)
    keys = jax.random.split(key, len(TIMESTEPS))
    expected = [float(jnp.mean(jax.random.normal(k, X0.shape) ** 2)) for k in keys]
    np.testing.assert_allclose(mse, expected, rtol=1e-5)


def test_matches_an_eager_reference_on_a_real_model(make_model):
    # v-prediction also exercises the conversion eps = sigma x_t + a v_hat
    model = make_model(prediction_type="v_prediction")
    key = jax.random.key(7)
    ts = [0, 25, 49]
    mse = noise_prediction_mse(model, X0, ts, key=key)
    schedule = model.noise_schedule
    forward = nnx.jit(lambda m, x, t: m(x, t))
    for t, k, value in zip(ts, jax.random.split(key, len(ts)), mse, strict=True):
        noise = np.asarray(jax.random.normal(k, X0.shape))
        ab = schedule.alphas_cumprod[t]
        a, s = np.sqrt(ab), np.sqrt(1 - ab)
        x_t = a * X0 + s * noise
        v_hat = np.asarray(forward(model, jnp.asarray(x_t, jnp.float32), jnp.full((4,), t)))
        eps_hat = s * x_t + a * v_hat
        np.testing.assert_allclose(value, np.mean((eps_hat - noise) ** 2), rtol=2e-4)


def test_evenly_spaced_timesteps_and_plot(tmp_path):
    ts = evenly_spaced_timesteps(1000, 5)
    np.testing.assert_array_equal(ts, [0, 250, 500, 749, 999])
    path = plot_noise_prediction_mse(
        ts, {"raw": np.linspace(1, 0.1, 5), "EMA": np.linspace(0.9, 0.05, 5)}, tmp_path / "m.png"
    )
    with Image.open(path) as img:
        assert img.format == "PNG"
