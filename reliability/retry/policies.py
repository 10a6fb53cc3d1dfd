"""What clients do with a failed attempt: the retry policies and the one policy parser (backoff: :mod:`.backoff`).

Every policy is a frozen dataclass that answers every question the package asks of it
through its own methods, so no caller branches on its type:

* ``amplification(p_fail, timed_out=False)``: steady-state attempts per request that reach
  the server when each attempt fails independently with probability ``p_fail`` (the mean-field
  models: :mod:`.queue`, :mod:`.pool`, :mod:`reliability.headroom`);
* ``step_gate(request_rates, time_step, population)``: its state in a time-stepped model
  (:mod:`.gates`, driven by :mod:`reliability.dynamics`); ``time_scales``: the windows that
  model's step must resolve;
* ``limiter()``: its state for one client population in the discrete-event simulator
  (:mod:`.limiters`, driven by :mod:`reliability.simulate`);
* ``retry_share(p_fail, timed_out=False)``: the per-generation retry share of the fluid model
  (:mod:`.fluid`); ``failure_ceiling``: the failure probability at which the policy starts
  rejecting first attempts (None for a policy that never does), so the fixed-point scan
  brackets the jump there; ``throttles_first_attempts``;
* ``max_attempts`` and ``with_max_retries(r)``.

:func:`parse_policy` turns a number of retries or a short string (notebook parameters) into a
policy; every model that takes a policy reads it through it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .._validate import ArgumentTypeError, as_array, describe, is_scalar, number, output, probability, whole
from .amplification import MAX_RETRIES, _expected_attempts
from .gates import BucketGate, BudgetGate, OpenGate, ThrottleGate
from .backoff import Backoff
from .limiters import BucketLimiter, BudgetLimiter, ThrottleLimiter, UnlimitedLimiter

__all__ = ["FixedRetries", "RetryBudget", "TokenBucket", "AdaptiveThrottle", "Backoff", "parse_policy",
           "step_gate", "thinned_retry_share"]


def _set_number(policy, name: str, *, minimum: float = 0.0, strict: bool = False) -> None:
    """Check a numeric field of a frozen policy and store it as a float."""
    value = number(f"{type(policy).__name__}.{name}", getattr(policy, name), minimum=minimum, strict=strict)
    object.__setattr__(policy, name, value)


def _set_count(policy, name: str) -> None:
    """Check a whole-number field (0 to :data:`MAX_RETRIES`) of a frozen policy and store it as an int."""
    object.__setattr__(policy, name, whole(f"{type(policy).__name__}.{name}", getattr(policy, name),
                                           maximum=MAX_RETRIES))


def _set_flag(policy, name: str) -> None:
    value = getattr(policy, name)
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{type(policy).__name__}.{name} must be True or False, got {describe(value)}")
    object.__setattr__(policy, name, bool(value))


def _wanted(policy, p_fail):
    """(scalar input?, p, attempts the clients want to send: expected_attempts(p, max_retries))."""
    scalar = is_scalar(p_fail)
    p = probability("p_fail", p_fail)
    return scalar, p, _expected_attempts(p, np.full_like(p, float(policy.max_retries)))


def thinned_retry_share(policy, p_fail: np.ndarray, *, timed_out: bool = False) -> np.ndarray:
    """``y <= p`` with ``expected_attempts(y, r) = A(p)``: each retry generation thinned alike.

    A policy that grants fewer retries than a fixed cap reproduces its steady-state
    amplification ``A(p)`` in a generation model when attempt ``k + 1`` is sent at ``y`` times
    the rate of attempt ``k``. Found by a vectorised bisection (``expected_attempts`` is
    increasing in ``y``); works for any policy with ``amplification`` and ``max_attempts``.
    """
    p = probability("p_fail", p_fail)
    r = np.full_like(p, float(policy.max_attempts - 1))
    target = np.asarray(policy.amplification(p, timed_out=timed_out), dtype=np.float64)
    low, high = np.zeros_like(p), p.copy()
    with np.errstate(under="ignore"):  # halving towards a tiny p: underflow to 0 is the answer
        for _ in range(60):  # bracket [0, p], halved 60 times: below 1e-18 of p
            mid = 0.5 * (low + high)
            above = _expected_attempts(mid, r) > target
            high = np.where(above, mid, high)
            low = np.where(above, low, mid)
        return 0.5 * (low + high)


class _Policy:
    """The answers every policy shares; each policy overrides what it does differently."""

    #: Failure probability beyond which the policy rejects first attempts (None: it never does).
    failure_ceiling = None
    #: Whether the policy turns away first attempts locally (the fluid model cannot follow that).
    throttles_first_attempts = False
    #: (label, seconds) of the windows a time-stepped model must resolve.
    time_scales: tuple = ()

    @property
    def max_attempts(self) -> int:
        return int(self.max_retries) + 1

    def with_max_retries(self, max_retries: int):
        """The same policy with another retry cap."""
        return dataclasses.replace(self, max_retries=max_retries)

    def retry_share(self, p_fail, *, timed_out: bool = False) -> np.ndarray:
        """Retries per attempt of each generation in the fluid model (:func:`thinned_retry_share`)."""
        return thinned_retry_share(self, p_fail, timed_out=timed_out)


@dataclass(frozen=True)
class FixedRetries(_Policy):
    """Retry every failed attempt, up to ``max_retries`` times (the classic client default).

    Examples
    --------
    >>> policy = FixedRetries(3)
    >>> policy.max_attempts, policy.amplification(1.0)
    (4, 4.0)
    """

    max_retries: int = 3

    def __post_init__(self):
        _set_count(self, "max_retries")

    def amplification(self, p_fail, *, timed_out: bool = False):
        """Expected attempts per request: :func:`expected_attempts` ``(p_fail, max_retries)``."""
        scalar, _, wanted = _wanted(self, p_fail)
        return output(wanted, scalar)

    def retry_share(self, p_fail, *, timed_out: bool = False) -> np.ndarray:
        """Every failed attempt is retried: the share is ``p_fail`` itself."""
        return np.array(probability("p_fail", p_fail), dtype=np.float64, copy=True)

    def limiter(self) -> UnlimitedLimiter:
        return UnlimitedLimiter(int(self.max_retries))

    def step_gate(self, request_rates, time_step: float, population: float) -> OpenGate:
        return OpenGate()


@dataclass(frozen=True)
class RetryBudget(_Policy):
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
        _set_number(self, "ratio")
        _set_count(self, "max_retries")
        _set_number(self, "window", strict=True)

    @property
    def time_scales(self) -> tuple:
        return (("RetryBudget.window", self.window),)

    def amplification(self, p_fail, *, timed_out: bool = False):
        """``min(expected_attempts(p_fail, max_retries), 1 + ratio)``."""
        scalar, _, wanted = _wanted(self, p_fail)
        return output(np.minimum(wanted, 1.0 + self.ratio), scalar)

    def limiter(self) -> BudgetLimiter:
        return BudgetLimiter(self)

    def step_gate(self, request_rates, time_step: float, population: float) -> BudgetGate:
        return BudgetGate(self, request_rates, time_step, population)


@dataclass(frozen=True)
class TokenBucket(_Policy):
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
    >>> [round(b.amplification(0.5, timed_out=True), 6) for b in (TokenBucket.aws_transient(),
    ...                                                        TokenBucket.aws_retries_2026())]
    [1.1, 1.071429]
    """

    capacity: float = 10.0
    retry_cost: float = 1.0
    timeout_retry_cost: float = 1.0
    success_refund: float = 0.1
    max_retries: int = 3
    refund_retry_cost: bool = False

    def __post_init__(self):
        for name in ("capacity", "retry_cost", "timeout_retry_cost"):
            _set_number(self, name, strict=True)
        _set_number(self, "success_refund")
        _set_count(self, "max_retries")
        _set_flag(self, "refund_retry_cost")
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

    @classmethod
    def aws_transient(cls, max_retries: int = 2) -> "TokenBucket":
        """The AWS SDK for Rust's quota: 10 tokens for every transient error, not only timeouts.

        ``aws-smithy-runtime`` ``client/retries/token_bucket.rs`` (0.57-1.11): capacity 500,
        RETRY_TIMEOUT_COST 10 for every ``ErrorKind::TransientError``, regeneration 1, a
        successful retry's permit released. Every failure modelled here is transient there.
        """
        return cls(capacity=500.0, retry_cost=10.0, timeout_retry_cost=10.0, success_refund=1.0,
                   max_retries=max_retries, refund_retry_cost=True)

    @classmethod
    def aws_retries_2026(cls, max_retries: int = 2) -> "TokenBucket":
        """The AWS SDKs' updated retry behaviour (2026): 14 tokens a retry, 5 after throttling.

        ``aws-smithy-runtime`` 1.14 ``token_bucket.rs``: DEFAULT_RETRY_COST 14 (timeouts too),
        THROTTLING_RETRY_COST 5, capacity 500, regeneration 1; ``AWS_NEW_RETRIES_2026=true``
        (AWS SDKs and Tools reference guide, "Retry behavior"). A blocked attempt (refused at
        once, like a throttling error) costs 5 here.
        """
        return cls(capacity=500.0, retry_cost=5.0, timeout_retry_cost=14.0, success_refund=1.0,
                   max_retries=max_retries, refund_retry_cost=True)

    def amplification(self, p_fail, *, timed_out: bool = False):
        """Steady-state attempts per request (see the class notes); ``timed_out`` picks the retry cost."""
        scalar, p, wanted = _wanted(self, p_fail)
        cost = self.timeout_retry_cost if timed_out else self.retry_cost
        allowed = np.full_like(p, np.inf)
        if self.refund_retry_cost:
            failing = p > 0.0
            with np.errstate(over="ignore"):  # p -> 0: the bucket never starves, the allowance is inf
                allowed[failing] = 1.0 + (1.0 - p[failing]) * self.success_refund / (p[failing] * cost)
        else:
            deficit = cost - (1.0 - p) * self.success_refund
            starving = deficit > 0.0
            allowed[starving] = cost / deficit[starving]
        return output(np.minimum(wanted, allowed), scalar)

    def limiter(self) -> BucketLimiter:
        return BucketLimiter(self)

    def step_gate(self, request_rates, time_step: float, population: float) -> BucketGate:
        return BucketGate(self, request_rates, time_step, population)


