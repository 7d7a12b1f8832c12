r"""TrainState: everything training changes, held as one NNX object.

A state holds named models, an optimizer per trained model, an exponential moving average (EMA)
copy of some of the models, the number of steps taken and the number of EMA updates made.
Being one ``nnx.Module``, it is checkpointed (``nnx.state(state)``), sharded and restored as a
whole, and a compiled step ``nnx.jit(trainer.train_step)(state, batch, key)`` updates all of it in
place: forward pass, gradients, every optimizer and the EMA in one XLA program.

The EMA follows :mod:`artifex.generative_models.training.ema`: the ``n``-th update (from 0) uses

.. math::

    d_n = \min\Big(d_{\max}, \frac{1 + n}{10 + n}\Big),\qquad
    \theta_{\mathrm{ema}} \leftarrow d_n\,\theta_{\mathrm{ema}} + (1 - d_n)\,\theta,

except that the first update copies the weights (:math:`d = 0`), as ``ema_init`` followed by
``ema_update`` does. Running statistics (``nnx.BatchStat``) are copied, not averaged.
Updates happen on the steps ``step % every == 0`` (0-based, counted before the step),
exactly the steps on which a hand-written loop calls ``trainer.update_ema``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import jax
import jax.numpy as jnp
from flax import nnx

from artifex.generative_models.training.ema import ema_decay


class TrainState(nnx.Module):
    """Models, optimizers, EMA copies and counters of one training run.

    Args:
      models: the trained networks by name, e.g. ``{"model": ddpm}`` or
        ``{"generator": g, "discriminator": d}``.
      optimizers: an ``nnx.Optimizer`` per name in ``models`` that is trained.
      ema: names of the models to keep an EMA copy of (a clone, updated inside the step).
      primary: the model that generates (``"generator"`` for a GAN): what
        :meth:`sample_model`, the best-model export and periodic evaluation use. ``None``
        means ``"model"``, or the only model of a one-model state.
    """

    def __init__(
        self,
        models: Mapping[str, nnx.Module],
        optimizers: Mapping[str, nnx.Optimizer],
        *,
        ema: Iterable[str] = (),
        primary: str | None = None,
    ) -> None:
        unknown = sorted(set(optimizers) - set(models))
        if unknown:
            raise ValueError(
                f"optimizers {unknown} name no model; models are {sorted(models)}: key each "
                "optimizer by the name of the model it trains"
            )
        ema = tuple(ema)
        missing = sorted(set(ema) - set(models))
        if missing:
            raise ValueError(f"ema names {missing} are not models; models are {sorted(models)}")
        if primary is None and len(models) == 1:
            primary = next(iter(models))
        primary = "model" if primary is None else primary
        if primary not in models:
            raise ValueError(
                f"primary={primary!r} is not a model; models are {sorted(models)}: name the "
                "model that generates"
            )
        self.primary = primary
        self.models = nnx.Dict(dict(models))
        self.optimizers = nnx.Dict(dict(optimizers))
        self.ema = nnx.Dict({name: copy_module(models[name]) for name in ema})
        self.step = nnx.Variable(jnp.zeros((), jnp.int32))
        self.ema_count = nnx.Variable(jnp.zeros((), jnp.int32))

    @property
    def model(self) -> nnx.Module:
        """The only model of a single-model state (``models["model"]``)."""
        if "model" not in self.models:
            raise AttributeError(
                f"this state holds the models {sorted(self.models)}; index state.models[name]"
            )
        return self.models["model"]

    def sample_model(self, name: str | None = None) -> nnx.Module:
        """The EMA copy of ``name`` (default: the primary model) once it has been updated, else
        the model itself.

        Reads the update count on the host: call it outside compiled code.
        """
        name = self.primary if name is None else name
        if name in self.ema and int(self.ema_count[...]) > 0:
            return self.ema[name]
        return self.models[name]

    def update_ema(self, max_decay: float, every: int) -> None:
        """One EMA update of every averaged model if this step is due (traceable)."""
        if not self.ema:
            return
        due = self.step[...] % every == 0
        count = self.ema_count[...]
        decay = jnp.where(count == 0, 0.0, ema_decay(count, max_decay))
        decay = jnp.where(due, decay, 1.0)  # 1: the average stays as it is
        for name, average in self.ema.items():
            params = nnx.state(self.models[name], nnx.Param)
            averaged = jax.tree.map(
                lambda e, p: decay * e + (1.0 - decay) * p, nnx.state(average, nnx.Param), params
            )
            nnx.update(average, averaged)
            # Running statistics (BatchNorm) are not averaged: the live model's are the ones
            # that match recent weights, and the EMA copy samples with them.
            stats = nnx.state(self.models[name], nnx.BatchStat)
            if jax.tree.leaves(stats):
                nnx.update(average, stats)
        self.ema_count[...] = count + due.astype(jnp.int32)


def copy_module(module: nnx.Module) -> nnx.Module:
    """A clone of ``module`` with array buffers of its own.

    ``nnx.clone`` shares the arrays, and ``fit`` donates the state's buffers to the compiled
    step, which frees them: keep a copy made here (e.g. of the untrained model) instead of a
    clone. The EMA copies are made this way too, since XLA refuses one buffer donated twice.
    """
    clone = nnx.clone(module)
    nnx.update(clone, jax.tree.map(lambda x: jnp.array(x, copy=True), nnx.state(clone)))
    return clone
