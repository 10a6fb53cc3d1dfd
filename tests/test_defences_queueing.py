"""The remaining server-side defences: dropping expired work (M/M/c+D), adaptive LIFO, CoDel, shedding by
priority and a client circuit breaker, as mean-field models, simulator components, and side by side."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, special

from reliability import Backoff, FixedRetries, RetryingQueue
from reliability.retry.admission import CircuitBreakerQueue, PriorityShedQueue
from reliability.retry.deadlines import ExpiringRetryingQueue, codel_mean_field
from reliability.retry.defences import defended_band
from reliability.retry.disciplines import AdaptiveLifoQueue, busy_period_success
from reliability.simulate.defended import simulate_defended, simulate_defended_goodput
from reliability.simulate.disciplines import BreakerSettings, CircuitBreaker, CoDel, PriorityShedding, WaitingQueue
from reliability.simulate.escape import simulate_goodput
from reliability.validation.defences import defence_table

BACKOFF = Backoff(0.5, 10.0, "full")
SLOW_RETRIES = Backoff(100.0, 100.0, "equal")  # retries 50-100 s later: as uncorrelated as the mean field assumes


def _sojourn(enqueued, now):
    return now - enqueued


# --- mean field: dropping expired work is the M/M/c+D queue ----------------------------------------------------

def test_a_deadline_changes_nothing_where_no_attempt_waits_that_long():
    dropped, late = ExpiringRetryingQueue(20, 1.0, 3.0, 3).outcome_shares(10.0)
    assert dropped[0] < 1e-12
    assert late[0] == pytest.approx(float(RetryingQueue(20, 1.0, 3.0, 3)._failure(10.0)), rel=1e-9)


@pytest.mark.parametrize("rate", [8.0, 9.5, 12.0])
def test_dropping_expired_work_matches_the_simulated_mmc_plus_d_queue(rate):
    """No retries: the goodput share is 1 - b - u of one attempt, below and above capacity."""
    dropped, late = ExpiringRetryingQueue(10, 1.0, 2.0, 0).outcome_shares(rate)
    sim = simulate_goodput(10, 1.0, rate, timeout=2.0, horizon=2000.0, warmup=200.0, drop_expired=True,
                           replications=4, seed=2)
    assert sim.contains(1.0 - dropped[0] - late[0])


def test_at_three_times_capacity_two_thirds_are_dropped():
    dropped, _ = ExpiringRetryingQueue(10, 1.0, 5.0, 0).outcome_shares(30.0)
    assert dropped[0] == pytest.approx(2.0 / 3.0, abs=1e-3)


def test_dropping_expired_work_alone_keeps_the_band():
    band = defended_band(ExpiringRetryingQueue(20, 1.0, 3.0, 3), [0.3, 0.6])
    assert band.metastable.tolist() == [False, True]
    assert band.worst_goodput_share[1] < 0.1


def test_the_codel_mean_field_is_a_deadline_at_the_target_and_removes_the_band():
    model = codel_mean_field(20, 1.0, 3.0, 3, target=0.15)
    assert model.deadline == 0.15
    band = defended_band(model, [0.5, 0.6, 0.8])
    assert not band.metastable.any() and (band.worst_goodput_share > 0.99).all()
    with pytest.raises(ValueError, match="deadline"):
        ExpiringRetryingQueue(20, 1.0, 3.0, 3, deadline=4.0)


# --- mean field: adaptive LIFO --------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [5.0, 19.0, 20.0, 48.0])
def test_busy_period_success_matches_direct_quadrature(rate):
    nu, t = 20.0, 3.0

    def density(x):
        return math.sqrt(nu / rate) * math.exp(-(rate + nu) * x) * special.i1(2 * x * math.sqrt(rate * nu)) / x

    ref = integrate.quad(lambda x: density(x) * -math.expm1(-(t - x)), 0, t, limit=500, points=[0.01, 0.1, 1])[0]
    assert busy_period_success(rate, 1.0, 20, t)[0] == pytest.approx(ref, rel=1e-9)


def test_a_far_threshold_is_fifo_below_capacity():
    _, late = AdaptiveLifoQueue(20, 1.0, 3.0, 3, lifo_threshold=5000).outcome_shares([10.0, 19.5])
    assert late == pytest.approx(np.asarray(RetryingQueue(20, 1.0, 3.0, 3)._failure([10.0, 19.5])), rel=1e-6)


@pytest.mark.parametrize("rate", [8.0, 12.0])
def test_plain_lifo_matches_simulation_below_and_above_capacity(rate):
    _, late = AdaptiveLifoQueue(10, 1.0, 2.0, 0, lifo_threshold=0).outcome_shares(rate)
    sim = simulate_defended_goodput(10, 1.0, rate, timeout=2.0, horizon=2000.0, warmup=200.0, lifo_threshold=0,
                                    replications=4, seed=2)
    assert sim.contains(1.0 - late[0])


def test_adaptive_lifo_removes_the_band_in_the_mean_field():
    band = defended_band(AdaptiveLifoQueue(20, 1.0, 3.0, 3, lifo_threshold=10), [0.5, 0.6, 0.8])
    assert not band.metastable.any() and (band.worst_goodput_share > 0.99).all()


# --- mean field: priority shedding and the breaker ------------------------------------------------------------

def test_priority_shedding_without_retries_is_fifo():
    late_first, shed, _ = PriorityShedQueue(20, 1.0, 3.0, 0, shed_threshold=0).priority_shares(15.0, [0.0])
    assert late_first[0] == pytest.approx(float(RetryingQueue(20, 1.0, 3.0, 0)._failure(15.0)), rel=1e-9)
    assert 0 < shed[0] < 1


def test_priority_shedding_matches_simulation_when_retries_are_uncorrelated():
    model = PriorityShedQueue(20, 1.0, 3.0, 3, shed_threshold=0)
    (healthy,) = [e for e in model.equilibria(17.0) if e.stable]
    runs = simulate_defended(20, 1.0, 17.0, timeout=3.0, policy=FixedRetries(3), backoff=SLOW_RETRIES,
                             horizon=4000.0, warmup=1000.0, shed_threshold=0, replications=4, seed=1)
    shed = np.array([r.shed / r.attempts for r in runs])
    assert abs(shed.mean() - healthy.blocked) < 3 * shed.std(ddof=1) / 2 + 0.003
    assert np.mean([r.goodput_share for r in runs]) == pytest.approx(healthy.goodput_share, abs=0.005)


def test_shedding_retries_early_removes_the_band_and_late_keeps_it():
    early = defended_band(PriorityShedQueue(20, 1.0, 3.0, 3, shed_threshold=10), [0.5, 0.6, 0.8])
    late = defended_band(PriorityShedQueue(20, 1.0, 3.0, 3, shed_threshold=60), [0.6])
    assert not early.metastable.any() and late.metastable.all()


def test_the_breaker_allows_no_state_that_fails_more_often_than_its_threshold():
    breaker = CircuitBreakerQueue(20, 1.0, 3.0, 3, failure_threshold=0.5)
    unbounded = RetryingQueue(20, 1.0, 3.0, 3)
    assert sum(e.stable for e in unbounded.equilibria(12.0)) == 2
    stable = [e for e in breaker.equilibria(12.0) if e.stable]
    assert len(stable) == 1 and stable[0].timed_out < 0.5
    assert 0.85 < breaker.cycle_goodput_share(16.0) < 0.95 < 0.9999 < breaker.cycle_goodput_share(10.0)


# --- simulator components -------------------------------------------------------------------------------------

def test_lifo_serves_the_newest_first_and_adaptive_lifo_only_when_the_queue_is_long():
    lifo, adaptive = WaitingQueue(0), WaitingQueue(3)
    for t in range(6):
        lifo.push(t)
        adaptive.push(t)
    assert [lifo.pop() for _ in range(6)] == [5, 4, 3, 2, 1, 0]
    assert [adaptive.pop() for _ in range(6)] == [5, 4, 3, 0, 1, 2]   # newest while more than 3 wait


def test_simulated_lifo_serves_the_newest_waiting_attempt():
    """Under overload the attempt a server takes is never older than one still waiting (plain LIFO)."""
    (run,) = simulate_defended(5, 1.0, 7.0, timeout=2.0, horizon=300.0, warmup=0.0, lifo_threshold=0, trace=True)
    (fifo,) = simulate_defended(5, 1.0, 7.0, timeout=2.0, horizon=300.0, warmup=0.0, trace=True)
    lifo_waits, fifo_waits = run.served[:, 1] - run.served[:, 0], fifo.served[:, 1] - fifo.served[:, 0]
    assert np.median(lifo_waits) < 0.2 < 10 < np.median(fifo_waits)
    # FIFO starts in the order sent; LIFO, whenever two start in a row from a queue, the later-sent goes first
    assert np.all(np.diff(fifo.served[:, 0]) >= 0)
    assert np.mean(np.diff(run.served[:, 0]) < 0) > 0.3


def test_codel_drops_nothing_while_the_sojourn_stays_below_target():
    codel, queue = CoDel(target=0.1, interval=1.0), WaitingQueue()
    t = 0.0
    for _ in range(2000):
        queue.push(t)
        queue.push(t + 0.01)
        t += 0.05  # each attempt waits at most 0.05 s before it is taken
        for _ in range(2):
            item, dropped = codel.dequeue(queue, t, _sojourn)
            assert dropped == [] and item is not None
    (run,) = simulate_defended(20, 1.0, 6.0, timeout=3.0, policy=FixedRetries(3), horizon=600.0, warmup=0.0,
                               codel=(0.5, 1.0))
    assert run.dropped == 0 and run.attempts > 3000


def test_codel_waits_an_interval_then_drops_at_the_pace_of_its_control_law():
    codel, queue = CoDel(target=0.1, interval=1.0), WaitingQueue()
    drops, t = [], 0.0
    for i in range(100_000):
        queue.push(t - 0.5)      # every attempt has waited 0.5 s: far above target
        queue.push(t - 0.5)
        _, dropped = codel.dequeue(queue, t, _sojourn)
        drops += [t] * len(dropped)
        t += 0.001
        if t > 20.0:
            break
    assert drops[0] == pytest.approx(1.0, abs=0.002)            # first above target at 0: an interval later
    gaps = np.diff(drops[:6])
    expected = 1.0 / np.sqrt(np.arange(1, 6))                     # interval / sqrt(count)
    assert gaps == pytest.approx(expected, abs=0.002)


def test_simulated_codel_drops_under_overload_and_recovers_a_collapse():
    runs = simulate_defended(20, 1.0, 12.0, timeout=3.0, policy=FixedRetries(3), backoff=BACKOFF, initial_backlog=240,
                             horizon=400.0, warmup=200.0, codel=(0.15, 1.0), replications=2, seed=1)
    assert all(r.dropped > 0 for r in runs)
    assert min(r.goodput_share for r in runs) > 0.95


def test_priority_shedding_never_sheds_high_priority_while_low_priority_waits():
    rng = np.random.default_rng(5)
    shedding, queue = PriorityShedding(threshold=3, limit=6), WaitingQueue()
    for _ in range(5000):
        if rng.random() < 0.35 and len(queue):
            queue.pop()
            continue
        low = bool(rng.random() < 0.5)
        waiting_low = sum(queue.items)
        admitted, evicted = shedding.admit(queue, low, bool)
        if not low and not admitted:
            assert waiting_low == 0
        if evicted is not None:
            assert evicted is True and not low
        if admitted:
            queue.push(low)
        assert len(queue) <= 6
    (run,) = simulate_defended(10, 1.0, 14.0, timeout=2.0, policy=FixedRetries(3), low_priority=0.5, horizon=300.0,
                               warmup=0.0, shed_threshold=2, shed_limit=5, trace=True, seed=3)
    high_shed = run.shed_log[run.shed_log[:, 1] == 0]
    assert len(run.shed_log) > 100 and len(high_shed) > 0
    assert (high_shed[:, 2] == 0).all()


def test_the_breaker_opens_refuses_then_probes_and_closes():
    breaker = CircuitBreaker(BreakerSettings(failure_threshold=0.5, window=10.0, minimum_calls=4, cool_down=5.0,
                                             probes=2))
    for t in range(4):
        g = breaker.allow(float(t))
        breaker.record(float(t) + 0.5, t % 2 == 0, g)   # two of four fail: 50 %
    assert breaker.state == "open" and breaker.allow(5.0) is None
    first, second = breaker.allow(8.6), breaker.allow(8.7)
    assert breaker.state == "half-open" and breaker.allow(8.8) is None   # only the probes go through
    breaker.record(9.0, True, first)
    breaker.record(9.1, True, second)
    assert breaker.state == "closed" and breaker.allow(9.2) is not None


def test_the_simulated_breaker_sends_nothing_while_open():
    settings = BreakerSettings(cool_down=20.0)
    (run,) = simulate_defended(20, 1.0, 12.0, timeout=3.0, policy=FixedRetries(3), backoff=BACKOFF, initial_backlog=240,
                               horizon=300.0, warmup=150.0, breaker=settings, clients=4, trace=True, seed=1)
    assert run.refused > 100 and run.goodput_share > 0.95
    log = {}
    for t, client, state in run.breaker_log:
        log.setdefault(client, []).append((t, state))
    assert any(state == "open" for transitions in log.values() for _, state in transitions)
    for client, transitions in log.items():
        sent = run.served[run.served[:, 3] == client, 0]
        for (start, state), (end, _) in zip(transitions, transitions[1:] + [(math.inf, None)]):
            if state == "open":
                assert not ((sent > start) & (sent < end)).any()


def test_the_explicit_queue_reproduces_the_fcfs_loop():
    """With FIFO service the two simulators draw the same numbers in the same order: equal results."""
    for options in ({}, {"drop_expired": True}, {"queue_limit": 60}, {"queue_limit": 60, "retry_rejected": False}):
        args = dict(timeout=3.0, policy=FixedRetries(3), backoff=BACKOFF, initial_backlog=240, horizon=300.0,
                    warmup=150.0, replications=2, seed=4, **options)
        assert simulate_defended_goodput(20, 1.0, 12.0, **args) == simulate_goodput(20, 1.0, 12.0, **args)


@pytest.mark.parametrize("kwargs, match", [(dict(codel=0.1), "codel"), (dict(low_priority="first"), "low_priority"),
                                           (dict(shed_limit=3), "shed_limit"), (dict(breaker={}), "breaker"),
                                           (dict(lifo_threshold=-1), "lifo_threshold"), (dict(trace=1), "trace")])
def test_simulate_defended_refuses_bad_options(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        simulate_defended(20, 1.0, 10.0, timeout=3.0, horizon=100.0, warmup=10.0, **kwargs)


# --- side by side, in the notebooks' setting: c = 20, mu T = 3, r = 3 ---------------------------------------------

def test_each_new_defence_removes_the_band_where_none_keeps_it_in_model_and_simulation():
    frame = defence_table(20, 1.0, 3.0, 3, backoff=BACKOFF, replications=1, horizon=400.0, warmup=200.0, seed=3,
                          defences=["none", "drop expired work", "adaptive LIFO", "CoDel", "priority shedding",
                                    "circuit breaker"]).set_index("key")
    assert frame.agrees.all()
    assert frame.loc["none", "model_band"] and not frame.loc["none", "recovers_at_band"]
    assert frame.loc["drop_expired", "model_band"] and not frame.loc["drop_expired", "recovers_at_band"]
    for key in ("adaptive_lifo", "codel", "priority_shedding", "circuit_breaker"):
        assert not frame.loc[key, "model_band"] and frame.loc[key, "recovers_at_band"], key
    assert (frame.normal_cost.abs() < 0.01).all()   # at normal load no defence costs goodput that matters
    assert frame.loc["none", "mean_field"].startswith("exact")
    assert frame.loc["circuit_breaker", "mean_field"].startswith("none")


def test_the_adaptive_lifo_approximation_is_optimistic_by_little_where_the_queue_is_short():
    _, late = AdaptiveLifoQueue(10, 1.0, 2.0, 0, lifo_threshold=3).outcome_shares(8.0)
    sim = simulate_defended_goodput(10, 1.0, 8.0, timeout=2.0, horizon=2000.0, warmup=200.0, lifo_threshold=3,
                                    replications=4, seed=2)
    assert 0.0 < (1.0 - late[0]) - sim.value < 0.025
