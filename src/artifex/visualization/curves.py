"""Training curves: raw and smoothed loss, with the learning rate on a second axis."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from artifex.visualization._matplotlib import new_figure, save_figure


def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` values (fewer at the start): entry ``i`` is
    ``mean(values[max(0, i - window + 1) : i + 1])``, so the output is as long as the input."""
    if window < 1:
        raise ValueError(f"window={window!r} must be >= 1")
    x = np.asarray(values, dtype=np.float64)
    csum = np.concatenate([[0.0], np.cumsum(x)])
    idx = np.arange(1, x.size + 1)
    start = np.maximum(idx - window, 0)
    return (csum[idx] - csum[start]) / (idx - start)


def plot_training_curve(
    losses: Sequence[float],
    path: str | Path,
    *,
    learning_rates: Sequence[float] | None = None,
    window: int = 100,
    title: str | None = None,
) -> Path:
    """Plot per-step ``losses`` (faint) and their ``window``-step moving average.

    When ``learning_rates`` (one per step) are given they are drawn on a twin y-axis, so a
    warm-up or decay can be read against the loss. The loss axis is logarithmic when all
    losses are positive.
    """
    loss = np.asarray(losses, dtype=np.float64)
    if loss.ndim != 1 or loss.size == 0:
        raise ValueError(f"losses must be a non-empty 1-D sequence, got shape {loss.shape}")
    steps = np.arange(1, loss.size + 1)
    fig = new_figure(figsize=(7.0, 4.0))
    ax = fig.add_subplot()
    ax.plot(steps, loss, color="tab:blue", alpha=0.3, linewidth=0.8, label="loss")
    window = min(window, loss.size)
    ax.plot(
        steps,
        moving_average(loss, window),
        color="tab:blue",
        linewidth=1.8,
        label=f"moving average ({window} steps)",
    )
    if np.all(loss > 0):
        ax.set_yscale("log")
    ax.set(xlabel="step", ylabel="loss")
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if learning_rates is not None:
        lr = np.asarray(learning_rates, dtype=np.float64)
        if lr.shape != loss.shape:
            raise ValueError(
                f"learning_rates has {lr.size} values but losses has {loss.size}; "
                "give one learning rate per step"
            )
        lr_ax = ax.twinx()
        lr_ax.plot(steps, lr, color="tab:orange", linewidth=1.2, label="learning rate")
        lr_ax.set_ylabel("learning rate")
        lr_handles, lr_labels = lr_ax.get_legend_handles_labels()
        handles, labels = handles + lr_handles, labels + lr_labels
    ax.legend(handles, labels, loc="upper right")
    if title:
        ax.set_title(title)
    return save_figure(fig, path)
