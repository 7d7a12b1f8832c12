"""The one lazy-import helper of the package: names resolved on first use (PEP 562).

A package declares ``{name: "module.path"}`` and gets a module ``__getattr__`` and ``__dir__``;
the module holding a name is imported only when the name is first read, so importing the
package stays cheap (no JAX, TFDS or DataRax until they are needed)::

    __getattr__, __dir__ = lazy_exports(__name__, {"fit": "artifex.generative_models...fit"})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``; ``exports`` maps each name to the module
    that defines it (absolute, or relative to ``package`` when it starts with a dot)."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        setattr(sys.modules[package], name, value)  # later reads skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__
