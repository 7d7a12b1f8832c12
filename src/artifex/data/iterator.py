"""Exact-epoch training batches through a DataRax ``Pipeline``, resumable mid-epoch.

The images and labels sit in a shuffled DataRax ``MemorySource`` (uploaded to the device once);
a ``Pipeline`` with ``drop_last`` serves one epoch per session: each epoch is one permutation
drawn from the seed and the epoch number, every example is seen once, and the final short batch
is dropped (its shape would retrace every consumer) or, with ``drop_remainder=False``, served
short. One pipeline stage preprocesses the batch (uint8 -> [-1, 1], pad) in the same compiled
step. The position is DataRax's own (epoch, records served), so resuming mid-epoch is exact.

On several hosts, ``batch_size`` is the global batch. Every host runs the same pipeline (same
seed, same order) and keeps, of each global batch, the contiguous slice
``[p * B / P, (p + 1) * B / P)`` of process ``p`` out of ``P``: the hosts' slices, in process
order, make up exactly the single-host batch, so epochs stay exact and resuming does not depend
on the host count. DataRax's own worker partition (``MemorySourceConfig(num_workers=P)``) is not
used: it deals examples out round-robin, so a host's slice is not a contiguous part of the
single-host batch, and when the dataset size is not a multiple of ``P`` the hosts get different
numbers of batches per epoch and their collectives fall out of step.
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


class SlicePreprocess(nnx.Module):
    """Pipeline stage: this host's rows of a raw batch -> float32 NHWC in [-1, 1], int32 labels."""

    def __init__(self, pad_to: int | None, start: int, size: int) -> None:
        self.pad_to, self.start, self.size = pad_to, start, size

    def __call__(self, batch: dict[str, jax.Array]) -> Batch:
        rows = slice(self.start, self.start + self.size)
        return {
            "image": preprocess_images(batch["image"][rows], self.pad_to),
            "label": batch["label"][rows].astype(jnp.int32),
        }


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
        images, labels = np.asarray(images), np.asarray(labels)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 NHWC, got {images.dtype} {images.shape}.")
        if images.shape[1] in (1, 3) and images.shape[3] not in (1, 3):
            raise ValueError(
                f"images have shape {images.shape}, which looks like NCHW; pass NHWC images "
                "(N, height, width, channels): images.transpose(0, 2, 3, 1)"
            )
        if labels.shape != images.shape[:1]:
            raise ValueError(f"labels {labels.shape} do not match images {images.shape}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise TypeError(
                f"batch_size={batch_size!r} must be an integer, e.g. 64 (got "
                f"{type(batch_size).__name__})"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size!r} must be >= 1.")
        _check_seed(seed)
        process_index, process_count = _process_slot(
            batch_size, drop_remainder, process_index, process_count
        )
        self.process_index, self.process_count = process_index, process_count
        self.num_examples = int(images.shape[0])
        self.batch_size = int(batch_size)
        self.local_batch_size = self.batch_size // process_count
        self.drop_remainder = drop_remainder
        if drop_remainder:
            self.batches_per_epoch = self.num_examples // self.batch_size
        else:
            self.batches_per_epoch = math.ceil(self.num_examples / self.batch_size)
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"{self.num_examples} examples make no full batch of {batch_size}; "
                "lower batch_size or pass drop_remainder=False."
            )
        self._data = {"image": images, "label": labels}
        self._pad_to = pad_to
        self.image_shape = tuple(
            jax.eval_shape(lambda x: preprocess_images(x, pad_to), images[:1]).shape[1:]
        )
        self._epoch = 0
        self._batch_index = 0
        self._session: Any = None  # datarax PipelineIterator over the current epoch
        self._build(int(seed))

    def _build(self, seed: int) -> None:
        """The DataRax source and pipeline; the seed fixes every epoch's order."""
        from datarax import Pipeline
        from datarax.sources import MemorySource, MemorySourceConfig

        self.seed = seed
        source = MemorySource(MemorySourceConfig(shuffle=True), self._data, rngs=nnx.Rngs(seed))
        start = self.process_index * self.local_batch_size
        self._pipeline = Pipeline(
            source=source,
            stages=[SlicePreprocess(self._pad_to, start, self.local_batch_size)],
            batch_size=self.batch_size,
            rngs=nnx.Rngs(seed),
            drop_last=self.drop_remainder,
            num_epochs=1,
        )
        self._session = None

    def __len__(self) -> int:
        return self.batches_per_epoch

    @property
    def current_epoch(self) -> int:
        """Epoch the next batch belongs to."""
        return self._epoch if self._batch_index < self.batches_per_epoch else self._epoch + 1

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Indices of all examples in ``epoch``'s order, as the pipeline serves them.

        Runs a copy of the pipeline that serves example indices, one epoch in one batch; for
        checks and diagnostics, not for the training loop.
        """
        from datarax import Pipeline
        from datarax.sources import MemorySource, MemorySourceConfig

        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}.")
        indices = {"index": np.arange(self.num_examples, dtype=np.int32)}
        source = MemorySource(MemorySourceConfig(shuffle=True), indices, rngs=nnx.Rngs(self.seed))
        probe = Pipeline(
            source=source,
            stages=[],
            batch_size=self.num_examples,
            rngs=nnx.Rngs(self.seed),
            num_epochs=1,
        )
        session = iter(probe)
        session.set_state({**session.get_state(), "epoch": int(epoch), "position": 0})
        return np.asarray(next(session)["index"])

    def _start_session(self) -> None:
        session = iter(self._pipeline)
        session.set_state(
            {
                **session.get_state(),
                "epoch": self._epoch,
                "position": self._batch_index * self.batch_size,
            }
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
        _check_seed(seed)
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}.")
        if seed != self.seed:
            self._build(seed)
        self._epoch, self._batch_index, self._session = epoch, batch_index, None


def _check_seed(seed: int) -> None:
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}.")


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
    shipped digits when full MNIST is absent and cannot be downloaded. ``batch_size`` is
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
