"""Tests of reliability.queues against mpmath at 50 digits, published tables, limits and invariants."""

import math
import warnings

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reliability import queues as erlang
from reliability.validation import references
from reliability.validation.references import engset as mp_engset
from reliability.validation.references import erlang_b as mp_erlang_b
from reliability.validation.references import erlang_c as mp_erlang_c
from reliability.validation.references import mmck as mp_mmck
from reliability.queues.erlang_b import _log_erlang_b, _log_erlang_b_scalar
from reliability.queues.erlang_c import _log_erlang_c, _log_erlang_c_scalar
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

mp.mp.dps = 50
RTOL = 1e-10


# --- mpmath references (the expressions are the definitions, at 50 digits) ---------------
# reliability.validation.references: engset, erlang_b, erlang_c, mmck imported above as mp_*.

def mp_erlang_a(c, lam, mu, theta):
    """(p_wait, p_abandon, mean_wait) of M/M/c+M from reliability.validation.references.erlang_a."""
    reference = references.erlang_a(c, lam, mu, theta)
    return reference.p_wait, reference.p_abandon, reference.mean_wait


def assert_close(actual, expected, rtol=RTOL):
    expected = float(expected)
    assert actual == pytest.approx(expected, rel=rtol, abs=0.0), (actual, expected)


# --- published values ----------------------------------------------------------------------

def test_erlang_b_published_values():
    assert round(erlang_b(10, 5.0), 12) == 0.018384570337
    assert round(erlang_b(30, 25.0), 12) == 0.052603172228
    assert_close(erlang_b(4, 2.0), 2 / 21, rtol=1e-14)


@pytest.mark.parametrize(
    "servers, expected",
    [(11, 0.682118205), (12, 0.449388224), (13, 0.285270453), (14, 0.174131934), (15, 0.102042367)],
)
def test_erlang_c_published_table_load_10(servers, expected):
    assert round(erlang_c(servers, 10.0), 9) == expected


def test_mmck_published_value():
    # arrival rate 8, service rate 4 per server, 5 servers, at most 12 in the system
    assert round(mmck(5, 12, 8 / 4), 11) == 5.869125e-5 or abs(mmck(5, 12, 2.0) - 5.869125e-5) < 5e-12


def test_erlang_a_published_value():
    result = erlang_a(14, 10 / 3, 1 / 3, 1 / 5)
    assert round(result.p_wait, 9) == 0.145260114
    assert round(result.p_abandon, 10) == 0.0139837441


# --- against mpmath at 50 digits ------------------------------------------------------------

B_GRID = [
    (c, c * f)
    for c in (0.5, 1, 2, 3.7, 10, 10.5, 50, 333.3, 1000, 1e4, 1e5)
    for f in (0.05, 0.5, 0.9, 0.99, 1.0, 1.01, 1.2, 2.0, 10.0, 100.0)
]


@pytest.mark.parametrize("servers, load", B_GRID)
def test_erlang_b_matches_mpmath(servers, load):
    assert_close(erlang_b(servers, load), mp_erlang_b(servers, load))


@pytest.mark.parametrize(
    "servers, load, expected",
    [
        # mp: a**c*exp(-a)/gammainc(c+1, a) at mp.dps = 50
        (1e6, 1e6, "0.00079746030685556101375"),
        (1e6, 1e8, "0.99000000010101009895"),
        (1e5, 1e7, "0.99000000101010080398"),
        (1000, 1e5, "0.99000010100803985331"),
        (1e6, 0.99e6, "5.4995431265267091859e-26"),
        (10.5, 7.3, "0.072567126749191020162"),
        (0.5, 3, "0.87182286906697253478"),
    ],
)
def test_erlang_b_large_and_fractional(servers, load, expected):
    assert_close(erlang_b(servers, load), mp.mpf(expected))


