"""The Engset loss system (finite sources), simulated transition by transition."""

from __future__ import annotations

import numpy as np

from .._validate import whole
from . import _checks
from .estimate import QueueSimulation, estimate

__all__ = ["simulate_engset"]


def _follow_chain(servers, sources, source_load, transitions, replications, warmup, rng):
    """Follow the birth-death chain of busy servers, all replications at once.

    Returns, per replication and after the warm-up, the arrivals, the arrivals lost, the
    busy-server time and the elapsed time.
    """
    c, r = servers, replications
    busy = np.zeros(r)
    arrivals = np.zeros(r)
    lost = np.zeros(r)
    busy_time = np.zeros(r)
    elapsed = np.zeros(r)
    block = _checks.block_size(r)
    for b0 in range(0, transitions, block):
        m = min(block, transitions - b0)
        uniform = rng.random((m, r))
        hold = rng.standard_exponential((m, r))
        for i in range(m):
            up = (sources - busy) * source_load
            total = up + busy
            arrival = uniform[i] * total < up
            full = arrival & (busy >= c)
            if b0 + i >= warmup:
                dt = hold[i] / total
                busy_time += busy * dt
                elapsed += dt
                arrivals += arrival
                lost += full
            busy += arrival & ~full
            busy -= ~arrival
    return arrivals, lost, busy_time, elapsed


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
        As for :func:`~reliability.simulate.simulate_mmc`.
    warmup : int, optional
        Transitions discarded at the start of each replication (default ``transitions // 10``).

    Examples
    --------
    >>> sim = simulate_engset(4, 10, 0.5, transitions=20_000, replications=20, seed=1)
    >>> 0 < sim.p_block.value < 1 and sim.p_wait.value == 0.0
    True
    """
    c = whole("servers", servers, 1, maximum=_checks.MAX_POPULATION)
    n_sources = whole("sources", sources, 1, maximum=_checks.MAX_POPULATION)
    gamma = _checks.rate("source_load", source_load)
    n = whole("transitions", transitions, 2)
    r = whole("replications", replications, 2)
    w = _checks.warmup(warmup, n, "transitions")
    level = _checks.level(level)
    seed = _checks.seed(seed)
    _checks.check_size("transitions", n, r)
    arrivals, lost, busy_time, elapsed = _follow_chain(c, n_sources, gamma, n, r, w, np.random.default_rng(seed))
    if (arrivals == 0).any():
        raise ValueError(
            f"transitions - warmup = {n - w} is too few: a replication saw no arrival after the warm-up"
        )
    zero = estimate(np.zeros(r), level)
    return QueueSimulation(
        model="Engset", servers=c, capacity=c, arrival_rate=gamma, service_rate=1.0, abandonment_rate=0.0,
        customers=int(arrivals.sum()), customers_per_replication=n, warmup=w, replications=r, level=level,
        seed=_checks.seed_label(seed),
        p_wait=zero, p_block=estimate(lost / arrivals, level), p_abandon=zero, mean_wait=zero,
        utilisation=estimate(busy_time / (c * elapsed), level), sources=n_sources,
    )
