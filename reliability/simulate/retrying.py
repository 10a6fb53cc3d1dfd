"""The retrying queue and the retrying connection pool, simulated.

Clients time out, retry after a backoff under a policy from :mod:`reliability.retry` (driven
through ``policy.limiter()``, never through an analytic formula), and capacity and the
request rate change in time. The event loop is in :mod:`.events`; this module checks the
arguments, draws the new requests, and turns the loop's records into a per-interval series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._validate import ArgumentTypeError, describe, whole
from . import _checks
from .events import run_retrying
from .results import RetrySimulation, occupancy, summarise
from .schedule import Schedule, as_rate, as_servers, poisson_arrivals

__all__ = ["simulate_retrying_queue", "simulate_connection_pool"]

_OUTCOMES = ("attempt", "retry", "success", "timeout", "blocked", "throttled", "failed")


@dataclass(frozen=True)
class _Arguments:
    """The checked arguments of one run."""

    servers: Schedule
    service_rate: float
    rate: Any                   # a Schedule or a function of time
    timeout: float
    horizon: float
    interval: float
    intervals: int
    queue_limit: int | None
    backlog: int
    setup_time: float
    new_connection_fraction: float
    retry_new_connection: bool
    clients: int
    seed: Any
    attempt_limit: int
    max_rate: float | None      # bound of a function-of-time rate (None for a Schedule)
    expected_requests: float


def _intervals(horizon: float, interval: float) -> int:
    ratio = horizon / interval  # a float: inf for interval=1e-308, checked before any int()
    if ratio > _checks.MAX_INTERVALS:
        raise ValueError(
            f"horizon / interval = {_checks.count_text(ratio)} intervals exceeds the limit of "
            f"{_checks.MAX_INTERVALS:,} (horizon={horizon!r}, interval={interval!r})"
        )
    n_intervals = int(round(ratio))
    if n_intervals < 1 or abs(n_intervals * interval - horizon) > 1e-9 * horizon:
        raise ValueError(
            f"horizon must be a whole multiple of interval, got horizon={horizon!r}, interval={interval!r}"
        )
    return n_intervals


def _check_client_side(policy, backoff, rate, max_arrival_rate, horizon: float):
    """Policy and backoff by what they can do; a function-of-time rate needs its bound.

    Returns the bound (None for a Schedule) and the expected number of new requests.
    """
    if policy is not None:
        for attr in ("limiter", "max_attempts"):
            if not hasattr(policy, attr):
                raise ArgumentTypeError(f"policy must be a retry policy with limiter() and max_attempts, "
                                        f"got {describe(policy)}")
        try:
            attempts = policy.max_attempts
        except (OverflowError, ValueError, TypeError) as error:  # e.g. int(inf) inside the policy
            raise ValueError(f"policy.max_attempts must be a whole number, got an error: {error}") from None
        whole("policy.max_attempts", attempts, 1, maximum=_checks.MAX_ATTEMPT_LIMIT)
    if backoff is not None and not hasattr(backoff, "delay"):
        raise ArgumentTypeError(f"backoff must be a Backoff (with delay()), got {describe(backoff)}")
    bound = None if max_arrival_rate is None else _checks.rate("max_arrival_rate", max_arrival_rate)
    if callable(rate) and not isinstance(rate, Schedule):
        if bound is None:
            raise ValueError("max_arrival_rate must be given when arrival_rate is a function of time, got None")
        return bound, bound * horizon
    return None, rate.integral(0.0, horizon)


def _check_arguments(servers, service_rate, arrival_rate, timeout, policy, backoff, horizon, interval,
                     queue_limit, initial_backlog, setup_time, new_connection_fraction, retry_new_connection,
                     clients, max_arrival_rate, seed, attempt_limit) -> _Arguments:
    cap = as_servers(servers)
    mu = _checks.rate("service_rate", service_rate)
    rate = as_rate("arrival_rate", arrival_rate)
    timeout = _checks.positive("timeout", timeout, allow_inf=True)
    horizon = _checks.duration("horizon", horizon, positive_only=True)
    interval = _checks.duration("interval", interval, positive_only=True)
    n_intervals = _intervals(horizon, interval)
    attempt_limit = whole("attempt_limit", attempt_limit, 1, maximum=_checks.MAX_ATTEMPT_LIMIT)
    # a queue longer than every attempt the run may make is no limit: the bound keeps it a number
    limit = None if queue_limit is None else whole("queue_limit", queue_limit, 0, maximum=_checks.MAX_ATTEMPT_LIMIT)
    backlog = whole("initial_backlog", initial_backlog, 0, maximum=attempt_limit)
    setup_time = _checks.duration("setup_time", setup_time)
    p_new = _checks.non_negative("new_connection_fraction", new_connection_fraction)
    if p_new > 1:
        raise ValueError(f"new_connection_fraction must be in [0, 1], got {describe(new_connection_fraction)}")
    if not isinstance(retry_new_connection, (bool, np.bool_)):
        raise ArgumentTypeError(f"retry_new_connection must be True or False, got {describe(retry_new_connection)}")
    clients = whole("clients", clients, 1, maximum=_checks.MAX_CLIENTS)
    seed = _checks.seed(seed)
    bound, expected = _check_client_side(policy, backoff, rate, max_arrival_rate, horizon)
    return _Arguments(cap, mu, rate, timeout, horizon, interval, n_intervals, limit, backlog, setup_time,
                      p_new, bool(retry_new_connection), clients, seed, attempt_limit, bound, expected)


def _refuse_oversized(args: _Arguments, policy, initial_backlog) -> None:
    """Refuse, before it starts, a run that could not hold its backlog or could make too many attempts."""
    limit, backlog = args.queue_limit, args.backlog
    if limit is not None and backlog > args.servers(0.0) + limit:
        raise ValueError(
            f"initial_backlog must be <= servers + queue_limit = {int(args.servers(0.0)) + limit} at time 0, "
            f"got {initial_backlog!r}"
        )
    expected = args.expected_requests
    attempts_per_request = int(policy.max_attempts) if policy is not None else 1
    # a generous bound: 6 standard deviations above the Poisson mean, every retry taken
    worst = (expected + 6.0 * math.sqrt(expected) + backlog) * attempts_per_request
    if worst > args.attempt_limit:
        raise ValueError(
            f"the run could make up to {_checks.count_text(worst)} attempts (arrival_rate over the horizon: "
            f"{_checks.count_text(expected)} expected requests, plus initial_backlog={backlog:,}, x "
            f"{attempts_per_request} attempts of the policy), more than attempt_limit={args.attempt_limit:,}; "
            f"shorten the horizon or raise attempt_limit (at most {_checks.MAX_ATTEMPT_LIMIT:,})"
        )


def _parameters(args: _Arguments, servers, arrival_rate, policy, backoff) -> dict:
    """The run's parameters as the result keeps them (a rate as given, the checked numbers)."""
    return dict(
        servers=servers if not isinstance(servers, Schedule) else args.servers, service_rate=args.service_rate,
        arrival_rate=arrival_rate, timeout=args.timeout, policy=policy, backoff=backoff,
        queue_limit=args.queue_limit, initial_backlog=args.backlog, setup_time=args.setup_time,
        new_connection_fraction=args.new_connection_fraction, retry_new_connection=args.retry_new_connection,
        clients=args.clients, seed=args.seed,
    )


