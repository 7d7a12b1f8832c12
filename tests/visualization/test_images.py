"""Image grids and forward-process grids."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from PIL import Image

from artifex.generative_models.core.configuration import NoiseScheduleConfig
from artifex.generative_models.core.noise_schedule import create_noise_schedule
from artifex.visualization import (
    make_grid,
    noised_images,
    save_image_grid,
    save_noising_grid,
    to_display,
)


def test_to_display_maps_range_and_adds_channel():
    x = np.array([[[-1.0, 0.0], [1.0, 3.0]]])  # (1, 2, 2)
    out = to_display(x)
    assert out.shape == (1, 2, 2, 1)
    np.testing.assert_allclose(out[0, :, :, 0], [[0.0, 0.5], [1.0, 1.0]])


def test_to_display_rejects_bad_shapes():
    with pytest.raises(ValueError, match="images.shape"):
        to_display(np.zeros((2, 4, 4, 2)))


def test_make_grid_places_each_image():
    images = np.stack([np.full((2, 3, 1), v) for v in (-1.0, 0.0, 1.0)])
    grid = make_grid(images, nrow=2, padding=1, pad_value=0.25)
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 1)
    assert np.all(grid[1:3, 1:4] == 0.0)  # image 0 -> black
    assert np.all(grid[1:3, 5:8] == 0.5)  # image 1 -> mid grey
    assert np.all(grid[4:6, 1:4] == 1.0)  # image 2, second row
    assert np.all(grid[4:6, 5:8] == 0.25)  # empty cell
    assert np.all(grid[0] == 0.25)  # gutter


@pytest.mark.parametrize("shape", [(5, 8, 8), (4, 8, 8, 1), (3, 8, 8, 3)])
def test_save_image_grid_writes_png(tmp_path, shape):
    images = np.random.default_rng(0).uniform(-1, 1, shape)
    path = save_image_grid(images, tmp_path / "a" / "b" / "grid.png", title="samples")
    assert path.exists()
    with Image.open(path) as img:
        assert img.format == "PNG" and min(img.size) > 50


def test_noised_images_follow_add_noise_with_shared_noise():
    schedule = create_noise_schedule(NoiseScheduleConfig(schedule_type="linear", num_timesteps=100))
    x0 = np.random.default_rng(1).uniform(-1, 1, (2, 4, 4, 1)).astype(np.float32)
    key = jax.random.key(3)
    ts = [0, 50, 99]
    out = noised_images(x0, schedule, ts, key=key)
    assert out.shape == (2, 3, 4, 4, 1)
    # Closed form: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps with one eps per image.
    eps = np.asarray(jax.random.normal(key, x0.shape))
    for j, t in enumerate(ts):
        abar = schedule.alphas_cumprod[t]
        expected = np.sqrt(abar) * x0 + np.sqrt(1 - abar) * eps
        np.testing.assert_allclose(out[:, j], expected, atol=1e-5)


def test_save_noising_grid_writes_png(tmp_path):
    schedule = create_noise_schedule(NoiseScheduleConfig(num_timesteps=100))
    x0 = np.zeros((2, 8, 8))
    path = save_noising_grid(
        x0, schedule, [0, 50, 99], tmp_path / "noise.png", key=jax.random.key(0)
    )
    with Image.open(path) as img:
        assert img.size[0] > img.size[1]  # 3 columns, 2 rows
