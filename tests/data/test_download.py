"""The offline guard in front of TFDS downloads: hosts from the builders, quick probes."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from artifex.data.download import download_hosts, socket_timeout, unreachable_hosts


@pytest.mark.parametrize(
    ("name", "host"),
    [
        ("mnist", "storage.googleapis.com"),
        ("fashion_mnist", "fashion-mnist.s3-website.eu-central-1.amazonaws.com"),
        ("cifar10", "www.cs.toronto.edu"),
    ],
)
def test_hosts_come_from_the_builders(tmp_path: Path, name: str, host: str) -> None:
    from artifex.data.datasets import builder_class

    hosts = download_hosts(builder_class(name)(data_dir=str(tmp_path)))
    assert [h for h, _ in hosts] == [host]


def test_the_shipped_digits_need_no_host(tmp_path: Path) -> None:
    from artifex.data.tfds_builders import Mnist

    assert download_hosts(Mnist(data_dir=str(tmp_path), config="offline_5k")) == []


def test_refused_local_port_is_reported_quickly() -> None:
    with socket.socket() as server:  # bind, never listen: connecting is refused
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        start = time.perf_counter()
        failures = unreachable_hosts([("127.0.0.1", port)], timeout=2.0)
    assert time.perf_counter() - start < 2.0
    assert len(failures) == 1 and failures[0].startswith(f"127.0.0.1:{port} (")


def test_listening_local_port_is_reachable() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert unreachable_hosts([server.getsockname()], timeout=2.0) == []


def test_socket_timeout_is_restored() -> None:
    before = socket.getdefaulttimeout()
    with socket_timeout(3.5):
        assert socket.getdefaulttimeout() == 3.5
    assert socket.getdefaulttimeout() == before
