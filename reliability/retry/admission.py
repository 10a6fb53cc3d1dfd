"""Admission defences in the mean field: load shedding by priority, and a client circuit breaker.

**Shedding by priority.** Retries are marked low priority (first attempts high): once more than
``shed_threshold`` attempts wait, the server rejects a low-priority attempt at once and still
admits every high-priority one into its FIFO queue. The number in the system is a birth-death
chain with birth rate ``lambda_H + lambda_L`` below ``c + L`` and ``lambda_H`` from there on
(``L`` the threshold), death rate ``min(n, c) mu``; it is exact under the mean-field
assumption and stationary while the first attempts alone stay below capacity
(``lambda_H < c mu``). By PASTA a first attempt times out with ``p_H = sum_n pi_n P(W+S>T | n)``;
a retry is shed with ``b_L = P(N >= c + L)`` and times out with
``u_L = sum_{n < c+L} pi_n P(W+S>T | n)``. A request sends its first attempt, and after a
failure (share ``p_H``) up to ``r`` retries, each going on after a failure that is retried
(``q = b_L + u_L``, or ``u_L`` when a shed retry carries "do not retry"): attempts per request
``1 + p_H sum_{k<r} q^k``, goodput per request ``1 - p_H + p_H (1 - b_L - u_L) sum_{k<r} q^k``.
The fixed point is over the retry rate ``lambda_L = lambda - lambda0``. A fixed share of
low-priority *clients* (all their attempts low) is simulated only
(:mod:`reliability.simulate.defended`).

**A circuit breaker on each client** (as Resilience4j's ``CircuitBreaker``: closed until the
failure rate over a sliding window of calls reaches ``failureRateThreshold``, with at least
``minimumNumberOfCalls``; then open, failing calls at once, for ``waitDurationInOpenState``;
then half-open, letting ``permittedNumberOfCallsInHalfOpenState`` probes through and closing
again if their failure rate is below the threshold) has no fixed point of its own: an open
breaker is not a steady state, it closes or reopens after its cool-down. Its closest mean field
is the unbounded queue's (:class:`RetryingQueue`) with every state whose attempt failure share
reaches the threshold taken out: a closed breaker changes nothing, and in a state failing that
often every breaker opens, no attempt reaches the server for the cool-down, and the backlog
drains at ``c mu``, each cycle, until the probes succeed and the load returns to an emptied
queue (the healthy state, where one exists). Above the onset, where no stable state fails
less often than the threshold, the breakers cycle and no equilibrium remains.

Inside the band a finite queue still tips by chance (:mod:`.escape`), and behind breakers each
tip costs a cycle: about half a window of failing calls before the breakers open, then the
cool-down in which every call is refused. A renewal cycle of a healthy spell of the backlog
chain's mean time to tip ``tau`` and that loss gives the long-run goodput per request
``tau / (tau + window / 2 + cool_down)`` (:meth:`CircuitBreakerQueue.cycle_goodput_share`), an
approximation that holds when the cool-down drains the backlog (``c mu cool_down`` beyond the
tipping backlog) and ``tau`` is long against a cycle.

Examples
--------
>>> shed = PriorityShedQueue(20, 1.0, 3.0, 3, shed_threshold=10)
>>> [round(e.goodput_share, 3) for e in shed.equilibria(12.0) if e.stable]
[1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from ..queues._kernels import log_sum_exp
from .._validate import number, whole
from . import fluid
from .amplification import _expected_attempts
from .defences import BoundedEquilibrium, DefendedQueue, check_flag, check_queue
from .escape import escape_time
from .queue import RetryingQueue

__all__ = ["PriorityShedQueue", "CircuitBreakerQueue"]


@dataclass(frozen=True)
class PriorityShedQueue(DefendedQueue):
    """A retrying FIFO queue that sheds retries (low priority) once more than ``shed_threshold`` attempts wait.

    Parameters
    ----------
    servers, service_rate, timeout, max_retries :
        As for :class:`BoundedRetryingQueue`.
    shed_threshold : int
        Waiting attempts at which low-priority attempts are shed.
    retry_shed : bool
        Whether clients retry a shed attempt (False: it carries "overloaded, do not retry").

    Examples
    --------
    >>> shed = PriorityShedQueue(20, 1.0, 3.0, 3, shed_threshold=10)
    >>> late_first, shed_retry, late_retry = shed.priority_shares(12.0, 2.0)   # 14 attempts/s, 2 of them retries
    >>> [round(float(x[0]), 4) for x in (late_first, shed_retry, late_retry)]
    [0.0507, 0.002, 0.0505]
    """

    servers: int
    service_rate: float
    timeout: float
    max_retries: int = 3
    shed_threshold: int = 10
    retry_shed: bool = True

    def __post_init__(self):
        check_queue(self)
        object.__setattr__(self, "shed_threshold", whole("shed_threshold", self.shed_threshold, 0, maximum=10**6))
        object.__setattr__(self, "retry_shed", check_flag("retry_shed", self.retry_shed))
        if self._state_count() > 10**6:
            raise ValueError(f"servers + shed_threshold + the states a timeout can hold must be <= 1,000,000, got "
                             f"{self._state_count():,} (servers={self.servers}, service_rate={self.service_rate!r}, "
                             f"timeout={self.timeout!r})")

    def _state_count(self) -> int:
        return self.servers + self.shed_threshold + self._truncation() + 1

    def _truncation(self) -> int:
        """States kept beyond ``c + L``: past them an attempt waits longer than the timeout for sure."""
        work = min(self.capacity * self.timeout, 1e7)  # beyond, the size check refuses the queue
        return int(math.ceil(work + 12.0 * math.sqrt(work) + 30.0))

    def priority_shares(self, high_rate: float, low_rate) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(p_H, b_L, u_L)`` at a first-attempt rate and each retry rate (see the module notes)."""
        lam_h = number("high_rate", high_rate, minimum=0.0)
        lam_l = np.atleast_1d(np.asarray(low_rate, dtype=np.float64))
        if lam_h >= self.capacity:    # the first attempts alone overload the queue: every attempt fails
            ones = np.ones_like(lam_l)
            return ones, ones, np.zeros_like(lam_l)
        c, mu, big_l = self.servers, self.service_rate, self.shed_threshold
        n = np.arange(c + big_l + self._truncation() + 1, dtype=np.float64)
        log_a = np.log(np.maximum((lam_h + lam_l) / mu, 1e-300))[:, None]
        log_rho_h = math.log(max(lam_h / self.capacity, 1e-300))
        below = np.where(n <= c, n * log_a - special.gammaln(n + 1.0),
                         c * log_a - special.gammaln(c + 1.0) + (n - c) * (log_a - math.log(c)))
        at_threshold = below[:, [c + big_l]]
        log_pi = np.where(n <= c + big_l, below, at_threshold + (n - c - big_l) * log_rho_h)
        # the states beyond the truncation, in closed form: a geometric tail at ratio lambda_H / (c mu)
        log_rest = at_threshold[:, 0] + (n[-1] + 1 - c - big_l) * log_rho_h - math.log1p(-lam_h / self.capacity)
        log_total = np.logaddexp(log_sum_exp(log_pi, axis=1), log_rest)
        pi, rest = np.exp(log_pi - log_total[:, None]), np.exp(log_rest - log_total)
        late = fluid.conditional_failure(self, n)
        admitted = n < c + big_l
        return (np.minimum(pi @ late + rest, 1.0), np.minimum(pi[:, ~admitted].sum(axis=1) + rest, 1.0),
                pi[:, admitted] @ late[admitted])

    def _scan_range(self, arrival_rate):
        return arrival_rate, arrival_rate * (self.max_retries + 1) * (1 + 1e-9) + 1e-12

    def per_request(self, arrival_rate, attempt_rate):
        x = np.atleast_1d(np.asarray(attempt_rate, dtype=np.float64))
        p_h, b_l, u_l = self.priority_shares(arrival_rate, np.maximum(x - arrival_rate, 0.0))
        going_on = b_l + u_l if self.retry_shed else u_l
        r = self.max_retries
        retries = _expected_attempts(going_on, np.full_like(going_on, r - 1.0)) if r > 0 else np.zeros_like(x)
        attempts = 1.0 + p_h * retries
        goodput = 1.0 - p_h + p_h * (1.0 - b_l - u_l) * retries
        # shares over all attempts: the retries' part is p_H sum q^k of every request's attempts
        low = p_h * retries / attempts
        return attempts, goodput, low * b_l, (1.0 - low) * p_h + low * u_l


