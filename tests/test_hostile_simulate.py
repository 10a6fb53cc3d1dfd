"""Hostile input for reliability.simulate, reliability.series and reliability.validation: every call
runs a bounded simulation and answers, or names what is wrong -- never another exception, a
warning, a silent NaN, or a run too large to hold.

As in ``test_hostile_queues``: each argument is drawn from a strategy of its kind that mixes
valid values with wrong types (``TypeError`` expected) and wrong values (``ValueError``
expected), and the error must name an offending argument. Valid draws are kept small (a few
hundred customers, seconds of simulated time) but include the extremes a simulator accepts
(rates of 1e-250 and 1e250, a timeout of 1e-308 s); sizes beyond the simulators' limits must be
refused before anything runs, with the limit named. Warnings are errors; no timed assertion.
"""

from __future__ import annotations

import math
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from reliability.retry import FixedRetries
from reliability.series import (
    alternation,
    alternation_runs,
    alternation_states,
    dominant_period,
    recovery_time,
    trace_recovery_time,
)
from reliability.simulate import (
    MAX_CLIENTS,
    MAX_HORIZON,
    MAX_RATE,
    MIN_RATE,
    Schedule,
    estimate,
    simulate_connection_pool,
    simulate_engset,
    simulate_mmc,
    simulate_mmc_abandonment,
    simulate_mmcc,
    simulate_mmck,
    simulate_retrying_queue,
)
from reliability.validation import ValidationSize, validation_table
from reliability.validation.metastability import simulated_metastability

