"""The TensorFlow-free TFDS builders on their download path, with the network stood in for.

The download manager is replaced by one that hands out local files made here, in the original
formats (gzip idx for MNIST/Fashion-MNIST, the binary tar for CIFAR-10); everything after the
download (parsing, writing array_record, reading back) is the code a real download runs.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from artifex.data.idx import read_idx, write_idx


def _serve(monkeypatch: pytest.MonkeyPatch, files: dict[str, Path]) -> list[str]:
    """Make TFDS's downloads return ``files[url]``; returns the URLs asked for."""
    import tensorflow_datasets as tfds

    asked: list[str] = []

    def download(self, urls):
        def one(url):
            asked.append(url)
            return files[url]

        return {k: one(v) for k, v in urls.items()} if isinstance(urls, dict) else one(urls)

    monkeypatch.setattr(tfds.download.DownloadManager, "download", download)
    return asked


def test_idx_round_trip(tmp_path: Path) -> None:
    array = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "x.gz", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "x.gz"), array)
    (tmp_path / "bad").write_bytes(b"\x00\x00\x0d\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not a uint8 idx file"):
        read_idx(tmp_path / "bad")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_datasets_prepare_from_their_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    from artifex.data.datasets import load_image_dataset
    from artifex.data.tfds_builders import BUILDERS, IDX_FILES

    rng = np.random.default_rng(1)
    arrays = {
        "train_images": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, 30, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (7, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, 7, dtype=np.uint8),
    }
    files = {}
    for key, filename in IDX_FILES.items():
        write_idx(tmp_path / filename, arrays[key])
        files[BUILDERS[name].URL + filename] = tmp_path / filename
    asked = _serve(monkeypatch, files)
    monkeypatch.setattr("artifex.data.download.unreachable_hosts", lambda hosts, timeout: [])
    data_dir = tmp_path / "tfds"
    for split, count in (("train", 30), ("test", 7)):
        data = load_image_dataset(name, split, data_dir=data_dir, download=True)
        assert data.images.shape == (count, 28, 28, 1) and not data.offline_subset
        # TFDS may reorder records when writing: compare as sets of (label, image).
        expected = {
            (int(y), x.tobytes())
            for x, y in zip(arrays[f"{split}_images"], arrays[f"{split}_labels"], strict=True)
        }
        got = {(int(y), x[..., 0].tobytes()) for x, y in zip(data.images, data.labels, strict=True)}
        assert got == expected
    assert sorted(asked) == sorted(files)  # downloaded once, then read from disk
    assert (data_dir / name / "uint8" / "1.0.0").is_dir()


def test_cifar10_prepares_from_the_binary_tarball(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from artifex.data.datasets import load_image_dataset
    from artifex.data.tfds_builders import Cifar10

    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, 6, dtype=np.uint8)
    archive = tmp_path / "cifar-10-binary.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, rows in [(f"data_batch_{i}.bin", [i - 1]) for i in range(1, 6)] + [
            ("test_batch.bin", [5])
        ]:
            # One record: the label byte, then the red, green and blue planes.
            payload = b"".join(
                bytes([labels[r]]) + images[r].transpose(2, 0, 1).tobytes() for r in rows
            )
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    _serve(monkeypatch, {Cifar10.URL: archive})
    monkeypatch.setattr("artifex.data.download.unreachable_hosts", lambda hosts, timeout: [])
    train = load_image_dataset("cifar10", "train", data_dir=tmp_path / "tfds", download=True)
    test = load_image_dataset("cifar10", "test", data_dir=tmp_path / "tfds")
    got = {(int(y), x.tobytes()) for x, y in zip(train.images, train.labels, strict=True)}
    assert got == {(int(labels[r]), images[r].tobytes()) for r in range(5)}
    np.testing.assert_array_equal(test.images[0], images[5])
    assert train.num_classes == 10 and train.image_shape == (32, 32, 3)


@pytest.mark.parametrize(("name", "count"), [("mnist", 4), ("fashion_mnist", 4), ("cifar10", 1)])
def test_downloads_are_checked_against_tfds_recorded_checksums(name: str, count: int) -> None:
    from artifex.data.tfds_builders import BUILDERS

    infos = BUILDERS[name].url_infos
    builder = BUILDERS[name]
    urls = [url for url in infos if url.startswith(builder.URL)]
    assert len(urls) == count
    assert all(infos[url].size > 0 and len(infos[url].checksum) == 64 for url in urls)


def test_every_supported_name_has_a_builder() -> None:
    from artifex.data.datasets import SUPPORTED_DATASETS
    from artifex.data.tfds_builders import BUILDERS

    assert tuple(BUILDERS) == SUPPORTED_DATASETS
    assert all(BUILDERS[name].name == name for name in BUILDERS)
