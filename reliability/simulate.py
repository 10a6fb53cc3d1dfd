"""Stochastic discrete-event simulation: the independent check on every analytic model.

Nothing here calls an analytic formula. The simulators only draw exponential inter-arrival,
service and patience times from a seeded numpy ``Generator`` and follow each customer through
the queue, so their agreement with :mod:`reliability.erlang` (within a confidence interval) is
evidence that the formulas are right, and their disagreement a reason to look.

Two kinds of simulator live here.

* The M/M/c family -- :func:`simulate_mmc` (FCFS, infinite queue), :func:`simulate_mmcc`
  (loss, Erlang B), :func:`simulate_mmc_abandonment` (M/M/c+M, Erlang A) and
  :func:`simulate_mmck` (at most ``K`` in the system) -- exploits the structure of FCFS queues
  instead of a general event heap. By the Kiefer-Wolfowitz recursion a customer goes to the
  server that frees first; its start is ``max(arrival, earliest free time)`` and that server's
  free time becomes ``start + service``. Nothing else has to be known, and the recursion is
  the same for every replication, so ``R`` independent replications advance together: one
  Python loop over customers, each step a handful of numpy operations on an ``R x c`` array of
  server free times. For a single server the Lindley recursion is vectorised over customers
  too (``W = X - running minimum of X`` with ``X`` the cumulated ``service - inter-arrival``).
  Each summary gives the mean over replications and a Student-t confidence interval, after a
  warm-up of discarded customers in each replication.
* The retrying queue -- :func:`simulate_retrying_queue` and its loss variant
  :func:`simulate_connection_pool` -- needs a real event loop: clients time out, retry after a
  backoff under a policy from :mod:`reliability.retry` (driven through ``policy.limiter()``),
  and capacity and the request rate change in time. It keeps the FCFS trick -- each admitted
  attempt's start and departure are known the moment it arrives, from a heap of the departure
  times of the attempts in service (with a time-varying number of servers) -- so the event heap
  holds only client-side events: responses, give-ups and retries. A client that gives up does
  not cancel its attempt: the server still spends the service time on it (wasted work), which
  is what lets a retry storm outlive its trigger.

Examples
--------
>>> from reliability.simulate import simulate_mmc
>>> sim = simulate_mmc(2, 1.0, 1.0, customers=20_000, replications=20, seed=1)
>>> sim.p_wait.contains(1 / 3)   # Erlang C for 2 servers at 1 Erlang is 1/3
True
"""

from __future__ import annotations

import heapq
import math
from array import array
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy import stats

from ._validate import number, whole

__all__ = [
    "Estimate",
    "QueueSimulation",
    "simulate_mmc",
    "simulate_mmcc",
    "simulate_mmc_abandonment",
    "simulate_mmck",
    "simulate_engset",
    "Schedule",
    "RetrySummary",
    "RetrySimulation",
    "simulate_retrying_queue",
    "simulate_connection_pool",
]

#: Most customers (all replications together) one M/M/c-family call may simulate: about half
#: an hour at full speed. Beyond it a typo (1e12 for 1e6) would look like a hang.
MAX_CUSTOMERS = 10**10
#: Most floats held at once in the M/M/c-family state (replications x servers, or x capacity).
MAX_STATE = 20_000_000
#: Default bound on the attempts a retrying-queue run may make (about 1 GB of records, minutes).
ATTEMPT_LIMIT = 20_000_000
#: Most intervals in a retrying-queue time series.
MAX_INTERVALS = 10_000_000


# ----------------------------------------------------------------------------------------
# Validation at the door
# ----------------------------------------------------------------------------------------

def _whole(name: str, value: Any, minimum: int) -> int:
    return whole(name, value, minimum)


def _number(name: str, value: Any, *, minimum: float = 0.0, strict: bool = True,
            allow_inf: bool = False) -> float:
    return number(name, value, minimum=minimum, strict=strict, allow_inf=allow_inf)


#: Smallest rate (arrival, service, abandonment) accepted: times are drawn as ``Exp(1) / rate``, and
#: below this the simulated clock would overflow to inf (an overflow warning, then NaN estimates).
MIN_RATE = 1e-250


def _rate(name: str, value: Any) -> float:
    rate = _number(name, value)
    if rate < MIN_RATE:
        raise ValueError(f"{name} must be >= {MIN_RATE:g} (smaller rates overflow the simulated clock), got {value!r}")
    return rate


def _check_size(what: str, per_replication: int, replications: int) -> None:
    """Refuse, before anything runs, a simulation larger than MAX_CUSTOMERS in all."""
    total = per_replication * replications
    if total > MAX_CUSTOMERS:
        raise ValueError(
            f"{what} x replications = {total:,} exceeds the limit of {MAX_CUSTOMERS:,} {what} for one "
            f"simulation ({what}={per_replication}, replications={replications})"
        )


def _level(value: Any) -> float:
    level = _number("level", value, minimum=0.0)
    if level >= 1.0:
        raise ValueError(f"level must be in (0, 1), got {value!r}")
    return level


def _seed(value: Any):
    if isinstance(value, (np.random.SeedSequence, np.random.Generator)) or value is None:
        return value
    return _whole("seed", value, 0)


def _wait_times(values: Any) -> tuple[float, ...]:
    try:
        items = [values] if np.ndim(values) == 0 else list(np.asarray(values, dtype=object).ravel())
    except Exception:
        raise ValueError(f"wait_times must be a sequence of numbers >= 0, got {values!r}") from None
    out = tuple(_number(f"wait_times[{i}]", v, strict=False) for i, v in enumerate(items))
    return out


# ----------------------------------------------------------------------------------------
# Estimates
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Estimate:
    """A simulation estimate: the mean over independent replications and its t-interval.

    ``low`` and ``high`` bound a two-sided Student-t confidence interval at ``level`` with
    ``replications - 1`` degrees of freedom.
    """

    value: float
    low: float
    high: float
    level: float
    replications: int

    @property
    def half_width(self) -> float:
        return 0.5 * (self.high - self.low)

    def contains(self, reference: float) -> bool:
        """True when ``reference`` lies inside the confidence interval (ends included)."""
        return bool(self.low <= float(reference) <= self.high)

    def __repr__(self) -> str:
        return f"{self.value:.6g} [{self.low:.6g}, {self.high:.6g}] ({self.level:.3g} CI, R={self.replications})"


def _estimate(samples: np.ndarray, level: float) -> Estimate:
    samples = np.asarray(samples, dtype=np.float64)
    n = samples.size
    mean = float(samples.mean())
    spread = float(samples.std(ddof=1)) if n > 1 else 0.0
    half = float(stats.t.ppf(0.5 + level / 2.0, n - 1)) * spread / math.sqrt(n) if spread > 0 else 0.0
    return Estimate(value=mean, low=mean - half, high=mean + half, level=level, replications=n)


