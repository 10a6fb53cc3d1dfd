"""The analytic metastability map beside simulated runs started healthy and started collapsed.

Examples
--------
>>> frame = simulated_metastability(10, 1.0, 3.0, [0.2], max_retries=[3], horizon=300.0, seed=1)
>>> frame[["verdict", "simulated_verdict", "agrees"]].values.tolist()
[['healthy', 'healthy', True]]
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from .._validate import probability, whole
from ..retry import Backoff, FixedRetries, metastability_map
from ..simulate import simulate_retrying_queue

__all__ = ["simulated_metastability"]


def _end_failures(analytic: pd.DataFrame, servers: int, service_rate: float, timeout: float,
                  factory: Callable[[int], Any], backoff: Backoff | None, horizon: float,
                  seed: int) -> tuple[list[float], list[float]]:
    """Failure fraction over the last third of a run started empty and of one started collapsed, per row."""
    # a backlog the servers need four timeouts to clear: every attempt in it times out
    capacity = servers * service_rate
    backlog = int(math.ceil(4 * capacity * timeout))
    last_third = (horizon - horizon / 3.0, horizon)
    healthy_failure, collapsed_failure = [], []
    for i, row in enumerate(analytic.itertuples(index=False)):
        outcome = []
        for initial in (0, backlog):
            run = simulate_retrying_queue(servers, service_rate, row.arrival_rate, timeout=timeout,
                                          policy=factory(int(row.max_retries)), backoff=backoff,
                                          horizon=horizon, interval=horizon / 30.0, initial_backlog=initial,
                                          seed=np.random.SeedSequence(entropy=int(seed), spawn_key=(i, initial > 0)))
            outcome.append(run.window(*last_third).failure_fraction)
        healthy_failure.append(outcome[0])
        collapsed_failure.append(outcome[1])
    return healthy_failure, collapsed_failure


def _simulated_verdicts(healthy_failure: pd.Series, collapsed_failure: pd.Series, threshold: float) -> np.ndarray:
    stays_healthy = healthy_failure < threshold
    stays_collapsed = collapsed_failure >= threshold
    return np.select(
        [stays_healthy & ~stays_collapsed, ~stays_healthy & stays_collapsed, stays_healthy & stays_collapsed],
        ["healthy", "collapsed", "metastable"], default="flipped",
    )


def simulated_metastability(servers: int, service_rate: float, timeout: float, load_shares: Sequence[float],
                            max_retries: Sequence[int] = (1, 2, 3, 5), *, backoff: Backoff | None = None,
                            horizon: float = 600.0, threshold: float = 0.5, seed: int = 0,
                            policy_factory: Callable[[int], Any] | None = None) -> pd.DataFrame:
    """The metastability map of :func:`reliability.retry.metastability_map`, with simulated points.

    At each (retry cap, load share) the retrying queue is simulated twice for ``horizon``
    seconds: once started empty (healthy) and once started with a backlog of ``4 c mu T``
    attempts (collapsed). A run *ends collapsed* when its failure fraction over the last third
    of the run is at least ``threshold``. The simulated verdict is ``"healthy"`` (both runs end
    served), ``"collapsed"`` (both end collapsed), ``"metastable"`` (each run stays where it
    started) or ``"flipped"`` (the healthy start collapses and the collapsed start recovers).

    Returns
    -------
    pandas.DataFrame
        The rows of ``metastability_map`` (analytic ``verdict``, ``onset_share``,
        ``recovery_share``...) with ``healthy_start_failure``, ``collapsed_start_failure``
        (failure fractions over the last third), ``simulated_verdict`` and ``agrees`` (the
        simulated verdict equals the analytic one; the analytic ``overloaded`` counts as
        ``collapsed`` and ``throttled`` as ``collapsed``: most attempts fail in both).

    Examples
    --------
    >>> frame = simulated_metastability(10, 1.0, 3.0, [0.2], max_retries=[3], horizon=300.0, seed=1)
    >>> frame[["verdict", "simulated_verdict", "agrees"]].values.tolist()
    [['healthy', 'healthy', True]]
    """
    servers = whole("servers", servers, 1)
    threshold = float(probability("threshold", threshold, open_interval=True))
    seed = whole("seed", seed, 0)
    analytic = metastability_map(servers, service_rate, timeout, load_shares, max_retries,
                                 policy_factory=policy_factory)
    factory = FixedRetries if policy_factory is None else policy_factory
    healthy_failure, collapsed_failure = _end_failures(analytic, servers, service_rate, timeout, factory,
                                                       backoff, horizon, seed)
    frame = analytic.copy()
    frame["healthy_start_failure"] = healthy_failure
    frame["collapsed_start_failure"] = collapsed_failure
    frame["simulated_verdict"] = _simulated_verdicts(frame["healthy_start_failure"],
                                                     frame["collapsed_start_failure"], threshold)
    comparable = frame["verdict"].replace({"overloaded": "collapsed", "throttled": "collapsed"})
    frame["agrees"] = comparable == frame["simulated_verdict"]
    return frame
