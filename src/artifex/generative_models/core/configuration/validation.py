"""Field checks shared by the config dataclasses.

Every failure raises ``ValueError`` with the same shape of message:
``"<Config>.<field>=<value!r> <problem>; <what is allowed>"``, so a user can see at once
which field is wrong, what they passed and how to fix it.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
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
    """``value`` must be a finite real number inside the given (optionally open) interval."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value >= low if low_inclusive else value > low
    if ok and high is not None:
        ok = value <= high if high_inclusive else value < high
    if not ok:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        left = "[" if low_inclusive and low is not None else "("
        right = "]" if high_inclusive and high is not None else ")"
        fail(owner, field, value, f"must be a finite number in {left}{lo}, {hi}{right}")


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


def check_name(owner: str, value: Any) -> None:
    """``name`` must be a non-empty string (it labels logs, figures and checkpoints)."""
    if not isinstance(value, str) or not value:
        fail(owner, "name", value, "must be a non-empty string")


def image_shape(owner: str, field: str, value: Any, *, example: str = "(28, 28, 1)") -> tuple:
    """``(height, width, channels)`` of one image as a tuple of positive ints."""
    shape = as_int_tuple(owner, field, value, minimum=1, allow_empty=False)
    if len(shape) != 3:
        fail(owner, field, value, f"must be (height, width, channels), e.g. {example}")
    return shape


def unknown_keys_message(owner: str, unknown: Sequence[str], valid: Sequence[str]) -> str:
    """``"<owner>.from_dict: unknown field 'lr' (did you mean 'learning_rate'?); valid: ..."``."""
    parts = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), valid, n=1)
        parts.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return (
        f"{owner}.from_dict: unknown field{'s' if len(parts) > 1 else ''} {', '.join(parts)}; "
        f"valid fields: {', '.join(valid)}"
    )


def _dataclass_type(annotation: Any) -> type | None:
    """The config dataclass a field's annotation names (``X`` or ``X | None``), if any."""
    if dataclasses.is_dataclass(annotation):
        return annotation
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        for arg in typing.get_args(annotation):
            if dataclasses.is_dataclass(arg):
                return arg
    return None


def from_dict(cls: type, data: Mapping[str, Any], owner: str | None = None) -> Any:
    """Build the frozen config ``cls`` from a (JSON) dict, nested configs included.

    Unknown keys, at any depth, raise a ``ValueError`` naming the key, the closest valid
    field and every valid one; each value is then validated by the configs themselves.
    """
    owner = owner or cls.__name__
    if not isinstance(data, Mapping):
        raise TypeError(f"{owner}.from_dict expects a dict, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [key for key in data if key not in fields]
    if unknown:
        raise ValueError(unknown_keys_message(owner, unknown, list(fields)))
    hints = typing.get_type_hints(cls)
    values = dict(data)
    for name, value in data.items():
        nested = _dataclass_type(hints.get(name))
        if nested is not None and isinstance(value, Mapping):
            values[name] = from_dict(nested, value, f"{owner}.{name}")
    return cls(**values)
