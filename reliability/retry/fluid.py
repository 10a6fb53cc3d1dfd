"""The delayed fluid model of a retrying queue: how large a surge tips it into collapse.

The mean-field equilibria of :class:`RetryingQueue` say where a metastable queue can rest;
this model says how it gets from the healthy state to the collapsed one. The backlog ``Q``
(requests in system, abandoned attempts included) follows
``dQ/dt = (attempts arriving) - mu min(Q, c)``; an attempt sent at backlog ``Q`` times out
with the exact probability :func:`conditional_failure` ``p(Q)`` and its retry arrives a
timeout (plus the mean backoff) later. :func:`tipping_trigger` finds the shortest surge after
which the backlog runs away. The functions take the queue (its ``servers``,
``service_rate``, ``timeout`` and ``policy``); :class:`RetryingQueue` exposes them as methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize, special

from .._records import Record
from .._validate import number
from .policies import Backoff, thinned_retry_share

__all__ = ["TippingPoint", "conditional_failure", "fluid_drift", "fluid_equilibria", "tipping_trigger"]


@dataclass(frozen=True, repr=False)
class TippingPoint(Record):
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


def conditional_failure(queue, backlog) -> np.ndarray:
    """P(response > timeout) for an attempt that finds ``backlog`` requests in the system.

    With ``Q >= c`` it waits for ``n = Q - c + 1`` departures at rate ``c mu`` (a Gamma(n, c mu)
    wait) and then an Exp(mu) service:
    ``P = Q(n, c mu T) + e^{-mu T} (c/(c-1))^n P(n, (c-1) mu T)`` (regularised incomplete gamma
    functions; ``(mu T)^n / n!`` replaces the second factor when ``c = 1``). ``Q`` is
    continuous in the fluid model, and so is ``n = max(0, Q - c + 1)``.
    """
    q = np.atleast_1d(np.asarray(backlog, dtype=np.float64))
    c, mu, t = queue.servers, queue.service_rate, queue.timeout
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


def fluid_drift(queue, backlog, arrival_rate: float) -> np.ndarray:
    """``d Q / dt`` of the delay-free fluid model: retry-inflated arrivals minus departures."""
    q = np.atleast_1d(np.asarray(backlog, dtype=np.float64))
    p = conditional_failure(queue, q)
    return arrival_rate * queue._amplification(p) - queue.service_rate * np.minimum(q, queue.servers)


def backlog_grid(queue) -> np.ndarray:
    """Backlogs on which the fluid model is tabulated."""
    c, mu, t = queue.servers, queue.service_rate, queue.timeout
    # beyond this backlog the wait alone exceeds the timeout with overwhelming probability
    top = c + 2.0 * c * mu * t + 12.0 * math.sqrt(c * mu * t) + 50.0
    if not math.isfinite(top):
        raise ValueError(f"the fluid model's backlogs (up to servers x service_rate x timeout) must stay within the "
                         f"float range, got servers={c}, service_rate={mu!r}, timeout={t!r}")
    return np.linspace(0.0, top, 20001)


def fluid_equilibria(queue, arrival_rate: float) -> tuple[float, ...]:
    """Backlogs at which the fluid model is at rest (``d Q / dt = 0``) for a base rate."""
    grid = backlog_grid(queue)
    drift = fluid_drift(queue, grid, arrival_rate)
    roots = []
    sign = np.sign(drift)
    for i in np.nonzero(sign[:-1] * sign[1:] < 0)[0]:
        roots.append(float(optimize.brentq(lambda q: float(fluid_drift(queue, q, arrival_rate)[0]),
                                           grid[i], grid[i + 1], xtol=1e-12,
                                           maxiter=1100)))  # halvings from any float bracket to xtol
    roots.extend(float(q) for q in grid[sign == 0])
    return tuple(sorted(roots))


def _quasi_static_tipping(queue, lam0: float, multiple: float):
    """(healthy backlog, critical backlog, surge duration) of the delay-free fluid ODE."""
    roots = fluid_equilibria(queue, lam0)
    if float(fluid_drift(queue, 0.0, lam0)[0]) > 0 and not roots:
        return math.inf, math.inf, 0.0  # no healthy state: the backlog grows anyway
    healthy = roots[0]
    later = [q for q in roots[1:] if float(fluid_drift(queue, q + 1e-6 * max(1.0, q), lam0)[0]) > 0]
    if not later:
        return healthy, math.inf, math.inf
    critical = later[0]
    grid = backlog_grid(queue)
    path = grid[(grid > healthy) & (grid < critical)]
    surged = fluid_drift(queue, np.concatenate([[healthy], path, [critical]]), multiple * lam0)
    if (surged <= 0).any():
        return healthy, critical, math.inf
    duration, _ = integrate.quad(lambda q: 1.0 / float(fluid_drift(queue, q, multiple * lam0)[0]),
                                 healthy, critical, limit=200, epsabs=0.0, epsrel=1e-10)
    return healthy, critical, float(duration)


def _retry_shares(queue, failure: np.ndarray) -> np.ndarray:
    """Retries sent per attempt of each generation, so that generations reproduce the policy's A(p)."""
    share = getattr(queue.policy, "retry_share", None)
    if share is None:  # a user's policy: thin every generation alike
        return thinned_retry_share(queue.policy, failure, timed_out=queue._timed_out)
    return np.asarray(share(failure, timed_out=queue._timed_out), dtype=np.float64)


