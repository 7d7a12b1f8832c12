"""Data-parallel (and FSDP) training over devices and hosts with JAX's own sharding.

- :func:`make_data_mesh` - a ``data`` axis over all devices of all hosts.
- :func:`make_train_step` - ``trainer.train_step`` as one program over the mesh;
  ``make_train_step(trainer, mesh).bind(state)`` is the ``train_step`` of ``fit``.
- :func:`shard_state`, :func:`state_shardings`, :func:`replicate`, :func:`shard_batch` -
  where the state and the batch live.
- :func:`sample_sharded` - sampling with the images split across devices.

On several hosts, call ``jax.distributed.initialize()`` first and feed each host's slice of
the global batch through :func:`artifex.data.global_batch` (the bound step does it itself).
Checkpoints are ``fit``'s (:class:`~artifex.generative_models.training.checkpointing.
TrainingCheckpointer`): a sharded state is saved as such and restores into a state laid out
on any number of devices.
"""

from artifex.generative_models.training.distributed.mesh import (
    DATA_AXIS,
    batch_sharding,
    data_axis_size,
    make_data_mesh,
    replicated,
)
from artifex.generative_models.training.distributed.placement import (
    DEFAULT_MIN_FSDP_SIZE,
    fsdp_spec,
    replicate,
    shard_batch,
    shard_state,
    state_shardings,
)
from artifex.generative_models.training.distributed.sampling import sample_sharded
from artifex.generative_models.training.distributed.train_step import (
    ShardedTrainStep,
    make_train_step,
)

__all__ = [
    "DATA_AXIS",
    "DEFAULT_MIN_FSDP_SIZE",
    "ShardedTrainStep",
    "batch_sharding",
    "data_axis_size",
    "fsdp_spec",
    "make_data_mesh",
    "make_train_step",
    "replicate",
    "replicated",
    "sample_sharded",
    "shard_batch",
    "shard_state",
    "state_shardings",
]
