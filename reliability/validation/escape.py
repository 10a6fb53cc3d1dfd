"""Escape and recovery times of a retrying queue: the backlog chain beside the simulator.

:func:`escape_comparison` puts the chain's mean time to tip (:func:`reliability.retry.escape.escape_time`)
beside the simulated mean over many replications (:func:`reliability.simulate.escape.simulate_escape_times`),
:func:`safe_loads` reads the highest load that keeps P(tip within a horizon) under a target,
and :func:`outage_recovery` measures how long a service takes to recover after an outage of a
given length, in simulation and from the backlog the outage leaves (the chain's drain time):
recovery depends on history through that backlog.

Examples
--------
>>> frame = escape_comparison(20, 1.0, 3.0, 3, [0.82], replications=8, seed=1)
>>> bool(frame.chain_inside_factor_2.all())
True
"""

from __future__ import annotations

import math
from functools import partial
from typing import Sequence

import numpy as np
import pandas as pd

from ..cluster import check_cluster, start_batches, startable
from .._validate import as_array, number, whole
from ..retry import Backoff, FixedRetries, RetryingQueue
from ..retry.escape import default_tip_backlog, escape_time, recovery_time_estimate, safe_load
from ..retry.fluid import fluid_recovery_time
from ..series import trace_recovery_time
from ..simulate import Schedule, simulate_retrying_queue
from ..simulate.escape import simulate_escape_times

__all__ = ["ESCAPE_SIZES", "escape_checks", "escape_comparison", "outage_recovery", "safe_loads"]

#: The chain is an asymptotic estimate: it agrees when it is within this factor of the simulated interval.
AGREEMENT_FACTOR = 2.0


@startable
def escape_comparison(servers, service_rate, timeout, max_retries, load_shares, *, backoff: Backoff | None = None,
                      replications: int = 24, horizon: float = 4 * 3600.0, confidence: float = 0.95,
                      seed: int = 0, cluster=None) -> pd.DataFrame:
    """Mean time to tip from an empty queue: the chain's estimate against the simulated mean.

    Each load share is simulated ``replications`` times until the backlog reaches the chain's
    tipping backlog ``c + 2 c mu T`` (censored at ``horizon``), on the workers of ``cluster``
    (:class:`reliability.Cluster`) if given; ``escape_comparison.start(...)`` returns once they are
    sent, with a function that waits for the frame.

    Returns
    -------
    pandas.DataFrame
        One row per load share: ``load_share``, ``chain_mean`` (s), ``barrier`` (nats),
        ``simulated_mean``, ``simulated_low``, ``simulated_high`` (s, exact interval at
        ``confidence`` under the exponential law), ``tipped`` (replications that tipped),
        ``replications``, ``ratio`` (chain / simulated mean), ``chain_inside_interval`` and
        ``chain_inside_factor_2`` (within a factor 2 of the interval: the agreement expected of
        an asymptotic estimate), ``attempts`` simulated.
    """
    queue = RetryingQueue(servers, service_rate, timeout, FixedRetries(max_retries))
    shares = np.atleast_1d(as_array("load_shares", load_shares, minimum=0.0, strict_minimum=True))
    level = default_tip_backlog(queue)
    root = np.random.SeedSequence(whole("seed", seed, 0))
    check_cluster(cluster)
    # every load's replications go to the workers first; the chain is worked out here meanwhile
    pending = [simulate_escape_times.start(queue.servers, queue.service_rate, float(share) * queue.capacity,
                                  timeout=queue.timeout, level=level, policy=queue.policy, backoff=backoff,
                                  replications=replications, horizon=horizon, confidence=confidence, seed=child,
                                  cluster=cluster)
               for share, child in zip(shares, root.spawn(shares.size))]
    yield  # the replications go on while the chain is worked out
    chains = [escape_time(queue, float(share) * queue.capacity, tip_backlog=level) for share in shares]
    rows = []
    for share, chain, result in zip(shares, chains, pending):
        sim = result()
        est = sim.mean_time
        rows.append({
            "load_share": float(share), "chain_mean": chain.mean_time, "barrier": chain.barrier,
            "simulated_mean": est.value, "simulated_low": est.low, "simulated_high": est.high,
            "tipped": int(sim.escaped.sum()), "replications": int(sim.escaped.size),
            "ratio": chain.mean_time / est.value if est.value < math.inf else 0.0,
            "chain_inside_interval": est.low <= chain.mean_time <= est.high,
            "chain_inside_factor_2": est.low / AGREEMENT_FACTOR <= chain.mean_time <= est.high * AGREEMENT_FACTOR,
            "attempts": sim.attempts,
        })
    return pd.DataFrame(rows)