@pytest.mark.parametrize("k", [3.9, 3.999, 4.0, 4.001, 4.1, 35.0])
@pytest.mark.parametrize("servers", [10, 1000, 1e6])
def test_erlang_b_continuous_across_method_switch(servers, k):
    # The continued fraction takes over at load = c + 1 + 4 sqrt(c + 1): both sides exact.
    load = servers + 1 + k * math.sqrt(servers + 1)
    assert_close(erlang_b(servers, load), mp_erlang_b(servers, load))


@pytest.mark.parametrize("servers, load", [(c, c * f) for c in (1, 2.5, 10, 100, 1e4) for f in (0.1, 0.8, 0.99, 0.9999)])
def test_erlang_c_matches_mpmath(servers, load):
    assert_close(erlang_c(servers, load), mp_erlang_c(servers, load))


def test_erlang_c_large():
    # mp_erlang_c(1e6, 0.999e6) and mp_erlang_c(1e4, 9900) at 50 digits
    assert_close(erlang_c(1e6, 0.999e6), mp.mpf("0.22330339029134409079"))
    assert_close(erlang_c(1e4, 9900.0), mp.mpf("0.22277692886414824097"))


LARGE_ERLANG_A = {  # rho: (p_wait, p_abandon, mean_wait) of mp_erlang_a(1000, rho * 1000, 1.0, 1e-3)
    0.3: ("2.416393287576346153965911e-221", "3.451981252525583458898163e-227", "3.451981252525583387039368e-224"),
    0.9: ("0.0005926166726116311202731868", "5.92504127735895682458628e-9", "0.000005925041277358956701246581"),
    1.0: ("0.9696019266243453224064772", "0.0007734246417144143399650055", "0.7734246417144143238648709"),
    1.2: ("1.0", "0.1666666666666666666666667", "166.6666666666666631972197"),
    3.0: ("1.0", "0.6666666666666666666666667", "666.6666666666666527888789"),
}


@pytest.mark.parametrize("servers", [1, 5, 14, 100, 1000])
@pytest.mark.parametrize("rho", [0.3, 0.9, 1.0, 1.2, 3.0])
@pytest.mark.parametrize("theta", [1e-3, 0.1, 1.0, 10.0])
def test_erlang_a_matches_mpmath(servers, rho, theta):
    mu = 1.0
    lam = rho * servers * mu
    if servers == 1000 and theta == 1e-3:
        # mp_erlang_a(1000, rho * 1000, 1.0, 1e-3) at 50 digits, stored: at y = 1e6 the
        # hypergeometric series takes mpmath ~10 s for rho = 1.2.
        p_wait, p_abandon, mean_wait_ = (mp.mpf(v) for v in LARGE_ERLANG_A[rho])
    else:
        p_wait, p_abandon, mean_wait_ = mp_erlang_a(servers, lam, mu, theta)
    result = erlang_a(servers, lam, mu, theta)
    assert_close(result.p_wait, p_wait, rtol=1e-11)
    assert_close(result.p_abandon, p_abandon, rtol=1e-11)
    assert_close(result.mean_wait, mean_wait_, rtol=1e-11)


@pytest.mark.parametrize("sources", [2, 5, 20, 100, 1000])
@pytest.mark.parametrize("servers", [1, 2, 10, 50])
@pytest.mark.parametrize("source_load", [0.001, 0.1, 1.0, 30.0])
def test_engset_matches_mpmath(servers, sources, source_load):
    if servers >= sources:
        assert engset(servers, sources, source_load) == 0.0
        return
    assert_close(engset(servers, sources, source_load), mp_engset(servers, sources, source_load), rtol=1e-11)


@pytest.mark.parametrize("servers", [1, 3, 10, 100])
@pytest.mark.parametrize("extra", [0, 1, 5, 50, 1000])
@pytest.mark.parametrize("rho", [0.1, 0.999, 1.0, 1.001, 1.5, 10.0])
def test_mmck_matches_mpmath(servers, extra, rho):
    capacity = servers + extra
    load = rho * servers
    assert_close(mmck(servers, capacity, load), mp_mmck(servers, capacity, load), rtol=1e-11)


