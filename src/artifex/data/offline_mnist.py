"""Real MNIST without internet: the 5,000 shipped digits as the TFDS dataset ``mnist/offline_5k``.

TFDS cannot download on offline machines (CI included), so artifex ships 5,000 real MNIST
digits (500 per class) in MNIST's own idx format (``artifex/data/mnist_5k``). The ``offline_5k``
config of :class:`artifex.data.tfds_builders.Mnist` prepares them with the same parsing and
writing code a full MNIST download goes through, so an offline run reads its data exactly the
way an online run does.

The split is deterministic and stratified: per class, the first 400 digits in file order are
``train`` and the last 100 are ``test`` (4,000 / 1,000).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from artifex.data.datasets import (
    DatasetNotPreparedError,
    ImageDataset,
    IncompleteDatasetError,
    default_data_dir,
    import_tfds,
    load_image_dataset,
)
from artifex.data.idx import read_idx

logger = logging.getLogger("artifex")

TRAIN_PER_CLASS = 400
TEST_PER_CLASS = 100
NUM_CLASSES = 10
#: The TFDS config of the shipped digits.
OFFLINE_CONFIG = "offline_5k"
_FILE_PREFIX = {"train": "train", "test": "t10k"}


def offline_digits_dir() -> Path:
    """The folder of the shipped idx files inside the installed package (imports no TFDS)."""
    from importlib import resources

    return Path(str(resources.files("artifex.data") / "mnist_5k"))


def read_offline_digits(split: str) -> tuple[np.ndarray, np.ndarray]:
    """One split of the shipped digits as uint8 (N, 28, 28, 1) images and int64 labels.

    Reads the idx files directly (no TFDS): what the sample-quality metric uses.
    """
    if split not in _FILE_PREFIX:
        raise ValueError(f"split={split!r} is not supported; choose 'train' or 'test'")
    folder, prefix = offline_digits_dir(), _FILE_PREFIX[split]
    images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")[..., None]
    labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return images, labels


def prepare_offline_mnist(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Prepare the shipped digits as TFDS ``mnist/offline_5k`` under ``data_dir``; return it.

    Pass the returned directory as ``data_dir`` (or ``TFDS_DATA_DIR``). Defaults to
    :func:`artifex.data.default_data_dir`. Does nothing if already prepared there.
    """
    from artifex.data.tfds_builders import Mnist

    tfds = import_tfds()
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    builder = Mnist(data_dir=os.fspath(root), config=OFFLINE_CONFIG)
    if not (Path(builder.data_dir).is_dir() and builder.is_prepared()):
        # Under a second of work: TFDS's progress bars and "downloading" lines would be noise.
        # TFDS prints its "downloading and preparing" lines to stdout by design.
        tfds.display_progress_bar(False)
        absl_logger = logging.getLogger("absl")
        level = absl_logger.level
        absl_logger.setLevel(logging.WARNING)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                builder.download_and_prepare()
        finally:
            absl_logger.setLevel(level)
            tfds.display_progress_bar(True)
    return root


def load_mnist_or_offline(
    split: str = "train",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    download_timeout: float = 10.0,
    announce: Callable[[str], None] = logger.info,
) -> ImageDataset:
    """Full MNIST if it is (or can quickly be made) available, else the shipped subset.

    Offline, the download attempt fails within about ``download_timeout`` s, the subset is
    prepared in the same data directory (config ``offline_5k``, apart from full MNIST) and
    ``announce`` gets one line saying which data is used and how to get full MNIST.
    """
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    full_mnist = (
        'For full MNIST (60,000 / 10,000) run with internet access: python -c "from artifex.data '
        f"import load_image_dataset; load_image_dataset('mnist', data_dir='{root}', "
        'download=True)"'
    )
    subset = (
        "the 5,000 real MNIST digits shipped with artifex "
        f"({NUM_CLASSES * TRAIN_PER_CLASS:,} train / {NUM_CLASSES * TEST_PER_CLASS:,} test)"
    )
    try:
        return load_image_dataset(
            "mnist", split, data_dir=root, download=download, download_timeout=download_timeout
        )
    except DatasetNotPreparedError as error:
        why = "could not be downloaded" if download else "downloading is off"
        if isinstance(error, IncompleteDatasetError):
            why = f"{error.directory} is incomplete (delete it to download MNIST again)"
        prepare_offline_mnist(root)
        dataset = load_image_dataset("mnist", split, data_dir=root, config=OFFLINE_CONFIG)
        announce(f"MNIST not found in {root} and {why}: using {subset}. " + full_mnist)
        return dataset
