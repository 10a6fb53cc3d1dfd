"""The M/M/c family: FCFS queue, loss system, impatience and a finite system, simulated.

Each model follows every customer through the kernels of :mod:`.kernels`, ``R``
independent replications at once, in blocks of customers; after a warm-up of discarded
customers in each replication it sums waits, blocks, abandonments and busy time, and reports
the mean over replications with a Student-t interval (:class:`~.estimate.QueueSimulation`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._validate import describe, whole
from . import _checks
from .estimate import QueueSimulation, estimate
from .kernels import kernel_abandon, kernel_fcfs, kernel_finite, kernel_loss, lindley_waits

__all__ = ["simulate_mmc", "simulate_mmcc", "simulate_mmc_abandonment", "simulate_mmck"]


@dataclass
class _QueueState:
    """What carries over from one block of customers to the next, one row per replication."""

    model: str
    rows: np.ndarray
    free: np.ndarray                 # server free times (R x c)
    slots: np.ndarray | None         # M/M/c/K: departures of the last holder of each place (R x K)
    lindley: bool                    # a single FCFS server: the vectorised Lindley recursion
    lindley_state: tuple | None = None


@dataclass
class _Tally:
    """Running sums over the counted (post-warm-up) customers, one entry per replication."""

    counted: int
    waited: np.ndarray
    blocked: np.ndarray
    abandoned: np.ndarray
    wait_total: np.ndarray
    busy_total: np.ndarray
    beyond: np.ndarray               # customers waiting longer than each threshold

    @classmethod
    def empty(cls, replications: int, thresholds: int) -> "_Tally":
        sums = [np.zeros(replications) for _ in range(5)]
        return cls(0, *sums, np.zeros((thresholds, replications)))

    def add(self, model, wait, service, served, wait_times) -> None:
        """Add a block's counted customers: their waits, service times and who was served."""
        self.counted += wait.shape[0]
        self.waited += (wait > 0).sum(axis=0)
        self.wait_total += wait.sum(axis=0)
        for k, t in enumerate(wait_times):
            self.beyond[k] += (wait > t).sum(axis=0)
        if served is None:
            self.busy_total += service.sum(axis=0)
            return
        self.busy_total += np.where(served, service, 0.0).sum(axis=0)
        if model == "M/M/c+M":
            self.abandoned += (~served).sum(axis=0)
        else:
            self.blocked += (~served).sum(axis=0)


def _check_state(servers: int, capacity: int | None, replications: int) -> None:
    width = max(servers, capacity or 0)
    if replications * width > _checks.MAX_STATE:
        raise ValueError(
            f"replications x max(servers, capacity) = {replications * width:,} exceeds the "
            f"{_checks.MAX_STATE:,} numbers the simulation state may hold (replications={replications}, "
            f"servers={servers}, capacity={capacity})"
        )


def _block_waits(state: _QueueState, inter, arrive, service, abandonment_rate, rng):
    """One block through the model's kernel: each customer's wait, and who was served (None: all)."""
    m, r = arrive.shape
    model = state.model
    if state.lindley:
        wait, state.lindley_state = lindley_waits(inter, service, state.lindley_state)
        return wait, None
    if model == "M/M/c":
        start = np.empty((m, r))
        kernel_fcfs(state.free, state.rows, arrive, service, start)
        return start - arrive, None
    served = np.empty((m, r), dtype=bool)
    if model == "M/M/c/c":
        kernel_loss(state.free, state.rows, arrive, service, served)
        return np.zeros((m, r)), served
    start = np.empty((m, r))
    if model == "M/M/c+M":
        patience = rng.standard_exponential((m, r))
        patience /= abandonment_rate
        kernel_abandon(state.free, state.rows, arrive, service, patience, start, served)
        return np.minimum(start - arrive, patience), served
    kernel_finite(state.free, state.slots, state.rows, arrive, service, start, served)  # M/M/c/K
    return np.where(served, start - arrive, 0.0), served


