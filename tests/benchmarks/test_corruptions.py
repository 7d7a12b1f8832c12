"""The degradations used to sanity-check the metric, against independent references."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage

_SPEC = importlib.util.spec_from_file_location(
    "corruptions", Path(__file__).resolve().parents[2] / "benchmarks" / "corruptions.py"
)
corruptions = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(corruptions)


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_gaussian_blur_matches_scipy_with_background_outside(sigma: float) -> None:
    x = np.random.default_rng(0).uniform(-1, 1, (3, 28, 28, 1)).astype(np.float32)
    expected = scipy.ndimage.gaussian_filter(
        x.astype(np.float64), sigma=(0, sigma, sigma, 0), mode="constant", cval=-1.0
    )
    np.testing.assert_allclose(corruptions.gaussian_blur(x, sigma), expected, atol=1e-6)


def test_noise_has_the_requested_std_before_clipping_and_stays_in_range() -> None:
    x = np.zeros((20, 28, 28, 1), np.float32)  # mid-grey: clipping at 0.3 std is rare
    noisy = corruptions.add_gaussian_noise(x, 0.3, seed=1)
    assert noisy.std() == pytest.approx(0.3, rel=0.02)
    assert noisy.min() >= -1.0 and noisy.max() <= 1.0
    np.testing.assert_array_equal(noisy, corruptions.add_gaussian_noise(x, 0.3, seed=1))


def test_occlusion_blanks_a_centred_square_only() -> None:
    x = np.ones((2, 28, 28, 1), np.float32)
    out = corruptions.occlude_center(x, size=12)
    assert (out == -1.0).sum() == 2 * 12 * 12
    assert np.all(out[:, 8:20, 8:20] == -1.0)
    assert np.all(x == 1.0)  # input untouched
