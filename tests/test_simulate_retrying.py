"""The retrying-queue simulator: against the formulas with retries off, and its retry storms.

Intervals are 99.9 % Student-t intervals across independent replications with fixed seeds, so
a test fails only if the model or the simulator is wrong (or by a 1-in-1000 draw, which a fixed
seed turns into a permanent, reproducible outcome that we have checked). Each comparison also
has a deliberately wrong reference that must fall outside the interval, so the checks can fail.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reliability import queues as erlang
from reliability.retry import (
    AdaptiveThrottle, Backoff, FixedRetries, RetryBudget, RetryingQueue, TokenBucket,
)
from reliability.simulate import (
    Schedule,
    simulate_connection_pool,
    simulate_retrying_queue,
)

LEVEL = 0.999


def t_interval(samples, level=LEVEL):
    x = np.asarray(samples, dtype=float)
    half = stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return x.mean() - half, x.mean() + half


def inside(samples, reference, level=LEVEL):
    low, high = t_interval(samples, level)
    return low <= reference <= high


# ----------------------------------------------------------------------------------------
# The retrying-queue engine against the same formulas (retries off)
# ----------------------------------------------------------------------------------------

def windows(seeds, run, start=100.0):
    return [run(seed).window(start) for seed in seeds]


def test_engine_without_retries_is_mmc():
    runs = windows(range(8), lambda seed: simulate_retrying_queue(
        10, 1.0, 8.0, timeout=math.inf, horizon=2100.0, interval=100.0, seed=seed))
    c = erlang.erlang_c(10, 8.0)
    assert inside([w.mean_queue_length for w in runs], c * 8.0 / 2.0)   # Lq = C rho / (1 - rho)
    assert inside([w.mean_busy_servers for w in runs], 8.0)
    assert all(w.timeouts == 0 and w.failed_requests == 0 and w.retries == 0 for w in runs)


def test_engine_timeouts_are_response_time_tail():
    runs = windows(range(8), lambda seed: simulate_retrying_queue(
        10, 1.0, 8.0, timeout=1.5, horizon=2100.0, interval=100.0, seed=seed))
    fractions = [w.timeouts / (w.timeouts + w.successes) for w in runs]
    assert inside(fractions, erlang.response_time_sf(10, 8.0, 1.5))
    assert not inside(fractions, math.exp(-1.5))  # service alone: the queue's wait matters
    # without retries a timed-out attempt is a failed request
    assert sum(w.failed_requests for w in runs) == sum(w.timeouts for w in runs)
    # every timed-out attempt is wasted work: less than all work, more than none
    assert all(0 < w.wasted_fraction < 1 for w in runs)


def test_engine_queue_limit_is_mmck():
    runs = windows(range(8), lambda seed: simulate_retrying_queue(
        10, 1.0, 9.0, timeout=math.inf, queue_limit=5, horizon=2100.0, interval=100.0, seed=seed))
    assert inside([w.blocked / w.attempts for w in runs], erlang.mmck(10, 15, 9.0))


def test_connection_pool_is_erlang_b_with_setup_time():
    # Erlang B is insensitive to the holding-time law: mean holding 1/mu + f * setup_time
    runs = windows(range(8), lambda seed: simulate_connection_pool(
        10, 1.0, 6.0, timeout=math.inf, setup_time=1.0, new_connection_fraction=0.5,
        horizon=2100.0, interval=100.0, seed=seed))
    blocked = [w.blocked / w.attempts for w in runs]
    assert inside(blocked, erlang.erlang_b(10, 6.0 * 1.5))
    assert not inside(blocked, erlang.erlang_b(10, 6.0))  # the set-up time matters
    assert all(w.mean_queue_length == 0.0 for w in runs)


# ----------------------------------------------------------------------------------------
# Retry storms: metastability, hysteresis, policies
# ----------------------------------------------------------------------------------------

C, MU, TIMEOUT, BASE = 10, 1.0, 4.0, 6.0  # metastable by the analysis, and in simulation


def test_metastable_configuration_per_analysis():
    queue = RetryingQueue(C, MU, TIMEOUT, FixedRetries(3))
    assert queue.is_metastable(BASE)
    # the brief's first guess, timeout = 2 s at 0.7 load, is *not* metastable: only the collapse is stable
    assert not RetryingQueue(10, 1.0, 2.0, FixedRetries(3)).is_metastable(7.0)


def test_healthy_state_matches_mean_field_equilibrium():
    """Started empty, the metastable queue stays healthy, at the analysis's healthy fixed point."""
    healthy = RetryingQueue(C, MU, TIMEOUT, FixedRetries(3)).equilibria(BASE)[0]
    assert healthy.state == "healthy"
    runs = windows(range(8), lambda seed: simulate_retrying_queue(
        C, MU, BASE, timeout=TIMEOUT, policy=FixedRetries(3), horizon=2100.0, interval=100.0, seed=seed))
    assert max(w.failure_fraction for w in runs) < 0.05
    assert inside([w.failure_fraction for w in runs], healthy.failure_probability)
    assert inside([w.amplification for w in runs], healthy.amplification)


