"""Mesh construction and the replicated / FSDP layout rules, on this process's devices."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec

from artifex.generative_models.training.distributed import (
    data_axis_size,
    fsdp_spec,
    make_data_mesh,
    shard_batch,
    state_shardings,
)
from artifex.generative_models.training.distributed.mesh import check_divisible


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((3, 3, 8, 16), PartitionSpec(None, None, None, "data")),  # largest divisible dim
        ((3, 3, 32, 12), PartitionSpec(None, None, "data")),  # 32 > 12
        ((64, 64), PartitionSpec(None, "data")),  # a tie goes to the last dimension
        ((36, 3, 3, 6), PartitionSpec("data")),  # 6 and 3 do not divide by 4
        ((3, 3, 5, 7), PartitionSpec()),  # nothing divides: replicated
    ],
)
def test_fsdp_splits_the_largest_divisible_dimension(shape, expected) -> None:
    assert fsdp_spec(shape, 4, min_size=1) == expected


def test_fsdp_keeps_small_arrays_and_single_devices_replicated() -> None:
    assert fsdp_spec((64,), 4, min_size=65) == PartitionSpec()
    assert fsdp_spec((64,), 4, min_size=64) == PartitionSpec("data")
    assert fsdp_spec((64, 64), 1, min_size=1) == PartitionSpec()
    assert fsdp_spec((), 4, min_size=0) == PartitionSpec()


def test_data_mesh_spans_every_device_in_host_order() -> None:
    mesh = make_data_mesh()
    assert mesh.axis_names == ("data",)
    assert data_axis_size(mesh) == jax.device_count()
    order = [(d.process_index, d.id) for d in mesh.devices.flat]
    assert order == sorted(order)
    with pytest.raises(ValueError, match="at least one device"):
        make_data_mesh([])


def test_a_mesh_without_a_data_axis_is_refused_by_name() -> None:
    mesh = Mesh(np.array(jax.devices()[:1]), ("model",))
    with pytest.raises(ValueError, match=r"\('model',\) have no 'data' axis"):
        data_axis_size(mesh)


def test_state_shardings_replicate_keys_and_follow_the_rule_per_leaf() -> None:
    mesh = make_data_mesh(jax.devices()[:1])
    tree = {"w": jnp.zeros((8, 16)), "key": jax.random.key(0), "step": jnp.zeros((), jnp.int32)}
    for fsdp in (False, True):
        shardings = state_shardings(tree, mesh, fsdp=fsdp, min_fsdp_size=1)
        assert jax.tree.structure(shardings) == jax.tree.structure(tree)
        # One device: every layout is the replicated one.
        assert all(s.spec == PartitionSpec() for s in jax.tree.leaves(shardings))


def test_shard_batch_on_one_device_keeps_the_values() -> None:
    mesh = make_data_mesh(jax.devices()[:1])
    batch = {"image": np.arange(24, dtype=np.float32).reshape(6, 2, 2, 1)}
    placed = shard_batch(batch, mesh)
    assert placed["image"].sharding.spec == PartitionSpec("data")
    np.testing.assert_array_equal(np.asarray(placed["image"]), batch["image"])


def test_divisibility_error_names_value_divisor_and_fix() -> None:
    with pytest.raises(ValueError) as info:
        check_divisible("global batch size", 10, 4, "device count")
    message = str(info.value)
    assert "global batch size=10" in message and "device count=4" in message
    assert "8 or 12" in message
    with pytest.raises(ValueError, match=r"e\.g\. 4\)"):
        check_divisible("global batch size", 3, 4, "device count")
    check_divisible("global batch size", 12, 4, "device count")  # no error
