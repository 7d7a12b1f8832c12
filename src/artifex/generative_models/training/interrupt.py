"""Deferring Ctrl-C (SIGINT) to a safe point of the training loop.

A ``KeyboardInterrupt`` raised at an arbitrary bytecode could land after the optimizer
updated the model but before the step counter moved, and a checkpoint saved then would not
resume exactly. Inside :class:`DeferredInterrupt` the first SIGINT only sets a flag; the
loop finishes its step, checkpoints and raises ``KeyboardInterrupt`` itself. A second
SIGINT interrupts at once, as usual.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


class DeferredInterrupt:
    """Context manager: ``requested`` turns True on the first SIGINT instead of raising.

    Outside the main thread signal handlers cannot be installed; there it does nothing and
    SIGINT behaves as usual.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # second Ctrl-C: stop now
            signal.signal(signal.SIGINT, self._previous)
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
            self._installed = False
