"""Tests of reliability.retry: amplification against mpmath and exact enumeration, the policies'
limiters driven by hand, backoff against large seeded samples, and the retry equilibria against
brute-force scans, mpmath-evaluated queueing formulas and the discrete-event simulator."""

import math
import warnings
from fractions import Fraction

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reliability.queues import erlang_b, response_time_sf
from reliability.retry import (
    AdaptiveThrottle,
    Backoff,
    Equilibrium,
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
from reliability.validation import references
from reliability.validation.references import erlang_b as mp_erlang_b
from reliability.validation.references import expected_attempts as mp_expected_attempts

mp.mp.dps = 40


# --- independent references ---------------------------------------------------------------

# mp_expected_attempts, mp_erlang_b: reliability.validation.references, imported above.

def mp_response_time_sf(c, lam, mu, t):
    """P(W + S > t) in M/M/c (reliability.validation.references.response_time_sf), at 50 digits."""
    return references.response_time_sf(c, mp.mpf(lam) / mp.mpf(mu), t, mu)


def brute_force_roots(queue_map, points=400_001):
    """Sign changes of F(lambda0 A(p)) - p on a very fine uniform grid, plus exact zeros."""
    p = np.linspace(0.0, 1.0, points)
    gap = queue_map(p) - p
    sign = np.sign(gap)
    changes = np.nonzero(sign[:-1] * sign[1:] < 0)[0]
    roots = [0.5 * (p[i] + p[i + 1]) for i in changes] + list(p[sign == 0])
    return sorted(roots)


def queue_map(c, mu, t, lam0, policy):
    def f(p):
        attempts = lam0 * np.asarray(policy.amplification(p, timed_out=True))
        return np.asarray(response_time_sf(c, attempts / mu, t, mu))
    return f


# --- expected_attempts and layers ---------------------------------------------------------

@pytest.mark.parametrize("p", [0.0, 1e-9, 0.01, 0.3, 0.5, 0.9, 0.999, 1 - 1e-9, 1 - 1e-13, 1.0])
@pytest.mark.parametrize("r", [0, 1, 3, 10, 1000])
def test_expected_attempts_matches_mpmath(p, r):
    assert expected_attempts(p, r) == pytest.approx(float(mp_expected_attempts(p, r)), rel=1e-13)


def test_expected_attempts_limits_and_broadcasting():
    assert expected_attempts(1.0, 3) == 4.0
    assert expected_attempts(0.0, 7) == 1.0
    # p -> 1: (1 - p^(r+1)) / (1 - p) -> r + 1 continuously, no cancellation
    assert expected_attempts(1 - 1e-15, 3) == pytest.approx(4.0, rel=1e-14)
    out = expected_attempts(np.array([[0.5], [1.0]]), np.array([0, 1, 3]))
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out, [[1.0, 1.5, 1.875], [1.0, 2.0, 4.0]], rtol=1e-15)
    assert isinstance(expected_attempts(0.5, 3), float)
    assert expected_attempts(0.5, 10**6) == pytest.approx(2.0, rel=1e-15)


def test_the_unvalidated_kernel_gives_the_same_numbers_bit_for_bit():
    from reliability.retry.amplification import expected_attempts_kernel

    p = np.concatenate([[0.0, 1e-300, 1e-9, 1 - 1e-13, 1 - 1e-16, 1.0], np.random.default_rng(0).random(500)])
    for r in (0, 1, 3, 10, 1000):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the kernel hides its own log 0 and 0 / 0
            kernel = expected_attempts_kernel(p, np.full_like(p, float(r)))
        np.testing.assert_array_equal(kernel, expected_attempts(p, r))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(p_fail=1.5, max_retries=3), "p_fail"),
        (dict(p_fail=-0.1, max_retries=3), "p_fail"),
        (dict(p_fail=float("nan"), max_retries=3), "p_fail"),
        (dict(p_fail=0.5, max_retries=-1), "max_retries"),
        (dict(p_fail=0.5, max_retries=1.5), "max_retries"),
    ],
)
def test_expected_attempts_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        expected_attempts(**kwargs)


def _enumerate_layers(p, layers):
    """Exact distribution of (bottom attempts, success) for one call, by walking the outcome tree."""
    if not layers:
        return {(1, True): 1 - p, (1, False): p}
    inner = _enumerate_layers(p, layers[1:])
    retries = layers[0]
    # states: (bottom attempts so far, finished?, success?) after each call into the layer below
    states = {(0, False): Fraction(1)}
    result = {}
    for _ in range(retries + 1):
        nxt = {}
        for (count, _), prob in states.items():
            for (attempts, ok), q in inner.items():
                key = (count + attempts, ok)
                if ok:
                    result[(count + attempts, True)] = result.get((count + attempts, True), 0) + prob * q
                else:
                    nxt[key] = nxt.get(key, 0) + prob * q
        states = nxt
    for (count, _), prob in states.items():
        result[(count, False)] = result.get((count, False), 0) + prob
    return result


def test_layered_amplification_worst_case_and_exact_enumeration():
    assert layered_amplification(1.0, [3, 3, 3]) == 64.0
    assert layered_amplification(0.0, [3, 3, 3]) == 1.0
    for p, layers in [(Fraction(1, 2), [3, 3, 3]), (Fraction(3, 10), [1, 2]), (Fraction(9, 10), [2, 0, 4])]:
        tree = _enumerate_layers(p, layers)
        assert sum(tree.values()) == 1
        exact = sum(count * prob for (count, _), prob in tree.items())
        assert layered_amplification(float(p), layers) == pytest.approx(float(exact), rel=1e-13)
    with pytest.raises(ValueError, match="max_retries_per_layer"):
        layered_amplification(0.5, [])
    with pytest.raises(ValueError, match=r"max_retries_per_layer\[1\]"):
        layered_amplification(0.5, [3, -1])


# --- policies: steady-state amplification ---------------------------------------------------

