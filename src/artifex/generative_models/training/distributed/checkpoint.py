"""Save sharded training state and restore it on any number of devices or hosts.

Orbax writes every array as a tensorstore chunked by its global indices, together with its
global shape; each host writes the shards it owns. Restoring asks for the global array
under a *target* sharding, and each host reads the chunks its devices need, so a
checkpoint written from 4 devices (replicated or FSDP) restores onto 1, or onto 8, or onto
another number of hosts. On several hosts every process calls both functions with the same
directory on a shared file system.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from jax.sharding import Mesh, SingleDeviceSharding

from artifex.generative_models.training.distributed.placement import (
    DEFAULT_MIN_FSDP_SIZE,
    state_shardings,
)


def save_sharded(directory: str | os.PathLike[str], tree: Any, *, force: bool = False) -> Path:
    """Write ``tree`` (arrays on any mesh, e.g. ``{"state": nnx.state((model, opt))}``).

    Blocks until the checkpoint is complete; ``force=True`` replaces an existing one.
    Returns the absolute directory.
    """
    path = Path(directory).absolute()
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, tree, force=force)
        checkpointer.wait_until_finished()
    return path


def restore_sharded(
    directory: str | os.PathLike[str],
    target: Any,
    mesh: Mesh | None = None,
    *,
    fsdp: bool = False,
    min_fsdp_size: int = DEFAULT_MIN_FSDP_SIZE,
) -> Any:
    """Read a :func:`save_sharded` checkpoint laid out like ``target``.

    ``target`` has the saved structure, shapes and dtypes (arrays or
    ``jax.ShapeDtypeStruct``, e.g. the state of a freshly built model). The arrays come back
    on ``mesh`` (replicated, or split as :func:`state_shardings` says with ``fsdp=True``);
    without a mesh, with the sharding of each target leaf (one default device if it has
    none). Put them back with ``nnx.update((model, optimizer), restored["state"])``.
    """
    if mesh is not None:
        shardings = state_shardings(target, mesh, fsdp=fsdp, min_fsdp_size=min_fsdp_size)
    else:
        default = SingleDeviceSharding(jax.local_devices()[0])
        shardings = jax.tree.map(lambda x: getattr(x, "sharding", None) or default, target)
    abstract = jax.tree.map(
        lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), target, shardings
    )
    with ocp.StandardCheckpointer() as checkpointer:
        return checkpointer.restore(Path(directory).absolute(), abstract)
