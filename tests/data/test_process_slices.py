"""Each host's slice of every global batch, and assembling the global batch.

Examples carry their id in their pixels and label (as in ``test_iterator``), so the slices
are checked against the single-host batches without trusting the iterator.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec

from artifex.data.global_batch import global_batch
from artifex.data.iterator import ImageBatchIterator


def _identified(n: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.arange(n)
    images = np.zeros((n, 2, 2, 1), np.uint8)
    images[:, 0, 0, 0], images[:, 0, 1, 0] = ids // 256, ids % 256
    return images, ids.astype(np.int32)


def _ids(batch: dict) -> np.ndarray:
    pixels = np.rint((np.asarray(batch["image"]) + 1.0) * 127.5).astype(np.int64)
    ids = pixels[:, 0, 0, 0] * 256 + pixels[:, 0, 1, 0]
    np.testing.assert_array_equal(ids, np.asarray(batch["label"]))
    return ids


def _make(**kwargs) -> ImageBatchIterator:
    images, labels = _identified(50)  # 6 global batches of 8, 2 examples left over
    return ImageBatchIterator(images, labels, 8, pad_to=None, seed=4, **kwargs)


@pytest.fixture(scope="module")
def iterators() -> tuple[ImageBatchIterator, list[ImageBatchIterator]]:
    return _make(), [_make(process_index=p, process_count=2) for p in range(2)]


def test_host_slices_concatenate_to_the_single_host_batches(iterators) -> None:
    single, hosts = iterators
    assert single.process_count == 1 and single.local_batch_size == 8
    assert [h.local_batch_size for h in hosts] == [4, 4]
    assert all(h.batches_per_epoch == single.batches_per_epoch == 6 for h in hosts)
    for _ in range(8):  # across the first epoch boundary
        expected = _ids(next(single))
        slices = [_ids(next(h)) for h in hosts]
        np.testing.assert_array_equal(np.concatenate(slices), expected)
    assert all(h.get_state() == single.get_state() for h in hosts)


def test_a_host_count_change_resumes_at_the_same_global_batch(iterators) -> None:
    single, hosts = iterators
    state = single.get_state()  # the state holds no host count: it moves between setups
    hosts[1].set_state(state)
    expected = single.epoch_order(state["epoch"])
    start = state["batch_index"] * 8
    np.testing.assert_array_equal(_ids(next(hosts[1])), expected[start + 4 : start + 8])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"process_count": 3, "process_index": 0}, r"batch_size=8 .*process_count=3.*6 or 9"),
        ({"process_count": 2, "process_index": 2}, r"process_index=2 must lie in 0\.\.1"),
        (
            {"process_count": 2, "process_index": 0, "drop_remainder": False},
            "drop_remainder=False",
        ),
    ],
)
def test_slices_that_cannot_be_cut_evenly_are_refused(kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        _make(**kwargs)


def test_global_batch_on_one_process_is_the_local_batch_split_along_data() -> None:
    mesh = Mesh(np.array(jax.devices()[:1]), ("data",))
    local = {"image": np.arange(16.0).reshape(4, 2, 2, 1), "label": np.arange(4)}
    batch = global_batch(local, mesh)
    for name, value in local.items():
        assert batch[name].shape == value.shape
        assert batch[name].sharding.spec == PartitionSpec("data")
        np.testing.assert_array_equal(np.asarray(batch[name]), value)
    with pytest.raises(ValueError, match="no 'batch' axis"):
        global_batch(local, mesh, axis_name="batch")
