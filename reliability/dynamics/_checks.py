"""Validation helpers of the dynamics subpackage: every message names ``Owner.field``."""

from __future__ import annotations

from typing import Any

from .._validate import number, whole


def check_number(owner: str, name: str, value: Any, *, minimum: float = 0.0, strict: bool = False,
                 allow_inf: bool = False, maximum: float | None = None) -> float:
    return number(f"{owner}.{name}" if owner else name, value, minimum=minimum, maximum=maximum,
                  strict=strict, allow_inf=allow_inf)


def check_whole(owner: str, name: str, value: Any, minimum: int) -> int:
    return whole(f"{owner}.{name}" if owner else name, value, minimum)


def check_text(owner: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{owner}.{name} must be a non-empty string, got {value!r}")
    return value


def check_platforms(owner: str, value: Any) -> tuple[str, ...] | None:
    """``None`` (every platform) or a tuple of platform names (a single name is accepted)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = (value,)
    names = tuple(value)
    for n in names:
        check_text(owner, "platforms", n)
    if not names:
        raise ValueError(f"{owner}.platforms must be None or name at least one platform, got {value!r}")
    return names


def check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{owner}.{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_window(owner: str, start: float, end: float, *, start_name="start", end_name="end") -> None:
    if end < start:
        raise ValueError(f"{owner}.{end_name} must be >= {start_name} ({start!r}), got {end!r}")
