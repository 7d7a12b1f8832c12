"""uint8 -> [-1, 1] and background padding, checked against plain NumPy arithmetic."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from artifex.data.preprocessing import pad_spatial, preprocess_images


def _reference(images: np.ndarray, size: int | None) -> np.ndarray:
    """Independent float64 computation: x / 127.5 - 1 placed in a -1 canvas."""
    x = images.astype(np.float64) / 127.5 - 1.0
    if size is None:
        return x
    n, h, w, c = x.shape
    out = np.full((n, size, size, c), -1.0)
    top, left = (size - h) // 2, (size - w) // 2
    out[:, top : top + h, left : left + w] = x
    return out


def test_values_range_and_padding_match_reference() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 28, 28, 1), dtype=np.uint8)
    images[0, 0, 0, 0], images[0, 0, 1, 0] = 0, 255
    out = np.asarray(jax.jit(preprocess_images, static_argnums=1)(images, 32))
    assert out.dtype == np.float32 and out.shape == (3, 32, 32, 1)
    # Every value is the correctly rounded float32 of the float64 result.
    np.testing.assert_array_equal(out, _reference(images, 32).astype(np.float32))
    assert out.min() == -1.0 and out.max() == 1.0
    assert out[0, 2, 2, 0] == -1.0 and out[0, 2, 3, 0] == 1.0
    frame = np.ones((32, 32), bool)
    frame[2:30, 2:30] = False
    assert np.all(out[:, frame] == -1.0)


def test_no_padding_keeps_28x28_and_rgb_passes_through() -> None:
    gray = np.full((2, 28, 28, 1), 51, np.uint8)
    out = np.asarray(preprocess_images(gray, None))
    assert out.shape == (2, 28, 28, 1)
    np.testing.assert_array_equal(out, np.float32(51 / 127.5 - 1))
    rgb = np.arange(2 * 32 * 32 * 3, dtype=np.int64).reshape(2, 32, 32, 3) % 256
    out = np.asarray(preprocess_images(rgb.astype(np.uint8), 32))  # CIFAR: already 32x32
    np.testing.assert_array_equal(out, _reference(rgb.astype(np.uint8), None).astype(np.float32))


def test_odd_padding_puts_extra_row_and_column_bottom_right() -> None:
    out = np.asarray(pad_spatial(np.zeros((1, 28, 28, 1), np.float32), 31))
    assert out.shape == (1, 31, 31, 1)
    rows = np.flatnonzero(out[0, :, 5, 0] == 0.0)
    assert (rows[0], rows[-1]) == (1, 28)  # 1 row of pad on top, 2 at the bottom


def test_rejects_pad_smaller_than_image_and_non_nhwc() -> None:
    with pytest.raises(ValueError, match="smaller than the images"):
        preprocess_images(np.zeros((1, 32, 32, 3), np.uint8), 28)
    with pytest.raises(ValueError, match="NHWC"):
        preprocess_images(np.zeros((28, 28), np.uint8), 32)
