"""Validation at the door: every bad value is named, with the value, and nothing else passes."""

import math

import numpy as np
import pytest

from reliability import check_parameter
from reliability._validate import as_array, number, probability, whole


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: as_array("servers", -1, minimum=0.0), "servers must be >= 0, got -1"),
        (lambda: as_array("servers", [1, -2], minimum=0.0), "servers must be >= 0, got -2"),
        (lambda: as_array("load", math.nan), "load must not be NaN"),
        (lambda: as_array("load", [1.0, math.inf]), "load must be finite, got inf"),
        (lambda: as_array("servers", 2.5, integer=True), "servers must be a whole number, got 2.5"),
        (lambda: probability("target", 1.0, open_interval=True), "target must be < 1"),
        (lambda: probability("p_fail", -0.1), "p_fail must be >= 0"),
        (lambda: number("rate", 0.0, minimum=0.0, strict=True), "rate must be > 0, got 0.0"),
        (lambda: number("rate", math.inf), "rate must be a finite number"),
        (lambda: whole("replications", 2.5, 1), "replications must be a whole number >= 1, got 2.5"),
        (lambda: whole("replications", 0, 1), "replications must be a whole number >= 1, got 0"),
        (lambda: check_parameter("surge_multiple", 0.5, minimum=1.0), "surge_multiple must be >= 1, got 0.5"),
    ],
)
def test_bad_values_are_named_with_their_value(call, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


# Issue 10: a bool or a string is a wrong type, not a wrong value: these four once expected ValueError.
# ArgumentTypeError is a TypeError (and, for callers that catch bad arguments as such, a ValueError).
@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: as_array("servers", True), "servers must be a number"),
        (lambda: as_array("servers", "ten"), "servers must be a number"),
        (lambda: number("rate", "x"), "rate must be a number"),
        (lambda: whole("replications", True, 0), "replications must be a whole number"),
    ],
)
def test_wrong_types_are_type_errors_named_with_their_value(call, message):
    with pytest.raises(TypeError, match=message):
        call()


def test_good_values_pass_through():
    assert as_array("x", 3).dtype == np.float64
    assert as_array("x", np.arange(3), minimum=0.0).tolist() == [0.0, 1.0, 2.0]
    assert as_array("x", math.inf, allow_inf=True) == math.inf
    assert number("x", np.float32(2.5)) == 2.5
    assert whole("x", 10.0) == 10 and whole("x", np.int64(3)) == 3
    assert check_parameter("offered_loads", [10.0, 100.0], minimum=0.0) == [10.0, 100.0]
