"""Where the training state and the batch live on a data mesh.

Data parallel (the default): parameters, optimizer state and EMA are replicated, the batch
is split along ``data``. Under ``jit`` each device computes the gradient of its slice and
XLA averages them with an all-reduce, so every replica applies the same update.

FSDP (``fsdp=True``): each large array is instead split along ``data`` on its largest
dimension that divides by the number of devices; small arrays (biases, norms, counters)
stay replicated, where splitting would cost more in communication than it saves. XLA
all-gathers a weight where the forward pass needs it whole and reduce-scatters its
gradient, so each device stores only ``1/N`` of the weights and optimizer moments.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from artifex.generative_models.training.distributed.mesh import (
    DATA_AXIS,
    batch_sharding,
    check_divisible,
    data_axis_size,
    replicated,
)

#: Arrays with fewer elements than this stay replicated under FSDP (64 KiB of float32).
DEFAULT_MIN_FSDP_SIZE = 1 << 14


def fsdp_spec(
    shape: tuple[int, ...],
    num_shards: int,
    *,
    min_size: int = DEFAULT_MIN_FSDP_SIZE,
    axis_name: str = DATA_AXIS,
) -> PartitionSpec:
    """Split the largest dimension divisible by ``num_shards``; ``P()`` if none or small.

    Ties go to the last such dimension (the output features of a kernel).
    """
    size = 1
    for d in shape:
        size *= d
    if num_shards <= 1 or size < min_size:
        return PartitionSpec()
    candidates = [i for i, d in enumerate(shape) if d % num_shards == 0]
    if not candidates:
        return PartitionSpec()
    best = max(candidates, key=lambda i: (shape[i], i))
    return PartitionSpec(*([None] * best), axis_name)


def _is_key(x: Any) -> bool:
    return jnp.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key)


def state_shardings(
    tree: Any,
    mesh: Mesh,
    *,
    fsdp: bool = False,
    min_fsdp_size: int = DEFAULT_MIN_FSDP_SIZE,
    axis_name: str = DATA_AXIS,
) -> Any:
    """A ``NamedSharding`` for every array of ``tree`` (e.g. ``nnx.state((model, optimizer))``).

    Replicated, or with ``fsdp=True`` split as :func:`fsdp_spec` says. PRNG keys and
    scalars are always replicated.
    """
    n = data_axis_size(mesh, axis_name)

    def one(x):
        if not fsdp or _is_key(x) or not hasattr(x, "shape"):
            return replicated(mesh)
        spec = fsdp_spec(tuple(x.shape), n, min_size=min_fsdp_size, axis_name=axis_name)
        return NamedSharding(mesh, spec)

    return jax.tree.map(one, tree)


def put(tree: Any, shardings: Any) -> Any:
    """``jax.device_put`` that also works across hosts.

    With several processes a host cannot ``device_put`` onto other hosts' devices; each
    host instead supplies the shards its own devices hold, cut from its copy of the value
    (every host must hold the same values: same seed, same initialisation).
    """
    if jax.process_count() == 1:
        return jax.device_put(tree, shardings)
    return jax.tree.map(_put_global, tree, shardings)


def _put_global(x: Any, sharding: NamedSharding) -> jax.Array:
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return jax.device_put(x, sharding)  # already global: only the layout changes
    if _is_key(x):  # typed PRNG keys travel as their raw uint32 data
        data = _put_global(jax.random.key_data(x), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def replicate(tree: Any, mesh: Mesh) -> Any:
    """A copy of ``tree`` with every array on every device of ``mesh``."""
    return put(tree, jax.tree.map(lambda _: replicated(mesh), tree))


def shard_state(
    *nodes: Any,
    mesh: Mesh,
    fsdp: bool = False,
    min_fsdp_size: int = DEFAULT_MIN_FSDP_SIZE,
) -> None:
    """Move the state of NNX objects (model, optimizer, ...) onto ``mesh``, in place.

    ``shard_state(model, optimizer, mesh=mesh)`` replicates them (or splits them FSDP-style);
    the objects keep working as before, their arrays now live on the mesh.
    """
    state = nnx.state(nodes)
    shardings = state_shardings(state, mesh, fsdp=fsdp, min_fsdp_size=min_fsdp_size)
    nnx.update(nodes, put(state, shardings))


def shard_batch(batch: Any, mesh: Mesh, *, axis_name: str = DATA_AXIS) -> Any:
    """Split a global batch held by this process along the leading axis of every array.

    For one process. With several hosts each holds only its slice: assemble the global
    batch with :func:`artifex.data.global_batch` instead.
    """
    n = data_axis_size(mesh, axis_name)
    for x in jax.tree.leaves(batch):
        check_divisible("global batch size", int(x.shape[0]), n, f"mesh {axis_name!r} axis size")
    return jax.device_put(batch, batch_sharding(mesh, axis_name))
