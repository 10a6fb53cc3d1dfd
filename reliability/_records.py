"""Result records: one float formatter and one ``__repr__`` for every frozen result dataclass.

A result with several numbers is a frozen dataclass; its repr lists its fields with numbers
shown to six significant digits (whole numbers as integers, arrays by shape), so results read
the same wherever they are printed.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np


def format_value(value: Any, digits: int = 6) -> str:
    """A number as people read it: ``3``, ``0.0183846``, ``1.5e+06``, ``inf``; arrays by shape.

    Examples
    --------
    >>> format_value(0.018384570337), format_value(12.0), format_value(np.array([1.0, 2.0]))
    ('0.0183846', '12', 'array(shape=(2,))')
    >>> format_value(True), format_value("stable"), format_value(None)
    ('True', "'stable'", 'None')
    """
    if isinstance(value, (bool, np.bool_)) or value is None:
        return repr(bool(value) if isinstance(value, np.bool_) else value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        number = float(value)
        if math.isfinite(number) and number.is_integer() and abs(number) < 1e15:
            return str(int(number))
        return f"{number:.{digits}g}"
    if isinstance(value, np.ndarray):
        if value.ndim == 0:
            return format_value(value.item(), digits)
        return f"array(shape={value.shape})"
    if isinstance(value, (tuple, list)) and all(isinstance(v, (int, float, np.number)) for v in value):
        inner = ", ".join(format_value(v, digits) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    return repr(value)


def record_repr(record: Any, *, skip: tuple[str, ...] = ()) -> str:
    """``Name(field=value, ...)`` for a dataclass, each value through :func:`format_value`."""
    parts = [
        f"{f.name}={format_value(getattr(record, f.name))}"
        for f in dataclasses.fields(record)
        if f.repr and f.name not in skip
    ]
    return f"{type(record).__name__}({', '.join(parts)})"


class Record:
    """Mixin giving a dataclass the shared repr.

    Declare the class with ``@dataclass(frozen=True, repr=False)``: without ``repr=False`` the
    dataclass machinery writes its own ``__repr__`` over this one.

    Examples
    --------
    >>> @dataclasses.dataclass(frozen=True, repr=False)
    ... class Point(Record):
    ...     servers: int
    ...     p_wait: float
    >>> Point(12, 0.2400111)
    Point(servers=12, p_wait=0.240011)
    """

    def __repr__(self) -> str:
        return record_repr(self)
