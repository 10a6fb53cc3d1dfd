"""Escape times of a retrying queue, simulated: how long until a healthy queue tips, or a collapsed one recovers.

The event loop is that of :func:`reliability.simulate.simulate_retrying_queue` (FCFS
Kiefer-Wolfowitz on a heap of departures, clients that time out and retry under a policy's
limiter, abandoned attempts still served) stripped to what an escape time needs: it keeps no
records and stops at the first passage of the backlog (attempts in the system, abandoned ones
included) across a level. Many replications, each on its own child ``SeedSequence``, give a
sample of escape times, right-censored at the horizon; under the exponential law of a
metastable escape the mean is ``exposure / escapes``, with an exact (chi-square) interval.

Two server-side defences are options of the loop: ``drop_expired`` (the server skips an
attempt whose client has already given up: deadline propagation) and ``queue_limit`` (a
bounded queue that rejects attempts beyond ``servers + queue_limit``).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .._records import Record
from ..cluster import check_cluster, start_batches, startable
from .._validate import whole
from . import _checks
from .estimate import Estimate, estimate
from .events import _delay_source

__all__ = ["EscapeTimes", "simulate_escape_times", "simulate_goodput"]

_CHUNK = 4096
_RETRY, _RESPONSE, _GIVE_UP = 0, 1, 2


@dataclass(frozen=True, repr=False)
class EscapeTimes(Record):
    """Simulated first-passage times of the backlog, one per replication.

    Attributes
    ----------
    times : numpy.ndarray
        Time of the passage in each replication, or the horizon where it did not happen.
    escaped : numpy.ndarray
        Whether each replication crossed the level before the horizon.
    horizon : float
        Censoring time of each replication.
    mean_time : Estimate
        Mean escape time ``exposure / escapes`` with its exact chi-square interval at
        ``level`` (exponential law; ``inf`` upper end when nothing escaped).
    attempts : int
        Attempts simulated over all replications (the cost of the estimate).
    """

    times: np.ndarray
    escaped: np.ndarray
    horizon: float
    mean_time: Estimate
    attempts: int

    @property
    def escape_fraction(self) -> float:
        """Share of replications that crossed the level before the horizon."""
        return float(np.mean(self.escaped))

    def probability_within(self, horizon: float) -> Estimate:
        """P(escape within ``horizon``) under the exponential law, with the interval of the mean."""
        est = self.mean_time

        def p(mean):
            return 0.0 if mean == math.inf else float(-math.expm1(-horizon / mean)) if mean > 0 else 1.0

        return Estimate(value=p(est.value), low=p(est.high), high=p(est.low), level=est.level,
                        replications=est.replications)


def _mean_estimate(times: np.ndarray, escaped: np.ndarray, level: float) -> Estimate:
    """Exponential mean ``exposure / k`` with the exact interval from the Poisson count ``k``."""
    exposure, k = float(times.sum()), int(escaped.sum())
    alpha = 1.0 - level
    rate_low = float(stats.chi2.ppf(alpha / 2, 2 * k)) / (2 * exposure) if k > 0 else 0.0
    rate_high = float(stats.chi2.ppf(1 - alpha / 2, 2 * k + 2)) / (2 * exposure)
    value = exposure / k if k > 0 else math.inf
    return Estimate(value=value, low=1.0 / rate_high, high=1.0 / rate_low if rate_low > 0 else math.inf,
                    level=level, replications=int(times.size))


@dataclass
class _Setup:
    servers: int
    service_rate: float
    arrival_rate: float
    timeout: float
    policy: object
    backoff: object
    horizon: float
    level: int
    upward: bool
    backlog: int
    drop_expired: bool
    queue_limit: int | None
    retry_rejected: bool = True  # False: clients honour "overloaded, do not retry" on a blocked attempt
    count_after: float = math.inf  # successes are counted from this time on


def _arrivals(rng, rate: float):
    """New-request times, drawn in chunks."""
    t = 0.0
    while True:
        times = t + np.cumsum(rng.standard_exponential(_CHUNK)) / rate
        t = float(times[-1])
        yield from times.tolist()


def _services(rng, rate: float):
    while True:
        yield from (rng.standard_exponential(_CHUNK) / rate).tolist()


def _one_run(s: _Setup, rng) -> tuple[float, bool, int, int, int]:
    """One replication: ``(passage time or horizon, crossed, attempts, successes and new requests after count_after)``."""
    heappush, heappop = heapq.heappush, heapq.heappop
    next_arrival, next_service = _arrivals(rng, s.arrival_rate).__next__, _services(rng, s.service_rate).__next__
    next_delay = _delay_source(s.backoff, rng)
    limiter = s.policy.limiter() if s.policy is not None else None
    max_attempts = int(s.policy.max_attempts) if s.policy is not None else 1
    c, timeout, level, upward = s.servers, s.timeout, s.level, s.upward
    system_limit = None if s.queue_limit is None else c + s.queue_limit
    busy: list[float] = []      # departures of attempts in service
    inflight: list[float] = []  # departures of every admitted attempt: the backlog is its length
    events = [(-timeout * (1.0 - (j + 0.5) / s.backlog), j, _RETRY, -1, 0.0) for j in range(s.backlog)]
    seq, prev_start, attempts, successes, arrived, arrival = s.backlog, -math.inf, 0, 0, 0, next_arrival()
    count_after, retry_rejected = s.count_after, s.retry_rejected
    while True:
        if events and events[0][0] < arrival:
            now, _, kind, retries, prev_delay = heappop(events)
        else:
            now, kind, retries, prev_delay, arrival = arrival, _RETRY, 0, 0.0, next_arrival()
            arrived += count_after <= now < s.horizon  # a request at the horizon is not in the window
        if now >= s.horizon:
            return s.horizon, False, attempts, successes, arrived
        while inflight and inflight[0] <= now:
            heappop(inflight)
        if not upward and now >= 0.0 and len(inflight) <= level:
            return max(now, 0.0), True, attempts, successes, arrived
        if kind == _RESPONSE:
            successes += now >= count_after
            if limiter is not None:
                limiter.record(now, True, retries, False)
            continue
        if kind == _GIVE_UP:
            timed_out = True
            if limiter is not None:
                limiter.record(now, False, retries, False)
        elif retries >= 0 and limiter is not None and not limiter.admit(now, rng):
            timed_out = False
        else:
            retries = max(retries, 0)
            attempts += 1
            if system_limit is not None and len(inflight) >= system_limit:
                timed_out = False
                if limiter is not None:
                    limiter.record(now, False, retries, False)
                if not retry_rejected:
                    continue  # the server said "overloaded, do not retry", and the client obeys
            else:
                while busy and busy[0] <= max(now, prev_start):
                    heappop(busy)
                t = prev_start = max(now, prev_start, heappop(busy) if len(busy) >= c else now)
                # a server that sees the deadline passed drops the attempt instead of serving it
                end = t if (s.drop_expired and t - now > timeout) else t + next_service()
                if end > t:
                    heappush(busy, end)
                heappush(inflight, end)
                if upward and len(inflight) >= level:
                    return now, True, attempts, successes, arrived
                late = end - now > timeout
                heappush(events, (now + timeout if late else end, seq, _GIVE_UP if late else _RESPONSE, retries, prev_delay))
                seq += 1
                continue
        if limiter is not None and retries + 1 < max_attempts and limiter.may_retry(now, retries, timed_out):
            delay = next_delay(retries + 1, prev_delay)
            heappush(events, (now + delay, seq, _RETRY, retries + 1, delay))
            seq += 1


def _seeded_run(setup: _Setup, seed: np.random.SeedSequence) -> tuple:
    """One replication on its own stream (a batch a cluster worker can run)."""
    return _one_run(setup, np.random.default_rng(seed))


@startable
def simulate_escape_times(servers, service_rate, arrival_rate, *, timeout, level, policy=None, backoff=None,
                          start="healthy", initial_backlog=0, replications=20, horizon=3600.0,
                          drop_expired=False, queue_limit=None, confidence=0.95, seed=0,
                          cluster=None) -> EscapeTimes:
    """First-passage times of a retrying queue's backlog across ``level``, over many replications.

    Parameters
    ----------
    servers, service_rate, arrival_rate, timeout, policy, backoff :
        The queue and its clients, as in :func:`simulate_retrying_queue` (constant rates).
    level : int
        Backlog (attempts in the system, abandoned ones included) whose passage is timed.
    start : {"healthy", "collapsed"}
        ``"healthy"``: start empty and time the first backlog ``>= level`` (tipping);
        ``"collapsed"``: start with ``initial_backlog`` attempts sent in the timeout before
        time 0 and time the first backlog ``<= level`` (recovery).
    replications : int
        Independent runs, each seeded by its own child of ``SeedSequence(seed)``.
    horizon : float
        Censoring time of each run, seconds.
    drop_expired : bool
        Server-side deadline: an attempt that reaches a server after its client gave up is dropped.
    queue_limit : int, optional
        Most attempts waiting beyond the servers (a bounded queue); ``None``: unbounded.
    confidence : float
        Level of the interval on the mean escape time.
    seed : int or SeedSequence
    cluster : reliability.Cluster, optional
        Where the replications run (default: here, one after the other); the same numbers anywhere.
        ``simulate_escape_times.start(...)`` checks the arguments, sends the replications and returns
        a function that waits for the result.

    Examples
    --------
    >>> from reliability.retry import FixedRetries
    >>> runs = simulate_escape_times(20, 1.0, 16.0, timeout=3.0, level=140, policy=FixedRetries(3),
    ...                              replications=10, horizon=3600.0, seed=1)
    >>> runs.escape_fraction, runs.mean_time.low < runs.mean_time.value < runs.mean_time.high
    (1.0, True)
    """
    setup = _check(servers, service_rate, arrival_rate, timeout, level, policy, backoff, start,
                   initial_backlog, horizon, drop_expired, queue_limit)
    reps = whole("replications", replications, 1, maximum=10**6)
    conf = _checks.level(confidence)
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(whole("seed", seed, 0))
    pending = start_batches(check_cluster(cluster), _seeded_run, [setup] * reps, root.spawn(reps))
    yield  # the replications go on while the caller works (simulate_escape_times.start)
    results = pending()
    times = np.array([r[0] for r in results])  # results: (time, crossed, attempts, successes, requests)
    escaped = np.array([r[1] for r in results])
    return EscapeTimes(times=times, escaped=escaped, horizon=setup.horizon,
                       mean_time=_mean_estimate(times, escaped, conf), attempts=int(sum(r[2] for r in results)))


def _check(servers, service_rate, arrival_rate, timeout, level, policy, backoff, start, initial_backlog, horizon,
           drop_expired, queue_limit) -> _Setup:
    if start not in ("healthy", "collapsed"):
        raise ValueError(f"start must be 'healthy' or 'collapsed', got {start!r}")
    if policy is not None and not (hasattr(policy, "limiter") and hasattr(policy, "max_attempts")):
        raise ValueError(f"policy must be a retry policy with limiter() and max_attempts, got {policy!r}")
    if backoff is not None and not hasattr(backoff, "delay"):
        raise ValueError(f"backoff must be a Backoff (with delay()), got {backoff!r}")
    if not isinstance(drop_expired, (bool, np.bool_)):
        raise ValueError(f"drop_expired must be True or False, got {drop_expired!r}")
    setup = _Setup(
        servers=whole("servers", servers, 1, maximum=10**6), service_rate=_checks.rate("service_rate", service_rate),
        arrival_rate=_checks.rate("arrival_rate", arrival_rate), timeout=_checks.positive("timeout", timeout),
        policy=policy, backoff=backoff, horizon=_checks.positive("horizon", horizon),
        level=whole("level", level, 0, maximum=10**8), upward=start == "healthy",
        backlog=whole("initial_backlog", initial_backlog, 0, maximum=10**8), drop_expired=bool(drop_expired),
        queue_limit=None if queue_limit is None else whole("queue_limit", queue_limit, 0),
    )
    expected = setup.arrival_rate * setup.horizon * (int(policy.max_attempts) if policy is not None else 1)
    if expected > _checks.ATTEMPT_LIMIT:
        raise ValueError(f"one replication could make about {_checks.count_text(expected)} attempts, more than "
                         f"{_checks.ATTEMPT_LIMIT:,}; shorten the horizon")
    if setup.upward and setup.level < 1:
        raise ValueError(f"level must be >= 1 for a healthy start, got {level!r}")
    return setup


def simulate_goodput(servers, service_rate, arrival_rate, *, timeout, policy=None, backoff=None, initial_backlog=0,
                     horizon=1800.0, warmup=600.0, drop_expired=False, queue_limit=None, retry_rejected=True,
                     replications=4, confidence=0.95, seed=0) -> Estimate:
    """Goodput share (successes per new request, both counted after ``warmup``), over replications.

    The loop of :func:`simulate_escape_times` run for the whole ``horizon`` (no passage level),
    started empty or with ``initial_backlog`` attempts (a collapsed service). The server-side
    defences are ``drop_expired`` (deadline propagation), ``queue_limit`` (a bounded queue or,
    with a small limit, a concurrency limit) and ``retry_rejected=False`` (a blocked attempt
    carries "overloaded, do not retry" and its client obeys).

    Examples
    --------
    >>> from reliability.retry import FixedRetries
    >>> share = simulate_goodput(20, 1.0, 10.0, timeout=3.0, policy=FixedRetries(3), horizon=300.0,
    ...                          warmup=60.0, seed=1)
    >>> 0.95 < share.value <= 1.05
    True
    """
    warm = _checks.non_negative("warmup", warmup)
    setup = _check(servers, service_rate, arrival_rate, timeout, 1, policy, backoff,
                   "healthy" if initial_backlog == 0 else "collapsed", initial_backlog, horizon, drop_expired,
                   queue_limit)
    if warm >= setup.horizon:
        raise ValueError(f"warmup must be shorter than horizon={horizon!r}, got {warmup!r}")
    if not isinstance(retry_rejected, (bool, np.bool_)):
        raise ValueError(f"retry_rejected must be True or False, got {retry_rejected!r}")
    # no passage ends the run: an upward level no backlog reaches, or a downward one below zero
    setup = dataclasses.replace(setup, level=2**62 if setup.upward else -1, retry_rejected=bool(retry_rejected),
                                count_after=warm)
    reps = whole("replications", replications, 1, maximum=10**6)
    conf = _checks.level(confidence)
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(whole("seed", seed, 0))
    runs = [_seeded_run(setup, child) for child in root.spawn(reps)]
    # successes over the new requests of the same window (not the expected number: less noise)
    shares = np.array([r[3] / max(r[4], 1) for r in runs], dtype=np.float64)
    return estimate(shares, conf)
