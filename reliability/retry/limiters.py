"""Per-event limiters: a retry policy's state for one client population in the simulator.

Limiter protocol (shared with :mod:`reliability.simulate`, which drives the policies)
------------------------------------------------------------------------------------
Every policy of :mod:`.policies` has ``limiter()``, which returns a NEW mutable limiter
holding the state of one client population (the steady state is the policy's
``amplification``, the time-stepped model's gate its ``step_gate``, :mod:`.gates`).
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

from collections import deque

__all__ = ["UnlimitedLimiter", "BudgetLimiter", "BucketLimiter", "ThrottleLimiter"]


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


class UnlimitedLimiter:
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


class BudgetLimiter:
    """Limiter of :class:`RetryBudget`: retries within ``ratio`` x requests over the sliding window."""

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


class BucketLimiter:
    """Limiter of :class:`TokenBucket`: each retry takes tokens, each success refills some."""

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


class ThrottleLimiter:
    """Limiter of :class:`AdaptiveThrottle`: rejects attempts locally as accepts fall behind requests."""

    def __init__(self, policy: "AdaptiveThrottle"):
        self.policy = policy
        self._requests = _SlidingCount(policy.window)
        self._accepts = _SlidingCount(policy.window)

    def rejection_probability(self, now: float) -> float:
        """``max(0, (requests - k * accepts) / (requests + 1))`` over the window, with the cold-start guards.

        Below ``min_request_rate`` requests per second over the window nothing is rejected, and
        the probability never exceeds ``max_reject_probability``.
        """
        policy = self.policy
        requests = self._requests.count(now)
        if requests < policy.min_request_rate * policy.window:
            return 0.0
        accepts = self._accepts.count(now)
        return min(policy.max_reject_probability, max(0.0, (requests - policy.k * accepts) / (requests + 1.0)))

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