ALL_POLICIES = [FixedRetries(3), RetryBudget(0.1), TokenBucket.simple(), TokenBucket.aws_standard(),
                AdaptiveThrottle(2.0)]


@pytest.mark.parametrize("policy", ALL_POLICIES, ids=repr)
def test_every_policy_amplifies_nothing_without_failures(policy):
    assert policy.amplification(0.0) == 1.0
    assert isinstance(policy.amplification(0.3), float)
    assert policy.max_attempts == policy.max_retries + 1
    assert "(" in repr(policy)


def test_fixed_and_budget_amplification():
    p = np.linspace(0.0, 1.0, 101)
    np.testing.assert_array_equal(FixedRetries(3).amplification(p), expected_attempts(p, 3))
    budget = RetryBudget(ratio=0.1, max_retries=3)
    assert budget.amplification(1.0) == pytest.approx(1.1)
    # below the budget it is FixedRetries; above, capped at 1 + ratio
    assert budget.amplification(0.05) == expected_attempts(0.05, 3)
    np.testing.assert_array_equal(budget.amplification(p), np.minimum(expected_attempts(p, 3), 1.1))
    assert RetryBudget(ratio=5.0, max_retries=2).amplification(1.0) == 3.0  # the cap binds


def test_token_bucket_steady_state_balances_tokens():
    """Where the bucket starves, the token drift per request at the returned amplification is zero."""
    aws = TokenBucket.aws_standard()
    # constants of the AWS SDKs' standard retry mode
    assert (aws.capacity, aws.retry_cost, aws.timeout_retry_cost, aws.success_refund) == (500, 5, 10, 1)
    assert aws.max_attempts == 3
    for p in [0.2, 0.5, 0.9]:
        for timed_out, cost in [(False, 5.0), (True, 10.0)]:
            a = aws.amplification(p, timed_out=timed_out)
            # deposits: first-attempt successes refund 1, successful retries refund their cost
            retries = a - 1
            drift = (1 - p) * 1.0 + retries * (1 - p) * cost - retries * cost
            wanted = expected_attempts(p, 2)
            assert a <= wanted + 1e-15
            if a < wanted:
                assert drift == pytest.approx(0.0, abs=1e-12)
    simple = TokenBucket.simple()
    for p in [0.3, 0.6, 1.0]:
        a = simple.amplification(p)
        drift = a * (1 - p) * 0.1 - (a - 1) * 1.0
        assert drift == pytest.approx(0.0, abs=1e-12)
    assert aws.amplification(1.0) == 1.0 and simple.amplification(1.0) == 1.0
    # while the bucket stays full the policy is FixedRetries
    assert aws.amplification(0.01) == expected_attempts(0.01, 2)


def test_adaptive_throttle_amplification_ceiling():
    throttle = AdaptiveThrottle(k=2.0, max_retries=3)
    assert throttle.failure_ceiling == 0.5
    p = np.array([0.0, 0.2, 0.5, 0.5 + 1e-12, 0.9, 1.0])
    np.testing.assert_array_equal(throttle.amplification(p), np.where(p <= 0.5, expected_attempts(p, 3), 0.0))


def _limiter_attempts_per_request(policy, p_fail, timed_out, requests=40_000, rate=100.0, seed=0):
    """Drive a policy's limiter with i.i.d. failures (the protocol of reliability.simulate): attempts per request."""
    rng = np.random.default_rng(seed)
    limiter = policy.limiter()
    failures = rng.random(requests * policy.max_attempts) < p_fail
    warm_up = requests // 5  # the bucket starts full: let its initial stock drain first
    attempts, j = 0, 0
    for i in range(requests):
        now, retries = i / rate, 0
        while True:
            limiter.admit(now, rng)
            attempts += i >= warm_up
            failed = failures[j]
            j += 1
            limiter.record(now, not failed, retries, timed_out)
            if not failed or not limiter.may_retry(now, retries, timed_out):
                break
            retries += 1
    return attempts / (requests - warm_up)


@pytest.mark.parametrize("policy, p_fail, timed_out", [
    (TokenBucket.aws_standard(), 0.5, False),   # starving, AWS rule: 1 + (1 - p) / (5 p) = 1.2
    (TokenBucket.aws_standard(), 0.5, True),    # timeouts cost 10: 1.1
    (TokenBucket.aws_standard(), 0.9, False),
    (TokenBucket.simple(), 0.5, False),          # plain rule: k / (k - (1 - p) s) = 1 / 0.95
    (RetryBudget(0.1), 0.5, False),              # capped at 1 + ratio
    (FixedRetries(3), 0.5, False),
], ids=repr)
def test_steady_state_amplification_matches_the_policy_limiter(policy, p_fail, timed_out):
    """The mean-field formulas against the limiters the simulator runs (measured: all within 0.3 %)."""
    measured = _limiter_attempts_per_request(policy, p_fail, timed_out)
    assert measured == pytest.approx(policy.amplification(p_fail, timed_out=timed_out), rel=0.01)