@dataclass(frozen=True)
class QueueSimulation:
    """Summary of a simulated M/M/c-family queue (steady state, after warm-up).

    Every probability is a share of *arrivals* after the warm-up, blocked and abandoning
    customers included: ``p_wait`` arrivals that found every server busy and joined the queue
    (abandoning customers included, as in Erlang A), ``p_block`` arrivals turned away,
    ``p_abandon`` arrivals that left the queue before service, ``mean_wait`` the mean time in
    queue over all arrivals (blocked: 0; abandoning: the time they waited), ``wait_sf[i]`` the
    share of arrivals whose time in queue exceeds ``wait_times[i]``, and ``utilisation`` the
    mean share of busy servers. ``customers`` counts every simulated customer, warm-up included
    (for the Engset model: the arrivals counted, and ``arrival_rate`` is the rate of one idle
    source with ``service_rate`` 1).
    """

    model: str
    servers: int
    capacity: int | None
    arrival_rate: float
    service_rate: float
    abandonment_rate: float
    customers: int
    customers_per_replication: int
    warmup: int
    replications: int
    level: float
    seed: Any
    p_wait: Estimate
    p_block: Estimate
    p_abandon: Estimate
    mean_wait: Estimate
    utilisation: Estimate
    wait_times: tuple[float, ...] = ()
    wait_sf: tuple[Estimate, ...] = ()
    sources: int | None = None

    def wait_sf_at(self, wait_time: float) -> Estimate:
        """The estimate of ``P(W > wait_time)`` for one of the ``wait_times`` simulated."""
        for t, estimate in zip(self.wait_times, self.wait_sf):
            if t == wait_time:
                return estimate
        raise ValueError(f"wait_time must be one of the simulated wait_times {self.wait_times}, got {wait_time!r}")

    def to_frame(self) -> pd.DataFrame:
        """One row per estimate: ``metric``, ``wait_time`` (for ``wait_sf``), ``value``, ``low``, ``high``."""
        rows = []
        for name in ("p_wait", "p_block", "p_abandon", "mean_wait", "utilisation"):
            e = getattr(self, name)
            rows.append({"metric": name, "wait_time": np.nan, "value": e.value, "low": e.low, "high": e.high})
        for t, e in zip(self.wait_times, self.wait_sf):
            rows.append({"metric": "wait_sf", "wait_time": t, "value": e.value, "low": e.low, "high": e.high})
        frame = pd.DataFrame(rows)
        frame["level"] = self.level
        frame["replications"] = self.replications
        return frame

    def __repr__(self) -> str:
        cap = "" if self.capacity is None else f", capacity={self.capacity}"
        if self.sources is not None:
            cap += f", sources={self.sources}"
        patience = f", abandonment_rate={self.abandonment_rate:g}" if self.abandonment_rate > 0 else ""
        lines = [
            f"QueueSimulation({self.model}: servers={self.servers}{cap}, arrival_rate={self.arrival_rate:g}, "
            f"service_rate={self.service_rate:g}{patience}; {self.replications} x {self.customers_per_replication:,} "
            f"customers, warm-up {self.warmup:,}, seed={self.seed!r})",
            f"  p_wait      = {self.p_wait!r}",
            f"  p_block     = {self.p_block!r}",
            f"  p_abandon   = {self.p_abandon!r}",
            f"  mean_wait   = {self.mean_wait!r}",
            f"  utilisation = {self.utilisation!r}",
        ]
        lines += [f"  P(W > {t:g}) = {e!r}" for t, e in zip(self.wait_times, self.wait_sf)]
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# M/M/c family: kernels (one Python step per customer, numpy across replications)
# ----------------------------------------------------------------------------------------

def _kernel_fcfs(free, rows, arrive, service, start):
    """FCFS infinite queue: Kiefer-Wolfowitz on the R x c server free times."""
    maximum = np.maximum
    for i in range(arrive.shape[0]):
        idx = free.argmin(1)
        st = maximum(arrive[i], free[rows, idx], out=start[i])
        free[rows, idx] = st + service[i]


def _kernel_loss(free, rows, arrive, service, admitted):
    """Loss system: an arrival is served only if some server is already free."""
    where = np.where
    for i in range(arrive.shape[0]):
        idx = free.argmin(1)
        f = free[rows, idx]
        a = arrive[i]
        ok = f <= a
        admitted[i] = ok
        free[rows, idx] = where(ok, a + service[i], f)


def _kernel_abandon(free, rows, arrive, service, patience, start, served):
    """FCFS with impatience: a customer whose wait would exceed its patience leaves unserved.

    The wait a customer would have is fixed by the customers ahead of it that stay, so it is
    known on arrival (FCFS), and a customer who leaves never occupies a server.
    """
    maximum, where = np.maximum, np.where
    for i in range(arrive.shape[0]):
        idx = free.argmin(1)
        f = free[rows, idx]
        a = arrive[i]
        st = maximum(a, f, out=start[i])
        ok = (st - a) <= patience[i]
        served[i] = ok
        free[rows, idx] = where(ok, st + service[i], f)


def _kernel_finite(free, slots, rows, arrive, service, start, admitted):
    """FCFS with at most K in the system.

    ``slots`` holds the departure times of the last customer to hold each of the K places in
    the system: an arrival finds room exactly when some slot's departure is already past.
    """
    maximum, where = np.maximum, np.where
    for i in range(arrive.shape[0]):
        a = arrive[i]
        j = slots.argmin(1)
        g = slots[rows, j]
        ok = g <= a
        admitted[i] = ok
        idx = free.argmin(1)
        f = free[rows, idx]
        st = maximum(a, f, out=start[i])
        d = st + service[i]
        free[rows, idx] = where(ok, d, f)
        slots[rows, j] = where(ok, d, g)


def _lindley(inter, service, state):
    """Waiting times of a single FCFS server for a block of customers, vectorised over them.

    ``W_k = max(0, W_{k-1} + S_{k-1} - T_k)`` unrolls to ``W_k = X_k - min(-W_0, min_{j<=k} X_j)``
    with ``X`` the cumulated ``S_{k-1} - T_k`` (``X_0 = 0``). ``state`` carries the last
    customer's wait and service between blocks (None before the first block).
    """
    m = inter.shape[0]
    if state is None:
        w0 = np.zeros(inter.shape[1])
    else:
        w_last, s_last = state
        w0 = np.maximum(w_last + s_last - inter[0], 0.0)
    x = np.empty(inter.shape)
    x[0] = 0.0
    if m > 1:
        np.cumsum(service[:-1] - inter[1:], axis=0, out=x[1:])
    y = x.copy()
    y[0] = -w0
    wait = x - np.minimum.accumulate(y, axis=0)
    return wait, (wait[-1].copy(), service[-1].copy())