SETTINGS = settings(max_examples=30, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@contextmanager
def strict():
    with warnings.catch_warnings(), np.errstate(all="warn"):
        warnings.simplefilter("error")
        yield


WRONG_TYPES = st.sampled_from([True, np.bool_(False), "abc", "5", None, 3 + 0j, np.array([1 + 1j]), {"a": 1},
                               ["5", "6"], [1.0, None], b"7"]).map(lambda v: (v, "type"))


def wrong(*values):
    return st.sampled_from(list(values)).map(lambda v: (v, "value"))


@dataclass(frozen=True)
class Kind:
    """The draws of one argument: valid ones (extremes included) and hostile ones."""

    valid: st.SearchStrategy
    hostile: st.SearchStrategy


def kinded(valid, wrong_values, types=True):
    return Kind(valid.map(lambda v: (v, "ok")), st.one_of(wrong_values, WRONG_TYPES) if types else wrong_values)


def draws(arguments: dict):
    """All arguments valid, or one or two of them hostile (a wrong value or a wrong type), the rest valid."""
    names = list(arguments)
    valid = st.fixed_dictionaries({name: arguments[name].valid for name in names})

    def spoil(drawn, count):
        return st.lists(st.sampled_from(names), min_size=1, max_size=count, unique=True).flatmap(
            lambda chosen: st.fixed_dictionaries({n: arguments[n].hostile for n in chosen}).map(
                lambda bad: {**drawn, **bad}))

    return st.one_of(valid, valid.flatmap(lambda d: spoil(d, 1)), valid.flatmap(lambda d: spoil(d, 2)))



COMMON_WRONG = (math.nan, math.inf, -math.inf, -1.0, 10**400, np.array([1.0, 2.0]))
RATE = kinded(st.one_of(st.floats(0.2, 5.0), st.sampled_from([MIN_RATE, 1.0, MAX_RATE])),
              wrong(0.0, 1e-300, 1e300, 1e308, *COMMON_WRONG))
SMALL_COUNT = kinded(st.integers(2, 4), wrong(0, 1, 2.5, 10**400, 2**70 + 0.0, *COMMON_WRONG))
SERVERS = kinded(st.integers(1, 4), wrong(0, 2.5, 2**70, 1e308, *COMMON_WRONG))
CUSTOMERS = kinded(st.integers(50, 300), wrong(1, 10**12, 2.5, *COMMON_WRONG))
LEVEL = kinded(st.floats(0.5, 0.99), wrong(0.0, 1.0, 1.5, *COMMON_WRONG))
SEED = kinded(st.integers(0, 2**64), wrong(-1, 2.5, math.nan))
WAIT_TIMES = kinded(st.lists(st.floats(0.0, 5.0), max_size=3), wrong([-1.0], [math.nan], [math.inf], [[1.0], [2.0, 3.0]]))
HORIZON = kinded(st.sampled_from([10.0, 20.0, 30.0]), wrong(0.0, 1e13, 1e308, *COMMON_WRONG))
DURATION = kinded(st.sampled_from([0.0, 1e-308, 0.5, 2.0]), wrong(1e13, 1e308, *COMMON_WRONG))
TIMEOUT = kinded(st.sampled_from([1e-308, 0.5, 2.0, 1e300, math.inf]), wrong(0.0, -1.0, math.nan, 10**400))
SHARE = kinded(st.floats(0.0, 1.0), wrong(1.5, *COMMON_WRONG))
CLIENTS = kinded(st.integers(1, 3), wrong(0, MAX_CLIENTS + 1, 10**9, 2**70, 10**400, 2.5, math.nan))
BACKLOG = kinded(st.integers(0, 20), wrong(-1, 2.5, 10**9, 2**70, 10**400, math.nan))


@dataclass(frozen=True)
class Case:
    function: object
    arguments: dict            # name -> strategy of (value, kind)
    valid: object              # result -> bool for valid arguments
    refusals: tuple = ()       # ValueErrors valid arguments may meet: documented limits and relations


def finite_estimates(sim):
    shares = [sim.p_wait, sim.p_block, sim.p_abandon, *sim.wait_sf]
    # utilisation is busy time over the span between counted arrivals: short runs can pass 1
    others = [sim.mean_wait, sim.utilisation]
    return all(0.0 <= e.value <= 1.0 and e.low <= e.value <= e.high for e in shares) \
        and all(math.isfinite(e.value) and e.value >= 0 for e in others)


def retry_summary(sim):
    s = sim.summary
    return all(math.isfinite(v) for v in (s.amplification, s.goodput, s.failure_fraction, s.utilisation)) \
        and not sim.series.isna().any().any()


FAMILY = dict(customers=CUSTOMERS, replications=SMALL_COUNT, wait_times=WAIT_TIMES, level=LEVEL, seed=SEED)
STEADY = r"for a steady state"
RETRY_LIMITS = (r"attempt_limit", r"whole multiple of interval", r"initial_backlog must be <= servers \+ queue_limit")
CASES = {
    "simulate_mmc": Case(simulate_mmc, dict(servers=SERVERS, arrival_rate=RATE, service_rate=RATE, **FAMILY),
                         finite_estimates, (STEADY,)),
    "simulate_mmcc": Case(simulate_mmcc, dict(servers=SERVERS, arrival_rate=RATE, service_rate=RATE, **FAMILY),
                          finite_estimates),
    "simulate_mmc_abandonment": Case(simulate_mmc_abandonment, dict(servers=SERVERS, arrival_rate=RATE,
                                                                    service_rate=RATE, abandonment_rate=RATE,
                                                                    **FAMILY), finite_estimates),
    "simulate_mmck": Case(simulate_mmck, dict(servers=SERVERS, capacity=SERVERS, arrival_rate=RATE,
                                              service_rate=RATE, **FAMILY), finite_estimates,
                          (r"capacity must be >= servers",)),
    "simulate_engset": Case(simulate_engset, dict(servers=SERVERS, sources=SERVERS, source_load=RATE,
                                                  transitions=CUSTOMERS, replications=SMALL_COUNT, level=LEVEL,
                                                  seed=SEED), finite_estimates, (r"too few",)),
    "simulate_retrying_queue": Case(
        lambda **kw: simulate_retrying_queue(kw.pop("servers"), kw.pop("service_rate"), kw.pop("arrival_rate"),
                                             policy=FixedRetries(2), interval=1.0, **kw),
        dict(servers=SERVERS, service_rate=RATE, arrival_rate=kinded(st.floats(0.0, 3.0), wrong(-1.0, 1e300, math.nan)),
             timeout=TIMEOUT, horizon=HORIZON, setup_time=DURATION, new_connection_fraction=SHARE,
             initial_backlog=BACKLOG, clients=CLIENTS, seed=SEED),
        retry_summary, RETRY_LIMITS),
    "simulate_connection_pool": Case(
        lambda **kw: simulate_connection_pool(kw.pop("connections"), 1.0, kw.pop("arrival_rate"), **kw),
        dict(connections=SERVERS, arrival_rate=kinded(st.floats(0.0, 3.0), wrong(-1.0, 1e300)), timeout=TIMEOUT,
             horizon=HORIZON, interval=kinded(st.sampled_from([1.0, 2.0, 10.0]), wrong(0.0, 1e-308, 3.7, math.nan)),
             clients=CLIENTS, seed=SEED),
        retry_summary, RETRY_LIMITS),
}


def names_one_of(message, names):
    return any(re.search(rf"\b{re.escape(n)}\b", message) for n in names)


def check_outcome(case: Case, drawn: dict):
    kwargs = {name: value for name, (value, _) in drawn.items()}
    wrong_type = [n for n, (_, k) in drawn.items() if k == "type"]
    wrong_value = [n for n, (_, k) in drawn.items() if k == "value"]
    with strict():
        try:
            result = case.function(**kwargs)
        except (TypeError, ValueError) as error:
            message = str(error)
            event("named error" if wrong_type or wrong_value else "documented refusal")
            if wrong_type or wrong_value:
                assert names_one_of(message, wrong_type + wrong_value) or \
                    any(re.search(p, message) for p in case.refusals), (kwargs, message)
                if not wrong_value:
                    assert isinstance(error, TypeError), (kwargs, message)
                return
            assert any(re.search(p, message) for p in case.refusals), (kwargs, message)
            return
    event("answered")
    assert not (wrong_type or wrong_value), (kwargs, result)
    assert case.valid(result), (kwargs, result)


@pytest.mark.parametrize("name", list(CASES))
def test_every_simulator_runs_bounded_or_names_the_argument(name):
    case = CASES[name]

    @SETTINGS
    @given(draws(case.arguments))
    def run(drawn):
        check_outcome(case, drawn)

    run()


# ----------------------------------------------------------------------------------------
# Sizes a simulator cannot hold are refused before anything runs, the limit named
# ----------------------------------------------------------------------------------------

def _retrying(**kwargs):
    base = dict(servers=5, service_rate=1.0, arrival_rate=2.0, timeout=2.0, horizon=50.0)
    base.update(kwargs)
    return lambda: simulate_retrying_queue(base.pop("servers"), base.pop("service_rate"), base.pop("arrival_rate"),
                                           **base)


CLIENTS_LIMIT = "clients must be a whole number <= 100,000"


@pytest.mark.parametrize("call, limit", [
    (_retrying(clients=10**9), CLIENTS_LIMIT),
    (_retrying(clients=2**70), CLIENTS_LIMIT),
    (_retrying(interval=1e-308), "exceeds the limit of 10,000,000"),
    (_retrying(servers=1e308), "servers must be a whole number <= 1,000,000,000"),
    (_retrying(horizon=1e13), "horizon must be <= 1e\\+12 s"),
    (_retrying(arrival_rate=1e300), "arrival_rate must be <= 1e\\+250"),
    (_retrying(horizon=1e7), "more than attempt_limit"),
    (_retrying(initial_backlog=10**400), "initial_backlog must be a whole number <="),
    (_retrying(attempt_limit=10**12), "attempt_limit must be a whole number <="),
    (lambda: simulate_mmc(2, 1.0, 1.5, customers=10**9, replications=100), "exceeds the limit"),
    (lambda: simulate_mmc(10**7, 1.0, 1.5, replications=10), "exceeds the 20,000,000 numbers"),
    (lambda: simulate_mmc(2, 1.0, 1e300), "service_rate must be <= 1e\\+250"),
    (lambda: simulate_mmc(2, 1.0, 1.0, wait_times=np.zeros(20_000)), "at most 10,000 thresholds"),
    (lambda: simulate_engset(2, 10**16, 0.1), "sources must be a whole number <= "),
])
def test_oversized_runs_are_refused_naming_the_limit(call, limit):
    with strict(), pytest.raises(ValueError, match=limit):
        call()


def test_tiny_timeout_is_a_valid_run():
    # every attempt gives up at once, 1e-308 s after it is sent; the clock stays finite
    with strict():
        run = simulate_retrying_queue(3, 1.0, 2.0, timeout=1e-308, policy=FixedRetries(1), horizon=20.0, seed=1)
    assert run.summary.successes == 0 and run.summary.timeouts > 0


# ----------------------------------------------------------------------------------------
# Schedules, estimates, results
# ----------------------------------------------------------------------------------------

TIMES = kinded(st.sampled_from([(0.0,), (0.0, 10.0), (0, 5, 1e12)]),
               wrong((1.0,), (0.0, 0.0), (0.0, math.nan), (0.0, math.inf), (), [[0.0], [1.0, 2.0]]))
VALUES = kinded(st.sampled_from([(2.0,), (0.0, 3.0), (1.0, 1e308, 0.0)]),
                wrong((-1.0,), (math.nan,), (math.inf,), [[1.0], [2.0, 3.0]]))
REAL = kinded(st.one_of(st.floats(0.0, 100.0), st.sampled_from([0.0, 1e-308, 1e12])),
              wrong(-1.0, math.nan, math.inf, 10**400))
ANY_REAL = kinded(st.one_of(st.floats(-100.0, 100.0), st.sampled_from([-1e308, 1e-308, 1e308])),
                  wrong(math.nan, math.inf, -math.inf, 10**400))
MULTIPLE = kinded(st.one_of(st.floats(0.0, 10.0), st.sampled_from([1e300])), wrong(-1.0, math.nan, math.inf))

SCHEDULE_CASES = {
    "Schedule": Case(Schedule, dict(times=TIMES, values=VALUES), lambda s: isinstance(s, Schedule),
                     (r"equal length",)),
    "Schedule.constant": Case(Schedule.constant, dict(value=REAL), lambda s: s(5.0) == s.values[0]),
    "Schedule.surge": Case(Schedule.surge, dict(base=REAL, multiple=MULTIPLE, start=REAL,
                                                 duration=kinded(st.floats(0.1, 100.0), wrong(0.0, -1.0, math.nan))),
                           lambda s: isinstance(s, Schedule), (r"multiple x base must be finite",)),
    "Schedule.call": Case(lambda t: Schedule((0.0, 10.0), (2.0, 4.0))(t), dict(t=kinded(st.floats(0.0, 1e308), wrong(-1.0, math.nan))),
                          lambda v: v in (2.0, 4.0)),
    "Schedule.integral": Case(lambda start, end: Schedule((0.0, 10.0), (2.0, 1e308)).integral(start, end),
                              dict(start=REAL, end=REAL), lambda v: v >= 0 and not math.isnan(v),
                              (r"end must be >= start",)),
    "Schedule.maximum": Case(lambda start, end: Schedule((0.0, 10.0), (2.0, 4.0)).maximum(start, end),
                             dict(start=REAL, end=REAL), lambda v: v in (2.0, 4.0), (r"end must be >= start",)),
    # samples of 1e-250 or 1e308 keep their moments (taken scaled); an interval beyond range has infinite ends
    "estimate": Case(estimate, dict(samples=kinded(st.one_of(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=5),
                                                             st.sampled_from([[1e308, -1e308, 1e308], [1e-250, 3e-250]])),
                                                  wrong([], [math.nan], [math.inf], [[1.0], [2.0, 3.0]])),
                                    level=LEVEL),
                     lambda e: math.isfinite(e.value) and e.low <= e.value <= e.high),
}


