"""Cold-start guards of the adaptive throttle and the token-bucket presets of the SDKs (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

from reliability import AdaptiveThrottle, Backoff, RetryingQueue, TokenBucket, simulate_retrying_queue
from reliability.retry.gates import ThrottleGate


def _cold_start_rejections(policy, seeds=range(20)):
    """Share of attempts the throttle rejects locally in the first 10 s of a healthy run, per seed."""
    shares = []
    for seed in seeds:
        run = simulate_retrying_queue(20, 1.0, 10.0, timeout=3.0, policy=policy, backoff=Backoff(0.5, 10.0),
                                      horizon=10.0, interval=10.0, seed=seed)
        first = run.series.iloc[0]
        shares.append(first.throttled / (first.throttled + first.attempts))
    return np.array(shares)


def test_defaults_leave_the_throttle_as_it_was():
    throttle = AdaptiveThrottle(2.0, 120.0, 3)
    assert throttle.min_request_rate == 0.0 and throttle.max_reject_probability == 1.0
    assert throttle.amplification([0.0, 0.5, 0.6]).tolist() == pytest.approx([1.0, 1.875, 0.0])
    queue = RetryingQueue(20, 1.0, 3.0, throttle)
    assert queue.onset_threshold() / 20 == pytest.approx(0.835, abs=2e-3)


def test_an_unguarded_throttle_rejects_healthy_traffic_at_cold_start():
    shares = _cold_start_rejections(AdaptiveThrottle(2.0, 120.0, 3))
    assert np.median(shares) > 0.2  # in-flight attempts count as requests, not yet as accepts


def test_a_minimum_request_rate_stops_cold_start_rejections():
    shares = _cold_start_rejections(AdaptiveThrottle(2.0, 120.0, 3, min_request_rate=1.0))
    assert shares.max() == 0.0


def test_a_maximum_reject_probability_caps_them():
    capped = _cold_start_rejections(AdaptiveThrottle(2.0, 120.0, 3, max_reject_probability=0.5))
    free = _cold_start_rejections(AdaptiveThrottle(2.0, 120.0, 3))
    assert np.median(capped) < np.median(free) and capped.max() < 0.6


def test_a_capped_throttle_lets_a_share_through_beyond_its_ceiling():
    throttle = AdaptiveThrottle(2.0, max_reject_probability=0.8)
    # beyond p* = 0.5 a share 0.2 of every attempt passes; at p = 1 all four attempts are tried
    assert throttle.amplification(1.0) == pytest.approx(0.2 * 4)
    q = 0.8 + 0.2 * 0.7
    assert throttle.amplification(0.7) == pytest.approx(0.2 * sum(q**j for j in range(4)))
    assert throttle.amplification(0.4) == pytest.approx(sum(0.4**j for j in range(4)))


def test_the_step_gate_honours_both_guards():
    throttle = AdaptiveThrottle(2.0, 10.0, 3, min_request_rate=5.0, max_reject_probability=0.3)
    gate = ThrottleGate(throttle, np.array([[10.0]]), 1.0, 1.0)
    gate._accept_sum[:] = 0.0  # every attempt of the window failed
    assert gate.rejection().max() == pytest.approx(0.3)
    gate._attempt_sum[:] = 20.0  # 2 requests per second: below the guard's 5
    assert gate.rejection().max() == 0.0


@pytest.mark.parametrize("field, bad", [("min_request_rate", -1.0), ("max_reject_probability", 1.5),
                                        ("max_reject_probability", float("nan"))])
def test_guards_refuse_bad_values(field, bad):
    with pytest.raises(ValueError, match=field):
        AdaptiveThrottle(**{field: bad})


def test_bucket_presets_follow_their_sdks():
    standard, transient, new = TokenBucket.aws_standard(), TokenBucket.aws_transient(), TokenBucket.aws_retries_2026()
    assert (standard.capacity, standard.retry_cost, standard.timeout_retry_cost, standard.success_refund) == (
        500.0, 5.0, 10.0, 1.0)
    assert (transient.retry_cost, transient.timeout_retry_cost) == (10.0, 10.0)
    assert (new.retry_cost, new.timeout_retry_cost, new.capacity) == (5.0, 14.0, 500.0)
    for bucket in (standard, transient, new):
        assert bucket.max_retries == 2 and bucket.refund_retry_cost


def test_costlier_retries_starve_the_bucket_sooner():
    p = np.linspace(0.05, 0.95, 19)
    standard = TokenBucket.aws_standard().amplification(p, timed_out=False)
    transient = TokenBucket.aws_transient().amplification(p, timed_out=False)
    new = TokenBucket.aws_retries_2026().amplification(p, timed_out=True)
    assert np.all(transient <= standard + 1e-12) and np.all(new <= transient + 1e-12)
    assert new[-1] < transient[-1] < standard[-1]