def test_retry_feedback_matches_mean_field_when_retries_are_decorrelated():
    """A single, strongly retry-amplified equilibrium (c = 10, 4 req/s, timeout 0.5 s, 1 retry).

    The mean-field fixed point treats attempts as a Poisson stream. Retries sent long after the
    failure (20 s backoff) see an independent queue, and the simulation agrees with it to about
    1 % (the retry stream is burstier than Poisson: 32 seeds gave p = 0.639 +- 0.006 and
    A = 1.642 +- 0.007 against 0.634 / 1.634). Immediate retries arrive while the attempt that
    timed out still holds its server, so they fail more often than the mean field predicts.
    """
    queue = RetryingQueue(10, 1.0, 0.5, FixedRetries(1))
    (healthy,) = queue.equilibria(4.0)

    def failure_fractions(backoff):
        runs = windows(range(16), lambda seed: simulate_retrying_queue(
            10, 1.0, 4.0, timeout=0.5, policy=FixedRetries(1), backoff=backoff, horizon=1100.0,
            interval=100.0, seed=seed))
        return [w.failure_fraction for w in runs], [w.amplification for w in runs]

    p, amplification = failure_fractions(Backoff(20.0, 20.0, "none"))
    assert np.mean(p) == pytest.approx(healthy.failure_probability, rel=0.02)
    assert np.mean(amplification) == pytest.approx(healthy.amplification, rel=0.02)
    # ignoring the retries' own load is clearly wrong
    without_retries = erlang.response_time_sf(10, 4.0, 0.5)
    assert t_interval(p)[0] > without_retries and abs(without_retries / healthy.failure_probability - 1) > 0.02
    # immediate retries: correlated with congestion, measurably worse than the mean field
    p_now, _ = failure_fractions(None)
    assert t_interval(p_now)[0] > healthy.failure_probability


def test_collapsed_start_stays_collapsed():
    s = simulate_retrying_queue(C, MU, BASE, timeout=TIMEOUT, policy=FixedRetries(3), horizon=2000.0,
                                interval=10.0, initial_backlog=200, seed=4)
    late = s.window(1000.0)
    assert late.failure_fraction > 0.99 and late.goodput < 0.05 * BASE
    assert late.amplification == pytest.approx(4.0, abs=0.1)   # every request makes all 4 attempts
    assert late.wasted_fraction > 0.99 and late.utilisation > 0.99
    # the backlog grows: retries offer 4 x 6 = 24 attempts/s to 10 servers
    q = s.series["queue_length"].to_numpy()
    assert q[-1] > q[100] > 200


def test_not_metastable_configuration_collapses_from_healthy_start():
    s = simulate_retrying_queue(10, 1.0, 7.0, timeout=2.0, policy=FixedRetries(3), horizon=1000.0,
                                interval=10.0, seed=1)
    assert s.window(0.0, 10.0).failure_fraction < 0.3   # it starts healthy...
    assert s.window(500.0).failure_fraction > 0.99       # ...and collapses on its own


SURGE = Schedule.surge(BASE, multiple=5.0, start=100.0, duration=60.0)


def surge_run(policy, seed=3, backoff=None):
    return simulate_retrying_queue(C, MU, SURGE, timeout=TIMEOUT, policy=policy, backoff=backoff,
                                   horizon=1500.0, interval=10.0, seed=seed)


