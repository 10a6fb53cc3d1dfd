"""Per-step gates: a retry policy's state in a time-stepped model, as a mean field over clients.

A time-stepped model (:mod:`reliability.dynamics`) advances every parameter point ``g`` and
service ``s`` of a run at once, one step of ``time_step`` seconds at a time. The clients of
one (point, service) pair are one population of ``population`` clients sharing a policy; a
gate holds that population's policy state as arrays of shape ``(G, S)``.

Gate protocol
-------------
``policy.step_gate(request_rates, time_step, population)`` returns a NEW gate for request
rates of shape ``(G, S)`` (first attempts per second). In every step ``t`` the model calls

1. ``rejection() -> (G, S) array or None``: the share of this step's attempts, first ones and
   retries alike, that the clients reject locally before sending (None: the policy never
   rejects, and the model skips the draw). ``throttles`` is True for a gate that may answer
   an array, so the model knows before the run to record throttled attempts.
2. ``grant(step, first_attempts, wanted_refused, wanted_timed_out, successes)``, only when the
   policy allows retries at all: ``first_attempts`` (G, S) arrived this step;
   ``wanted_refused`` and ``wanted_timed_out`` (G, S, r) are the retries wanted after refused
   and after timed-out attempts, by retry index (``wanted_timed_out`` is None in a model
   without timeouts); ``successes`` (G, S, r + 1) the attempts that succeeded, by index.
   Returns the retries granted, ``(granted_refused, granted_timed_out)`` of the same shapes
   (None stays None); each (point, service) grants the same share of every kind.
3. ``observe(step, attempts, successes)`` with the (G, S, r + 1) attempts sent or rejected
   and the successes of the step, every step.
"""

from __future__ import annotations

import numpy as np

__all__ = ["OpenGate", "BudgetGate", "BucketGate", "ThrottleGate"]


#: Most steps a gate's window ring may hold (one float64 array of that many rows per state).
MAX_WINDOW_STEPS = 10**6


def _window_steps(window: float, time_step: float) -> int:
    steps = window / time_step  # both checked > 0 by step_gate: a Python float, inf at worst
    if not steps <= MAX_WINDOW_STEPS:
        raise ValueError(f"time_step must resolve the policy's window of {window:g} in at most "
                         f"{MAX_WINDOW_STEPS:,} steps, got time_step={time_step!r} ({steps:.3g} steps)")
    return max(1, int(round(steps)))


def _total(wanted_refused, wanted_timed_out):
    """Retries per (point, service), summed over the retry indices and both kinds."""
    return wanted_refused.sum(axis=-1) + (wanted_timed_out.sum(axis=-1) if wanted_timed_out is not None else 0.0)


def _share_out(wanted_refused, wanted_timed_out, wanted, allowed):
    """Grant each (point, service) the share ``min(allowed / wanted, 1)`` of every retry it wants."""
    share = np.minimum(np.divide(allowed, wanted, out=np.ones_like(allowed), where=wanted > 0), 1.0)[..., None]
    granted_refused = wanted_refused * share
    granted_timed_out = wanted_timed_out * share if wanted_timed_out is not None else None
    return granted_refused, granted_timed_out


class OpenGate:
    """Gate of :class:`FixedRetries` (and of no policy): every attempt is sent, every retry granted.

    Examples
    --------
    >>> gate = OpenGate()
    >>> gate.rejection() is None, gate.throttles
    (True, False)
    """

    throttles = False

    def rejection(self):
        return None

    def grant(self, step, first_attempts, wanted_refused, wanted_timed_out, successes):
        return wanted_refused, wanted_timed_out

    def observe(self, step, attempts, successes) -> None:
        return None


