"""One compiled training step over a data mesh, fed with a global batch.

The step is ``DiffusionTrainer.train_step`` itself, compiled as a pure function of the
split NNX state with ``jax.jit`` and explicit shardings: state in and out as
:func:`state_shardings` says, batch split along ``data``, key, loss and metrics replicated.
XLA's SPMD partitioner inserts the collectives: the batch mean in the loss becomes a
cross-device reduction, so the gradient is the global-batch gradient on every device.
Nothing in the step knows how many devices there are, so 1 and N devices compute the
same update from the same global batch and key (up to the summation order of floats).
"""

from __future__ import annotations

from typing import Any

import jax
from flax import nnx
from jax.sharding import Mesh

from artifex.generative_models.training.distributed.mesh import (
    DATA_AXIS,
    batch_sharding,
    make_data_mesh,
    replicated,
)
from artifex.generative_models.training.distributed.placement import (
    DEFAULT_MIN_FSDP_SIZE,
    put,
    shard_batch,
    state_shardings,
)


class ShardedTrainStep:
    """``step(model, optimizer, batch, key) -> (loss, metrics)``, like ``nnx.jit(train_step)``;
    :meth:`bind` gives the ``step(batch, key) -> metrics`` of a ``TrainState`` that ``fit``
    takes as its ``train_step``.

    The model and optimizer are updated in place; on the first call their state is moved
    onto the mesh. ``batch`` is the global batch: arrays already laid out on the mesh
    (:func:`artifex.data.global_batch` on several hosts) or, on one host, any arrays, which
    are split here. One program is compiled per model structure.

    With ``donate=True`` the step reuses the old state's device memory for the new one, so
    arrays read from the model before a step are invalid after it (copy what you keep).
    """

    def __init__(
        self,
        trainer: Any,
        mesh: Mesh | None = None,
        *,
        fsdp: bool = False,
        min_fsdp_size: int = DEFAULT_MIN_FSDP_SIZE,
        donate: bool = True,
    ) -> None:
        self.trainer = trainer
        self.mesh = make_data_mesh() if mesh is None else mesh
        self.fsdp = fsdp
        self.min_fsdp_size = min_fsdp_size
        self.donate = donate
        self.batch_sharding = batch_sharding(self.mesh)
        self._compiled: dict[Any, tuple[Any, Any]] = {}

    def shardings(self, state: Any) -> Any:
        """The ``NamedSharding`` of every array of ``nnx.state((model, optimizer))``."""
        return state_shardings(state, self.mesh, fsdp=self.fsdp, min_fsdp_size=self.min_fsdp_size)

    def jitted(self, graphdef: Any, state: Any) -> tuple[Any, Any]:
        """``(jit(pure_step), state_shardings)`` for one model structure (cached).

        ``pure_step(state, batch, key) -> (state, loss, metrics)``; ``.lower(...)`` on it
        gives the compiled program, e.g. to time compilation.
        """
        if graphdef not in self._compiled:
            trainer = self.trainer

            def pure_step(state, batch, key):
                model, optimizer = nnx.merge(graphdef, state)
                loss, metrics = trainer.train_step(model, optimizer, batch, key)
                return nnx.state((model, optimizer)), loss, metrics

            shardings = self.shardings(state)
            rep = replicated(self.mesh)
            fn = jax.jit(
                pure_step,
                in_shardings=(shardings, self.batch_sharding, rep),
                out_shardings=(shardings, rep, rep),
                donate_argnums=(0,) if self.donate else (),
            )
            self._compiled[graphdef] = (fn, shardings)
        return self._compiled[graphdef]

    def jitted_state(self, graphdef: Any, tree: Any) -> tuple[Any, Any]:
        """``(jit(pure_step), shardings)`` of a ``TrainState`` structure (cached)."""
        key = ("state", graphdef)
        if key not in self._compiled:
            trainer = self.trainer

            def pure_step(tree, batch, rng):
                state = nnx.merge(graphdef, tree)
                metrics = trainer.train_step(state, batch, rng)
                return nnx.state(state), metrics

            shardings = self.shardings(tree)
            rep = replicated(self.mesh)
            fn = jax.jit(
                pure_step,
                in_shardings=(shardings, self.batch_sharding, rep),
                out_shardings=(shardings, rep),
                donate_argnums=(0,) if self.donate else (),
            )
            self._compiled[key] = (fn, shardings)
        return self._compiled[key]

    def bind(self, state: Any) -> Any:
        """``step(batch, key) -> metrics`` for ``fit(..., train_step=...)``, bound to ``state``.

        Moves the state onto the mesh now (checkpoints then save and restore it sharded).
        ``batch`` is this host's slice on several hosts (assembled here with
        :func:`artifex.data.global_batch`) or the whole batch on one. The new state is written
        back into ``state`` after every step, so hooks see it; that costs one walk over the
        state's object graph per step, negligible next to a step worth sharding.
        """
        from artifex.data.global_batch import global_batch

        graphdef, tree = nnx.split(state)
        fn, shardings = self.jitted_state(graphdef, tree)
        nnx.update(state, put(tree, shardings))
        rep = replicated(self.mesh)

        def step(batch: Any, key: jax.Array) -> Any:
            if jax.process_count() > 1:
                batch = global_batch(batch, self.mesh, axis_name=DATA_AXIS)
            new_tree, metrics = fn(nnx.state(state), self.place_batch(batch), put(key, rep))
            nnx.update(state, new_tree)
            return metrics

        return step

    def place_batch(self, batch: Any) -> Any:
        """``batch`` laid out along ``data`` (unchanged if it already is)."""
        leaves = jax.tree.leaves(batch)
        if all(
            isinstance(x, jax.Array) and x.sharding.is_equivalent_to(self.batch_sharding, x.ndim)
            for x in leaves
        ):
            return batch
        if jax.process_count() > 1 and any(
            isinstance(x, jax.Array) and not x.is_fully_addressable for x in leaves
        ):
            raise ValueError(
                "the batch is a global array laid out differently from the mesh's 'data' "
                "axis; assemble it with artifex.data.global_batch(local_batch, mesh)"
            )
        if jax.process_count() > 1:
            raise ValueError(
                "with several processes each host holds only its slice of the batch; "
                "assemble the global batch with artifex.data.global_batch(local_batch, mesh)"
            )
        return shard_batch(batch, self.mesh, axis_name=DATA_AXIS)

    def __call__(
        self, model: nnx.Module, optimizer: nnx.Optimizer, batch: Any, key: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        graphdef, state = nnx.split((model, optimizer))
        fn, shardings = self.jitted(graphdef, state)
        if not all(
            getattr(x, "sharding", None) is not None and x.sharding.is_equivalent_to(s, x.ndim)
            for x, s in zip(jax.tree.leaves(state), jax.tree.leaves(shardings), strict=True)
        ):
            state = put(state, shardings)
        rep = replicated(self.mesh)
        if not (isinstance(key, jax.Array) and key.sharding.is_equivalent_to(rep, key.ndim)):
            key = put(key, rep)
        new_state, loss, metrics = fn(state, self.place_batch(batch), key)
        nnx.update((model, optimizer), new_state)
        return loss, metrics


def make_train_step(
    trainer: Any,
    mesh: Mesh | None = None,
    *,
    fsdp: bool = False,
    min_fsdp_size: int = DEFAULT_MIN_FSDP_SIZE,
    donate: bool = True,
) -> ShardedTrainStep:
    """``trainer.train_step`` as one compiled program over ``mesh`` (default: all devices).

    Replaces ``nnx.jit(trainer.train_step)`` in a training loop; the loop is otherwise the
    same on 1 device, N devices or N hosts.
    """
    return ShardedTrainStep(trainer, mesh, fsdp=fsdp, min_fsdp_size=min_fsdp_size, donate=donate)
