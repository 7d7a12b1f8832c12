"""Image preprocessing fused into the input pipeline: uint8 -> [-1, 1], pad with background.

Diffusion models here are trained on images in [-1, 1]; MNIST-style 28x28 digits are
padded to 32x32 so that UNet down-sampling by 2 three times stays exact. The pad value is
-1, the value a black (0) pixel maps to, so padding is indistinguishable from background.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

#: Value a 0 (black) uint8 pixel maps to, used for padding.
BACKGROUND = -1.0


#: float32 value of each uint8 level, correctly rounded from float64 (0 -> -1, 255 -> 1).
UNIT_LEVELS = (np.arange(256) / 127.5 - 1.0).astype(np.float32)


def to_unit_range(images: jax.Array) -> jax.Array:
    """Map uint8 pixels 0..255 onto float32 [-1, 1] by table lookup.

    A lookup, not ``x / 127.5 - 1``: XLA rewrites that division as a multiplication by a
    rounded reciprocal, which maps 255 to 1.0000001 and breaks the [-1, 1] contract.
    """
    return jnp.take(jnp.asarray(UNIT_LEVELS), images.astype(jnp.int32), mode="clip")


def pad_spatial(images: jax.Array, size: int, value: float = BACKGROUND) -> jax.Array:
    """Pad NHWC images to ``size`` x ``size`` with ``value``, centred.

    An odd total pad puts the extra row/column at the bottom/right.
    """
    height, width = images.shape[1], images.shape[2]
    if size < height or size < width:
        raise ValueError(f"pad_to={size} is smaller than the images ({height}x{width}).")
    top, left = (size - height) // 2, (size - width) // 2
    pads = ((0, 0), (top, size - height - top), (left, size - width - left), (0, 0))
    return jnp.pad(images, pads, constant_values=jnp.asarray(value, images.dtype))


def preprocess_images(images: jax.Array, pad_to: int | None = 32) -> jax.Array:
    """uint8 NHWC batch -> float32 NHWC in [-1, 1], padded to ``pad_to`` (None: no padding)."""
    if images.ndim != 4:
        raise ValueError(f"expected NHWC images, got shape {images.shape}.")
    x = to_unit_range(images)
    return x if pad_to is None else pad_spatial(x, pad_to)
