"""The trainer protocol every model family implements, and what ``fit`` relies on.

A trainer builds a :class:`~artifex.generative_models.training.state.TrainState` (its own
``init_state``, whose arguments differ by family: a GAN takes two models and two optimizers),
then:

- ``train_step(state, batch, key) -> metrics`` is one training step, written to be compiled
  whole with ``nnx.jit``: the forward passes, the losses, the gradients, every optimizer update
  and the EMA update when due. It updates ``state`` in place, increments ``state.step``, and
  returns scalar metrics, ``"loss"`` among them (``"grad_norm"`` too, when the family has one
  gradient). ``batch`` is passed whole, so conditional models see their labels.
- ``generate(state, n, key, **options) -> images`` draws ``n`` samples (from the EMA weights
  where there are any).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import jax

from artifex.generative_models.training.state import TrainState


@runtime_checkable
class Trainer(Protocol):
    """What :func:`~artifex.generative_models.training.fit.fit` needs from a trainer."""

    def train_step(self, state: TrainState, batch: dict[str, Any], key: jax.Array) -> Any: ...

    def generate(self, state: TrainState, n: int, key: jax.Array, **options: Any) -> Any: ...
