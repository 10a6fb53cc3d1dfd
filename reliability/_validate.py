"""Validation at the door: every public function checks its arguments here first.

Numbers are Python ints and floats, numpy scalars, 0-d arrays and arrays of them (lists
included). A value of another type -- a bool, a string (also ``'5'``), ``None``, a complex
number or array, a dict, a list of strings -- raises :class:`ArgumentTypeError`; a number out of
range, NaN (also one NaN inside an array), an integer beyond the float range or shapes that
do not broadcast raise ``ValueError``. Every message names the argument and shows the
offending value (the first one, and where it sits, for an array), short even for a 400-digit
integer, so a sweep over a million points still says which value was wrong.

Scalars take a fast path of plain-float comparisons (no numpy call but the final 0-d array):
notebooks call the models one point at a time.

Examples
--------
>>> float(as_array("load", 5))
5.0
>>> as_array("load", "5")
Traceback (most recent call last):
...
reliability._validate.ArgumentTypeError: load must be a number or an array of numbers, got '5' (a string)
>>> as_array("load", [1.0, float("nan")])
Traceback (most recent call last):
...
ValueError: load must not be NaN, got nan at index 1
"""

from __future__ import annotations

import math
import numbers
import sys
from typing import Any

import numpy as np

__all__ = [
    "ArgumentTypeError",
    "MAX_POINTS",
    "describe",
    "as_array",
    "broadcast",
    "probability",
    "is_scalar",
    "output",
    "check_parameter",
    "number",
    "whole",
]

_FLOAT_MAX = sys.float_info.max
#: Most points one call broadcasts to (8e8 bytes per float64 array): a grid beyond it is a
#: mistake (two long axes crossed) that would otherwise end in a MemoryError.
MAX_POINTS = 10**8
_NUMBERS = "a number or an array of numbers"


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a bool, a string, None, complex...) where a number belongs.

    A ``TypeError``; also a ``ValueError``, so that callers which catch bad arguments as
    ``ValueError`` (notebook validation cells, file readers) keep catching these.
    """


# ----------------------------------------------------------------------------------------
# Showing a value in a message
# ----------------------------------------------------------------------------------------

def describe(value: Any) -> str:
    """The value as a message shows it: its repr, shortened (a 400-digit integer becomes its size).

    Examples
    --------
    >>> describe(10**400)
    'an integer of 401 digits'
    >>> describe(np.arange(100.0))
    'array of shape (100,) [0.0, 1.0, 2.0, ...]'
    """
    if isinstance(value, np.generic) and not isinstance(value, (np.str_, np.bytes_)):
        value = value.item()  # np.float64(nan) reads as nan
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        # str() of an int beyond 4,300 digits raises; the bit length gives the size at once.
        bits = value.bit_length()
        digits = len(str(abs(value))) if bits < 10_000 else f"about {int(bits * 0.30103) + 1}"
        return f"{'-' if value < 0 else ''}an integer of {digits} digits"
    if isinstance(value, np.ndarray) and value.size > 6:
        head = ", ".join(describe(v.item() if hasattr(v, "item") else v) for v in value.flat[:3])
        return f"array of shape {value.shape} [{head}, ...]"
    if isinstance(value, (list, tuple)) and len(value) > 20:  # not the repr of a million items
        return f"{type(value).__name__} of {len(value):,} items [{', '.join(describe(v) for v in value[:3])}, ...]"
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _type_note(value: Any) -> str:
    """Why a value is not a number, when its repr alone does not say it ('5' is a string)."""
    if isinstance(value, (bool, np.bool_)):
        return " (a bool)"
    if isinstance(value, (str, bytes, np.str_)):
        return " (a string)"
    if isinstance(value, (complex, np.complexfloating)):
        return " (complex)"
    if isinstance(value, np.ndarray):
        kinds = {"b": "bools", "c": "complex numbers", "U": "strings", "S": "strings", "O": "objects",
                 "M": "dates", "m": "durations", "V": "records"}
        return f" (an array of {kinds.get(value.dtype.kind, value.dtype.name)})"
    return ""


def _wrong_type(name: str, value: Any, what: str = _NUMBERS, converted: Any = None) -> ArgumentTypeError:
    """The error for a value that is not a number (``converted``: the array numpy made of it)."""
    note = _type_note(value if converted is None else converted)
    return ArgumentTypeError(f"{name} must be {what}, got {describe(value)}{note}")


def _beyond_float(name: str, value: Any) -> ValueError:
    return ValueError(f"{name} must be a finite number within the float range (|x| < 1.8e308), "
                      f"got {describe(value)}")


# ----------------------------------------------------------------------------------------
# One real number
# ----------------------------------------------------------------------------------------

def _real(name: str, value: Any) -> float:
    """``value`` as a float if it is one real number (0-d arrays included); else the error that says why."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        raise _wrong_type(name, value)
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            raise _beyond_float(name, value) from None
    if isinstance(value, (np.floating, np.integer)):
        return float(value)
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "fiu":
        return float(value)
    if isinstance(value, numbers.Real):
        try:
            return float(value)  # a Fraction, a Decimal-like real
        except (OverflowError, ValueError, TypeError):
            raise _beyond_float(name, value) from None
    raise _wrong_type(name, value)


