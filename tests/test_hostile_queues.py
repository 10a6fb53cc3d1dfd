"""Hostile input for reliability.queues and the validation layer: every call answers a right number or
names what is wrong -- never another exception, a warning, a silent NaN or unbounded work.

Each argument is drawn from a strategy of its kind (a real >= 0, a target in (0, 1), a whole
number...) that mixes valid values, extreme ones included (0, subnormals, 1e308, 2**70), with
hostile ones: values of the wrong type (bools, strings, numeric strings, None, complex numbers
and arrays, dicts, lists of strings) and wrong values (NaN, one NaN in an array, infinities,
negatives, fractions where a whole number belongs, 10**400, ragged lists). The expected
outcome follows from the draws: a wrong type must raise a ``TypeError``, a wrong value a
``ValueError`` (either, when both occur), naming one of the offending arguments; valid
arguments must give a finite (or documented infinite) answer in range, or one of the few
documented refusals. Every call runs with warnings as errors and every numpy floating-point
event (underflow too) reported. The work is bounded by the code (proven brackets, step
limits), never by a timed assertion; examples are derandomized, so CI sees the same inputs.
"""

from __future__ import annotations

import math
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reliability import check_parameter
from reliability._validate import ArgumentTypeError, as_array, broadcast, number, probability, whole
from reliability.queues import (
    engset,
    erlang_a,
    erlang_b,
    erlang_c,
    halfin_whitt_beta,
    halfin_whitt_p_wait,
    max_load_for_blocking,
    max_load_for_wait,
    mean_wait,
    mmck,
    response_time_sf,
    servers_for_blocking,
    servers_for_wait,
    square_root_staffing,
    wait_quantile,
    wait_sf,
)

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
FLOAT_MAX = 1.7976931348623157e308


@contextmanager
def strict():
    """Warnings as errors; every numpy floating-point event (underflow included) a warning."""
    with warnings.catch_warnings(), np.errstate(all="warn"):
        warnings.simplefilter("error")
        yield


# ----------------------------------------------------------------------------------------
# Strategies: (value, kind) with kind "ok", "value" (a wrong value) or "type" (a wrong type)
# ----------------------------------------------------------------------------------------

WRONG_TYPES = st.sampled_from([
    True, False, np.bool_(True), "abc", "5", "", None, 3 + 0j, np.complex128(1 + 2j), np.array([10 + 3j]),
    {"a": 1}, ["5", "6"], np.array(["5"]), np.array([True, False]), [1.0, None], {1.0}, b"5",
]).map(lambda v: (v, "type"))


def _wrong_numbers(minimum=None, strict_minimum=False, maximum=None, strict_maximum=False, whole_number=False,
                   allow_inf=False):
    """Numbers outside the domain: NaN (alone or in an array), infinities, out of range, fractions, 10**400."""
    values = [math.nan, np.array([1.0, math.nan]), 10**400, -(10**400), [[1.0, 2.0], [3.0]]]
    if not allow_inf:
        values += [math.inf, -math.inf]
    if minimum is not None:
        values += [minimum - 1.0, -1e308, np.array([minimum - 0.5])] + ([minimum] if strict_minimum else [])
    if maximum is not None:
        values += [maximum + 1.0, 1e308] + ([maximum] if strict_maximum else [])
    if whole_number:
        values += [2.5, (minimum or 0) + 0.5, np.array([1.5])]
    return st.sampled_from(values).map(lambda v: (v, "value"))


@dataclass(frozen=True)
class Kind:
    """The draws of one argument kind: valid ones (extremes included) and hostile ones."""

    valid: st.SearchStrategy
    hostile: st.SearchStrategy


def kinded(valid, wrong_numbers):
    """Valid draws as numbers, 0-d arrays or lists; hostile ones a wrong value or a wrong type."""
    return Kind(st.one_of(valid.map(lambda v: (v, "ok")), valid.map(lambda v: (np.array(v), "ok")),
                          valid.map(lambda v: ([v, v, v], "ok"))),
                st.one_of(wrong_numbers, WRONG_TYPES))


EXTREME_REALS = st.sampled_from([0.0, 5e-324, 1e-308, 1e-300, 1.0, 1e15, 2.0**53, float(2**70), 1e300, 1e308,
                                 FLOAT_MAX])
NONNEGATIVE = st.one_of(st.floats(0.0, 1e4), st.floats(0.0, FLOAT_MAX, allow_subnormal=True), EXTREME_REALS,
                        st.integers(0, 10**6), st.just(2**70))
