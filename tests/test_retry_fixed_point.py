"""Tests of the one retry fixed-point solver (reliability.retry.fixed_point), the one policy parser
and the policy protocol: every question answered by the policy's own methods (amplification,
per-step gate, per-event limiter), checked against direct computations and brute-force scans."""

import math
from dataclasses import replace

import numpy as np
import pytest

from reliability.dynamics import Clients
from reliability.queues import erlang_b
from reliability.retry import (
    AdaptiveThrottle,
    Backoff,
    FixedPointMap,
    FixedRetries,
    RetryBudget,
    RetryingConnectionPool,
    RetryingQueue,
    TokenBucket,
    expected_attempts,
    parse_policy,
    step_gate,
)
from reliability.retry.fixed_point import EQUILIBRIUM_GRID, SIZING_GRID, polish, with_ceiling
from reliability.retry.policies import thinned_retry_share

DENSE = np.linspace(0.0, 1.0, 1_000_001)[:-1]


def erlang_map(servers, load, policy):
    """p -> B(servers, load A(p)) over rows of (servers, load)."""
    servers, load = np.atleast_1d(np.asarray(servers, float)), np.atleast_1d(np.asarray(load, float))

    def failure(index, amplification):
        column = (-1,) + (1,) * (np.ndim(amplification) - 1)
        return erlang_b(servers[index].reshape(column), load[index].reshape(column) * amplification)

    return FixedPointMap(failure, servers.size, policy.amplification, grid=SIZING_GRID)


def dense_crossings(servers, load, policy):
    """Downward crossings of B(c, a A(p)) - p on a million points: the brute-force reference."""
    gap = erlang_b(servers, load * policy.amplification(DENSE)) - DENSE
    down = np.flatnonzero((gap[:-1] >= 0) & (gap[1:] < 0))
    return DENSE[down]


# --- the solver ---------------------------------------------------------------------------------

def test_grids_are_the_documented_scans():
    assert EQUILIBRIUM_GRID[0] == 0.0 and EQUILIBRIUM_GRID[-1] == 1.0 and EQUILIBRIUM_GRID.size == 2599
    assert SIZING_GRID[-1] == 1.0 - 1e-12 and SIZING_GRID.size == 740
    grid = with_ceiling(SIZING_GRID, 0.5)
    assert 0.5 in grid and np.nextafter(0.5, 1.0) in grid and with_ceiling(SIZING_GRID, None) is SIZING_GRID


def test_polish_closes_smooth_roots_and_jumps():
    # a smooth root, a root at a kink and a jump of the map, all polished together
    def gap(index, p):
        smooth = 0.3 - p
        kink = np.where(p < 0.6, 0.6 - p, 0.5 * (0.6 - p))
        jump = np.where(p <= 0.25, 0.1, -0.1)
        return np.choose(index, [smooth, kink, jump])

    low, high = polish(gap, np.array([0.0, 0.5, 0.2]), np.array([1.0, 0.7, 0.3]))
    assert np.allclose(0.5 * (low + high), [0.3, 0.6, 0.25], atol=1e-12)
    assert np.all(high - low <= 1e-13 * high + 1e-16)


def test_worst_and_healthiest_match_a_dense_scan_on_many_rows():
    servers = np.array([100.0, 100.0, 100.0, 30.0, 30.0])
    load = np.array([60.0, 80.0, 160.0, 20.0, 24.0])
    policy = FixedRetries(3)
    found = erlang_map(servers, load, policy).extremes()
    for i in range(servers.size):
        crossings = dense_crossings(servers[i], load[i], policy)
        assert found.worst[i] == pytest.approx(crossings[-1], abs=2e-6)
        assert found.healthy[i] == pytest.approx(crossings[0], abs=2e-6)
        assert found.stable_states[i] == crossings.size
        # each answer is a fixed point of the map
        for p in (found.worst[i], found.healthy[i]):
            assert erlang_b(servers[i], load[i] * policy.amplification(p)) == pytest.approx(p, rel=1e-11)
    one = erlang_map(servers[3:4], load[3:4], policy).extremes()
    assert one.worst[0] == found.worst[3] and one.healthy[0] == found.healthy[3]


def test_healthiest_is_the_state_reached_up_from_zero():
    # iterating p <- F(p) from 0 climbs to the least fixed point of an increasing map
    for servers, load, retries in [(10.0, 5.0, 1), (50.0, 40.0, 3), (80.0, 70.0, 2)]:
        policy = FixedRetries(retries)
        p = 0.0
        for _ in range(100_000):
            new = float(erlang_b(servers, load * policy.amplification(p)))
            if abs(new - p) < 1e-15:
                break
            p = new
        assert erlang_map(servers, load, policy).healthiest()[0] == pytest.approx(p, rel=1e-11, abs=1e-15)