@dataclass(frozen=True)
class CircuitBreakerQueue(DefendedQueue):
    """The unbounded retrying queue behind client circuit breakers that open at ``failure_threshold``.

    Its equilibria are those of :class:`RetryingQueue` (FIFO, unbounded, fixed retry cap); a
    stable one is kept only where its attempts fail less often than the threshold (see the
    module notes: a state failing more often opens every breaker, and is not a steady state).

    Examples
    --------
    >>> breaker = CircuitBreakerQueue(20, 1.0, 3.0, 3, failure_threshold=0.5)
    >>> [round(e.goodput_share, 3) for e in breaker.equilibria(12.0) if e.stable]
    [1.0]
    """

    servers: int
    service_rate: float
    timeout: float
    max_retries: int = 3
    failure_threshold: float = 0.5
    window: float = 10.0
    cool_down: float = 30.0

    def __post_init__(self):
        check_queue(self)
        object.__setattr__(self, "failure_threshold", number("failure_threshold", self.failure_threshold,
                                                             minimum=0.0, maximum=1.0, strict=True))
        object.__setattr__(self, "window", number("window", self.window, minimum=0.0, strict=True))
        object.__setattr__(self, "cool_down", number("cool_down", self.cool_down, minimum=0.0, strict=True))

    def cycle_goodput_share(self, arrival_rate) -> float:
        """Long-run goodput per request when chance tips are each ended by the breakers (module notes).

        Examples
        --------
        >>> breaker = CircuitBreakerQueue(20, 1.0, 3.0, 3)
        >>> breaker.cycle_goodput_share(10.0) > 0.999 > breaker.cycle_goodput_share(16.0) > 0.8
        True
        """
        lam0 = number("arrival_rate", arrival_rate, minimum=0.0)
        tau = escape_time(RetryingQueue(self.servers, self.service_rate, self.timeout, self.max_retries),
                          lam0).mean_time
        if math.isinf(tau):
            return 1.0
        return tau / (tau + self.window / 2.0 + self.cool_down)

    def _state_count(self) -> int:
        return 1

    def per_request(self, arrival_rate, attempt_rate):
        x = np.atleast_1d(np.asarray(attempt_rate, dtype=np.float64))
        fifo = RetryingQueue(self.servers, self.service_rate, self.timeout, self.max_retries)
        late = np.where(x < self.capacity, np.asarray(fifo._failure(np.minimum(x, self.capacity)), dtype=float), 1.0)
        attempts = _expected_attempts(late, np.full_like(late, float(self.max_retries)))
        return attempts, attempts * (1.0 - late), np.zeros_like(late), late

    def _record(self, lam0: float, x: float) -> BoundedEquilibrium:
        e = super()._record(lam0, x)
        if e.stable and e.timed_out >= self.failure_threshold:  # the breakers open: not a steady state
            return BoundedEquilibrium(attempt_rate=e.attempt_rate, blocked=e.blocked, timed_out=e.timed_out,
                                      goodput_share=e.goodput_share, stable=False)
        return e