def safe_loads(servers, service_rate, timeout, max_retries, horizons: Sequence[float],
               probability: float = 0.01) -> pd.DataFrame:
    """Highest load share with P(tip within each horizon) <= ``probability``, beside the mean-field band.

    Examples
    --------
    >>> frame = safe_loads(20, 1.0, 3.0, 3, [3600.0, 86400.0])
    >>> bool((frame.safe_load_share < frame.onset_share).all())
    True
    """
    queue = RetryingQueue(servers, service_rate, timeout, FixedRetries(max_retries))
    spans = np.atleast_1d(as_array("horizons", horizons, minimum=0.0, strict_minimum=True))
    onset, recovery = queue.onset_threshold() / queue.capacity, queue.recovery_threshold() / queue.capacity
    return pd.DataFrame([{"horizon": float(h), "probability": float(probability),
                          "safe_load_share": safe_load(queue, float(h), probability),
                          "onset_share": onset, "recovery_share": recovery} for h in spans])


def _outage_run(queue, lam0: float, duration: float, backoff, start: float, after: float, interval: float, seed):
    """Simulated recovery time after an outage (no server) of ``duration`` seconds from ``start``."""
    servers = Schedule.steps((0.0, queue.servers), (start, 0), (start + duration, queue.servers))
    horizon = interval * math.ceil((start + duration + after) / interval)
    run = simulate_retrying_queue(servers, queue.service_rate, lam0, timeout=queue.timeout, policy=queue.policy,
                                  backoff=backoff, horizon=horizon, interval=interval, seed=seed)
    return trace_recovery_time(run.series, after=start + duration)


@startable
def outage_recovery(servers, service_rate, timeout, max_retries, load_shares, outage_durations, *,
                    backoff: Backoff | None = None, interval: float = 10.0, seed: int = 0,
                    cluster=None) -> pd.DataFrame:
    """Recovery after an outage of each duration at each base load: simulation and the chain's drain time.

    During an outage (every server gone) each request sends all ``r + 1`` attempts, and every
    one stays queued (the servers serve them later, wasted): the backlog left is
    ``(r + 1) lambda0 D``. The chain (:func:`reliability.retry.escape.recovery_time_estimate`)
    drains it down to ``c + c mu T`` (where about half of the attempts time out, the
    simulation's recovery criterion); the delayed fluid model
    (:func:`reliability.retry.fluid.fluid_recovery_time`) runs the outage itself, retries and
    backoff included, and carries its backlog to the same level; the simulation runs the outage
    and measures the time until every interval fails less than half its attempts. Each run
    lasts 1.5 times the chain's estimate plus 10 minutes after the outage; the runs go to the
    workers of ``cluster`` (:class:`reliability.Cluster`) if given (``outage_recovery.start(...)``
    returns once they are sent, with a function that waits for the frame).

    Returns
    -------
    pandas.DataFrame
        ``load_share``, ``outage`` (s), ``backlog`` (attempts left), ``chain_recovery``,
        ``fluid_recovery`` and ``simulated_recovery`` (s; inf: not recovered within the run).

    Examples
    --------
    >>> frame = outage_recovery(20, 1.0, 3.0, 3, [0.1], [120.0], seed=1)
    >>> bool(0 < frame.simulated_recovery[0] < 3 * frame.chain_recovery[0] + 60)
    True
    """
    queue = RetryingQueue(servers, service_rate, timeout, FixedRetries(max_retries))
    shares = np.atleast_1d(as_array("load_shares", load_shares, minimum=0.0, strict_minimum=True))
    durations = np.atleast_1d(as_array("outage_durations", outage_durations, minimum=0.0, strict_minimum=True))
    interval = number("interval", interval, minimum=0.0, strict=True)
    root = np.random.SeedSequence(whole("seed", seed, 0))
    check_cluster(cluster)
    children = root.spawn(shares.size * durations.size)
    level = int(round(queue.servers + queue.capacity * queue.timeout))
    start = 6 * interval
    settings = []
    for share in shares:
        lam0 = float(share) * queue.capacity
        for duration in durations:
            backlog = int(round(float(queue._amplification(1.0)) * lam0 * float(duration)))
            chain = recovery_time_estimate(queue, lam0, max(backlog, level), level=level)
            after = 1.5 * chain + 600.0 if chain < math.inf else 4 * float(duration)
            settings.append((float(share), lam0, float(duration), backlog, chain, after))
    _, rates, spans, _, _, afters = zip(*settings)
    n = len(settings)
    simulated = start_batches(cluster, _outage_run, [queue] * n, rates, spans, [backoff] * n, [start] * n, afters,
                              [interval] * n, children)
    # the fluid runs (a step loop each, longer the longer the outage) go to the workers after the simulations
    fluid = start_batches(cluster, partial(fluid_recovery_time, level=level, backoff=backoff),
                          [queue] * n, rates, spans)
    yield
    rows = [{"load_share": share, "outage": duration, "backlog": backlog, "chain_recovery": chain,
             "fluid_recovery": recovery}
            for (share, _, duration, backlog, chain, _), recovery in zip(settings, fluid())]
    for row, recovery in zip(rows, simulated()):
        row["simulated_recovery"] = recovery
    return pd.DataFrame(rows)


