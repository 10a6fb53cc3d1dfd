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

from ..cluster import check_cluster, start_batches, startable
from .._validate import ArgumentTypeError, as_array, describe, number, whole
from ..retry import Backoff, FixedRetries, RetryingQueue, metastability_map
from ..simulate import ATTEMPT_LIMIT, MAX_HORIZON, MAX_RATE, MAX_SERVERS, MIN_RATE, simulate_retrying_queue

__all__ = ["simulated_metastability"]


def _end_failure(servers: int, service_rate: float, arrival_rate: float, timeout: float, policy: Any,
                 backoff: Backoff | None, horizon: float, initial: int, seed) -> float:
    """Failure fraction over the last third of one run started with ``initial`` attempts queued."""
    run = simulate_retrying_queue(servers, service_rate, arrival_rate, timeout=timeout, policy=policy,
                                  backoff=backoff, horizon=horizon, interval=horizon / 30.0,
                                  initial_backlog=initial, seed=seed)
    return run.window(horizon - horizon / 3.0, horizon).failure_fraction


def _start_runs(servers: int, service_rate: float, timeout: float, load_shares, max_retries: list[int],
                factory: Callable[[int], Any], backoff: Backoff | None, horizon: float, seed: int,
                cluster=None) -> Callable[[], tuple[list[float], list[float]]]:
    """Start a run from empty and one from collapsed per point of the map, in the map's row order.

    Returns a function that waits for their failure fractions over the last third: (healthy
    starts, collapsed starts). The runs work while the caller draws the analytic map.
    """
    # a backlog the servers need four timeouts to clear: every attempt in it times out
    backlog = _collapsed_backlog(servers, service_rate, timeout)
    shares = np.atleast_1d(as_array("load_shares", load_shares, minimum=0.0)).ravel()
    runs = []
    for r in max_retries:  # the rows of metastability_map: each cap, then each share
        policy = factory(r)
        capacity = RetryingQueue(servers, service_rate, timeout, policy).capacity
        runs += [(float(share * capacity), policy, initial) for share in map(float, shares) for initial in (0, backlog)]
    rates, policies, initials = zip(*runs)
    seeds = [np.random.SeedSequence(entropy=int(seed), spawn_key=(i // 2, initial > 0)) for i, initial in enumerate(initials)]
    n = len(runs)
    pending = start_batches(cluster, _end_failure, [servers] * n, [service_rate] * n, rates, [timeout] * n,
                            policies, [backoff] * n, [horizon] * n, initials, seeds)

    def failures() -> tuple[list[float], list[float]]:
        ends = pending()
        return ends[0::2], ends[1::2]

    return failures


def _collapsed_backlog(servers: int, service_rate: float, timeout: float) -> int:
    """``ceil(4 c mu T)`` attempts, refused beyond what one simulated run may hold."""
    backlog = 4.0 * servers * service_rate * timeout  # a Python float: inf rather than an overflow
    if not backlog <= ATTEMPT_LIMIT:
        raise ValueError(f"the collapsed start needs 4 x servers x service_rate x timeout = {backlog:.3g} attempts "
                         f"in its backlog, more than the {ATTEMPT_LIMIT:,} one simulated run holds")
    return int(math.ceil(backlog))


def _checked_simulation(servers, service_rate, timeout, load_shares, max_retries, backoff, horizon):
    """The arguments the simulated runs need, checked before the analytic map is drawn."""
    servers = whole("servers", servers, 1, maximum=MAX_SERVERS)
    service_rate = number("service_rate", service_rate, minimum=MIN_RATE, maximum=MAX_RATE)
    timeout = number("timeout", timeout, minimum=0.0, strict=True)
    horizon = number("horizon", horizon, minimum=0.0, strict=True, maximum=MAX_HORIZON)
    shares = as_array("load_shares", load_shares, minimum=0.0)
    if shares.size == 0:
        raise ValueError("load_shares must hold at least one load share, got none")
    try:
        if np.ndim(max_retries) == 0 and not isinstance(max_retries, (str, bytes, dict)) and max_retries is not None:
            max_retries = [max_retries]  # one retry cap
        one_dimensional = np.ndim(max_retries) == 1
    except ValueError:  # ragged
        one_dimensional = False
    if isinstance(max_retries, (str, bytes, dict)) or not one_dimensional:
        raise ArgumentTypeError(f"max_retries must be a sequence of whole numbers, got {describe(max_retries)}")
    retries = [whole(f"max_retries[{i}]", r, 0, maximum=10**6) for i, r in enumerate(max_retries)]
    if not retries:
        raise ValueError("max_retries must hold at least one retry cap, got none")
    # every run: up to load share x c mu x horizon requests, each making up to max_retries + 1 attempts
    attempts = float(shares.max()) * servers * service_rate * horizon * (max(retries) + 1)
    if not attempts <= ATTEMPT_LIMIT:
        raise ValueError(f"load_shares up to {float(shares.max()):g} x servers x service_rate over the horizon "
                         f"could make {attempts:.3g} attempts per run, more than the {ATTEMPT_LIMIT:,} one run holds")
    if backoff is not None and not hasattr(backoff, "delay"):
        raise ArgumentTypeError(f"backoff must be a Backoff (with delay()) or None, got {describe(backoff)}")
    _collapsed_backlog(servers, service_rate, timeout)
    return servers, service_rate, timeout, retries, horizon


def _simulated_verdicts(healthy_failure: pd.Series, collapsed_failure: pd.Series, threshold: float) -> np.ndarray:
    stays_healthy = healthy_failure < threshold
    stays_collapsed = collapsed_failure >= threshold
    return np.select(
        [stays_healthy & ~stays_collapsed, ~stays_healthy & stays_collapsed, stays_healthy & stays_collapsed],
        ["healthy", "collapsed", "metastable"], default="flipped",
    )


@startable
def simulated_metastability(servers: int, service_rate: float, timeout: float, load_shares: Sequence[float],
                            max_retries: Sequence[int] = (1, 2, 3, 5), *, backoff: Backoff | None = None,
                            horizon: float = 600.0, threshold: float = 0.5, seed: int = 0,
                            policy_factory: Callable[[int], Any] | None = None, cluster=None) -> pd.DataFrame:
    """The metastability map of :func:`reliability.retry.metastability_map`, with simulated points.

    At each (retry cap, load share) the retrying queue is simulated twice for ``horizon``
    seconds: once started empty (healthy) and once started with a backlog of ``4 c mu T``
    attempts (collapsed). A run *ends collapsed* when its failure fraction over the last third
    of the run is at least ``threshold``. The simulated verdict is ``"healthy"`` (both runs end
    served), ``"collapsed"`` (both end collapsed), ``"metastable"`` (each run stays where it
    started) or ``"flipped"`` (the healthy start collapses and the collapsed start recovers).

    The runs are independent and each seeded by its place on the map: with a ``cluster``
    (:class:`reliability.Cluster`) they run on its workers, with the same numbers;
    ``simulated_metastability.start(...)`` returns as soon as they are sent, with a function that
    waits for the frame.

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
    servers, service_rate, timeout, max_retries, horizon = _checked_simulation(
        servers, service_rate, timeout, load_shares, max_retries, backoff, horizon)
    threshold = number("threshold", threshold, minimum=0.0, strict=True, maximum=1.0)
    if threshold == 1.0:
        raise ValueError(f"threshold must be < 1, got {describe(threshold)}")
    seed = whole("seed", seed, 0)
    check_cluster(cluster)
    if policy_factory is not None and not callable(policy_factory):
        raise ArgumentTypeError(f"policy_factory must be a function of the retry cap, got {describe(policy_factory)}")
    factory = FixedRetries if policy_factory is None else policy_factory
    failures = _start_runs(servers, service_rate, timeout, load_shares, max_retries, factory, backoff, horizon, seed,
                           cluster)
    yield  # the runs go on while the analytic map is drawn
    with np.errstate(under="ignore"):  # vanishing probabilities at tiny timeouts are 0, rightly
        analytic = metastability_map(servers, service_rate, timeout, load_shares, max_retries,
                                     policy_factory=policy_factory)
    healthy_failure, collapsed_failure = failures()
    frame = analytic.copy()
    frame["healthy_start_failure"] = healthy_failure
    frame["collapsed_start_failure"] = collapsed_failure
    frame["simulated_verdict"] = _simulated_verdicts(frame["healthy_start_failure"],
                                                     frame["collapsed_start_failure"], threshold)
    comparable = frame["verdict"].replace({"overloaded": "collapsed", "throttled": "collapsed"})
    frame["agrees"] = comparable == frame["simulated_verdict"]
    return frame