@pytest.mark.parametrize("seed", [3, 4])
def test_surge_tips_fixed_retries_into_lasting_collapse(seed):
    s = surge_run(FixedRetries(3), seed, Backoff(0.1, 10.0, "full"))
    assert s.window(0.0, 100.0).failure_fraction < 0.1
    assert s.window(100.0, 160.0).failure_fraction > 0.8
    assert s.window(1200.0).failure_fraction > 0.99   # 1000 s after the surge ended
    assert s.window(1200.0).goodput < 0.05 * BASE


@pytest.mark.parametrize("policy", [RetryBudget(0.1), TokenBucket.simple()], ids=repr)
def test_surge_recovers_under_retry_limits(policy):
    s = surge_run(policy, backoff=Backoff(0.1, 10.0, "full"))
    assert s.window(100.0, 160.0).failure_fraction > 0.8   # the surge hurts all the same
    late = s.window(1200.0)
    assert late.failure_fraction < 0.05
    assert late.goodput == pytest.approx(BASE, rel=0.1)
    assert late.amplification < 1.05


def test_adaptive_throttle_rejects_locally_in_a_surge():
    s = surge_run(AdaptiveThrottle(k=2.0, window=30.0), backoff=Backoff(0.1, 10.0, "equal"))
    assert s.window(100.0, 400.0).throttled > 0
    assert s.window(1200.0).failure_fraction < 0.1
    # a throttled attempt never reaches the server
    series = s.series
    assert (series["failures"] == series["timeouts"] + series["blocked"] + series["throttled"]).all()


def test_decorrelated_backoff_and_several_clients_run():
    s = simulate_retrying_queue(C, MU, SURGE, timeout=TIMEOUT, policy=RetryBudget(0.2), clients=4,
                                backoff=Backoff(0.1, 5.0, "decorrelated"), horizon=1500.0, interval=10.0, seed=1)
    assert s.summary.retries > 0
    assert s.window(1200.0).failure_fraction < 0.1


class SpyLimiter:
    """Logs every call the simulation makes; throttles 10 % of attempts with the simulation's rng."""

    def __init__(self, log):
        self.log = log

    def admit(self, now, rng):
        self.log.append(("admit", now))
        return bool(rng.random() >= 0.1)

    def may_retry(self, now, retries_so_far, timed_out):
        self.log.append(("may_retry", now, retries_so_far, timed_out))
        return True

    def record(self, now, success, retries_so_far=0, retry_timed_out=False):
        self.log.append(("record", now, success, retries_so_far, retry_timed_out))


class SpyPolicy:
    max_attempts = 3

    def __init__(self):
        self.log = []

    def limiter(self):
        return SpyLimiter(self.log)


def test_policies_are_driven_as_the_retry_module_documents():
    """The call protocol of reliability.retry's module docstring, checked call by call."""
    spy = SpyPolicy()
    s = simulate_retrying_queue(5, 1.0, 4.5, timeout=2.0, queue_limit=3, policy=spy,
                                backoff=Backoff(0.1, 1.0, "full"), horizon=300.0, interval=10.0, seed=1)
    total = s.summary
    assert total.timeouts > 0 and total.blocked > 0 and total.throttled > 0 and total.retries > 0
    calls = {kind: [c for c in spy.log if c[0] == kind] for kind in ("admit", "may_retry", "record")}
    # 1. admit before every attempt, first attempts and retries alike
    assert len(calls["admit"]) == total.attempts + total.throttled
    # 3. record once per attempt sent, with its outcome (throttled attempts are not sent)
    assert sum(c[2] for c in calls["record"]) == total.successes
    assert sum(not c[2] for c in calls["record"]) == total.timeouts + total.blocked
    assert {c[3] for c in calls["record"]} == {0, 1, 2}                     # retries made, this one counted
    assert not any(c[4] for c in calls["record"] if c[3] == 0)            # a first attempt caused by nothing
    # 2. may_retry after each failed attempt that still has an attempt left (every failure is
    # retried here, so the failures of last attempts are exactly the requests given up)
    assert len(calls["may_retry"]) + total.failed_requests == total.timeouts + total.blocked + total.throttled
    assert {c[2] for c in calls["may_retry"]} == {0, 1}
    timed_out = sum(c[3] for c in calls["may_retry"])
    assert 0 < timed_out <= total.timeouts
    assert 0 < len(calls["may_retry"]) - timed_out <= total.blocked + total.throttled
    # a retry's record says whether the failure that caused it was a timeout
    for k in (1, 2):
        caused_by_timeout = sum(1 for c in calls["record"] if c[3] == k and c[4])
        granted_after_timeout = sum(1 for c in calls["may_retry"] if c[2] == k - 1 and c[3])
        assert 0 < caused_by_timeout <= granted_after_timeout
    # limiters see time move forward only (their sliding windows rely on it)
    times = [c[1] for c in spy.log]
    assert times == sorted(times)