class BudgetGate(OpenGate):
    """Gate of :class:`RetryBudget`: retries stay within ``ratio`` x the requests of the window.

    The window is a ring of ``round(window / time_step)`` steps of first attempts and granted
    retries; a step grants at most ``ratio * requests - retries`` over the ring.
    """

    def __init__(self, policy, request_rates, time_step: float, population: float):
        shape = np.shape(request_rates)
        self.ratio = policy.ratio
        self.window_steps = _window_steps(policy.window, time_step)
        self._requests = np.zeros((self.window_steps, *shape))
        self._retries = np.zeros((self.window_steps, *shape))
        self._request_sum = np.zeros(shape)
        self._retry_sum = np.zeros(shape)

    def grant(self, step, first_attempts, wanted_refused, wanted_timed_out, successes):
        w = step % self.window_steps
        self._request_sum += first_attempts - self._requests[w]
        self._requests[w] = first_attempts
        self._retry_sum -= self._retries[w]
        allowed = np.maximum(self.ratio * self._request_sum - self._retry_sum, 0.0)
        wanted = _total(wanted_refused, wanted_timed_out)
        granted_refused, granted_timed_out = _share_out(wanted_refused, wanted_timed_out, wanted, allowed)
        granted = _total(granted_refused, granted_timed_out)
        self._retries[w] = granted
        self._retry_sum += granted
        return granted_refused, granted_timed_out


class BucketGate(OpenGate):
    """Gate of :class:`TokenBucket`: one bucket of ``capacity * population`` tokens per population.

    A step grants the retries its tokens pay for (refused ones at ``retry_cost``, timed-out ones
    at ``timeout_retry_cost``), then its successes refill the bucket (a successful retry gives
    back ``retry_cost`` under the AWS rule).
    """

    def __init__(self, policy, request_rates, time_step: float, population: float):
        self.policy = policy
        self.token_capacity = policy.capacity * population
        self.tokens = np.full(np.shape(request_rates), self.token_capacity)

    def _cost(self, refused, timed_out):
        policy = self.policy
        return refused.sum(axis=-1) * policy.retry_cost + \
            (timed_out.sum(axis=-1) * policy.timeout_retry_cost if timed_out is not None else 0.0)

    def grant(self, step, first_attempts, wanted_refused, wanted_timed_out, successes):
        policy = self.policy
        wanted = _total(wanted_refused, wanted_timed_out)
        need = self._cost(wanted_refused, wanted_timed_out)
        allowed = np.divide(self.tokens * wanted, need, out=np.zeros_like(self.tokens), where=need > 0)
        granted_refused, granted_timed_out = _share_out(wanted_refused, wanted_timed_out, wanted, allowed)
        self.tokens -= self._cost(granted_refused, granted_timed_out)
        if policy.refund_retry_cost:
            deposit = successes[..., 0] * policy.success_refund + successes[..., 1:].sum(axis=-1) * policy.retry_cost
        else:
            deposit = successes.sum(axis=-1) * policy.success_refund
        self.tokens = np.minimum(self.tokens + deposit, self.token_capacity)
        return granted_refused, granted_timed_out


class ThrottleGate(OpenGate):
    """Gate of :class:`AdaptiveThrottle`: rejects ``(requests - k accepts) / (requests + 1)`` per client.

    The window starts from a healthy history (every attempt of a window at the base rate a
    success), so the throttle is idle until failures build up.
    """

    throttles = True

    def __init__(self, policy, request_rates, time_step: float, population: float):
        self.k = policy.k
        self.population = population
        self.window_steps = _window_steps(policy.window, time_step)
        # the cold-start guards: requests per client per window below which nothing is rejected, and the cap
        self.min_requests = policy.min_request_rate * policy.window
        self.max_reject = policy.max_reject_probability
        self._attempts = np.repeat((np.asarray(request_rates) * time_step)[None], self.window_steps, axis=0)
        self._accepts = self._attempts.copy()
        self._attempt_sum = self._attempts.sum(axis=0)
        self._accept_sum = self._accepts.sum(axis=0)

    def rejection(self):
        per_client = self._attempt_sum / self.population
        rejection = np.clip((per_client - self.k * self._accept_sum / self.population) / (per_client + 1.0),
                            0.0, self.max_reject)
        return np.where(per_client < self.min_requests, 0.0, rejection) if self.min_requests > 0 else rejection

    def observe(self, step, attempts, successes) -> None:
        w = step % self.window_steps
        sent = attempts.sum(axis=-1)
        succeeded = successes.sum(axis=-1)
        self._attempt_sum += sent - self._attempts[w]
        self._accept_sum += succeeded - self._accepts[w]
        self._attempts[w] = sent
        self._accepts[w] = succeeded
