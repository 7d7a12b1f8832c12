"""Fingerprint of the dependency declarations in ``pyproject.toml``, recorded in every lock.

``scripts/update_locks.sh`` writes it into each lock's header; the test suite recomputes it and
fails when ``pyproject.toml``'s dependencies changed after the locks were made. Only what the
resolver reads counts (``requires-python``, ``dependencies``, ``optional-dependencies``), so
editing a description or a tool setting does not invalidate the locks.

    python scripts/lock_fingerprint.py [pyproject.toml]   # prints the fingerprint
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path

#: The header line of a lock that carries the fingerprint.
PREFIX = "# pyproject-dependencies-sha256: "


def fingerprint(pyproject: Path) -> str:
    """SHA-256 of the resolver's inputs in ``pyproject``, in a canonical JSON form."""
    project = tomllib.loads(pyproject.read_text())["project"]
    inputs = {
        "requires-python": project.get("requires-python"),
        "dependencies": sorted(project.get("dependencies", [])),
        "optional-dependencies": {
            extra: sorted(requirements)
            for extra, requirements in sorted(project.get("optional-dependencies", {}).items())
        },
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def recorded_fingerprint(lock: Path) -> str | None:
    """The fingerprint a lock's header records, or None if it has none."""
    for line in lock.read_text().splitlines():
        if line.startswith(PREFIX):
            return line[len(PREFIX) :].strip()
        if not line.startswith("#"):
            break
    return None


if __name__ == "__main__":
    print(fingerprint(Path(sys.argv[1] if len(sys.argv) > 1 else "pyproject.toml")))
