"""Activation functions selectable by name from a config."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": jax.nn.gelu,  # tanh approximation: cheaper than erf on CPU, same accuracy in practice
    "silu": jax.nn.silu,
    "relu": jax.nn.relu,
    "elu": jax.nn.elu,
    "leaky_relu": jax.nn.leaky_relu,
    "tanh": jnp.tanh,
}


def get_activation(name: str) -> Callable[[jax.Array], jax.Array]:
    """Return the activation called ``name`` (one of :data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"activation={name!r} is not supported; choose one of: {', '.join(ACTIVATIONS)}"
        ) from None
