"""Checkpoint layout: small arrays packed per dtype round-trip exactly; mismatches are named."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from artifex.generative_models.training import array_packing as packing


def tree():
    rng = np.random.default_rng(0)
    return {
        "bias": jnp.asarray(rng.normal(size=(7,)), jnp.float32),
        "big": jnp.asarray(rng.normal(size=(packing.PACK_LIMIT + 3,)), jnp.float32),
        "count": jnp.asarray(5, jnp.int32),
        "key": jnp.asarray([1, 2], jnp.uint32),
        "scale": jnp.asarray(rng.normal(size=(2, 3)), jnp.float32),
        "flag": jnp.asarray([True, False]),
    }


def test_pack_and_unpack_round_trip_every_leaf_exactly():
    flat = jax.tree_util.tree_flatten_with_path(tree())[0]
    leaves = [leaf for _, leaf in flat]
    layout = packing.describe(flat)
    assert [e["packed"] for e in layout] == [True, False, True, True, True, True]
    items, finite, sums = packing.pack(leaves, layout)
    assert bool(finite)
    assert sums.shape == (len(leaves), 2)
    assert set(items["packed"]) == {"float32", "int32", "uint32", "bool"}
    assert items["packed"]["float32"].shape == (7 + 6,)  # bias then scale, in leaf order
    assert list(items["arrays"]) == ["1"]
    host = jax.tree.map(np.asarray, items)  # as a restore hands them back
    restored = packing.unpack(host, layout, leaves)
    for original, back in zip(leaves, restored, strict=True):
        assert back.dtype == original.dtype and back.shape == original.shape
        np.testing.assert_array_equal(np.asarray(back), np.asarray(original))
    assert packing.first_mismatch(layout, np.asarray(sums), restored) is None


@pytest.mark.parametrize("change", ["one_bit", "swap"])
def test_checksums_name_a_changed_leaf(change):
    """A flipped low bit changes the plain sum; two swapped values only the weighted one."""
    flat = jax.tree_util.tree_flatten_with_path(tree())[0]
    leaves = [leaf for _, leaf in flat]
    layout = packing.describe(flat)
    _, _, sums = packing.pack(leaves, layout)
    damaged = list(leaves)
    index = [e["path"] for e in layout].index("['scale']")
    scale = np.asarray(damaged[index]).copy()
    if change == "one_bit":
        bits = scale.view(np.uint32)
        bits[1, 2] ^= 1
    else:
        scale[0, 0], scale[0, 1] = scale[0, 1], scale[0, 0]
    damaged[index] = jnp.asarray(scale)
    assert packing.first_mismatch(layout, np.asarray(sums), damaged) == "['scale']"


@pytest.mark.parametrize("where", ["bias", "big"])
def test_a_non_finite_value_anywhere_clears_the_flag(where):
    values = tree()
    values[where] = values[where].at[0].set(jnp.nan)
    flat = jax.tree_util.tree_flatten_with_path(values)[0]
    _, finite, _ = packing.pack([leaf for _, leaf in flat], packing.describe(flat))
    assert not bool(finite)


def test_layout_mismatch_names_the_array_and_both_shapes():
    stored = packing.describe(jax.tree_util.tree_flatten_with_path(tree())[0])
    changed = tree()
    changed["scale"] = jnp.zeros((3, 3), jnp.float32)
    live = packing.describe(jax.tree_util.tree_flatten_with_path(changed)[0])
    with pytest.raises(
        ValueError, match=r"stores \['scale'\] with shape \[2, 3\].*has shape \[3, 3\]"
    ):
        packing.check_compatible(stored, live, "checkpoint 4")
    del changed["bias"]
    live = packing.describe(jax.tree_util.tree_flatten_with_path(changed)[0])
    with pytest.raises(
        ValueError, match=r"it holds \[\"\['bias'\]\"\] that the object does not have"
    ):
        packing.check_compatible(stored, live, "checkpoint 4")


def test_packed_checksums_equal_the_per_array_definition():
    """The packing program's segment sums give each array the checksum it has alone, so
    checkpoints written with per-array sums verify the same way."""
    import jax.numpy as jnp

    from artifex.generative_models.training import array_packing as ap

    rng = np.random.default_rng(0)
    leaves = [
        jnp.asarray(rng.normal(size=(3, 5)), jnp.float32),
        jnp.asarray(rng.integers(-9, 9, size=(7,)), jnp.int32),
        jnp.asarray(rng.normal(size=(70_000,)), jnp.float32),  # large: written as is
        jnp.asarray(rng.normal(size=(4, 2)), jnp.bfloat16),
        jnp.asarray(rng.normal(size=(2,)), jnp.float32),
        jnp.asarray([True, False, True]),
    ]
    flat = [((jax.tree_util.SequenceKey(i),), leaf) for i, leaf in enumerate(leaves)]
    layout = ap.describe(flat)
    assert [e["packed"] for e in layout] == [True, True, False, True, True, True]
    got = np.asarray(ap.checksums(leaves, layout))
    expected = np.stack([np.asarray(ap._checksum(leaf)) for leaf in leaves])
    np.testing.assert_array_equal(got, expected)
