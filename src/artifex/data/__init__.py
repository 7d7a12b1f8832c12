"""Training data: TFDS image datasets through a DataRax pipeline, exact epochs, offline MNIST.

Importing this package loads nothing heavy: JAX, DataRax, TFDS and TensorFlow load on the
first use of a name below.

- :func:`make_train_iterator` - one call from a TFDS name to shuffled training batches.
- :class:`ImageBatchIterator` - exact-epoch, seeded, resumable batches over arrays.
- :func:`load_image_dataset` - a TFDS split as uint8/int32 arrays; never downloads unasked.
- :func:`prepare_offline_mnist` / :func:`load_mnist_or_offline` - real MNIST digits offline.
- :func:`preprocess_images` - uint8 NHWC -> float32 in [-1, 1], padded with -1.
- :func:`global_batch` - every host's slice of a batch as one array split across devices.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from artifex._lazy import lazy_exports

_EXPORTS = {
    "SUPPORTED_DATASETS": "datasets",
    "DatasetNotPreparedError": "datasets",
    "ImageDataset": "datasets",
    "IncompleteDatasetError": "datasets",
    "default_data_dir": "datasets",
    "global_batch": "global_batch",
    "load_image_dataset": "datasets",
    "ImageBatchIterator": "iterator",
    "make_train_iterator": "iterator",
    "load_mnist_or_offline": "offline_mnist",
    "prepare_offline_mnist": "offline_mnist",
    "preprocess_images": "preprocessing",
}

__all__ = [
    "SUPPORTED_DATASETS",
    "DatasetNotPreparedError",
    "ImageBatchIterator",
    "ImageDataset",
    "IncompleteDatasetError",
    "default_data_dir",
    "global_batch",
    "load_image_dataset",
    "load_mnist_or_offline",
    "make_train_iterator",
    "prepare_offline_mnist",
    "preprocess_images",
]

if TYPE_CHECKING:
    from artifex.data.datasets import (
        SUPPORTED_DATASETS,
        DatasetNotPreparedError,
        ImageDataset,
        IncompleteDatasetError,
        default_data_dir,
        load_image_dataset,
    )
    from artifex.data.global_batch import global_batch
    from artifex.data.iterator import ImageBatchIterator, make_train_iterator
    from artifex.data.offline_mnist import load_mnist_or_offline, prepare_offline_mnist
    from artifex.data.preprocessing import preprocess_images


__getattr__, __dir__ = lazy_exports(__name__, {k: f".{v}" for k, v in _EXPORTS.items()})