def _check_real(name: str, x: float, value: Any, minimum, maximum, strict_minimum: bool, strict_maximum: bool,
                allow_inf: bool, integer: bool) -> None:
    """The range checks of one float ``x`` (read from ``value``, which the message shows)."""
    if x != x:
        raise ValueError(f"{name} must not be NaN, got {describe(value)}")
    if not allow_inf and (x == math.inf or x == -math.inf):
        raise ValueError(f"{name} must be finite, got {describe(value)}")
    if minimum is not None and (x <= minimum if strict_minimum else x < minimum):
        raise ValueError(f"{name} must be {'>' if strict_minimum else '>='} {minimum:g}, got {describe(value)}")
    if maximum is not None and (x >= maximum if strict_maximum else x > maximum):
        raise ValueError(f"{name} must be {'<' if strict_maximum else '<='} {maximum:g}, got {describe(value)}")
    if integer and x != math.floor(x) and math.isfinite(x):
        raise ValueError(f"{name} must be a whole number, got {describe(value)}")


# ----------------------------------------------------------------------------------------
# Arrays
# ----------------------------------------------------------------------------------------

def _float_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array, or the type error that names ``name`` (numbers only)."""
    if value is None or isinstance(value, (bool, np.bool_, str, bytes, complex, np.complexfloating, dict, set)):
        raise _wrong_type(name, value)
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except ValueError:
            raise ValueError(f"{name} must be {_NUMBERS} of one rectangular shape, got a ragged "
                             f"sequence {describe(value)}") from None
        except TypeError:
            raise _wrong_type(name, value) from None
    kind = array.dtype.kind
    if kind == "f":
        return array if array.dtype == np.float64 else array.astype(np.float64)
    if kind in "iu":
        return array.astype(np.float64)
    if kind == "O":
        # Python ints beyond int64, or a mix of types: every element must be one real number.
        out = np.empty(array.shape)
        for index, element in np.ndenumerate(array):
            out[index] = _element(name, element, value)
        return out
    raise _wrong_type(name, value, converted=array)


def _element(name: str, element: Any, value: Any) -> float:
    try:
        return _real(name, element)
    except ArgumentTypeError:
        raise ArgumentTypeError(f"{name} must be {_NUMBERS}, got {describe(value)} (holding "
                                f"{describe(element)}{_type_note(element)})") from None


def _first_bad(array: np.ndarray, bad: np.ndarray) -> str:
    """The first offending value of an array, and where it sits (nothing for a 0-d array)."""
    if array.ndim == 0:
        return describe(array.item())
    index = np.unravel_index(int(np.flatnonzero(bad)[0]), array.shape)
    where = index[0] if len(index) == 1 else tuple(int(i) for i in index)
    return f"{describe(array[index].item())} at index {where}"


def _check_array(name: str, array: np.ndarray, minimum, maximum, strict_minimum: bool, strict_maximum: bool,
                 allow_inf: bool, integer: bool) -> None:
    """The range checks of :func:`_check_real`, over a whole array."""
    nan = np.isnan(array)
    if nan.any():
        raise ValueError(f"{name} must not be NaN, got {_first_bad(array, nan)}")
    if not allow_inf:
        infinite = np.isinf(array)
        if infinite.any():
            raise ValueError(f"{name} must be finite, got {_first_bad(array, infinite)}")
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
        with np.errstate(invalid="ignore"):
            bad = np.isfinite(array) & (array != np.floor(array))
        if bad.any():
            raise ValueError(f"{name} must be a whole number, got {_first_bad(array, bad)}")


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
    """``value`` as a float64 array after checking it: a number, or an array (a list) of numbers.

    Raises :class:`ArgumentTypeError` for what is not a number and ``ValueError`` for a
    number out of range, NaN or (unless ``allow_inf``) an infinity, a fraction where
    ``integer`` asks for a whole number, and an integer beyond the float range; each names
    ``name`` and the first offending value.

    Examples
    --------
    >>> as_array("servers", [1, 2]).tolist()
    [1.0, 2.0]
    >>> as_array("servers", [1, -2], minimum=0.0)
    Traceback (most recent call last):
    ...
    ValueError: servers must be >= 0, got -2.0 at index 1
    """
    kind = type(value)
    if kind is float or kind is int or kind is np.float64:
        # the fast path of one plain number (bool is a subclass of int, but not its type)
        x = value if kind is not int else _real(name, value)
        _check_real(name, x, value, minimum, maximum, strict_minimum, strict_maximum, allow_inf, integer)
        return np.asarray(x, dtype=np.float64)
    array = _float_array(name, value)
    _check_array(name, array, minimum, maximum, strict_minimum, strict_maximum, allow_inf, integer)
    return array


def broadcast(**arrays: np.ndarray) -> list[np.ndarray]:
    """The named arrays broadcast against each other; a ``ValueError`` names them and their shapes.

    Also refuses a broadcast result of more than :data:`MAX_POINTS` points.

    Examples
    --------
    >>> [a.shape for a in broadcast(servers=np.ones(3), load=np.ones((2, 1)))]
    [(2, 3), (2, 3)]
    >>> broadcast(servers=np.ones(3), load=np.ones(2))
    Traceback (most recent call last):
    ...
    ValueError: servers and load must broadcast to one shape, got shapes servers (3,), load (2,)
    """
    values = list(arrays.values())
    try:
        shape = np.broadcast_shapes(*(np.shape(v) for v in values))
    except ValueError:
        raise ValueError(f"{_names(arrays)} must broadcast to one shape, got shapes "
                         f"{', '.join(f'{k} {np.shape(v)}' for k, v in arrays.items())}") from None
    size = math.prod(shape)
    if size > MAX_POINTS:
        raise ValueError(f"{_names(arrays)} broadcast to shape {shape} ({size:.3g} points), more than the "
                         f"{MAX_POINTS:.0e} points one call evaluates: split the grid")
    return list(np.broadcast_arrays(*values))


def _names(arrays: dict) -> str:
    names = list(arrays)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def probability(name: str, value: Any, *, open_interval: bool = False) -> np.ndarray:
    """A probability in [0, 1], or in (0, 1) for targets."""
    return as_array(
        name, value, minimum=0.0, maximum=1.0,
        strict_minimum=open_interval, strict_maximum=open_interval,
    )


def is_scalar(*values: Any) -> bool:
    """True when every value is one number (a 0-d array counts); a list or a ragged list is not."""
    for v in values:
        if isinstance(v, (float, int)):
            continue
        if isinstance(v, (list, tuple, dict, set)):
            return False
        try:
            if np.ndim(v) != 0:
                return False
        except (ValueError, TypeError):  # ragged: the validators name it
            return False
    return True


def output(result: np.ndarray, scalar: bool):
    """Scalars in give a Python float out; arrays give arrays."""
    if scalar:
        return float(np.asarray(result).reshape(()))
    return result


# ----------------------------------------------------------------------------------------
# Notebook parameters, single numbers, whole numbers
# ----------------------------------------------------------------------------------------

def _bound(label: str, bound: Any) -> float | None:
    if bound is None:
        return None
    checked = _real(label, bound)
    if checked != checked:
        raise ValueError(f"{label} must not be NaN, got {describe(bound)}")
    return checked


def check_parameter(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                    strict_minimum: bool = False, strict_maximum: bool = False, integer: bool = False,
                    allow_inf: bool = False):
    """Check a notebook parameter (a number or a list of numbers) and return it unchanged.

    The notebooks' validation cells call this so a bad parameter fails there, with a
    ``ValueError`` (or :class:`ArgumentTypeError`) naming it, rather than deep inside a model.
    The bounds are checked too: a NaN bound would let every value through.

    Examples
    --------
    >>> check_parameter("surge_multiple", 3.0, minimum=1.0)
    3.0
    >>> check_parameter("surge_multiple", 0.5, minimum=1.0)
    Traceback (most recent call last):
    ...
    ValueError: surge_multiple must be >= 1, got 0.5
    """
    if not isinstance(name, str):
        raise ArgumentTypeError(f"name must be the parameter's name (a string), got {describe(name)}")
    low = _bound(f"minimum (for {name})", minimum)
    high = _bound(f"maximum (for {name})", maximum)
    if low is not None and high is not None and low > high:
        raise ValueError(f"minimum (for {name}) must be <= maximum, got {low:g} > {high:g}")
    as_array(name, value, minimum=low, maximum=high, strict_minimum=strict_minimum,
             strict_maximum=strict_maximum, integer=integer, allow_inf=allow_inf)
    return value


def number(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
           strict: bool = False, allow_inf: bool = False) -> float:
    """One real number (a 0-d array too), checked; ``strict`` makes ``minimum`` exclusive.

    Examples
    --------
    >>> number("rate", np.float32(2.5))
    2.5
    >>> number("rate", "2.5")
    Traceback (most recent call last):
    ...
    reliability._validate.ArgumentTypeError: rate must be a number, got '2.5' (a string)
    """
    try:
        x = value if type(value) is float else _real(name, value)
    except ArgumentTypeError:
        raise _wrong_type(name, value, "a number") from None
    if x != x or (not allow_inf and x in (math.inf, -math.inf)):
        raise ValueError(f"{name} must be a finite number, got {describe(value)}")
    if minimum is not None and (x < minimum or (strict and x == minimum)):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum:g}, got {describe(value)}")
    if maximum is not None and x > maximum:
        raise ValueError(f"{name} must be <= {maximum:g}, got {describe(value)}")
    return x


def whole(name: str, value: Any, minimum: int = 0, maximum: int | None = None) -> int:
    """One whole number ``>= minimum`` (and ``<= maximum``), as a Python int, exact at any size.

    10.0 is accepted as 10; 10.5, NaN and inf are not (``ValueError``), nor bools, strings or
    None (:class:`ArgumentTypeError`).

    Examples
    --------
    >>> whole("replications", 20.0, 2)
    20
    >>> whole("clients", 2**70, 1, maximum=10**6)
    Traceback (most recent call last):
    ...
    ValueError: clients must be a whole number <= 1,000,000, got 1180591620717411303424
    """
    span = f">= {minimum}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating, np.ndarray)):
        raise _wrong_type(name, value, f"a whole number {span}")
    if isinstance(value, np.ndarray):
        if value.ndim != 0 or value.dtype.kind not in "fiu":
            raise _wrong_type(name, value, f"a whole number {span}")
        value = value.item()
    if isinstance(value, (int, np.integer)):
        result = int(value)
    elif math.isfinite(value) and float(value).is_integer():
        result = int(value)
    else:
        raise ValueError(f"{name} must be a whole number {span}, got {describe(value)}")
    if result < minimum:
        raise ValueError(f"{name} must be a whole number {span}, got {describe(value)}")
    if maximum is not None and result > maximum:
        raise ValueError(f"{name} must be a whole number <= {maximum:,}, got {describe(value)}")
    return result
