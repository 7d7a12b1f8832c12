"""One training run per output directory: an exclusive ``fcntl.flock`` on ``<dir>/.lock``.

Two runs writing checkpoints into the same directory overwrite each other's temporary files
and deletions, and may leave no complete checkpoint at all. ``fit`` takes this lock before it
reads or writes anything, and a second run is refused at once with a message naming the one
that holds it. The kernel releases an ``flock`` when its process exits, however it exits
(``kill -9`` included), so a crashed run never leaves a stale lock behind. On several hosts
only process 0 locks (the others write into the same directory as part of the same run).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import IO


class DirectoryInUseError(RuntimeError):
    """Another live process holds the output directory's lock."""


class RunLock:
    """``with RunLock(directory): ...`` holds the directory's lock for the block."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.path = Path(directory) / ".lock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # noqa: SIM115 - held open for the run's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "(unknown)"
            handle.close()
            raise DirectoryInUseError(
                f"{self.path.parent} is in use by another training run ({holder}); wait for "
                "it to finish, stop it, or give this run another output_dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv)[:300],
        }
        handle.write(json.dumps(owner))
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
