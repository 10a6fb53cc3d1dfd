"""Hostile input to every public function and constructor of reliability.retry.

Each test attacks one call: hypothesis draws which argument to replace and a hostile value of
the kind that argument must refuse or survive (not a number, NaN or an infinity, an integer
beyond the float range, an extreme float, a negative number, an array, a shape that does not
broadcast). Under warnings-as-errors the outcome must be one of two classes: a finite right
number (or a record, frame or policy holding no NaN) or a ``ValueError``/``TypeError`` whose
message names the argument; a value that is not a number must give a ``TypeError``. Work is
bounded by the code (caps on sizes, step limits on searches), never by a timed assertion;
the examples are derandomized so every run draws the same values.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliability import (
    AdaptiveThrottle,
    Backoff,
    FixedRetries,
    RetryBudget,
    RetryingConnectionPool,
    RetryingQueue,
    TokenBucket,
    equilibria_frame,
    expected_attempts,
    layered_amplification,
    metastability_map,
)
from reliability.retry import parse_policy, step_gate

from hostile_harness import (  # noqa: E402  (tests/ is on sys.path under pytest)
    ARRAYS, EXTREME, HOSTILE, HOSTILE_VALUES, HUGE_INTS, NON_FINITE, NOT_NUMBERS, NUMBERISH,
    _holds_nan, _is_not_number, _same, attack, check_outcome,
)



# -- the calls -------------------------------------------------------------------------------
RNG = np.random.default_rng(0)
QUEUE = RetryingQueue(10, 1.0, 2.0, 3)
POOL = RetryingConnectionPool(20, 1.0, 2.0, 0.3, 3)
DECORRELATED = Backoff(0.1, 20.0, "decorrelated")

test_expected_attempts = attack(expected_attempts, dict(p_fail=0.5, max_retries=3))
test_layered_amplification = attack(layered_amplification, dict(p_fail=0.5, max_retries_per_layer=[1, 2]))
test_fixed_retries = attack(FixedRetries, dict(max_retries=3))
test_fixed_retries_amplification = attack(lambda p_fail, max_retries: FixedRetries(max_retries).amplification(p_fail),
                                          dict(p_fail=0.5, max_retries=3))
test_fixed_retries_share = attack(lambda p_fail: FixedRetries(3).retry_share(p_fail), dict(p_fail=0.5))
test_retry_budget = attack(RetryBudget, dict(ratio=0.1, max_retries=3, window=10.0))
test_retry_budget_amplification = attack(lambda ratio, p_fail: RetryBudget(ratio=ratio).amplification(p_fail),
                                         dict(ratio=0.1, p_fail=0.5))
test_retry_budget_share = attack(lambda p_fail: RetryBudget(0.1).retry_share(p_fail), dict(p_fail=0.5))
test_token_bucket = attack(TokenBucket, dict(capacity=10.0, retry_cost=1.0, timeout_retry_cost=1.0,
                                             success_refund=0.1, max_retries=3, refund_retry_cost=False),
                           accepts={"refund_retry_cost": (True, False, np.bool_(True))})
test_token_bucket_simple = attack(TokenBucket.simple, dict(max_retries=3))
test_token_bucket_aws = attack(TokenBucket.aws_standard, dict(max_retries=2))
test_token_bucket_amplification = attack(lambda p_fail: TokenBucket.aws_standard().amplification(p_fail),
                                         dict(p_fail=0.5))
test_adaptive_throttle = attack(AdaptiveThrottle, dict(k=2.0, window=120.0, max_retries=3))
test_adaptive_throttle_amplification = attack(lambda k, p_fail: AdaptiveThrottle(k=k).amplification(p_fail),
                                              dict(k=2.0, p_fail=0.3))
test_backoff = attack(Backoff, dict(base=0.1, cap=20.0, jitter="full"), text=("jitter",))
test_backoff_unjittered = attack(lambda retry_index: DECORRELATED.unjittered(retry_index), dict(retry_index=3))
test_backoff_mean = attack(lambda retry_index: Backoff(0.1, 20.0, "full").mean(retry_index), dict(retry_index=3))
test_backoff_delay = attack(lambda retry_index, previous_delay, rng: DECORRELATED.delay(retry_index, previous_delay, rng),
                            dict(retry_index=3, previous_delay=1.0, rng=RNG), accepts={"previous_delay": (None,)})
test_backoff_sample = attack(lambda retry_index, rng, size: DECORRELATED.sample(retry_index, rng, size),
                             dict(retry_index=3, rng=RNG, size=5))
test_parse_policy = attack(lambda policy: parse_policy(policy), dict(policy=3),
                           accepts={"policy": (None, "")}, text=("policy",))
test_step_gate = attack(step_gate, dict(policy=RetryBudget(0.1), request_rates=np.ones((1, 1)), time_step=1.0,
                                        population=10.0), accepts={"policy": (None, "")}, text=("policy",))
test_retrying_queue = attack(RetryingQueue, dict(servers=10, service_rate=1.0, timeout=2.0, policy=3),
                             accepts={"policy": (None, "")}, text=("policy",))
test_queue_equilibria = attack(lambda arrival_rate: QUEUE.equilibria(arrival_rate), dict(arrival_rate=5.0))
test_queue_equilibria_table = attack(lambda arrival_rates: QUEUE.equilibria_table(arrival_rates),
                                     dict(arrival_rates=[5.0]))
test_queue_is_metastable = attack(lambda arrival_rate: QUEUE.is_metastable(arrival_rate), dict(arrival_rate=5.0))
test_queue_thresholds = attack(
    lambda servers, service_rate, timeout: (lambda q: (q.onset_threshold(), q.recovery_threshold()))(
        RetryingQueue(servers, service_rate, timeout, 3)),
    dict(servers=10, service_rate=1.0, timeout=2.0))
test_queue_fluid_equilibria = attack(lambda arrival_rate: QUEUE.fluid_equilibria(arrival_rate), dict(arrival_rate=5.0))
test_queue_tipping_trigger = attack(
    lambda arrival_rate, surge_multiple, rtol: QUEUE.tipping_trigger(arrival_rate, surge_multiple, rtol=rtol),
    dict(arrival_rate=4.0, surge_multiple=2.0, rtol=1e-2),
    # a surge that never tips the queue has no duration and no trigger: those fields are NaN/inf by design
    allowed_nan=("*",))
test_queue_capacity_trigger = attack(
    lambda arrival_rate, surge_multiple: QUEUE.tipping_trigger(arrival_rate, surge_multiple, trigger="capacity",
                                                               rtol=1e-2),
    dict(arrival_rate=4.0, surge_multiple=4.0), allowed_nan=("*",))
test_queue_tipping_load = attack(
    lambda surge_multiple, duration, rtol: QUEUE.tipping_load(surge_multiple, duration, rtol=rtol),
    dict(surge_multiple=4.0, duration=5.0, rtol=1e-2), allowed_nan=("*",))
test_queue_fluid_recovery_time = attack(
    lambda arrival_rate, outage, level: QUEUE.fluid_recovery_time(arrival_rate, outage, level=level),
    dict(arrival_rate=2.0, outage=60.0, level=30.0))
test_connection_pool = attack(RetryingConnectionPool, dict(connections=20, service_rate=1.0, setup_time=2.0,
                                                           new_connection_fraction=0.3, policy=3,
                                                           retries_need_new_connection=True),
                              accepts={"policy": (None, ""), "retries_need_new_connection": (True, False, np.True_, np.False_)},
                              text=("policy",))
test_pool_equilibria = attack(lambda arrival_rate: POOL.equilibria(arrival_rate), dict(arrival_rate=5.0))
test_pool_mean_holding_time = attack(lambda amplification: POOL.mean_holding_time(amplification),
                                     dict(amplification=2.0))
test_pool_thresholds = attack(
    lambda connections, service_rate, setup_time: (lambda p: (p.onset_threshold(), p.recovery_threshold()))(
        RetryingConnectionPool(connections, service_rate, setup_time, 0.3, 3)),
    dict(connections=20, service_rate=1.0, setup_time=2.0))
test_metastability_map = attack(metastability_map, dict(servers=10, service_rate=1.0, timeout=2.0,
                                                        load_shares=[0.3], max_retries=[3]),
                                # NaN by design in the healthy_* columns where no healthy state exists (overload)
                                allowed_nan=("*",))
test_equilibria_frame = attack(equilibria_frame, dict(equilibria=QUEUE.equilibria(5.0)),
                               values=NOT_NUMBERS | NON_FINITE | EXTREME)


# -- extreme but valid: the right limit, and why ---------------------------------------------

def test_a_huge_retry_cap_gives_the_geometric_limit_and_its_exact_attempt_count():
    # p < 1: sum_k p^k -> 1 / (1 - p) as the cap grows; p = 1: every one of the r + 1 attempts is made
    policy = FixedRetries(10**9)
    assert policy.amplification(0.5) == 2.0
    assert policy.amplification(1.0) == 10**9 + 1
    with pytest.raises(ValueError, match="max_retries"):
        FixedRetries(10**9 + 1)  # beyond the cap: named, never an OverflowError


def test_max_retries_that_is_not_a_whole_number_is_refused_not_truncated_or_read_as_none():
    for bad in (math.nan, -1, 2.7, math.inf):
        with pytest.raises(ValueError, match="max_retries"):
            parse_policy(bad)
        with pytest.raises(ValueError, match="max_retries"):
            FixedRetries(bad)
    with pytest.raises(TypeError, match="max_retries"):
        FixedRetries("5")
    assert parse_policy(3.0) == FixedRetries(3)  # a whole float is that many retries


def test_a_tiny_failure_probability_gives_one_attempt():
    # p -> 0: the first attempt succeeds; no underflow warning on the way
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert expected_attempts(1e-308, 3) == 1.0
        assert float(RetryBudget(0.1).retry_share(1e-308)) <= 1e-308


def test_an_arrival_rate_far_above_capacity_leaves_only_the_collapsed_state():
    # lambda0 >> c mu: the queue saturates whatever the retries do, so p = 1 is the one equilibrium
    (state,) = QUEUE.equilibria(1e300)
    assert state.state == "collapsed" and state.failure_probability == 1.0 and state.amplification == 4.0
    with pytest.raises(ValueError, match="arrival_rate"):
        QUEUE.equilibria(1e308)  # its 4 attempts per request are beyond the float range


def test_goodput_share_at_zero_load_is_its_limit():
    # at lambda0 -> 0 the healthy state has p = P(S > T) = exp(-mu T) and goodput / lambda0 = A(p) (1 - p)
    frame = metastability_map(10, 1.0, 2.0, [0.0], max_retries=[3])
    p = math.exp(-2.0)
    assert frame.healthy_failure_probability[0] == pytest.approx(p, rel=1e-9)
    assert frame.healthy_goodput_share[0] == pytest.approx(1.0 - p**4, rel=1e-9)


def test_decorrelated_backoff_after_a_huge_delay_is_capped():
    # U(base, 3 x 1e308) lies above the cap with probability 1 - 20 / 3e308: the delay is the cap
    assert DECORRELATED.delay(3, 1e308, np.random.default_rng(1)) == 20.0


def test_backoff_sample_work_is_bounded_by_its_inputs():
    with pytest.raises(ValueError, match="retry_index"):
        DECORRELATED.sample(10**9, np.random.default_rng(0), 1000)


def test_an_unbroadcastable_pair_names_both_arguments():
    with pytest.raises(ValueError, match=r"p_fail.*max_retries"):
        expected_attempts(np.ones(2), np.ones(3))


def test_a_load_share_beyond_the_float_range_of_attempts_is_named():
    with pytest.raises(ValueError, match="load_shares"):
        metastability_map(10, 1.0, 2.0, [1e308], max_retries=[3])


def test_a_huge_timeout_puts_the_fluid_tipping_point_at_the_backlog_that_waits_that_long():
    # with T = 1e300 an attempt times out only behind about c mu T = 1e301 others: the unstable rest
    # point of the fluid model sits there, and the root search still ends (a step limit per bracket)
    healthy, critical = RetryingQueue(10, 1.0, 1e300).fluid_equilibria(4.0)
    assert healthy == pytest.approx(4.0) and critical == pytest.approx(1e301, rel=1e-3)


def test_fluid_backlogs_beyond_the_float_range_are_named():
    with pytest.raises(ValueError, match="timeout"):
        RetryingQueue(10**12, 1e200, 1e200).fluid_equilibria(4.0)
