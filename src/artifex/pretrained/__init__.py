"""Pretrained models shipped with the package: sample in seconds, without training.

``load_conditional_mnist()`` returns a class-conditional MNIST :class:`DDPMModel` (the
conditional example's ``cpu`` preset: UNet 16/32/64, v prediction, 600 steps on the 4,000
offline training digits, EMA weights), so one call and one sample call draw any digit::

    from artifex.pretrained import load_conditional_mnist

    model = load_conditional_mnist()
    digits = model.sample(10, labels=jnp.arange(10), guidance_scale=2.0,
                          scheduler="dpm_solver++", steps=20, key=0)

The file (``weights/conditional_mnist.npz``, under 3 MB) holds the float32 EMA parameters,
the model's configuration as JSON and a record of how it was trained and measured; it is
written by ``python scripts/train_demo_model.py`` (deterministic: fixed seed and data order).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

#: The packaged demo model.
CONDITIONAL_MNIST_PATH = Path(__file__).resolve().parent / "weights" / "conditional_mnist.npz"
FORMAT_VERSION = 1
REGENERATE = "regenerate it with: python scripts/train_demo_model.py (in a clone of the repository)"


def save_pretrained(path: str | Path, model: Any, *, record: dict[str, Any]) -> Path:
    """Write a :class:`DDPMModel`'s parameters, configuration and ``record`` (JSON-able: how
    it was trained, what it scored) to one compressed ``.npz``."""
    from flax import nnx

    from artifex import _packaged_weights as packaged

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path,
        **packaged.state_arrays(model, nnx.Param),
        config=np.asarray(json.dumps(model.config.to_dict())),
        record=np.asarray(json.dumps(record)),
        format_version=np.int64(FORMAT_VERSION),
    )
    return path


def load_pretrained(path: str | Path) -> Any:
    """The :class:`DDPMModel` stored at ``path`` by :func:`save_pretrained`."""
    from flax import nnx

    from artifex import _packaged_weights as packaged
    from artifex.generative_models.core.configuration import DDPMConfig
    from artifex.generative_models.models.diffusion.ddpm import DDPMModel

    path = Path(path)
    data = packaged.read_npz(path, "pretrained model", REGENERATE)
    if "config" not in data or int(data.get("format_version", -1)) != FORMAT_VERSION:
        raise RuntimeError(
            f"{path} is not a pretrained model file of format {FORMAT_VERSION}; {REGENERATE}"
        )
    model = DDPMModel(DDPMConfig.from_dict(json.loads(str(data["config"]))), rngs=nnx.Rngs(0))
    problems = packaged.mismatched(model, data, nnx.Param)
    if problems:
        raise RuntimeError(f"{path} does not fit its configuration: {', '.join(problems)}")
    packaged.load_into(model, data, nnx.Param)
    return model


def pretrained_record(path: str | Path = CONDITIONAL_MNIST_PATH) -> dict[str, Any]:
    """How a packaged model was trained and what it scored (the file's ``record``)."""
    from artifex import _packaged_weights as packaged

    return json.loads(str(packaged.read_npz(Path(path), "pretrained model", REGENERATE)["record"]))


def load_conditional_mnist() -> Any:
    """The packaged class-conditional MNIST diffusion model (see the module docstring)."""
    return load_pretrained(CONDITIONAL_MNIST_PATH)
