"""Schedule curves and their figure."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from artifex.generative_models.analysis import SCHEDULE_TYPES, plot_beta_schedules, schedule_curves
from artifex.generative_models.analysis.schedules import half_signal_timestep


def test_linear_curves_match_closed_form():
    curves = schedule_curves("linear", 1000, beta_start=1e-4, beta_end=0.02)
    betas = np.linspace(1e-4, 0.02, 1000)
    alpha_bar = np.cumprod(1.0 - betas)
    np.testing.assert_allclose(curves["betas"], betas, rtol=1e-12)
    np.testing.assert_allclose(curves["alpha_bar"], alpha_bar, rtol=1e-12)
    np.testing.assert_allclose(curves["log_snr"], np.log(alpha_bar / (1 - alpha_bar)), rtol=1e-9)


@pytest.mark.parametrize("kind", SCHEDULE_TYPES)
def test_every_schedule_decays_from_signal_to_noise(kind):
    curves = schedule_curves(kind, 1000)
    assert np.all(np.diff(curves["alpha_bar"]) < 0)
    assert curves["alpha_bar"][0] > 0.99 and curves["alpha_bar"][-1] < 0.05
    t_half = half_signal_timestep(curves["alpha_bar"])
    assert curves["alpha_bar"][t_half] < 0.5 <= curves["alpha_bar"][t_half - 1]


def test_plot_beta_schedules_writes_png(tmp_path):
    path = plot_beta_schedules(tmp_path / "figs" / "schedules.png", num_timesteps=200)
    with Image.open(path) as img:
        assert img.size[0] > 2 * img.size[1]  # three panels side by side
