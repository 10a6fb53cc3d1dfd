"""Escape times of the retrying queue: the backlog chain, the simulator, and the two side by side."""

from __future__ import annotations

import math

import numpy as np
import pytest

from reliability import Backoff, FixedRetries, RetryingQueue
from reliability.retry.escape import (
    backlog_chain,
    default_tip_backlog,
    escape_table,
    escape_time,
    recovery_time_estimate,
    safe_load,
    tip_probability,
)
from reliability.simulate.escape import simulate_escape_times
from reliability.validation.escape import escape_comparison, outage_recovery, safe_loads

QUEUE = RetryingQueue(20, 1.0, 3.0, 3)
BACKOFF = Backoff(0.5, 10.0, "full")


# -- the chain --------------------------------------------------------------------------
def test_mean_first_passage_of_a_constant_rate_walk_matches_the_closed_form():
    # no retries, one server: an M/M/1 queue, whose passage 0 -> N has a closed form
    queue = RetryingQueue(1, 1.0, 1e3, 0)
    lam, n = 0.5, 6
    rho = lam / 1.0
    # E[tau_{0->N}] = sum_{k<N} sum_{j<=k} rho^(j-k) / lam
    expected = sum(sum(rho ** (j - k) for j in range(k + 1)) / lam for k in range(n))
    assert escape_time(queue, lam, tip_backlog=n).mean_time == pytest.approx(expected, rel=1e-12)


def test_chain_rates_are_the_amplified_arrivals_and_the_busy_servers():
    births, deaths = backlog_chain(QUEUE, 10.0, 200)
    assert deaths[:21].tolist() == list(range(21)) and np.all(deaths[20:] == 20.0)
    assert births[0] == pytest.approx(10.0 * QUEUE._amplification(math.exp(-3.0)))
    assert births[-1] == pytest.approx(40.0)  # every attempt fails deep in the queue: A(1) = r + 1
    assert np.all(np.diff(births) >= -1e-12)


def test_escape_time_falls_steeply_with_load_and_the_barrier_with_it():
    frame = escape_table(QUEUE, [0.5, 0.6, 0.7, 0.8])
    assert frame.mean_time.is_monotonic_decreasing and frame.barrier.is_monotonic_decreasing
    # roughly exponential in the barrier: log E[tau] - barrier stays within a few nats
    gap = np.log(frame.mean_time) - frame.barrier
    assert gap.max() - gap.min() < 4.0


def test_barrier_grows_with_the_size_of_the_system():
    small = escape_time(RetryingQueue(20, 1.0, 3.0, 3), 0.7 * 20).barrier
    large = escape_time(RetryingQueue(40, 1.0, 3.0, 3), 0.7 * 40).barrier
    assert large > 1.5 * small


def test_no_collapse_without_retries_means_no_barrier_and_beyond_onset_no_healthy_state():
    assert escape_time(RetryingQueue(20, 1.0, 3.0, 0), 14.0).barrier == math.inf
    # the fluid healthy state outlives the mean-field onset (0.835) a little: it has no queueing noise
    assert 0.0 < escape_time(QUEUE, 0.9 * 20).barrier < 1.0
    beyond = escape_time(QUEUE, 0.95 * 20)
    assert beyond.barrier == 0.0 and beyond.healthy_backlog == math.inf and beyond.mean_time < 100.0


def test_safe_load_shrinks_with_the_horizon_and_meets_its_risk():
    hour, day = safe_load(QUEUE, 3600.0), safe_load(QUEUE, 86400.0)
    assert 0.25 < day < hour < QUEUE.onset_threshold() / 20
    mean = escape_time(QUEUE, hour * 20).mean_time
    assert tip_probability(mean, 3600.0) == pytest.approx(0.01, rel=1e-3)


def test_tip_probability_is_exponential():
    assert tip_probability(100.0, 0.0) == 0.0
    assert tip_probability(100.0, np.array([100.0, 200.0])) == pytest.approx(1 - np.exp([-1.0, -2.0]))


