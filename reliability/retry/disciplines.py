"""Adaptive LIFO in the mean field: FIFO while the queue is short, newest first once it is long.

"Fail at scale" (B. Maurer, ACM Queue 13(8), 2015, queue.acm.org/detail.cfm?id=2839461)
describes servers processing requests FIFO in normal operation and switching to LIFO when a
queue forms (beside CoDel, :mod:`.deadlines`, and a concurrency limit): under overload the
newest requests, whose clients are still waiting, are served first, and the old ones, whose
clients have left, wait. The discipline changes which
attempts time out, not how many are in the system: with exponential services, non-preemptive
and work-conserving, the number in the system is that of M/M/c whatever the order, so the mean
field keeps the M/M/c distribution ``pi_n`` and changes ``P(W + S > T | n)``.

With ``L`` the switch threshold (the server takes the newest waiting attempt when more than
``L`` wait, the oldest otherwise), an attempt that finds ``n >= c + L`` in the system joins at
position ``n - c + 1 > L``: while it waits, at least that many wait, so every attempt taken is a
newer one until none is left above it, and then it is taken itself. Its wait is exactly the busy
period ``B`` of an M/M/1 queue with arrival rate ``lambda`` and service rate ``nu = c mu``
started by one customer, of density (defective when ``lambda > nu``, of mass ``nu / lambda``)

``f(t) = sqrt(nu / lambda) e^{-(lambda + nu) t} I_1(2 t sqrt(lambda nu)) / t``.

An attempt that finds fewer than ``c + L`` is taken FIFO; the mean field gives it the FIFO wait
(``n - c + 1`` departures at rate ``c mu``: :func:`.fluid.conditional_failure`), which ignores a
switch to LIFO before it is taken (newer attempts overtaking it): that part is approximate,
exact as ``L -> infinity`` (plain FIFO) and for ``L = 0`` (plain LIFO, where no such attempt
exists), and optimistic in between (without retries at ``c = 10``, ``mu T = 2``, ``L = 3`` and
0.8 of capacity it gives 0.839 of attempts answered in time where simulation gives 0.826 +- 0.009;
at and above capacity, where the queue is long, the two agree within the interval). Above
capacity the queue grows without end (the abandoned attempts stay in it), the long-run share
of arrivals finding ``n >= c + L`` is 1, and ``u = P(B + S > T)``: the mean field is then that
of a transient queue, a limit rather than a steady state.

Examples
--------
>>> lifo = AdaptiveLifoQueue(20, 1.0, 3.0, 3, lifo_threshold=0)
>>> [round(e.goodput_share, 2) for e in lifo.equilibria(12.0) if e.stable]
[1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from ..queues._kernels import log_sum_exp
from .._validate import as_array, whole
from . import fluid
from .defences import DefendedQueue, check_flag, check_queue, retried_attempts

__all__ = ["AdaptiveLifoQueue", "busy_period_success"]

# Gauss-Legendre panels on [0, T] that halve towards 0: the busy-period density lives on the
# scale 1 / (lambda + nu), often far below T
_PANELS, _NODES = 40, 8


def _quadrature(length: float) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(_NODES)
    edges = np.concatenate([[0.0], length * 2.0 ** -np.arange(_PANELS - 1, -1, -1.0)])
    lo, hi = edges[:-1, None], edges[1:, None]
    x = (lo + (hi - lo) * (nodes + 1.0) / 2.0).ravel()
    w = ((hi - lo) * weights / 2.0).ravel()
    return x, w


def busy_period_success(arrival_rate, service_rate: float, servers: int, timeout: float) -> np.ndarray:
    """``P(B + S <= T)``: the attempt taken after an M/M/1 busy period ``B`` (rates ``lambda``, ``c mu``) succeeds.

    Examples
    --------
    >>> round(float(busy_period_success(1e-9, 1.0, 1, 3.0)[0]), 6)   # B ~ Exp(1), S ~ Exp(1): Gamma(2) <= 3
    0.800852
    """
    lam = np.atleast_1d(np.asarray(arrival_rate, dtype=np.float64))
    nu, mu, t = servers * service_rate, service_rate, timeout
    lam = np.maximum(lam, 1e-12 * nu)[:, None]
    x, w = _quadrature(t)
    z = 2.0 * x * np.sqrt(lam * nu)
    # log f: I_1 scaled by e^{-z} (ive), so e^{-(lambda + nu) t + z} = e^{-(sqrt(nu) - sqrt(lambda))^2 t}
    log_f = (0.5 * np.log(nu / lam) - (np.sqrt(nu) - np.sqrt(lam)) ** 2 * x + np.log(special.ive(1, z))
             - np.log(x))
    served_in_time = -np.expm1(-mu * (t - x))
    return np.minimum(np.exp(log_f) @ (w * served_in_time), 1.0)


@dataclass(frozen=True)
class AdaptiveLifoQueue(DefendedQueue):
    """A retrying queue served FIFO while at most ``lifo_threshold`` attempts wait, newest first beyond.

    Parameters
    ----------
    servers, service_rate, timeout, max_retries :
        As for :class:`BoundedRetryingQueue`; the queue is unbounded and abandoned attempts are
        still served (as in :class:`RetryingQueue`).
    lifo_threshold : int
        Waiting attempts beyond which the server takes the newest (0: plain LIFO).

    Examples
    --------
    >>> late = AdaptiveLifoQueue(20, 1.0, 3.0, 3, lifo_threshold=0).outcome_shares(48.0)[1]
    >>> round(float(late[0]), 2)   # at 2.4 x capacity the newest still get through
    0.6
    """

    servers: int
    service_rate: float
    timeout: float
    max_retries: int = 3
    lifo_threshold: int = 0

    _grid_points = 801  # each point costs a quadrature of the busy period: a coarser scan suffices here

    def __post_init__(self):
        check_queue(self)
        object.__setattr__(self, "lifo_threshold", whole("lifo_threshold", self.lifo_threshold, 0, maximum=10**6))

    def _state_count(self) -> int:
        return self.servers + self.lifo_threshold + 8 * _PANELS * _NODES

    def outcome_shares(self, attempt_rate) -> tuple[np.ndarray, np.ndarray]:
        """``(0, u)``: nothing is rejected; ``u`` the late share at each attempt rate."""
        lam = np.atleast_1d(as_array("attempt_rate", attempt_rate, minimum=0.0)).astype(np.float64)
        c, mu, big_l = self.servers, self.service_rate, self.lifo_threshold
        n = np.arange(c + big_l, dtype=np.float64)
        fifo_late = fluid.conditional_failure(self, n)
        rho = np.minimum(lam / self.capacity, 1.0)
        log_a = np.log(np.maximum(lam / mu, 1e-300))[:, None]
        # M/M/c up to c + L - 1 (log pi_n unnormalised), and the tail sum_{n >= c+L} in closed form
        log_pi = np.where(n <= c, n * log_a - special.gammaln(n + 1.0),
                          c * log_a - special.gammaln(c + 1.0) + (n - c) * (log_a - math.log(c)))
        log_rho = np.log(np.maximum(rho, 1e-300))
        log_tail = (c * log_a[:, 0] - special.gammaln(c + 1.0) + (big_l * log_rho if big_l else 0.0)
                    - np.log1p(-np.minimum(rho, 1.0 - 1e-16)))
        log_total = np.logaddexp(log_sum_exp(log_pi, axis=1), log_tail)
        pi = np.exp(log_pi - log_total[:, None])
        tail = np.where(rho < 1.0, np.exp(log_tail - log_total), 1.0)   # above capacity: every arrival
        pi = np.where((rho < 1.0)[:, None], pi, 0.0)
        late = pi @ fifo_late + tail * (1.0 - busy_period_success(lam, mu, c, self.timeout))
        return np.zeros_like(late), np.minimum(late, 1.0)

    def per_request(self, arrival_rate, attempt_rate):
        blocked, late = self.outcome_shares(attempt_rate)
        return (*retried_attempts(self, blocked, late, True), blocked, late)
