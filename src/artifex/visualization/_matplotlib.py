"""Lazy access to matplotlib, which is an optional dependency (the ``examples`` extra).

Figures are built as :class:`matplotlib.figure.Figure` objects rather than through
``pyplot``: no global figure registry, no GUI backend, nothing left open after saving.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def new_figure(**kwargs: Any):
    """A fresh ``matplotlib.figure.Figure``; raises a helpful ImportError without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError as err:  # pragma: no cover - exercised only without matplotlib
        raise ImportError(
            "artifex.visualization needs matplotlib; install the examples extra: "
            "pip install 'artifex[examples]'"
        ) from err
    return Figure(**kwargs)


def save_figure(fig, path: str | Path, *, dpi: int = 100) -> Path:
    """Write ``fig`` to ``path`` (parent directories are created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
