"""Image grids: batches of samples, and the same images pushed through the forward process."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from artifex.visualization._matplotlib import new_figure, save_figure


def to_display(images) -> np.ndarray:
    """``(N, H, W, C)`` or ``(N, H, W)`` images in ``[-1, 1]`` as float ``(N, H, W, C)`` in
    ``[0, 1]`` (values outside the range are clipped), with ``C`` in {1, 3}."""
    x = np.asarray(images, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or x.shape[0] < 1:
        raise ValueError(
            f"images.shape={np.shape(images)} must be (N, H, W), (N, H, W, 1) or (N, H, W, 3)"
        )
    return np.clip((x + 1.0) / 2.0, 0.0, 1.0)


def make_grid(images, *, nrow: int | None = None, padding: int = 1, pad_value: float = 1.0):
    """Tile images into one ``(rows*(H+p)+p, nrow*(W+p)+p, C)`` array in ``[0, 1]``.

    ``nrow`` is the number of images per row (default ``ceil(sqrt(N))``); unused cells and
    the ``padding``-pixel gutters hold ``pad_value``.
    """
    x = to_display(images)
    n, h, w, c = x.shape
    ncol = nrow if nrow is not None else math.ceil(math.sqrt(n))
    if ncol < 1:
        raise ValueError(f"nrow={nrow!r} must be >= 1")
    rows = math.ceil(n / ncol)
    grid = np.full(
        (rows * (h + padding) + padding, ncol * (w + padding) + padding, c),
        pad_value,
        dtype=np.float32,
    )
    for i in range(n):
        r, col = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top : top + h, left : left + w] = x[i]
    return grid


def _show(ax, image: np.ndarray) -> None:
    if image.shape[-1] == 1:
        ax.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(image, interpolation="nearest")
    ax.set_axis_off()


def save_image_grid(
    images, path: str | Path, *, nrow: int | None = None, title: str | None = None
) -> Path:
    """Save images in ``[-1, 1]`` (``(N,H,W,C)`` or ``(N,H,W)``, grayscale or RGB) as one grid.

    ``nrow`` images per row (default: as square as possible). Returns the written path.
    """
    grid = make_grid(images, nrow=nrow)
    height, width = grid.shape[:2]
    scale = max(4.0 / max(height, width), 0.05)  # at least ~4 inches on the long side
    fig = new_figure(figsize=(width * scale, height * scale + (0.4 if title else 0.0)))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    _show(ax, grid)
    if title:
        ax.set_title(title)
    return save_figure(fig, path)


def noised_images(images, noise_schedule, timesteps: Sequence[int], *, key) -> np.ndarray:
    """``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` for every image and timestep.

    One noise draw per image is shared by all timesteps, so a row shows one trajectory of
    the forward process. Returns ``(N, len(timesteps), H, W, C)``.
    """
    x0 = jnp.asarray(images, jnp.float32)
    if x0.ndim == 3:
        x0 = x0[..., None]
    ts = jnp.asarray(np.asarray(timesteps, dtype=np.int32))
    noise = jax.random.normal(key, x0.shape, jnp.float32)
    # Every (image, timestep) pair as one flat batch: add_noise takes one t per example.
    n, k = x0.shape[0], ts.shape[0]
    flat_x0 = jnp.repeat(x0, k, axis=0)
    flat_noise = jnp.repeat(noise, k, axis=0)
    flat_t = jnp.tile(ts, n)
    x_t = noise_schedule.add_noise(flat_x0, flat_noise, flat_t)
    return np.array(x_t).reshape(n, k, *x0.shape[1:])


def save_noising_grid(
    images, noise_schedule, timesteps: Sequence[int], path: str | Path, *, key
) -> Path:
    """Rows are ``images`` (in ``[-1, 1]``), columns are ``x_t`` at ``timesteps``.

    Uses ``noise_schedule.add_noise`` verbatim, so the column for ``t = 0`` is already one
    step noisy (``sqrt(1 - abar_0) = sqrt(beta_0)``). Columns are titled with ``t`` and the
    signal scale ``sqrt(abar_t)``. Pixels outside ``[-1, 1]`` are clipped for display.
    """
    x_t = noised_images(images, noise_schedule, timesteps, key=key)
    n, k = x_t.shape[:2]
    fig = new_figure(figsize=(1.3 * k, 1.3 * n + 0.3))
    axes = fig.subplots(n, k, squeeze=False)
    for j, t in enumerate(timesteps):
        signal = float(noise_schedule.sqrt_alphas_cumprod[int(t)])
        axes[0, j].set_title(f"t={int(t)}\n√ᾱ={signal:.2f}", fontsize=8)
        for i in range(n):
            _show(axes[i, j], to_display(x_t[i, j][None])[0])
    return save_figure(fig, path)