@dataclass(frozen=True)
class _Surge:
    """The fixed inputs of one delayed fluid run: base rate, surge, rest points, tables."""

    lam0: float
    multiple: float
    healthy: float
    critical: float
    delays: np.ndarray  # steps from an attempt to its retry, per retry generation
    backlogs: np.ndarray
    shares: np.ndarray  # retry share per backlog
    dt: float
    sure: float  # past this backlog the storm feeds itself


def _share_over(surge: _Surge, integral: np.ndarray, cell: float, before: float, after: float) -> float:
    """Mean retry share over the backlogs from ``before`` to ``after``.

    The attempts sent in one step find backlogs from ``before`` to ``after`` (FCFS: each sees
    those ahead of it), so their retry share is the mean over that range -- not its value at the
    start, which would let a burst arriving within one step see the pre-burst queue.
    """
    if abs(after - before) <= cell:
        return float(np.interp(0.5 * (before + after), surge.backlogs, surge.shares))
    ends = np.interp([before, after], surge.backlogs, integral)
    return float((ends[1] - ends[0]) / (after - before))


#: Most time steps of one fluid run (its arrays hold (retries + 1) x steps floats).
MAX_FLUID_STEPS = 2_000_000


def _collapses(queue, surge: _Surge, duration: float) -> bool:
    """Run the delayed fluid model through a surge of ``duration``; True if the backlog runs away."""
    dt, backlogs, shares_of_backlog = surge.dt, surge.backlogs, surge.shares
    cell = backlogs[1] - backlogs[0]
    # integral of the share over the backlog, to average it over the backlogs one step passes through
    integral = np.concatenate([[0.0], np.cumsum(0.5 * (shares_of_backlog[1:] + shares_of_backlog[:-1]) * cell)])
    c, mu = queue.servers, queue.service_rate
    generations = len(surge.delays)  # retries 1..r
    lag = np.asarray(surge.delays)
    history = int(lag.max()) if generations else 0
    settle = duration + 2.0 * (generations + 1) * (history * dt + queue.timeout)
    horizon = settle + 40.0 * (queue.timeout + history * dt) + 20.0 / mu
    steps = horizon / dt
    if not steps <= MAX_FLUID_STEPS:
        raise ValueError(f"tipping_trigger: a surge of {duration:g} and its aftermath need {steps:.3g} fluid steps "
                         f"of timeout / 40, more than {MAX_FLUID_STEPS:,} (timeout={queue.timeout!r}, "
                         f"service_rate={queue.service_rate!r})")
    steps = int(math.ceil(steps))
    share_h = float(np.interp(surge.healthy, backlogs, shares_of_backlog))
    rates = np.zeros((generations + 1, history + steps + 1))
    shares = np.empty(history + steps + 1)
    rates[:, : history + 1] = (surge.lam0 * share_h ** np.arange(generations + 1))[:, None]
    shares[: history + 1] = share_h
    q = surge.healthy
    near = surge.healthy + 0.05 * (surge.critical - surge.healthy)
    rows = np.arange(1, generations + 1)
    for i in range(history, history + steps):
        t = (i - history) * dt
        # mean request rate over [t, t + dt]: the step in which the surge ends gets its share, so
        # the surge adds exactly (multiple - 1) lam0 duration requests, whatever its length against dt
        surged = min(max((duration - t) / dt, 0.0), 1.0)
        rates[0, i] = surge.lam0 * (1.0 + (surge.multiple - 1.0) * surged)
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
        shares[i] = _share_over(surge, integral, cell, before, q)
        if q > surge.sure:
            return True
        if t > settle and q < near:
            return False
    return q > surge.critical