@settings(max_examples=200, deadline=None)
@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.integers(0, 50), st.integers(0, 50))
def test_amplification_monotone_and_bounded(p1, p2, r1, r2):
    (p_lo, p_hi), (r_lo, r_hi) = sorted([p1, p2]), sorted([r1, r2])
    for policy_lo, policy_hi in [(FixedRetries(r_lo), FixedRetries(r_hi)),
                                 (RetryBudget(0.2, r_lo), RetryBudget(0.2, r_hi))]:
        a = policy_hi.amplification(p_lo)
        assert 1.0 <= a <= r_hi + 1
        assert policy_hi.amplification(p_hi) >= a  # monotone in p
        assert policy_lo.amplification(p_lo) <= a  # monotone in r
    layered = layered_amplification(p_hi, [r_lo, r_hi])
    assert layered >= expected_attempts(p_hi, r_hi) - 1e-12
    assert layered <= (r_lo + 1) * (r_hi + 1) + 1e-9


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: FixedRetries(-1), "FixedRetries.max_retries"),
        (lambda: FixedRetries(2.5), "FixedRetries.max_retries"),
        (lambda: RetryBudget(ratio=-0.1), "RetryBudget.ratio"),
        (lambda: RetryBudget(window=0.0), "RetryBudget.window"),
        (lambda: TokenBucket(capacity=10, retry_cost=20), "TokenBucket.retry_cost"),
        (lambda: TokenBucket(capacity=0.0), "TokenBucket.capacity"),
        (lambda: TokenBucket(success_refund=float("nan")), "TokenBucket.success_refund"),
        (lambda: AdaptiveThrottle(k=0.5), "AdaptiveThrottle.k"),
        (lambda: AdaptiveThrottle(window=-1.0), "AdaptiveThrottle.window"),
        (lambda: Backoff(base=0.0), "Backoff.base"),
        (lambda: Backoff(base=2.0, cap=1.0), "Backoff.cap"),
        (lambda: Backoff(jitter="half"), "Backoff.jitter"),
    ],
)
def test_policies_reject_inconsistent_settings(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


def test_policy_amplification_rejects_bad_probability():
    with pytest.raises(ValueError, match="p_fail"):
        FixedRetries(3).amplification(1.2)


# --- limiters driven by hand ----------------------------------------------------------------

class FixedDraw:
    """An rng whose random() returns a chosen value: makes a throttle's coin deterministic."""

    def __init__(self, value):
        self.value = value

    def random(self):
        return self.value


def test_fixed_retries_limiter_counts_retries():
    limiter = FixedRetries(2).limiter()
    assert limiter.admit(0.0, None)
    assert [limiter.may_retry(0.0, k, True) for k in range(4)] == [True, True, False, False]
    assert FixedRetries(2).limiter() is not limiter  # a new state each time


def test_retry_budget_never_exceeds_its_ratio():
    policy = RetryBudget(ratio=0.1, max_retries=3, window=10.0)
    limiter = policy.limiter()
    # 100 requests in [0, 10), all failing: exactly 10 retries fit the budget
    for i in range(100):
        limiter.admit(i * 0.1, None)
    granted = 0
    for i in range(30):
        if limiter.may_retry(9.95, 0, True):
            granted += 1
            limiter.admit(9.95, None)  # the retry is an attempt too
    assert granted == 10
    assert limiter.retries_in_window(9.95) == 10
    assert limiter.requests_in_window(9.95) == 100
    # the cap on retries per request holds even with budget to spare
    assert not limiter.may_retry(9.95, 3, True)
    # once the window has slid past everything, nothing is left to spend
    assert not limiter.may_retry(25.0, 0, True)


def test_retry_budget_ratio_holds_in_every_window_of_a_random_run():
    rng = np.random.default_rng(7)
    policy = RetryBudget(ratio=0.2, max_retries=3, window=5.0)
    limiter = policy.limiter()
    requests, retries = [], []
    t = 0.0
    for _ in range(3000):
        t += rng.exponential(0.05)
        limiter.admit(t, rng)
        requests.append(t)
        k = 0
        while rng.random() < 0.7 and limiter.may_retry(t, k, False):
            retries.append(t)
            limiter.admit(t, rng)
            k += 1
    requests, retries = np.array(requests), np.array(retries)
    for end in retries:
        in_window = lambda times: np.count_nonzero((times >= end - 5.0) & (times <= end))  # noqa: E731
        assert in_window(retries) <= 0.2 * in_window(requests) + 1e-9
    assert retries.size > 0.15 * requests.size  # the budget was actually used


def test_aws_token_bucket_drains_and_refills_exactly():
    limiter = TokenBucket.aws_standard().limiter()
    assert limiter.tokens == 500
    # timeout retries cost 10: exactly 50 fit in a full bucket
    granted = [limiter.may_retry(0.0, 0, True) for _ in range(51)]
    assert granted.count(True) == 50 and granted[-1] is False and limiter.tokens == 0
    limiter.record(1.0, True)  # a first attempt succeeds: NO_RETRY_INCREMENT = 1
    assert limiter.tokens == 1
    limiter.record(1.0, True, retries_so_far=1, retry_timed_out=True)  # a successful retry gives back its 10
    assert limiter.tokens == 11
    assert limiter.may_retry(1.0, 0, False) and limiter.tokens == 6  # a non-timeout retry costs 5
    limiter.record(1.0, False)  # failures deposit nothing
    assert limiter.tokens == 6
    assert not limiter.may_retry(1.0, 2, False)  # standard mode: at most 3 attempts
    for _ in range(1000):
        limiter.record(2.0, True)
    assert limiter.tokens == 500  # never above capacity


def test_simple_token_bucket():
    limiter = TokenBucket.simple().limiter()
    assert sum(limiter.may_retry(0.0, 0, False) for _ in range(15)) == 10
    for _ in range(10):
        limiter.record(0.0, True, retries_so_far=1)  # every success deposits 0.1, retry or not
    assert limiter.tokens == pytest.approx(1.0)
    assert limiter.may_retry(0.0, 0, False)


def test_adaptive_throttle_rejection_formula():
    policy = AdaptiveThrottle(k=2.0, window=120.0)
    limiter = policy.limiter()
    always_reject = FixedDraw(0.0)  # rejected whenever the probability is positive
    never = FixedDraw(1.0 - 1e-16)
    # healthy backend: 10 requests, 10 accepts -> requests - 2 accepts < 0 -> never rejected
    for i in range(10):
        assert limiter.admit(float(i), always_reject)
        limiter.record(float(i), True)
    assert limiter.rejection_probability(10.0) == 0.0
    # 30 more requests, all failing: 40 requests, 10 accepts -> (40 - 20) / 41
    for i in range(30):
        limiter.admit(10.0 + i, never)
        limiter.record(10.0 + i, False)
    assert limiter.rejection_probability(40.0) == pytest.approx(20.0 / 41.0, rel=1e-15)
    assert not limiter.admit(40.0, always_reject)  # a local rejection still counts as a request
    assert limiter.rejection_probability(40.0) == pytest.approx(21.0 / 42.0, rel=1e-15)
    assert limiter.admit(40.0, FixedDraw(21.0 / 42.0 + 1e-9))
    # after the window the history is forgotten: (5 requests at t=200) -> 0 accepts
    later = [limiter.admit(200.0, never) for _ in range(5)]
    assert all(later)
    assert limiter.rejection_probability(200.0) == pytest.approx(5.0 / 6.0)
    assert limiter.may_retry(0.0, 2, True) and not limiter.may_retry(0.0, 3, True)


# --- backoff --------------------------------------------------------------------------------

@pytest.mark.parametrize("jitter", ["none", "full", "equal"])
def test_backoff_means_match_large_samples(jitter):
    backoff = Backoff(base=0.1, cap=5.0, jitter=jitter)
    rng = np.random.default_rng(2024)
    for i in [1, 3, 6, 7, 12]:
        d = min(5.0, 0.1 * 2 ** (i - 1))
        sample = backoff.sample(i, rng, 200_000)
        mean = backoff.mean(i)
        assert mean == pytest.approx({"none": 1.0, "full": 0.5, "equal": 0.75}[jitter] * d, rel=1e-15)
        # 5 standard errors of the mean (a uniform's sd is at most d / sqrt(12))
        assert abs(sample.mean() - mean) <= 5 * d / math.sqrt(12 * sample.size) + 1e-15
        low, high = {"none": (d, d), "full": (0.0, d), "equal": (d / 2, d)}[jitter]
        assert sample.min() >= low and sample.max() <= high
        single = backoff.delay(i, None, rng)
        assert low <= single <= high


def test_decorrelated_jitter_bounds_and_recursion():
    backoff = Backoff(base=0.1, cap=3.0, jitter="decorrelated")
    rng = np.random.default_rng(5)
    previous = None
    for i in range(1, 40):
        previous = backoff.delay(i, previous, rng)
        assert 0.1 <= previous <= 3.0
    sample = backoff.sample(8, rng, 100_000)
    assert sample.min() >= 0.1 and sample.max() <= 3.0
    # first delay: U(base, 3 base); its mean is 2 base
    first = backoff.sample(1, rng, 200_000)
    assert first.mean() == pytest.approx(0.2, abs=5 * 0.2 / math.sqrt(12 * first.size))
    # uncapped second step: E[U(base, 3 prev)] = (base + 3 E[prev]) / 2 = 0.35
    second = Backoff(base=0.1, cap=100.0, jitter="decorrelated").sample(2, rng, 200_000)
    assert second.mean() == pytest.approx(0.35, rel=0.01)
    with pytest.raises(ValueError, match="decorrelated"):
        backoff.mean(3)


def test_backoff_does_not_overflow_and_validates():
    backoff = Backoff(base=1e-3, cap=30.0, jitter="none")
    assert backoff.delay(10**6) == 30.0
    assert backoff.mean(np.array([1, 2, 5000])).tolist() == [1e-3, 2e-3, 30.0]
    with pytest.raises(ValueError, match="retry_index"):
        backoff.delay(0)
    with pytest.raises(ValueError, match="rng"):
        Backoff(jitter="full").delay(1)
    # cap / base overflows a float: the clamp on the doublings must not
    assert Backoff(1e-300, 1e300, "none").mean(5000) == 1e300
    with pytest.raises(ValueError, match="size"):
        Backoff().sample(1, np.random.default_rng(0), 2.7)


# --- the retrying queue ---------------------------------------------------------------------

QUEUE = RetryingQueue(servers=10, service_rate=1.0, timeout=2.0, policy=3)


@pytest.mark.parametrize("lam0", [1.0, 3.0, 5.0, 6.5, 8.0])
def test_queue_equilibria_match_brute_force_and_mpmath(lam0):
    equilibria = QUEUE.equilibria(lam0)
    roots = brute_force_roots(queue_map(10, 1.0, 2.0, lam0, FixedRetries(3)))
    found = [e.failure_probability for e in equilibria]
    assert len(found) == len(roots)
    np.testing.assert_allclose(found, roots, atol=2.5e-6)  # the brute-force grid step is 2.5e-6
    for e in equilibria:
        assert e.attempt_rate == pytest.approx(lam0 * expected_attempts(e.failure_probability, 3), rel=1e-14)
        # the fixed point holds at 40 digits
        assert float(mp_response_time_sf(10, e.attempt_rate, 1.0, 2.0)) == pytest.approx(e.failure_probability,
                                                                                         rel=1e-9, abs=1e-12)
        assert e.goodput == pytest.approx(lam0 * (1 - e.failure_probability ** 4), rel=1e-12, abs=1e-15)
        assert 0 <= e.utilisation <= 1


def test_queue_equilibria_match_the_attempt_rate_parametrisation():
    """Independent root finding: x is an equilibrium iff x / A(F(x)) = lambda0."""
    lam0 = 5.0

    def psi(x):
        return x - lam0 * expected_attempts(response_time_sf(10, x, 2.0, 1.0), 3)

    x = np.linspace(0.0, 10.0, 20_001)[:-1]
    values = psi(x)
    brackets = np.nonzero(np.sign(values[:-1]) * np.sign(values[1:]) < 0)[0]
    from scipy.optimize import brentq
    rates = [brentq(psi, x[i], x[i + 1], xtol=1e-14) for i in brackets]
    assert len(rates) == 2
    interior = [e.attempt_rate for e in QUEUE.equilibria(lam0) if e.failure_probability < 1]
    np.testing.assert_allclose(interior, rates, rtol=1e-9)


def test_queue_states_and_stability():
    healthy, unstable, collapsed = QUEUE.equilibria(5.0)
    assert (healthy.state, unstable.state, collapsed.state) == ("healthy", "unstable", "collapsed")
    assert healthy.stable and not unstable.stable and collapsed.stable
    assert 0 < healthy.slope < 1 < unstable.slope and collapsed.slope == 0.0
    # "up, but down": servers busy, nothing useful done
    assert collapsed.failure_probability == 1.0 and collapsed.goodput == 0.0
    assert collapsed.throughput == 10.0 and collapsed.utilisation == 1.0
    assert collapsed.attempt_rate == 20.0 and collapsed.amplification == 4.0
    assert isinstance(healthy, Equilibrium) and "healthy" in repr(healthy)
    with pytest.raises(Exception):
        healthy.goodput = 0.0  # frozen
    frame = equilibria_frame(QUEUE.equilibria(5.0))
    assert list(frame.state) == ["healthy", "unstable", "collapsed"]
    table = QUEUE.equilibria_table([2.0, 5.0])
    assert list(table.arrival_rate) == [2.0, 5.0, 5.0, 5.0]


def test_recovery_threshold_is_capacity_over_attempts():
    for c, mu, t, r in [(10, 1.0, 2.0, 3), (50, 2.0, 1.0, 2), (1, 1.0, 5.0, 3), (100, 1.0, 10.0, 5)]:
        queue = RetryingQueue(c, mu, t, r)
        threshold = queue.recovery_threshold()
        assert threshold == pytest.approx(c * mu / (r + 1), rel=1e-15)
        # brute force: just below it only the healthy state, just above it the collapsed one too
        below = queue.equilibria(threshold * (1 - 1e-6))
        above = queue.equilibria(threshold * (1 + 1e-6))
        assert [e.state for e in below] == ["healthy"]
        assert above[-1].state == "collapsed" and len(above) == 3


def test_onset_threshold_is_the_fold_of_the_healthy_branch():
    onset = QUEUE.onset_threshold()
    assert 5.0 < onset < 7.0
    before = QUEUE.equilibria(onset * (1 - 1e-5))
    after = QUEUE.equilibria(onset * (1 + 1e-5))
    assert [e.state for e in before] == ["healthy", "unstable", "collapsed"]
    assert [e.state for e in after] == ["collapsed"]
    # at the fold the healthy and unstable states merge with slope 1 (tangency)
    assert before[1].failure_probability - before[0].failure_probability < 0.02
    assert before[0].slope == pytest.approx(1.0, abs=0.02) and before[1].slope == pytest.approx(1.0, abs=0.02)
    # brute-force bracket of the onset by counting equilibria on a grid of base rates
    grid = np.linspace(6.55, 6.65, 41)
    counts = [len(QUEUE.equilibria(x)) for x in grid]
    last_three = grid[np.nonzero(np.array(counts) == 3)[0][-1]]
    assert last_three <= onset < last_three + 0.0026


def test_metastable_region_for_realistic_settings():
    # c=10, mu=1, timeout=2 service times, 3 retries: metastable for base load in [0.25, 0.661) c mu
    assert QUEUE.is_metastable(5.0)
    assert not QUEUE.is_metastable(2.0)
    assert not QUEUE.is_metastable(7.0)  # past the fold: only the collapsed state is left
    assert [e.state for e in QUEUE.equilibria(7.0)] == ["collapsed"]


def test_no_metastability_without_retries():
    queue = RetryingQueue(10, 1.0, 2.0, 0)
    for lam0 in np.linspace(0.0, 12.0, 61):
        stable = [e for e in queue.equilibria(lam0) if e.stable]
        assert len(stable) == 1
        assert not queue.is_metastable(lam0)
    assert queue.recovery_threshold() == queue.onset_threshold() == 10.0


def test_retry_budget_removes_the_collapsed_state():
    queue = RetryingQueue(10, 1.0, 2.0, RetryBudget(ratio=0.1))
    for lam0 in [2.0, 5.0, 8.0, 9.0]:
        (only,) = queue.equilibria(lam0)
        assert only.state == "healthy" and only.amplification <= 1.1 + 1e-12
    assert queue.recovery_threshold() == pytest.approx(10.0 / 1.1)


def test_adaptive_throttle_holds_the_failure_ceiling():
    queue = RetryingQueue(10, 1.0, 2.0, AdaptiveThrottle(k=2.0))
    states = queue.equilibria(6.0)
    assert [e.state for e in states] == ["healthy", "unstable", "throttled"]
    throttled = states[-1]
    assert throttled.failure_probability == 0.5 and throttled.stable
    # on the ceiling: the attempts let through are those that make the backend fail half of them
    assert float(response_time_sf(10, throttled.attempt_rate, 2.0, 1.0)) == pytest.approx(0.5, rel=1e-10)
    assert throttled.goodput == pytest.approx(throttled.attempt_rate / 2)
    # far past capacity: no collapse, the same throttled state
    (heavy,) = queue.equilibria(15.0)
    assert heavy.state == "throttled" and heavy.goodput == pytest.approx(throttled.goodput)
    assert queue.recovery_threshold() < 6.0 < queue.onset_threshold()


def test_starving_aws_bucket_oscillates():
    queue = RetryingQueue(10, 1.0, 2.0, TokenBucket.aws_standard())
    (only,) = queue.equilibria(8.0)
    assert only.state == "oscillating" and only.slope < -1
    assert metastability_map(10, 1.0, 2.0, [0.8], [2], policy_factory=TokenBucket.aws_standard).verdict[0] == \
        "oscillating"


def test_equilibria_scan_misses_nothing_in_a_parameter_sweep():
    """Random queues: the scan finds as many roots as a brute-force grid, at the same places."""
    rng = np.random.default_rng(11)
    for _ in range(8):
        c = int(rng.integers(1, 40))
        t = float(rng.uniform(0.2, 6.0))
        r = int(rng.integers(0, 6))
        lam0 = float(rng.uniform(0.05, 1.0)) * c
        queue = RetryingQueue(c, 1.0, t, r)
        roots = brute_force_roots(queue_map(c, 1.0, t, lam0, FixedRetries(r)), points=200_001)
        found = [e.failure_probability for e in queue.equilibria(lam0)]
        assert len(found) == len(roots), (c, t, r, lam0)
        np.testing.assert_allclose(found, roots, atol=5e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: RetryingQueue(0, 1.0, 1.0), "servers"),
        (lambda: RetryingQueue(2.5, 1.0, 1.0), "servers"),
        (lambda: RetryingQueue(10, -1.0, 1.0), "service_rate"),
        (lambda: RetryingQueue(10, 1.0, 0.0), "timeout"),
        (lambda: RetryingQueue(10, 1.0, 1.0, -2), "max_retries"),
        (lambda: RetryingQueue(10, 1.0, 1.0, "three"), "policy"),
        (lambda: QUEUE.equilibria(-1.0), "arrival_rate"),
        (lambda: QUEUE.equilibria(float("inf")), "arrival_rate"),
        (lambda: QUEUE.tipping_trigger(5.0, 0.5), "surge_multiple"),
        (lambda: RetryingQueue(10, 1.0, 2.0, AdaptiveThrottle()).tipping_trigger(5.0, 2.0), "policy"),
        (lambda: RetryingConnectionPool(10, 1.0, 1.0, 1.5), "new_connection_fraction"),
        (lambda: RetryingConnectionPool(10, 1.0, -1.0, 0.5), "setup_time"),
        (lambda: RetryingConnectionPool(0, 1.0, 1.0, 0.5), "connections"),
        (lambda: metastability_map(10, 1.0, 2.0, [-0.5]), "load_shares"),
    ],
)
def test_models_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --- fluid model and tipping trigger ----------------------------------------------------------

