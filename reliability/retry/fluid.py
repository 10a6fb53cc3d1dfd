"""The delayed fluid model of a retrying queue: how large a surge tips it into collapse.

The mean-field equilibria of :class:`RetryingQueue` say where a metastable queue can rest;
this model says how it gets from the healthy state to the collapsed one. The backlog ``Q``
(requests in system, abandoned attempts included) follows
``dQ/dt = (attempts arriving) - mu min(Q, c)``; an attempt sent at backlog ``Q`` times out
with the exact probability :func:`conditional_failure` ``p(Q)`` and its retry arrives a
timeout (plus the mean backoff) later (integrated by :mod:`.delayed`). :func:`tipping_trigger`
finds the shortest trigger (a load spike or a capacity drop) after which the backlog runs away,
:func:`tipping_load` the lowest base rate a given trigger tips, and :func:`fluid_recovery_time`
how long the backlog an outage leaves takes to work off. The functions take the queue (its
``servers``, ``service_rate``, ``timeout`` and ``policy``); :class:`RetryingQueue` exposes them
as methods.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize

from .._records import Record
from .._validate import number
from .delayed import Phase, backlog_grid, conditional_failure, conditional_failure_with, integrate as run_fluid, \
    retry_delays, tables
from .policies import Backoff

__all__ = ["TippingPoint", "conditional_failure", "fluid_drift", "fluid_equilibria", "fluid_recovery_time",
           "tipping_load", "tipping_trigger", "trigger_servers"]

TRIGGERS = ("load", "capacity")


@dataclass(frozen=True, repr=False)
class TippingPoint(Record):
    """Smallest surge that tips a healthy retrying queue into collapse (fluid approximation).

    Attributes
    ----------
    arrival_rate : float
        Base request rate after the surge.
    surge_multiple : float
        Size of the trigger: the request rate during a load spike as a multiple of
        ``arrival_rate``, or the factor a capacity drop divides the servers by.
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
        Work the shortest tipping trigger adds, in requests: ``(surge_multiple - 1) * arrival_rate *
        min_duration`` for a load spike, the service a capacity drop withholds,
        ``(servers - trigger_servers) * service_rate * min_duration``, for a capacity drop.
    tips : bool
        Whether a long enough trigger of this size tips the system.
    trigger : str
        ``"load"`` (the request rate multiplied by ``surge_multiple``) or ``"capacity"`` (the
        servers divided by it, :func:`trigger_servers`).
    """

    arrival_rate: float
    surge_multiple: float
    healthy_backlog: float
    critical_backlog: float
    min_duration: float
    quasi_static_duration: float
    extra_requests: float
    tips: bool
    trigger: str = "load"


def fluid_drift(queue, backlog, arrival_rate: float, servers: int | None = None) -> np.ndarray:
    """``d Q / dt`` of the delay-free fluid model: retry-inflated arrivals minus departures.

    ``servers`` replaces the queue's own server count (a capacity drop; 0: an outage).
    """
    c = queue.servers if servers is None else servers
    q = np.atleast_1d(np.asarray(backlog, dtype=np.float64))
    p = conditional_failure_with(queue, c, q)
    return arrival_rate * queue._amplification(p) - queue.service_rate * np.minimum(q, c)


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


def trigger_servers(servers: int, divisor: float) -> int:
    """Servers left by a capacity drop that divides ``servers`` by ``divisor`` (rounded, as simulated)."""
    return max(0, int(round(servers / divisor)))


def _rest_points(queue, lam0: float) -> tuple[float, float]:
    """(healthy, critical) backlogs of the fluid model at a base rate: inf, inf without a healthy state;
    critical inf when nothing above the healthy state runs away."""
    roots = fluid_equilibria(queue, lam0)
    if float(fluid_drift(queue, 0.0, lam0)[0]) > 0 and not roots:
        return math.inf, math.inf  # no healthy state: the backlog grows anyway
    later = [q for q in roots[1:] if float(fluid_drift(queue, q + 1e-6 * max(1.0, q), lam0)[0]) > 0]
    return roots[0], (later[0] if later else math.inf)


def _quasi_static_tipping(queue, lam0: float, multiple: float, trigger: str):
    """(healthy backlog, critical backlog, trigger duration) of the delay-free fluid ODE."""
    healthy, critical = _rest_points(queue, lam0)
    if not math.isfinite(healthy):
        return healthy, critical, 0.0
    if not math.isfinite(critical):
        return healthy, math.inf, math.inf
    rate, servers = (multiple * lam0, None) if trigger == "load" else (lam0, trigger_servers(queue.servers, multiple))

    def drift(q):
        return fluid_drift(queue, q, rate, servers)

    grid = backlog_grid(queue)
    path = grid[(grid > healthy) & (grid < critical)]
    if (drift(np.concatenate([[healthy], path, [critical]])) <= 0).any():
        return healthy, critical, math.inf
    duration, _ = integrate.quad(lambda q: 1.0 / float(drift(q)[0]), healthy, critical, limit=200, epsabs=0.0,
                                 epsrel=1e-10)
    return healthy, critical, float(duration)


@dataclass(frozen=True)
class _Trigger:
    """The fixed inputs of the delayed fluid runs of one trigger: base rate, size, rest points."""

    trigger: str
    lam0: float
    multiple: float
    healthy: float
    critical: float
    sure: float  # past this backlog the storm feeds itself
    backoff: Backoff | None
    shares: dict  # retry-share tables by server count (delayed.tables)

    def phases(self, queue, duration: float) -> list[Phase]:
        if self.trigger == "load":
            during = Phase(duration, self.multiple, queue.servers)
        else:
            during = Phase(duration, 1.0, trigger_servers(queue.servers, self.multiple))
        return [during, Phase(math.inf, 1.0, queue.servers)]


def _settling(queue, backoff, duration: float) -> tuple[float, float]:
    """(longest retry delay, time by which a trigger of ``duration`` and its retries have played out), s."""
    delays = retry_delays(queue, backoff, queue.timeout / 40.0)
    history = (int(delays.max()) if delays.size else 0) * queue.timeout / 40.0
    return history, duration + 2.0 * (delays.size + 1) * (history + queue.timeout)


def _check_trigger(trigger) -> None:
    if trigger not in TRIGGERS:
        raise ValueError(f"trigger must be one of {TRIGGERS}, got {trigger!r}")


def _trigger_tables(queue, trigger: str, multiple: float) -> dict:
    """The retry-share tables of the servers in place during and after a trigger."""
    return tables(queue, [trigger_servers(queue.servers, multiple)] if trigger == "capacity" else [])


def _collapses(queue, trigger: _Trigger, duration: float) -> bool:
    """Run the delayed fluid model through a trigger of ``duration``; True if the backlog runs away."""
    history, settle = _settling(queue, trigger.backoff, duration)
    horizon = settle + 40.0 * (queue.timeout + history) + 20.0 / queue.service_rate
    near = trigger.healthy + 0.05 * (trigger.critical - trigger.healthy)
    run = run_fluid(queue, trigger.lam0, trigger.phases(queue, duration), healthy=trigger.healthy,
                    backoff=trigger.backoff, above=trigger.sure, below=near, settle=settle, horizon=horizon,
                    shares_by_servers=trigger.shares, caller=f"tipping_trigger: a trigger of {duration:g} and its aftermath")
    return run.outcome == "above" or (run.outcome == "end" and run.backlog > trigger.critical)


def _check_fluid_inputs(queue, backoff, caller: str) -> None:
    if getattr(queue.policy, "throttles_first_attempts", False):
        raise ValueError(f"policy must not throttle first attempts (as an AdaptiveThrottle does) for {caller} "
                         f"(the fluid model does not follow local rejections), got {queue.policy!r}")
    if backoff is not None and (not isinstance(backoff, Backoff) or backoff.jitter == "decorrelated"):
        raise ValueError("backoff must be None or a Backoff with jitter 'none', 'full' or 'equal' (the fluid "
                         f"model delays each retry generation by its mean backoff), got {backoff!r}")


def _certain_backlog(queue) -> float:
    """The least tabulated backlog at which every attempt times out (p within 1e-6 of 1)."""
    backlogs = backlog_grid(queue)
    certain = backlogs[conditional_failure(queue, backlogs) >= 1.0 - 1e-6]
    return float(certain[0]) if certain.size else float(backlogs[-1])


def _sure_backlog(queue, critical: float, certain: float | None = None) -> float:
    """A backlog past which the storm feeds itself: beyond where every attempt times out and the critical one."""
    return max(_certain_backlog(queue) if certain is None else certain, critical) * 1.5 + 1.0


def _shortest_tipping(collapses, start: float, dt: float, tolerance: float) -> float:
    """Least trigger duration with ``collapses``: doubling from ``start``, then bisection to ``tolerance``."""
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


def tipping_trigger(queue, arrival_rate: float, surge_multiple, *, trigger: str = "load", backoff=None,
                    rtol=1e-3) -> TippingPoint:
    """Shortest trigger of a size that leaves the queue collapsed: a load spike or a capacity drop.

    See :meth:`RetryingQueue.tipping_trigger`.
    """
    _check_trigger(trigger)
    multiple = number("surge_multiple", surge_multiple, minimum=1.0)
    tolerance = number("rtol", rtol, minimum=0.0, strict=True)
    if not math.isfinite(multiple * queue.checked_rate("arrival_rate", arrival_rate)):
        raise ValueError(f"surge_multiple x arrival_rate must be a finite rate, got surge_multiple={multiple!r} "
                         f"with arrival_rate={arrival_rate!r}")
    if trigger == "load":
        queue.checked_rate("surge_multiple x arrival_rate", multiple * arrival_rate)
    _check_fluid_inputs(queue, backoff, "tipping_trigger")
    lam0 = arrival_rate
    healthy, critical, quasi = _quasi_static_tipping(queue, lam0, multiple, trigger)
    lost = multiple * lam0 - lam0 if trigger == "load" else \
        (queue.servers - trigger_servers(queue.servers, multiple)) * queue.service_rate
    no_trigger = lost == 0.0

    def result(duration):
        extra = 0.0 if duration == 0.0 else (lost * duration if math.isfinite(duration) else math.inf)
        return TippingPoint(lam0, multiple, healthy, critical, duration, quasi, extra, math.isfinite(duration),
                            trigger)

    if quasi == 0.0 or not math.isfinite(critical) or no_trigger:
        return result(quasi if not no_trigger or quasi == 0.0 else math.inf)
    if not math.isfinite(quasi):
        return result(math.inf)  # the trigger's own rest point lies below Q_u
    shares = _trigger_tables(queue, trigger, multiple)
    setting = _Trigger(trigger, lam0, multiple, healthy, critical, _sure_backlog(queue, critical), backoff, shares)
    return result(_shortest_tipping(lambda duration: _collapses(queue, setting, duration), quasi,
                                    queue.timeout / 40.0, tolerance))


def tipping_load(queue, surge_multiple, duration, *, trigger: str = "load", backoff=None, rtol=1e-3) -> float:
    """Lowest base request rate at which a trigger of this size lasting ``duration`` seconds tips the queue.

    The converse of :func:`tipping_trigger` (which finds the duration at a given rate): one delayed
    fluid run per rate tried, by bisection on the rate to ``rtol`` x capacity, assuming a higher
    base rate tips at least as readily. With no trigger (size 1, or no duration) it is the fluid
    model's fold, the lowest rate with no healthy state; infinite when even capacity does not tip.

    Examples
    --------
    >>> from reliability.retry import RetryingQueue
    >>> queue = RetryingQueue(20, 1.0, 3.0, 3)
    >>> rate = tipping_load(queue, 2.5, 12.0)
    >>> bool(queue.tipping_trigger(rate * 1.01, 2.5).min_duration <= 12.0 < queue.tipping_trigger(rate * 0.97, 2.5).min_duration)
    True
    """
    _check_trigger(trigger)
    multiple = number("surge_multiple", surge_multiple, minimum=1.0)
    seconds = number("duration", duration, minimum=0.0)
    tolerance = number("rtol", rtol, minimum=0.0, strict=True)
    _check_fluid_inputs(queue, backoff, "tipping_load")
    shares = _trigger_tables(queue, trigger, multiple)
    certain = _certain_backlog(queue)  # the same at every rate tried

    def tips(rate: float) -> bool:
        healthy, critical = _rest_points(queue, rate)
        if not math.isfinite(healthy):
            return True
        if not math.isfinite(critical) or seconds == 0.0:
            return False
        setting = _Trigger(trigger, rate, multiple, healthy, critical, _sure_backlog(queue, critical, certain),
                           backoff, shares)
        return _collapses(queue, setting, seconds)

    # just past capacity no healthy state is left: everything tips there
    low, high = 0.0, queue.capacity * (1.0 + tolerance)
    if not tips(high):
        return math.inf
    while high - low > tolerance * queue.capacity:
        middle = 0.5 * (low + high)
        low, high = (low, middle) if tips(middle) else (middle, high)
    return high if high <= queue.capacity else math.inf


def fluid_recovery_time(queue, arrival_rate: float, outage, *, level=None, backoff=None) -> float:
    """Time after an outage (every server gone for ``outage`` seconds) until the backlog falls to ``level``.

    The delayed fluid model runs from the healthy state at ``arrival_rate`` through the outage,
    during which every attempt fails and is retried and every one stays queued, and on after the
    servers return: the backlog is carried, so a longer outage leaves more to work off. The
    answer is the last time the backlog falls through ``level`` before it settles back at the
    healthy state; the default ``level`` is ``c + c mu T``, where about half of the attempts time
    out (the chain's :func:`reliability.retry.escape.recovery_time_estimate` drains to the same
    level). Infinite when the backlog never settles back: the outage carried it past the
    unstable point at a load above the recovery threshold.

    Examples
    --------
    >>> from reliability.retry import RetryingQueue
    >>> queue = RetryingQueue(20, 1.0, 3.0, 3)
    >>> short, long = fluid_recovery_time(queue, 4.0, 600.0), fluid_recovery_time(queue, 4.0, 2400.0)
    >>> bool(0 < short < long), fluid_recovery_time(queue, 6.0, 600.0)
    (True, inf)
    """
    lam0 = queue.checked_rate("arrival_rate", arrival_rate)
    duration = number("outage", outage, minimum=0.0)
    low = queue.servers + queue.capacity * queue.timeout if level is None else number("level", level, minimum=0.0)
    _check_fluid_inputs(queue, backoff, "fluid_recovery_time")
    healthy, critical = _rest_points(queue, lam0)
    if not math.isfinite(healthy):
        return math.inf  # no healthy state to return to
    if duration == 0.0 and healthy <= low:
        return 0.0
    near = healthy + 0.05 * (min(critical, max(low, healthy)) - healthy)
    worst = float(queue._amplification(1.0)) * lam0  # attempts per second while everything fails
    left = worst * duration + healthy  # at most this much is queued when the servers return
    history, settle = _settling(queue, backoff, duration)
    spare = queue.capacity - worst
    drain = 2.0 * left / spare if spare > 0 else 0.0
    horizon = settle + drain + 100.0 * (queue.timeout + history) + 20.0 / queue.service_rate
    run = run_fluid(queue, lam0, [Phase(duration, 1.0, 0), Phase(math.inf, 1.0, queue.servers)], healthy=healthy,
                    backoff=backoff, above=max(left, low) * 1.5 + _sure_backlog(queue, low), below=near,
                    settle=settle, horizon=horizon, crossing=low,
                    caller=f"fluid_recovery_time: an outage of {duration:g} s")
    if run.outcome == "above" or (run.outcome == "end" and run.backlog >= low):
        return math.inf
    return max(run.crossed - duration, 0.0) if run.crossed is not None else 0.0
