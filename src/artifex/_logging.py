"""The ``artifex`` logger: the few lines that matter reach the terminal by default.

Library code logs through ``logging.getLogger("artifex")`` (never ``print``): which data is used,
a resumed or saved checkpoint, early stopping. The logger has its own handler, which writes INFO
and above to stderr as ``[artifex] message`` through ``tqdm.write`` (so progress bars are not
torn), and does not propagate: some dependencies install handlers on the root logger when
imported, which would otherwise print every line twice. To route the records into your own
logging configuration instead::

    logger = logging.getLogger("artifex")
    logger.handlers.clear()
    logger.propagate = True

and ``logging.getLogger("artifex").setLevel(logging.WARNING)`` silences the INFO lines.
"""

from __future__ import annotations

import logging
import sys


class TerminalHandler(logging.Handler):
    """Writes records to the current ``sys.stderr`` without tearing tqdm progress bars."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            try:
                from tqdm import tqdm
            except ImportError:  # pragma: no cover - tqdm is a dependency
                print(message, file=sys.stderr)
            else:
                tqdm.write(message, file=sys.stderr)
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


def configure() -> logging.Logger:
    """Give the ``artifex`` logger its terminal handler and INFO level, once."""
    logger = logging.getLogger("artifex")
    if not any(isinstance(handler, TerminalHandler) for handler in logger.handlers):
        handler = TerminalHandler()
        handler.setFormatter(logging.Formatter("[artifex] %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
    return logger
