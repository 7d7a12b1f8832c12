"""Fully connected layer with host-side initialisation."""

from __future__ import annotations

from flax import nnx

from artifex.generative_models.core.layers.initializers import lecun_normal, zeros


def linear(in_features: int, out_features: int, *, rngs: nnx.Rngs) -> nnx.Linear:
    """``nnx.Linear`` with host-side initialisation (see ``initializers``)."""
    return nnx.Linear(
        in_features, out_features, kernel_init=lecun_normal, bias_init=zeros, rngs=rngs
    )
