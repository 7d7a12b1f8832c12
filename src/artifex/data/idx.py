"""The idx file format of MNIST and Fashion-MNIST: a big-endian header, then raw uint8 data.

Layout: two zero bytes, a type byte (``0x08`` = uint8), the number of dimensions ``d``, ``d``
big-endian uint32 sizes, then the values in row-major order. Files are usually gzip-compressed.
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np

_UINT8 = 0x08


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a (gzip-compressed or plain) idx file of uint8 values into an array of its shape."""
    with open(path, "rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if compressed else open
    with opener(path, "rb") as stream:
        data = stream.read()
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != _UINT8:
        raise ValueError(f"{os.fspath(path)} is not a uint8 idx file (header {data[:4]!r}).")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    values = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if values.size != int(np.prod(shape)):
        raise ValueError(
            f"{os.fspath(path)} holds {values.size} values, but its header says {shape}."
        )
    return values.reshape(shape)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write a uint8 array as a gzip-compressed idx file (reproducible: no name or time)."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"idx files here hold uint8 values, got {array.dtype}.")
    header = bytes([0, 0, _UINT8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0) as out,
    ):
        out.write(header + array.tobytes())
