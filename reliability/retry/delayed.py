"""The delayed fluid model's integrator: a retrying queue through phases of request rate and capacity.

The backlog ``Q`` (requests in system, abandoned attempts included) follows
``dQ/dt = (attempts arriving) - mu min(Q, c(t))``; an attempt sent at backlog ``Q`` times out with
the exact FCFS probability ``p(Q)`` of the servers in place, and its retry arrives a timeout (plus
the mean backoff of that retry) later. Retries are tracked by generation, so this is a delay
differential equation, integrated with a step of ``timeout / 40``.

A run is a list of :class:`Phase` s (a request-rate multiple and a server count, until a time),
which says both kinds of trigger of Huang et al. (OSDI 2022): a load spike (the rate multiplied)
and a capacity drop (fewer servers, none in an outage). Because the backlog is carried from one
phase to the next, the model remembers how long a service was down: what an outage leaves behind
is what the servers must work off when they return. :mod:`.fluid` asks its questions of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
from scipy import special

from .policies import Backoff, thinned_retry_share

__all__ = ["MAX_FLUID_STEPS", "Phase", "Run", "backlog_grid", "conditional_failure", "integrate", "tables"]

#: Most time steps of one fluid run (its arrays hold (retries + 1) x steps floats).
MAX_FLUID_STEPS = 2_000_000


@dataclass(frozen=True)
class Phase:
    """Until ``end`` (s), requests arrive at ``multiple`` x the base rate to ``servers`` servers."""

    end: float
    multiple: float
    servers: int


@dataclass(frozen=True)
class Run:
    """How a fluid run ended: ``above`` (the backlog passed ``above``), ``below`` (it fell under
    ``below`` after ``settle``) or ``end`` (the horizon), at ``time`` with ``backlog``;
    ``crossed`` is the last time the backlog fell through ``crossing`` (None: it never did)."""

    outcome: str
    time: float
    backlog: float
    crossed: float | None = None


@dataclass(frozen=True)
class _Table:
    """Retry share per backlog for one server count, and its running integral over the backlog."""

    shares: np.ndarray
    integral: np.ndarray
    last: float  # the share past the grid's top
    share_list: list  # the same as Python floats, for the step loop
    integral_list: list


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


def backlog_grid(queue) -> np.ndarray:
    """Backlogs on which the fluid model is tabulated."""
    c, mu, t = queue.servers, queue.service_rate, queue.timeout
    # beyond this backlog the wait alone exceeds the timeout with overwhelming probability
    top = c + 2.0 * c * mu * t + 12.0 * math.sqrt(c * mu * t) + 50.0
    if not math.isfinite(top):
        raise ValueError(f"the fluid model's backlogs (up to servers x service_rate x timeout) must stay within the "
                         f"float range, got servers={c}, service_rate={mu!r}, timeout={t!r}")
    return np.linspace(0.0, top, 20001)


def conditional_failure_with(queue, servers: int, backlogs: np.ndarray) -> np.ndarray:
    """``p(Q)`` with ``servers`` in place of the queue's own (all attempts fail with none)."""
    if servers == 0:
        return np.ones(np.shape(backlogs))
    if servers == queue.servers:
        return conditional_failure(queue, backlogs)
    return conditional_failure(SimpleNamespace(servers=servers, service_rate=queue.service_rate,
                                               timeout=queue.timeout), backlogs)


def retry_shares(queue, failure: np.ndarray) -> np.ndarray:
    """Retries sent per attempt of each generation, so that generations reproduce the policy's A(p)."""
    share = getattr(queue.policy, "retry_share", None)
    if share is None:  # a user's policy: thin every generation alike
        return thinned_retry_share(queue.policy, failure, timed_out=queue._timed_out)
    return np.asarray(share(failure, timed_out=queue._timed_out), dtype=np.float64)


def _table(queue, servers: int, backlogs: np.ndarray) -> _Table:
    shares = retry_shares(queue, conditional_failure_with(queue, servers, backlogs))
    cell = backlogs[1] - backlogs[0]
    integral = np.concatenate([[0.0], np.cumsum(0.5 * (shares[1:] + shares[:-1]) * cell)])
    return _Table(shares, integral, float(shares[-1]), shares.tolist(), integral.tolist())


def _interp(x: float, xs: list, ys: list, step: float) -> float:
    """``numpy.interp(x, xs, ys)`` on an evenly spaced grid, in plain floats (the same cell and formula).

    The fluid model asks for one point at a time, ~10^5 times a run, where numpy's cost per
    call was most of the run.
    """
    last = len(xs) - 1
    if x != x:
        return x
    if x >= xs[last]:
        return ys[last]  # numpy: the last value at the end and beyond it
    if x < xs[0]:
        return ys[0]
    j = min(int(x / step), last - 1)  # the cell, from the spacing; rounding moves it at most one
    while xs[j] > x:
        j -= 1
    while xs[j + 1] <= x:
        j += 1
    if xs[j] == x:
        return ys[j]
    slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j])
    value = slope * (x - xs[j]) + ys[j]
    if value != value:  # as numpy: a NaN from one end, try the other
        value = slope * (x - xs[j + 1]) + ys[j + 1]
        if value != value and ys[j] == ys[j + 1]:
            value = ys[j]
    return value