@pytest.mark.parametrize("name", list(SCHEDULE_CASES))
def test_schedules_and_estimates_answer_or_name_the_argument(name):
    case = SCHEDULE_CASES[name]

    @SETTINGS
    @given(draws(case.arguments))
    def run(drawn):
        check_outcome(case, drawn)

    run()


def test_result_lookups_name_their_argument():
    sim = simulate_mmc(2, 1.0, 1.5, customers=200, replications=3, wait_times=[0.5], seed=1)
    run = simulate_retrying_queue(3, 1.0, 1.0, timeout=2.0, horizon=20.0, seed=1)
    with strict():
        assert sim.wait_sf_at(0.5) is sim.wait_sf[0]
        for bad in (math.nan, "0.5", None, np.array([0.5, 1.0]), 0.7):
            with pytest.raises(ValueError, match="wait_time"):
                sim.wait_sf_at(bad)
        assert run.window(0.0, 10.0).end == 10.0
        for start, end, name in [(math.nan, 10.0, "start"), ("0", 10.0, "start"), (0.0, None, None),
                                 (5.0, 2.0, "start"), (30.0, 40.0, "window"), (0.0, 10**400, "end")]:
            if name is None:
                assert run.window(start, end).end == 20.0
                continue
            with pytest.raises(ValueError, match=name):
                run.window(start, end)


