"""Retries: how much load they add, the policies that bound them, and the retry storms they sustain.

Most severe overload outages are kept going not by their trigger but by retries: clients retry
failed or slow requests, the extra load makes more requests fail, and the service can stay down
after the trigger is gone -- a *metastable* failure (Bronson et al., HotOS 2021; Huang et al.,
OSDI 2022). This module holds

* retry amplification: :func:`expected_attempts`, :func:`layered_amplification`;
* the retry policies a client can run (:class:`FixedRetries`, :class:`RetryBudget`,
  :class:`TokenBucket`, :class:`AdaptiveThrottle`) and :class:`Backoff`;
* the mean-field equilibria of a retrying M/M/c queue (:class:`RetryingQueue`) and of a
  retrying connection pool (:class:`RetryingConnectionPool`), their metastable region and
  recovery threshold, and :func:`metastability_map` for the notebooks.

Policy protocol (shared with :mod:`reliability.simulate`, which drives the policies)
-----------------------------------------------------------------------------------
Every policy is a frozen dataclass with ``max_attempts`` (attempts per request, first one
included), ``amplification(p_fail)`` (steady-state attempts per request that the policy lets
reach the server when each attempt fails independently with probability ``p_fail``) and
``limiter()``, which returns a NEW mutable limiter holding the state of one client population.
A simulation calls the limiter as follows:

1. ``admit(now, rng) -> bool`` before EVERY attempt, first attempts and retries alike.
   Only :class:`AdaptiveThrottle` ever answers False (a local rejection: the attempt is not
   sent and counts as a failed, not timed-out, attempt of its request). The retry budget
   counts requests as ``admitted attempts - retries it granted`` over its window, so it too
   needs admit() for every attempt.
2. ``may_retry(now, retries_so_far, timed_out) -> bool`` after an attempt fails;
   ``retries_so_far`` is the number of retries the request has already made (0 after its first
   attempt failed) and ``timed_out`` says whether the failure was a client timeout. True means a
   retry is sent, and the budget/tokens for it are consumed at that moment.
3. ``record(now, success, retries_so_far=0, retry_timed_out=False)`` with the outcome of each
   attempt that was sent. The two optional keywords describe the attempt: how many retries the
   request had made counting this attempt (0: it was the first attempt) and whether the failure
   that caused this retry was a timeout. Only :class:`TokenBucket` in AWS mode uses them, to
   refund a successful retry exactly what it cost; the other limiters ignore them.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import integrate, optimize, special

from ._validate import as_array, is_scalar, output, probability
from .erlang import erlang_b, response_time_sf

__all__ = [
    "expected_attempts",
    "layered_amplification",
    "FixedRetries",
    "RetryBudget",
    "TokenBucket",
    "AdaptiveThrottle",
    "Backoff",
    "Equilibrium",
    "TippingPoint",
    "RetryingQueue",
    "RetryingConnectionPool",
    "equilibria_frame",
    "metastability_map",
]


# ----------------------------------------------------------------------------------------
# Amplification
# ----------------------------------------------------------------------------------------

def _expected_attempts(p: np.ndarray, r: np.ndarray) -> np.ndarray:
    """sum_{k=0}^{r} p^k on validated, broadcast arrays (no warnings at p = 0 or p = 1)."""
    n = r + 1.0
    out = np.array(n, dtype=np.float64, copy=True)  # the p = 1 limit
    inner = (p > 0.0) & (p < 1.0)
    if inner.any():
        log_p = np.log(p[inner])
        # (1 - p^n) / (1 - p) with both differences from expm1: no cancellation as p -> 1
        out[inner] = np.expm1(n[inner] * log_p) / np.expm1(log_p)
    out[p == 0.0] = 1.0
    return out


def expected_attempts(p_fail, max_retries):
    """Expected attempts per request when each attempt fails independently.

    With at most ``r`` retries a request makes attempt ``k + 1`` only if its first ``k``
    attempts failed, so ``E[attempts] = sum_{k=0}^{r} p^k = (1 - p^(r+1)) / (1 - p)``,
    and ``r + 1`` at ``p = 1``. Evaluated as ``expm1((r+1) log p) / expm1(log p)``, which keeps
    full precision as ``p -> 1``.

    Parameters
    ----------
    p_fail : float or array_like
        Probability that one attempt fails, in [0, 1].
    max_retries : int or array_like of int
        Retries allowed after the first attempt, ``r >= 0``.

    Returns
    -------
    float or ndarray
        Expected attempts, between 1 and ``r + 1``.

    Examples
    --------
    >>> expected_attempts(0.5, 3)
    1.875
    >>> expected_attempts(1.0, 3)
    4.0
    >>> expected_attempts([0.0, 0.1], 2)
    array([1.  , 1.11])
    """
    scalar = is_scalar(p_fail, max_retries)
    p = probability("p_fail", p_fail)
    r = as_array("max_retries", max_retries, minimum=0.0, integer=True)
    p, r = np.broadcast_arrays(p, r)
    return output(_expected_attempts(p, r), scalar)


def layered_amplification(p_fail, max_retries_per_layer):
    """Expected attempts reaching the bottom service through several retrying layers.

    Layer ``i`` (listed top first) retries each call up to ``r_i`` times. A failure starts at
    the bottom (each bottom attempt fails independently with probability ``p``) and travels up:
    a call into the last layer fails only if all its ``r_n + 1`` attempts fail, so the layer
    above sees ``p_n = p^(r_n + 1)``, and so on. By Wald's identity (a layer's number of calls is
    a stopping time of the i.i.d. calls below it) the expected bottom attempts per top request
    are the product ``prod_i E[attempts](p_i, r_i)``; at ``p = 1`` it is ``prod_i (r_i + 1)``:
    three layers of 4 attempts send 64 attempts to a dead backend for every user request.

    Parameters
    ----------
    p_fail : float or array_like
        Failure probability of one attempt at the bottom service, in [0, 1].
    max_retries_per_layer : sequence of int
        Retries of each layer, top first (the order does not change the product at ``p = 1``
        but does for ``p < 1``).

    Examples
    --------
    >>> layered_amplification(1.0, [3, 3, 3])
    64.0
    >>> layered_amplification(0.0, [3, 3, 3])
    1.0
    >>> round(layered_amplification(0.5, [3]), 12) == expected_attempts(0.5, 3)
    True
    """
    layers = np.asarray(max_retries_per_layer, dtype=object)
    if layers.ndim != 1 or layers.size == 0:
        raise ValueError(
            f"max_retries_per_layer must be a non-empty sequence of whole numbers, got {max_retries_per_layer!r}"
        )
    retries = [
        int(as_array(f"max_retries_per_layer[{i}]", value, minimum=0.0, integer=True))
        for i, value in enumerate(layers)
    ]
    scalar = is_scalar(p_fail)
    p = probability("p_fail", p_fail)
    total = np.ones_like(p)
    failing = p
    for r in reversed(retries):  # bottom layer first: it sees the raw failure probability
        r_array = np.full_like(failing, float(r))
        total = total * _expected_attempts(failing, r_array)
        failing = failing ** (r + 1)
    return output(total, scalar)


# ----------------------------------------------------------------------------------------
# Policies
# ----------------------------------------------------------------------------------------

def _check_count(owner: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{owner}.{name} must be a whole number >= 0, got {value!r}")


def _check_number(owner: str, name: str, value: Any, *, minimum: float = 0.0, strict: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{owner}.{name} must be a number, got {value!r}")
    bad = not math.isfinite(value) or (value <= minimum if strict else value < minimum)
    if bad:
        relation = ">" if strict else ">="
        raise ValueError(f"{owner}.{name} must be a finite number {relation} {minimum:g}, got {value!r}")


def _p_array(p_fail):
    return is_scalar(p_fail), probability("p_fail", p_fail)


class _SlidingCount:
    """Event times over a sliding window [now - window, now] (amortised O(1) per event)."""

    def __init__(self, window: float):
        self.window = window
        self._times: deque[float] = deque()

    def add(self, now: float) -> None:
        self._times.append(now)

    def count(self, now: float) -> int:
        horizon = now - self.window
        times = self._times
        while times and times[0] < horizon:
            times.popleft()
        return len(times)


class _UnlimitedLimiter:
    """Limiter of :class:`FixedRetries`: admits everything, retries up to the cap."""

    def __init__(self, max_retries: int):
        self.max_retries = max_retries
        self.retries_granted = 0

    def admit(self, now: float, rng) -> bool:
        return True

    def may_retry(self, now: float, retries_so_far: int, timed_out: bool) -> bool:
        if retries_so_far < self.max_retries:
            self.retries_granted += 1
            return True
        return False

    def record(self, now: float, success: bool, retries_so_far: int = 0, retry_timed_out: bool = False) -> None:
        return None

    def __repr__(self) -> str:
        return f"FixedRetries limiter(max_retries={self.max_retries}, retries_granted={self.retries_granted})"


@dataclass(frozen=True)
class FixedRetries:
    """Retry every failed attempt, up to ``max_retries`` times (the classic client default).

    Examples
    --------
    >>> policy = FixedRetries(3)
    >>> policy.max_attempts, policy.amplification(1.0)
    (4, 4.0)
    """

    max_retries: int = 3

    def __post_init__(self):
        _check_count("FixedRetries", "max_retries", self.max_retries)

    @property
    def max_attempts(self) -> int:
        return int(self.max_retries) + 1

    def amplification(self, p_fail, *, timed_out: bool = False):
        """Expected attempts per request: :func:`expected_attempts` ``(p_fail, max_retries)``."""
        scalar, p = _p_array(p_fail)
        return output(_expected_attempts(p, np.full_like(p, float(self.max_retries))), scalar)

    def limiter(self) -> _UnlimitedLimiter:
        return _UnlimitedLimiter(int(self.max_retries))


class _BudgetLimiter:
    def __init__(self, policy: "RetryBudget"):
        self.policy = policy
        self._attempts = _SlidingCount(policy.window)
        self._retries = _SlidingCount(policy.window)

    def admit(self, now: float, rng) -> bool:
        self._attempts.add(now)
        return True

    def requests_in_window(self, now: float) -> int:
        """First attempts in the window: admitted attempts minus the retries granted."""
        return max(0, self._attempts.count(now) - self._retries.count(now))

    def retries_in_window(self, now: float) -> int:
        return self._retries.count(now)

    def may_retry(self, now: float, retries_so_far: int, timed_out: bool) -> bool:
        if retries_so_far >= self.policy.max_retries:
            return False
        retries = self._retries.count(now)
        requests = max(0, self._attempts.count(now) - retries)
        # grant only if the window still respects the ratio after this retry
        if retries + 1 <= self.policy.ratio * requests:
            self._retries.add(now)
            return True
        return False

    def record(self, now: float, success: bool, retries_so_far: int = 0, retry_timed_out: bool = False) -> None:
        return None

    def __repr__(self) -> str:
        return f"RetryBudget limiter({self.policy!r})"


@dataclass(frozen=True)
class RetryBudget:
    """Retry at most ``ratio`` x requests over a sliding window (Finagle / Envoy style budget).

    A retry is granted when, counting it, the retries in the last ``window`` seconds stay within
    ``ratio`` times the requests (first attempts) in that window, and the request has retried
    fewer than ``max_retries`` times. No minimum retry rate is granted (Finagle adds one by
    default); at a low request rate the budget is therefore strict.

    In steady state the budget caps the retries per request at ``ratio``, so the attempts per
    request are ``min(expected_attempts(p, r), 1 + ratio)``.

    Examples
    --------
    >>> RetryBudget(ratio=0.1).amplification(1.0)
    1.1
    >>> round(RetryBudget(ratio=0.1).amplification(0.05), 6)  # below the budget: as FixedRetries(3)
    1.052625
    """

    ratio: float = 0.1
    max_retries: int = 3
    window: float = 10.0

    def __post_init__(self):
        _check_number("RetryBudget", "ratio", self.ratio)
        _check_count("RetryBudget", "max_retries", self.max_retries)
        _check_number("RetryBudget", "window", self.window, strict=True)

    @property
    def max_attempts(self) -> int:
        return int(self.max_retries) + 1

    def amplification(self, p_fail, *, timed_out: bool = False):
        """``min(expected_attempts(p_fail, max_retries), 1 + ratio)``."""
        scalar, p = _p_array(p_fail)
        wanted = _expected_attempts(p, np.full_like(p, float(self.max_retries)))
        return output(np.minimum(wanted, 1.0 + self.ratio), scalar)

    def limiter(self) -> _BudgetLimiter:
        return _BudgetLimiter(self)


class _BucketLimiter:
    def __init__(self, policy: "TokenBucket"):
        self.policy = policy
        self.tokens = float(policy.capacity)

    def admit(self, now: float, rng) -> bool:
        return True

    def may_retry(self, now: float, retries_so_far: int, timed_out: bool) -> bool:
        if retries_so_far >= self.policy.max_retries:
            return False
        cost = self.policy.timeout_retry_cost if timed_out else self.policy.retry_cost
        # deposits like 0.1 do not add up exactly in binary: allow for the rounding of ten of them
        if cost <= self.tokens + 1e-9 * self.policy.capacity:
            self.tokens = max(0.0, self.tokens - cost)
            return True
        return False

    def record(self, now: float, success: bool, retries_so_far: int = 0, retry_timed_out: bool = False) -> None:
        if not success:
            return
        policy = self.policy
        if policy.refund_retry_cost and retries_so_far > 0:
            refund = policy.timeout_retry_cost if retry_timed_out else policy.retry_cost
        else:
            refund = policy.success_refund
        self.tokens = min(float(policy.capacity), self.tokens + refund)

    def __repr__(self) -> str:
        return f"TokenBucket limiter(tokens={self.tokens:g}, {self.policy!r})"


@dataclass(frozen=True)
class TokenBucket:
    """Retry quota: each retry takes tokens from a bucket that successes refill.

    A retry costs ``retry_cost`` tokens (``timeout_retry_cost`` after a timeout) and is refused
    when the bucket holds fewer. A success deposits ``success_refund`` tokens; with
    ``refund_retry_cost`` (the AWS SDK rule) a successful *retry* instead gives back what it cost.
    The bucket never holds more than ``capacity``.

    Steady state. With per-attempt failure probability ``p`` and cost ``k``, the expected token
    drift per request when every retry is granted is (AWS rule)
    ``(1 - p) * refund - (A - 1) * p * k`` or (plain rule) ``A (1 - p) s - (A - 1) k`` with
    ``A = expected_attempts(p, r)``. While it is >= 0 the bucket stays full and the policy acts
    as :class:`FixedRetries`; when it is negative the bucket empties and hovers near zero,
    granting just enough retries to keep the drift at zero:
    ``A = 1 + (1 - p) refund / (p k)`` (AWS) or ``A = k / (k - (1 - p) s)`` (plain).
    ``amplification`` is the minimum of the two, so it rises with ``p`` and then falls back
    towards 1 as the bucket starves (it is not monotone in ``p``).

    Examples
    --------
    >>> aws = TokenBucket.aws_standard()
    >>> aws.capacity, aws.retry_cost, aws.timeout_retry_cost, aws.success_refund
    (500.0, 5.0, 10.0, 1.0)
    >>> round(aws.amplification(0.5), 12)   # 1 + 0.5 * 1 / (0.5 * 5)
    1.2
    >>> round(aws.amplification(0.5, timed_out=True), 12)
    1.1
    """

    capacity: float = 10.0
    retry_cost: float = 1.0
    timeout_retry_cost: float = 1.0
    success_refund: float = 0.1
    max_retries: int = 3
    refund_retry_cost: bool = False

    def __post_init__(self):
        _check_number("TokenBucket", "capacity", self.capacity, strict=True)
        _check_number("TokenBucket", "retry_cost", self.retry_cost, strict=True)
        _check_number("TokenBucket", "timeout_retry_cost", self.timeout_retry_cost, strict=True)
        _check_number("TokenBucket", "success_refund", self.success_refund)
        _check_count("TokenBucket", "max_retries", self.max_retries)
        if not isinstance(self.refund_retry_cost, bool):
            raise ValueError(f"TokenBucket.refund_retry_cost must be True or False, got {self.refund_retry_cost!r}")
        for name in ("retry_cost", "timeout_retry_cost"):
            if getattr(self, name) > self.capacity:
                raise ValueError(
                    f"TokenBucket.{name} must be <= capacity ({self.capacity:g}) or no retry is ever "
                    f"possible, got {getattr(self, name)!r}"
                )

    @classmethod
    def simple(cls, max_retries: int = 3) -> "TokenBucket":
        """A small bucket: capacity 10, a retry costs 1, every success deposits 0.1 (gRPC-like ratio)."""
        return cls(capacity=10.0, retry_cost=1.0, timeout_retry_cost=1.0, success_refund=0.1,
                   max_retries=max_retries, refund_retry_cost=False)

    @classmethod
    def aws_standard(cls, max_retries: int = 2) -> "TokenBucket":
        """The AWS SDKs' "standard" retry mode quota.

        Constants as in the SDKs' sources: INITIAL_RETRY_TOKENS = 500, RETRY_COST = 5,
        TIMEOUT_RETRY_COST = 10, NO_RETRY_INCREMENT = 1 (aws-sdk-js-v3
        packages/middleware-retry/src/constants.ts; smithy-rs token bucket: DEFAULT_CAPACITY 500,
        RETRY_COST 5, RETRY_TIMEOUT_COST = 2 * RETRY_COST, PERMIT_REGENERATION_AMOUNT 1; the Swift
        SDK's RetryQuota has the same four numbers). A success without retry adds
        NO_RETRY_INCREMENT; a successful retry releases the tokens it took
        (``releaseRetryTokens(retryTokenAmount)`` in defaultRetryQuota.ts). Standard mode makes
        at most 3 attempts by default (AWS SDKs and Tools reference guide, "Retry behavior"),
        i.e. ``max_retries=2``.
        """
        return cls(capacity=500.0, retry_cost=5.0, timeout_retry_cost=10.0, success_refund=1.0,
                   max_retries=max_retries, refund_retry_cost=True)

    @property
    def max_attempts(self) -> int:
        return int(self.max_retries) + 1

    def amplification(self, p_fail, *, timed_out: bool = False):
        """Steady-state attempts per request (see the class notes); ``timed_out`` picks the retry cost."""
        scalar, p = _p_array(p_fail)
        wanted = _expected_attempts(p, np.full_like(p, float(self.max_retries)))
        cost = self.timeout_retry_cost if timed_out else self.retry_cost
        allowed = np.full_like(p, np.inf)
        if self.refund_retry_cost:
            failing = p > 0.0
            allowed[failing] = 1.0 + (1.0 - p[failing]) * self.success_refund / (p[failing] * cost)
        else:
            deficit = cost - (1.0 - p) * self.success_refund
            starving = deficit > 0.0
            allowed[starving] = cost / deficit[starving]
        return output(np.minimum(wanted, allowed), scalar)

    def limiter(self) -> _BucketLimiter:
        return _BucketLimiter(self)


class _ThrottleLimiter:
    def __init__(self, policy: "AdaptiveThrottle"):
        self.policy = policy
        self._requests = _SlidingCount(policy.window)
        self._accepts = _SlidingCount(policy.window)

    def rejection_probability(self, now: float) -> float:
        """``max(0, (requests - k * accepts) / (requests + 1))`` over the window."""
        requests = self._requests.count(now)
        accepts = self._accepts.count(now)
        return max(0.0, (requests - self.policy.k * accepts) / (requests + 1.0))

    def admit(self, now: float, rng) -> bool:
        reject = self.rejection_probability(now)
        self._requests.add(now)  # a locally rejected attempt still counts as a request
        return not (reject > 0.0 and rng.random() < reject)

    def may_retry(self, now: float, retries_so_far: int, timed_out: bool) -> bool:
        return retries_so_far < self.policy.max_retries

    def record(self, now: float, success: bool, retries_so_far: int = 0, retry_timed_out: bool = False) -> None:
        if success:
            self._accepts.add(now)

    def __repr__(self) -> str:
        return f"AdaptiveThrottle limiter({self.policy!r})"


@dataclass(frozen=True)
class AdaptiveThrottle:
    """Client-side adaptive throttling (Google SRE book, "Handling Overload").

    Each client keeps, over the last ``window`` seconds, the attempts it made (``requests``) and
    those the backend accepted (``accepts``, here: succeeded), and rejects a new attempt locally
    with probability ``max(0, (requests - k * accepts) / (requests + 1))``. Failed attempts are
    retried up to ``max_retries`` times; retries pass the same throttle.

    Steady state (mean field, many requests per window). With backend failure probability ``p``
    the throttle is idle while ``k (1 - p) >= 1``: amplification is that of
    :class:`FixedRetries`. Beyond the *failure ceiling* ``p* = 1 - 1/k`` the rejection
    probability tends to 1 (requests outgrow ``k`` x accepts), so ``amplification`` is 0 there:
    the throttle lets through only what keeps the backend at ``p*`` -- a load-dependent rate
    that :class:`RetryingQueue` finds as a separate ("throttled") equilibrium sitting on the
    ceiling.

    Examples
    --------
    >>> throttle = AdaptiveThrottle(k=2.0)
    >>> throttle.failure_ceiling
    0.5
    >>> throttle.amplification([0.0, 0.5, 0.6])
    array([1.   , 1.875, 0.   ])
    """

    k: float = 2.0
    window: float = 120.0
    max_retries: int = 3

    def __post_init__(self):
        _check_number("AdaptiveThrottle", "k", self.k, minimum=1.0)
        _check_number("AdaptiveThrottle", "window", self.window, strict=True)
        _check_count("AdaptiveThrottle", "max_retries", self.max_retries)

    @property
    def max_attempts(self) -> int:
        return int(self.max_retries) + 1

    @property
    def failure_ceiling(self) -> float:
        """Failure probability above which the throttle starts rejecting: ``1 - 1/k``."""
        return 1.0 - 1.0 / self.k

    def amplification(self, p_fail, *, timed_out: bool = False):
        """Attempts per request that reach the backend: FixedRetries below the ceiling, 0 above."""
        scalar, p = _p_array(p_fail)
        wanted = _expected_attempts(p, np.full_like(p, float(self.max_retries)))
        return output(np.where(p <= self.failure_ceiling, wanted, 0.0), scalar)

    def limiter(self) -> _ThrottleLimiter:
        return _ThrottleLimiter(self)


# ----------------------------------------------------------------------------------------
# Backoff
# ----------------------------------------------------------------------------------------

_JITTERS = ("none", "full", "equal", "decorrelated")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter (AWS Architecture Blog, "Exponential Backoff And Jitter").

    The un-jittered delay before retry ``i`` (``i = 1`` first retry) is
    ``d_i = min(cap, base * 2^(i-1))``. Jitter:

    * ``"none"``: ``d_i``;
    * ``"full"``: ``U(0, d_i)``, mean ``d_i / 2``;
    * ``"equal"``: ``d_i / 2 + U(0, d_i / 2)``, mean ``3 d_i / 4``;
    * ``"decorrelated"``: ``min(cap, U(base, 3 * previous))`` with ``previous = base`` before the
      first retry; it depends on the previous delay, so it has no per-index closed-form mean.

    Backoff delays spread retries in time; they do not change the steady-state attempt rates of
    the mean-field models below (a retry delayed is still a retry), only the transients.

    Examples
    --------
    >>> Backoff(0.1, 2.0, "none").delay(3)
    0.4
    >>> Backoff(0.1, 2.0, "equal").mean(10)  # capped at 2.0
    1.5
    """

    base: float = 0.1
    cap: float = 20.0
    jitter: str = "full"

    def __post_init__(self):
        _check_number("Backoff", "base", self.base, strict=True)
        _check_number("Backoff", "cap", self.cap, strict=True)
        if self.cap < self.base:
            raise ValueError(f"Backoff.cap must be >= base ({self.base!r}), got {self.cap!r}")
        if self.jitter not in _JITTERS:
            raise ValueError(f"Backoff.jitter must be one of {_JITTERS}, got {self.jitter!r}")

    def _ceiling(self, retry_index):
        """``min(cap, base * 2^(i-1))`` without overflow for any index."""
        i = as_array("retry_index", retry_index, minimum=1.0, integer=True)
        # beyond this exponent the cap binds; clamping keeps base * 2^k finite (ldexp: no 2^k overflow)
        doublings = math.ceil(math.log2(self.cap) - math.log2(self.base)) + 1  # cap / base may overflow
        exponent = np.minimum(i - 1.0, doublings).astype(np.int64)
        with np.errstate(over="ignore"):  # only for cap within a factor 4 of the largest float: min() takes cap
            return np.minimum(self.cap, np.ldexp(self.base, exponent))

    def mean(self, retry_index):
        """Mean delay before retry ``retry_index`` (none, full and equal jitter)."""
        if self.jitter == "decorrelated":
            raise ValueError(
                "Backoff.jitter='decorrelated' has no closed-form mean per retry index "
                "(each delay depends on the previous one); use sample()"
            )
        scalar = is_scalar(retry_index)
        d = self._ceiling(retry_index)
        factor = {"none": 1.0, "full": 0.5, "equal": 0.75}[self.jitter]
        return output(factor * d, scalar)

    def delay(self, retry_index: int, previous_delay: float | None = None, rng=None) -> float:
        """One delay before retry ``retry_index``; ``previous_delay`` is used by decorrelated jitter."""
        d = float(self._ceiling(retry_index))
        if self.jitter == "none":
            return d
        if rng is None:
            raise ValueError(f"rng must be a numpy Generator for jitter={self.jitter!r}, got None")
        if self.jitter == "full":
            return float(rng.uniform(0.0, d))
        if self.jitter == "equal":
            return float(d / 2.0 + rng.uniform(0.0, d / 2.0))
        previous = self.base if previous_delay is None else float(previous_delay)
        if not math.isfinite(previous) or previous < 0:
            raise ValueError(f"previous_delay must be a finite number >= 0, got {previous_delay!r}")
        high = max(self.base, 3.0 * previous)
        return float(min(self.cap, rng.uniform(self.base, high)))

    def sample(self, retry_index: int, rng, size: int) -> np.ndarray:
        """``size`` independent delays before retry ``retry_index``.

        For decorrelated jitter each sample runs its own chain of ``retry_index`` delays from
        ``previous = base``.
        """
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 0:
            raise ValueError(f"size must be a whole number >= 0, got {size!r}")
        size = int(size)
        if rng is None:
            raise ValueError("rng must be a numpy Generator, got None")
        d = float(self._ceiling(retry_index))
        if self.jitter == "none":
            return np.full(size, d)
        if self.jitter == "full":
            return rng.uniform(0.0, d, size)
        if self.jitter == "equal":
            return d / 2.0 + rng.uniform(0.0, d / 2.0, size)
        previous = np.full(size, self.base)
        for _ in range(int(retry_index)):
            previous = np.minimum(self.cap, rng.uniform(self.base, np.maximum(self.base, 3.0 * previous)))
        return previous


# ----------------------------------------------------------------------------------------
# Mean-field equilibria of retrying systems
# ----------------------------------------------------------------------------------------


# Scan of the fixed-point map in p: uniform points plus geometric clusters at both ends,
# where the map is steepest (p near 1: queue near saturation). Roots are then polished by brentq.
_P_GRID = np.unique(np.concatenate([
    np.linspace(0.0, 1.0, 2001),
    np.geomspace(1e-12, 1e-2, 300),
    1.0 - np.geomspace(1e-12, 1e-2, 300),
]))
# Points of the load variable x (attempt rate or offered load) on which Psi(x) is scanned.
_X_UNIFORM = np.linspace(0.0, 1.0, 4001)
_X_END = np.geomspace(1e-12, 1e-3, 400)
_DERIVATIVE_STEP = 1e-6


@dataclass(frozen=True)
class Equilibrium:
    """One fixed point of the retry feedback loop ``p = F(arrival_rate * A(p))``.

    Attributes
    ----------
    arrival_rate : float
        Base rate of *requests* (``lambda0``), per unit time.
    failure_probability : float
        ``p``: probability that one attempt fails (times out, or is blocked).
    amplification : float
        Attempts per request, ``A(p)``.
    attempt_rate : float
        Attempts per unit time offered to the service, ``lambda0 * A(p)``.
    offered_load : float
        Offered load in Erlangs (queue: ``attempt_rate / service_rate``; pool: attempts times
        their mean holding time, connection set-up included).
    throughput : float
        Attempts the servers complete per unit time, timed-out ones included.
    goodput : float
        Requests that succeed per unit time: ``attempt_rate * (1 - p)`` (0 when collapsed).
    utilisation : float
        Share of server capacity in use (``throughput / (servers * service_rate)`` for the queue).
    slope : float
        ``d F(lambda0 A(p)) / dp`` at the fixed point; ``|slope| < 1`` means stable. Below -1
        the round-by-round dynamics oscillate (flapping).
    stable : bool
    state : str
        ``"healthy"`` (the stable state with the fewest failures), ``"degraded"`` (another
        interior stable state), ``"collapsed"`` (queue saturated, ``p = 1``), ``"throttled"``
        (held on an adaptive throttle's failure ceiling), ``"unstable"`` (slope > 1: the
        boundary between two basins) or ``"oscillating"`` (slope < -1, possible only when the
        amplification falls with p, as for a starving token bucket: each retry round
        overshoots the last, so the service flaps between better and worse).
    """

    arrival_rate: float
    failure_probability: float
    amplification: float
    attempt_rate: float
    offered_load: float
    throughput: float
    goodput: float
    utilisation: float
    slope: float
    stable: bool
    state: str

    def __repr__(self) -> str:
        return (
            f"Equilibrium({self.state}, arrival_rate={self.arrival_rate:.6g}, "
            f"failure_probability={self.failure_probability:.6g}, amplification={self.amplification:.6g}, "
            f"attempt_rate={self.attempt_rate:.6g}, goodput={self.goodput:.6g}, "
            f"throughput={self.throughput:.6g}, slope={self.slope:.4g}, stable={self.stable})"
        )


def equilibria_frame(equilibria) -> pd.DataFrame:
    """A tidy DataFrame (one row per equilibrium) from records of :class:`Equilibrium`."""
    columns = list(Equilibrium.__dataclass_fields__)
    return pd.DataFrame([asdict(e) for e in equilibria], columns=columns)


def _as_policy(policy) -> Any:
    if isinstance(policy, (FixedRetries, RetryBudget, TokenBucket, AdaptiveThrottle)):
        return policy
    if isinstance(policy, (int, np.integer)) and not isinstance(policy, bool):
        if policy < 0:
            raise ValueError(f"policy (max_retries) must be >= 0, got {policy}")
        return FixedRetries(int(policy))
    if all(hasattr(policy, name) for name in ("amplification", "limiter", "max_attempts")):
        return policy
    raise ValueError(f"policy must be a whole number of retries or a retry policy, got {policy!r}")


def _rate(name: str, value) -> float:
    value_array = as_array(name, value, minimum=0.0)
    if value_array.ndim != 0:
        raise ValueError(f"{name} must be a single number, got {value!r}")
    return float(value_array)


class _RetryFixedPoint:
    """Shared machinery: the fixed point ``p = F(x)``, ``x = lambda0 * load_per_request(A(p))``.

    ``x`` is the load variable of the service (attempt rate for the queue, offered Erlangs for
    the pool) and ``F`` its failure probability. Subclasses provide ``_failure(x)`` (vectorised),
    ``_x_of(arrival_rate, amplification)``, its inverse ``_amplification_of(arrival_rate, x)``,
    ``_x_limit`` (``x`` at which ``F`` reaches 1 for good, or inf) and ``_record``.

    The same equilibria are described by the curve ``Psi(x) = x / load_per_request(A(F(x)))``:
    ``x`` is an equilibrium for base rate ``lambda0`` exactly when ``Psi(x) = lambda0``, and the
    map's slope is ``1 - load_per_request * Psi'(x)``: tangency (slope 1) is an extremum of
    ``Psi``. The thresholds are read off that curve.
    """

    policy: Any
    _timed_out = False

    # -- the map ---------------------------------------------------------------------
    def _amplification(self, p):
        return np.asarray(self.policy.amplification(p, timed_out=self._timed_out), dtype=np.float64)

    def _ceiling(self) -> float | None:
        ceiling = getattr(self.policy, "failure_ceiling", None)
        return None if ceiling is None else float(ceiling)

    def _unthrottled_amplification(self, p):
        """Amplification just below a throttle's ceiling (its left limit)."""
        return _expected_attempts(np.atleast_1d(np.asarray(p, dtype=np.float64)),
                                  np.full(np.shape(np.atleast_1d(p)), float(self.policy.max_retries)))

    def _map(self, arrival_rate: float, p):
        """``F(lambda0 * load(A(p)))`` for an array of p."""
        p = np.atleast_1d(np.asarray(p, dtype=np.float64))
        x = self._x_of(arrival_rate, self._amplification(p))
        return self._failure(x)

    def _gap(self, arrival_rate: float, p: np.ndarray) -> np.ndarray:
        return self._map(arrival_rate, p) - p

    def _slope(self, arrival_rate: float, p: float) -> float:
        h = _DERIVATIVE_STEP
        low, high = max(0.0, p - h), min(1.0, p + h)
        values = self._map(arrival_rate, np.array([low, high]))
        return float((values[1] - values[0]) / (high - low))

    # -- roots -----------------------------------------------------------------------
    def _failure_probability_roots(self, arrival_rate: float) -> list[tuple[float, str]]:
        """All p in [0, 1] with F(lambda0 A(p)) = p, each tagged "root" or "throttled"."""
        ceiling = self._ceiling()
        grid = _P_GRID
        if ceiling is not None:
            grid = np.unique(np.concatenate([grid, [ceiling, np.nextafter(ceiling, 2.0)]]))
            grid = grid[grid <= 1.0]
        gap = self._gap(arrival_rate, grid)
        sign = np.sign(gap)
        roots: list[tuple[float, str]] = [(float(p), "root") for p in grid[sign == 0]]
        brackets = np.nonzero(sign[:-1] * sign[1:] < 0)[0]
        for i in brackets:
            a, b = float(grid[i]), float(grid[i + 1])
            if ceiling is not None and a <= ceiling < b:
                if gap[i] > 0 > gap[i + 1]:
                    roots.append((ceiling, "throttled"))
                continue
            root = optimize.brentq(lambda q: float(self._gap(arrival_rate, q)[0]), a, b,
                                   xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200)
            roots.append((float(root), "root"))
        return sorted(set(roots))

    def _solve_failure(self, target_p: float) -> float:
        """x with F(x) = target_p (F increasing in x)."""
        low, high = 0.0, self._x_limit
        if not math.isfinite(high):
            high = 1.0
            while float(self._failure(np.array([high]))[0]) < target_p:
                high *= 2.0
        return float(optimize.brentq(lambda x: float(self._failure(np.array([x]))[0]) - target_p,
                                     low, high, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=300))

    def equilibria(self, arrival_rate) -> tuple[Equilibrium, ...]:
        """Every equilibrium at base request rate ``arrival_rate``, sorted by failure probability.

        The fixed-point map is scanned on a fixed grid of p (uniform, plus geometric clusters
        near 0 and 1), each sign change of ``F(lambda0 A(p)) - p`` is polished with brentq and
        exact zeros on the grid (the collapsed state p = 1 of a saturated queue) are kept. A
        double root exactly at a tangency (one parameter value) can be missed; tests compare
        the result with a brute-force scan of a million points.
        """
        lam0 = _rate("arrival_rate", arrival_rate)
        found = self._failure_probability_roots(lam0)
        records = []
        for p, kind in found:
            if kind == "throttled":
                x = self._solve_failure(p)
                amplification = self._amplification_of(lam0, x)
                slope, stable = 0.0, True
            else:
                amplification = float(self._amplification(np.array([p]))[0])
                x = float(self._x_of(lam0, np.array([amplification]))[0])
                if p >= 1.0 and x >= self._x_limit:
                    # saturated: F = 1 on a neighbourhood of p = 1 (however narrow), so the map is flat;
                    # at x = c mu exactly the queue is critically loaded and its backlog does not drain
                    slope = 0.0
                else:
                    slope = self._slope(lam0, p)
                stable = abs(slope) < 1.0
            records.append((p, kind, amplification, x, slope, stable))
        states = []
        first_stable = True
        for p, kind, amplification, x, slope, stable in records:
            if kind == "throttled":
                state = "throttled"
            elif not stable:
                # slope > 1: a saddle between two basins; slope < -1: overshoots every round (flapping)
                state = "unstable" if slope > 0 else "oscillating"
            elif p >= 1.0:
                state = "collapsed"
            elif first_stable:
                state = "healthy"
            else:
                state = "degraded"
            if stable:
                first_stable = False
            states.append(state)
        return tuple(
            self._record(lam0, p, amplification, x, slope, stable, state)
            for (p, _, amplification, x, slope, stable), state in zip(records, states)
        )

    def equilibria_table(self, arrival_rates) -> pd.DataFrame:
        """Tidy DataFrame of the equilibria for each base rate (one row per equilibrium)."""
        rates = np.atleast_1d(as_array("arrival_rates", arrival_rates, minimum=0.0))
        frames = [equilibria_frame(self.equilibria(rate)) for rate in rates]
        return pd.concat(frames, ignore_index=True)

    def is_metastable(self, arrival_rate) -> bool:
        """True where two or more stable states coexist (a healthy one and a collapsed/degraded one)."""
        stable = [e for e in self.equilibria(arrival_rate) if e.stable]
        return len(stable) >= 2

    # -- thresholds from the Psi curve -------------------------------------------------
    def _x_end(self) -> tuple[float, bool]:
        """Right end of the x range scanned for Psi and whether it is a hard end (saturation/ceiling)."""
        ceiling = self._ceiling()
        if ceiling is not None and self._failure(np.array([0.0]))[0] < ceiling < 1.0:
            return self._solve_failure(ceiling), True
        if math.isfinite(self._x_limit):
            return self._x_limit, True
        # no saturation (loss system): go far enough that F is within 1e-9 of its limit
        return self._pool_x_end(), False

    def _psi(self, x) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        p = self._failure(x)
        amplification = self._amplification(p)
        ceiling = self._ceiling()
        if ceiling is not None:
            amplification = np.where(p <= ceiling, amplification,
                                     self._unthrottled_amplification(np.minimum(p, ceiling)))
        return self._arrival_rate_for(x, amplification)

    def _psi_derivative(self, x: float) -> float:
        h = _DERIVATIVE_STEP * max(1.0, abs(x))
        values = self._psi(np.array([x - h, x + h]))
        return float((values[1] - values[0]) / (2 * h))

    def _psi_extrema(self) -> tuple[list[float], list[float], float]:
        """Values of Psi at its local maxima and minima (tangencies), and its value at the right end."""
        x_end, hard = self._x_end()
        if hard:
            x = np.unique(np.concatenate([x_end * _X_UNIFORM, x_end * (1.0 - _X_END)]))
            x = x[x < x_end]
        else:
            x = self._psi_grid()
        psi = self._psi(x)
        step = np.sign(np.diff(psi))
        maxima, minima = [], []
        for i in np.nonzero(step[:-1] * step[1:] < 0)[0]:
            a, b = float(x[i]), float(x[i + 2])
            is_max = step[i] > 0
            try:
                # the tangency condition: d Psi / dx = 0, i.e. the map's slope equals 1
                root = optimize.brentq(self._psi_derivative, a, b, xtol=1e-13 * max(1.0, b))
                value = float(self._psi(np.array([root]))[0])
            except ValueError:  # derivative sign not resolved by differences: take the grid extreme
                value = float(psi[i + 1])
            (maxima if is_max else minima).append(value)
        end_value = float(self._psi(np.array([x_end]))[0]) if hard else math.inf
        return maxima, minima, end_value

    def onset_threshold(self) -> float:
        """Base request rate above which the healthy state no longer exists (saddle-node).

        It is the first local maximum of ``Psi`` (where the healthy branch folds over), found by
        root finding on the tangency condition; without a fold, the rate at which the healthy
        branch reaches saturation.

        Both thresholds mark folds (map slope +1). Where the amplification falls with ``p`` (a
        starving :class:`TokenBucket`) a state can also turn ``"oscillating"`` (slope below -1)
        without a fold: e.g. ``TokenBucket.simple()`` on ``c = 10, mu = 1, timeout = 2``
        oscillates from ``lambda0 ~ 9.54`` while this threshold is ``c mu = 10``. Check the
        states of :meth:`equilibria` (or the verdicts of :func:`metastability_map`) for that.
        """
        maxima, _, end_value = self._psi_extrema()
        return maxima[0] if maxima else end_value

    def recovery_threshold(self) -> float:
        """Base request rate below which only the healthy state exists.

        The lowest base rate at which a second stable state (collapsed, degraded or throttled)
        exists: the minimum of ``Psi`` beyond its first fold and its value at saturation. Load
        must be shed below this to leave a collapsed state. For a saturating queue with a fixed
        cap of ``r`` retries the collapsed state ``p = 1`` needs ``lambda0 (r + 1) >= c mu``, so
        the threshold is ``c mu / (r + 1)`` whenever no interior degraded state reaches lower.
        Read off the folds of the equilibrium curve, so for a token bucket the second state that
        appears there may be an ``"oscillating"`` one rather than a stable one (see
        :meth:`onset_threshold`).
        """
        maxima, minima, end_value = self._psi_extrema()
        if not maxima:
            return end_value
        return min([end_value, *minima])


@dataclass(frozen=True)
class TippingPoint:
    """Smallest surge that tips a healthy retrying queue into collapse (fluid approximation).

    Attributes
    ----------
    arrival_rate : float
        Base request rate after the surge.
    surge_multiple : float
        Request rate during the surge, as a multiple of ``arrival_rate``.
    healthy_backlog : float
        Requests in system in the healthy fluid state before the surge.
    critical_backlog : float
        Backlog of the unstable fluid state: beyond it the retry-inflated load exceeds capacity
        and the backlog keeps growing after the surge ends (inf if no collapse is possible).
    min_duration : float
        Shortest surge after which the backlog runs away, in the delayed fluid model (0: no
        healthy state even without a surge; inf: this surge never tips the system).
    quasi_static_duration : float
        The same in the delay-free fluid ODE: time for the surged drift to carry the backlog
        from ``healthy_backlog`` to ``critical_backlog``.
    extra_requests : float
        Requests the shortest tipping surge adds: ``(surge_multiple - 1) * arrival_rate * min_duration``.
    tips : bool
        Whether a long enough surge of this size tips the system.
    """

    arrival_rate: float
    surge_multiple: float
    healthy_backlog: float
    critical_backlog: float
    min_duration: float
    quasi_static_duration: float
    extra_requests: float
    tips: bool

    def __repr__(self) -> str:
        return (
            f"TippingPoint(arrival_rate={self.arrival_rate:.6g}, surge_multiple={self.surge_multiple:.6g}, "
            f"healthy_backlog={self.healthy_backlog:.6g}, critical_backlog={self.critical_backlog:.6g}, "
            f"min_duration={self.min_duration:.6g}, quasi_static_duration={self.quasi_static_duration:.6g}, "
            f"extra_requests={self.extra_requests:.6g}, tips={self.tips})"
        )


@dataclass(frozen=True)
class RetryingQueue(_RetryFixedPoint):
    """An M/M/c queue whose clients time out and retry: the mean-field retry-storm model.

    ``servers`` servers with service rate ``service_rate`` (``c``, ``mu``) serve attempts FCFS
    from an infinite queue. Requests arrive at base rate ``lambda0``. A client gives up on an
    attempt whose response time (wait + service) exceeds ``timeout`` and retries it under
    ``policy``; the abandoned attempt still occupies a server when its turn comes (the server
    does not know the client left), so a saturated queue has high throughput and near-zero
    goodput -- "up, but down".

    Mean field: each attempt fails independently with probability
    ``p = F(lambda) = P(W + S > timeout)`` of M/M/c at the total attempt rate
    ``lambda = lambda0 * A(p)`` (:func:`reliability.erlang.response_time_sf`), and ``p = 1``
    where ``lambda >= c mu`` (no steady state: the backlog grows without bound). Equilibria are
    the fixed points ``p = F(lambda0 A(p))``. Treating attempts as Poisson and their failures as
    independent is the approximation; the simulator (:mod:`reliability.simulate`) checks it.
    Client backoff delays retries but does not change these steady-state rates.

    The collapsed state ``p = 1`` exists exactly when ``lambda0 * A(1) >= c mu``; for a fixed
    cap of ``r`` retries that is ``lambda0 >= c mu / (r + 1)``, the recovery threshold (load
    must be shed below it to recover). The healthy state exists below the onset threshold
    (the fold of the healthy branch). Between the two the queue is metastable. With
    ``c = 10, mu = 1, timeout = 2, r = 3`` that is ``0.25 <= lambda0 / (c mu) < 0.661``; in
    simulation the healthy state at ``0.4 c mu`` outlives a 2000 s run, while at ``0.5 c mu``
    queueing noise alone tips it within about 10^3 s -- metastable states have finite lifetimes
    that this mean-field model does not give.

    Parameters
    ----------
    servers : int
        ``c >= 1``.
    service_rate : float
        ``mu > 0`` per server.
    timeout : float
        Client timeout ``> 0`` on the response time of an attempt.
    policy : int or retry policy, optional
        A whole number ``r`` means :class:`FixedRetries` ``(r)``. Default 3.

    Examples
    --------
    >>> queue = RetryingQueue(servers=10, service_rate=1.0, timeout=2.0, policy=3)
    >>> [e.state for e in queue.equilibria(5.0)]
    ['healthy', 'unstable', 'collapsed']
    >>> queue.recovery_threshold()   # c mu / (r + 1)
    2.5
    """

    servers: int
    service_rate: float
    timeout: float
    policy: Any = 3

    _timed_out = True  # every failure of this model is a client timeout

    def __post_init__(self):
        servers = self.servers
        if isinstance(servers, bool) or not isinstance(servers, (int, np.integer, float, np.floating)) \
                or not math.isfinite(servers) or servers < 1 or servers != math.floor(servers):
            raise ValueError(f"servers must be a whole number >= 1, got {servers!r}")
        object.__setattr__(self, "servers", int(servers))
        _check_number("RetryingQueue", "service_rate", self.service_rate, strict=True)
        _check_number("RetryingQueue", "timeout", self.timeout, strict=True)
        object.__setattr__(self, "service_rate", float(self.service_rate))
        object.__setattr__(self, "timeout", float(self.timeout))
        object.__setattr__(self, "policy", _as_policy(self.policy))

    @property
    def capacity(self) -> float:
        """``c mu``: attempts per unit time the servers can complete."""
        return self.servers * self.service_rate

    @property
    def _x_limit(self) -> float:
        return self.capacity

    def _failure(self, attempt_rate):
        load = np.asarray(attempt_rate, dtype=np.float64) / self.service_rate
        return np.asarray(response_time_sf(self.servers, load, self.timeout, self.service_rate), dtype=np.float64)

    def _x_of(self, arrival_rate, amplification):
        return arrival_rate * np.asarray(amplification, dtype=np.float64)

    def _amplification_of(self, arrival_rate: float, attempt_rate: float) -> float:
        return attempt_rate / arrival_rate if arrival_rate > 0 else 0.0

    def _arrival_rate_for(self, attempt_rate, amplification):
        with np.errstate(divide="ignore"):
            return np.where(amplification > 0, attempt_rate / np.where(amplification > 0, amplification, 1.0), np.inf)

    def _record(self, arrival_rate, p, amplification, attempt_rate, slope, stable, state) -> Equilibrium:
        throughput = min(attempt_rate, self.capacity)
        goodput = 0.0 if p >= 1.0 else attempt_rate * (1.0 - p)
        return Equilibrium(
            arrival_rate=arrival_rate, failure_probability=p, amplification=amplification,
            attempt_rate=attempt_rate, offered_load=attempt_rate / self.service_rate,
            throughput=throughput, goodput=goodput, utilisation=throughput / self.capacity,
            slope=slope, stable=bool(stable), state=state,
        )

    # -- fluid model of a surge --------------------------------------------------------
    def _conditional_failure(self, backlog):
        """P(response > timeout) for an attempt that finds ``backlog`` requests in the system.

        With ``Q >= c`` it waits for ``n = Q - c + 1`` departures at rate ``c mu`` (a Gamma(n, c mu)
        wait) and then an Exp(mu) service:
        ``P = Q(n, c mu T) + e^{-mu T} (c/(c-1))^n P(n, (c-1) mu T)`` (regularised incomplete gamma
        functions; ``(mu T)^n / n!`` replaces the second factor when ``c = 1``). ``Q`` is
        continuous in the fluid model, and so is ``n = max(0, Q - c + 1)``.
        """
        q = np.atleast_1d(np.asarray(backlog, dtype=np.float64))
        c, mu, t = self.servers, self.service_rate, self.timeout
        n = np.maximum(q - c + 1.0, 0.0)
        out = np.full(q.shape, math.exp(-mu * t))
        waiting = n > 0
        if waiting.any():
            nw = n[waiting]
            tail = special.gammaincc(nw, c * mu * t)
            if c == 1:
                log_term = -mu * t + nw * math.log(mu * t) - special.gammaln(nw + 1.0)
                term = np.exp(np.minimum(log_term, 0.0))
            else:
                lower = special.gammainc(nw, (c - 1) * mu * t)
                term = np.zeros(nw.shape)
                positive = lower > 0
                log_term = -mu * t + nw[positive] * math.log(c / (c - 1.0)) + np.log(lower[positive])
                term[positive] = np.exp(np.minimum(log_term, 0.0))
            out[waiting] = np.minimum(1.0, tail + term)
        return out

    def _fluid_drift(self, backlog, arrival_rate: float):
        q = np.atleast_1d(np.asarray(backlog, dtype=np.float64))
        p = self._conditional_failure(q)
        return arrival_rate * self._amplification(p) - self.service_rate * np.minimum(q, self.servers)

    def _fluid_backlog_grid(self) -> np.ndarray:
        c, mu, t = self.servers, self.service_rate, self.timeout
        # beyond this backlog the wait alone exceeds the timeout with overwhelming probability
        top = c + 2.0 * c * mu * t + 12.0 * math.sqrt(c * mu * t) + 50.0
        return np.linspace(0.0, top, 20001)

    def fluid_equilibria(self, arrival_rate) -> tuple[float, ...]:
        """Backlogs at which the fluid model is at rest (``d Q / dt = 0``) for a base rate."""
        lam0 = _rate("arrival_rate", arrival_rate)
        grid = self._fluid_backlog_grid()
        drift = self._fluid_drift(grid, lam0)
        roots = []
        sign = np.sign(drift)
        for i in np.nonzero(sign[:-1] * sign[1:] < 0)[0]:
            roots.append(float(optimize.brentq(lambda q: float(self._fluid_drift(q, lam0)[0]),
                                               grid[i], grid[i + 1], xtol=1e-12)))
        roots.extend(float(q) for q in grid[sign == 0])
        return tuple(sorted(roots))

    def _quasi_static_tipping(self, lam0: float, multiple: float):
        """(healthy backlog, critical backlog, surge duration) of the delay-free fluid ODE."""
        roots = self.fluid_equilibria(lam0)
        if float(self._fluid_drift(0.0, lam0)[0]) > 0 and not roots:
            return math.inf, math.inf, 0.0  # no healthy state: the backlog grows anyway
        healthy = roots[0]
        later = [q for q in roots[1:] if float(self._fluid_drift(q + 1e-6 * max(1.0, q), lam0)[0]) > 0]
        if not later:
            return healthy, math.inf, math.inf
        critical = later[0]
        grid = self._fluid_backlog_grid()
        path = grid[(grid > healthy) & (grid < critical)]
        surged = self._fluid_drift(np.concatenate([[healthy], path, [critical]]), multiple * lam0)
        if (surged <= 0).any():
            return healthy, critical, math.inf
        duration, _ = integrate.quad(lambda q: 1.0 / float(self._fluid_drift(q, multiple * lam0)[0]),
                                     healthy, critical, limit=200, epsabs=0.0, epsrel=1e-10)
        return healthy, critical, float(duration)

    def _retry_share_table(self, p: np.ndarray) -> np.ndarray:
        """y(p): retries sent per failed attempt, times p, so that generations reproduce A(p).

        Attempt ``k+1`` of a request is sent at rate ``y`` times attempt ``k``'s; for
        :class:`FixedRetries` ``y = p``. For a budget or bucket, ``y <= p`` solves
        ``expected_attempts(y, r) = A(p)`` (the policy thins every generation alike).
        """
        if isinstance(self.policy, FixedRetries):
            return p.copy()
        r = np.full_like(p, float(self.policy.max_retries))
        target = self._amplification(p)
        low, high = np.zeros_like(p), p.copy()
        for _ in range(60):  # vectorised bisection: expected_attempts is increasing in y
            mid = 0.5 * (low + high)
            above = _expected_attempts(mid, r) > target
            high = np.where(above, mid, high)
            low = np.where(above, low, mid)
        return 0.5 * (low + high)

    def _delayed_fluid_collapses(self, lam0, multiple, duration, healthy, critical, delays, tables) -> bool:
        """Run the delayed fluid model through a surge of ``duration``; True if the backlog runs away."""
        backlog_grid, share_of_backlog, dt, sure = tables
        cell = backlog_grid[1] - backlog_grid[0]
        # integral of the share over the backlog, to average it over the backlogs one step passes through
        integral = np.concatenate([[0.0], np.cumsum(0.5 * (share_of_backlog[1:] + share_of_backlog[:-1]) * cell)])
        c, mu = self.servers, self.service_rate
        generations = len(delays)  # retries 1..r
        lag = np.asarray(delays)
        history = int(lag.max()) if generations else 0
        settle = duration + 2.0 * (generations + 1) * (history * dt + self.timeout)
        horizon = settle + 40.0 * (self.timeout + history * dt) + 20.0 / mu
        steps = int(math.ceil(horizon / dt))
        share_h = float(np.interp(healthy, backlog_grid, share_of_backlog))
        rates = np.zeros((generations + 1, history + steps + 1))
        shares = np.empty(history + steps + 1)
        steady = lam0 * share_h ** np.arange(generations + 1)
        rates[:, : history + 1] = steady[:, None]
        shares[: history + 1] = share_h
        q = healthy
        near = healthy + 0.05 * (critical - healthy)
        rows = np.arange(1, generations + 1)
        for i in range(history, history + steps):
            t = (i - history) * dt
            # mean request rate over [t, t + dt]: the step in which the surge ends gets its share, so
            # the surge adds exactly (multiple - 1) lam0 duration requests, whatever its length against dt
            surged = min(max((duration - t) / dt, 0.0), 1.0)
            rates[0, i] = lam0 * (1.0 + (multiple - 1.0) * surged)
            if generations:
                source = i - lag
                rates[rows, i] = rates[rows - 1, source] * shares[source]
            arriving = rates[:, i].sum()
            before = q
            if q >= c:
                q = q + dt * (arriving - c * mu)
            else:  # implicit in the linear service term: stable for any step
                q = (q + dt * arriving) / (1.0 + mu * dt)
            q = max(q, 0.0)
            # the attempts sent in this step find backlogs from `before` to `q` (FCFS: each sees those
            # ahead of it), so their retry share is the mean over that range -- not its value at the
            # start, which would let a burst arriving within one step see the pre-burst queue
            if abs(q - before) <= cell:
                shares[i] = np.interp(0.5 * (before + q), backlog_grid, share_of_backlog)
            else:
                ends = np.interp([before, q], backlog_grid, integral)
                shares[i] = (ends[1] - ends[0]) / (q - before)
            if q > sure:
                return True
            if t > settle and q < near:
                return False
        return q > critical

    def tipping_trigger(self, arrival_rate, surge_multiple, *, backoff: "Backoff | None" = None,
                        rtol: float = 1e-3) -> TippingPoint:
        """Smallest surge (``surge_multiple`` x ``arrival_rate`` for a while) that leaves the queue collapsed.

        Fluid model of the backlog ``Q`` (requests in system, abandoned attempts included):
        ``dQ/dt = (attempts arriving) - mu min(Q, c)``. An attempt sent when the backlog is ``Q``
        times out with the exact probability :meth:`_conditional_failure` ``p(Q)`` (FCFS: its wait
        depends only on who is ahead of it), and its retry arrives ``timeout`` (plus the mean
        backoff of that retry, if ``backoff`` is given) later. Retries are tracked by generation,
        so the model is a delay differential equation, integrated with a step of
        ``timeout / 40`` (the attempts of one step see the mean ``p`` over the backlogs it passes
        through, and a surge may end within a step, so surges shorter than a step, down to an
        impulse, are resolved); queue fluctuations are averaged out (that is the approximation). Its
        rest points are those of the delay-free ODE ``dQ/dt = lambda0 A(p(Q)) - mu min(Q, c)``:
        the healthy backlog ``Q_h`` and, above it, the unstable ``Q_u`` beyond which the
        retry-inflated load exceeds ``c mu``. The smallest surge duration after which the
        backlog runs away (to where every attempt times out) is found by bisection to ``rtol``.

        ``quasi_static_duration`` is the same question for the delay-free ODE (retries sent at
        once): ``integral_{Q_h}^{Q_u} dQ / drift(Q)``. It underestimates the trigger, because a
        surge shorter than a timeout has not yet produced its retries.

        The fluid model's healthy state fails less than the M/M/c equilibrium (no queueing
        variability) and ignores that noise alone can tip a metastable queue; check against
        :func:`reliability.simulate.simulate_retrying_queue`. For a budget or token bucket each
        retry generation is thinned alike to reproduce the policy's steady-state amplification;
        :class:`AdaptiveThrottle` is not supported.
        """
        lam0 = _rate("arrival_rate", arrival_rate)
        multiple = float(as_array("surge_multiple", surge_multiple, minimum=1.0))
        tolerance = float(as_array("rtol", rtol, minimum=0.0, strict_minimum=True))
        if isinstance(self.policy, AdaptiveThrottle):
            raise ValueError("policy must not be an AdaptiveThrottle for tipping_trigger "
                             f"(it rejects first attempts, which the fluid model does not follow), got {self.policy!r}")
        if backoff is not None and (not isinstance(backoff, Backoff) or backoff.jitter == "decorrelated"):
            raise ValueError("backoff must be None or a Backoff with jitter 'none', 'full' or 'equal' (the fluid "
                             f"model delays each retry generation by its mean backoff), got {backoff!r}")
        healthy, critical, quasi = self._quasi_static_tipping(lam0, multiple)

        def result(duration):
            if duration == 0.0:
                extra = 0.0
            else:
                extra = (multiple - 1.0) * lam0 * duration if math.isfinite(duration) else math.inf
            return TippingPoint(lam0, multiple, healthy, critical, duration, quasi, extra, math.isfinite(duration))

        if quasi == 0.0 or not math.isfinite(critical) or multiple == 1.0:
            return result(quasi if multiple > 1.0 or quasi == 0.0 else math.inf)

        r = int(self.policy.max_retries)
        extra_delay = [float(backoff.mean(k)) if backoff is not None else 0.0 for k in range(1, r + 1)]
        dt = self.timeout / 40.0
        delays = [max(1, int(round((self.timeout + b) / dt))) for b in extra_delay]
        backlog_grid = self._fluid_backlog_grid()
        failure = self._conditional_failure(backlog_grid)
        shares = self._retry_share_table(failure)
        # past this backlog every attempt times out (p within 1e-6 of 1): the storm feeds itself
        certain = backlog_grid[failure >= 1.0 - 1e-6]
        sure = max(float(certain[0]) if certain.size else backlog_grid[-1], critical) * 1.5 + 1.0
        tables = (backlog_grid, shares, dt, sure)

        def collapses(duration):
            return self._delayed_fluid_collapses(lam0, multiple, duration, healthy, critical, delays, tables)

        if not math.isfinite(quasi):
            return result(math.inf)  # the surge's own rest point lies below Q_u
        low, high = 0.0, max(quasi, dt)
        for _ in range(40):
            if collapses(high):
                break
            low, high = high, 2.0 * high
        else:
            return result(math.inf)
        for _ in range(200):  # bisection to rtol; the cap only guards against a non-monotone case
            if high - low <= tolerance * high:
                break
            mid = 0.5 * (low + high)
            if collapses(mid):
                high = mid
            else:
                low = mid
        return result(high)

@dataclass(frozen=True)
class RetryingConnectionPool(_RetryFixedPoint):
    """A database with at most ``connections`` connections, hit by retried connection attempts.

    A loss system (M/G/c/c): an attempt that finds every connection slot taken is refused at
    once and retried under ``policy``; an accepted attempt holds its slot for its service
    (mean ``1 / service_rate``) plus ``setup_time`` if it opens a new connection. A share
    ``new_connection_fraction`` of first attempts opens a new connection; a retry of a refused
    attempt has no connection yet, so it opens one too (``retries_need_new_connection=True``)
    or, if False, reuses with the same share as first attempts. The mean holding time therefore
    grows with the share of retries -- the Proton trigger, a sharp rise in new database
    connections. Blocking is Erlang B (insensitive to the holding-time distribution) at offered
    load ``a = lambda0 * (A / mu + setup_time * new(A))`` with
    ``new(A) = f + (A - 1) * (1 or f)`` new connections per request, so the fixed point is
    ``p = B(connections, a(A(p)))``.

    The mean field treats every retry as an independent Poisson arrival, which needs retries
    spread out by a backoff comparable to the holding time. Retries sent at once into a full
    pool meet the same busy slots and are refused together: in simulation (20 connections,
    set-up 10x the service time) a 4x surge then leaves no storm behind, while with a
    ``Backoff(2, 20, "full")`` the pool settles in the degraded state this model predicts
    (failures 0.873 simulated against 0.876, goodput 2.53 against 2.47 per second).

    Unlike a saturating queue, Erlang B is smooth and below 1, so there is no ``p = 1``
    state: bistability needs the feedback slope ``dB/da * da/dp`` to exceed 1 somewhere,
    which takes a steep B (many connections) and a strong feedback (set-up time large
    against the service time). Far above capacity ``B ~ 1 - c/a`` and the slope tends to
    ``(1 - p) A'(p) / A(p) < 1``: a pure retry loop on a loss system is *not* bistable there.

    Examples
    --------
    >>> pool = RetryingConnectionPool(100, service_rate=1.0, setup_time=0.0, new_connection_fraction=0.0, policy=3)
    >>> len(pool.equilibria(80.0))   # without set-up cost: a single, healthy state
    1
    """

    connections: int
    service_rate: float
    setup_time: float
    new_connection_fraction: float
    policy: Any = 3
    retries_need_new_connection: bool = True

    def __post_init__(self):
        connections = self.connections
        if isinstance(connections, bool) or not isinstance(connections, (int, np.integer, float, np.floating)) \
                or not math.isfinite(connections) or connections < 1 or connections != math.floor(connections):
            raise ValueError(f"connections must be a whole number >= 1, got {connections!r}")
        object.__setattr__(self, "connections", int(connections))
        _check_number("RetryingConnectionPool", "service_rate", self.service_rate, strict=True)
        _check_number("RetryingConnectionPool", "setup_time", self.setup_time)
        _check_number("RetryingConnectionPool", "new_connection_fraction", self.new_connection_fraction)
        if self.new_connection_fraction > 1.0:
            raise ValueError(
                f"RetryingConnectionPool.new_connection_fraction must be <= 1, got {self.new_connection_fraction!r}"
            )
        if not isinstance(self.retries_need_new_connection, bool):
            raise ValueError("RetryingConnectionPool.retries_need_new_connection must be True or False, "
                             f"got {self.retries_need_new_connection!r}")
        for name in ("service_rate", "setup_time", "new_connection_fraction"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "policy", _as_policy(self.policy))

    _x_limit = math.inf

    @property
    def _retry_new_share(self) -> float:
        return 1.0 if self.retries_need_new_connection else self.new_connection_fraction

    def _new_connections(self, amplification):
        """New connections per request when it makes ``amplification`` attempts on average.

        ``f + (A - 1) g`` for ``A >= 1``; below 1 (an adaptive throttle turning away first
        attempts locally) only the share ``A`` of first attempts is sent: ``A f``.
        """
        a = np.asarray(amplification, dtype=np.float64)
        return self.new_connection_fraction * np.minimum(a, 1.0) + np.maximum(a - 1.0, 0.0) * self._retry_new_share

    def mean_holding_time(self, amplification) -> float:
        """Mean slot holding time of an attempt when requests make ``amplification`` attempts."""
        a = np.asarray(amplification, dtype=np.float64)
        # at A = 0 nothing is sent; the limit A -> 0 is the holding time of a first attempt
        per_attempt = np.where(a >= 1.0, self._new_connections(a) / np.where(a > 0, a, 1.0),
                               self.new_connection_fraction)
        out = 1.0 / self.service_rate + self.setup_time * per_attempt
        return float(out) if out.ndim == 0 else out

    def _load_per_request(self, amplification):
        a = np.asarray(amplification, dtype=np.float64)
        return a / self.service_rate + self.setup_time * self._new_connections(a)

    def _failure(self, offered_load):
        return np.asarray(erlang_b(self.connections, np.asarray(offered_load, dtype=np.float64)), dtype=np.float64)

    def _x_of(self, arrival_rate, amplification):
        return arrival_rate * self._load_per_request(amplification)

    def _amplification_of(self, arrival_rate: float, offered_load: float) -> float:
        g, f, s = self._retry_new_share, self.new_connection_fraction, self.setup_time
        per_request = offered_load / arrival_rate if arrival_rate > 0 else 0.0
        first = 1.0 / self.service_rate + s * f  # load of a request that makes exactly one attempt
        if per_request <= first:
            return per_request / first
        return (per_request - s * (f - g)) / (1.0 / self.service_rate + s * g)

    def _arrival_rate_for(self, offered_load, amplification):
        return offered_load / self._load_per_request(amplification)

    def _pool_x_end(self) -> float:
        # past this load B is within a few % of 1 - c/a and the map's slope is below 1 (see class notes)
        attempts = float(self.policy.max_attempts)
        return 50.0 * self.connections * attempts * (1.0 + self.setup_time * self.service_rate) + 100.0

    def _psi_grid(self) -> np.ndarray:
        return np.geomspace(1e-3 * self.connections, self._pool_x_end(), 8001)

    def _record(self, arrival_rate, p, amplification, offered_load, slope, stable, state) -> Equilibrium:
        attempt_rate = arrival_rate * amplification
        carried = attempt_rate * (1.0 - p)
        return Equilibrium(
            arrival_rate=arrival_rate, failure_probability=p, amplification=amplification,
            attempt_rate=attempt_rate, offered_load=offered_load, throughput=carried, goodput=carried,
            utilisation=offered_load * (1.0 - p) / self.connections,
            slope=slope, stable=bool(stable), state=state,
        )


def _verdict(equilibria) -> str:
    stable = [e for e in equilibria if e.stable]
    if len(stable) >= 2:
        return "metastable"
    if not stable:
        if any(e.state == "oscillating" for e in equilibria):
            return "oscillating"
        return "unstable"  # only at an exact tangency
    state = stable[0]
    if state.state in ("collapsed", "throttled"):
        return state.state
    return "overloaded" if state.failure_probability >= 0.5 else "healthy"


def metastability_map(servers, service_rate, timeout, load_shares, max_retries=(0, 1, 2, 3, 5),
                      policy_factory=None) -> pd.DataFrame:
    """Verdict of a retrying M/M/c queue over base load share x retry cap (tidy, one row per point).

    Parameters
    ----------
    servers, service_rate, timeout :
        The queue (see :class:`RetryingQueue`).
    load_shares : array_like
        Base request rate as a share of capacity, ``lambda0 / (c mu)``, each >= 0.
    max_retries : sequence of int
        Retry caps to sweep.
    policy_factory : callable, optional
        ``policy_factory(r)`` gives the policy for cap ``r`` (default :class:`FixedRetries`).

    Returns
    -------
    pandas.DataFrame
        Columns ``max_retries, load_share, arrival_rate, equilibria, stable_equilibria, verdict``
        (``healthy``: one stable state, most attempts succeed; ``overloaded``: one stable state,
        most attempts fail; ``metastable``: a healthy and a failed stable state coexist;
        ``collapsed``: only the saturated state; ``throttled``: only the throttled state;
        ``oscillating``: no stable state, the service flaps (starving token bucket);
        ``unstable``: no stable state at all, only at an exact tangency),
        ``healthy_failure_probability`` and ``healthy_goodput_share`` (NaN where no healthy
        state exists), and the analytic boundary for that cap: ``onset_share`` and
        ``recovery_share`` (thresholds divided by ``c mu``).

    Examples
    --------
    >>> frame = metastability_map(10, 1.0, 2.0, [0.2, 0.5, 0.99], max_retries=[0, 3])
    >>> frame.verdict.tolist()
    ['healthy', 'healthy', 'overloaded', 'healthy', 'metastable', 'collapsed']
    """
    shares = np.atleast_1d(as_array("load_shares", load_shares, minimum=0.0))
    caps = [int(as_array("max_retries", r, minimum=0.0, integer=True)) for r in np.atleast_1d(max_retries)]
    factory = FixedRetries if policy_factory is None else policy_factory
    rows = []
    for r in caps:
        queue = RetryingQueue(servers, service_rate, timeout, factory(r))
        capacity = queue.capacity
        onset = queue.onset_threshold() / capacity
        recovery = queue.recovery_threshold() / capacity
        for share in shares:
            equilibria = queue.equilibria(share * capacity)
            healthy = [e for e in equilibria if e.state == "healthy"]
            rows.append({
                "max_retries": r,
                "load_share": float(share),
                "arrival_rate": float(share * capacity),
                "equilibria": len(equilibria),
                "stable_equilibria": sum(e.stable for e in equilibria),
                "verdict": _verdict(equilibria),
                "healthy_failure_probability": healthy[0].failure_probability if healthy else np.nan,
                "healthy_goodput_share": (healthy[0].goodput / (share * capacity)
                                          if healthy and share > 0 else np.nan),
                "onset_share": onset,
                "recovery_share": recovery,
            })
    return pd.DataFrame(rows)