def test_series_accounting():
    s = surge_run(FixedRetries(3))
    series = s.series
    # every attempt sent is a new request's first attempt or a retry (FixedRetries never throttles)
    assert (series["attempts"] == series["offered"] + series["retries"]).all()
    assert series["throttled"].sum() == 0
    assert (series["wasted_work"] <= series["busy_servers"] * s.interval + 1e-6).all()
    assert (series["busy_servers"] <= series["servers"] + 1e-9).all()
    assert list(series.columns) == [
        "time", "servers", "arrival_rate", "offered", "attempts", "retries", "successes", "timeouts",
        "blocked", "throttled", "failures", "failed_requests", "failure_fraction", "goodput",
        "queue_length", "busy_servers", "wasted_work"]
    assert series["arrival_rate"].max() == 5 * BASE
    total = s.summary
    assert total.offered == series["offered"].sum() and total.successes <= total.offered


def test_time_varying_servers_code_path_is_exact():
    """A schedule of constant value goes through the time-varying path and gives the same run."""
    kwargs = dict(timeout=TIMEOUT, policy=FixedRetries(3), horizon=300.0, interval=10.0, seed=9)
    flat = simulate_retrying_queue(C, MU, BASE, **kwargs)
    stepped = simulate_retrying_queue(Schedule.steps((0.0, C), (50.0, C), (120.0, C)), MU, BASE, **kwargs)
    pd.testing.assert_frame_equal(flat.series, stepped.series)


def test_outage_and_restore():
    servers = Schedule.steps((0.0, 10), (200.0, 0), (260.0, 10))
    s = simulate_retrying_queue(servers, 1.0, 5.0, timeout=math.inf, horizon=800.0, interval=10.0, seed=2)
    series = s.series.set_index("time")
    # during the outage the servers finish what they hold, then nothing is served
    assert series.loc[230.0:250.0, "busy_servers"].max() == 0.0
    assert series.loc[230.0:250.0, "successes"].sum() == 0
    assert series.loc[250.0, "queue_length"] > 200        # ~5/s for 60 s piled up
    assert series.loc[600.0:, "queue_length"].mean() < 5  # served away after the restore
    assert series.loc[200.0:250.0, "servers"].max() == 0.0


def test_connection_pool_retry_storm_runs():
    s = simulate_connection_pool(20, 1.0, Schedule.surge(15.0, 3.0, 50.0, 30.0), timeout=3.0, setup_time=1.0,
                                 new_connection_fraction=0.1, policy=FixedRetries(3),
                                 backoff=Backoff(0.05, 1.0, "full"), horizon=300.0, interval=5.0, seed=6)
    assert s.window(50.0, 80.0).blocked > 0
    assert s.summary.retries > 0
    assert (s.series["queue_length"] == 0.0).all()


def test_callable_arrival_rate_by_thinning():
    rate = lambda t: 4.0 + 4.0 * (np.asarray(t) > 500.0)  # noqa: E731
    s = simulate_retrying_queue(10, 1.0, rate, max_arrival_rate=8.0, timeout=math.inf, horizon=1000.0,
                                interval=500.0, seed=3)
    first, second = s.series["offered"]
    assert abs(first - 2000) < 5 * math.sqrt(2000) and abs(second - 4000) < 5 * math.sqrt(4000)
    with pytest.raises(ValueError, match="max_arrival_rate"):
        simulate_retrying_queue(10, 1.0, rate, timeout=1.0, horizon=10.0)
    with pytest.raises(ValueError, match="arrival_rate"):
        simulate_retrying_queue(10, 1.0, rate, max_arrival_rate=5.0, timeout=1.0, horizon=1000.0)


