"""Random flips: each image is itself or its mirror, keyed by (seed, epoch, batch), resumable."""

from __future__ import annotations

import numpy as np

from artifex.data.augment import RandomFlipIterator, random_flip
from artifex.data.iterator import ImageBatchIterator


def make(seed: int = 0) -> RandomFlipIterator:
    images = np.random.default_rng(0).integers(0, 256, (24, 4, 6, 3), dtype=np.uint8)
    return RandomFlipIterator(
        ImageBatchIterator(images, np.zeros(24, np.int32), 8, pad_to=None), seed=seed
    )


def test_each_image_is_itself_or_its_mirror():
    images = np.random.default_rng(1).normal(size=(64, 3, 5, 2)).astype(np.float32)
    out = np.asarray(random_flip(images, 0, 0, 0))
    same = np.all(out == images, axis=(1, 2, 3))
    mirrored = np.all(out == images[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored)
    assert 16 < mirrored.sum() < 48  # about half of 64
    again = np.asarray(random_flip(images, 0, 0, 0))
    np.testing.assert_array_equal(out, again)
    other = np.asarray(random_flip(images, 0, 0, 1))  # another batch index: other coins
    assert not np.array_equal(out, other)


def test_flips_follow_the_batch_position_across_resume():
    straight = make()
    batches = [np.asarray(b["image"]) for b in straight.epoch()]
    plain = [np.asarray(b["image"]) for b in straight.iterator.epoch(0)]
    assert any(not np.array_equal(a, b) for a, b in zip(batches, plain, strict=True))
    resumed = make()
    next(resumed)
    state = resumed.get_state()
    fresh = make()
    fresh.set_state(state)
    assert fresh.batches_per_epoch == 3 and len(fresh) == 3
    for expected, batch in zip(batches[1:], fresh.epoch(), strict=True):
        np.testing.assert_array_equal(np.asarray(batch["image"]), expected)
