"""Checks of what users pass at the public boundaries: images, timesteps, batches, keys.

Each check raises at once with a message naming the argument, what was passed and the fix,
instead of an XLA shape error from deep inside a network or, worse, silently training on raw
uint8 pixels. Shape and dtype checks run at trace time (shapes are static under ``jit``), so
they cost nothing per compiled step; value checks (timestep range, finiteness) run only on
concrete arrays, i.e. in eager calls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x: Any) -> bool:
    """Whether ``x`` has values now (not a tracer inside ``jit``/``grad``)."""
    return not isinstance(x, jax.core.Tracer)


def check_images(name: str, x: Any, image_shape: tuple[int, int, int]) -> None:
    """``x`` is a non-empty float NHWC batch of ``image_shape`` images."""
    h, w, c = image_shape
    example = f"(N, {h}, {w}, {c})"
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(
            f"{name} must be an array of shape {example}, got {type(x).__name__}; "
            "convert it with jnp.asarray"
        )
    shape = tuple(x.shape)
    if len(shape) != 4:
        hint = " (add the batch axis: x[None])" if shape == (h, w, c) else ""
        raise ValueError(f"{name} has shape {shape}; pass an NHWC batch {example}{hint}")
    if shape[0] == 0:
        raise ValueError(f"{name} has shape {shape}: an empty batch; pass at least one image")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
            f"{name} has dtype {x.dtype}; pass float images in [-1, 1] "
            "(uint8 pixels: x / 127.5 - 1, or artifex.data.preprocess_images)"
        )
    if shape[1:] != (h, w, c):
        if shape[1] == c and shape[2:] == (h, w):
            raise ValueError(
                f"{name} has shape {shape}, which looks like NCHW; artifex models take NHWC "
                f"{example}: transpose with x.transpose(0, 2, 3, 1)"
            )
        raise ValueError(
            f"{name} has shape {shape} but the model's config.input_shape is {image_shape}; "
            f"pass {example} images (pad or resize them, or build the model for this size)"
        )


def check_timesteps(name: str, t: Any, batch: int, num_timesteps: int) -> None:
    """``t`` holds one integer timestep in ``[0, num_timesteps)`` per image."""
    if not hasattr(t, "shape") or not hasattr(t, "dtype"):
        raise TypeError(
            f"{name} must be an integer array of shape ({batch},), got {type(t).__name__}; "
            f"e.g. jnp.full(({batch},), 10)"
        )
    if not jnp.issubdtype(t.dtype, jnp.integer):
        raise TypeError(
            f"{name} has dtype {t.dtype}; pass integer timesteps in [0, {num_timesteps}), "
            "e.g. t.astype(jnp.int32)"
        )
    if tuple(t.shape) != (batch,):
        raise ValueError(
            f"{name} has shape {tuple(t.shape)}; pass one timestep per image, shape ({batch},)"
        )
    if is_concrete(t):
        values = np.asarray(t)
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= num_timesteps:
            raise ValueError(
                f"{name} holds timesteps from {low} to {high}; they must lie in "
                f"[0, {num_timesteps}) (the model's num_timesteps)"
            )


def image_batch(batch: Any, image_shape: tuple[int, int, int]) -> Any:
    """``batch["image"]`` after checking the batch is a dict holding an image batch."""
    if not isinstance(batch, Mapping):
        what = (
            f"an array of shape {tuple(batch.shape)}"
            if hasattr(batch, "shape")
            else f"a {type(batch).__name__}"
        )
        raise TypeError(
            f"batch must be a dict with an 'image' entry (NHWC float images), got {what}; "
            "e.g. train_step(state, {'image': images}, key)"
        )
    if "image" not in batch:
        raise KeyError(
            f"batch has no 'image' entry (keys: {sorted(batch)}); pass {{'image': images, ...}}"
        )
    check_images("batch['image']", batch["image"], image_shape)
    return batch["image"]


def as_key(key: Any, name: str = "key") -> jax.Array:
    """A PRNG key from a key array or an ``int`` seed (``42`` means ``jax.random.key(42)``)."""
    if isinstance(key, bool):
        raise TypeError(f"{name}={key!r} is not a PRNG key or an integer seed")
    if isinstance(key, int | np.integer):
        return jax.random.key(int(key))
    if isinstance(key, jax.Array) and (
        jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
        or (key.dtype == jnp.uint32 and key.shape == (2,))
    ):
        return key
    raise TypeError(
        f"{name} must be a PRNG key (jax.random.key(0)) or an integer seed, got "
        f"{type(key).__name__}"
        + (f" of dtype {key.dtype} and shape {key.shape}" if hasattr(key, "dtype") else "")
    )


def non_negative_number(name: str, value: Any, meaning: str) -> float:
    """``value`` as a float after checking it is a finite real number >= 0 (a 0-d array is
    accepted; ``True`` and ``"0.5"`` are not)."""
    if isinstance(value, np.ndarray | jax.Array) and value.shape == ():
        value = float(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | np.floating)
        or not np.isfinite(value)
        or value < 0.0
    ):
        raise ValueError(f"{name}={value!r} must be a finite number >= 0 ({meaning})")
    return float(value)


def check_count(name: str, n: Any) -> int:
    """``n`` is a positive ``int`` (``4.0`` and ``True`` are refused, not truncated)."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"{name}={n!r} must be a positive integer, e.g. 16")
    return int(n)


def check_labels(name: str, labels: Any, batch: int, num_classes: int, *, null: bool) -> None:
    """``labels`` holds one integer class in ``[0, num_classes)`` per image; with ``null``
    the null label ``num_classes`` (no class) is allowed too."""
    top = num_classes + 1 if null else num_classes
    if not hasattr(labels, "shape") or not hasattr(labels, "dtype"):
        raise TypeError(
            f"{name} must be an integer array of shape ({batch},), got {type(labels).__name__}; "
            f"e.g. jnp.arange({batch}) % {num_classes}"
        )
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        raise TypeError(f"{name} has dtype {labels.dtype}; pass integer class labels in [0, {top})")
    if tuple(labels.shape) != (batch,):
        raise ValueError(
            f"{name} has shape {tuple(labels.shape)}; pass one label per image, shape ({batch},)"
        )
    if is_concrete(labels) and batch:
        values = np.asarray(labels)
        low, high = int(values.min()), int(values.max())
        if low < 0 or high >= top:
            extra = f" ({num_classes} is the null label)" if null else ""
            raise ValueError(
                f"{name} holds labels from {low} to {high}; they must lie in [0, {top}){extra}, "
                f"the model's UNetBackboneConfig.num_classes={num_classes}"
            )


def label_batch(batch: Mapping, size: int, num_classes: int) -> Any:
    """``batch["label"]`` of a class-conditional model's batch, after checking it."""
    if "label" not in batch:
        raise KeyError(
            f"batch has no 'label' entry (keys: {sorted(batch)}), but the model is "
            f"class-conditional (num_classes={num_classes}); pass {{'image': ..., 'label': ...}}"
        )
    check_labels("batch['label']", batch["label"], size, num_classes, null=False)
    return batch["label"]
