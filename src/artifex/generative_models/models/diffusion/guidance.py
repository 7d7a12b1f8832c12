r"""Classifier-free guidance (Ho & Salimans 2022) as a plain ``denoise(x_t, t)`` callable.

A class-conditional network trained with label dropout models both
:math:`f(x_t, t, y)` and, at the null label, :math:`f(x_t, t, \varnothing)`. Guidance with
weight :math:`w \ge 0` extrapolates away from the unconditional prediction:

.. math::

    \tilde f(x_t, t, y) = (1 + w)\, f(x_t, t, y) - w\, f(x_t, t, \varnothing)
                       = f_c + w\,(f_c - f_u).

:math:`w = 0` is the conditional model itself; larger :math:`w` trades diversity for
samples that a classifier recognises more surely. The combination is linear in the network
output, so it holds for epsilon, x0 and v prediction alike (each is an affine function of
the others at fixed :math:`x_t, t`). Both halves run as one network call on a batch of
``2 B`` images, so a guided step costs one evaluation of twice the batch.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

#: ``network(x_t, t, labels) -> prediction``.
Network = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def guided_denoiser(
    network: Network, labels: jax.Array, null: jax.Array, scale: jax.Array | float
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """``denoise(x_t, t)``: the guided prediction for ``labels``, ``null`` the null labels."""

    def denoise(x: jax.Array, t: jax.Array) -> jax.Array:
        both = network(
            jnp.concatenate([x, x]), jnp.concatenate([t, t]), jnp.concatenate([labels, null])
        )
        conditional, unconditional = jnp.split(both, 2)
        return conditional + scale * (conditional - unconditional)

    return denoise
