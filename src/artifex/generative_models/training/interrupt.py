"""Deferring Ctrl-C (SIGINT) and SIGTERM to a safe point of the training loop.

A ``KeyboardInterrupt`` raised at an arbitrary bytecode could land after the optimizer
updated the model but before the step counter moved, and a checkpoint saved then would not
resume exactly. Inside :class:`DeferredInterrupt` the first SIGINT or SIGTERM (what SLURM and
Kubernetes send before pre-empting a job) only sets a flag; the loop finishes its step,
checkpoints and calls :meth:`DeferredInterrupt.stop`, which raises ``KeyboardInterrupt`` after
SIGINT and ``SystemExit(143)`` (128 + SIGTERM, the shell's convention) after SIGTERM. A second
signal stops at once, as usual.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any, NoReturn

#: The signals deferred to the end of the step.
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DeferredInterrupt:
    """Context manager: ``requested`` turns True on the first SIGINT or SIGTERM.

    ``signal_name`` tells which one arrived. Outside the main thread signal handlers cannot be
    installed; there it does nothing and both signals behave as usual.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def signal_name(self) -> str | None:
        """``"SIGINT"`` or ``"SIGTERM"`` once one arrived, else None."""
        return None if self.signum is None else signal.Signals(self.signum).name

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # a second signal: stop now
            self._restore()
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        self.requested, self.signum = True, signum

    def stop(self) -> NoReturn:
        """Raise what the signal asked for; call once the state is saved."""
        if self.signum == signal.SIGTERM:
            raise SystemExit(128 + signal.SIGTERM)
        raise KeyboardInterrupt

    def _restore(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = {signum: signal.signal(signum, self._handle) for signum in SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._restore()