POSITIVE = st.one_of(st.floats(1e-6, 1e4), st.floats(5e-324, FLOAT_MAX), EXTREME_REALS.filter(lambda x: x > 0))
TARGET = st.one_of(st.floats(1e-6, 0.5), st.floats(5e-324, 1.0, exclude_max=True, exclude_min=True),
                   st.sampled_from([5e-324, 1e-308, 0.5, 1.0 - 2.0**-53]))
QUANTILE = st.one_of(st.floats(0.0, 1.0, exclude_max=True), st.sampled_from([0.0, 1e-308, 1.0 - 2.0**-53]))
WHOLE_FROM_1 = st.one_of(st.integers(1, 50), st.integers(1, 10**7), st.sampled_from([1, 2**53, 2**70, 1e308, 10.0]))
WHOLE_FROM_0 = st.one_of(st.integers(0, 50), WHOLE_FROM_1)

KINDS = {
    "nonnegative": kinded(NONNEGATIVE, _wrong_numbers(minimum=0.0)),
    "positive": kinded(POSITIVE, _wrong_numbers(minimum=0.0, strict_minimum=True)),
    "target": kinded(TARGET, _wrong_numbers(minimum=0.0, strict_minimum=True, maximum=1.0, strict_maximum=True)),
    "quantile": kinded(QUANTILE, _wrong_numbers(minimum=0.0, maximum=1.0, strict_maximum=True)),
    "whole_from_1": kinded(WHOLE_FROM_1, _wrong_numbers(minimum=1.0, whole_number=True)),
    "whole_from_0": kinded(WHOLE_FROM_0, _wrong_numbers(minimum=0.0, whole_number=True)),
}


# ----------------------------------------------------------------------------------------
# The outcome a draw must have
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    """A public function, the kind of each argument, what a valid answer satisfies, and its refusals."""

    function: object
    arguments: dict            # name -> kind
    valid: object              # result -> bool, for valid arguments
    refusals: tuple = ()       # regexes of the ValueErrors valid arguments may meet (documented limits)


def probabilities(result):
    values = np.asarray(result, dtype=float)
    return bool(np.all((values >= 0.0) & (values <= 1.0)))


def times(result):
    values = np.asarray(result, dtype=float)
    return bool(np.all(values >= 0.0)) and not np.isnan(values).any()  # inf: no steady state, or beyond range


def whole_servers(result):
    values = np.asarray(result)
    return values.dtype.kind in "iu" and bool(np.all(values >= 0)) or isinstance(result, int) and result >= 0


def erlang_a_fields(result):
    share = [result.p_wait, result.p_abandon, result.p_served, result.utilisation]
    return all(probabilities(v) for v in share) and times(result.mean_wait) and times(result.mean_queue_length) \
        and bool(np.allclose(np.asarray(result.p_abandon) + np.asarray(result.p_served), 1.0, rtol=0, atol=1e-12))


def staffing(result):
    return result.servers >= 1 and result.exact_servers >= 1 and probabilities(result.p_wait_at_servers) \
        and result.beta >= 0


SIZING_LIMIT = r"load must be <= 2\*\*52"
CASES = {
    "erlang_b": Case(erlang_b, {"servers": "nonnegative", "load": "nonnegative"}, probabilities),
    "erlang_c": Case(erlang_c, {"servers": "nonnegative", "load": "nonnegative"}, probabilities),
    "wait_sf": Case(wait_sf, {"servers": "nonnegative", "load": "nonnegative", "wait_time": "nonnegative",
                              "service_rate": "positive"}, probabilities),
    "response_time_sf": Case(response_time_sf, {"servers": "nonnegative", "load": "nonnegative",
                                                "time": "nonnegative", "service_rate": "positive"}, probabilities),
    "mean_wait": Case(mean_wait, {"servers": "nonnegative", "load": "nonnegative", "service_rate": "positive"},
                      times),
    "wait_quantile": Case(wait_quantile, {"servers": "nonnegative", "load": "nonnegative", "quantile": "quantile",
                                          "service_rate": "positive"}, times),
    "erlang_a": Case(erlang_a, {"servers": "whole_from_1", "arrival_rate": "nonnegative",
                                "service_rate": "positive", "abandonment_rate": "nonnegative"}, erlang_a_fields,
                     (r"abandonment_rate must be 0 or at least 1e-12 \* service_rate", r"40 standard deviations")),
    "engset": Case(engset, {"servers": "whole_from_0", "sources": "whole_from_1", "source_load": "nonnegative"},
                   probabilities),
    "mmck": Case(mmck, {"servers": "whole_from_1", "capacity": "whole_from_1", "load": "nonnegative"},
                 probabilities, (r"capacity must be >= servers",)),
    "servers_for_blocking": Case(servers_for_blocking, {"load": "nonnegative", "target": "target"}, whole_servers,
                                 (SIZING_LIMIT,)),
    "servers_for_wait": Case(servers_for_wait, {"load": "nonnegative", "target": "target",
                                                "wait_time": "nonnegative", "service_rate": "positive"},
                             whole_servers, (SIZING_LIMIT,)),
    "max_load_for_blocking": Case(max_load_for_blocking, {"servers": "positive", "target": "target"}, times),
    "max_load_for_wait": Case(max_load_for_wait, {"servers": "positive", "target": "target",
                                                  "wait_time": "nonnegative", "service_rate": "positive"}, times),
    "halfin_whitt_p_wait": Case(halfin_whitt_p_wait, {"beta": "nonnegative"}, probabilities),
    "halfin_whitt_beta": Case(halfin_whitt_beta, {"target": "target"}, times),
}
# square_root_staffing takes single numbers: an array is a wrong type for it
SCALAR_CASES = {
    "square_root_staffing": Case(square_root_staffing, {"load": "positive", "target": "target"}, staffing,
                                 (SIZING_LIMIT,)),
}