def _series(args: _Arguments, base: np.ndarray, rec: dict) -> pd.DataFrame:
    """One row per interval: counts of every outcome, time averages, and the wasted server time."""
    n_intervals = args.intervals
    edges = np.arange(n_intervals + 1) * args.interval
    edges[-1] = args.horizon
    widths = np.diff(edges)

    def count(times):
        idx = np.searchsorted(edges, times, side="right") - 1
        idx = idx[(idx >= 0) & (idx < n_intervals)]
        return np.bincount(idx, minlength=n_intervals)

    columns = {k: count(rec[k]) for k in _OUTCOMES}
    failures = columns["timeout"] + columns["blocked"] + columns["throttled"]
    outcomes = failures + columns["success"]
    if isinstance(args.rate, Schedule):
        rate_mean = np.diff(args.rate.cumulative(edges)) / widths
    else:
        mids = 0.5 * (edges[:-1] + edges[1:])
        rate_mean = np.array([float(args.rate(float(t))) for t in mids])
    return pd.DataFrame({
        "time": edges[:-1],
        "servers": np.diff(args.servers.cumulative(edges)) / widths,
        "arrival_rate": rate_mean,
        "offered": count(base),
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
        "queue_length": occupancy(rec["adm_arrive"], rec["adm_start"], edges) / widths,
        "busy_servers": occupancy(rec["adm_start"], rec["adm_end"], edges) / widths,
        "wasted_work": occupancy(rec["waste_start"], rec["waste_end"], edges),
    })


