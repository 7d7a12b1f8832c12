r"""The forward process on real images: :math:`x_t` at a few timesteps from clean to noise.

Timesteps are 0-based: the schedule's ``t = 0`` is already one noising step
(:math:`x_t = \sqrt{\bar\alpha_0}x_0 + \sqrt{\beta_0}\,\epsilon`, i.e. Ho et al.'s
:math:`x_1`). The figure labels its first column ``t=0`` and shows the clean image
:math:`x_0` there, so the row starts from the data itself; every other column is
``add_noise`` at that timestep, all columns of a row sharing one noise draw.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from artifex.generative_models.core.noise_schedule import NoiseSchedule
from artifex.visualization._matplotlib import new_figure, save_figure
from artifex.visualization.images import noised_images, to_display

#: The timesteps shown for a 1000-step schedule.
FORWARD_TIMESTEPS = (0, 200, 400, 600, 800, 999)


def default_timesteps(num_timesteps: int, columns: int = 6) -> tuple[int, ...]:
    """``columns`` timesteps at ``k * T / (columns - 1)``, the last clipped to ``T - 1``
    (``(0, 200, 400, 600, 800, 999)`` for ``T = 1000``)."""
    ts = [min(round(k * num_timesteps / (columns - 1)), num_timesteps - 1) for k in range(columns)]
    return tuple(ts)


def forward_process_images(
    images, schedule: NoiseSchedule, timesteps: Sequence[int], *, key, clean_at_zero: bool = True
) -> np.ndarray:
    """``(N, len(timesteps), H, W, C)``: ``x_t`` for each image and timestep.

    With ``clean_at_zero`` the ``t = 0`` column holds the clean images (see module docstring).
    """
    x_t = noised_images(images, schedule, timesteps, key=key)
    if clean_at_zero:
        clean = np.asarray(images, np.float32).reshape(x_t[:, 0].shape)
        for j, t in enumerate(timesteps):
            if int(t) == 0:
                x_t[:, j] = clean
    return x_t


def save_forward_process(
    images,
    schedule: NoiseSchedule,
    path: str | Path,
    *,
    key,
    timesteps: Sequence[int] | None = None,
) -> Path:
    """Rows: images; columns: ``x_t`` at ``timesteps`` (default :func:`default_timesteps`).

    Each column title gives ``t``, the signal scale ``sqrt(abar_t)`` and the noise scale
    ``sqrt(1 - abar_t)``; the ``t=0`` column is the clean image.
    """
    if timesteps is None:
        timesteps = default_timesteps(schedule.num_timesteps)
    x_t = forward_process_images(images, schedule, timesteps, key=key)
    n, k = x_t.shape[:2]
    fig = new_figure(figsize=(1.35 * k, 1.3 * n + 0.5))
    axes = fig.subplots(n, k, squeeze=False)
    for j, t in enumerate(timesteps):
        if int(t) == 0:
            label = "t=0\nclean x₀"
        else:
            signal = float(schedule.sqrt_alphas_cumprod[int(t)])
            noise = float(schedule.sqrt_one_minus_alphas_cumprod[int(t)])
            label = f"t={int(t)}\n{signal:.2f}·x₀ + {noise:.2f}·ε"
        axes[0, j].set_title(label, fontsize=8)
        for i in range(n):
            image = to_display(x_t[i, j][None])[0]
            axes[i, j].imshow(
                image[..., 0] if image.shape[-1] == 1 else image,
                cmap="gray",
                vmin=0.0,
                vmax=1.0,
                interpolation="nearest",
            )
            axes[i, j].set_axis_off()
    fig.suptitle(f"forward process, {schedule.config.schedule_type} schedule", fontsize=10)
    return save_figure(fig, path)