def _share_over(table: _Table, backlogs: list, before: float, after: float) -> float:
    """Mean retry share over the backlogs from ``before`` to ``after``.

    The attempts sent in one step find backlogs from ``before`` to ``after`` (FCFS: each sees
    those ahead of it), so their retry share is the mean over that range -- not its value at the
    start, which would let a burst arriving within one step see the pre-burst queue.
    """
    top, step = backlogs[-1], backlogs[1] - backlogs[0]
    if before >= top and after >= top:
        return table.last  # past the grid every attempt waits past the timeout: the share is constant
    if abs(after - before) <= step:
        return _interp(0.5 * (before + after), backlogs, table.share_list, step)
    # past the grid the share stays at its last value (every attempt there waits past the timeout)
    start = _interp(before, backlogs, table.integral_list, step) + table.last * max(before - top, 0.0)
    end = _interp(after, backlogs, table.integral_list, step) + table.last * max(after - top, 0.0)
    return (end - start) / (after - before)


def retry_delays(queue, backoff: Backoff | None, dt: float) -> np.ndarray:
    """Steps from an attempt to its retry, per retry generation (a timeout plus the mean backoff)."""
    r = int(queue.policy.max_attempts) - 1
    extra = [float(backoff.mean(k)) if backoff is not None else 0.0 for k in range(1, r + 1)]
    return np.array([max(1, int(round((queue.timeout + b) / dt))) for b in extra], dtype=np.int64)


def _schedule(phases, steps: int, dt: float):
    """Per step: the mean rate multiple and servers over ``[t, t + dt]``, and the phase at its middle.

    A phase that ends within a step gets its share of it, so a spike adds exactly its extra
    requests and a drop removes exactly its server-seconds, whatever their length against ``dt``.
    Only the steps up to the start of the last phase are listed; the last phase holds after them.
    """
    last = phases[-2].end if len(phases) > 1 else 0.0
    steps = min(steps, int(math.ceil(last / dt)) + 1)
    starts = np.arange(steps) * dt
    multiples, servers = np.zeros(steps), np.zeros(steps)
    middle = np.full(steps, len(phases) - 1)
    begin = 0.0
    for k, phase in enumerate(phases):  # ends increase; the last phase never ends
        overlap = np.clip(np.minimum(starts + dt, phase.end) - np.maximum(starts, begin), 0.0, dt) / dt
        multiples += overlap * phase.multiple
        servers += overlap * phase.servers
        middle = np.where((middle == len(phases) - 1) & (starts + 0.5 * dt < phase.end), np.minimum(middle, k), middle)
        begin = phase.end
    return multiples.tolist(), servers.tolist(), middle.tolist()


def tables(queue, servers) -> dict:
    """The retry-share tables of the fluid model for each server count in ``servers``."""
    backlogs = backlog_grid(queue)
    return {c: _table(queue, c, backlogs) for c in sorted(set(servers) | {queue.servers})}


def integrate(queue, base_rate: float, phases, *, healthy: float, backoff: Backoff | None = None,
              above: float = math.inf, below: float = -math.inf, settle: float = math.inf,
              horizon: float, crossing: float = math.nan, shares_by_servers: dict | None = None,
              caller: str = "the fluid model") -> Run:
    """Run the delayed fluid model from the healthy backlog (and its steady retries) through ``phases``.

    The last phase lasts to ``horizon``. The run stops when the backlog passes ``above`` (at
    any time) or, after ``settle``, falls under ``below``; it notes the last time the backlog fell
    through ``crossing``. ``shares_by_servers`` (from
    :func:`tables`) saves building the tables again when one setting is run many times.
    """
    dt = queue.timeout / 40.0
    steps = horizon / dt
    if not steps <= MAX_FLUID_STEPS:
        raise ValueError(f"{caller}: {horizon:.4g} s of fluid run need {steps:.3g} steps of timeout / 40, more than "
                         f"{MAX_FLUID_STEPS:,} (timeout={queue.timeout!r}, service_rate={queue.service_rate!r})")
    steps = int(math.ceil(steps))
    phases = [*phases[:-1], Phase(math.inf, phases[-1].multiple, phases[-1].servers)]
    backlogs = backlog_grid(queue)
    grid = backlogs.tolist()
    known = shares_by_servers or tables(queue, [phase.servers for phase in phases])
    normal = known[queue.servers]
    lag = retry_delays(queue, backoff, dt)
    generations, history = lag.size, int(lag.max()) if lag.size else 0
    mu = queue.service_rate
    share_h = float(np.interp(healthy, backlogs, normal.shares))
    # plain Python floats: a step is a handful of scalar operations, where numpy's cost per call dominates
    rates = [[base_rate * share_h**g] * (history + 1) + [0.0] * steps for g in range(generations + 1)]
    shares = [share_h] * (history + 1) + [0.0] * steps
    lags = [int(x) for x in lag]
    first = rates[0]
    q, crossed = healthy, None
    multiples, capacities, middles = _schedule(phases, steps, dt)
    listed, final = len(multiples), phases[-1]
    by_step = [known[phase.servers] for phase in phases]
    for i in range(history, history + steps):
        t = (i - history) * dt
        k = i - history
        if k < listed:
            servers, multiple, table = capacities[k], multiples[k], by_step[middles[k]]
        else:
            servers, multiple, table = final.servers, final.multiple, by_step[-1]
        arriving = first[i] = base_rate * multiple
        for g in range(generations):
            source = i - lags[g]
            rate = rates[g + 1][i] = rates[g][source] * shares[source]
            arriving += rate
        before = q
        if q >= servers:
            q = q + dt * (arriving - servers * mu)
        else:  # implicit in the linear service term: stable for any step
            q = (q + dt * arriving) / (1.0 + mu * dt)
        q = max(q, 0.0)
        shares[i] = _share_over(table, grid, before, q)
        if before >= crossing > q:
            crossed = t + dt
        if q > above:
            return Run("above", t + dt, q, crossed)
        if t + dt > settle and q < below:
            return Run("below", t + dt, q, crossed)
    return Run("end", steps * dt, q, crossed)
