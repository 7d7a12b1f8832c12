r"""How well a model predicts the noise at each timestep.

For timesteps :math:`t_1..t_K` and clean images :math:`x_0`,

.. math::

    \mathrm{MSE}(t) = \mathbb{E}_{x_0,\epsilon}\,
        \lVert \hat\epsilon(x_t, t) - \epsilon \rVert^2 / D,\qquad
    x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,

averaged over the batch and the :math:`D` pixels. Models predicting ``x_start`` or
``v_prediction`` are converted to :math:`\hat\epsilon` with ``core.prediction``, so every
model is measured on the same scale (always predicting zero noise gives 1). The curve is one
compiled program: a ``lax.scan`` over the timesteps.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from artifex.generative_models.core.prediction import to_x0_and_eps
from artifex.visualization._matplotlib import new_figure, save_figure


def evenly_spaced_timesteps(num_timesteps: int, count: int) -> np.ndarray:
    """``count`` integer timesteps from 0 to ``num_timesteps - 1``, evenly spaced."""
    return np.unique(np.round(np.linspace(0, num_timesteps - 1, count)).astype(np.int32))


def noise_prediction_mse(model: nnx.Module, images, timesteps: Sequence[int], *, key) -> np.ndarray:
    """Eps-prediction MSE of ``model`` on ``images`` (NHWC in [-1, 1]) at each timestep.

    ``model`` is a :class:`~artifex.generative_models.models.diffusion.ddpm.DDPMModel` (or
    anything with ``model(x_t, t)``, ``noise_schedule`` and ``config.prediction_type``).
    Each timestep gets its own noise draw from ``key``. Returns float64 ``(K,)``.
    """
    graphdef, state = nnx.split(model)
    ts = jnp.asarray(np.asarray(timesteps, dtype=np.int32))
    x0 = jnp.asarray(images, jnp.float32)
    return np.asarray(_mse_curve(graphdef, state, x0, ts, key), dtype=np.float64)


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _mse_curve(graphdef, state, x0, timesteps, key):
    model = nnx.merge(graphdef, state)
    schedule = model.noise_schedule
    prediction_type = model.config.prediction_type
    keys = jax.random.split(key, timesteps.shape[0])

    def one_timestep(carry, inputs):
        t_scalar, step_key = inputs
        t = jnp.full((x0.shape[0],), t_scalar, jnp.int32)
        noise = jax.random.normal(step_key, x0.shape, x0.dtype)
        x_t = schedule.add_noise(x0, noise, t)
        signal, sigma = schedule.scales(t, x0)
        _, eps_hat = to_x0_and_eps(prediction_type, model(x_t, t), x_t, signal, sigma)
        return carry, jnp.mean((eps_hat - noise) ** 2)

    _, mse = jax.lax.scan(one_timestep, None, (timesteps, keys))
    return mse


def plot_noise_prediction_mse(
    timesteps: Sequence[int],
    mse: np.ndarray | Mapping[str, np.ndarray],
    path: str | Path,
    *,
    title: str | None = None,
) -> Path:
    """MSE against timestep (log y); ``mse`` is one curve or ``{label: curve}``.

    A dashed line at 1 marks the trivial predictor ``eps_hat = 0``.
    """
    curves = mse if isinstance(mse, Mapping) else {"model": mse}
    fig = new_figure(figsize=(7.0, 4.0))
    ax = fig.add_subplot()
    t = np.asarray(timesteps)
    for label, values in curves.items():
        ax.plot(t, np.asarray(values), marker="o", markersize=3, label=label)
    ax.axhline(1.0, color="gray", ls="--", lw=1, label="ε̂ = 0 (MSE 1)")
    ax.set(
        xlabel="timestep t",
        ylabel="ε-prediction MSE",
        yscale="log",
        title=title or "noise-prediction error vs timestep",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_figure(fig, path)