def test_roots_of_one_row_include_unstable_ones_and_a_throttle_jump():
    policy = FixedRetries(3)
    fmap = FixedPointMap(lambda i, amp: erlang_b(30.0, 20.0 * amp), 1, policy.amplification, grid=EQUILIBRIUM_GRID)
    roots = [p for p, _ in fmap.roots()]
    gap = erlang_b(30.0, 20.0 * policy.amplification(DENSE)) - DENSE
    reference = DENSE[np.flatnonzero(np.sign(gap[:-1]) * np.sign(gap[1:]) < 0)]
    np.testing.assert_allclose(roots, reference, atol=2e-6)
    throttle = AdaptiveThrottle(k=2.0)
    fmap = FixedPointMap(lambda i, amp: erlang_b(10.0, 12.0 * amp), 1, throttle.amplification,
                         grid=with_ceiling(EQUILIBRIUM_GRID, throttle.failure_ceiling))
    assert fmap.roots()[-1] == (0.5, True)


@pytest.mark.parametrize("model", [
    RetryingQueue(10, 1.0, 2.0, 3),
    RetryingQueue(20, 10.0, 0.3, TokenBucket.simple(3)),
    RetryingQueue(10, 1.0, 2.0, AdaptiveThrottle(k=2.0)),
    RetryingConnectionPool(20, service_rate=1.0, setup_time=0.2, new_connection_fraction=0.1, policy=3),
], ids=["fixed", "token bucket", "throttle", "pool"])
def test_equilibria_of_many_rates_are_those_rate_by_rate(model):
    # one scan and one polish for every rate: each bracket closes on its own values, so the records
    # (unstable, collapsed and throttled states included) are the same to the last bit
    rates = np.linspace(0.0, 1.3, 40) * (model.capacity if isinstance(model, RetryingQueue) else 20.0)
    together = model.equilibria_of(rates)
    alone = [model.equilibria(float(r)) for r in rates]
    if isinstance(model, RetryingQueue):
        assert together == alone
        assert {e.state for states in together for e in states} > {"healthy"}
    else:
        # Erlang B deep in overload is a continued fraction run until every point of the call has
        # converged: a point evaluated beside others may take a term more (a last-bit change), which
        # the slope's central difference (half-width 1e-6) magnifies to ~1e-10; all else is equal
        assert [len(s) for s in together] == [len(s) for s in alone]
        for states, reference in zip(together, alone):
            for e, r in zip(states, reference):
                assert replace(e, slope=0.0) == replace(r, slope=0.0)
                assert e.slope == pytest.approx(r.slope, rel=1e-8)
    assert model.equilibria_of([]) == []


def test_roots_of_rows_are_the_roots_of_each_row():
    policy = FixedRetries(3)
    loads = np.array([5.0, 20.0, 26.0, 28.0])
    fmap = FixedPointMap(lambda i, amp: erlang_b(30.0, loads[i if np.ndim(amp) == 1 else i[:, None]] * amp), 4,
                         policy.amplification, grid=EQUILIBRIUM_GRID)
    single = [FixedPointMap(lambda i, amp, x=x: erlang_b(30.0, x * amp), 1, policy.amplification,
                            grid=EQUILIBRIUM_GRID).roots() for x in loads]
    assert fmap.roots_of_rows() == single
    assert fmap.roots_of_rows(np.array([2])) == single[2:3]


def test_equilibria_of_names_a_bad_rate():
    queue = RetryingQueue(10, 1.0, 2.0, 3)
    with pytest.raises(ValueError, match="arrival_rates"):
        queue.equilibria_of([1.0, -2.0])
    with pytest.raises(TypeError, match="arrival_rates"):
        queue.equilibria_of("fast")
    with pytest.raises(TypeError, match="arrival_rates"):
        queue.equilibria_of([[1.0, 2.0]])


def test_saturation_at_one_counts_as_collapsed():
    # a queue offered more than its capacity when every attempt fails: F(A(1)) = 1 exactly
    fmap = FixedPointMap(lambda i, amp: np.minimum(1.0, 0.05 * amp ** 3), 1, lambda p: 1.0 + 3.0 * p, at_one=4.0)
    assert fmap.saturated()[0] and fmap.extremes().collapsed[0] and fmap.extremes().worst[0] == 1.0


# --- the one parser ------------------------------------------------------------------------------

def test_parse_policy_forms_and_no_retries():
    assert parse_policy(3) == FixedRetries(3) and parse_policy("fixed:2") == FixedRetries(2)
    assert parse_policy("aws") == TokenBucket.aws_standard() and parse_policy("throttle:3") == AdaptiveThrottle(3.0)
    for nothing in (None, 0, "none", "fixed:0", " None "):
        assert parse_policy(nothing) is None
        assert parse_policy(nothing, no_retries=FixedRetries(0)) == FixedRetries(0)
    policy = RetryBudget(0.2)
    assert parse_policy(policy) is policy
    with pytest.raises(ValueError, match="Clients.policy must be"):
        parse_policy(object(), name="Clients.policy")
    with pytest.raises(ValueError, match=r"my_policy must be a whole number of retries >= 0 \(max_retries\)"):
        parse_policy(-1, name="my_policy")
    with pytest.raises(ValueError, match="my_policy 'budget:-1'.*RetryBudget.ratio"):
        parse_policy("budget:-1", name="my_policy")
    with pytest.raises(ValueError, match="step_gate"):
        parse_policy(type("OnlyAmplification", (), {"amplification": lambda self, p: 1.0})(), require=("step_gate",))


