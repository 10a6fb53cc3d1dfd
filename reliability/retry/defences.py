"""Server-side defences in the mean field: the shared solver, a bounded queue, a concurrency limit, "do not retry".

:class:`RetryingQueue` has an unbounded FIFO queue: a collapsed service keeps every server busy
on attempts whose clients left. Each defence changes what happens to one attempt, and under the
mean-field assumption (attempts a Poisson stream, failing independently) its steady state gives
per attempt rate ``lambda`` the share ``b`` of attempts rejected at once and the share ``u``
admitted but answered after the client's timeout. The equilibria are the solutions of
``lambda = lambda0 A(lambda)`` with ``A`` the attempts a request makes (the fixed cap's
amplification at ``p = b + u``, or at ``u`` alone when rejections are not retried), stable where
``d(lambda0 A)/d lambda < 1``. :class:`DefendedQueue` holds that solver once; each defence
supplies its outcome shares:

* here, a bounded queue (:class:`BoundedRetryingQueue`: at most ``queue_limit`` attempts
  waiting beyond the ``c`` servers; a small limit is a concurrency limit), optionally answering
  a rejection with "overloaded, do not retry". Exact M/M/c/K: an attempt that finds ``n`` in the
  system is blocked when ``n = c + K`` and otherwise times out with the FCFS probability
  :func:`.fluid.conditional_failure` ``(n)``; PASTA gives
  ``b(lambda) = pi_{c+K}``, ``u(lambda) = sum_{n < c+K} pi_n P(W + S > T | n)``;
* :mod:`.deadlines`: dropping expired work (exact M/M/c+D) and CoDel (approximated by it);
* :mod:`.disciplines`: adaptive LIFO (exact where the queue is long, approximate where short);
* :mod:`.admission`: load shedding by priority (exact birth-death chain) and a client circuit
  breaker (no fixed point of its own: the states it allows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from ..queues._kernels import log_sum_exp
from .._records import Record
from .._validate import as_array, number, whole
from . import fluid
from .amplification import _expected_attempts

__all__ = ["BoundedEquilibrium", "DefendedQueue", "BoundedRetryingQueue", "defended_band"]

_GRID = 4001


@dataclass(frozen=True, repr=False)
class BoundedEquilibrium(Record):
    """One equilibrium of a retrying queue behind a server-side defence.

    Attributes
    ----------
    attempt_rate : float
        Attempts per second reaching the server.
    blocked, timed_out : float
        Share of attempts rejected at once (blocked, dropped or shed), and share admitted but
        answered after the timeout.
    goodput_share : float
        Requests that succeed per new request.
    stable : bool
    """

    attempt_rate: float
    blocked: float
    timed_out: float
    goodput_share: float
    stable: bool


def check_queue(model, *, maximum_servers: int = 10**5) -> None:
    """Check and normalise the four fields every defended queue has (in ``__post_init__``)."""
    object.__setattr__(model, "servers", whole("servers", model.servers, 1, maximum=maximum_servers))
    object.__setattr__(model, "service_rate", number("service_rate", model.service_rate, minimum=0.0, strict=True))
    object.__setattr__(model, "timeout", number("timeout", model.timeout, minimum=0.0, strict=True))
    object.__setattr__(model, "max_retries", whole("max_retries", model.max_retries, 0, maximum=10**6))


def check_flag(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


class DefendedQueue:
    """The mean-field equilibria of a retrying queue behind a defence: one solver for every defence.

    A subclass (a frozen dataclass with ``servers``, ``service_rate``, ``timeout`` and
    ``max_retries``) supplies :meth:`per_request`; this class finds the solutions of
    ``lambda = lambda0 A(lambda)`` by a scan of the attempt rate and bisection, and their stability.
    """

    _grid_points = _GRID  # attempt rates scanned for sign changes of lambda0 A(lambda) - lambda

    @property
    def capacity(self) -> float:
        return self.servers * self.service_rate

    def per_request(self, arrival_rate: float, attempt_rate: np.ndarray):
        """``(attempts per request, goodput per request, blocked share, timed-out share)`` at each attempt rate."""
        raise NotImplementedError

    def _scan_range(self, arrival_rate: float) -> tuple[float, float]:
        """Attempt rates between which every equilibrium lies: no attempts up to every retry taken."""
        return 0.0, arrival_rate * (self.max_retries + 1) * (1 + 1e-9) + 1e-12

    def _state_count(self) -> int:
        """Queue states each attempt rate is evaluated on (the memory of one row of a scan)."""
        return self.servers

    def _gap(self, lam0: float, x) -> np.ndarray:
        x = np.atleast_1d(x)
        # the scan in chunks: a few million states at a time, whatever the size of the queue
        rows = max(1, 4_000_000 // (self._state_count() + 1))
        return np.concatenate([lam0 * self.per_request(lam0, x[i:i + rows])[0] - x[i:i + rows]
                               for i in range(0, x.size, rows)])

    def equilibria(self, arrival_rate) -> list[BoundedEquilibrium]:
        """The solutions of ``lambda = lambda0 A(lambda)``, by a scan of the attempt rate and bisection."""
        lam0 = number("arrival_rate", arrival_rate, minimum=0.0)
        grid = np.linspace(*self._scan_range(lam0), self._grid_points)
        gap = self._gap(lam0, grid)
        brackets = np.nonzero(np.sign(gap[:-1]) * np.sign(gap[1:]) <= 0)[0]
        # every bracket bisected at once (60 evaluations of all the midpoints, not 60 per root)
        lo, hi, start = grid[brackets], grid[brackets + 1], np.sign(gap[brackets])
        for _ in range(60 if brackets.size else 0):
            mid = 0.5 * (lo + hi)
            gm = self._gap(lam0, mid)
            keep_low = (np.sign(gm) == start) & (gm != 0)
            lo, hi = np.where(keep_low, mid, lo), np.where(keep_low, hi, mid)
        found = []
        for i, root in zip(brackets, (0.5 * (lo + hi)).tolist()):
            # a zero on the grid ends one bracket and starts the next: one root
            if gap[i] == 0 and i > 0 and found and abs(found[-1] - grid[i]) < 1e-12:
                continue
            found.append(root)
        return [self._record(lam0, x) for x in found]

    def _record(self, lam0: float, x: float) -> BoundedEquilibrium:
        step = max(1e-6 * max(x, 1.0), 1e-9)
        pts = np.array([max(x - step, 0.0), x + step])
        slope = lam0 * np.diff(self.per_request(lam0, pts)[0])[0] / (pts[1] - pts[0])
        _, share, blocked, late = (float(v[0]) for v in self.per_request(lam0, np.array([x])))
        return BoundedEquilibrium(attempt_rate=float(x), blocked=blocked, timed_out=late,
                                  goodput_share=share if lam0 > 0 else 1.0, stable=bool(slope < 1.0))

    def worst_goodput_share(self, arrival_rate) -> float:
        """Goodput share of the worst stable equilibrium at a base rate (the state a collapse ends in)."""
        return min(e.goodput_share for e in self.equilibria(arrival_rate) if e.stable)


def retried_attempts(model, blocked: np.ndarray, timed_out: np.ndarray, retry_rejected: bool):
    """``(attempts per request, goodput per request)`` of the fixed cap when every attempt fails
    independently: rejected attempts count as failures, retried unless the client honours "do not retry"."""
    retried = blocked + timed_out if retry_rejected else timed_out
    attempts = _expected_attempts(retried, np.full_like(retried, float(model.max_retries)))
    # successes per request: every attempt sent succeeds with 1 - b - u
    return attempts, attempts * (1.0 - blocked - timed_out)


@dataclass(frozen=True)
class BoundedRetryingQueue(DefendedQueue):
    """A retrying queue with at most ``queue_limit`` attempts waiting (mean field, exact M/M/c/K).

    Parameters
    ----------
    servers, service_rate, timeout :
        As for :class:`RetryingQueue`.
    max_retries : int
        Fixed retry cap of the clients.
    queue_limit : int
        Most attempts waiting beyond the servers (0: a loss system, a strict concurrency limit).
    retry_rejected : bool
        Whether clients retry a rejected attempt (False: the server's "overloaded, do not retry"
        is honoured).

    Examples
    --------
    >>> q = BoundedRetryingQueue(20, 1.0, 3.0, 3, queue_limit=10)
    >>> [round(e.goodput_share, 3) for e in q.equilibria(16.0) if e.stable]
    [1.0]
    """

    servers: int
    service_rate: float
    timeout: float
    max_retries: int = 3
    queue_limit: int = 60
    retry_rejected: bool = True

    def __post_init__(self):
        check_queue(self)
        object.__setattr__(self, "queue_limit", whole("queue_limit", self.queue_limit, 0, maximum=10**6))
        object.__setattr__(self, "retry_rejected", check_flag("retry_rejected", self.retry_rejected))

    def _state_count(self) -> int:
        return self.servers + self.queue_limit + 1

    def outcome_shares(self, attempt_rate) -> tuple[np.ndarray, np.ndarray]:
        """``(b, u)``: blocked and timed-out shares of attempts at each attempt rate (M/M/c/K, PASTA)."""
        lam = np.atleast_1d(as_array("attempt_rate", attempt_rate, minimum=0.0)).astype(np.float64)
        c, k = self.servers, self.queue_limit
        n = np.arange(c + k + 1, dtype=np.float64)
        late = fluid.conditional_failure(self, n[:-1])
        # an idle queue (lambda = 0) as the limit of a tiny rate: pi = (1, 0, 0, ...)
        log_a = np.log(np.maximum(lam / self.service_rate, 1e-300))[:, None]
        # log pi_n (unnormalised): n log a - log n! up to c, then a geometric tail at ratio a / c
        log_pi = np.where(n <= c, n * log_a - special.gammaln(n + 1.0),
                          c * log_a - special.gammaln(c + 1.0) + (n - c) * (log_a - math.log(c)))
        pi = np.exp(log_pi - log_sum_exp(log_pi, axis=1, keepdims=True))
        return pi[:, -1], pi[:, :-1] @ late

    def per_request(self, arrival_rate, attempt_rate):
        blocked, late = self.outcome_shares(attempt_rate)
        return (*retried_attempts(self, blocked, late, self.retry_rejected), blocked, late)


def defended_band(queue: DefendedQueue, load_shares, *, tolerance: float = 0.05) -> pd.DataFrame:
    """Per load share: stable equilibria, best and worst goodput share, and whether the queue is metastable.

    Metastable: two stable equilibria whose goodput shares differ by more than ``tolerance``
    (NaN goodput where the model has no stable state).
    ``queue`` is any defended queue of :mod:`reliability.retry` (a :class:`DefendedQueue`).

    Examples
    --------
    >>> frame = defended_band(BoundedRetryingQueue(20, 1.0, 3.0, 3, queue_limit=10), [0.5, 0.8])
    >>> frame.metastable.tolist()
    [False, False]
    """
    shares = np.atleast_1d(as_array("load_shares", load_shares, minimum=0.0, strict_minimum=True))
    rows = []
    for s in shares:
        stable = [e for e in queue.equilibria(float(s) * queue.capacity) if e.stable]
        # no stable state at all (breakers cycling above the onset): nothing to compare
        best = max((e.goodput_share for e in stable), default=math.nan)
        worst = min((e.goodput_share for e in stable), default=math.nan)
        rows.append({"load_share": float(s), "stable_equilibria": len(stable), "best_goodput_share": best,
                     "worst_goodput_share": worst, "metastable": best - worst > tolerance})
    return pd.DataFrame(rows)
