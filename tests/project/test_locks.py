"""The hashed locks: made from pyproject.toml by scripts/update_locks.sh, and kept current."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKS = ("requirements.lock", "requirements-cuda.lock")


def _fingerprints():
    spec = importlib.util.spec_from_file_location(
        "lock_fingerprint", ROOT / "scripts" / "lock_fingerprint.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pins(lock: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / lock).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^ \\]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_is_newer_than_the_dependencies_it_was_made_from(lock: str) -> None:
    module = _fingerprints()
    recorded = module.recorded_fingerprint(ROOT / lock)
    assert recorded is not None, f"{lock} has no fingerprint header: run scripts/update_locks.sh"
    assert recorded == module.fingerprint(ROOT / "pyproject.toml"), (
        f"pyproject.toml's dependencies changed after {lock} was made: run scripts/update_locks.sh"
    )


def test_fingerprint_changes_with_a_dependency_and_not_with_a_description(tmp_path: Path) -> None:
    module = _fingerprints()
    text = (ROOT / "pyproject.toml").read_text()
    base = module.fingerprint(ROOT / "pyproject.toml")
    edited = tmp_path / "pyproject.toml"
    edited.write_text(text.replace('description = "', 'description = "Now: ', 1))
    assert module.fingerprint(edited) == base
    edited.write_text(text.replace('"tqdm>=4.66"', '"tqdm>=4.67"', 1))
    assert module.fingerprint(edited) != base


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_pins_every_package_with_hashes_and_names_no_index(lock: str) -> None:
    text = (ROOT / lock).read_text()
    assert not re.search(r"--(extra-)?index-url|--find-links|https?://", text)
    blocks = re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 3)[3])
    assert blocks and all("==" in b and "--hash=sha256:" in b for b in blocks if b.strip())


def test_locks_pin_the_stack_for_the_declared_python() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["requires-python"].startswith(">=3.12")
    cpu, cuda = _pins("requirements.lock"), _pins("requirements-cuda.lock")
    for pins in (cpu, cuda):
        assert pins["jax"] == pins["jaxlib"] == "0.11.1"
        assert pins["datarax"] == "0.1.17" and pins["tensorflow-datasets"] == "4.9.10"
        assert "orbax-checkpoint" in pins and "mlxtend" not in pins
    # The CUDA lock is the CPU environment plus jax's CUDA plugin at the same jax version.
    assert cuda["jax-cuda12-plugin"] == cuda["jax-cuda12-pjrt"] == cuda["jax"]
    assert "jax-cuda12-plugin" not in cpu
    assert {name: cpu[name] for name in cpu} == {name: cuda[name] for name in cpu}
    for lock in LOCKS:
        assert "# Python 3.12," in (ROOT / lock).read_text().splitlines()[1]


@pytest.mark.parametrize(
    ("environment", "lock"),
    [
        ({}, "requirements.lock"),
        ({"ARTIFEX_CUDA": "1"}, "requirements-cuda.lock"),
        ({"ARTIFEX_CUDA": "0"}, "requirements.lock"),
    ],
)
def test_activate_selects_the_lock(environment: dict, lock: str) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if k != "ARTIFEX_CUDA"} | environment
    result = subprocess.run(
        ["bash", "-c", "source activate.sh --which-lock"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = dict(line.split(": ", 1) for line in result.stdout.strip().splitlines())
    assert lines["lock"] == lock
    version = subprocess.run(
        [
            lines["python"].split(" (")[0],
            "-c",
            "import sys; print(sys.version_info[:2] >= (3, 12))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert version.stdout.strip() == "True"


def test_activate_stops_with_advice_when_no_python_312_exists(tmp_path: Path) -> None:
    """Run from a copy of the repo with an empty PATH for interpreters and no pyenv."""
    (tmp_path / "activate.sh").write_text((ROOT / "activate.sh").read_text())
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "ls", "sort", "sed", "cat", "sha256sum", "cut", "rm"):
        path = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True)
        if path.stdout.strip():
            (bin_dir / tool).symlink_to(path.stdout.strip())
    result = subprocess.run(
        [str(bin_dir / "bash"), "-c", "source activate.sh"],
        cwd=tmp_path,
        env={"PATH": str(bin_dir), "HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "none")},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "no Python 3.12 or 3.13 found" in result.stderr
    assert "pyenv install 3.12" in result.stderr
