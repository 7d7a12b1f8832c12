"""Downloading a TFDS dataset without stalling when there is no network.

TFDS's downloader sets no socket timeout and retries a failed connection ten times with
exponential back-off, so an offline ``download_and_prepare`` hangs for minutes before it
fails. Before downloading, we ask the builder which hosts it would fetch from, connect to
each with a short timeout, and fail at once if one is unreachable; the download itself then
runs under a socket timeout so a connection that dies midway cannot hang either.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger("artifex")


class _UrlsRecorded(Exception):
    """Stops a builder's split generation once it has asked for its URLs."""


class _UrlRecorder:
    """Stands in for TFDS's download manager: records requested URLs, downloads nothing."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def _record(self, url_or_urls: Any, *args: Any, **kwargs: Any) -> Any:
        del args, kwargs
        stack = [url_or_urls]
        while stack:
            item = stack.pop()
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list | tuple):
                stack.extend(item)
            elif item is not None:
                self.urls.append(str(getattr(item, "url", item)))
        raise _UrlsRecorded

    download = download_and_extract = _record


def download_hosts(builder: Any) -> list[tuple[str, int]]:
    """(host, port) pairs a TFDS builder downloads from; empty if they cannot be found.

    Runs the builder's own split generation against a recorder that stops at the first
    download request, so the hosts come from TFDS itself, not from a copy of its URLs.
    """
    recorder = _UrlRecorder()
    try:
        builder._split_generators(recorder)  # noqa: SLF001 - the only place URLs live
    except _UrlsRecorded:
        pass
    except Exception:  # noqa: BLE001 - builders that need more than URLs: no probe
        return []
    hosts: list[tuple[str, int]] = []
    for url in recorder.urls:
        parts = urlsplit(url)
        if parts.hostname:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            if (parts.hostname, port) not in hosts:
                hosts.append((parts.hostname, port))
    return hosts


def unreachable_hosts(hosts: list[tuple[str, int]], timeout: float) -> list[str]:
    """Hosts that cannot be resolved and connected to within ``timeout`` s, with the reason."""
    failures = []
    for host, port in hosts:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                pass
        except OSError as error:
            failures.append(f"{host}:{port} ({error})")
    return failures


@contextlib.contextmanager
def socket_timeout(seconds: float) -> Iterator[None]:
    """Temporarily set the process-wide default socket timeout (TFDS sets none)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def download_and_prepare(builder: Any, timeout: float = 10.0) -> None:
    """``builder.download_and_prepare()``, failing within about ``timeout`` s when offline.

    TFDS's own announcement ("Downloading and preparing dataset Unknown size ...", printed to
    stdout: the TensorFlow-free builders record no sizes) is replaced by one ``artifex`` log
    line naming the dataset, the hosts and the folder; TFDS's progress bars still show.

    Raises:
        ConnectionError: a download host is unreachable, or the download failed midway
            (a network error of any kind); nothing usable was written.
    """
    hosts = download_hosts(builder)
    failures = unreachable_hosts(hosts, timeout)
    if failures:
        raise ConnectionError("cannot reach " + ", ".join(failures))
    logger.info(
        "downloading %s from %s into %s",
        builder.name,
        ", ".join(host for host, _ in hosts) or "its source",
        builder.data_dir,
    )
    try:
        with socket_timeout(timeout), contextlib.redirect_stdout(io.StringIO()):
            builder.download_and_prepare()
    except OSError as error:  # requests' and urllib's errors included: they are OSErrors
        raise ConnectionError(f"download of {builder.name} failed: {error}") from error