@pytest.mark.parametrize("c, backlog", [(10, 0.0), (10, 9.0), (10, 12.0), (10, 35.5), (1, 3.0), (3, 40.0)])
def test_conditional_failure_matches_numerical_integration(c, backlog):
    mu, t = 1.0, 2.0
    queue = RetryingQueue(c, mu, t, 3)
    n = max(backlog - c + 1, 0)
    if n == 0:
        reference = mp.exp(-mu * t)
    else:
        rate = mp.mpf(c * mu)
        density = lambda x: rate**n * x ** (n - 1) * mp.exp(-rate * x) / mp.gamma(n)  # noqa: E731
        # P(Gamma(n, c mu) > t) + P(Gamma <= t, S > t - Gamma)
        reference = mp.gammainc(n, rate * t, mp.inf, regularized=True) + mp.quad(
            lambda x: density(x) * mp.exp(-mu * (t - x)), [0, t])
    assert float(queue._conditional_failure(backlog)[0]) == pytest.approx(float(reference), rel=1e-10)


def test_tipping_trigger_structure():
    tip = QUEUE.tipping_trigger(4.0, 5.0)
    assert tip.tips and 0 < tip.quasi_static_duration < tip.min_duration
    assert tip.healthy_backlog < tip.critical_backlog
    assert tip.extra_requests == pytest.approx(4.0 * 4.0 * tip.min_duration)
    # a bigger surge needs less time
    assert QUEUE.tipping_trigger(4.0, 8.0).min_duration < tip.min_duration
    # below the recovery threshold no surge leaves the queue collapsed
    assert not QUEUE.tipping_trigger(2.0, 10.0).tips
    # past the fluid fold there is no healthy state to tip from
    assert QUEUE.tipping_trigger(9.5, 1.0).min_duration == 0.0
    # a surge whose own rest point stays below the critical backlog never tips
    assert not QUEUE.tipping_trigger(4.0, 1.2).tips