def _simulate_family(model, servers, capacity, arrival_rate, service_rate, abandonment_rate,
                     customers, replications, warmup, wait_times, level, seed):
    c, lam, mu, theta = servers, arrival_rate, service_rate, abandonment_rate
    n, r = customers, replications
    _check_size("customers", n, r)
    width = max(c, capacity or 0)
    if r * width > MAX_STATE:
        raise ValueError(
            f"replications x max(servers, capacity) = {r * width:,} exceeds the {MAX_STATE:,} numbers "
            f"the simulation state may hold (replications={r}, servers={c}, capacity={capacity})"
        )
    rng = np.random.default_rng(seed)
    rows = np.arange(r)
    free = np.zeros((r, c))
    slots = np.zeros((r, capacity)) if model == "M/M/c/K" else None
    lindley = model == "M/M/c" and c == 1
    lindley_state = None
    # customers per block: the per-block arrays stay near 1M numbers whatever R is
    block = int(min(4096, max(64, 2**20 // r)))
    clock = np.zeros(r)
    t_begin = np.zeros(r)  # arrival time of the last warm-up customer (0 without warm-up)
    counted = 0
    waited = np.zeros(r)
    blocked = np.zeros(r)
    abandoned = np.zeros(r)
    wait_total = np.zeros(r)
    busy_total = np.zeros(r)
    beyond = np.zeros((len(wait_times), r))
    for b0 in range(0, n, block):
        m = min(block, n - b0)
        inter = rng.standard_exponential((m, r))
        inter /= lam
        arrive = np.cumsum(inter, axis=0)
        arrive += clock
        service = rng.standard_exponential((m, r))
        service /= mu
        served = None
        if lindley:
            wait, lindley_state = _lindley(inter, service, lindley_state)
        elif model == "M/M/c":
            start = np.empty((m, r))
            _kernel_fcfs(free, rows, arrive, service, start)
            wait = start - arrive
        elif model == "M/M/c/c":
            served = np.empty((m, r), dtype=bool)
            _kernel_loss(free, rows, arrive, service, served)
            wait = np.zeros((m, r))
        elif model == "M/M/c+M":
            patience = rng.standard_exponential((m, r))
            patience /= theta
            start = np.empty((m, r))
            served = np.empty((m, r), dtype=bool)
            _kernel_abandon(free, rows, arrive, service, patience, start, served)
            wait = np.minimum(start - arrive, patience)
        else:  # M/M/c/K
            start = np.empty((m, r))
            served = np.empty((m, r), dtype=bool)
            _kernel_finite(free, slots, rows, arrive, service, start, served)
            wait = np.where(served, start - arrive, 0.0)
        clock = arrive[-1].copy()
        if b0 <= warmup - 1 < b0 + m:
            t_begin = arrive[warmup - 1 - b0].copy()
        lo = max(0, warmup - b0)
        if lo >= m:
            continue
        w = wait[lo:]
        counted += m - lo
        waited += (w > 0).sum(axis=0)
        wait_total += w.sum(axis=0)
        for k, t in enumerate(wait_times):
            beyond[k] += (w > t).sum(axis=0)
        if served is None:
            busy_total += service[lo:].sum(axis=0)
        else:
            ok = served[lo:]
            busy_total += np.where(ok, service[lo:], 0.0).sum(axis=0)
            if model == "M/M/c+M":
                abandoned += (~ok).sum(axis=0)
            else:
                blocked += (~ok).sum(axis=0)
    span = clock - t_begin
    return QueueSimulation(
        model=model,
        servers=c,
        capacity=capacity,
        arrival_rate=lam,
        service_rate=mu,
        abandonment_rate=theta,
        customers=n * r,
        customers_per_replication=n,
        warmup=warmup,
        replications=r,
        level=level,
        seed=seed if not isinstance(seed, np.random.Generator) else "Generator",
        p_wait=_estimate(waited / counted, level),
        p_block=_estimate(blocked / counted, level),
        p_abandon=_estimate(abandoned / counted, level),
        mean_wait=_estimate(wait_total / counted, level),
        utilisation=_estimate(busy_total / (c * span), level),
        wait_times=wait_times,
        wait_sf=tuple(_estimate(beyond[k] / counted, level) for k in range(len(wait_times))),
    )


def _family_arguments(servers, arrival_rate, service_rate, customers, replications, warmup,
                      wait_times, level, seed):
    c = _whole("servers", servers, 1)
    lam = _rate("arrival_rate", arrival_rate)
    mu = _rate("service_rate", service_rate)
    n = _whole("customers", customers, 2)
    r = _whole("replications", replications, 2)
    w = n // 10 if warmup is None else _whole("warmup", warmup, 0)
    if w >= n:
        raise ValueError(f"warmup must be < customers ({n}), got {warmup!r}")
    return c, lam, mu, n, r, w, _wait_times(wait_times), _level(level), _seed(seed)


_FAMILY_DOC = """
    customers : int, optional
        Customers simulated in each replication, warm-up included.
    replications : int, optional
        Independent replications (>= 2); the interval is a Student-t interval across them.
        They advance together in numpy arrays, so 50 or more cost little more than 10.
    warmup : int, optional
        Customers discarded at the start of each replication (default ``customers // 10``);
        every replication starts empty.
    wait_times : sequence of float, optional
        Thresholds ``t`` for which ``P(W > t)`` is estimated.
    level : float, optional
        Confidence level of the intervals, in (0, 1).
    seed : int, SeedSequence or Generator, optional
        Seed of the numpy Generator: the same seed and parameters give the same numbers.
"""


def simulate_mmc(servers, arrival_rate, service_rate, *, customers=20_000, replications=50,
                 warmup=None, wait_times=(), level=0.95, seed=0) -> QueueSimulation:
    """Simulate the FCFS M/M/c queue with an infinite waiting room.

    Parameters
    ----------
    servers : int
        Servers ``c >= 1``.
    arrival_rate, service_rate : float
        ``lambda > 0`` and ``mu > 0``; the queue must be stable, ``lambda < c mu``.
    {family}
    Returns
    -------
    QueueSimulation
        ``p_wait`` (compare with Erlang C), ``mean_wait``, ``wait_sf``, ``utilisation``.

    Examples
    --------
    >>> sim = simulate_mmc(10, 8.0, 1.0, customers=20_000, replications=20, wait_times=[0.5], seed=7)
    >>> 0.3 < sim.p_wait.value < 0.5 and sim.p_block.value == 0.0
    True
    """
    c, lam, mu, n, r, w, wt, level, seed = _family_arguments(
        servers, arrival_rate, service_rate, customers, replications, warmup, wait_times, level, seed)
    if lam >= c * mu:
        raise ValueError(
            f"arrival_rate must be < servers x service_rate = {c * mu:g} for a steady state, got {arrival_rate!r}"
        )
    return _simulate_family("M/M/c", c, None, lam, mu, 0.0, n, r, w, wt, level, seed)


def simulate_mmcc(servers, arrival_rate, service_rate, *, customers=20_000, replications=50,
                  warmup=None, wait_times=(), level=0.95, seed=0) -> QueueSimulation:
    """Simulate the M/M/c/c loss system (no waiting room): compare ``p_block`` with Erlang B.

    Parameters
    ----------
    servers : int
        Servers ``c >= 1``.
    arrival_rate, service_rate : float
        ``lambda > 0`` and ``mu > 0`` (any load: a loss system is always stable).
    {family}
    Examples
    --------
    >>> sim = simulate_mmcc(5, 4.0, 1.0, customers=20_000, replications=20, seed=3)
    >>> sim.p_wait.value
    0.0
    """
    c, lam, mu, n, r, w, wt, level, seed = _family_arguments(
        servers, arrival_rate, service_rate, customers, replications, warmup, wait_times, level, seed)
    return _simulate_family("M/M/c/c", c, c, lam, mu, 0.0, n, r, w, wt, level, seed)


def simulate_mmc_abandonment(servers, arrival_rate, service_rate, abandonment_rate, *, customers=20_000,
                             replications=50, warmup=None, wait_times=(), level=0.95,
                             seed=0) -> QueueSimulation:
    """Simulate M/M/c+M: FCFS, infinite queue, exponential patience (compare with Erlang A).

    A waiting customer leaves unserved when its patience (exponential, mean
    ``1 / abandonment_rate``) runs out before service starts; it then never uses a server.

    Parameters
    ----------
    servers : int
        Servers ``c >= 1``.
    arrival_rate, service_rate, abandonment_rate : float
        ``lambda > 0``, ``mu > 0`` and ``theta > 0`` (any load: abandonment keeps it stable).
    {family}
    Examples
    --------
    >>> sim = simulate_mmc_abandonment(3, 4.0, 1.0, 0.5, customers=20_000, replications=20, seed=2)
    >>> sim.p_abandon.value > 0
    True
    """
    c, lam, mu, n, r, w, wt, level, seed = _family_arguments(
        servers, arrival_rate, service_rate, customers, replications, warmup, wait_times, level, seed)
    theta = _rate("abandonment_rate", abandonment_rate)
    return _simulate_family("M/M/c+M", c, None, lam, mu, theta, n, r, w, wt, level, seed)


def simulate_mmck(servers, capacity, arrival_rate, service_rate, *, customers=20_000, replications=50,
                  warmup=None, wait_times=(), level=0.95, seed=0) -> QueueSimulation:
    """Simulate M/M/c/K: FCFS, at most ``capacity`` customers in the system (compare with ``mmck``).

    Parameters
    ----------
    servers : int
        Servers ``c >= 1``.
    capacity : int
        ``K >= servers``: the most customers in service plus waiting; an arrival that finds
        ``K`` is blocked.
    arrival_rate, service_rate : float
        ``lambda > 0`` and ``mu > 0`` (any load).
    {family}
    Examples
    --------
    >>> sim = simulate_mmck(2, 4, 3.0, 1.0, customers=20_000, replications=20, seed=4)
    >>> 0 < sim.p_block.value < 1
    True
    """
    c, lam, mu, n, r, w, wt, level, seed = _family_arguments(
        servers, arrival_rate, service_rate, customers, replications, warmup, wait_times, level, seed)
    k = _whole("capacity", capacity, 1)
    if k < c:
        raise ValueError(f"capacity must be >= servers ({c}), got {capacity!r}")
    return _simulate_family("M/M/c/K", c, k, lam, mu, 0.0, n, r, w, wt, level, seed)


def simulate_engset(servers, sources, source_load, *, transitions=100_000, replications=50, warmup=None,
                    level=0.95, seed=0) -> QueueSimulation:
    """Simulate the Engset loss system: ``sources`` finite sources, ``servers`` servers, no queue.

    Each idle source sends a request at rate ``source_load`` (service rate 1); a request that
    finds every server busy is lost and its source stays idle. The birth-death chain of busy
    servers is followed transition by transition (arrival or departure), all replications at
    once; ``p_block`` is the share of *arrivals* that found every server busy (call
    congestion, compare with ``engset``), ``utilisation`` the time-average share of busy servers.

    Parameters
    ----------
    servers : int
        Servers ``c >= 1``.
    sources : int
        Sources ``N >= 1``.
    source_load : float
        Request rate of an idle source over the service rate, ``> 0``.
    transitions : int, optional
        Transitions (arrivals and departures) per replication, warm-up included; the summary's
        ``customers`` counts the arrivals among them.
    replications, level, seed :
        As for :func:`simulate_mmc`.
    warmup : int, optional
        Transitions discarded at the start of each replication (default ``transitions // 10``).

    Examples
    --------
    >>> sim = simulate_engset(4, 10, 0.5, transitions=20_000, replications=20, seed=1)
    >>> 0 < sim.p_block.value < 1 and sim.p_wait.value == 0.0
    True
    """
    c = _whole("servers", servers, 1)
    n_sources = _whole("sources", sources, 1)
    gamma = _rate("source_load", source_load)
    n = _whole("transitions", transitions, 2)
    r = _whole("replications", replications, 2)
    w = n // 10 if warmup is None else _whole("warmup", warmup, 0)
    if w >= n:
        raise ValueError(f"warmup must be < transitions ({n}), got {warmup!r}")
    level = _level(level)
    seed = _seed(seed)
    _check_size("transitions", n, r)
    rng = np.random.default_rng(seed)
    busy = np.zeros(r)
    arrivals = np.zeros(r)
    lost = np.zeros(r)
    busy_time = np.zeros(r)
    elapsed = np.zeros(r)
    block = int(min(4096, max(64, 2**20 // r)))
    for b0 in range(0, n, block):
        m = min(block, n - b0)
        uniform = rng.random((m, r))
        hold = rng.standard_exponential((m, r))
        for i in range(m):
            up = (n_sources - busy) * gamma
            total = up + busy
            arrival = uniform[i] * total < up
            full = arrival & (busy >= c)
            if b0 + i >= w:
                dt = hold[i] / total
                busy_time += busy * dt
                elapsed += dt
                arrivals += arrival
                lost += full
            busy += arrival & ~full
            busy -= ~arrival
    if (arrivals == 0).any():
        raise ValueError(
            f"transitions - warmup = {n - w} is too few: a replication saw no arrival after the warm-up"
        )
    zero = _estimate(np.zeros(r), level)
    return QueueSimulation(
        model="Engset", servers=c, capacity=c, arrival_rate=gamma, service_rate=1.0, abandonment_rate=0.0,
        customers=int(arrivals.sum()), customers_per_replication=n, warmup=w, replications=r, level=level,
        seed=seed if not isinstance(seed, np.random.Generator) else "Generator",
        p_wait=zero, p_block=_estimate(lost / arrivals, level), p_abandon=zero, mean_wait=zero,
        utilisation=_estimate(busy_time / (c * elapsed), level), sources=n_sources,
    )


for _f in (simulate_mmc, simulate_mmcc, simulate_mmc_abandonment, simulate_mmck):
    _f.__doc__ = _f.__doc__.replace("    {family}\n", _FAMILY_DOC.lstrip("\n"))
del _f


# ----------------------------------------------------------------------------------------
# Piecewise-constant schedules (request rate, servers)
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Schedule:
    """A piecewise-constant function of time: ``values[i]`` on ``[times[i], times[i+1])``.

    ``times[0]`` must be 0; the last value holds for ever. Used for a request rate that
    changes in time (a surge) and for a number of servers that changes (an outage, a
    scale-up).

    Examples
    --------
    >>> surge = Schedule.surge(7.0, multiple=5.0, start=100.0, duration=60.0)
    >>> surge
    Schedule(times=(0.0, 100.0, 160.0), values=(7.0, 35.0, 7.0))
    >>> surge(130.0), surge.integral(0.0, 200.0)
    (35.0, 3080.0)
    """

    times: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self):
        try:
            times = tuple(float(t) for t in self.times)
            values = tuple(float(v) for v in self.values)
        except (TypeError, ValueError):
            raise ValueError(
                f"Schedule.times and Schedule.values must be sequences of numbers, got {self.times!r}, {self.values!r}"
            ) from None
        if len(times) == 0 or len(times) != len(values):
            raise ValueError(
                f"Schedule.times and Schedule.values must be non-empty and of equal length, "
                f"got {len(times)} and {len(values)}"
            )
        if times[0] != 0.0:
            raise ValueError(f"Schedule.times[0] must be 0, got {self.times[0]!r}")
        for i, t in enumerate(times):
            if not math.isfinite(t) or (i > 0 and t <= times[i - 1]):
                raise ValueError(f"Schedule.times must be finite and strictly increasing, got times[{i}]={t!r}")
        for i, v in enumerate(values):
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"Schedule.values must be finite numbers >= 0, got values[{i}]={v!r}")
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "values", values)

    @classmethod
    def constant(cls, value: float) -> "Schedule":
        return cls((0.0,), (value,))

    @classmethod
    def surge(cls, base: float, multiple: float, start: float, duration: float) -> "Schedule":
        """``base``, then ``multiple x base`` during ``[start, start + duration)``, then ``base`` again."""
        start = _number("start", start, strict=False)
        duration = _number("duration", duration)
        multiple = _number("multiple", multiple, strict=False)
        if start == 0.0:
            return cls((0.0, duration), (multiple * base, base))
        return cls((0.0, start, start + duration), (base, multiple * base, base))

    @classmethod
    def steps(cls, *pairs: tuple[float, float]) -> "Schedule":
        """From ``(time, value)`` pairs, the first at time 0: ``Schedule.steps((0, 10), (600, 6))``."""
        return cls(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))

    def __call__(self, t):
        scalar = np.ndim(t) == 0
        idx = np.searchsorted(np.asarray(self.times), np.asarray(t, dtype=np.float64), side="right") - 1
        out = np.asarray(self.values)[np.maximum(idx, 0)]
        return float(out) if scalar else out

    def cumulative(self, t) -> np.ndarray:
        """``integral of the schedule over [0, t]`` for an array of times ``t >= 0``."""
        times, values = np.asarray(self.times), np.asarray(self.values)
        t = np.asarray(t, dtype=np.float64)
        at_breaks = np.concatenate(([0.0], np.cumsum(values[:-1] * np.diff(times))))
        idx = np.maximum(np.searchsorted(times, t, side="right") - 1, 0)
        return at_breaks[idx] + values[idx] * (t - times[idx])

    def integral(self, start: float, end: float) -> float:
        """``integral of the schedule over [start, end]`` (``0 <= start <= end``)."""
        low, high = self.cumulative(np.array([start, end]))
        return float(high - low)

    def maximum(self, start: float, end: float) -> float:
        """Largest value taken on ``[start, end)``."""
        edges = self.times + (math.inf,)
        return max(v for v, a, b in zip(self.values, edges[:-1], edges[1:]) if b > start and a < end)


def _as_rate(name: str, value: Any) -> Schedule | Callable:
    if isinstance(value, Schedule):
        return value
    if callable(value):
        return value
    return Schedule.constant(_number(name, value, strict=False))


def _as_servers(value: Any) -> Schedule:
    if isinstance(value, Schedule):
        for i, v in enumerate(value.values):
            if not float(v).is_integer():
                raise ValueError(f"servers schedule values must be whole numbers, got values[{i}]={v!r}")
        return value
    return Schedule.constant(_whole("servers", value, 1))


def _base_arrivals(rate, horizon: float, max_rate: float | None, rng) -> np.ndarray:
    """Poisson arrival times on [0, horizon) for a schedule (exact) or a callable (thinning)."""
    if isinstance(rate, Schedule):
        edges = list(rate.times) + [math.inf]
        parts = []
        for v, a, b in zip(rate.values, edges[:-1], edges[1:]):
            b = min(b, horizon)
            if a >= horizon:
                break
            count = rng.poisson(v * (b - a)) if v > 0 else 0
            parts.append(np.sort(rng.uniform(a, b, count)))
        return np.concatenate(parts) if parts else np.zeros(0)
    count = rng.poisson(max_rate * horizon)
    candidates = np.sort(rng.uniform(0.0, horizon, count))
    try:
        values = np.asarray(rate(candidates), dtype=np.float64)
        if values.shape != candidates.shape:
            raise TypeError
    except (TypeError, ValueError):
        values = np.array([float(rate(float(t))) for t in candidates])
    bad = ~np.isfinite(values) | (values < 0) | (values > max_rate)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"arrival_rate(t) must be in [0, max_arrival_rate={max_rate:g}], got {values[i]!r} at t={candidates[i]:g}"
        )
    keep = rng.uniform(0.0, max_rate, count) < values
    return candidates[keep]


# ----------------------------------------------------------------------------------------
# The retrying queue
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RetrySummary:
    """Totals and ratios of a retrying-queue run over the window ``[start, end)``.

    ``amplification`` is attempts sent per new request, ``goodput`` successful requests per
    second, ``failure_fraction`` the share of attempt outcomes that were failures (timeouts,
    blocked and locally throttled attempts: what an error-rate dashboard shows),
    ``request_failure_fraction`` the share of finished requests that failed for good,
    ``utilisation`` busy servers over servers, and ``wasted_fraction`` the share of server
    time spent on attempts whose client had given up.
    """

    start: float
    end: float
    offered: int
    attempts: int
    retries: int
    successes: int
    timeouts: int
    blocked: int
    throttled: int
    failed_requests: int
    amplification: float
    goodput: float
    failure_fraction: float
    request_failure_fraction: float
    mean_queue_length: float
    mean_busy_servers: float
    utilisation: float
    wasted_fraction: float

    def __repr__(self) -> str:
        return (
            f"RetrySummary([{self.start:g}, {self.end:g}) s: offered={self.offered}, attempts={self.attempts} "
            f"(x{self.amplification:.3g}), goodput={self.goodput:.4g}/s, failure_fraction={self.failure_fraction:.3g}, "
            f"request_failure_fraction={self.request_failure_fraction:.3g}, queue={self.mean_queue_length:.4g}, "
            f"utilisation={self.utilisation:.3g}, wasted={self.wasted_fraction:.3g})"
        )


def _ratio(numerator: float, denominator: float) -> float:
    # an empty window has no failures to report: 0, not NaN
    return float(numerator) / float(denominator) if denominator > 0 else 0.0


def _summarise(series: pd.DataFrame, start: float, end: float, interval: float) -> RetrySummary:
    rows = series[(series["time"] >= start - 1e-9 * interval) & (series["time"] + interval <= end + 1e-9 * interval)]
    if rows.empty:
        raise ValueError(f"window [{start!r}, {end!r}) holds no whole interval of the series")
    total = {k: int(rows[k].sum()) for k in (
        "offered", "attempts", "retries", "successes", "timeouts", "blocked", "throttled", "failed_requests")}
    duration = len(rows) * interval
    failures = total["timeouts"] + total["blocked"] + total["throttled"]
    busy = float(rows["busy_servers"].sum()) * interval
    servers = float(rows["servers"].sum()) * interval
    return RetrySummary(
        start=float(rows["time"].iloc[0]),
        end=float(rows["time"].iloc[-1]) + interval,
        amplification=_ratio(total["attempts"], total["offered"]),
        goodput=total["successes"] / duration,
        failure_fraction=_ratio(failures, failures + total["successes"]),
        request_failure_fraction=_ratio(total["failed_requests"], total["failed_requests"] + total["successes"]),
        mean_queue_length=float(rows["queue_length"].mean()),
        mean_busy_servers=busy / duration,
        utilisation=_ratio(busy, servers),
        wasted_fraction=_ratio(float(rows["wasted_work"].sum()), busy),
        **total,
    )


@dataclass(frozen=True)
class RetrySimulation:
    """Result of :func:`simulate_retrying_queue`: a tidy time series and its summary.

    ``series`` has one row per interval: ``time`` (interval start, s), ``servers`` (mean over
    the interval), ``arrival_rate`` (mean base request rate, 1/s), counts of ``offered`` new
    requests, ``attempts`` sent, of which ``retries``, attempt outcomes ``successes`` (goodput),
    ``timeouts`` (the client gave up), ``blocked`` (no room in the system or no free
    connection), ``throttled`` (rejected locally by the policy), ``failures`` (the three
    together), ``failed_requests`` (requests abandoned for good), ``failure_fraction``
    (failures over all outcomes; 0 in an interval without outcomes), ``goodput`` (successes per
    second), time averages ``queue_length`` (attempts waiting) and ``busy_servers``, and
    ``wasted_work`` (server-seconds spent on attempts whose client gave up).
    """

    series: pd.DataFrame = field(repr=False)
    summary: RetrySummary
    horizon: float
    interval: float
    parameters: dict = field(repr=False)

    def window(self, start: float = 0.0, end: float | None = None) -> RetrySummary:
        """Summary over the whole intervals inside ``[start, end)`` (``end`` defaults to the horizon)."""
        end = self.horizon if end is None else end
        return _summarise(self.series, start, end, self.interval)

    def __repr__(self) -> str:
        p = self.parameters
        return (
            f"RetrySimulation(servers={p['servers']}, service_rate={p['service_rate']:g}, "
            f"arrival_rate={p['arrival_rate']}, timeout={p['timeout']:g}, policy={p['policy']!r}, "
            f"horizon={self.horizon:g} s, seed={p['seed']!r})\n  {self.summary!r}"
        )


def _occupancy(begins: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Integral over each bin of #{k : begins[k] <= t < ends[k]} (ends may be inf).

    ``G(v, x) = sum_{v_k <= x} (x - v_k)`` is the integral up to ``x`` of the count of ``v``
    already passed; the occupancy integral up to ``x`` is ``G(begins, x) - G(ends, x)``.
    """
    def cumulative(values):
        v = np.sort(values)
        finite = v[np.isfinite(v)]
        sums = np.concatenate(([0.0], np.cumsum(finite)))
        k = np.searchsorted(finite, edges, side="right")
        return k * edges - sums[k]

    total = cumulative(begins) - cumulative(ends)
    return np.maximum(np.diff(total), 0.0)


_RETRY, _RESPONSE, _GIVE_UP = 0, 1, 2


def _run_retrying(*, servers: Schedule, service_rate, base, backlog, timeout, queue_limit, setup_time,
                  new_connection_fraction, retry_new_connection, policy, clients, backoff, horizon, rng):
    """The event loop. Returns the per-event record arrays."""
    heappush, heappop = heapq.heappush, heapq.heappop
    inf = math.inf
    cap_times = list(servers.times)
    cap_values = [int(v) for v in servers.values]
    constant_cap = cap_values[0] if len(cap_values) == 1 and cap_values[0] > 0 else None
    n_cap = len(cap_times)
    finite_queue = queue_limit is not None
    extra_room = queue_limit if finite_queue else 0

    limiters = [policy.limiter() for _ in range(clients)] if policy is not None else None
    max_attempts = int(policy.max_attempts) if policy is not None else 1

    n_base = base.size
    base_list = base.tolist()
    client_of = rng.integers(0, clients, n_base).tolist() if clients > 1 else None
    new_conn = (rng.random(n_base) < new_connection_fraction).tolist() if new_connection_fraction > 0 else None

    chunk = 8192
    sbuf = (rng.standard_exponential(chunk) / service_rate).tolist()
    si = 0

    batched = backoff is not None and getattr(backoff, "jitter", None) in ("none", "full", "equal") \
        and hasattr(backoff, "sample")
    delay_buffers: dict[int, list] = {}

    busy: list[float] = []      # departures of attempts in service (Kiefer-Wolfowitz heap)
    inflight: list[float] = []  # departures of all admitted attempts (in service or waiting)
    events: list = []
    prev_start = 0.0
    seq = 0

    rec = {k: array("d") for k in (
        "attempt", "retry", "success", "timeout", "blocked", "throttled", "failed",
        "adm_arrive", "adm_start", "adm_end", "waste_start", "waste_end")}
    r_attempt, r_retry, r_success, r_timeout = rec["attempt"], rec["retry"], rec["success"], rec["timeout"]
    r_blocked, r_throttled, r_failed = rec["blocked"], rec["throttled"], rec["failed"]
    a_arrive, a_start, a_end = rec["adm_arrive"], rec["adm_start"], rec["adm_end"]
    w_start, w_end = rec["waste_start"], rec["waste_end"]

    def capacity_at(t):
        return cap_values[bisect_right(cap_times, t) - 1]

    # Backlog: attempts sent before time 0 by live clients, already in the queue.
    for a in backlog:
        events.append((a, seq, -1, 0, 0.0, 0 if clients == 1 else int(rng.integers(clients)), False))
        seq += 1
    heapq.heapify(events)

    i = 0
    while True:
        head = events[0][0] if events else inf
        if i < n_base and base_list[i] < head:
            now = base_list[i]
            kind = -2  # a new request's first attempt
            retries, prev_delay, cause_timeout = 0, 0.0, False
            client = client_of[i] if client_of is not None else 0
            needs_setup = new_conn[i] if new_conn is not None else False
            i += 1
        elif events:
            now, _, kind, retries, prev_delay, client, cause_timeout = heappop(events)
            needs_setup = retry_new_connection and kind == _RETRY
        else:
            break
        if now >= horizon:
            break

        if kind == _RESPONSE:
            r_success.append(now)
            if limiters is not None:
                limiters[client].record(now, True, retries, cause_timeout)
            continue

        if kind == _GIVE_UP:
            r_timeout.append(now)
            timed_out = True
            if limiters is not None:
                limiters[client].record(now, False, retries, cause_timeout)
        else:
            # an attempt: a new request (-2), a retry (0) or a backlog attempt (-1)
            lim = limiters[client] if limiters is not None else None
            if kind != -1 and lim is not None and not lim.admit(now, rng):
                r_throttled.append(now)
                timed_out = False
            else:
                r_attempt.append(now)
                if kind == _RETRY:
                    r_retry.append(now)
                if finite_queue:
                    while inflight and inflight[0] <= now:
                        heappop(inflight)
                if finite_queue and len(inflight) >= (constant_cap or capacity_at(now)) + extra_room:
                    r_blocked.append(now)
                    timed_out = False
                    if lim is not None:
                        lim.record(now, False, retries, cause_timeout)
                else:
                    # FCFS start: after the previous start, when fewer attempts are in service
                    # than there are servers (Kiefer-Wolfowitz with a time-varying c).
                    t = now if now > prev_start else prev_start
                    while busy and busy[0] <= t:
                        heappop(busy)
                    if constant_cap is not None:
                        if len(busy) >= constant_cap:
                            t = heappop(busy)
                    else:
                        k = bisect_right(cap_times, t) - 1
                        while len(busy) >= cap_values[k]:
                            next_departure = busy[0] if busy else inf
                            next_change = cap_times[k + 1] if k + 1 < n_cap else inf
                            if next_departure <= next_change:
                                if next_departure == inf:
                                    t = inf
                                    break
                                t = next_departure
                                while busy and busy[0] <= t:
                                    heappop(busy)
                            else:
                                t = next_change
                                k += 1
                    if si == chunk:
                        sbuf = (rng.standard_exponential(chunk) / service_rate).tolist()
                        si = 0
                    hold = sbuf[si]
                    si += 1
                    if needs_setup:
                        hold += setup_time
                    end = t + hold
                    prev_start = t
                    heappush(busy, end)
                    if finite_queue:
                        heappush(inflight, end)
                    a_arrive.append(now)
                    a_start.append(t)
                    a_end.append(end)
                    if end - now <= timeout:
                        heappush(events, (end, seq, _RESPONSE, retries, prev_delay, client, cause_timeout))
                    else:
                        heappush(events, (now + timeout, seq, _GIVE_UP, retries, prev_delay, client, cause_timeout))
                        w_start.append(t)
                        w_end.append(end)
                    seq += 1
                    continue

        # the attempt failed (timed out, blocked or throttled): retry or give up for good
        if retries + 1 < max_attempts and limiters[client].may_retry(now, retries, timed_out):
            if backoff is None:
                delay = 0.0
            elif batched:
                # delays that do not depend on the previous one are drawn in batches per retry index
                buf = delay_buffers.get(retries + 1)
                if buf is None or buf[1] == len(buf[0]):
                    buf = [backoff.sample(retries + 1, rng, 1024).tolist(), 0]
                    delay_buffers[retries + 1] = buf
                delay = buf[0][buf[1]]
                buf[1] += 1
            else:
                delay = backoff.delay(retries + 1, prev_delay if retries > 0 else None, rng)
            heappush(events, (now + delay, seq, _RETRY, retries + 1, delay, client, timed_out))
            seq += 1
        else:
            r_failed.append(now)

    return {k: np.frombuffer(v, dtype=np.float64) if len(v) else np.zeros(0) for k, v in rec.items()}


def _count_text(value: float) -> str:
    # whole-number text while it stays readable; a 300-digit integer is not
    return f"{value:,.0f}" if value < 1e15 else f"{value:.3g}"


def simulate_retrying_queue(servers, service_rate, arrival_rate, *, timeout, policy=None, backoff=None,
                            horizon=600.0, interval=1.0, queue_limit=None, initial_backlog=0,
                            setup_time=0.0, new_connection_fraction=0.0, retry_new_connection=True,
                            clients=1, max_arrival_rate=None, seed=0,
                            attempt_limit=ATTEMPT_LIMIT) -> RetrySimulation:
    """Simulate a FCFS multi-server queue whose clients time out and retry.

    New requests arrive as a Poisson process of rate ``arrival_rate`` (constant, a
    :class:`Schedule`, or a function of time with ``max_arrival_rate``). Each attempt joins a
    FCFS queue served by ``servers`` servers (a number or a :class:`Schedule`; when servers are
    removed, attempts in service finish first) with exponential service times of rate
    ``service_rate``. The client waits at most ``timeout`` seconds for the response; then it
    gives up and, if the ``policy`` allows it (``limiter.may_retry``), retries after a
    ``backoff`` delay. The abandoned attempt stays in the queue and is served anyway: wasted
    work, the mechanism of metastable retry storms.

    Parameters
    ----------
    servers : int or Schedule
        Number of servers, constant (>= 1) or over time (whole numbers, may drop to 0).
    service_rate : float
        ``mu > 0`` per server.
    arrival_rate : float, Schedule or callable
        Rate of new requests (per second); a callable ``f(t)`` needs ``max_arrival_rate``.
    timeout : float
        Client timeout per attempt, seconds (> 0; ``inf``: clients never give up).
    policy : retry policy, optional
        An object from :mod:`reliability.retry` (``FixedRetries``, ``RetryBudget``,
        ``TokenBucket``, ``AdaptiveThrottle``); ``None`` means no retries. The simulation
        calls ``admit`` before every attempt (except the ``initial_backlog``, sent before time
        0), ``record`` with each sent attempt's outcome, and ``may_retry`` after each failed
        attempt that has attempts left (a throttled attempt is a failed one).
    backoff : Backoff, optional
        Delay before each retry (``Backoff.delay``); ``None`` retries at once.
    horizon, interval : float
        Simulated seconds, and the width of one time-series interval.
    queue_limit : int, optional
        Most attempts waiting beyond the servers; an attempt that finds
        ``servers + queue_limit`` in the system is blocked (fails at once). ``None``: no limit;
        ``0``: a loss system.
    initial_backlog : int
        Attempts already queued at time 0 (sent by live clients in the ``timeout`` seconds
        before, arrival times spread uniformly): 0 starts healthy, a large backlog starts
        collapsed.
    setup_time : float
        Extra server time held by an attempt that must open a new connection.
    new_connection_fraction : float
        Share of first attempts that need a new connection.
    retry_new_connection : bool
        Whether every retry needs a new connection (a client that gave up closed its own).
    clients : int
        Independent client populations, each with its own limiter; requests are spread
        uniformly over them.
    max_arrival_rate : float, optional
        Upper bound of a callable ``arrival_rate`` (Poisson thinning).
    seed : int, SeedSequence or Generator
        Seed: the same seed and parameters give the same numbers.
    attempt_limit : int
        Refuse (ValueError), before it starts, a run whose attempts could exceed this many
        (every request making ``policy.max_attempts`` attempts; memory ~50 bytes per attempt).

    Returns
    -------
    RetrySimulation
        ``series`` (one row per interval) and ``summary`` over the whole horizon;
        ``window(start, end)`` summarises part of it.

    Examples
    --------
    >>> from reliability.retry import FixedRetries
    >>> sim = simulate_retrying_queue(10, 1.0, 5.0, timeout=4.0, policy=FixedRetries(3),
    ...                               horizon=200.0, seed=1)
    >>> sim.summary.failure_fraction < 0.1
    True
    """
    cap = _as_servers(servers)
    mu = _rate("service_rate", service_rate)
    rate = _as_rate("arrival_rate", arrival_rate)
    timeout = _number("timeout", timeout, allow_inf=True)
    horizon = _number("horizon", horizon)
    interval = _number("interval", interval)
    n_intervals = int(round(horizon / interval))
    if n_intervals < 1 or abs(n_intervals * interval - horizon) > 1e-9 * horizon:
        raise ValueError(
            f"horizon must be a whole multiple of interval, got horizon={horizon!r}, interval={interval!r}"
        )
    if n_intervals > MAX_INTERVALS:
        raise ValueError(
            f"horizon / interval = {n_intervals:,} intervals exceeds the limit of {MAX_INTERVALS:,} "
            f"(horizon={horizon!r}, interval={interval!r})"
        )
    limit = None if queue_limit is None else _whole("queue_limit", queue_limit, 0)
    backlog_n = _whole("initial_backlog", initial_backlog, 0)
    setup_time = _number("setup_time", setup_time, strict=False)
    p_new = _number("new_connection_fraction", new_connection_fraction, strict=False)
    if p_new > 1:
        raise ValueError(f"new_connection_fraction must be in [0, 1], got {new_connection_fraction!r}")
    if not isinstance(retry_new_connection, (bool, np.bool_)):
        raise ValueError(f"retry_new_connection must be True or False, got {retry_new_connection!r}")
    clients = _whole("clients", clients, 1)
    seed = _seed(seed)
    attempt_limit = _whole("attempt_limit", attempt_limit, 1)
    if policy is not None:
        for attr in ("limiter", "max_attempts"):
            if not hasattr(policy, attr):
                raise ValueError(f"policy must be a retry policy with limiter() and max_attempts, got {policy!r}")
    if backoff is not None and not hasattr(backoff, "delay"):
        raise ValueError(f"backoff must be a Backoff (with delay()), got {backoff!r}")
    if callable(rate) and not isinstance(rate, Schedule):
        if max_arrival_rate is None:
            raise ValueError("max_arrival_rate must be given when arrival_rate is a function of time, got None")
        bound = _number("max_arrival_rate", max_arrival_rate)
        expected = bound * horizon
    else:
        bound = None
        expected = rate.integral(0.0, horizon)
    if limit is not None and backlog_n > cap(0.0) + limit:
        raise ValueError(
            f"initial_backlog must be <= servers + queue_limit = {int(cap(0.0)) + limit} at time 0, "
            f"got {initial_backlog!r}"
        )
    attempts_per_request = int(policy.max_attempts) if policy is not None else 1
    # a generous bound: 6 standard deviations above the Poisson mean, every retry taken
    worst = (expected + 6.0 * math.sqrt(expected) + backlog_n) * attempts_per_request
    if worst > attempt_limit:
        raise ValueError(
            f"the run could make up to {_count_text(worst)} attempts ({_count_text(expected)} expected requests x "
            f"{attempts_per_request} attempts), more than attempt_limit={attempt_limit:,}; shorten the "
            f"horizon or raise attempt_limit"
        )

    rng = np.random.default_rng(seed)
    base = _base_arrivals(rate, horizon, bound, rng)
    backlog = np.sort(-timeout * rng.random(backlog_n)).tolist() if math.isfinite(timeout) else [0.0] * backlog_n
    rec = _run_retrying(
        servers=cap, service_rate=mu, base=base, backlog=backlog, timeout=timeout, queue_limit=limit,
        setup_time=setup_time, new_connection_fraction=p_new, retry_new_connection=bool(retry_new_connection),
        policy=policy, clients=clients, backoff=backoff, horizon=horizon, rng=rng,
    )

    edges = np.arange(n_intervals + 1) * interval
    edges[-1] = horizon
    widths = np.diff(edges)

    def count(times):
        idx = np.searchsorted(edges, times, side="right") - 1
        idx = idx[(idx >= 0) & (idx < n_intervals)]
        return np.bincount(idx, minlength=n_intervals)

    offered = count(base)
    columns = {k: count(rec[k]) for k in ("attempt", "retry", "success", "timeout", "blocked", "throttled", "failed")}
    failures = columns["timeout"] + columns["blocked"] + columns["throttled"]
    outcomes = failures + columns["success"]
    queue = _occupancy(rec["adm_arrive"], rec["adm_start"], edges) / widths
    busy = _occupancy(rec["adm_start"], rec["adm_end"], edges) / widths
    wasted = _occupancy(rec["waste_start"], rec["waste_end"], edges)
    servers_mean = np.diff(cap.cumulative(edges)) / widths
    if isinstance(rate, Schedule):
        rate_mean = np.diff(rate.cumulative(edges)) / widths
    else:
        mids = 0.5 * (edges[:-1] + edges[1:])
        rate_mean = np.array([float(rate(float(t))) for t in mids])
    series = pd.DataFrame({
        "time": edges[:-1],
        "servers": servers_mean,
        "arrival_rate": rate_mean,
        "offered": offered,
        "attempts": columns["attempt"],
        "retries": columns["retry"],
        "successes": columns["success"],
        "timeouts": columns["timeout"],
        "blocked": columns["blocked"],
        "throttled": columns["throttled"],
        "failures": failures,
        "failed_requests": columns["failed"],
        "failure_fraction": np.divide(failures, outcomes, out=np.zeros(n_intervals), where=outcomes > 0),
        "goodput": columns["success"] / widths,
        "queue_length": queue,
        "busy_servers": busy,
        "wasted_work": wasted,
    })
    parameters = dict(
        servers=servers if not isinstance(servers, Schedule) else cap, service_rate=mu,
        arrival_rate=arrival_rate, timeout=timeout, policy=policy, backoff=backoff, queue_limit=limit,
        initial_backlog=backlog_n, setup_time=setup_time, new_connection_fraction=p_new,
        retry_new_connection=bool(retry_new_connection), clients=clients, seed=seed,
    )
    return RetrySimulation(
        series=series,
        summary=_summarise(series, 0.0, horizon, interval),
        horizon=horizon,
        interval=interval,
        parameters=parameters,
    )


def simulate_connection_pool(connections, service_rate, arrival_rate, *, timeout, setup_time=0.0,
                             new_connection_fraction=0.0, retry_new_connection=True, policy=None,
                             backoff=None, horizon=600.0, interval=1.0, initial_backlog=0, clients=1,
                             max_arrival_rate=None, seed=0, attempt_limit=ATTEMPT_LIMIT) -> RetrySimulation:
    """Simulate a retrying connection pool: a loss system of ``connections`` slots.

    An attempt that finds every connection busy is blocked (fails at once) and may be retried;
    an attempt that needs a new connection (a share ``new_connection_fraction`` of first
    attempts and, with ``retry_new_connection``, every retry) holds its slot for an extra
    ``setup_time``. Clients still give up after ``timeout`` (the slot stays held). This is
    :func:`simulate_retrying_queue` with ``queue_limit=0``; see it for the other arguments.

    Examples
    --------
    >>> from reliability.retry import FixedRetries
    >>> sim = simulate_connection_pool(20, 1.0, 10.0, timeout=5.0, setup_time=0.5,
    ...                                policy=FixedRetries(2), horizon=100.0, seed=1)
    >>> bool(sim.series["queue_length"].max() == 0.0)
    True
    """
    return simulate_retrying_queue(
        connections, service_rate, arrival_rate, timeout=timeout, policy=policy, backoff=backoff,
        horizon=horizon, interval=interval, queue_limit=0, initial_backlog=initial_backlog,
        setup_time=setup_time, new_connection_fraction=new_connection_fraction,
        retry_new_connection=retry_new_connection, clients=clients, max_arrival_rate=max_arrival_rate,
        seed=seed, attempt_limit=attempt_limit,
    )