def test_models_read_policies_through_the_parser():
    assert RetryingQueue(10, 1.0, 2.0, "budget:0.1").policy == RetryBudget(0.1)
    assert RetryingQueue(10, 1.0, 2.0, None).policy == FixedRetries(0)
    assert RetryingConnectionPool(10, 1.0, 1.0, 0.5, 0).policy == FixedRetries(0)
    assert Clients(policy=2).policy == FixedRetries(2) and Clients(policy="none").policy is None


# --- the policy protocol --------------------------------------------------------------------------

def test_policies_answer_through_their_methods():
    fixed, budget, bucket, throttle = FixedRetries(3), RetryBudget(0.1, 3, 10.0), TokenBucket.simple(), AdaptiveThrottle()
    assert [p.failure_ceiling for p in (fixed, budget, bucket)] == [None, None, None] and throttle.failure_ceiling == 0.5
    assert [p.throttles_first_attempts for p in (fixed, budget, bucket, throttle)] == [False, False, False, True]
    assert budget.time_scales == (("RetryBudget.window", 10.0),) and fixed.time_scales == ()
    assert throttle.time_scales == (("AdaptiveThrottle.window", 120.0),)
    assert budget.with_max_retries(5) == RetryBudget(0.1, 5, 10.0)
    p = np.linspace(0.0, 0.99, 50)
    assert np.array_equal(fixed.retry_share(p), p)
    for policy in (budget, bucket, TokenBucket.aws_standard()):
        share = policy.retry_share(p, timed_out=True)
        np.testing.assert_allclose(expected_attempts(share, policy.max_retries),
                                   policy.amplification(p, timed_out=True), rtol=1e-12)
        assert np.all(share <= p + 1e-15)
    np.testing.assert_allclose(thinned_retry_share(fixed, p), p, atol=1e-15)


def test_backoff_unjittered_is_the_capped_doubling():
    backoff = Backoff(0.5, 3.0, "full")
    assert backoff.unjittered([1, 2, 3, 4, 10]).tolist() == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert Backoff(0.5, 3.0, "none").delay(3) == float(backoff.unjittered(3))
    with pytest.raises(ValueError, match="retry_index"):
        backoff.unjittered(0)


def test_step_gates_follow_their_policies():
    rates = np.full((1, 1), 100.0)
    wanted = np.full((1, 1, 3), 20.0)
    successes = np.zeros((1, 1, 4))
    # open: everything granted, nothing rejected
    gate = step_gate(None, rates, 1.0, 10.0)
    assert gate.rejection() is None and gate.grant(0, rates, wanted, None, successes)[0] is wanted
    # budget: at most ratio x the requests of the window, shared alike by every retry index
    gate = step_gate(RetryBudget(0.1, 3, 10.0), rates, 1.0, 10.0)
    granted, none = gate.grant(0, np.full((1, 1), 100.0), wanted, None, successes)
    assert none is None and granted.sum() == pytest.approx(10.0) and np.allclose(granted, granted[..., :1])
    # bucket: the tokens of the population pay for the retries, then successes refill it
    gate = step_gate(TokenBucket(capacity=10.0, retry_cost=1.0, success_refund=0.5), rates, 1.0, 2.0)
    granted, _ = gate.grant(0, rates, wanted, None, np.full((1, 1, 4), 1.0))
    assert granted.sum() == pytest.approx(20.0) and gate.tokens[0, 0] == pytest.approx(2.0)
    # throttle: idle on a healthy history, rejecting once accepts fall behind k x requests
    gate = step_gate(AdaptiveThrottle(k=2.0, window=5.0), rates, 1.0, 1.0)
    assert gate.throttles and gate.rejection()[0, 0] == 0.0
    for step in range(5):
        gate.observe(step, np.full((1, 1, 4), 25.0), np.zeros((1, 1, 4)))
    assert gate.rejection()[0, 0] == pytest.approx(500.0 / 501.0)  # (requests - 2 x 0 accepts) / (requests + 1)


# --- the threshold scan hook and record reprs -----------------------------------------------------

def test_queue_rejects_an_overflowing_capacity_and_pool_thresholds_scan_far():
    with pytest.raises(ValueError, match="service_rate"):
        RetryingQueue(10, 1e308, 2.0).onset_threshold()
    # the pool's scan has a soft end far beyond saturation (a loss system never saturates)
    pool = RetryingConnectionPool(20, 1.0, 10.0, 0.02, 3)
    assert pool._scan_end()[1] is False and math.isfinite(pool.onset_threshold())
    assert pool.recovery_threshold() < pool.onset_threshold()
    assert RetryingQueue(10, 1.0, 2.0)._scan_end() == (10.0, True)


def test_records_use_the_shared_repr():
    healthy = RetryingQueue(10, 1.0, 2.0, 3).equilibria(5.0)[0]
    assert repr(healthy).startswith("Equilibrium(arrival_rate=5, failure_probability=0.138916,")
    assert "state='healthy'" in repr(healthy)