@pytest.mark.parametrize("servers, load", [(1, 0.5), (2, 1.0), (10, 9.5), (100, 80.0)])
@pytest.mark.parametrize("t", [0.0, 0.3, 1.0, 5.0])
def test_waiting_times_match_mpmath(servers, load, t):
    mu = mp.mpf(2)
    c, a, tt = mp.mpf(servers), mp.mpf(load), mp.mpf(t)
    p_wait = mp_erlang_c(servers, load)
    theta = (c - a) * mu
    assert_close(wait_sf(servers, load, t, service_rate=2.0), p_wait * mp.exp(-theta * tt))
    # P(W + S > t): wait 0 w.p. 1 - C, else Exp(theta); service Exp(mu)
    if theta == mu:
        conv = mp.exp(-mu * tt) * (1 + mu * tt)
    else:
        conv = (theta * mp.exp(-mu * tt) - mu * mp.exp(-theta * tt)) / (theta - mu)
    expected = (1 - p_wait) * mp.exp(-mu * tt) + p_wait * conv
    assert_close(response_time_sf(servers, load, t, service_rate=2.0), expected)
    assert_close(mean_wait(servers, load, service_rate=2.0), p_wait / theta)


def test_response_time_equal_rates_is_stable():
    # theta = (c - a) mu equals mu when c - a = 1: the closed form divides 0 by 0 there.
    near = response_time_sf(3, 2.0 - 1e-12, 1.5)
    exact = response_time_sf(3, 2.0, 1.5)
    assert abs(near - exact) < 1e-11


def test_wait_quantile_inverts_wait_sf():
    for q in (0.5, 0.9, 0.99, 0.999):
        t = wait_quantile(11, 10.0, q)
        assert_close(wait_sf(11, 10.0, t), 1 - q)
    assert wait_quantile(100, 10.0, 0.5) == 0.0  # almost nobody waits
    assert wait_quantile(5, 7.0, 0.5) == math.inf


# --- limits and identities ---------------------------------------------------------------------

def test_erlang_b_integer_recursion():
    # the classical recursion 1/B(k) = 1 + k/(a B(k-1)), for whole servers
    for load in (0.3, 7.0, 55.5):
        inverse = 1.0
        for k in range(1, 80):
            inverse = 1.0 + inverse * k / load
            assert_close(erlang_b(k, load), 1.0 / inverse, rtol=1e-12)


def test_erlang_a_tends_to_erlang_c():
    for theta in (1e-4, 1e-6, 1e-8):
        result = erlang_a(20, 15.0, 1.0, theta)
        assert abs(result.p_wait - erlang_c(20, 15.0)) < 50 * theta
        assert abs(result.mean_wait - mean_wait(20, 15.0)) < 500 * theta
    exact = erlang_a(20, 15.0, 1.0, 0.0)
    assert exact.p_wait == pytest.approx(erlang_c(20, 15.0), rel=1e-14)
    assert exact.p_abandon == 0.0


def test_erlang_a_overloaded_abandonment_balances():
    # Deep overload: served throughput can't exceed c mu, so P(abandon) -> 1 - c mu / lambda.
    result = erlang_a(100, 1000.0, 1.0, 0.01)
    assert result.p_wait == pytest.approx(1.0, abs=1e-12)
    assert result.p_abandon == pytest.approx(1 - 100 / 1000, rel=1e-6)


def test_mmck_limits():
    assert_close(mmck(7, 7, 5.0), erlang_b(7, 5.0), rtol=1e-14)  # K = c is Erlang B
    assert mmck(10, 10_000, 8.0) < 1e-300  # K -> inf, stable: nobody is turned away
    # K -> inf in overload: the blocked share tends to 1 - c/a
    assert mmck(10, 100_000, 20.0) == pytest.approx(0.5, rel=1e-12)


def test_engset_tends_to_erlang_b():
    load = 8.0
    for sources in (10**3, 10**4, 10**5):
        # total offered load of idle sources fixed: (N) b / (1 + b) -> a as N grows
        b = load / sources
        gap = abs(engset(10, sources, b) - erlang_b(10, load))
        assert gap < 20.0 / sources


