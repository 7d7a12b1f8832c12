"""The device mesh of data-parallel training: one axis, ``data``, over every device.

Devices are ordered process by process, so host ``p`` owns a contiguous block of the
``data`` axis. That is what lets each host feed its own contiguous slice of every global
batch (``artifex.data.global_batch``): the slices of hosts ``0..P-1`` concatenate, in that
order, into the global batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

#: Name of the mesh axis the batch is split along.
DATA_AXIS = "data"


def make_data_mesh(
    devices: Sequence[jax.Device] | None = None, *, axis_name: str = DATA_AXIS
) -> Mesh:
    """A 1-D mesh over ``devices`` (default: all devices of all hosts), ordered by host."""
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("make_data_mesh needs at least one device, got an empty list")
    devices.sort(key=lambda d: (d.process_index, d.id))
    return Mesh(np.array(devices), (axis_name,))


def data_axis_size(mesh: Mesh, axis_name: str = DATA_AXIS) -> int:
    """How many devices the batch is split over."""
    if axis_name not in mesh.shape:
        raise ValueError(
            f"mesh axes {tuple(mesh.axis_names)} have no {axis_name!r} axis; build the mesh "
            f"with make_data_mesh() or name its batch axis {axis_name!r}"
        )
    return int(mesh.shape[axis_name])


def batch_sharding(mesh: Mesh, axis_name: str = DATA_AXIS) -> NamedSharding:
    """Leading (batch) dimension split along ``axis_name``, other dimensions whole."""
    data_axis_size(mesh, axis_name)
    return NamedSharding(mesh, PartitionSpec(axis_name))


def replicated(mesh: Mesh) -> NamedSharding:
    """A full copy on every device of ``mesh``."""
    return NamedSharding(mesh, PartitionSpec())


def check_divisible(what: str, value: int, divisor: int, divisor_name: str) -> None:
    """Raise a ``ValueError`` naming ``what=value``, the divisor and the nearest fixes."""
    if value % divisor:
        lower, upper = (value // divisor) * divisor, (value // divisor + 1) * divisor
        fix = f"{upper}" if lower == 0 else f"{lower} or {upper}"
        raise ValueError(
            f"{what}={value} does not divide by {divisor_name}={divisor}; use a multiple of "
            f"{divisor} (e.g. {fix}) or a mesh whose {divisor_name} divides {value}"
        )