def _check_tipping_inputs(queue, backoff) -> None:
    if getattr(queue.policy, "throttles_first_attempts", False):
        raise ValueError("policy must not throttle first attempts (as an AdaptiveThrottle does) for tipping_trigger "
                         f"(the fluid model does not follow local rejections), got {queue.policy!r}")
    if backoff is not None and (not isinstance(backoff, Backoff) or backoff.jitter == "decorrelated"):
        raise ValueError("backoff must be None or a Backoff with jitter 'none', 'full' or 'equal' (the fluid "
                         f"model delays each retry generation by its mean backoff), got {backoff!r}")


def _surge(queue, lam0: float, multiple: float, healthy: float, critical: float, backoff) -> _Surge:
    r = int(queue.policy.max_attempts) - 1
    extra_delay = [float(backoff.mean(k)) if backoff is not None else 0.0 for k in range(1, r + 1)]
    dt = queue.timeout / 40.0
    delays = np.array([max(1, int(round((queue.timeout + b) / dt))) for b in extra_delay], dtype=np.int64)
    backlogs = backlog_grid(queue)
    failure = conditional_failure(queue, backlogs)
    # past this backlog every attempt times out (p within 1e-6 of 1): the storm feeds itself
    certain = backlogs[failure >= 1.0 - 1e-6]
    sure = max(float(certain[0]) if certain.size else backlogs[-1], critical) * 1.5 + 1.0
    return _Surge(lam0, multiple, healthy, critical, delays, backlogs, _retry_shares(queue, failure), dt, sure)


def _shortest_tipping(collapses, start: float, dt: float, tolerance: float) -> float:
    """Least surge duration with ``collapses``: doubling from ``start``, then bisection to ``tolerance``."""
    low, high = 0.0, max(start, dt)
    for _ in range(40):
        if collapses(high):
            break
        low, high = high, 2.0 * high
    else:
        return math.inf
    for _ in range(200):  # bisection to rtol; the cap only guards against a non-monotone case
        if high - low <= tolerance * high:
            break
        mid = 0.5 * (low + high)
        if collapses(mid):
            high = mid
        else:
            low = mid
    return high


def tipping_trigger(queue, arrival_rate: float, surge_multiple, *, backoff=None, rtol=1e-3) -> TippingPoint:
    """Smallest surge (``surge_multiple`` x ``arrival_rate`` for a while) that leaves the queue collapsed.

    See :meth:`RetryingQueue.tipping_trigger`.
    """
    multiple = number("surge_multiple", surge_multiple, minimum=1.0)
    tolerance = number("rtol", rtol, minimum=0.0, strict=True)
    if not math.isfinite(multiple * queue.checked_rate("arrival_rate", arrival_rate)):
        raise ValueError(f"surge_multiple x arrival_rate must be a finite rate, got surge_multiple={multiple!r} "
                         f"with arrival_rate={arrival_rate!r}")
    queue.checked_rate("surge_multiple x arrival_rate", multiple * arrival_rate)
    _check_tipping_inputs(queue, backoff)
    lam0 = arrival_rate
    healthy, critical, quasi = _quasi_static_tipping(queue, lam0, multiple)

    def result(duration):
        if duration == 0.0:
            extra = 0.0
        else:
            extra = (multiple - 1.0) * lam0 * duration if math.isfinite(duration) else math.inf
        return TippingPoint(lam0, multiple, healthy, critical, duration, quasi, extra, math.isfinite(duration))

    if quasi == 0.0 or not math.isfinite(critical) or multiple == 1.0:
        return result(quasi if multiple > 1.0 or quasi == 0.0 else math.inf)
    if not math.isfinite(quasi):
        return result(math.inf)  # the surge's own rest point lies below Q_u
    surge = _surge(queue, lam0, multiple, healthy, critical, backoff)
    return result(_shortest_tipping(lambda duration: _collapses(queue, surge, duration), quasi, surge.dt, tolerance))
