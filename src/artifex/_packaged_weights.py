"""Weights shipped inside the package as one ``.npz`` file: read without orbax or a network.

One key ``state/<path>`` per variable of the module (``state/backbone/conv_in/kernel``, ...),
plus whatever the owner adds (reference statistics, a JSON configuration). Used by the
quality metric's classifier and the pretrained demo model; training checkpoints use orbax
(``training.checkpointing``), which these files do not need.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx


def _key(path: tuple) -> str:
    return "state/" + "/".join(map(str, path))


def state_arrays(module: nnx.Module, filter_: nnx.filterlib.Filter = ...) -> dict[str, np.ndarray]:
    """``{"state/<path>": array}`` of the module's variables (those matching ``filter_``)."""
    return {
        _key(path): np.asarray(v.get_value())
        for path, v in nnx.to_flat_state(nnx.state(module, filter_))
    }


def read_npz(path: Path, what: str, regenerate: str) -> dict[str, np.ndarray]:
    """Every array of ``path``; ``RuntimeError`` naming ``what`` and how to regenerate it."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found at {path}; {regenerate}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise RuntimeError(f"cannot read {what} {path} ({error}); {regenerate}") from error


def mismatched(module: nnx.Module, data: dict, filter_: nnx.filterlib.Filter = ...) -> list[str]:
    """The module's variables that ``data`` lacks or holds with another shape."""
    return [
        f"{k} (expected shape {v.shape}, found {data[k].shape if k in data else 'nothing'})"
        for k, v in state_arrays(module, filter_).items()
        if k not in data or data[k].shape != v.shape
    ]


def load_into(module: nnx.Module, data: dict, filter_: nnx.filterlib.Filter = ...) -> None:
    """Set the module's variables (matching ``filter_``) from ``data`` (checked beforehand
    with :func:`mismatched`), as float32."""
    flat = nnx.to_flat_state(nnx.state(module, filter_))
    for path, variable in flat:
        variable.set_value(jnp.asarray(data[_key(path)], jnp.float32))
    nnx.update(module, nnx.from_flat_state(flat))
