"""select_platform: the CPU without CUDA errors when the CUDA plugin has no GPU to drive."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from artifex import runtime


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    monkeypatch.setattr(runtime.sys, "platform", "linux")
    # As before `import jax`: the suite's own jax config stays untouched (restored after).
    monkeypatch.delitem(runtime.sys.modules, "jax", raising=False)
    return monkeypatch


def test_plugin_without_a_device_selects_the_cpu_and_says_why(clean_env, tmp_path: Path) -> None:
    clean_env.setattr(runtime, "cuda_plugin_installed", lambda: True)
    clean_env.setattr(runtime, "nvidia_device_visible", lambda: False)
    reason = runtime.select_platform()
    assert reason is not None and "no NVIDIA GPU is visible" in reason
    assert "JAX_PLATFORMS=cuda" in reason
    assert runtime.os.environ["JAX_PLATFORMS"] == "cpu"


@pytest.mark.parametrize(
    ("plugin", "device", "preset"), [(False, False, ""), (True, True, ""), (True, False, "cuda")]
)
def test_nothing_changes_otherwise(clean_env, plugin: bool, device: bool, preset: str) -> None:
    if preset:
        clean_env.setenv("JAX_PLATFORMS", preset)
    clean_env.setattr(runtime, "cuda_plugin_installed", lambda: plugin)
    clean_env.setattr(runtime, "nvidia_device_visible", lambda: device)
    assert runtime.select_platform() is None
    assert runtime.os.environ.get("JAX_PLATFORMS", "") == preset


def test_device_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime.sys, "platform", "linux")
    (tmp_path / "nvidiactl").touch()  # the driver's control file: not a GPU
    (tmp_path / "nvidia-uvm").touch()
    assert not runtime.nvidia_device_visible(tmp_path)
    (tmp_path / "nvidia0").touch()
    assert runtime.nvidia_device_visible(tmp_path)
    (tmp_path / "nvidia0").unlink()
    (tmp_path / "dxg").touch()  # WSL2
    assert runtime.nvidia_device_visible(tmp_path)


def test_importing_it_loads_no_jax() -> None:
    code = "import sys, artifex.runtime; print('jax' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
