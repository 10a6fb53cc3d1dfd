"""Dropping expired work (deadline propagation) in the mean field, exact, and CoDel approximated by it.

A server that knows each attempt's deadline skips, when a server frees, an attempt that has
waited longer than ``deadline`` (by default the client's ``timeout``: the client has left). In
FCFS order the waits of the attempts served are then those of the M/M/c+D queue (deterministic
patience ``D``): a skipped attempt takes no server time, exactly as if it had abandoned at ``D``.
With ``V`` the virtual wait an arriving attempt sees (Baccelli & Hebuterne 1981; the M/M/n+G
density of Zeltyn & Mandelbaum, Queueing Systems 51, 2005, with ``G`` a step at ``D``):

* ``P(V = 0, j busy) = p_j``, with ``p_j`` proportional to ``a^j / j!`` for ``j < c`` (``a = lambda / mu``);
* density ``f(x) = lambda p_{c-1} e^{(lambda - c mu) x}`` for ``0 < x < D`` and
  ``f(D) e^{-c mu (x - D)}`` beyond: ``P(V >= D) = lambda p_{c-1} e^{(lambda - c mu) D} / (c mu)``.

An attempt is dropped when ``V >= D`` and otherwise answered late when ``V + S > T``
(``S ~ Exp(mu)``), so with ``D <= T``

``b = P(V >= D)``,
``u = e^{-mu T} [P(V = 0) + lambda p_{c-1} (e^{(lambda - c mu + mu) D} - 1) / (lambda - c mu + mu)]``.

Unlike the unbounded queue, the M/M/c+D queue is stationary at any attempt rate: the drops
keep the waits below ``D``, so attempts above capacity still see a finite queue.

CoDel (Nichols & Jacobson, RFC 8289) has no closed form: it drops at dequeue only after the
sojourn time has stayed above ``target`` for an ``interval``, and then at the rate of its
control law ``interval / sqrt(count)``, until the sojourn falls below ``target``. Under
sustained overload it holds the sojourn of the attempts it serves near ``target`` by dropping
the excess, which is what a deadline ``D = target`` does; at a load whose queue rarely stays
above ``target`` for an interval it drops nothing, where the deadline ``target`` still drops
the attempts that wait longer. :func:`codel_mean_field` is that deadline: exact for the
overloaded state, pessimistic (more drops, each retried) at moderate load. Its goodput per
request is hardly affected by the extra drops (a dropped attempt is retried at once, by a
client that has not left), which is what the band and the cost at normal load are read from.

Examples
--------
>>> queue = ExpiringRetryingQueue(20, 1.0, 3.0, 3)
>>> [round(e.goodput_share, 3) for e in queue.equilibria(12.0) if e.stable]
[1.0, 0.06]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from ..queues._kernels import log_sum_exp
from .._validate import as_array, number
from .defences import DefendedQueue, check_flag, check_queue, retried_attempts

__all__ = ["ExpiringRetryingQueue", "codel_mean_field"]


def log_integral_exp(kappa: np.ndarray, length: float) -> np.ndarray:
    """``log int_0^length e^{kappa x} dx`` for each ``kappa``, without overflow or cancellation."""
    k = np.asarray(kappa, dtype=np.float64)
    out = np.full(k.shape, math.log(length))
    z = k * length
    pos, neg = z > 1e-12, z < -1e-12
    # kappa > 0: e^{z} (1 - e^{-z}) / kappa ; kappa < 0: (1 - e^{z}) / (-kappa)
    out[pos] = z[pos] + np.log(-np.expm1(-z[pos])) - np.log(k[pos])
    out[neg] = np.log(-np.expm1(z[neg])) - np.log(-k[neg])
    return out


@dataclass(frozen=True)
class ExpiringRetryingQueue(DefendedQueue):
    """A retrying FCFS queue whose server drops attempts that waited longer than ``deadline`` (M/M/c+D).

    Parameters
    ----------
    servers, service_rate, timeout, max_retries :
        As for :class:`BoundedRetryingQueue`.
    deadline : float, optional
        Longest wait the server serves (``<= timeout``); ``None``: the client's timeout, so the
        server drops exactly the attempts whose client has already left (deadline propagation).
    retry_dropped : bool
        Whether clients retry a dropped attempt (True: a drop is a failure like any other).

    Examples
    --------
    >>> queue = ExpiringRetryingQueue(10, 1.0, 5.0, 0)
    >>> dropped, late = queue.outcome_shares(30.0)   # three times capacity: two thirds dropped
    >>> round(float(dropped[0]), 3)
    0.667
    """

    servers: int
    service_rate: float
    timeout: float
    max_retries: int = 3
    deadline: float | None = None
    retry_dropped: bool = True

    def __post_init__(self):
        check_queue(self)
        deadline = self.timeout if self.deadline is None else number(
            "deadline", self.deadline, minimum=0.0, maximum=self.timeout, strict=True)
        object.__setattr__(self, "deadline", deadline)
        object.__setattr__(self, "retry_dropped", check_flag("retry_dropped", self.retry_dropped))

    def outcome_shares(self, attempt_rate) -> tuple[np.ndarray, np.ndarray]:
        """``(b, u)``: dropped and late shares of attempts at each attempt rate (M/M/c+D, PASTA)."""
        lam = np.atleast_1d(as_array("attempt_rate", attempt_rate, minimum=0.0)).astype(np.float64)
        c, mu, t, d = self.servers, self.service_rate, self.timeout, self.deadline
        lam = np.maximum(lam, 1e-300)  # an idle queue as the limit of a tiny rate
        j = np.arange(c, dtype=np.float64)
        log_p = j * np.log(lam / mu)[:, None] - special.gammaln(j + 1.0)   # V = 0 with j busy
        log_idle = log_sum_exp(log_p, axis=1)
        log_entry = np.log(lam) + log_p[:, -1]                              # lambda p_{c-1}: density at 0+
        kappa = lam - c * mu
        log_waiting = log_entry + log_integral_exp(kappa, d)               # P(0 < V < D)
        log_dropped = log_entry + kappa * d - math.log(c * mu)             # P(V >= D)
        log_total = np.logaddexp(np.logaddexp(log_idle, log_waiting), log_dropped)
        log_served_late = -mu * t + log_entry + log_integral_exp(kappa + mu, d)
        late = np.exp(-mu * t + log_idle - log_total) + np.exp(log_served_late - log_total)
        return np.exp(log_dropped - log_total), np.minimum(late, 1.0)

    def per_request(self, arrival_rate, attempt_rate):
        dropped, late = self.outcome_shares(attempt_rate)
        return (*retried_attempts(self, dropped, late, self.retry_dropped), dropped, late)


def codel_mean_field(servers, service_rate, timeout, max_retries=3, *, target: float) -> ExpiringRetryingQueue:
    """The closest mean field of a CoDel queue: a server deadline at CoDel's ``target`` (see the module notes).

    Examples
    --------
    >>> codel_mean_field(20, 1.0, 3.0, 3, target=0.15).deadline
    0.15
    """
    return ExpiringRetryingQueue(servers, service_rate, timeout, max_retries, deadline=target)