def test_halfin_whitt_round_trip_and_accuracy():
    for target in (0.01, 0.1, 0.5, 0.9):
        assert_close(halfin_whitt_p_wait(halfin_whitt_beta(target)), target, rtol=1e-12)
    assert halfin_whitt_p_wait(0.0) == 1.0
    # Square-root staffing is within a server or two of exact across scales.
    for load in (10.0, 100.0, 1000.0, 1e5):
        s = square_root_staffing(load, 0.2)
        assert abs(s.error) <= 2, s
        assert s.exact_servers == servers_for_wait(load, 0.2)
    # and the delay probability at c = a + beta sqrt(a) converges to the limit as a grows
    beta = 1.0
    gaps = [abs(erlang_c(a + beta * math.sqrt(a), a) - halfin_whitt_p_wait(beta)) for a in (1e2, 1e4, 1e6)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-3


# --- inverse sizing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("load", [0.5, 5.0, 77.7, 1000.0, 1e5, 1e6])
@pytest.mark.parametrize("target", [0.001, 0.01, 0.2])
def test_servers_for_blocking_is_least(load, target):
    n = servers_for_blocking(load, target)
    assert isinstance(n, int)
    assert erlang_b(n, load) <= target < erlang_b(n - 1, load)


@pytest.mark.parametrize("load", [0.5, 10.0, 500.0, 1e6])
@pytest.mark.parametrize("target, wait_time", [(0.2, 0.0), (0.05, 0.0), (0.2, 0.1), (0.01, 0.5)])
def test_servers_for_wait_is_least(load, target, wait_time):
    n = servers_for_wait(load, target, wait_time=wait_time)
    assert wait_sf(n, load, wait_time) <= target < wait_sf(n - 1, load, wait_time)


def test_sizing_published_and_vectorised():
    assert servers_for_blocking(5.0, 0.02) == 10
    assert servers_for_wait(10.0, 0.2) == 14  # from the Erlang C table above
    loads = np.array([5.0, 10.0, 1e4])
    assert servers_for_blocking(loads, 0.01).tolist() == [servers_for_blocking(x, 0.01) for x in loads]


def test_max_load_inverts():
    for servers in (1, 10, 1000):
        for target in (0.001, 0.05):
            a = max_load_for_blocking(servers, target)
            assert_close(erlang_b(servers, a), target, rtol=1e-9)
            a = max_load_for_wait(servers, target, wait_time=0.2)
            assert_close(wait_sf(servers, a, 0.2), target, rtol=1e-9)


# --- scale, vectorisation, no warnings --------------------------------------------------------------

def test_million_point_grid_one_call_no_warnings():
    rng = np.random.default_rng(7)
    servers = rng.uniform(0, 1e6, 10**6)
    load = servers * rng.uniform(0, 100, 10**6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = erlang_b(servers, load)
        c = erlang_c(servers, load)
    assert b.shape == (10**6,)
    assert np.isfinite(b).all() and np.isfinite(c).all()
    assert ((0 <= b) & (b <= c + 1e-15) & (c <= 1)).all()


def test_scalar_in_float_out_and_broadcast():
    assert type(erlang_b(3, 2.0)) is float
    assert erlang_b(np.arange(1, 4)[:, None], np.array([1.0, 2.0])).shape == (3, 2)
    result = erlang_a([10, 20], 9.0, 1.0, 0.5)
    assert result.p_wait.shape == (2,)
    assert "p_wait=" in repr(erlang_a(10, 9.0, 1.0, 0.5))


def test_edge_values():
    assert erlang_b(0, 3.0) == 1.0
    assert erlang_b(5, 0.0) == 0.0
    assert erlang_c(5, 5.0) == 1.0
    assert erlang_c(5, 50.0) == 1.0
    assert mean_wait(5, 6.0) == math.inf
    assert servers_for_blocking(0.0, 0.01) == 0


# --- properties -------------------------------------------------------------------------------------

servers_st = st.floats(min_value=0.1, max_value=1e5)
ratio_st = st.floats(min_value=1e-3, max_value=50.0)


@settings(max_examples=200, deadline=None)
@given(servers_st, ratio_st)
def test_b_below_c_below_one(servers, ratio):
    load = servers * ratio
    b, c = erlang_b(servers, load), erlang_c(servers, load)
    assert 0.0 <= b <= c * (1 + 1e-12) <= 1.0 + 1e-12


@settings(max_examples=200, deadline=None)
@given(servers_st, ratio_st, st.floats(min_value=1e-3, max_value=0.5))
def test_monotone_in_servers_and_load(servers, ratio, step):
    load = servers * ratio
    b = erlang_b(servers, load)
    assert erlang_b(servers * (1 + step), load) <= b * (1 + 1e-12)
    assert erlang_b(servers, load * (1 + step)) >= b * (1 - 1e-12)
    c = erlang_c(servers, load)
    assert erlang_c(servers * (1 + step), load) <= c * (1 + 1e-12)
    assert erlang_c(servers, load * (1 + step)) >= c * (1 - 1e-12)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 200), st.floats(0.01, 3.0), st.one_of(st.just(0.0), st.floats(1e-9, 5.0)))