def _simulate_family(model, servers, capacity, arrival_rate, service_rate, abandonment_rate,
                     customers, replications, warmup, wait_times, level, seed) -> QueueSimulation:
    c, n, r = servers, customers, replications
    _checks.check_size("customers", n, r)
    _check_state(c, capacity, r)
    rng = np.random.default_rng(seed)
    state = _QueueState(model, np.arange(r), np.zeros((r, c)),
                        np.zeros((r, capacity)) if model == "M/M/c/K" else None,
                        lindley=model == "M/M/c" and c == 1)
    tally = _Tally.empty(r, len(wait_times))
    block = _checks.block_size(r)
    clock = np.zeros(r)
    t_begin = np.zeros(r)  # arrival time of the last warm-up customer (0 without warm-up)
    for b0 in range(0, n, block):
        m = min(block, n - b0)
        inter = rng.standard_exponential((m, r))
        inter /= arrival_rate
        arrive = np.cumsum(inter, axis=0)
        arrive += clock
        service = rng.standard_exponential((m, r))
        service /= service_rate
        wait, served = _block_waits(state, inter, arrive, service, abandonment_rate, rng)
        clock = arrive[-1].copy()
        if b0 <= warmup - 1 < b0 + m:
            t_begin = arrive[warmup - 1 - b0].copy()
        lo = max(0, warmup - b0)
        if lo < m:
            tally.add(model, wait[lo:], service[lo:], None if served is None else served[lo:], wait_times)
    return _summary(model, c, capacity, arrival_rate, service_rate, abandonment_rate, n, r, warmup,
                    wait_times, level, seed, tally, span=clock - t_begin)


def _summary(model, servers, capacity, arrival_rate, service_rate, abandonment_rate, customers,
             replications, warmup, wait_times, level, seed, tally: _Tally, span) -> QueueSimulation:
    counted = tally.counted
    with np.errstate(under="ignore"):  # a utilisation of 1e-500 (rates 1e-250 and 1e250) is 0
        busy_share = tally.busy_total / (servers * span)
    return QueueSimulation(
        model=model, servers=servers, capacity=capacity, arrival_rate=arrival_rate,
        service_rate=service_rate, abandonment_rate=abandonment_rate,
        customers=customers * replications, customers_per_replication=customers, warmup=warmup,
        replications=replications, level=level, seed=_checks.seed_label(seed),
        p_wait=estimate(tally.waited / counted, level),
        p_block=estimate(tally.blocked / counted, level),
        p_abandon=estimate(tally.abandoned / counted, level),
        mean_wait=estimate(tally.wait_total / counted, level),
        utilisation=estimate(busy_share, level),
        wait_times=wait_times,
        wait_sf=tuple(estimate(tally.beyond[k] / counted, level) for k in range(len(wait_times))),
    )


def _family_arguments(servers, arrival_rate, service_rate, customers, replications, warmup,
                      wait_times, level, seed):
    c = whole("servers", servers, 1, maximum=_checks.MAX_STATE)  # the state holds replications x servers
    lam = _checks.rate("arrival_rate", arrival_rate)
    mu = _checks.rate("service_rate", service_rate)
    n = whole("customers", customers, 2)
    r = whole("replications", replications, 2)
    w = _checks.warmup(warmup, n, "customers")
    return c, lam, mu, n, r, w, _checks.wait_times(wait_times), _checks.level(level), _checks.seed(seed)


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
            f"arrival_rate must be < servers x service_rate = {c * mu:g} for a steady state, got {describe(arrival_rate)}"
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
    theta = _checks.rate("abandonment_rate", abandonment_rate)
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
    k = whole("capacity", capacity, 1, maximum=_checks.MAX_STATE)
    if k < c:
        raise ValueError(f"capacity must be >= servers ({c}), got {describe(capacity)}")
    return _simulate_family("M/M/c/K", c, k, lam, mu, 0.0, n, r, w, wt, level, seed)


for _f in (simulate_mmc, simulate_mmcc, simulate_mmc_abandonment, simulate_mmck):
    _f.__doc__ = _f.__doc__.replace("    {family}\n", _FAMILY_DOC.lstrip("\n"))
del _f