def simulate_retrying_queue(servers, service_rate, arrival_rate, *, timeout, policy=None, backoff=None,
                            horizon=600.0, interval=1.0, queue_limit=None, initial_backlog=0,
                            setup_time=0.0, new_connection_fraction=0.0, retry_new_connection=True,
                            clients=1, max_arrival_rate=None, seed=0,
                            attempt_limit=_checks.ATTEMPT_LIMIT) -> RetrySimulation:
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
    args = _check_arguments(servers, service_rate, arrival_rate, timeout, policy, backoff, horizon, interval,
                            queue_limit, initial_backlog, setup_time, new_connection_fraction,
                            retry_new_connection, clients, max_arrival_rate, seed, attempt_limit)
    _refuse_oversized(args, policy, initial_backlog)
    rng = np.random.default_rng(args.seed)
    base = poisson_arrivals(args.rate, args.horizon, args.max_rate, rng)
    with np.errstate(under="ignore"):  # a timeout of 1e-308 s spreads the backlog over subnormal times
        backlog = (np.sort(-args.timeout * rng.random(args.backlog)).tolist() if math.isfinite(args.timeout)
                   else [0.0] * args.backlog)
    rec = run_retrying(
        servers=args.servers, service_rate=args.service_rate, base=base, backlog=backlog, timeout=args.timeout,
        queue_limit=args.queue_limit, setup_time=args.setup_time,
        new_connection_fraction=args.new_connection_fraction, retry_new_connection=args.retry_new_connection,
        policy=policy, clients=args.clients, backoff=backoff, horizon=args.horizon, rng=rng,
    )
    series = _series(args, base, rec)
    return RetrySimulation(series=series, summary=summarise(series, 0.0, args.horizon, args.interval),
                           horizon=args.horizon, interval=args.interval,
                           parameters=_parameters(args, servers, arrival_rate, policy, backoff))


def simulate_connection_pool(connections, service_rate, arrival_rate, *, timeout, setup_time=0.0,
                             new_connection_fraction=0.0, retry_new_connection=True, policy=None,
                             backoff=None, horizon=600.0, interval=1.0, initial_backlog=0, clients=1,
                             max_arrival_rate=None, seed=0,
                             attempt_limit=_checks.ATTEMPT_LIMIT) -> RetrySimulation:
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
    if not isinstance(connections, Schedule):
        connections = whole("connections", connections, 1, maximum=_checks.MAX_SERVERS)
    return simulate_retrying_queue(
        connections, service_rate, arrival_rate, timeout=timeout, policy=policy, backoff=backoff,
        horizon=horizon, interval=interval, queue_limit=0, initial_backlog=initial_backlog,
        setup_time=setup_time, new_connection_fraction=new_connection_fraction,
        retry_new_connection=retry_new_connection, clients=clients, max_arrival_rate=max_arrival_rate,
        seed=seed, attempt_limit=attempt_limit,
    )