def test_tipping_trigger_short_surges_converge_to_an_impulse():
    """A surge shorter than the fluid step (timeout / 40) must be resolved, not rounded to whole steps.

    For a very short surge only its volume counts: the extra requests that tip the queue tend to a
    limit (an impulse), and a 50x surge lasting a few steps needs about as many."""
    impulse = QUEUE.tipping_trigger(4.0, 1e6)
    assert impulse.tips and impulse.min_duration < 1e-4
    assert QUEUE.tipping_trigger(4.0, 1e4).extra_requests == pytest.approx(impulse.extra_requests, rel=0.005)
    # a backlog jump to the unstable rest point is not enough: it drains for a timeout before retries come
    assert impulse.extra_requests > impulse.critical_backlog - impulse.healthy_backlog
    # (rounded to whole steps of 0.05 s, the 50x answer was 0.100 s and 19.6 requests)
    assert QUEUE.tipping_trigger(4.0, 50.0).extra_requests == pytest.approx(impulse.extra_requests, rel=0.03)
    # the bisection meets its tolerance
    fine = QUEUE.tipping_trigger(4.0, 5.0, rtol=1e-6)
    assert fine.min_duration == pytest.approx(QUEUE.tipping_trigger(4.0, 5.0).min_duration, rel=1.1e-3)
    with pytest.raises(ValueError, match="backoff"):
        QUEUE.tipping_trigger(4.0, 5.0, backoff=Backoff(1.0, 20.0, "decorrelated"))


