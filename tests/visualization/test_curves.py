"""Training-curve plot and its moving average."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from artifex.visualization import moving_average, plot_training_curve


def test_moving_average_matches_direct_means():
    x = np.random.default_rng(0).normal(size=37)
    out = moving_average(x, 5)
    expected = [x[max(0, i - 4) : i + 1].mean() for i in range(x.size)]
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_moving_average_rejects_zero_window():
    with pytest.raises(ValueError, match="window"):
        moving_average([1.0], 0)


def test_plot_training_curve_with_learning_rates(tmp_path):
    losses = np.exp(-np.linspace(0, 3, 300)) + 0.01
    lrs = np.minimum(np.arange(300) / 50, 1.0) * 1e-3
    path = plot_training_curve(
        losses, tmp_path / "curves" / "loss.png", learning_rates=lrs, window=20, title="loss"
    )
    with Image.open(path) as img:
        assert img.format == "PNG"


def test_plot_training_curve_checks_lengths(tmp_path):
    with pytest.raises(ValueError, match="one learning rate per step"):
        plot_training_curve([1.0, 0.5], tmp_path / "x.png", learning_rates=[1e-3])