# ----------------------------------------------------------------------------------------
# Series measures and the validation table
# ----------------------------------------------------------------------------------------

SERIES = kinded(st.sampled_from([np.tile([1.0] * 3 + [0.2] * 9, 10), np.zeros(12), np.linspace(0, 1, 40),
                                 np.full(16, 1e300)]),
                wrong(np.array([1.0, math.nan] * 6), np.array([]).reshape(0, 2), [[1.0], [2.0, 3.0]], np.ones((4, 4))))
STEP = kinded(st.sampled_from([1e-308, 1.0, 10.0, 1e308]), wrong(0.0, -1.0, math.nan, math.inf, 10**400))
THRESHOLD = kinded(st.sampled_from([0.0, 0.5, 0.9, 1.0]), wrong(-0.1, 1.1, math.nan))


def is_frame_result(frame):
    return isinstance(frame, pd.DataFrame) and len(frame) > 0


SERIES_CASES = {
    "recovery_time": Case(lambda failure_fraction, threshold, after: recovery_time(
        10.0 * np.arange(len(failure_fraction) if isinstance(failure_fraction, (list, np.ndarray)) else 1),
        failure_fraction, threshold, after),
        dict(failure_fraction=SERIES, threshold=THRESHOLD, after=ANY_REAL),
        lambda v: np.all(np.asarray(v) >= 0), (r"after must be before", r"rows", r"one-dimensional")),
    "trace_recovery_time": Case(lambda after, threshold: trace_recovery_time(
        pd.DataFrame({"time": [0.0, 10.0, 20.0], "failure_fraction": [0.9, 0.2, 0.1]}), after, threshold),
        dict(after=ANY_REAL, threshold=THRESHOLD), lambda v: v >= 0, (r"after must be before",)),
    "alternation_states": Case(alternation_states, dict(values=SERIES, down_threshold=THRESHOLD),
                               lambda s: s.dtype == bool, (r"up_threshold must be <= down_threshold",)),
    "alternation_runs": Case(alternation_runs, dict(values=SERIES, up_threshold=THRESHOLD),
                             lambda runs: all(r >= 1 for r in runs[0] + runs[1]),
                             (r"up_threshold must be <= down_threshold",)),
    "alternation": Case(alternation, dict(values=SERIES, time_step=STEP),
                        lambda a: 0 <= a.down_share <= 1 and a.cycle >= 0),
    "dominant_period": Case(dominant_period, dict(values=SERIES, time_step=STEP),
                            lambda p: p.period > 0 and not math.isnan(p.peak_ratio), (r"fewer than 2 frequencies",)),
    "validation_table": Case(lambda seed, level, mpmath_rtol, models: validation_table(
        "smoke", seed=seed, level=level, mpmath_rtol=mpmath_rtol, models=models),
        dict(seed=SEED, level=LEVEL, mpmath_rtol=kinded(st.sampled_from([1e-10, 1e-300, 1.0]), wrong(0.0, -1.0, math.nan)),
             models=kinded(st.sampled_from([["expected_attempts"], ("layered_amplification",)]),
                           wrong([], ["no_such_model"], "expected_attempts", 5, np.array(5.0)), types=False)),
        is_frame_result),
    "ValidationSize": Case(ValidationSize, dict(customers=SMALL_COUNT, replications=SMALL_COUNT,
                                                monte_carlo_requests=SMALL_COUNT, monte_carlo_replications=SMALL_COUNT,
                                                retry_replications=SMALL_COUNT, retry_horizon=HORIZON,
                                                retry_short_horizon=HORIZON, retry_warmup=kinded(st.just(1.0), wrong(0.0, math.nan))),
                           lambda s: isinstance(s, ValidationSize), (r"retry_warmup must be <",)),
}