def test_erlang_a_bounds(servers, rho, theta):
    result = erlang_a(servers, rho * servers, 1.0, theta)
    assert 0.0 <= result.p_abandon <= result.p_wait <= 1.0
    assert 0.0 <= result.utilisation <= 1.0 + 1e-12


# --- bad input ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: erlang_b(-1, 2.0), "servers"),
        (lambda: erlang_b(2, -0.5), "load"),
        (lambda: erlang_b(float("nan"), 2.0), "servers"),
        (lambda: erlang_b(2, float("inf")), "load"),
        (lambda: erlang_b([1, 2, -3], 2.0), "servers"),
        (lambda: erlang_c(2, "many"), "load"),
        (lambda: erlang_b(True, 2.0), "servers"),
        (lambda: erlang_b(np.array([True]), 2.0), "servers"),
        (lambda: erlang_a(2.5, 1.0, 1.0, 1.0), "servers"),
        (lambda: erlang_a(2, 1.0, 0.0, 1.0), "service_rate"),
        (lambda: erlang_a(2, 1.0, 1.0, -1.0), "abandonment_rate"),
        (lambda: erlang_a(2, 1.0, 1.0, 1e-300), "abandonment_rate"),
        (lambda: engset(2, 0, 1.0), "sources"),
        (lambda: engset(1.5, 3, 1.0), "servers"),
        (lambda: mmck(5, 3, 1.0), "capacity"),
        (lambda: servers_for_blocking(10.0, 0.0), "target"),
        (lambda: servers_for_blocking(10.0, 1.0), "target"),
        (lambda: servers_for_wait(10.0, 0.1, wait_time=-1), "wait_time"),
        (lambda: wait_quantile(3, 1.0, 1.0), "quantile"),
        (lambda: halfin_whitt_beta(1.5), "target"),
        (lambda: max_load_for_blocking(0, 0.1), "servers"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_module_exports_are_documented():
    for name in erlang.__all__:
        obj = getattr(erlang, name)
        assert obj.__doc__ and "Examples" in obj.__doc__ or isinstance(obj, type), name


def test_scalar_kernels_equal_vectorised_kernels():
    # The sizing searches run on plain-float kernels; they must be the same function.
    rng = np.random.default_rng(3)
    servers = np.concatenate([rng.uniform(0, 50, 300), rng.uniform(0, 1e6, 300), np.arange(0, 40)])
    load = servers * np.concatenate([rng.uniform(0, 3, 600), rng.uniform(0, 100, 40)])
    vector_b = _log_erlang_b(servers, load)
    vector_c = _log_erlang_c(servers, load)
    for c, a, lb, lc in zip(servers, load, vector_b, vector_c):
        sb = _log_erlang_b_scalar(float(c), float(a))
        sc = _log_erlang_c_scalar(float(c), float(a))
        assert sb == pytest.approx(lb, rel=1e-13, abs=1e-13)
        assert sc == pytest.approx(lc, rel=1e-13, abs=1e-13)


def test_scalar_and_array_sizing_agree():
    loads = np.array([0.0, 0.3, 5.0, 99.9, 1234.5, 1e5, 1e6])
    for target in (0.001, 0.02, 0.3):
        array_b = servers_for_blocking(loads, target)
        array_w = servers_for_wait(loads, target, wait_time=0.05)
        for i, a in enumerate(loads):
            assert servers_for_blocking(float(a), target) == array_b[i]
            assert servers_for_wait(float(a), target, wait_time=0.05) == array_w[i]


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=0.0, max_value=1e7, allow_subnormal=True),
       st.floats(min_value=0.0, max_value=1e9, allow_subnormal=True))
