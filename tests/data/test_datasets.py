"""Loading TFDS splits: real offline digits, and fast, helpful failure when data is absent."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from artifex.data.datasets import (
    DatasetNotPreparedError,
    default_data_dir,
    load_image_dataset,
)


def test_default_data_dir_follows_tfds_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFDS_DATA_DIR", "/somewhere/tfds")
    assert default_data_dir() == Path("/somewhere/tfds")
    monkeypatch.delenv("TFDS_DATA_DIR")
    assert default_data_dir() == Path.home() / "tensorflow_datasets"


def test_loads_mnist_from_tfds_data_dir(offline_mnist_dir: Path, offline_mnist_train) -> None:
    test = load_image_dataset("mnist", "test", config="offline_5k")  # data_dir: TFDS_DATA_DIR
    assert test.data_dir == offline_mnist_dir and test.offline_subset
    train = offline_mnist_train
    assert train.images.shape == (4000, 28, 28, 1) and train.images.dtype == np.uint8
    assert test.images.shape == (1000, 28, 28, 1)
    assert train.labels.dtype == np.int32 and train.num_classes == 10
    np.testing.assert_array_equal(np.bincount(train.labels), [400] * 10)
    assert len(train) == 4000 and train.image_shape == (28, 28, 1)
    part = load_image_dataset(
        "mnist", "test[:100]", data_dir=offline_mnist_dir, config="offline_5k"
    )
    np.testing.assert_array_equal(part.images, test.images[:100])


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_dataset_fails_fast_with_guidance(tmp_path: Path, name: str) -> None:
    start = time.perf_counter()
    with pytest.raises(DatasetNotPreparedError) as caught:
        load_image_dataset(name, data_dir=tmp_path)
    assert time.perf_counter() - start < 5.0
    message = str(caught.value)
    assert f"{name!r} is not prepared in {tmp_path}" in message
    assert "download=True" in message and "TFDS_DATA_DIR" in message
    assert ("load_mnist_or_offline" in message) == (name == "mnist")
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing downloaded


def test_unsupported_dataset_names_the_supported_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'imagenet2012' is not supported; choose one of 'mnist'"):
        load_image_dataset("imagenet2012", data_dir=tmp_path)


def test_download_offline_fails_fast_without_calling_tfds_download(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    import tensorflow_datasets as tfds

    def unreachable(address, *args, **kwargs):
        raise OSError(f"[test] no route to {address[0]}")

    def forbidden(self, *args, **kwargs):
        raise AssertionError("download_and_prepare must not run when hosts are unreachable")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", forbidden)
    start = time.perf_counter()
    with pytest.raises(DatasetNotPreparedError, match="cannot reach storage.googleapis.com:443"):
        load_image_dataset("mnist", data_dir=tmp_path, download=True)
    assert time.perf_counter() - start < 5.0


def test_fashion_mnist_offline_says_there_is_no_offline_copy(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotPreparedError, match="Fashion-MNIST has no offline copy"):
        load_image_dataset("fashion_mnist", data_dir=tmp_path)


def test_incomplete_version_folder_is_explained_not_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A version folder without TFDS's metadata (an interrupted download) gets one clear error.

    TFDS would log "Variant folder ... has no dataset_info.json" and, asked to download,
    "reuse" the broken folder; artifex checks first, says what to delete and downloads nothing.
    """
    import logging

    import tensorflow_datasets as tfds

    from artifex.data import IncompleteDatasetError

    def forbidden(self, *args, **kwargs):
        raise AssertionError("an incomplete folder must not be handed to TFDS")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", forbidden)
    version_dir = tmp_path / "mnist" / "uint8" / "1.0.0"
    version_dir.mkdir(parents=True)
    caplog.set_level(logging.WARNING, logger="absl")
    with pytest.raises(IncompleteDatasetError) as caught:
        load_image_dataset("mnist", data_dir=tmp_path, download=True)
    assert caught.value.directory == version_dir
    message = str(caught.value)
    assert f"{version_dir} is incomplete (no dataset_info.json)" in message
    assert "Delete that folder and run again" in message
    assert isinstance(caught.value, DatasetNotPreparedError)
    assert not [r for r in caplog.records if r.name == "absl"], caplog.text


def test_download_failing_midway_is_a_connection_error_with_no_tfds_banner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hosts reachable, download broken (a proxy, a dropped link): a DatasetNotPreparedError.

    TFDS's stdout banner ("Downloading and preparing dataset Unknown size ...") is not shown.
    """
    import requests
    import tensorflow_datasets as tfds

    import artifex.data.download as download

    def broken(self, *args, **kwargs):
        print("Downloading and preparing dataset Unknown size (download: Unknown size, ...)")
        raise requests.exceptions.ConnectionError("[test] connection reset by peer")

    monkeypatch.setattr(download, "unreachable_hosts", lambda hosts, timeout: [])
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", broken)
    with pytest.raises(DatasetNotPreparedError, match="download of mnist failed: .*reset by peer"):
        load_image_dataset("mnist", data_dir=tmp_path, download=True)
    assert "Downloading and preparing" not in capsys.readouterr().out
