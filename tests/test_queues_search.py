"""Tests of reliability.queues.search: the one whole-number and the one real bisection, scalar and array."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reliability.queues import erlang_b, max_load_for_blocking, max_load_for_wait, wait_sf
from reliability.queues.search import (
    MAX_HALVINGS,
    bisect_real,
    crossing,
    greatest_real,
    least_real,
    least_whole,
    least_whole_array,
    least_whole_between,
    least_whole_between_array,
)


@settings(max_examples=200, deadline=None)
@given(st.integers(-1, 10**6), st.integers(1, 10**6), st.integers(0, 10**7))
def test_whole_number_searches_find_the_least_and_agree(low, gap, start):
    threshold = low + gap  # predicate n >= threshold: false at low, true from threshold on
    assert least_whole_between(lambda n: n >= threshold, low, threshold + start) == threshold
    assert least_whole(lambda n: n >= threshold, low, start) == threshold
    lows = np.array([float(low), float(low)])
    thresholds = np.array([float(threshold), float(threshold + 3)])

    def meets(n, mask):
        return n >= thresholds[mask]

    assert least_whole_array(meets, lows, np.full(2, float(start))).tolist() == [threshold, threshold + 3]
    assert least_whole_between_array(meets, lows, thresholds + start).tolist() == [threshold, threshold + 3]


def test_whole_number_search_never_asks_below_the_range():
    asked = []

    def meets(n):
        asked.append(n)
        assert n >= 0
        return n >= 0

    assert least_whole_between(meets, -1, 50) == 0
    assert -1 not in asked


@pytest.mark.parametrize("root", [2.0 ** 0.5, 1e-300, 5e-324, 0.75, 1e300])
def test_real_bisection_reaches_adjacent_doubles_at_any_scale(root):
    high = max(2.0 * root, 1.0)
    low, top = bisect_real(lambda x: x >= root, 0.0, high)
    assert low < root <= top and math.nextafter(low, math.inf) == top
    lows, tops = bisect_real(lambda x: x >= root, np.zeros(2), np.full(2, high))
    assert lows.tolist() == [low, low] and tops.tolist() == [top, top]


def test_real_bisection_relative_precision_and_bound():
    low, high = bisect_real(lambda x: x >= math.pi, 0.0, 10.0, relative_precision=1e-11)
    assert low < math.pi <= high and high - low <= 1e-11 * max(1.0, high)
    # a bracket that never closes in the predicate's sense still stops after MAX_HALVINGS steps
    calls = []
    bisect_real(lambda x: calls.append(x) or False, 0.0, 1e308)
    assert len(calls) <= MAX_HALVINGS


def test_least_and_greatest_real_and_crossing():
    assert least_real(lambda x: x * x >= 2.0, 0.0, 2.0) ** 2 >= 2.0
    assert greatest_real(lambda x: x * x <= 2.0, 0.0, 2.0) ** 2 <= 2.0
    assert crossing(lambda x: x * x - 2.0, 0.0, 2.0) == pytest.approx(math.sqrt(2.0), rel=1e-15)
    values = crossing(lambda x: x * x - np.array([2.0, 9.0]), np.zeros(2), np.full(2, 4.0))
    assert values.tolist() == pytest.approx([math.sqrt(2.0), 3.0], rel=1e-15)
    assert greatest_real(lambda x: x <= np.array([1.0, 2.0]), np.zeros(2), np.full(2, 3.0)).tolist() == \
        pytest.approx([1.0, 2.0], rel=1e-15)


def test_max_load_searches_resolve_tiny_answers():
    # B(1, a) = a / (1 + a): the answer 1e-100 lies 330 halvings below the bracket's top.
    for answer in (max_load_for_blocking(1, 1e-100), max_load_for_blocking(np.array([1.0]), 1e-100)[0]):
        assert answer == pytest.approx(1e-100, rel=1e-12)
        assert erlang_b(1, answer) == pytest.approx(1e-100, rel=1e-12)
    assert wait_sf(1, max_load_for_wait(1, 1e-100), 0.0) == pytest.approx(1e-100, rel=1e-12)


def test_scalar_and_array_max_load_agree():
    for servers in (1.0, 7.5, 100.0, 1e5):
        for target in (1e-6, 0.01, 0.5):
            one = max_load_for_blocking(servers, target)
            many = max_load_for_blocking(np.array([servers]), target)[0]
            assert one == pytest.approx(many, rel=1e-12)
            one = max_load_for_wait(servers, target, wait_time=0.3)
            many = max_load_for_wait(np.array([servers]), target, wait_time=0.3)[0]
            assert one == pytest.approx(many, rel=1e-12)
