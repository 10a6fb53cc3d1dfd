"""The simulator against the analytic models, and the retrying queue's qualitative behaviour.

Intervals are 99.9 % Student-t intervals across independent replications with fixed seeds, so
a test fails only if the model or the simulator is wrong (or by a 1-in-1000 draw, which a fixed
seed turns into a permanent, reproducible outcome that we have checked). Each comparison also
has a deliberately wrong reference that must fall outside the interval, so the checks can fail.
"""

from __future__ import annotations

import heapq
import math
from collections import deque

import mpmath
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reliability import erlang
from reliability.retry import (
    AdaptiveThrottle, Backoff, FixedRetries, RetryBudget, RetryingQueue, TokenBucket,
)
from reliability import simulate as sim
from reliability.simulate import (
    Schedule,
    simulate_connection_pool,
    simulate_mmc,
    simulate_mmc_abandonment,
    simulate_mmcc,
    simulate_engset,
    simulate_mmck,
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
# Kernels against a plain event-by-event reference simulation (same random numbers)
# ----------------------------------------------------------------------------------------

def reference_queue(arrive, service, servers, capacity=None, patience=None):
    """Textbook event simulation of one FCFS queue: explicit queue, servers and events.

    Returns each customer's service start (nan if blocked or abandoned) and whether it was served.
    """
    n = len(arrive)
    start = np.full(n, np.nan)
    served = np.zeros(n, dtype=bool)
    departures: list[float] = []
    queue: deque[int] = deque()
    busy = 0

    def begin(j, t):
        nonlocal busy
        busy += 1
        start[j] = t
        served[j] = True
        heapq.heappush(departures, t + service[j])

    for i in range(n):
        a = arrive[i]
        # serve everything that happens before this arrival, departure by departure
        while departures and departures[0] <= a:
            t = heapq.heappop(departures)
            busy -= 1
            while queue and busy < servers:
                j = queue.popleft()
                if patience is not None and t - arrive[j] > patience[j]:
                    continue  # it left before a server freed up
                begin(j, t)
        if patience is not None:  # customers whose patience ran out are no longer in the queue
            queue = deque(j for j in queue if a - arrive[j] <= patience[j])
        in_system = busy + len(queue)
        if capacity is not None and in_system >= capacity:
            continue
        if busy < servers:
            begin(i, a)
        else:
            queue.append(i)
    # drain: customers still queued start as servers free up
    while queue:
        t = heapq.heappop(departures)
        busy -= 1
        while queue and busy < servers:
            j = queue.popleft()
            if patience is not None and t - arrive[j] > patience[j]:
                continue
            begin(j, t)
    return start, served


@pytest.fixture(scope="module")
def streams():
    rng = np.random.default_rng(2024)
    m, r = 3000, 3
    arrive = np.cumsum(rng.exponential(1 / 3.5, (m, r)), axis=0)
    service = rng.exponential(1.0, (m, r))
    patience = rng.exponential(2.0, (m, r))
    return arrive, service, patience


def test_fcfs_kernel_matches_reference(streams):
    arrive, service, _ = streams
    m, r = arrive.shape
    start = np.empty((m, r))
    sim._kernel_fcfs(np.zeros((r, 4)), np.arange(r), arrive, service, start)
    for k in range(r):
        ref, _ = reference_queue(arrive[:, k], service[:, k], 4)
        np.testing.assert_allclose(start[:, k], ref, rtol=0, atol=1e-9)


def test_loss_kernel_matches_reference(streams):
    arrive, service, _ = streams
    m, r = arrive.shape
    admitted = np.empty((m, r), dtype=bool)
    sim._kernel_loss(np.zeros((r, 3)), np.arange(r), arrive, service, admitted)
    for k in range(r):
        _, served = reference_queue(arrive[:, k], service[:, k], 3, capacity=3)
        assert 0 < (~served).sum() < m
        np.testing.assert_array_equal(admitted[:, k], served)


def test_finite_kernel_matches_reference(streams):
    arrive, service, _ = streams
    m, r = arrive.shape
    start = np.empty((m, r))
    admitted = np.empty((m, r), dtype=bool)
    sim._kernel_finite(np.zeros((r, 3)), np.zeros((r, 5)), np.arange(r), arrive, service, start, admitted)
    for k in range(r):
        ref, served = reference_queue(arrive[:, k], service[:, k], 3, capacity=5)
        assert 0 < (~served).sum() < m
        np.testing.assert_array_equal(admitted[:, k], served)
        np.testing.assert_allclose(start[served, k], ref[served], rtol=0, atol=1e-9)


def test_abandonment_kernel_matches_reference(streams):
    arrive, service, patience = streams
    m, r = arrive.shape
    start = np.empty((m, r))
    served = np.empty((m, r), dtype=bool)
    sim._kernel_abandon(np.zeros((r, 3)), np.arange(r), arrive, service, patience, start, served)
    for k in range(r):
        ref, ok = reference_queue(arrive[:, k], service[:, k], 3, patience=patience[:, k])
        assert 0 < (~ok).sum() < m
        np.testing.assert_array_equal(served[:, k], ok)
        np.testing.assert_allclose(start[ok, k], ref[ok], rtol=0, atol=1e-9)


def test_lindley_blocks_match_kiefer_wolfowitz(streams):
    arrive, service, _ = streams
    inter = np.diff(np.vstack([np.zeros((1, arrive.shape[1])), arrive]), axis=0)
    start = np.empty(arrive.shape)
    sim._kernel_fcfs(np.zeros((arrive.shape[1], 1)), np.arange(arrive.shape[1]), arrive, service, start)
    # three uneven blocks carry the state across block boundaries
    waits, state = [], None
    for lo, hi in ((0, 1000), (1000, 1001), (1001, 3000)):
        w, state = sim._lindley(inter[lo:hi], service[lo:hi], state)
        waits.append(w)
    np.testing.assert_allclose(np.vstack(waits), start - arrive, rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------------------
# The M/M/c family against reliability.erlang
# ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mmc_10_8():
    return simulate_mmc(10, 8.0, 1.0, customers=40_000, replications=100, warmup=4_000,
                        wait_times=(0.25, 1.0), level=LEVEL, seed=11)


def test_mmc_matches_erlang_c(mmc_10_8):
    s = mmc_10_8
    assert s.p_wait.contains(erlang.erlang_c(10, 8.0))
    assert s.mean_wait.contains(erlang.mean_wait(10, 8.0))
    for t in (0.25, 1.0):
        assert s.wait_sf_at(t).contains(erlang.wait_sf(10, 8.0, t))
    assert s.utilisation.contains(0.8)
    assert s.p_block.value == 0.0 and s.p_abandon.value == 0.0
    assert s.customers == 4_000_000


def test_mmc_check_can_fail(mmc_10_8):
    """Plausible wrong answers lie outside the intervals: the comparison has power."""
    s = mmc_10_8
    c = erlang.erlang_c(10, 8.0)
    assert not s.p_wait.contains(1.02 * c)            # 2 % off
    assert not s.p_wait.contains(erlang.erlang_c(11, 8.0))   # off by one server
    assert not s.p_wait.contains(erlang.erlang_b(10, 8.0))   # the loss formula
    assert not s.mean_wait.contains(c / 10.0)          # forgot the (c mu - lambda)
    assert not s.wait_sf_at(1.0).contains(c * math.exp(-1.0 * 1.0))  # wrong decay rate (mu, not c mu - lambda)


def test_mm1_lindley_matches_erlang_c():
    s = simulate_mmc(1, 0.8, 1.0, customers=100_000, replications=50, warmup=10_000,
                     wait_times=(2.0,), level=LEVEL, seed=5)
    assert s.p_wait.contains(erlang.erlang_c(1, 0.8))      # = rho
    assert s.mean_wait.contains(erlang.mean_wait(1, 0.8))  # = rho / (mu - lambda) = 4
    assert s.wait_sf_at(2.0).contains(erlang.wait_sf(1, 0.8, 2.0))
    assert not s.mean_wait.contains(4.2)


@pytest.mark.parametrize("servers, load", [(1, 0.5), (10, 8.0), (30, 40.0)])
def test_mmcc_matches_erlang_b(servers, load):
    s = simulate_mmcc(servers, load, 1.0, customers=20_000, replications=50, level=LEVEL, seed=servers)
    b = erlang.erlang_b(servers, load)
    assert s.p_block.contains(b)
    assert s.utilisation.contains(load * (1 - b) / servers)
    assert s.p_wait.value == 0.0 and s.mean_wait.value == 0.0
    assert not s.p_block.contains(1.03 * b)


@pytest.mark.parametrize("servers, arrival_rate, service_rate, abandonment_rate", [
    (10, 11.0, 1.0, 0.5),         # overloaded: abandonment keeps it stable
    (14, 10 / 3, 1 / 3, 1 / 5),   # the erlang_a docstring example
    (3, 2.5, 1.0, 2.0),           # impatient customers (theta > mu)
])
def test_abandonment_matches_erlang_a(servers, arrival_rate, service_rate, abandonment_rate):
    s = simulate_mmc_abandonment(servers, arrival_rate, service_rate, abandonment_rate, customers=20_000,
                                 replications=60, level=LEVEL, seed=7)
    a = erlang.erlang_a(servers, arrival_rate, service_rate, abandonment_rate)
    assert s.p_wait.contains(a.p_wait)
    assert s.p_abandon.contains(a.p_abandon)
    assert s.mean_wait.contains(a.mean_wait)
    assert s.utilisation.contains(a.utilisation)
    assert not s.p_abandon.contains(1.05 * a.p_abandon)


def mmck_reference(c, k, load):
    """P(block), P(wait) and mean wait over all arrivals of M/M/c/K, from the birth-death chain (mpmath)."""
    mpmath.mp.dps = 40
    a = mpmath.mpf(load)
    weights = [a**n / mpmath.factorial(min(n, c)) / mpmath.mpf(c) ** max(n - c, 0) for n in range(k + 1)]
    total = mpmath.fsum(weights)
    pi = [w / total for w in weights]
    p_block = pi[k]
    p_wait = mpmath.fsum(pi[c:k])
    mean_queue = mpmath.fsum((n - c) * pi[n] for n in range(c + 1, k + 1))
    return float(p_block), float(p_wait), float(mean_queue / a)  # Little, with lambda = a (mu = 1)


@pytest.mark.parametrize("servers, capacity, load", [(10, 15, 9.0), (2, 4, 3.0), (3, 6, 6.0)])
def test_mmck_matches_erlang_mmck(servers, capacity, load):
    # With seed=3 the (2, 4, 3.0) mean wait fell 3.7 standard errors high: a ~1-in-2000 draw among
    # the ~50 intervals of this module. 30 further seeds (100k customers x 50) gave a mean z of
    # 0.11 (sd 1.02) for the mean wait and 0.10 for blocking: no bias, so the seed was changed.
    s = simulate_mmck(servers, capacity, load, 1.0, customers=20_000, replications=50, level=LEVEL, seed=13)
    p_block, p_wait, mean_wait = mmck_reference(servers, capacity, load)
    assert math.isclose(erlang.mmck(servers, capacity, load), p_block, rel_tol=1e-10)
    assert s.p_block.contains(erlang.mmck(servers, capacity, load))
    assert s.p_wait.contains(p_wait)
    assert s.mean_wait.contains(mean_wait)
    assert not s.p_block.contains(erlang.erlang_b(servers, load))


def test_mmck_with_room_equal_to_servers_is_erlang_b():
    s = simulate_mmck(5, 5, 4.0, 1.0, customers=20_000, replications=40, level=LEVEL, seed=8)
    assert s.p_block.contains(erlang.erlang_b(5, 4.0))
    assert s.p_wait.value == 0.0


def engset_utilisation(c, sources, b):
    """Time-average busy share of the Engset system: pi_k ~ C(N, k) b^k, k <= c (mpmath)."""
    mpmath.mp.dps = 40
    weights = [mpmath.binomial(sources, k) * mpmath.mpf(b) ** k for k in range(c + 1)]
    return float(mpmath.fsum(k * w for k, w in enumerate(weights)) / mpmath.fsum(weights) / c)


@pytest.mark.parametrize("servers, sources, source_load", [(4, 10, 0.5), (10, 12, 2.0)])
def test_engset_matches_erlang_engset(servers, sources, source_load):
    s = simulate_engset(servers, sources, source_load, transitions=30_000, replications=50, level=LEVEL, seed=2)
    e = erlang.engset(servers, sources, source_load)
    assert s.p_block.contains(e)
    assert s.utilisation.contains(engset_utilisation(servers, sources, source_load))
    # infinite sources at the same idle rate (Erlang B) is a different answer
    assert not s.p_block.contains(erlang.erlang_b(servers, sources * source_load))
    assert s.customers > 0 and "sources=" in repr(s)


def test_summary_frame_and_repr(mmc_10_8):
    frame = mmc_10_8.to_frame()
    assert list(frame["metric"]) == ["p_wait", "p_block", "p_abandon", "mean_wait", "utilisation",
                                     "wait_sf", "wait_sf"]
    assert (frame["low"] <= frame["value"]).all() and (frame["value"] <= frame["high"]).all()
    assert "M/M/c" in repr(mmc_10_8) and "P(W > 0.25)" in repr(mmc_10_8)
    with pytest.raises(ValueError, match="wait_time"):
        mmc_10_8.wait_sf_at(0.5)


def test_family_reproducible_with_seed():
    kwargs = dict(customers=3_000, replications=5, wait_times=(0.5,), seed=42)
    a = simulate_mmc_abandonment(4, 5.0, 1.0, 1.0, **kwargs)
    b = simulate_mmc_abandonment(4, 5.0, 1.0, 1.0, **kwargs)
    c = simulate_mmc_abandonment(4, 5.0, 1.0, 1.0, **{**kwargs, "seed": 43})
    assert a == b
    assert a.p_wait != c.p_wait


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


# ----------------------------------------------------------------------------------------
# Bad input and limits
# ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: simulate_mmc(0, 1.0, 1.0), "servers must be a whole number >= 1, got 0"),
    (lambda: simulate_mmc(2.5, 1.0, 1.0), "servers"),
    (lambda: simulate_mmc(True, 1.0, 1.0), "servers"),
    (lambda: simulate_mmc(2, -1.0, 1.0), "arrival_rate must be > 0, got -1.0"),
    (lambda: simulate_mmc(2, float("nan"), 1.0), "arrival_rate"),
    (lambda: simulate_mmc(2, 1.0, float("inf")), "service_rate"),
    (lambda: simulate_mmc(2, 2.0, 1.0), "arrival_rate must be < servers x service_rate"),
    (lambda: simulate_mmc(2, 1.0, 1.0, customers=1), "customers"),
    (lambda: simulate_mmc(2, 1.0, 1.0, replications=1), "replications"),
    (lambda: simulate_mmc(2, 1.0, 1.0, customers=100, warmup=100), "warmup"),
    (lambda: simulate_mmc(2, 1.0, 1.0, level=1.0), "level"),
    (lambda: simulate_mmc(2, 1.0, 1.0, wait_times=(-1.0,)), "wait_times\\[0\\]"),
    (lambda: simulate_mmc(2, 1.0, 1.0, seed=-3), "seed"),
    (lambda: simulate_mmc_abandonment(2, 1.0, 1.0, 0.0), "abandonment_rate"),
    # rates so small that Exp(1) / rate overflows the clock: refused, not an overflow warning
    (lambda: simulate_mmcc(2, 1.0, 1e-308), "service_rate must be >= 1e-250"),
    (lambda: simulate_mmc(2, 1e-300, 1.0), "arrival_rate must be >= 1e-250"),
    (lambda: simulate_mmc_abandonment(2, 1.0, 1.0, 1e-320), "abandonment_rate must be >= 1e-250"),
    (lambda: simulate_engset(2, 5, 1e-300), "source_load must be >= 1e-250"),
    (lambda: simulate_mmck(3, 2, 1.0, 1.0), "capacity must be >= servers"),
    (lambda: simulate_mmc(2, 1.0, 1.0, customers=10**9, replications=100), "exceeds the limit"),
    (lambda: simulate_mmcc(10**6, 1.0, 1.0, replications=100), "state"),
    (lambda: simulate_mmck(2, 10**6, 1.0, 1.0, replications=100), "state"),
    (lambda: simulate_engset(2, 0, 1.0), "sources"),
    (lambda: simulate_engset(2, 5, -1.0), "source_load"),
    (lambda: simulate_engset(2, 5, 1.0, transitions=10, warmup=10), "warmup"),
    (lambda: simulate_engset(2, 5, 1.0, transitions=10**9, replications=100), "exceeds the limit"),
])
def test_family_rejects_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


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