@pytest.mark.parametrize("name", list(SERIES_CASES))
def test_series_and_validation_answer_or_name_the_argument(name):
    case = SERIES_CASES[name]

    @settings(SETTINGS, max_examples=25)
    @given(draws(case.arguments))
    def run(drawn):
        check_outcome(case, drawn)

    run()


def test_simulated_metastability_checks_the_simulation_before_the_map():
    with strict():
        for kwargs, name in [(dict(service_rate=1e308), "service_rate"), (dict(load_shares=[]), "load_shares"),
                             (dict(max_retries=[]), "max_retries"), (dict(load_shares=[2**70]), "load_shares"),
                             (dict(horizon=1e13), "horizon"), (dict(max_retries=[[1], [2, 3]]), "max_retries"),
                             (dict(backoff="full"), "backoff"), (dict(threshold=1.0), "threshold")]:
            base = dict(servers=10, service_rate=1.0, timeout=3.0, load_shares=[0.2], max_retries=[1], horizon=30.0)
            base.update(kwargs)
            with pytest.raises(ValueError, match=name):
                simulated_metastability(**base)
        frame = simulated_metastability(10, 1.0, 1e-308, [0.2], max_retries=[1], horizon=30.0, seed=1)
    assert frame["simulated_verdict"].tolist() == ["collapsed"]  # every attempt times out at once