#: How much each size simulates in :func:`escape_checks`: loads, replications per load, outages.
ESCAPE_SIZES = {
    "full": {"load_shares": (0.8, 0.83), "replications": 12, "recovery_shares": (0.1, 0.2), "outages": (600.0, 1800.0)},
    "smoke": {"load_shares": (0.83,), "replications": 6, "recovery_shares": (0.1,), "outages": (300.0,)},
}
#: Relative tolerance of the chain's drain time against a simulated recovery (one run each).
RECOVERY_RTOL = 0.25


@startable
def escape_checks(size: str = "full", *, seed: int = 0, cluster=None) -> pd.DataFrame:
    """The escape and recovery estimates of the backlog chain and the fluid model, checked against the simulator.

    20 servers, ``mu = 1``, timeout 3 s, 3 retries, full-jitter backoff of 0.5 s to 10 s. The
    time to tip holds when the chain lies within a factor :data:`AGREEMENT_FACTOR` of the
    simulated interval (an asymptotic estimate); the recovery after an outage holds when the
    chain's drain time, and the delayed fluid model's recovery time, is within
    :data:`RECOVERY_RTOL` (plus one 10 s interval) of the simulated run.

    Returns
    -------
    pandas.DataFrame
        One row per check: ``check``, ``case``, ``analytic``, ``simulated``, ``ci_low``,
        ``ci_high`` (seconds; NaN where one run gives no interval), ``criterion``, ``verdict``.

    Examples
    --------
    >>> frame = escape_checks("smoke", seed=1)
    >>> frame.verdict.unique().tolist()
    ['holds']
    """
    if size not in ESCAPE_SIZES:
        raise ValueError(f"size must be one of {sorted(ESCAPE_SIZES)}, got {size!r}")
    spec, backoff = ESCAPE_SIZES[size], Backoff(0.5, 10.0, "full")
    escapes = escape_comparison.start(20, 1.0, 3.0, 3, spec["load_shares"], backoff=backoff,
                                      replications=spec["replications"], seed=seed, cluster=cluster)
    outages = outage_recovery.start(20, 1.0, 3.0, 3, spec["recovery_shares"], spec["outages"], backoff=backoff,
                                    seed=seed, cluster=cluster)
    yield
    escape = escapes()
    rows = [{"check": "mean time to tip from healthy", "case": f"load {r.load_share:.0%} of capacity",
             "analytic": r.chain_mean, "simulated": r.simulated_mean, "ci_low": r.simulated_low,
             "ci_high": r.simulated_high, "criterion": f"within x{AGREEMENT_FACTOR:g} of the interval",
             "verdict": "holds" if r.chain_inside_factor_2 else "fails"} for r in escape.itertuples()]
    for r in outages().itertuples():
        for model, estimate in (("chain", r.chain_recovery), ("delayed fluid model", r.fluid_recovery)):
            close = abs(r.simulated_recovery - estimate) <= RECOVERY_RTOL * estimate + 10.0
            rows.append({"check": f"recovery after an outage ({model})",
                         "case": f"load {r.load_share:.0%}, outage {r.outage / 60:g} min",
                         "analytic": estimate, "simulated": r.simulated_recovery, "ci_low": np.nan,
                         "ci_high": np.nan, "criterion": f"within {RECOVERY_RTOL:.0%} (one run)",
                         "verdict": "holds" if close else "fails"})
    return pd.DataFrame(rows)
