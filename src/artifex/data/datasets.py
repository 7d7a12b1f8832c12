"""Loading a TFDS image-classification split into memory, failing fast when it is absent.

The datasets are prepared by the TensorFlow-free builders of :mod:`artifex.data.tfds_builders`
(uint8 ``Tensor`` images in ``array_record`` files) and read whole through TFDS's random-access
``as_data_source``, so neither preparing nor reading imports TensorFlow. (DataRax's own
``TFDSEagerSource`` reads through ``tfds.load``, i.e. ``tf.data``, which needs TensorFlow; the
arrays read here go to DataRax's ``MemorySource`` instead, see :mod:`artifex.data.iterator`.)
Nothing is ever downloaded unless asked: the builder is checked for prepared data first, so a
missing dataset is an immediate, explanatory error instead of minutes of download retries.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

#: Datasets with a TensorFlow-free builder (:data:`artifex.data.tfds_builders.BUILDERS`).
SUPPORTED_DATASETS = ("mnist", "fashion_mnist", "cifar10")


class DatasetNotPreparedError(FileNotFoundError):
    """The dataset's files are not in the data directory and were not downloaded."""


class IncompleteDatasetError(DatasetNotPreparedError):
    """The dataset's version folder exists but lacks TFDS's metadata files.

    Left behind by an interrupted download or preparation. TFDS would "reuse" such a folder
    instead of downloading again, so nothing is attempted: delete ``directory`` and retry.
    """

    def __init__(self, message: str, directory: Path):
        super().__init__(message)
        self.directory = directory


#: The metadata files TFDS needs in a prepared dataset's version folder.
PREPARED_METADATA = ("dataset_info.json", "features.json")


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """One split in memory: uint8 NHWC ``images`` and int32 ``labels``."""

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    data_dir: Path
    #: True for the 5,000 shipped MNIST digits (config ``offline_5k``).
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
    """Import ``tensorflow_datasets`` (TensorFlow is never needed)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise ImportError(
            "artifex.data needs TensorFlow Datasets and DataRax: pip install 'artifex[data]'."
        ) from error
    return tfds


def builder_class(name: str) -> Any:
    """The TensorFlow-free TFDS builder class of a supported dataset, or a clear error."""
    from artifex.data.tfds_builders import BUILDERS

    if name not in BUILDERS:
        raise ValueError(
            f"dataset {name!r} is not supported; choose one of {', '.join(map(repr, BUILDERS))}."
        )
    return BUILDERS[name]


def not_prepared_message(name: str, data_dir: Path, version_dir: str) -> str:
    """Explain that ``name`` is absent from ``data_dir`` and how to get it."""
    lines = [
        f"TFDS dataset {name!r} is not prepared in {data_dir} (no {version_dir}); "
        "nothing was downloaded.",
        '- With internet access, pass download=True, or run: python -c "from '
        "artifex.data import load_image_dataset; "
        f"load_image_dataset('{name}', data_dir='{data_dir}', download=True)\"",
        "- If it is prepared elsewhere, pass data_dir= or set TFDS_DATA_DIR.",
    ]
    if name == "fashion_mnist":
        lines.append(
            "- Fashion-MNIST has no offline copy (no package ships a real subset of it); "
            "offline, train on mnist instead."
        )
    if name == "mnist":
        lines.append(
            "- Offline: artifex.data.load_mnist_or_offline() uses the 5,000 real MNIST digits "
            "shipped with artifex (artifex.data.prepare_offline_mnist writes them as the TFDS "
            "'mnist/offline_5k' dataset)."
        )
    return "\n".join(lines)


def prepared_builder(
    name: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    download_timeout: float = 10.0,
    config: str = "uint8",
) -> Any:
    """The TFDS builder for ``name`` (config ``config``), guaranteed prepared, or an error.

    Raises:
        ValueError: ``name`` is not one of :data:`SUPPORTED_DATASETS`.
        DatasetNotPreparedError: not prepared and ``download`` is off, or the download
            hosts are unreachable (found out within about ``download_timeout`` s).
    """
    from artifex.data.download import download_and_prepare

    cls = builder_class(name)
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    builder = cls(data_dir=os.fspath(root), config=config)
    version_dir = Path(builder.data_dir)
    message = not_prepared_message(name, root, os.fspath(version_dir))
    # TFDS's is_prepared() logs an absl warning ("Variant folder ... has no dataset_info.json")
    # for a missing version folder or metadata file: check for them first, and say it here.
    if version_dir.is_dir():
        missing = [file for file in PREPARED_METADATA if not (version_dir / file).is_file()]
        if not missing and builder.is_prepared():
            return builder
        if missing:
            raise IncompleteDatasetError(
                f"TFDS dataset {name!r} in {version_dir} is incomplete (no {missing[0]}), "
                "probably from an interrupted download or preparation; nothing was "
                f"downloaded. Delete that folder and run again.\n{message}",
                version_dir,
            )
    if not download:
        raise DatasetNotPreparedError(message)
    try:
        download_and_prepare(builder, timeout=download_timeout)
    except ConnectionError as error:
        raise DatasetNotPreparedError(f"{message}\nDownload failed: {error}") from error
    return builder


def read_split(builder: Any, split: str) -> tuple[np.ndarray, np.ndarray]:
    """All of ``split`` (TFDS split syntax) as uint8 NHWC images and int32 labels."""
    source = builder.as_data_source(split=split)
    records = source.__getitems__(range(len(source)))
    images = np.stack([record["image"] for record in records])
    labels = np.asarray([record["label"] for record in records], dtype=np.int32)
    return images, labels


def load_image_dataset(
    name: str,
    split: str = "train",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    download_timeout: float = 10.0,
    config: str = "uint8",
) -> ImageDataset:
    """Read one split of a supported dataset (e.g. ``"mnist"``) into uint8/int32 arrays.

    ``split`` takes TFDS split syntax (``"train"``, ``"test[:1000]"``). ``data_dir``
    defaults to :func:`default_data_dir`. Downloads only with ``download=True``.
    ``config="offline_5k"`` (MNIST) reads the shipped digits prepared by
    :func:`artifex.data.prepare_offline_mnist`.
    """
    builder = prepared_builder(
        name, data_dir, download=download, download_timeout=download_timeout, config=config
    )
    images, labels = read_split(builder, split)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"{name!r} images are {images.dtype} {images.shape}; expected uint8 NHWC.")
    return ImageDataset(
        name=name,
        split=split,
        images=images,
        labels=labels,
        num_classes=int(builder.info.features["label"].num_classes),
        data_dir=Path(builder.data_dir_root),
        offline_subset=builder.builder_config.name == "offline_5k",
    )
