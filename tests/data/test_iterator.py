"""Exact epochs, determinism and resume of ImageBatchIterator.

Synthetic examples carry their own id (label == id, and the id is also written into the
pixels) so coverage and image/label pairing are checked without trusting the iterator.
"""

from __future__ import annotations

import json
import logging

import jax
import numpy as np
import pytest

from artifex.data.iterator import ImageBatchIterator, make_train_iterator


def _identified(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Images whose two first pixels spell the example id in base 256; labels = ids."""
    ids = np.arange(n)
    images = np.zeros((n, 2, 2, 1), np.uint8)
    images[:, 0, 0, 0], images[:, 0, 1, 0] = ids // 256, ids % 256
    return images, ids.astype(np.int32)


def _ids(batch: dict) -> np.ndarray:
    """Example ids read back from the preprocessed pixels, checked against the labels."""
    pixels = np.rint((np.asarray(batch["image"]) + 1.0) * 127.5).astype(np.int64)
    ids = pixels[:, 0, 0, 0] * 256 + pixels[:, 0, 1, 0]
    np.testing.assert_array_equal(ids, np.asarray(batch["label"]))
    return ids


def _make(n: int = 1000, batch_size: int = 100, **kwargs) -> ImageBatchIterator:
    images, labels = _identified(n)
    return ImageBatchIterator(images, labels, batch_size, pad_to=None, **kwargs)


def test_every_epoch_is_a_fresh_permutation_of_all_examples() -> None:
    it = _make(seed=3)
    orders = []
    for _ in range(3):
        batches = list(it.epoch())
        assert len(batches) == it.batches_per_epoch == len(it) == 10
        order = np.concatenate([_ids(b) for b in batches])
        np.testing.assert_array_equal(np.sort(order), np.arange(1000))  # each once
        orders.append(order)
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(orders[1], orders[2])


def test_short_final_batch_is_dropped_without_wrap_around() -> None:
    it = _make(n=1003)
    assert it.batches_per_epoch == 10
    for epoch in range(2):
        batches = list(it.epoch())
        assert [b["label"].shape for b in batches] == [(100,)] * 10
        seen = np.concatenate([_ids(b) for b in batches])
        # The epoch's permutation, minus its last 3 examples; nothing repeated.
        np.testing.assert_array_equal(seen, it.epoch_order(epoch)[:1000])
        assert np.unique(seen).size == 1000
    assert it.get_state()["epoch"] == 1 and it.current_epoch == 2


def test_keeping_the_remainder_yields_every_example_once() -> None:
    it = _make(n=1003, drop_remainder=False)
    sizes = [b["label"].shape[0] for b in it.epoch()]
    assert sizes == [100] * 10 + [3] and it.batches_per_epoch == 11
    seen = np.concatenate([_ids(b) for b in it.epoch()])
    np.testing.assert_array_equal(np.sort(seen), np.arange(1003))


def test_same_seed_same_batches_and_order_depends_only_on_seed_and_epoch() -> None:
    a, b, other = _make(seed=7), _make(seed=7), _make(seed=8)
    first = [_ids(x) for x in (next(a) for _ in range(25))]
    second = [_ids(x) for x in (next(b) for _ in range(25))]
    for x, y in zip(first, second, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(first[0], _ids(next(other)))
    # Jumping straight to epoch 2 gives what sequential iteration reached after 20 batches.
    jumped = np.concatenate([_ids(x) for x in _make(seed=7).epoch(2)])
    np.testing.assert_array_equal(jumped[:500], np.concatenate(first[20:25]))


def test_resume_mid_epoch_gives_exactly_the_remaining_batches() -> None:
    original = _make(n=1003, seed=11)
    for _ in range(10 + 4):  # epoch 0, then 4 batches into epoch 1
        next(original)
    state = json.loads(json.dumps(original.get_state()))
    assert state == {
        "seed": 11,
        "epoch": 1,
        "batch_index": 4,
        "batch_size": 100,
        "num_examples": 1003,
    }
    expected = [_ids(next(original)) for _ in range(12)]  # crosses into epoch 2
    resumed = _make(n=1003, seed=0)  # the state's seed wins
    resumed.set_state(state)
    for want in expected:
        np.testing.assert_array_equal(_ids(next(resumed)), want)


def test_breaking_out_of_an_epoch_resumes_where_it_stopped() -> None:
    it = _make()
    head = []
    for batch in it.epoch():
        head.append(_ids(batch))
        if len(head) == 3:
            break
    tail = [_ids(batch) for batch in it.epoch()]
    assert len(tail) == 7
    np.testing.assert_array_equal(np.concatenate(head + tail), it.epoch_order(0))


def test_rgb_32x32_images_keep_their_shape_and_values() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(64, 32, 32, 3), dtype=np.uint8)  # CIFAR-like
    it = ImageBatchIterator(images, np.zeros(64, np.int32), 16, seed=2)
    assert it.image_shape == (32, 32, 3)
    batch = next(it)
    rows = it.epoch_order(0)[:16]
    expected = (images[rows] / 127.5 - 1.0).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(batch["image"]), expected)


def test_set_state_rejects_a_different_batch_size_or_dataset() -> None:
    state = _make().get_state()
    with pytest.raises(ValueError, match="batch_size"):
        _make(batch_size=50).set_state(state)
    with pytest.raises(ValueError, match="num_examples"):
        _make(n=999).set_state(state)


def test_invalid_inputs_are_rejected() -> None:
    images, labels = _identified(10)
    with pytest.raises(ValueError, match="no full batch"):
        ImageBatchIterator(images, labels, 16)
    with pytest.raises(ValueError, match="uint8"):
        ImageBatchIterator(images.astype(np.float32), labels, 4)
    with pytest.raises(ValueError, match="do not match"):
        ImageBatchIterator(images, labels[:5], 4)


class _Compiles(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.getMessage().startswith("Compiling")


def test_later_epochs_compile_nothing() -> None:
    # Sizes no other test uses: compiled programs are cached per shape across iterators.
    it = _make(n=1009, batch_size=97, drop_remainder=False)
    handler = _Compiles()
    logging.getLogger("jax").addHandler(handler)
    try:
        with jax.log_compiles(True):
            list(it.epoch())
            first = handler.count
            for _ in range(3):
                list(it.epoch())
    finally:
        logging.getLogger("jax").removeHandler(handler)
    assert first > 0  # the detector works
    assert handler.count == first


def test_real_mnist_batches_cover_the_split_once(offline_mnist_train) -> None:
    data = offline_mnist_train
    row_of = {image.tobytes(): row for row, image in enumerate(data.images)}
    assert len(row_of) == len(data)  # every digit is distinct, so pixels identify it
    it = ImageBatchIterator(data.images, data.labels, 256, seed=1)
    assert it.batches_per_epoch == 4000 // 256 and it.image_shape == (32, 32, 1)
    seen = []
    for batch in it.epoch():
        image, label = np.asarray(batch["image"]), np.asarray(batch["label"])
        assert image.dtype == np.float32 and image.shape == (256, 32, 32, 1)
        assert label.dtype == np.int32
        assert image.min() == -1.0 and image.max() == 1.0
        assert np.all(image[:, :2] == -1.0) and np.all(image[:, 30:] == -1.0)
        assert np.all(image[:, :, :2] == -1.0) and np.all(image[:, :, 30:] == -1.0)
        raw = np.rint((image[:, 2:30, 2:30] + 1.0) * 127.5).astype(np.uint8)
        rows = np.array([row_of[x.tobytes()] for x in raw])
        np.testing.assert_allclose(
            image[:, 2:30, 2:30], data.images[rows] / 127.5 - 1.0, rtol=0, atol=1e-6
        )
        np.testing.assert_array_equal(label, data.labels[rows])
        seen.append(rows)
    seen = np.concatenate(seen)
    assert seen.size == 15 * 256 and np.unique(seen).size == seen.size


def test_make_train_iterator_is_one_call_from_a_tfds_name(offline_mnist_dir) -> None:
    it = make_train_iterator(
        "mnist", batch_size=128, seed=5, pad_to=None, offline_fallback=True, download=False
    )
    batch = next(it)
    assert batch["image"].shape == (128, 28, 28, 1) and it.batches_per_epoch == 4000 // 128
    with pytest.raises(ValueError, match="only available for mnist"):
        make_train_iterator("cifar10", offline_fallback=True)