def names_one_of(message: str, names) -> bool:
    return any(re.search(rf"\b{re.escape(n)}\b", message) for n in names)


def check_outcome(case: Case, drawn: dict, scalar_only: bool = False):
    """Call with the drawn arguments and assert the outcome their kinds demand."""
    kwargs = {name: value for name, (value, _) in drawn.items()}
    kinds = {name: kind for name, (_, kind) in drawn.items()}
    if scalar_only:
        kinds = {n: ("type" if k == "ok" and np.ndim(kwargs[n]) > 0 else k) for n, k in kinds.items()}
    wrong_type = [n for n, k in kinds.items() if k == "type"]
    wrong_value = [n for n, k in kinds.items() if k == "value"]
    with strict():
        try:
            result = case.function(**kwargs)
        except (TypeError, ValueError) as error:
            message = str(error)
            event("named error" if wrong_type or wrong_value else "documented refusal")
            if wrong_type or wrong_value:
                assert names_one_of(message, wrong_type + wrong_value), (kwargs, message)
                if not wrong_value:
                    assert isinstance(error, TypeError), (kwargs, message)
                if not wrong_type and not scalar_only:
                    assert not isinstance(error, TypeError), (kwargs, message)
                return
            assert isinstance(error, ValueError) and not isinstance(error, ArgumentTypeError), (kwargs, message)
            assert any(re.search(p, message) for p in case.refusals), (kwargs, message)
            assert names_one_of(message, list(kwargs)), (kwargs, message)
            return
    event("answered")
    assert not (wrong_type or wrong_value), (kwargs, result)
    assert case.valid(result), (kwargs, result)


def draws(arguments: dict):
    """All arguments valid, or one or two of them hostile (a wrong value or a wrong type), the rest valid."""
    names = list(arguments)
    valid = st.fixed_dictionaries({name: KINDS[arguments[name]].valid for name in names})

    def spoil(drawn, count):
        return st.lists(st.sampled_from(names), min_size=1, max_size=count, unique=True).flatmap(
            lambda chosen: st.fixed_dictionaries({n: KINDS[arguments[n]].hostile for n in chosen}).map(
                lambda bad: {**drawn, **bad}))

    return st.one_of(valid, valid.flatmap(lambda d: spoil(d, 1)), valid.flatmap(lambda d: spoil(d, 2)))


@pytest.mark.parametrize("name", list(CASES))
def test_every_queue_function_answers_or_names_the_argument(name):
    case = CASES[name]

    @SETTINGS
    @given(draws(case.arguments))
    def run(drawn):
        check_outcome(case, drawn)

    run()


@pytest.mark.parametrize("name", list(SCALAR_CASES))
def test_scalar_entries_answer_or_name_the_argument(name):
    case = SCALAR_CASES[name]

    @SETTINGS
    @given(draws(case.arguments))
    def run(drawn):
        check_outcome(case, drawn, scalar_only=True)

    run()


# ----------------------------------------------------------------------------------------
# The validation layer itself
# ----------------------------------------------------------------------------------------

@SETTINGS
@given(st.one_of(KINDS["nonnegative"].valid, KINDS["nonnegative"].hostile))
def test_as_array_accepts_numbers_and_names_everything_else(drawn):
    value, kind = drawn
    with strict():
        try:
            out = as_array("load", value, minimum=0.0)
        except (TypeError, ValueError) as error:
            assert kind != "ok" and "load" in str(error)
            assert isinstance(error, TypeError) == (kind == "type"), (value, error)
            return
    assert kind == "ok" and out.dtype == np.float64


