r"""How the noise schedules compare: :math:`\beta_t`, :math:`\bar\alpha_t` and log-SNR.

The forward process keeps a fraction :math:`\bar\alpha_t` of the signal variance at step
:math:`t` and has signal-to-noise ratio :math:`\mathrm{SNR}_t = \bar\alpha_t/(1-\bar\alpha_t)`.
Betas span orders of magnitude, so they (and the SNR) are drawn on log scales.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from artifex.generative_models.core.configuration.diffusion_config import NoiseScheduleConfig
from artifex.generative_models.core.noise_schedule import create_noise_schedule
from artifex.visualization._matplotlib import new_figure, save_figure

#: The schedule types the figure compares by default (``quadratic`` equals ``scaled_linear``).
SCHEDULE_TYPES = ("linear", "cosine", "sigmoid", "scaled_linear")


def schedule_curves(
    schedule_type: str, num_timesteps: int = 1000, **config_kwargs
) -> dict[str, np.ndarray]:
    """``betas``, ``alpha_bar`` and ``log_snr`` (float64, one value per timestep)."""
    config = NoiseScheduleConfig(
        schedule_type=schedule_type, num_timesteps=num_timesteps, **config_kwargs
    )
    schedule = create_noise_schedule(config)
    alpha_bar = schedule.alphas_cumprod
    return {
        "betas": np.asarray(schedule.betas),
        "alpha_bar": np.asarray(alpha_bar),
        "log_snr": np.log(alpha_bar) - np.log1p(-alpha_bar),
    }


def half_signal_timestep(alpha_bar: np.ndarray) -> int:
    """First ``t`` with ``alpha_bar_t < 0.5``: where noise starts to dominate the signal."""
    return int(np.argmax(alpha_bar < 0.5))


def plot_beta_schedules(
    path: str | Path,
    *,
    schedule_types: Sequence[str] = SCHEDULE_TYPES,
    num_timesteps: int = 1000,
) -> Path:
    """Three panels: ``beta_t`` (log y), ``alpha_bar_t`` and ``log SNR_t`` per schedule.

    A dotted line on the middle panel marks each schedule's :func:`half_signal_timestep`.
    """
    fig = new_figure(figsize=(13.0, 3.8))
    ax_beta, ax_abar, ax_snr = fig.subplots(1, 3)
    t = np.arange(num_timesteps)
    for kind in schedule_types:
        curves = schedule_curves(kind, num_timesteps)
        (line,) = ax_beta.plot(t, curves["betas"], label=kind)
        color = line.get_color()
        ax_abar.plot(t, curves["alpha_bar"], color=color, label=kind)
        ax_abar.axvline(half_signal_timestep(curves["alpha_bar"]), color=color, ls=":", lw=1)
        ax_snr.plot(t, curves["log_snr"], color=color, label=kind)
    ax_beta.set(title="β_t", xlabel="timestep t", yscale="log")
    ax_abar.set(title="ᾱ_t (dotted: ᾱ_t = 0.5)", xlabel="timestep t", ylim=(0.0, 1.02))
    ax_snr.set(title="log SNR_t = log ᾱ_t/(1-ᾱ_t)", xlabel="timestep t")
    for ax in (ax_beta, ax_abar, ax_snr):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
