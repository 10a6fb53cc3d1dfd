"""Validation at the door: every public function checks its arguments here first.

Arguments are converted to float64 arrays; a bad value raises ``ValueError`` naming the
argument and showing the first offending value, so a sweep over a million points still
says which value was wrong.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _first_bad(array: np.ndarray, bad: np.ndarray) -> Any:
    value = array[bad].flat[0] if array.ndim else array[()]
    return value.item() if hasattr(value, "item") else value


def as_array(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
    strict_maximum: bool = False,
    allow_inf: bool = False,
    integer: bool = False,
) -> np.ndarray:
    """Return ``value`` as a float64 array after checking it; raise ``ValueError`` naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, np.ndarray) and value.dtype == bool):
        # True is 1 to numpy, but a probability or a count given as a bool is a caller's mistake.
        raise ValueError(f"{name} must be a number or an array of numbers, got {value!r}")
    if isinstance(value, (float, int, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_)):
        # Plain numbers skip numpy's per-call overhead: scalar calls are common in notebooks.
        number = float(value)
        if math.isnan(number):
            raise ValueError(f"{name} must not be NaN, got {value!r}")
        if math.isinf(number) and not allow_inf:
            raise ValueError(f"{name} must be finite, got {value!r}")
        if minimum is not None and (number <= minimum if strict_minimum else number < minimum):
            raise ValueError(f"{name} must be {'>' if strict_minimum else '>='} {minimum:g}, got {value!r}")
        if maximum is not None and (number >= maximum if strict_maximum else number > maximum):
            raise ValueError(f"{name} must be {'<' if strict_maximum else '<='} {maximum:g}, got {value!r}")
        if integer and math.isfinite(number) and number != math.floor(number):
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        return np.asarray(number)
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or an array of numbers, got {value!r}") from None
    if np.isnan(array).any():
        raise ValueError(f"{name} must not be NaN, got {_first_bad(array, np.isnan(array))}")
    if not allow_inf and np.isinf(array).any():
        raise ValueError(f"{name} must be finite, got {_first_bad(array, np.isinf(array))}")
    if minimum is not None:
        bad = array <= minimum if strict_minimum else array < minimum
        if bad.any():
            relation = ">" if strict_minimum else ">="
            raise ValueError(f"{name} must be {relation} {minimum:g}, got {_first_bad(array, bad)}")
    if maximum is not None:
        bad = array >= maximum if strict_maximum else array > maximum
        if bad.any():
            relation = "<" if strict_maximum else "<="
            raise ValueError(f"{name} must be {relation} {maximum:g}, got {_first_bad(array, bad)}")
    if integer:
        finite = np.isfinite(array)
        bad = finite & (array != np.floor(array))
        if bad.any():
            raise ValueError(f"{name} must be a whole number, got {_first_bad(array, bad)}")
    return array


def probability(name: str, value: Any, *, open_interval: bool = False) -> np.ndarray:
    """A probability in [0, 1], or in (0, 1) for targets."""
    return as_array(
        name, value, minimum=0.0, maximum=1.0,
        strict_minimum=open_interval, strict_maximum=open_interval,
    )


def is_scalar(*values: Any) -> bool:
    return all(isinstance(v, (float, int)) or np.ndim(v) == 0 for v in values)


def output(result: np.ndarray, scalar: bool):
    """Scalars in give a Python float out; arrays give arrays."""
    if scalar:
        return float(np.asarray(result).reshape(()))
    return result


def check_positive_scalar(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return number


def check_parameter(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                    strict_minimum: bool = False, strict_maximum: bool = False, integer: bool = False,
                    allow_inf: bool = False):
    """Check a notebook parameter (a number or a list of numbers) and return it unchanged.

    The notebooks' validation cells call this so a bad parameter fails there, with a
    ``ValueError`` naming it, rather than deep inside a model.

    Examples
    --------
    >>> check_parameter("surge_multiple", 3.0, minimum=1.0)
    3.0
    >>> check_parameter("surge_multiple", 0.5, minimum=1.0)
    Traceback (most recent call last):
    ...
    ValueError: surge_multiple must be >= 1, got 0.5
    """
    as_array(name, value, minimum=minimum, maximum=maximum, strict_minimum=strict_minimum,
             strict_maximum=strict_maximum, integer=integer, allow_inf=allow_inf)
    return value


def number(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
           strict: bool = False, allow_inf: bool = False) -> float:
    """One real number, checked: ``ValueError`` naming ``name`` otherwise (bools are not numbers)."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if math.isnan(result) or (math.isinf(result) and not allow_inf):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and (result < minimum or (strict and result == minimum)):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    if maximum is not None and result > maximum:
        raise ValueError(f"{name} must be <= {maximum:g}, got {value!r}")
    return result


def whole(name: str, value: Any, minimum: int = 0) -> int:
    """One whole number ``>= minimum`` (10.0 is accepted as 10; 10.5, NaN, inf, bools are not)."""
    message = f"{name} must be a whole number >= {minimum}, got {value!r}"
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(message)
    if isinstance(value, (int, np.integer)):
        result = int(value)
    elif isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        result = int(value)
    else:
        raise ValueError(message)
    if result < minimum:
        raise ValueError(message)
    return result
