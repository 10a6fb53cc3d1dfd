"""Server-side defences in the mean field: a bounded queue, a concurrency limit, "do not retry".

:class:`RetryingQueue` has an unbounded FIFO queue: a collapsed service keeps every server busy
on attempts whose clients left. A bounded queue (at most ``queue_limit`` attempts waiting
beyond the ``c`` servers; a small limit is a concurrency limit) turns the excess into fast
rejections, and a server that answers a rejection with "overloaded, do not retry" stops the
clients from retrying it. Both have an exact steady state under the mean-field assumption
(attempts a Poisson stream): the M/M/c/K queue. An attempt that finds ``n`` in the system is
blocked when ``n = c + K`` and otherwise times out with the FCFS probability
:func:`.fluid.conditional_failure` ``(n)``; PASTA gives

``b(lambda) = pi_{c+K}``, ``u(lambda) = sum_{n < c+K} pi_n P(W + S > T | n)``,

and the equilibria are the solutions of ``lambda = lambda0 A(lambda)`` with ``A`` the
policy's amplification at ``p = b + u`` (rejections retried) or the fixed cap's
amplification at ``u`` alone (rejections honoured). Stable where ``d(lambda0 A)/d lambda < 1``.
Deadline propagation (dropping expired work) has no such closed form and is simulated only
(:func:`reliability.simulate.escape.simulate_goodput`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from .._records import Record
from .._validate import as_array, number, whole
from . import fluid
from .amplification import _expected_attempts

__all__ = ["BoundedEquilibrium", "BoundedRetryingQueue", "defended_band"]

_GRID = 4001


@dataclass(frozen=True, repr=False)
class BoundedEquilibrium(Record):
    """One equilibrium of a retrying M/M/c/K queue.

    Attributes
    ----------
    attempt_rate : float
        Attempts per second reaching the server.
    blocked, timed_out : float
        Share of attempts rejected at once, and share admitted but answered after the timeout.
    goodput_share : float
        Requests that succeed per new request.
    stable : bool
    """

    attempt_rate: float
    blocked: float
    timed_out: float
    goodput_share: float
    stable: bool


@dataclass(frozen=True)
class BoundedRetryingQueue:
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
        object.__setattr__(self, "servers", whole("servers", self.servers, 1, maximum=10**5))
        object.__setattr__(self, "service_rate", number("service_rate", self.service_rate, minimum=0.0, strict=True))
        object.__setattr__(self, "timeout", number("timeout", self.timeout, minimum=0.0, strict=True))
        object.__setattr__(self, "max_retries", whole("max_retries", self.max_retries, 0, maximum=10**6))
        object.__setattr__(self, "queue_limit", whole("queue_limit", self.queue_limit, 0, maximum=10**6))
        if not isinstance(self.retry_rejected, (bool, np.bool_)):
            raise ValueError(f"retry_rejected must be True or False, got {self.retry_rejected!r}")

    @property
    def capacity(self) -> float:
        return self.servers * self.service_rate

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
        pi = np.exp(log_pi - special.logsumexp(log_pi, axis=1, keepdims=True))
        return pi[:, -1], pi[:, :-1] @ late

    def _attempts_per_request(self, blocked, timed_out):
        retried = blocked + timed_out if self.retry_rejected else timed_out
        return _expected_attempts(retried, np.full_like(retried, float(self.max_retries)))

    def _goodput_share(self, blocked, timed_out):
        """Successes per request: sum over attempts sent of (1 - b - u), the attempts made being A."""
        return self._attempts_per_request(blocked, timed_out) * (1.0 - blocked - timed_out)

    def equilibria(self, arrival_rate) -> list[BoundedEquilibrium]:
        """The solutions of ``lambda = lambda0 A(lambda)``, by a scan of the attempt rate and bisection."""
        lam0 = number("arrival_rate", arrival_rate, minimum=0.0)
        top = lam0 * (self.max_retries + 1) * (1 + 1e-9) + 1e-12
        grid = np.linspace(0.0, top, _GRID)
        b, u = self.outcome_shares(grid)
        gap = lam0 * self._attempts_per_request(b, u) - grid
        found = []
        for i in np.nonzero(np.sign(gap[:-1]) * np.sign(gap[1:]) <= 0)[0]:
            if gap[i] == 0 and i > 0 and found and abs(found[-1] - grid[i]) < 1e-12:
                continue
            lo, hi = grid[i], grid[i + 1]
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                bm, um = self.outcome_shares(mid)
                gm = lam0 * self._attempts_per_request(bm, um)[0] - mid
                if np.sign(gm) == np.sign(gap[i]) and gm != 0:
                    lo = mid
                else:
                    hi = mid
            found.append(0.5 * (lo + hi))
        return [self._record(lam0, x, (gap[min(np.searchsorted(grid, x), _GRID - 1)])) for x in found]

    def _record(self, lam0: float, x: float, _gap) -> BoundedEquilibrium:
        step = max(1e-6 * max(x, 1.0), 1e-9)
        pts = np.array([max(x - step, 0.0), x + step])
        b, u = self.outcome_shares(pts)
        slope = lam0 * np.diff(self._attempts_per_request(b, u))[0] / (pts[1] - pts[0])
        bx, ux = self.outcome_shares(x)
        share = float(self._goodput_share(bx, ux)[0]) if lam0 > 0 else 1.0
        return BoundedEquilibrium(attempt_rate=float(x), blocked=float(bx[0]), timed_out=float(ux[0]),
                                  goodput_share=share, stable=bool(slope < 1.0))

    def worst_goodput_share(self, arrival_rate) -> float:
        """Goodput share of the worst stable equilibrium at a base rate (the state a collapse ends in)."""
        return min(e.goodput_share for e in self.equilibria(arrival_rate) if e.stable)


def defended_band(queue: BoundedRetryingQueue, load_shares, *, tolerance: float = 0.05) -> pd.DataFrame:
    """Per load share: stable equilibria, best and worst goodput share, and whether the queue is metastable.

    Metastable: two stable equilibria whose goodput shares differ by more than ``tolerance``.

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
        best, worst = max(e.goodput_share for e in stable), min(e.goodput_share for e in stable)
        rows.append({"load_share": float(s), "stable_equilibria": len(stable), "best_goodput_share": best,
                     "worst_goodput_share": worst, "metastable": best - worst > tolerance})
    return pd.DataFrame(rows)
