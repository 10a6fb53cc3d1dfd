"""The shared harness of the hostile-input test modules for retry and headroom.

``attack`` lets hypothesis pick one argument of a valid call and a hostile value for it;
``check_outcome`` holds the outcome to a finite right answer or a ValueError/TypeError naming
the argument (a TypeError for a value that is not a number), under warnings-as-errors.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

HOSTILE = settings(max_examples=30, derandomize=True, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow])

# -- strategies per argument kind ------------------------------------------------------------
#: Not numbers: each must be refused with a TypeError naming the argument.
NOT_NUMBERS = st.sampled_from([True, False, np.bool_(True), "abc", "5", "", None, 3 + 0j, np.complex128(1),
                               np.array([10 + 3j]), {"a": 1}, ["5", "6"], np.array([True, False]), [1.0, None],
                               object()])
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf, np.float64("nan"), np.array([1.0, math.nan, 2.0])])
HUGE_INTS = st.integers(min_value=2**1024, max_value=10**400) | st.sampled_from([2**70, -(10**400)])
EXTREME = st.sampled_from([1e308, -1e308, 1e-308, 5e-324, 0.0, -0.0, -1.0, 2.7, 1e15 + 0.5])
ARRAYS = st.sampled_from([np.array([]), np.array(5.0), [[1.0, 2.0], [3.0]], np.ones(3), np.ones((2, 1))])
NUMBERISH = NON_FINITE | HUGE_INTS | EXTREME | ARRAYS | st.floats(allow_nan=True, allow_infinity=True)
HOSTILE_VALUES = NOT_NUMBERS | NUMBERISH


def _is_not_number(value) -> bool:
    if isinstance(value, (bool, np.bool_, str, complex, np.complexfloating, dict, type(None))):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind not in "fiu"
    if isinstance(value, list):
        return any(_is_not_number(v) for v in value)
    return not isinstance(value, (int, float, np.integer, np.floating, list))


def _holds_nan(result, depth=0) -> bool:
    if depth > 3:
        return False
    if isinstance(result, (float, np.floating)):
        return math.isnan(result)
    if isinstance(result, np.ndarray) and result.dtype.kind == "f":
        return bool(np.isnan(result).any())
    if isinstance(result, pd.DataFrame):
        numeric = result.select_dtypes("number")
        return bool(numeric.isna().to_numpy().any())
    if isinstance(result, (tuple, list)):
        return any(_holds_nan(v, depth + 1) for v in result[:50])
    if hasattr(result, "__dataclass_fields__"):
        return any(_holds_nan(getattr(result, f), depth + 1) for f in result.__dataclass_fields__)
    return False


def check_outcome(call, kwargs: dict, argument: str, *, allowed_nan=(), text=()):
    """Run ``call(**kwargs)`` with warnings as errors and assert its outcome class.

    ``text``: arguments that take a string (a policy or model given as text): a wrong string
    there is a bad value (ValueError), not a bad type.
    """
    value = kwargs[argument]
    not_number = _is_not_number(value) and not (isinstance(value, str) and argument in text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            result = call(**kwargs)
        except (ValueError, TypeError) as error:
            message = str(error)
            assert argument in message, f"{type(error).__name__} does not name {argument!r}: {message}"
            if not_number:
                assert isinstance(error, TypeError), f"{argument}={value!r} gave {type(error).__name__}: {message}"
            return None
    assert not not_number, f"{argument}={value!r} (not a number) was accepted: {result!r}"
    if not any(name in allowed_nan for name in ("*", argument)):
        assert not _holds_nan(result), f"{argument}={value!r} gave a NaN: {result!r}"
    return result


def attack(call, base: dict, *, accepts: dict | None = None, values=HOSTILE_VALUES, allowed_nan=(), text=()):
    """A hypothesis test: one argument of ``base`` replaced by a hostile value (``accepts``: values taken by design)."""
    accepts = accepts or {}

    @HOSTILE
    @given(argument=st.sampled_from(sorted(base)), value=values)
    def test(argument, value):
        if any(value is ok or (type(value) is type(ok) and _same(value, ok)) for ok in accepts.get(argument, ())):
            return
        check_outcome(call, {**base, argument: value}, argument, allowed_nan=allowed_nan, text=text)

    return test


def _same(a, b) -> bool:
    try:
        return bool(a == b)
    except (ValueError, TypeError):
        return False