def test_any_representable_input_gives_a_probability_without_warnings(servers, load):
    # Subnormal loads and servers once overflowed log(x / mean) inside bd0.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = erlang_b(servers, load)
        c = erlang_c(servers, load)
    assert 0.0 <= b <= 1.0 and 0.0 <= c <= 1.0


def test_subnormal_load():
    # B(1, a) = a / (1 + a)
    assert erlang_b(1, 2.2e-313) == 2.2e-313


# --- precision at the edges: a waiting room of 10^8, near-critical M/M/c/K, Engset at 10^6 sources ----
# Each value is the 50-digit mpmath reference, stored with the expression that gave it (the
# expressions live in reliability.validation.references; the test below recomputes them).
# Before the fix (m log(rho) formed, then cancelled; betainc on 1 - p) the errors were
# 2.5e-9, 2.2e-10, 4.2e-11, 1.6e-12 and 1.3e-12.
EDGE_CASES = [
    (mmck, (2, 10**8, 3.0), "references.mmck(2, 10**8, 3.0)",
     "0.333333333333333333333333333333333333333333333"),
    (mmck, (10, 10**7, 10 * (1 - 1e-9)), "references.mmck(10, 10**7, 10 * (1 - 1e-9))",
     "0.0000000995008868261619368688908381171633884730134006"),
    (mmck, (5, 10**6, 10.0), "references.mmck(5, 10**6, 10.0)",
     "0.5"),
    (mmck, (1000, 10**5, 2000.0), "references.mmck(1000, 10**5, 2000.0)",
     "0.5"),
    (engset, (100, 10**6, 1e-4), "references.engset(100, 10**6, 1e-4)",
     "0.0756463650183976983253828443809227564460610202"),
]


@pytest.mark.parametrize("function, args, expression, stored", EDGE_CASES, ids=[c[2] for c in EDGE_CASES])
def test_edge_precision_within_1e12_of_mpmath(function, args, expression, stored):
    value = function(*args)
    assert abs(value - mp.mpf(stored)) <= 1e-12 * mp.mpf(stored), (expression, value, stored)


@pytest.mark.parametrize("function, args, expression, stored", EDGE_CASES, ids=[c[2] for c in EDGE_CASES])
def test_edge_references_give_the_stored_values(function, args, expression, stored):
    reference = eval(expression, {"references": references})  # the expression stored beside the value
    with mp.workdps(50):  # other test modules set mpmath's global precision lower at import
        assert abs(reference - mp.mpf(stored)) <= mp.mpf(10) ** -43 * abs(reference)


def test_mmck_closed_form_reference_equals_the_state_sum():
    # references.mmck sums the queue's states in closed form; check it against the defining sum
    for servers, capacity, load in [(1, 1, 1.0), (3, 10, 2.5), (5, 12, 2.0), (4, 40, 4.0), (2, 30, 7.0)]:
        with mp.workdps(50):
            a = mp.mpf(load)
            weights = [a**n / mp.factorial(n) for n in range(servers + 1)]
            weights += [weights[servers] * (a / servers) ** (n - servers) for n in range(servers + 1, capacity + 1)]
            assert abs(references.mmck(servers, capacity, load) - weights[-1] / mp.fsum(weights)) < mp.mpf(10) ** -45