def test_retrying_reproducible_with_seed():
    a = surge_run(RetryBudget(0.1), seed=5, backoff=Backoff(0.1, 10.0, "full"))
    b = surge_run(RetryBudget(0.1), seed=5, backoff=Backoff(0.1, 10.0, "full"))
    c = surge_run(RetryBudget(0.1), seed=6, backoff=Backoff(0.1, 10.0, "full"))
    pd.testing.assert_frame_equal(a.series, b.series)
    assert a.summary == b.summary
    assert not a.series.equals(c.series)
    assert "RetrySimulation" in repr(a) and "RetrySummary" in repr(a.summary)


# ----------------------------------------------------------------------------------------
# Schedules
# ----------------------------------------------------------------------------------------

def test_schedule():
    s = Schedule.surge(2.0, 5.0, start=10.0, duration=5.0)
    assert s(np.array([0.0, 9.99, 10.0, 14.99, 15.0, 1e9])).tolist() == [2.0, 2.0, 10.0, 10.0, 2.0, 2.0]
    assert s.integral(0.0, 20.0) == pytest.approx(2 * 15 + 10 * 5)
    assert s.integral(12.0, 13.0) == pytest.approx(10.0)
    assert s.maximum(0.0, 10.0) == 2.0 and s.maximum(0.0, 10.5) == 10.0
    assert Schedule.surge(2.0, 3.0, start=0.0, duration=1.0).values == (6.0, 2.0)
    assert Schedule.constant(3.0).integral(0.0, 2.0) == 6.0


@pytest.mark.parametrize("times, values, match", [
    ((1.0,), (2.0,), "times\\[0\\]"),
    ((0.0, 5.0, 5.0), (1.0, 2.0, 3.0), "strictly increasing"),
    ((0.0,), (-1.0,), "values"),
    ((0.0, 1.0), (1.0,), "equal length"),
    ((0.0,), (float("nan"),), "values"),
])
def test_schedule_rejects_bad_input(times, values, match):
    with pytest.raises(ValueError, match=match):
        Schedule(times, values)




@pytest.mark.parametrize("kwargs, match", [
    (dict(servers=0), "servers"),
    (dict(servers=Schedule.steps((0.0, 2.5))), "whole numbers"),
    (dict(service_rate=0.0), "service_rate"),
    (dict(service_rate=1e-308), "service_rate must be >= 1e-250"),
    (dict(arrival_rate=-1.0), "arrival_rate"),
    (dict(arrival_rate="fast"), "arrival_rate"),
    (dict(timeout=0.0), "timeout"),
    (dict(timeout=float("nan")), "timeout"),
    (dict(horizon=-5.0), "horizon"),
    (dict(interval=7.0), "whole multiple"),
    (dict(interval=1e-6, horizon=1e2), "intervals exceeds"),
    (dict(queue_limit=-1), "queue_limit"),
    (dict(initial_backlog=-1), "initial_backlog"),
    (dict(initial_backlog=50, queue_limit=5), "initial_backlog must be <="),
    (dict(setup_time=-1.0), "setup_time"),
    (dict(new_connection_fraction=1.5), "new_connection_fraction"),
    (dict(retry_new_connection="yes"), "retry_new_connection"),
    (dict(clients=0), "clients"),
    (dict(policy=3), "policy"),
    (dict(backoff=0.5), "backoff"),
    (dict(horizon=1e9, interval=1e5), "attempt_limit"),
    (dict(policy=FixedRetries(1000), horizon=1e5), "attempt_limit"),
    (dict(attempt_limit=0), "attempt_limit"),
])
def test_retrying_rejects_bad_input(kwargs, match):
    base = dict(servers=10, service_rate=1.0, arrival_rate=5.0, timeout=2.0, horizon=100.0, interval=10.0)
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        simulate_retrying_queue(base.pop("servers"), base.pop("service_rate"), base.pop("arrival_rate"), **base)


def test_window_rejects_empty_range():
    s = simulate_retrying_queue(2, 1.0, 1.0, timeout=1.0, horizon=10.0, interval=1.0, seed=0)
    with pytest.raises(ValueError, match="window"):
        s.window(20.0, 30.0)
