"""Validation helpers of the dynamics subpackage: every message names ``Owner.field``.

Numbers go through :mod:`reliability._validate`; a value of the wrong type (a bool, a string,
None, a complex number, an object of another class) raises its ``ArgumentTypeError`` (a
``TypeError`` that is also a ``ValueError``), a wrong value a ``ValueError``.

Examples
--------
>>> check_text("Service", "name", "api")
'api'
>>> check_text("Service", "name", None)
Traceback (most recent call last):
...
reliability._validate.ArgumentTypeError: Service.name must be a non-empty string, got None
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .._validate import ArgumentTypeError, as_array, describe, number, whole

#: Most steps one run takes (a 1-second step for 46 days): the per-step profile and the recorded
#: series of a longer run would not fit in memory, and a loop over them would not end in time.
MAX_STEPS = 4_000_000
#: Largest surge multiple (of requests or new connections) and slowdown: a trillion times normal
#: already refuses or fails everything; beyond it request counts would overflow.
MAX_MULTIPLE = 1e12
#: Most servers one platform may have (or gain at once): the engine tracks each server every step.
MAX_SERVERS = 100_000
#: Most connection slots per server or behind a ceiling (the Erlang B table's load axis stays finite).
MAX_SLOTS = 1e12


def _label(owner: str, name: str) -> str:
    return f"{owner}.{name}" if owner else name


def check_number(owner: str, name: str, value: Any, *, minimum: float = 0.0, strict: bool = False,
                 allow_inf: bool = False, maximum: float | None = None) -> float:
    return number(_label(owner, name), value, minimum=minimum, maximum=maximum, strict=strict, allow_inf=allow_inf)


def check_whole(owner: str, name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    return whole(_label(owner, name), value, minimum, maximum)


def check_text(owner: str, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{_label(owner, name)} must be a non-empty string, got {describe(value)}")
    if not value.strip():
        raise ValueError(f"{_label(owner, name)} must be a non-empty string, got {value!r}")
    return value


def check_flag(owner: str, name: str, value: Any) -> bool:
    """True or False (a numpy bool too); 1, 'yes' or None are refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{_label(owner, name)} must be True or False, got {describe(value)}")
    return bool(value)


def check_instance(owner: str, name: str, value: Any, kind: type, *, optional: bool = False):
    """``value`` if it is a ``kind`` (or None when ``optional``), else the type error naming the argument."""
    if (value is None and optional) or isinstance(value, kind):
        return value
    what = f"None or a {kind.__name__}" if optional else f"a {kind.__name__}"
    raise ArgumentTypeError(f"{_label(owner, name)} must be {what}, got {describe(value)}")


def check_sequence(name: str, value: Any, kind, *, single: bool = True) -> list:
    """A list of ``kind`` objects (``kind`` a class or a tuple of classes; one object alone too, with
    ``single``); else a type error naming ``name``."""
    kinds = kind if isinstance(kind, tuple) else (kind,)
    what = ", ".join(k.__name__ for k in kinds)
    if single and isinstance(value, kinds):
        return [value]
    # any iterable of them (a list, a tuple, a generator), but not a string, a mapping or a 0-d array
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable) or (
            isinstance(value, np.ndarray) and value.ndim == 0):
        raise ArgumentTypeError(f"{name} must be a list of {what} objects, got {describe(value)}")
    items = list(value)
    for item in items:
        if not isinstance(item, kinds):
            raise ArgumentTypeError(f"{name} must be {what} objects, got {describe(item)}")
    return items


def check_platforms(owner: str, value: Any) -> tuple[str, ...] | None:
    """``None`` (every platform) or a tuple of platform names (a single name is accepted)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple)):
        raise ArgumentTypeError(f"{owner}.platforms must be None, a platform name or a list of names, "
                                f"got {describe(value)}")
    names = tuple(value)
    for n in names:
        check_text(owner, "platforms", n)
    if not names:
        raise ValueError(f"{owner}.platforms must be None or name at least one platform, got {value!r}")
    return names


def check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{_label(owner, name)} must be one of {list(choices)}, got {describe(value)}")
    if value not in choices:
        raise ValueError(f"{_label(owner, name)} must be one of {list(choices)}, got {value!r}")
    return value


def check_window(owner: str, start: float, end: float, *, start_name="start", end_name="end") -> None:
    if end < start:
        raise ValueError(f"{owner}.{end_name} must be >= {start_name} ({start!r}), got {end!r}")


def check_times(name: str, value: Any) -> np.ndarray:
    """Times (s) at which a time-only component is evaluated: finite numbers, any shape."""
    return as_array(name, value)


def check_steps(horizon: Any, time_step: Any) -> tuple[int, float, float]:
    """``(steps, time_step, horizon)`` of a run, checked before anything is allocated.

    Refuses a run of more than :data:`MAX_STEPS` steps (a huge horizon or a tiny step) with a
    message that names both arguments and the limit.

    Examples
    --------
    >>> check_steps(60.0, 1.0)
    (60, 1.0, 60.0)
    >>> check_steps(1e9, 1.0)
    Traceback (most recent call last):
    ...
    ValueError: horizon=1e+09 s over time_step=1 s is 1e+09 steps, more than the 4e+06 steps one run takes; use a longer time_step or a shorter horizon
    """
    dt = number("time_step", time_step, minimum=0.0, strict=True)
    horizon = number("horizon", horizon, minimum=0.0, strict=True)
    ratio = horizon / dt  # finite: both are finite and dt > 0, but the ratio may overflow to inf
    if not ratio <= MAX_STEPS + 0.5:
        raise ValueError(f"horizon={horizon:g} s over time_step={dt:g} s is {ratio:.3g} steps, more than the "
                         f"{MAX_STEPS:.0e} steps one run takes; use a longer time_step or a shorter horizon")
    steps = int(round(ratio))
    if steps < 1 or abs(steps * dt - horizon) > 1e-9 * horizon:
        raise ValueError(f"horizon must be a whole multiple of time_step, got horizon={horizon!r}, time_step={dt!r}")
    return steps, dt, horizon
