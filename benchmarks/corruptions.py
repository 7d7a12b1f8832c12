"""Known degradations of real digits, to check that the metric ranks them as worse.

Each takes float (N, H, W, 1) digits in [-1, 1] and returns degraded digits in [-1, 1]
(NumPy, deterministic). The ``metric_sanity`` benchmark and the tests use them.
"""

from __future__ import annotations

import numpy as np

from artifex.evaluation.digits import BACKGROUND


def gaussian_kernel_1d(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Normalised samples of exp(-x^2 / (2 sigma^2)) on integers |x| <= truncate * sigma."""
    radius = int(truncate * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of std ``sigma`` pixels; outside the image is background."""
    kernel = gaussian_kernel_1d(sigma)
    r = kernel.size // 2
    x = np.asarray(images, np.float64)
    for axis in (1, 2):
        pads = [(0, 0)] * x.ndim
        pads[axis] = (r, r)
        padded = np.pad(x, pads, constant_values=BACKGROUND)
        n = x.shape[axis]
        x = sum(w * np.take(padded, np.arange(i, i + n), axis=axis) for i, w in enumerate(kernel))
    return x.astype(np.float32)


def add_gaussian_noise(images: np.ndarray, std: float, seed: int = 0) -> np.ndarray:
    """Add i.i.d. N(0, std^2) pixel noise, then clip to [-1, 1]."""
    rng = np.random.default_rng(seed)
    noisy = np.asarray(images, np.float64) + std * rng.standard_normal(np.shape(images))
    return np.clip(noisy, -1.0, 1.0).astype(np.float32)


def occlude_center(images: np.ndarray, size: int = 12) -> np.ndarray:
    """Blank a centred ``size`` x ``size`` square to the background value."""
    x = np.array(images, np.float32)
    top, left = (x.shape[1] - size) // 2, (x.shape[2] - size) // 2
    x[:, top : top + size, left : left + size] = BACKGROUND
    return x
