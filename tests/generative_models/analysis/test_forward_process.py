"""Forward-process figure: timesteps, the clean t=0 column, and the noised columns."""

from __future__ import annotations

import jax
import numpy as np
from PIL import Image

from artifex.generative_models.analysis import (
    FORWARD_TIMESTEPS,
    default_timesteps,
    forward_process_images,
    save_forward_process,
)
from artifex.generative_models.core.configuration import NoiseScheduleConfig
from artifex.generative_models.core.noise_schedule import create_noise_schedule

SCHEDULE = create_noise_schedule(NoiseScheduleConfig(schedule_type="linear", num_timesteps=1000))


def test_default_timesteps():
    assert default_timesteps(1000) == FORWARD_TIMESTEPS == (0, 200, 400, 600, 800, 999)
    assert default_timesteps(50) == (0, 10, 20, 30, 40, 49)


def test_columns_are_clean_then_closed_form():
    x0 = np.random.default_rng(0).uniform(-1, 1, (3, 8, 8, 1)).astype(np.float32)
    key = jax.random.key(1)
    out = forward_process_images(x0, SCHEDULE, FORWARD_TIMESTEPS, key=key)
    np.testing.assert_array_equal(out[:, 0], x0)  # t=0 shown as the data itself
    eps = np.asarray(jax.random.normal(key, x0.shape))
    for j, t in enumerate(FORWARD_TIMESTEPS[1:], start=1):
        abar = SCHEDULE.alphas_cumprod[t]
        np.testing.assert_allclose(
            out[:, j], np.sqrt(abar) * x0 + np.sqrt(1 - abar) * eps, atol=1e-5
        )
    # add_noise itself is not the identity at t=0: sqrt(beta_0) = 0.01 of noise
    raw = forward_process_images(x0, SCHEDULE, [0], key=key, clean_at_zero=False)
    np.testing.assert_allclose(np.std(raw[:, 0] - x0), 0.01, rtol=0.2)


def test_save_forward_process_writes_png(tmp_path):
    x0 = np.zeros((2, 8, 8, 1))
    path = save_forward_process(x0, SCHEDULE, tmp_path / "forward.png", key=jax.random.key(0))
    with Image.open(path) as img:
        assert img.size[0] > img.size[1]
