"""Digits the metric works on: the offline MNIST digits and the image format it accepts.

The metric reads the 5,000 real MNIST digits shipped with artifex directly (no TFDS): the
``train`` split (4,000) trains the classifier and gives the reference statistics, the ``test``
split (1,000) is held out. It is the split the offline TFDS dataset ``mnist/offline_5k`` holds.
"""

from __future__ import annotations

import numpy as np

from artifex.data.offline_mnist import read_offline_digits

#: Side of the images the classifier sees; 28x28 digits are padded to it.
IMAGE_SIZE = 32
#: Sides accepted by :func:`to_classifier_input`.
ACCEPTED_SIZES = (28, 32)
#: Pixel value of the background (a black uint8 pixel), used for padding.
BACKGROUND = -1.0
#: Slack on the [-1, 1] range check, for float round-off in generated images.
RANGE_TOLERANCE = 1e-3


def load_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The offline ``split`` ("train" or "test") as float32 (N, 28, 28, 1) in [-1, 1], labels.

    Pixels map as ``p / 127.5 - 1`` (0 -> -1, 255 -> 1), computed in float64.
    """
    images, labels = read_offline_digits(split)
    unit = (images.astype(np.float64) / 127.5 - 1.0).astype(np.float32)
    return unit, labels.astype(np.int32)


def to_classifier_input(images, *, minimum: int = 1, owner: str = "images") -> np.ndarray:
    """Check a batch of digits and return it as float32 (N, 32, 32, 1).

    Accepts (N, H, W) or (N, H, W, 1) with H = W in :data:`ACCEPTED_SIZES` and values in
    [-1, 1]; 28x28 digits are padded to 32x32 with the background value -1, centred, as the
    diffusion data pipeline pads them.
    """
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[..., None]
    shapes = " or ".join(f"(N, {s}, {s}, 1)" for s in ACCEPTED_SIZES)
    if (
        x.ndim != 4
        or x.shape[3] != 1
        or x.shape[1] != x.shape[2]
        or x.shape[1] not in ACCEPTED_SIZES
    ):
        raise ValueError(
            f"{owner} has shape {np.shape(images)}; expected single-channel digits {shapes} "
            "(or the same without the channel axis)"
        )
    n = x.shape[0]
    if n < minimum:
        raise ValueError(
            f"{owner} has N={n} images; at least {minimum} are needed for stable statistics. "
            f"Score at least {minimum} samples (1,000 or more for comparable FID values)."
        )
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"{owner} has dtype {x.dtype}; expected floats in [-1, 1]. For uint8 pixels "
            "use images / 127.5 - 1."
        )
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{owner} contains NaN or infinite values")
    low, high = float(x.min()), float(x.max())
    if low < -1.0 - RANGE_TOLERANCE or high > 1.0 + RANGE_TOLERANCE:
        hint = (
            " They look like [0, 255] pixels: use images / 127.5 - 1."
            if high > 2.0
            else " Clip generated images with np.clip(images, -1, 1)."
        )
        raise ValueError(f"{owner} has values in [{low:.4g}, {high:.4g}]; expected [-1, 1].{hint}")
    if low >= -RANGE_TOLERANCE:
        # Every MNIST digit's background is -1: a batch without a single negative pixel is
        # in [0, 1] (the metric would score it, badly, and silently).
        raise ValueError(
            f"{owner} has values in [{low:.4g}, {high:.4g}] with no pixel below 0, so they "
            "look like [0, 1] images; the metric takes [-1, 1] (digit background -1): pass "
            "images * 2 - 1"
        )
    x = np.clip(x.astype(np.float32), -1.0, 1.0)
    pad = (IMAGE_SIZE - x.shape[1]) // 2
    if pad:
        x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=BACKGROUND)
    return x
