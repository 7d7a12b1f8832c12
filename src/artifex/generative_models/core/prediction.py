r"""Conversions between what a diffusion network predicts and ``(x_0, epsilon)``.

With :math:`x_t = a x_0 + \sigma \epsilon`, :math:`a = \sqrt{\bar\alpha_t}`,
:math:`\sigma = \sqrt{1 - \bar\alpha_t}` (so :math:`a^2 + \sigma^2 = 1`):

* ``epsilon``:      target :math:`\epsilon`; :math:`x_0 = (x_t - \sigma \hat\epsilon) / a`.
* ``x_start``:      target :math:`x_0`; :math:`\epsilon = (x_t - a \hat x_0) / \sigma`.
* ``v_prediction``: target :math:`v = a \epsilon - \sigma x_0` (Salimans & Ho 2022);
  :math:`x_0 = a x_t - \sigma \hat v`, :math:`\epsilon = \sigma x_t + a \hat v`.

Trainer and samplers both use these functions, so a model trained for one prediction
type is always sampled with the matching conversion.
"""

from __future__ import annotations

import jax


def prediction_target(
    prediction_type: str, x0: jax.Array, noise: jax.Array, signal: jax.Array, sigma: jax.Array
) -> jax.Array:
    """The regression target for ``prediction_type``; ``signal``/``sigma`` broadcast to x."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "x_start":
        return x0
    if prediction_type == "v_prediction":
        return signal * noise - sigma * x0
    raise ValueError(f"prediction_type={prediction_type!r} is not supported")


def to_x0_and_eps(
    prediction_type: str, model_output: jax.Array, x_t: jax.Array, signal, sigma
) -> tuple[jax.Array, jax.Array]:
    """``(x_0, epsilon)`` implied by the network's output at ``x_t``."""
    if prediction_type == "epsilon":
        return (x_t - sigma * model_output) / signal, model_output
    if prediction_type == "x_start":
        return model_output, (x_t - signal * model_output) / sigma
    if prediction_type == "v_prediction":
        return signal * x_t - sigma * model_output, sigma * x_t + signal * model_output
    raise ValueError(f"prediction_type={prediction_type!r} is not supported")


def eps_from_x0(x_t: jax.Array, x0: jax.Array, signal, sigma) -> jax.Array:
    """The noise that takes ``x0`` to ``x_t``; used after clipping ``x0`` so both agree."""
    return (x_t - signal * x0) / sigma
