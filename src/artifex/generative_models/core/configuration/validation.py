"""Field checks shared by the config dataclasses.

Every failure raises ``ValueError`` with the same shape of message:
``"<Config>.<field>=<value!r> <problem>; <what is allowed>"``, so a user can see at once
which field is wrong, what they passed and how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def fail(owner: str, field: str, value: Any, problem: str) -> None:
    """Raise the standard config error for ``owner.field``."""
    raise ValueError(f"{owner}.{field}={value!r} {problem}")


def check_choice(owner: str, field: str, value: Any, allowed: Iterable[str]) -> None:
    """``value`` must be one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        fail(owner, field, value, f"is not supported; choose one of: {options}")


def check_int(owner: str, field: str, value: Any, *, minimum: int) -> None:
    """``value`` must be an ``int`` (not a bool) and at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        fail(owner, field, value, f"must be an integer >= {minimum}")


def check_float(
    owner: str,
    field: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """``value`` must be a real number inside the given (optionally open) interval."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and low is not None:
        ok = value >= low if low_inclusive else value > low
    if ok and high is not None:
        ok = value <= high if high_inclusive else value < high
    if not ok:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        left = "[" if low_inclusive and low is not None else "("
        right = "]" if high_inclusive and high is not None else ")"
        fail(owner, field, value, f"must be a number in {left}{lo}, {hi}{right}")


def as_int_tuple(owner: str, field: str, value: Any, *, minimum: int, allow_empty: bool) -> tuple:
    """Convert a sequence of ints to a tuple (hashable, so configs can be static under jit)."""
    if isinstance(value, int) or not isinstance(value, Sequence) or isinstance(value, str):
        fail(owner, field, value, "must be a sequence of integers, e.g. (64, 128, 256)")
    items = tuple(value)
    if not items and not allow_empty:
        fail(owner, field, value, "must not be empty")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or item < minimum:
            fail(owner, field, value, f"must contain only integers >= {minimum}")
    return items
