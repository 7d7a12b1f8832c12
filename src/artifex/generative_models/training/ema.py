r"""Exponential moving average (EMA) of model parameters, optax-style pure functions.

After ``n`` previous updates the average moves towards the current parameters with

.. math::

    d_n = \min\Big(d_{\max}, \frac{1 + n}{10 + n}\Big),\qquad
    \theta_{\mathrm{ema}} \leftarrow d_n\,\theta_{\mathrm{ema}} + (1 - d_n)\,\theta .

The warm-up (:math:`d_0 = 0.1`, growing toward :math:`d_{\max}`) lets the average track
the fast early progress instead of staying anchored at the random initialisation, which a
fixed decay of 0.9999 would do for ~10,000 updates.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp


class EMAState(NamedTuple):
    """Averaged parameters and how many updates built them."""

    params: Any  # a pytree shaped like the model's parameters (an ``nnx.State``)
    count: jax.Array  # int32 scalar


def ema_init(params: Any) -> EMAState:
    """Start the average at (a copy of) ``params``."""
    return EMAState(params=jax.tree.map(jnp.array, params), count=jnp.zeros((), jnp.int32))


def ema_decay(count: jax.Array, max_decay: float) -> jax.Array:
    """The decay ``d_n`` used by the update after ``count`` earlier updates."""
    n = count.astype(jnp.float32)
    return jnp.minimum(max_decay, (1.0 + n) / (10.0 + n))


@jax.jit
def ema_update(state: EMAState, params: Any, max_decay: float) -> EMAState:
    """One EMA update: a single compiled program over every parameter."""
    d = ema_decay(state.count, max_decay)
    averaged = jax.tree.map(lambda e, p: d * e + (1.0 - d) * p, state.params, params)
    return EMAState(params=averaged, count=state.count + 1)