def test_a_capacity_drop_tips_like_the_load_it_leaves():
    """A capacity drop leaves the same requests to fewer servers: the bigger the cut, the shorter
    the cut that tips; no cut (servers divided by ~1) never tips; a cut to no server is an outage."""
    halved = QUEUE.tipping_trigger(4.0, 2.0, trigger="capacity")
    third = QUEUE.tipping_trigger(4.0, 3.0, trigger="capacity")
    quarter = QUEUE.tipping_trigger(4.0, 4.0, trigger="capacity")
    outage = QUEUE.tipping_trigger(4.0, 100.0, trigger="capacity")
    # 5 servers still serve 4 requests/s (0.8 of their capacity): the fluid model rests there, however long
    assert halved.trigger == "capacity" and not halved.tips and halved.quasi_static_duration == math.inf
    assert third.tips and quarter.tips and outage.tips
    assert outage.min_duration < quarter.min_duration < third.min_duration
    assert quarter.extra_requests == pytest.approx((10 - 2) * 1.0 * quarter.min_duration)
    assert not QUEUE.tipping_trigger(4.0, 1.04, trigger="capacity").tips  # rounds back to 10 servers
    # below the recovery threshold nothing leaves it collapsed, whatever the trigger
    assert not QUEUE.tipping_trigger(2.0, 100.0, trigger="capacity").tips
    # the load-spike answer is unchanged by the new keyword
    assert QUEUE.tipping_trigger(4.0, 5.0, trigger="load") == QUEUE.tipping_trigger(4.0, 5.0)
    with pytest.raises(ValueError, match="trigger"):
        QUEUE.tipping_trigger(4.0, 2.0, trigger="sideways")