def test_recovery_estimate_grows_linearly_with_the_backlog_and_is_inf_above_the_threshold():
    # far above the tipping backlog every attempt fails: the drain is (c mu - (r+1) lambda0) per second
    a, b = recovery_time_estimate(QUEUE, 4.0, 2000), recovery_time_estimate(QUEUE, 4.0, 4000)
    assert b - a == pytest.approx(2000 / (20.0 - 16.0), rel=1e-3)
    assert recovery_time_estimate(QUEUE, 5.5, 2000) == math.inf
    assert recovery_time_estimate(QUEUE, 4.0, 10) == 0.0


# -- the delayed fluid model carries the backlog of an outage -----------------------------
def test_fluid_recovery_after_a_long_outage_is_the_drain_of_its_backlog():
    """During an outage every request sends r + 1 attempts and all stay queued; afterwards they
    drain at c mu - (r + 1) lambda0. For a long outage that closed form is the answer."""
    lam0, outage, level = 4.0, 2400.0, 20 + 20 * 3.0
    backlog = 4 * lam0 * outage
    closed_form = (backlog - level) / (20.0 - 4 * lam0)
    fluid = QUEUE.fluid_recovery_time(lam0, outage, backoff=BACKOFF)
    assert fluid == pytest.approx(closed_form, rel=0.01)
    # the chain (a different model of the same backlog: a birth-death walk) agrees
    assert fluid == pytest.approx(recovery_time_estimate(QUEUE, lam0, int(backlog), level=int(level)), rel=0.01)


def test_fluid_recovery_depends_on_how_long_the_service_was_down():
    times = [QUEUE.fluid_recovery_time(2.0, minutes * 60.0, backoff=BACKOFF) for minutes in (5, 10, 20, 40)]
    assert all(a < b for a, b in zip(times, times[1:]))
    # each extra minute down costs (r + 1) lambda0 / (c mu - (r + 1) lambda0) = 8 / 12 minute of recovery
    assert (times[3] - times[2]) / (20 * 60.0) == pytest.approx(8.0 / 12.0, rel=0.01)
    # inside the band (0.3 of capacity, above the recovery threshold 0.25) history decides: a blip is
    # worked off, a long outage leaves a backlog the retries keep
    assert QUEUE.fluid_recovery_time(6.0, 1.0, backoff=BACKOFF) == 0.0  # the backlog never reached c + c mu T
    assert QUEUE.fluid_recovery_time(6.0, 600.0, backoff=BACKOFF) == math.inf
    assert QUEUE.fluid_recovery_time(2.0, 0.0) == 0.0


def test_fluid_recovery_refuses_what_it_cannot_model():
    with pytest.raises(ValueError, match="outage"):
        QUEUE.fluid_recovery_time(2.0, -1.0)
    with pytest.raises(ValueError, match="outage of 1e"):
        QUEUE.fluid_recovery_time(2.0, 1e9)
    with pytest.raises(ValueError, match="backoff"):
        QUEUE.fluid_recovery_time(2.0, 60.0, backoff=Backoff(1.0, 20.0, "decorrelated"))


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "x"])
def test_escape_time_refuses_bad_rates(bad):
    with pytest.raises((ValueError, TypeError), match="arrival_rate"):
        escape_time(QUEUE, bad)


# -- the simulator ----------------------------------------------------------------------
def test_simulated_escape_is_reproducible_and_censored_at_the_horizon():
    kwargs = dict(timeout=3.0, level=140, policy=FixedRetries(3), replications=6, horizon=200.0, seed=3)
    first, again = simulate_escape_times(20, 1.0, 15.0, **kwargs), simulate_escape_times(20, 1.0, 15.0, **kwargs)
    assert np.array_equal(first.times, again.times)
    assert np.all(first.times[~first.escaped] == 200.0) and np.all(first.times <= 200.0)


def test_without_retries_a_light_queue_never_tips_and_an_overload_always_does():
    light = simulate_escape_times(20, 1.0, 10.0, timeout=3.0, level=140, replications=4, horizon=300.0, seed=1)
    assert light.escape_fraction == 0.0 and light.mean_time.value == math.inf and light.mean_time.high == math.inf
    heavy = simulate_escape_times(20, 1.0, 30.0, timeout=3.0, level=140, replications=4, horizon=300.0, seed=1)
    # the backlog grows at 10 per second: it reaches 140 after about 14 s
    assert heavy.escape_fraction == 1.0 and 8.0 < heavy.mean_time.value < 25.0


