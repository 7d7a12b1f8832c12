r"""The diffusion training loss: a per-element regression loss and a per-timestep weight.

Loss weights are defined in :math:`x_0` space and converted to the prediction target, so
every ``loss_weighting`` means the same thing for every ``prediction_type``. For squared
error, with :math:`\mathrm{SNR} = \bar\alpha_t/(1 - \bar\alpha_t)`,

.. math::

    \|\epsilon - \hat\epsilon\|^2 = \mathrm{SNR}\,\|x_0 - \hat x_0\|^2,\qquad
    \|v - \hat v\|^2 = (\mathrm{SNR} + 1)\,\|x_0 - \hat x_0\|^2 .

A weighting :math:`\lambda(t)` on the :math:`x_0` error is therefore applied to the target's
error as :math:`\lambda / \mathrm{SNR}`, :math:`\lambda / (\mathrm{SNR}+1)` or
:math:`\lambda` for ``epsilon``, ``v_prediction`` and ``x_start``:

* ``uniform``: no reweighting of the chosen target's loss;
* ``snr``: :math:`\lambda = \mathrm{SNR}` (Ho et al.'s epsilon objective, for any target);
* ``min_snr``: :math:`\lambda = \min(\mathrm{SNR}, \gamma)` (Hang et al. 2023).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

LOSS_WEIGHTINGS = ("uniform", "snr", "min_snr")


def elementwise_loss(
    prediction: jax.Array, target: jax.Array, loss_type: str, huber_delta: float = 1.0
) -> jax.Array:
    """``mse``: ``r^2``; ``l1``: ``|r|``; ``huber``: ``0.5 r^2`` inside ``delta``, linear beyond."""
    residual = prediction - target
    if loss_type == "mse":
        return jnp.square(residual)
    if loss_type == "l1":
        return jnp.abs(residual)
    if loss_type == "huber":
        return optax.losses.huber_loss(prediction, target, delta=huber_delta)
    raise ValueError(f"loss_type={loss_type!r} is not supported; choose 'mse', 'l1' or 'huber'")


def loss_weight(
    snr: jax.Array, prediction_type: str, weighting: str, min_snr_gamma: float = 5.0
) -> jax.Array:
    """Per-example weight on the target loss for ``weighting`` (see module docstring)."""
    if weighting == "uniform":
        return jnp.ones_like(snr)
    if weighting == "snr":
        x0_weight = snr
    elif weighting == "min_snr":
        x0_weight = jnp.minimum(snr, min_snr_gamma)
    else:
        raise ValueError(f"loss_weighting={weighting!r} is not supported")
    target_scale = {
        "epsilon": snr,
        "v_prediction": snr + 1.0,
        "x_start": jnp.ones_like(snr),
    }[prediction_type]
    return x0_weight / target_scale