# --- extreme but valid values: the limit each must reach, computed without overflow or warning -------

@pytest.fixture
def strict_floats():
    """Warnings as errors, and every numpy floating-point event (underflow too) a warning."""
    with warnings.catch_warnings(), np.errstate(all="warn"):
        warnings.simplefilter("error")
        yield


EXTREMES = [
    # (call, expected, why)
    (lambda: erlang_c(1e308, 10.0), 0.0,
     "10 Erlangs on 1e308 servers never wait: C <= B = pmf(c; a) / Q(c + 1, a), and pmf underflows"),
    (lambda: erlang_b(1e308, 10.0), 0.0, "the same blocking probability, below the smallest double"),
    (lambda: wait_sf(1e308, 10.0, 0.1), 0.0, "P(W > t) <= P(wait) = 0"),
    (lambda: response_time_sf(1e308, 10.0, 0.1), math.exp(-0.1),
     "nobody waits, so the response time is the service time alone: P(S > t) = e^-t"),
    (lambda: wait_quantile(1e308, 10.0, 0.9), 0.0, "P(wait) = 0 <= 1 - 0.9: the 90 % quantile of the wait is 0"),
    (lambda: mean_wait(1e308, 10.0), 0.0, "E[W] = C / ((c - a) mu) = 0"),
    (lambda: wait_sf(11, 10.0, 1e308), 0.0, "C e^-((c - a) mu t) with (c - a) mu t = 1e308"),
    (lambda: halfin_whitt_p_wait(1e308), 0.0,
     "P(wait) ~ phi(beta) / (beta Phi(beta)), which underflows beyond beta = 38.6 (beta^2 never formed)"),
    (lambda: wait_quantile(11, 10, 0.9, 1e-308), math.inf,
     "the quantile is log(C / 0.1) / ((c - a) mu) = 1.92 / 1e-308 = 1.9e308 time units: beyond the "
     "largest double, which rounds it to inf"),
    (lambda: mean_wait(11, 10.0, 1e-308), 0.6821182046893324e308,
     "C / ((c - a) mu) = 0.682 / 1e-308 is still a double"),
    (lambda: max_load_for_wait(15, 0.1, 1e308), 15.0,
     "P(W > 1e308) = C e^-(15 - a) 1e308 <= 0.1 for every a below 15 that a double resolves: the "
     "supremum is the servers"),
    (lambda: max_load_for_blocking(1e308, 0.01), 1e308 / 0.99,
     "B ~ 1 - c/a far in overload at this scale, so a = c / (1 - target); the bracket's midpoint "
     "is taken as low/2 + high/2, never (low + high)/2 = inf"),
    (lambda: mmck(3, 10**6, 1e308), 1.0, "a load of 1e308 on 3 servers turns away everyone: 1 - c/a = 1"),
    (lambda: engset(10, 1e308, 0.1), 1.0, "1e308 sources flood 10 servers: every request finds them busy"),
]


@pytest.mark.parametrize("call, expected, why", EXTREMES, ids=[e[2][:40] for e in EXTREMES])
def test_extreme_values_reach_their_limit(strict_floats, call, expected, why):
    assert call() == pytest.approx(expected, rel=1e-12, abs=0.0), why