@pytest.mark.parametrize("trigger, multiple, seconds", [("load", 5.0, 3.0), ("capacity", 4.0, 5.0)])
def test_tipping_load_is_the_converse_of_the_tipping_trigger(trigger, multiple, seconds):
    """At the lowest tipping rate the shortest tipping trigger of that size is the given duration."""
    rate = QUEUE.tipping_load(multiple, seconds, trigger=trigger, rtol=1e-4)
    assert QUEUE.recovery_threshold() < rate < QUEUE.capacity
    assert QUEUE.tipping_trigger(rate * 1.002, multiple, trigger=trigger).min_duration <= seconds
    assert QUEUE.tipping_trigger(rate * 0.998, multiple, trigger=trigger).min_duration > seconds
    # a longer trigger tips at a lower rate; with no trigger (size 1 or no duration) only the fluid fold
    # tips: the lowest rate with no healthy state, where tipping_trigger's shortest trigger is 0
    assert QUEUE.tipping_load(multiple, 2 * seconds, trigger=trigger) < rate
    fold = QUEUE.tipping_load(1.0, seconds, trigger=trigger, rtol=1e-4)
    assert rate < fold < QUEUE.capacity and QUEUE.tipping_load(multiple, 0.0, trigger=trigger, rtol=1e-4) == fold
    assert QUEUE.tipping_trigger(fold * 1.001, multiple, trigger=trigger).min_duration == 0.0


def test_an_outage_trigger_is_the_fluid_recovery_boundary():
    """The shortest outage that tips (trigger 'capacity' to no server) is where the fluid model's
    recovery after an outage turns infinite: the two questions share one integrator."""
    shortest = QUEUE.tipping_trigger(4.0, 100.0, trigger="capacity", rtol=1e-4).min_duration
    assert QUEUE.fluid_recovery_time(4.0, 0.99 * shortest) < math.inf
    assert QUEUE.fluid_recovery_time(4.0, 1.01 * shortest) == math.inf


# --- the connection pool ----------------------------------------------------------------------

def pool_map(pool, lam0, r):
    def f(p):
        a = expected_attempts(p, r)
        load = lam0 * (a / pool.service_rate + pool.setup_time * (pool.new_connection_fraction + (a - 1)))
        return np.asarray(erlang_b(pool.connections, load))
    return f


@pytest.mark.parametrize("lam0", [3.0, 6.0, 9.0, 12.0])
def test_pool_equilibria_match_brute_force_and_mpmath(lam0):
    pool = RetryingConnectionPool(20, 1.0, 10.0, 0.02, 3)
    equilibria = pool.equilibria(lam0)
    roots = brute_force_roots(pool_map(pool, lam0, 3))
    np.testing.assert_allclose([e.failure_probability for e in equilibria], roots, atol=2.5e-6)
    for e in equilibria:
        assert float(mp_erlang_b(20, e.offered_load)) == pytest.approx(e.failure_probability, rel=1e-9, abs=1e-14)
        holding = pool.mean_holding_time(e.amplification)
        assert e.offered_load == pytest.approx(e.attempt_rate * holding, rel=1e-12)


def test_pool_is_bistable_only_with_connection_setup_cost():
    with_setup = RetryingConnectionPool(20, 1.0, 10.0, 0.02, 3)
    assert with_setup.is_metastable(6.0)
    states = with_setup.equilibria(6.0)
    assert [e.state for e in states] == ["healthy", "unstable", "degraded"]
    assert states[-1].failure_probability > 0.8
    onset, recovery = with_setup.onset_threshold(), with_setup.recovery_threshold()
    assert recovery < 6.0 < onset
    assert len(with_setup.equilibria(recovery * 0.999)) == 1 and len(with_setup.equilibria(recovery * 1.001)) == 3
    assert len(with_setup.equilibria(onset * 0.999)) == 3 and len(with_setup.equilibria(onset * 1.001)) == 1
    # a plain loss system under retries (no set-up cost) has a single state at every load
    for connections, r in [(20, 3), (100, 3), (1000, 10)]:
        pool = RetryingConnectionPool(connections, 1.0, 0.0, 0.0, r)
        assert math.isinf(pool.onset_threshold()) and math.isinf(pool.recovery_threshold())
        for share in [0.5, 0.9, 1.0, 1.5, 3.0, 10.0]:
            assert len(pool.equilibria(share * connections)) == 1


def test_pool_with_adaptive_throttle_is_held_on_the_ceiling():
    # above the ceiling the throttle turns away first attempts too (A < 1): the load per request
    # must stay lam0 (A / mu + s A f), not go negative through f + (A - 1)
    pool = RetryingConnectionPool(50, 1.0, 5.0, 0.1, AdaptiveThrottle(2.0))
    for lam0 in [20.0, 60.0, 200.0]:
        throttled = pool.equilibria(lam0)[-1]
        assert throttled.state == "throttled" and throttled.failure_probability == 0.5
        a = throttled.amplification
        new = 0.1 * min(a, 1.0) + max(a - 1.0, 0.0)  # new connections per request
        assert throttled.offered_load == pytest.approx(lam0 * (a + 5.0 * new), rel=1e-12)
        assert float(mp_erlang_b(50, throttled.offered_load)) == pytest.approx(0.5, rel=1e-9)
    assert pool.equilibria(200.0)[-1].amplification < 1.0  # most first attempts rejected locally
    assert pool.recovery_threshold() < 20.0 < pool.onset_threshold()