@pytest.mark.parametrize("value, message", [
    ("5", "load must be a number or an array of numbers, got '5' (a string)"),
    (None, "load must be a number or an array of numbers, got None"),
    (True, "got True (a bool)"),
    (3 + 0j, "(complex)"),
    (np.array([10 + 3j]), "an array of complex numbers"),
    (["5", "6"], "an array of strings"),
    ({"a": 1}, "got {'a': 1}"),
    ([1.0, None], "holding None"),
])
def test_wrong_types_raise_type_errors_naming_argument_and_value(value, message):
    with pytest.raises(TypeError, match=re.escape(message)):
        as_array("load", value)
    with pytest.raises(TypeError, match="load"):
        erlang_b(5, value)


def test_numeric_strings_are_not_numbers():
    # erlang_b('5', 5.0) once answered 0.2849, and a list of strings an array
    for call in (lambda: erlang_b("5", 5.0), lambda: erlang_b(["5", "6"], 5.0), lambda: number("rate", "2.5"),
                 lambda: whole("servers", "5"), lambda: check_parameter("x", "3")):
        with pytest.raises(TypeError):
            call()


def test_complex_input_is_refused_not_truncated():
    # erlang_b(np.array([10+3j]), 5.0) once returned 0.01838 after a ComplexWarning
    with strict(), pytest.raises(TypeError, match="servers.*complex"):
        erlang_b(np.array([10 + 3j]), 5.0)
    with strict(), pytest.raises(TypeError, match="load.*complex"):
        erlang_c(10, 5 + 0j)


def test_integers_beyond_float_range_are_named_not_overflow_errors():
    for call, name in [(lambda: erlang_b(10**400, 5.0), "servers"), (lambda: mmck(5, 10**400, 1.0), "capacity"),
                       (lambda: as_array("load", [1, 10**400]), "load"), (lambda: number("rate", -(10**400)), "rate"),
                       (lambda: check_parameter("x", 10**5000), "x")]:
        with pytest.raises(ValueError, match=name) as info:
            call()
        assert "integer of" in str(info.value)  # shown by its size, not as 400 digits
    assert whole("clients", 10**400) == 10**400  # whole numbers stay exact (callers bound them)
    assert float(as_array("servers", 2**70)) == 2.0**70


def test_nan_is_named_as_nan_and_none_as_none():
    with pytest.raises(ValueError, match=r"load must not be NaN, got nan at index 1"):
        erlang_b(5, [1.0, math.nan, 2.0])
    with pytest.raises(TypeError, match=r"servers must be a number or an array of numbers, got None"):
        erlang_b(None, 5.0)


def test_unbroadcastable_shapes_name_the_arguments_and_shapes():
    with pytest.raises(ValueError, match=r"servers and load must broadcast to one shape, got shapes servers \(3,\), "
                                         r"load \(2,\)"):
        erlang_b(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match=r"servers, load, service_rate and wait_time must broadcast"):
        wait_sf(np.ones(3), 1.0, 1.0, np.ones(2))
    with pytest.raises(ValueError, match=r"servers, capacity and load must broadcast"):
        mmck(np.ones(2), np.ones(3), 1.0)
    with pytest.raises(ValueError, match="points one call evaluates"):
        broadcast(servers=np.ones(20_000), load=np.ones((20_000, 1)))


def test_check_parameter_checks_its_bounds():
    # check_parameter('x', 3.0, minimum=nan) once let every value through
    with pytest.raises(ValueError, match="minimum.*x.*NaN"):
        check_parameter("x", 3.0, minimum=math.nan)
    with pytest.raises(ValueError, match="maximum.*x.*NaN"):
        check_parameter("x", 3.0, maximum=math.nan)
    with pytest.raises(ValueError, match="minimum .for x. must be <= maximum"):
        check_parameter("x", 3.0, minimum=5.0, maximum=1.0)
    with pytest.raises(TypeError, match="minimum"):
        check_parameter("x", 3.0, minimum="1")
    with pytest.raises(TypeError, match="name"):
        check_parameter(3, 3.0)
    assert check_parameter("x", [1.0, 2.0], minimum=0.0, maximum=10.0) == [1.0, 2.0]


def test_probability_and_whole_name_their_argument():
    with pytest.raises(ValueError, match="target must be < 1"):
        probability("target", 1.0, open_interval=True)
    with pytest.raises(TypeError, match="replications must be a whole number"):
        whole("replications", np.array([3]))
    with pytest.raises(ValueError, match="replications must be a whole number <= 10"):
        whole("replications", 11, 1, maximum=10)