def test_erlang_a_limits_at_1e308(strict_floats):
    # 1e308 servers for 10 Erlangs: nobody waits, nobody abandons; the servers are 1e-307 busy.
    idle = erlang_a(1e308, 10.0, 1.0, 0.2)
    assert (idle.p_wait, idle.p_abandon, idle.mean_wait, idle.p_served) == (0.0, 0.0, 0.0, 1.0)
    assert idle.utilisation == pytest.approx(1e-307, rel=1e-12)
    # 1e308 arrivals a second on 14 servers (3e308 Erlangs, beyond double range): every server is
    # busy for ever and carries c mu; all the rest abandon after waiting their patience (1/theta).
    flooded = erlang_a(14, 1e308, 1 / 3, 0.2)
    assert flooded.p_wait == 1.0 and flooded.utilisation == 1.0
    assert flooded.p_served == pytest.approx(14 / 3 / 1e308, rel=1e-12)
    assert flooded.p_abandon == 1.0 and flooded.mean_wait == pytest.approx(5.0, rel=1e-12)
    assert flooded.mean_queue_length == math.inf  # (lambda - c mu) / theta = 5e308: beyond double range
    # 1e308 service rate: 14 servers serve 10 arrivals a second at once; patience 0.2 is refused,
    # being under 1e-12 service times (the abandonment rate's floor), named with both rates
    with pytest.raises(ValueError, match="abandonment_rate.*service_rate"):
        erlang_a(14, 10.0, 1e308, 0.2)
    # an abandonment rate of 1e308: whoever finds the servers busy leaves at once, P(wait) = B
    impatient = erlang_a(14, 10.0, 1.0, 1e308)
    assert impatient.p_wait == pytest.approx(erlang_b(14, 10.0), rel=1e-12)
    assert impatient.p_abandon == pytest.approx(erlang_b(14, 10.0), rel=1e-12)


def test_astronomical_heavy_traffic_is_refused_by_name():
    # x = y = 5e307 beyond 1e300: the queue's heavy-traffic limit, which floats do not resolve there
    with pytest.raises(ValueError, match="servers.*arrival_rate.*abandonment_rate"):
        erlang_a(1e307, 1e307, 1.0, 0.2)


def test_sizing_refuses_loads_beyond_whole_numbers_and_stays_bounded(strict_floats):
    # servers_for_wait(1e308, 0.2) and square_root_staffing(1e308, 0.2) once searched for ever
    for call in (lambda: servers_for_wait(1e308, 0.2), lambda: servers_for_blocking(1e308, 0.01),
                 lambda: square_root_staffing(1e308, 0.2), lambda: servers_for_wait(np.array([1e308]), 0.2)):
        with pytest.raises(ValueError, match="load must be <= 2\\*\\*52"):
            call()
    # a service rate of 1e308 with wait_time 0 once gave (c - a) mu t = inf * 0 = NaN and no answer
    assert servers_for_wait(10.0, 0.2, 0.0, 1e308) == servers_for_wait(10.0, 0.2)
    # a target of 1e-308 once overflowed the search's bound, log(2 (a + 1) / target) = log(inf)
    least = servers_for_wait(10.0, 1e-308)
    assert erlang_c(least, 10.0) <= 1e-308 < erlang_c(least - 1, 10.0)
    assert servers_for_wait(2.0**52, 0.2) > 2**52
    assert servers_for_wait(np.array([2.0**52]), 0.2)[0] == servers_for_wait(2.0**52, 0.2)


def test_log_sum_exp_is_mpmath_and_scipy_without_warnings():
    # the mean-field searches normalise stationary distributions with it, thousands of times
    from scipy import special

    from reliability.queues._kernels import log_sum_exp

    rng = np.random.default_rng(11)
    rows = np.concatenate([rng.normal(0, 1, (5, 40)), rng.normal(-800, 300, (5, 40)), rng.normal(700, 5, (5, 40))])
    rows[0, :39] = -np.inf  # one finite term
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = log_sum_exp(rows, axis=1)
        assert np.array_equal(log_sum_exp(rows, axis=1, keepdims=True)[:, 0], ours)
        assert log_sum_exp(np.full(3, -np.inf)) == -np.inf
        assert log_sum_exp(np.array([1.0, np.inf])) == np.inf
        assert isinstance(log_sum_exp(rows[3]), float)
    mp.mp.dps = 50
    for row, value in zip(rows, ours):
        exact = mp.log(mp.fsum(mp.exp(mp.mpf(float(x))) for x in row if np.isfinite(x)))
        assert value == pytest.approx(float(exact), rel=4e-16, abs=4e-16)
    assert np.allclose(ours, special.logsumexp(rows, axis=1), rtol=1e-15, atol=0)