@pytest.mark.parametrize("model", [
    RetryingQueue(10, 1.0, 2.0, RetryBudget(0.5)),         # degraded state below saturation
    RetryingQueue(10, 1.0, 2.0, AdaptiveThrottle(2.0)),    # throttled state
    RetryingQueue(50, 1.0, 4.0, AdaptiveThrottle(1.5, max_retries=5)),
    RetryingConnectionPool(20, 1.0, 10.0, 0.02, 3),
    RetryingConnectionPool(20, 1.0, 10.0, 0.02, AdaptiveThrottle(2.0)),
], ids=repr)
def test_thresholds_bound_the_metastable_region_for_every_policy(model):
    onset, recovery = model.onset_threshold(), model.recovery_threshold()
    assert recovery < onset
    assert not model.is_metastable(recovery * (1 - 1e-4)) and model.is_metastable(recovery * (1 + 1e-4))
    assert model.is_metastable(onset * (1 - 1e-4)) and not model.is_metastable(onset * (1 + 1e-4))


# --- metastability map ------------------------------------------------------------------------

def test_metastability_map_is_tidy_and_consistent_with_its_boundary():
    shares = np.linspace(0.05, 1.1, 22)
    frame = metastability_map(10, 1.0, 2.0, shares, max_retries=[0, 1, 3])
    assert isinstance(frame, pd.DataFrame) and len(frame) == 66
    assert set(frame.verdict) <= {"healthy", "overloaded", "metastable", "collapsed"}
    meta = frame.verdict == "metastable"
    inside = (frame.load_share >= frame.recovery_share) & (frame.load_share < frame.onset_share)
    assert (meta == inside).all()
    assert not frame[frame.max_retries == 0].verdict.eq("metastable").any()
    assert frame[frame.max_retries == 3].verdict.eq("metastable").sum() > 0
    r3 = frame[frame.max_retries == 3].iloc[0]
    assert r3.recovery_share == pytest.approx(0.25)


# --- against the discrete-event simulator -----------------------------------------------------

simulate = pytest.importorskip("reliability.simulate")
needs_simulator = pytest.mark.skipif(
    not hasattr(simulate, "simulate_retrying_queue") or not hasattr(simulate, "Schedule"),
    reason="reliability.simulate lacks simulate_retrying_queue / Schedule",
)


@needs_simulator
def test_simulated_queue_sits_in_either_equilibrium():
    # at 0.4 c mu the healthy state outlives the run; at 0.5 c mu noise alone tips it within ~10^3 s
    lam0 = 4.0
    healthy, _, collapsed = QUEUE.equilibria(lam0)
    run = simulate.simulate_retrying_queue(10, 1.0, lam0, timeout=2.0, policy=FixedRetries(3),
                                           horizon=2100.0, interval=10.0, seed=3)
    window = run.window(100.0, 2100.0)
    outcomes = window.successes + window.timeouts
    # binomial standard error, inflated x2 for the correlation of neighbouring attempts
    se = 2 * math.sqrt(healthy.failure_probability * (1 - healthy.failure_probability) / outcomes)
    assert abs(window.failure_fraction - healthy.failure_probability) < 4 * se
    assert window.goodput == pytest.approx(healthy.goodput, rel=0.03)
    stuck = simulate.simulate_retrying_queue(10, 1.0, lam0, timeout=2.0, policy=FixedRetries(3),
                                             horizon=600.0, interval=10.0, seed=3, initial_backlog=200)
    late = stuck.window(300.0, 600.0)
    assert late.failure_fraction > 0.99 and late.goodput < 0.05 * lam0
    assert late.amplification == pytest.approx(collapsed.amplification, rel=0.02)
    assert late.utilisation > 0.99


@needs_simulator
def test_tipping_trigger_is_the_simulated_median():
    lam0, multiple = 4.0, 5.0
    tip = QUEUE.tipping_trigger(lam0, multiple)
    seeds = range(30)

    def collapsed_share(duration):
        count = 0
        for seed in seeds:
            run = simulate.simulate_retrying_queue(
                10, 1.0, simulate.Schedule.surge(lam0, multiple, 50.0, duration), timeout=2.0,
                policy=FixedRetries(3), horizon=250.0, interval=10.0, seed=seed)
            count += run.window(200.0, 250.0).failure_fraction > 0.9
        return count / len(seeds)

    # measured once at 40 seeds: 3/40 at half the trigger, 20/40 at it, 39/40 at twice it
    assert collapsed_share(0.5 * tip.min_duration) <= 0.25
    assert 0.2 <= collapsed_share(tip.min_duration) <= 0.8
    assert collapsed_share(2.0 * tip.min_duration) >= 0.75


@needs_simulator
def test_simulated_pool_reaches_the_degraded_state():
    """With backoff (retries see an independent pool state) the mean field predicts the storm."""
    pool = RetryingConnectionPool(20, 1.0, 10.0, 0.02, 3)
    lam0 = 6.0
    degraded = pool.equilibria(lam0)[-1]
    run = simulate.simulate_connection_pool(
        20, 1.0, simulate.Schedule.surge(lam0, 4.0, 100.0, 100.0), timeout=math.inf, setup_time=10.0,
        new_connection_fraction=0.02, policy=FixedRetries(3), backoff=Backoff(2.0, 20.0, "full"),
        horizon=2000.0, interval=10.0, seed=1)
    late = run.window(800.0, 2000.0)
    assert late.failure_fraction == pytest.approx(degraded.failure_probability, abs=0.02)
    assert late.amplification == pytest.approx(degraded.amplification, rel=0.03)
    assert late.goodput == pytest.approx(degraded.goodput, rel=0.05)
    calm = simulate.simulate_connection_pool(
        20, 1.0, lam0, timeout=math.inf, setup_time=10.0, new_connection_fraction=0.02,
        policy=FixedRetries(3), backoff=Backoff(2.0, 20.0, "full"), horizon=1000.0, interval=10.0, seed=1)
    assert calm.window(100.0, 1000.0).failure_fraction < 0.01