@dataclass(frozen=True)
class AdaptiveThrottle(_Policy):
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

    Cold-start guards (off by default), as Envoy's admission control filter has them
    (envoyproxy.io, "Admission Control" filter docs: ``rps_threshold``, below which no request
    is rejected, and ``max_rejection_probability``, default 80 %): ``min_request_rate``
    (requests/s over the window; the mean field ignores it) and ``max_reject_probability``
    ``m`` (beyond the ceiling the amplification is ``(1 - m) sum_{j <= r} q^j``,
    ``q = m + (1 - m) p``, instead of 0).

    Examples
    --------
    >>> throttle = AdaptiveThrottle(k=2.0)
    >>> throttle.failure_ceiling
    0.5
    >>> throttle.amplification([0.0, 0.5, 0.6])
    array([1.   , 1.875, 0.   ])
    >>> round(float(AdaptiveThrottle(k=2.0, max_reject_probability=0.8).amplification(1.0)), 6)  # 0.2 x 4
    0.8
    """

    k: float = 2.0
    window: float = 120.0
    max_retries: int = 3
    min_request_rate: float = 0.0
    max_reject_probability: float = 1.0

    throttles_first_attempts = True

    def __post_init__(self):
        _set_number(self, "k", minimum=1.0)
        _set_number(self, "window", strict=True)
        _set_count(self, "max_retries")
        _set_number(self, "min_request_rate")
        object.__setattr__(self, "max_reject_probability",
                           float(probability("AdaptiveThrottle.max_reject_probability", self.max_reject_probability)))

    @property
    def failure_ceiling(self) -> float:
        """Failure probability above which the throttle starts rejecting: ``1 - 1/k``."""
        return 1.0 - 1.0 / self.k

    @property
    def time_scales(self) -> tuple:
        return (("AdaptiveThrottle.window", self.window),)

    def amplification(self, p_fail, *, timed_out: bool = False):
        """Attempts per request that reach the backend: FixedRetries below the ceiling, 0 above
        (``(1 - m) sum_j q^j`` with a ``max_reject_probability`` ``m < 1``)."""
        scalar, p, wanted = _wanted(self, p_fail)
        m, above = self.max_reject_probability, 0.0
        if m < 1.0:
            q = m + (1.0 - m) * p
            above = (1.0 - m) * _expected_attempts(q, np.full_like(q, float(self.max_retries)))
        return output(np.where(p <= self.failure_ceiling, wanted, above), scalar)

    def limiter(self) -> ThrottleLimiter:
        return ThrottleLimiter(self)

    def step_gate(self, request_rates, time_step: float, population: float) -> ThrottleGate:
        return ThrottleGate(self, request_rates, time_step, population)


def step_gate(policy, request_rates, time_step: float, population: float):
    """The per-step gate of ``policy`` (:mod:`.gates`); no policy (None) never retries: an open gate.

    Examples
    --------
    >>> step_gate(None, np.ones((1, 1)), 1.0, 10.0).rejection() is None
    True
    """
    policy = parse_policy(policy, name="policy", require=("step_gate",))
    if policy is None:
        return OpenGate()
    rates = as_array("request_rates", request_rates, minimum=0.0)
    time_step = number("time_step", time_step, minimum=0.0, strict=True)
    population = number("population", population, minimum=0.0)
    return policy.step_gate(rates, time_step, population)


# ----------------------------------------------------------------------------------------
# The one parser
# ----------------------------------------------------------------------------------------

_FORMS = "'none', 'fixed:<retries>', 'budget:<ratio>[:<retries>]', 'token_bucket', 'aws', 'throttle:<k>'"


def _from_text(text: str, name: str, no_retries):
    kind, *args = [part.strip() for part in text.strip().lower().split(":")]
    try:
        if kind in ("none", "no", "") and not args:
            return no_retries
        if kind == "fixed" and len(args) == 1:
            retries = int(args[0])
            return FixedRetries(retries) if retries != 0 else no_retries
        if kind == "budget" and len(args) in (1, 2):
            return RetryBudget(ratio=float(args[0]), max_retries=int(args[1]) if len(args) == 2 else 3)
        if kind == "token_bucket" and not args:
            return TokenBucket.simple()
        if kind == "aws" and not args:
            return TokenBucket.aws_standard()
        if kind == "throttle" and len(args) == 1:
            return AdaptiveThrottle(k=float(args[0]))
    except ValueError as error:
        raise ValueError(f"{name} {text!r}: {error}") from None
    raise ValueError(f"{name} must be a whole number of retries, a retry policy or one of {_FORMS}, got {text!r}")


def parse_policy(value, *, name: str = "policy", no_retries=None, require: tuple[str, ...] = ("amplification",)):
    """A retry policy from a policy object, a whole number of retries or a short string.

    Strings (for notebook parameters): ``"none"``, ``"fixed:<retries>"``,
    ``"budget:<ratio>[:<retries>]"``, ``"token_bucket"`` (:meth:`TokenBucket.simple`), ``"aws"``
    (:meth:`TokenBucket.aws_standard`) and ``"throttle:<k>"``. A whole number ``r`` is
    ``FixedRetries(r)``. No retries at all (``None``, ``0``, ``"none"``, ``"fixed:0"``) gives
    ``no_retries``: None by default, ``FixedRetries(0)`` for a model that needs a policy object.
    A policy object passes through unchanged if it has every attribute in ``require``.

    Parameters
    ----------
    value : retry policy, int, str or None
    name : str
        The argument's name in error messages (``ValueError`` naming it and the value).
    no_retries : optional
        What "no retries" parses to.
    require : tuple of str
        Attributes a policy object must have for the caller (e.g. ``"step_gate"``).

    Examples
    --------
    >>> parse_policy("fixed:3")
    FixedRetries(max_retries=3)
    >>> parse_policy("budget:0.1")
    RetryBudget(ratio=0.1, max_retries=3, window=10.0)
    >>> parse_policy("none") is None, parse_policy(0, no_retries=FixedRetries(0))
    (True, FixedRetries(max_retries=0))
    """
    if value is None:
        return no_retries
    if isinstance(value, str):
        return _from_text(value, name, no_retries)
    if all(hasattr(value, attribute) for attribute in require) and callable(getattr(value, "amplification", None)):
        return value
    if _is_real_number(value):
        # 3 and 3.0 are three retries; 2.7, -1, NaN and inf are refused, never truncated or read as none
        try:
            retries = whole(name, value, maximum=MAX_RETRIES)
        except ValueError:
            raise ValueError(f"{name} must be a whole number of retries >= 0 (max_retries), at most "
                             f"{MAX_RETRIES:,}, got {describe(value)}") from None
        return FixedRetries(retries) if retries > 0 else no_retries
    needs = ", ".join(require)
    raise ArgumentTypeError(f"{name} must be a whole number of retries, a retry policy (with {needs}) or one of "
                            f"{_FORMS}, got {describe(value)}")


def _is_real_number(value) -> bool:
    """A Python or numpy real number or a 0-d numeric array (not a bool)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, np.ndarray):
        return value.ndim == 0 and value.dtype.kind in "fiu"
    return isinstance(value, (int, float, np.integer, np.floating))
