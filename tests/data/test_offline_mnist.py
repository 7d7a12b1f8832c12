"""The shipped digits: their files, their TFDS dataset ``mnist/offline_5k``, the fallback."""

from __future__ import annotations

import gzip
import json
import struct
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from artifex.data.offline_mnist import (
    load_mnist_or_offline,
    offline_digits_dir,
    prepare_offline_mnist,
    read_offline_digits,
)


def _parse_by_hand(split: str) -> tuple[np.ndarray, np.ndarray]:
    """The idx files parsed with struct alone, independently of artifex.data.idx."""
    prefix = {"train": "train", "test": "t10k"}[split]
    with gzip.open(offline_digits_dir() / f"{prefix}-images-idx3-ubyte.gz") as stream:
        magic, count, rows, cols = struct.unpack(">4I", stream.read(16))
        images = np.frombuffer(stream.read(), np.uint8)
    assert (magic, rows, cols) == (2051, 28, 28)
    with gzip.open(offline_digits_dir() / f"{prefix}-labels-idx1-ubyte.gz") as stream:
        magic, label_count = struct.unpack(">2I", stream.read(8))
        labels = np.frombuffer(stream.read(), np.uint8)
    assert magic == 2049 and label_count == count == labels.size
    return images.reshape(count, 28, 28, 1), labels


@pytest.mark.parametrize(("split", "per_class"), [("train", 400), ("test", 100)])
def test_shipped_files_hold_the_stratified_split(split: str, per_class: int) -> None:
    images, labels = read_offline_digits(split)
    expected_images, expected_labels = _parse_by_hand(split)
    np.testing.assert_array_equal(images, expected_images)
    np.testing.assert_array_equal(labels, expected_labels)
    assert images.dtype == np.uint8 and images.shape == (10 * per_class, 28, 28, 1)
    np.testing.assert_array_equal(np.bincount(labels), [per_class] * 10)
    # Real MNIST digits: mostly black background, ink up to full white, mean level near 33.
    assert images.max() == 255 and 25 < images.mean() < 40
    assert np.mean(images == 0) > 0.7


def test_train_and_test_share_no_digit() -> None:
    train, _ = read_offline_digits("train")
    test, _ = read_offline_digits("test")
    assert not {image.tobytes() for image in train} & {image.tobytes() for image in test}


def test_tfds_sees_a_prepared_array_record_dataset(offline_mnist_dir: Path) -> None:
    from artifex.data.tfds_builders import Mnist

    builder = Mnist(data_dir=str(offline_mnist_dir), config="offline_5k")
    assert builder.is_prepared()
    assert Path(builder.data_dir) == offline_mnist_dir / "mnist" / "offline_5k" / "1.0.0"
    assert {k: v.num_examples for k, v in builder.info.splits.items()} == {
        "train": 4000,
        "test": 1000,
    }
    stored = json.loads((Path(builder.data_dir) / "dataset_info.json").read_text())
    assert stored["fileFormat"] == "array_record"
    image = builder.info.features["image"]
    assert image.shape == (28, 28, 1) and image.np_dtype == np.uint8
    assert any(
        p.name.startswith("mnist-train.array_record") for p in Path(builder.data_dir).iterdir()
    )


@pytest.mark.parametrize("split", ["train", "test"])
def test_records_round_trip_exact_image_label_pairs(offline_mnist_dir: Path, split: str) -> None:
    from artifex.data.datasets import load_image_dataset

    data = load_image_dataset("mnist", split, data_dir=offline_mnist_dir, config="offline_5k")
    images, labels = _parse_by_hand(split)
    expected = Counter((int(y), x.tobytes()) for x, y in zip(images, labels, strict=True))
    got = Counter((int(y), x.tobytes()) for x, y in zip(data.images, data.labels, strict=True))
    assert got == expected and data.offline_subset


def test_preparing_again_is_a_quick_no_op(offline_mnist_dir: Path) -> None:
    files = sorted((offline_mnist_dir / "mnist").rglob("*"))
    stamps = [f.stat().st_mtime_ns for f in files]
    start = time.perf_counter()
    assert prepare_offline_mnist(offline_mnist_dir) == offline_mnist_dir
    assert time.perf_counter() - start < 2.0
    assert sorted((offline_mnist_dir / "mnist").rglob("*")) == files
    assert [f.stat().st_mtime_ns for f in files] == stamps


def test_fallback_announces_one_line_and_keeps_the_subset_apart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines: list[str] = []
    data = load_mnist_or_offline("test", data_dir=tmp_path, download=False, announce=lines.append)
    assert data.offline_subset and data.images.shape == (1000, 28, 28, 1)
    # Beside, not as, full MNIST (config uint8): a later full download must still happen.
    assert (tmp_path / "mnist" / "offline_5k").is_dir()
    assert not (tmp_path / "mnist" / "uint8").exists()
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith(f"MNIST not found in {tmp_path} and downloading is off")
    assert "5,000 real MNIST digits shipped with artifex (4,000 train / 1,000 test)" in lines[0]
    assert "download=True" in lines[0]
    assert capsys.readouterr().out == ""  # TFDS's own "preparing" lines are not shown


def test_fallback_after_failed_download_is_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    def unreachable(address, *args, **kwargs):
        raise OSError("[test] network is unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    lines: list[str] = []
    start = time.perf_counter()
    data = load_mnist_or_offline(data_dir=tmp_path, announce=lines.append)
    assert time.perf_counter() - start < 10.0
    assert len(data) == 4000
    assert lines[0].startswith(f"MNIST not found in {tmp_path} and could not be downloaded")


def test_the_default_announcement_is_one_artifex_log_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    load_mnist_or_offline("test", data_dir=tmp_path, download=False)
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[artifex] MNIST not found in")


def test_fallback_after_an_incomplete_download_names_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "mnist" / "uint8" / "1.0.0"  # left by an interrupted download
    broken.mkdir(parents=True)
    lines: list[str] = []
    data = load_mnist_or_offline("test", data_dir=tmp_path, announce=lines.append)
    assert data.offline_subset and len(data) == 1000
    assert len(lines) == 1
    assert lines[0].startswith(f"MNIST not found in {tmp_path} and {broken} is incomplete")
    assert "delete it to download MNIST again" in lines[0]
    captured = capsys.readouterr()
    assert "Variant folder" not in captured.err and captured.out == ""
