"""Assemble the global batch from every host's slice, laid out along a mesh's batch axis.

With ``P`` processes, process ``p`` holds rows ``[p * B / P, (p + 1) * B / P)`` of each
global batch of ``B`` (what :class:`ImageBatchIterator` yields with ``process_count=P``).
``jax.make_array_from_process_local_data`` turns these slices into one global ``jax.Array``
split along the mesh axis: no host ever holds the whole batch, and nothing is copied
between hosts. On a single process the slice is the whole batch.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec


def global_batch(local_batch: Any, mesh: Mesh, *, axis_name: str = "data") -> Any:
    """Global arrays, split along ``axis_name``, from this process's slice of the batch.

    ``local_batch`` is a pytree (e.g. ``{"image": ..., "label": ...}``) of arrays whose
    leading axis is this process's share. The global batch size (local size times
    ``jax.process_count()``) must divide by the size of ``axis_name``.
    """
    if axis_name not in mesh.shape:
        raise ValueError(
            f"mesh axes {tuple(mesh.axis_names)} have no {axis_name!r} axis to split the batch"
        )
    devices = int(mesh.shape[axis_name])
    processes = jax.process_count()
    sharding = NamedSharding(mesh, PartitionSpec(axis_name))

    def one(x: Any) -> jax.Array:
        local = int(x.shape[0])
        total = local * processes
        if total % devices:
            lower, upper = (total // devices) * devices, (total // devices + 1) * devices
            raise ValueError(
                f"global batch size={total} ({processes} process(es) x {local}) does not "
                f"divide by the {devices} devices of mesh axis {axis_name!r}; use a global "
                f"batch that is a multiple of {devices}, e.g. "
                f"{upper if lower == 0 else f'{lower} or {upper}'}"
            )
        return jax.make_array_from_process_local_data(sharding, x, (total, *tuple(x.shape[1:])))

    return jax.tree.map(one, local_batch)
