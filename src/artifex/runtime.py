"""Choosing JAX's platform before JAX starts, so a machine without a GPU runs quietly.

With JAX's CUDA plugin installed (the ``cuda`` extra, ``requirements-cuda.lock``) JAX
initialises CUDA on first use. On a machine with no NVIDIA GPU, XLA then logs an error such as
``failed call to cuInit: UNKNOWN ERROR (303)`` before falling back to the CPU: noise on a CPU
machine, and alarming to a newcomer. :func:`select_platform` spots that case before JAX
starts (the plugin is installed, but the system shows no NVIDIA device) and restricts JAX to
the CPU, returning a sentence that says so; scripts print it. It changes nothing when
``JAX_PLATFORMS`` is set, when no CUDA plugin is installed, or when an NVIDIA device is
visible, so a real CUDA problem on a GPU machine is still reported by JAX itself.

This module imports nothing heavy (no JAX).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

#: Import names of JAX's CUDA plugins (CUDA 12 and 13 builds).
CUDA_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin")


def cuda_plugin_installed() -> bool:
    """Whether one of JAX's CUDA plugins is installed (found without importing it)."""
    return any(importlib.util.find_spec(name) is not None for name in CUDA_PLUGINS)


def nvidia_device_visible(dev: Path = Path("/dev")) -> bool:
    """Whether the system shows an NVIDIA GPU: ``/dev/nvidia0``... (Linux), ``/dev/dxg`` (WSL2).

    Not Linux: assumed visible (there is nothing cheap to check, so JAX decides).
    """
    if not sys.platform.startswith("linux"):
        return True
    return (dev / "dxg").exists() or any(
        path.name[len("nvidia") :].isdigit() for path in dev.glob("nvidia[0-9]*")
    )


def select_platform() -> str | None:
    """Restrict JAX to the CPU when its CUDA plugin is installed but no NVIDIA GPU is visible.

    Call it before JAX initialises a backend (ideally before ``import jax``). Returns why the
    CPU was chosen, or ``None`` when nothing was changed. ``JAX_PLATFORMS`` set by the user
    always wins: ``JAX_PLATFORMS=cuda`` tries CUDA anyway.
    """
    if os.environ.get("JAX_PLATFORMS") or not cuda_plugin_installed():
        return None
    if nvidia_device_visible():
        return None
    os.environ["JAX_PLATFORMS"] = "cpu"
    if "jax" in sys.modules:  # imported already: the environment was read, use the config
        sys.modules["jax"].config.update("jax_platforms", "cpu")
    return (
        "JAX's CUDA plugin is installed but no NVIDIA GPU is visible (no /dev/nvidia0), so JAX "
        "runs on the CPU without trying CUDA; set JAX_PLATFORMS=cuda to try anyway"
    )