def test_collapsed_start_drains_at_the_fluid_rate():
    runs = simulate_escape_times(20, 1.0, 2.0, timeout=3.0, level=20, start="collapsed", initial_backlog=400,
                                 replications=6, horizon=2000.0, seed=2)
    # 400 requests of 1 attempt each (no policy), sent over the timeout before time 0 (the servers
    # clear 3 x 20 of them by then), drain at c mu - lambda0 = 18 per second down to 20
    assert runs.escape_fraction == 1.0
    assert runs.mean_time.value == pytest.approx((400 - 60 - 20) / 18.0, rel=0.1)


def test_dropping_expired_work_recovers_a_collapse_that_fifo_keeps():
    kwargs = dict(timeout=3.0, level=30, policy=FixedRetries(3), backoff=BACKOFF, start="collapsed",
                  initial_backlog=600, replications=4, horizon=1500.0, seed=5)
    fifo = simulate_escape_times(20, 1.0, 0.3 * 20, **kwargs)
    dropping = simulate_escape_times(20, 1.0, 0.3 * 20, drop_expired=True, **kwargs)
    assert fifo.escape_fraction == 0.0
    assert dropping.escape_fraction == 1.0


def test_probability_within_is_bracketed_by_the_interval():
    runs = simulate_escape_times(20, 1.0, 17.0, timeout=3.0, level=140, policy=FixedRetries(3),
                                 replications=10, horizon=3600.0, seed=4)
    p = runs.probability_within(60.0)
    assert 0.0 < p.low <= p.value <= p.high < 1.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(start="sideways"), "start"), (dict(level=0), "level"), (dict(replications=0), "replications"),
    (dict(policy="fixed"), "policy"), (dict(drop_expired=1), "drop_expired"), (dict(horizon=-1.0), "horizon"),
    (dict(horizon=1e9), "attempts"),
])
def test_simulator_refuses_bad_arguments(kwargs, match):
    base = dict(timeout=3.0, level=10, replications=2, horizon=10.0)
    base.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        simulate_escape_times(20, 1.0, 10.0, **base)


# -- the two side by side ---------------------------------------------------------------
def test_chain_agrees_with_simulation_within_a_factor_two_and_tips_early():
    frame = escape_comparison(20, 1.0, 3.0, 3, [0.8, 0.83], backoff=BACKOFF, replications=16, seed=11)
    assert frame.tipped.tolist() == [16, 16]
    assert frame.chain_inside_factor_2.all()
    # the chain's attempts react to the backlog at once, so it tips earlier than the simulated queue
    assert (frame.ratio < 1.1).all() and (frame.ratio > 0.35).all()


def test_safe_loads_frame_sits_inside_the_band():
    frame = safe_loads(20, 1.0, 3.0, 3, [3600.0, 86400.0])
    assert frame.safe_load_share.is_monotonic_decreasing
    assert ((frame.recovery_share < frame.safe_load_share) & (frame.safe_load_share < frame.onset_share)).all()


def test_outage_recovery_grows_with_the_outage_and_matches_the_drained_backlog():
    frame = outage_recovery(20, 1.0, 3.0, 3, [0.1], [300.0, 900.0], backoff=BACKOFF, seed=2)
    assert frame.simulated_recovery.is_monotonic_increasing and frame.chain_recovery.is_monotonic_increasing
    assert np.allclose(frame.simulated_recovery, frame.chain_recovery, rtol=0.25, atol=30.0)
    assert frame.backlog.tolist() == [4 * 2 * 300, 4 * 2 * 900]


def test_default_tip_backlog_is_where_the_wait_is_two_timeouts():
    assert default_tip_backlog(QUEUE) == 20 + 2 * 20 * 3


def test_band_widens_with_timeout_and_scale_while_recovery_stays():
    from reliability.retry.escape import band_over_axes

    frame = band_over_axes([5, 20, 200], [2.0, 3.0, 10.0], horizons=[86400.0])
    assert (frame.recovery_share == 0.25).all()
    for _, rows in frame.groupby("servers"):
        assert rows.onset_share.is_monotonic_increasing and rows.safe_share_24h.is_monotonic_increasing
    for _, rows in frame.groupby("timeout"):
        assert rows.onset_share.is_monotonic_increasing
    assert (frame.safe_share_24h <= frame.onset_share).all() and (frame.safe_share_24h >= 0.25).all()
