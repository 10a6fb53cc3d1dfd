"""A retrying queue behind server-side defences, simulated with an explicit waiting line.

The retrying-queue loops of :mod:`.events` and :mod:`.escape` are FCFS: an attempt's start is
fixed when it arrives (Kiefer-Wolfowitz), which is why a deadline, a bounded queue and "do not
retry" plug into them as options. Adaptive LIFO and CoDel change *which* waiting attempt a free
server takes, so their start times are known only when a server frees: this loop keeps the
waiting attempts in a :class:`~.disciplines.WaitingQueue`, frees servers on departures, and
lets the components of :mod:`.disciplines` decide at the two points where defences act --
admission (a bounded queue, shedding by priority, a client's circuit breaker) and dequeue
(FIFO or adaptive LIFO, CoDel, dropping expired work). As in the other loops, clients time out
after ``timeout`` and retry under a policy's limiter after a backoff; an abandoned attempt
stays in the queue and is served unless a defence drops it; a rejected, shed or dropped attempt
fails at once and is retried unless the server's "overloaded, do not retry" is honoured
(``retry_rejected=False``). With none of the queue options it is the FCFS retrying queue of
:func:`~.escape.simulate_goodput`, which the tests check.

Examples
--------
>>> from reliability.retry import FixedRetries
>>> share = simulate_defended_goodput(20, 1.0, 10.0, timeout=3.0, policy=FixedRetries(3), horizon=300.0,
...                                   warmup=60.0, lifo_threshold=10, seed=1)
>>> 0.95 < share.value <= 1.05
True
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from .._records import Record
from .._validate import whole
from . import _checks
from .disciplines import BreakerSettings, CircuitBreaker, CoDel, PriorityShedding, WaitingQueue
from .escape import _arrivals, _services
from .estimate import Estimate, estimate
from .events import _delay_source

__all__ = ["DefendedRun", "simulate_defended", "simulate_defended_goodput"]

_SEND, _DEPART, _GIVE_UP = 0, 1, 2
_PENDING, _ANSWERED, _TIMED_OUT = 0, 1, 2


class _Attempt:
    __slots__ = ("sent", "retries", "prev_delay", "client", "low_request", "low", "status", "generation")

    def __init__(self, sent, retries, prev_delay, client, low_request, low, generation):
        self.sent, self.retries, self.prev_delay, self.client = sent, retries, prev_delay, client
        self.low_request, self.low, self.status, self.generation = low_request, low, _PENDING, generation


@dataclass(frozen=True, repr=False)
class DefendedRun(Record):
    """One simulated run of a defended retrying queue.

    Attributes
    ----------
    requests, successes : int
        New requests, and successful responses, from ``warmup`` on.
    attempts : int
        Attempts that reached the server (the whole run).
    blocked, shed, dropped, refused : int
        Attempts rejected by a bounded queue, shed by priority (pushed out ones included),
        dropped at dequeue (CoDel or expired), and calls refused by an open circuit breaker.
    served : numpy.ndarray
        With ``trace``: one row ``(sent, start, low, client)`` per attempt taken by a server.
    shed_log : numpy.ndarray
        With ``trace``: one row ``(time, low, low attempts waiting)`` per shed attempt.
    breaker_log : tuple
        With ``trace``: ``(time, client, state)`` at every breaker transition.
    """

    requests: int
    successes: int
    attempts: int
    blocked: int
    shed: int
    dropped: int
    refused: int
    served: np.ndarray
    shed_log: np.ndarray
    breaker_log: tuple

    @property
    def goodput_share(self) -> float:
        return self.successes / max(self.requests, 1)


@dataclass(frozen=True)
class _Setup:
    servers: int
    service_rate: float
    arrival_rate: float
    timeout: float
    policy: object
    backoff: object
    horizon: float
    warmup: float
    backlog: int
    queue_limit: int | None
    retry_rejected: bool
    drop_expired: bool
    lifo_threshold: int | None
    codel: tuple | None
    shed_threshold: int | None
    shed_limit: int | None
    low_share: float | None     # share of low-priority requests; None: retries are the low priority
    breaker: BreakerSettings | None
    clients: int
    trace: bool


class _Loop:
    """The state of one run and its steps; :meth:`run` takes events in time order until the horizon."""

    def __init__(self, s: _Setup, rng):
        self.s, self.rng = s, rng
        self.next_service = _services(rng, s.service_rate).__next__
        self.next_delay = _delay_source(s.backoff, rng)
        self.limiter = s.policy.limiter() if s.policy is not None else None
        self.max_attempts = int(s.policy.max_attempts) if s.policy is not None else 1
        self.queue = WaitingQueue(s.lifo_threshold)
        self.codel = CoDel(*s.codel) if s.codel is not None else None
        self.shedding = PriorityShedding(s.shed_threshold, s.shed_limit) if s.shed_threshold is not None else None
        self.breakers = [CircuitBreaker(s.breaker) for _ in range(s.clients)] if s.breaker is not None else None
        self.free, self.in_system, self.events, self.seq = s.servers, 0, [], 0
        self.counts = dict(requests=0, successes=0, attempts=0, blocked=0, shed=0, dropped=0, refused=0)
        self.served, self.shed_log = [], []

    def push(self, time, kind, payload):
        heapq.heappush(self.events, (time, self.seq, kind, payload))
        self.seq += 1

    def run(self) -> DefendedRun:
        s, rng = self.s, self.rng
        for j in range(s.backlog):  # attempts sent by live clients in the timeout before time 0
            self.push(-s.timeout * (1.0 - (j + 0.5) / s.backlog), _SEND,
                      (-1, 0.0, int(rng.integers(s.clients)), self._low_request()))
        next_arrival = _arrivals(rng, s.arrival_rate).__next__
        arrival, heappop, events = next_arrival(), heapq.heappop, self.events
        while True:
            if events and events[0][0] < arrival:
                now, _, kind, payload = heappop(events)
            else:
                now, kind = arrival, _SEND
                payload = (0, 0.0, int(rng.integers(s.clients)) if s.clients > 1 else 0, self._low_request())
                arrival = next_arrival()
                self.counts["requests"] += s.warmup <= now < s.horizon
            if now >= s.horizon:
                break
            if kind == _SEND:
                self.send(now, *payload)
            elif kind == _DEPART:
                self.depart(now, payload)
            elif payload.status == _PENDING:  # the client gives up on an attempt not yet answered
                payload.status = _TIMED_OUT
                self.failed(now, payload, timed_out=True)
        breaker_log = tuple((t, i, state) for i, b in enumerate(self.breakers or ()) for t, state in b.log)
        return DefendedRun(**self.counts, served=np.array(self.served, dtype=float).reshape(-1, 4),
                           shed_log=np.array(self.shed_log, dtype=float).reshape(-1, 3),
                           breaker_log=breaker_log if s.trace else ())

    def _low_request(self) -> bool:
        return self.s.low_share is not None and self.rng.random() < self.s.low_share

    def send(self, now, retries, prev_delay, client, low_request):
        """An attempt leaves a client: the client's limiter and breaker, then the server's admission."""
        s, backlog = self.s, retries < 0
        retries = max(retries, 0)
        if not backlog and self.limiter is not None and not self.limiter.admit(now, self.rng):
            self.retry_or_fail(now, retries, prev_delay, client, low_request, timed_out=False)
            return
        generation = None
        if self.breakers is not None:
            breaker = self.breakers[client]
            generation = breaker.generation if backlog else breaker.allow(now)
            if generation is None:
                self.counts["refused"] += 1
                if s.breaker.retry_when_open:
                    self.retry_or_fail(now, retries, prev_delay, client, low_request, timed_out=False)
                return
        self.counts["attempts"] += 1
        low = low_request or (s.shed_threshold is not None and s.low_share is None and retries > 0)
        attempt = _Attempt(now, retries, prev_delay, client, low_request, low, generation)
        if s.queue_limit is not None and self.in_system >= s.servers + s.queue_limit:
            self.counts["blocked"] += 1
            self.reject(now, attempt)
            return
        if self.free > 0:
            self.start(now, attempt)
        else:
            if self.shedding is not None and not self.admit_by_priority(now, attempt):
                return
            self.queue.push(attempt)
        self.in_system += 1
        self.push(now + s.timeout, _GIVE_UP, attempt)

    def admit_by_priority(self, now, attempt) -> bool:
        if self.s.trace:
            waiting_low = sum(1 for a in self.queue.items if a.low)
        admitted, evicted = self.shedding.admit(self.queue, attempt.low, lambda a: a.low)
        for victim in ([evicted] if evicted is not None else []) + ([] if admitted else [attempt]):
            self.counts["shed"] += 1
            if self.s.trace:
                self.shed_log.append((now, victim.low, waiting_low))
            if victim is evicted:
                self.in_system -= 1
            if victim.status == _PENDING:
                self.reject(now, victim)
        return admitted

    def start(self, now, attempt):
        self.free -= 1
        self.push(now + self.next_service(), _DEPART, attempt)
        if self.s.trace:
            self.served.append((attempt.sent, now, attempt.low, attempt.client))

    def depart(self, now, attempt):
        self.free += 1
        self.in_system -= 1
        if attempt.status == _PENDING:
            attempt.status = _ANSWERED
            self.counts["successes"] += now >= self.s.warmup
            if self.breakers is not None:
                self.breakers[attempt.client].record(now, True, attempt.generation)
            if self.limiter is not None:
                self.limiter.record(now, True, attempt.retries, False)
        self.take_next(now)

    def take_next(self, now):
        """Free servers take waiting attempts, through CoDel and the deadline where they are on."""
        s, queue = self.s, self.queue
        while self.free > 0 and len(queue):
            if self.codel is not None:
                attempt, dropped = self.codel.dequeue(queue, now, lambda a, t: t - a.sent)
                for victim in dropped:
                    self.counts["dropped"] += 1
                    self.in_system -= 1
                    if victim.status == _PENDING:
                        self.reject(now, victim)
                if attempt is None:
                    break
            else:
                attempt = queue.pop()
            if s.drop_expired and now - attempt.sent > s.timeout:  # its client has left: skip it
                self.counts["dropped"] += 1
                self.in_system -= 1
                continue
            self.start(now, attempt)

    def reject(self, now, attempt):
        """The server answers at once with an error (blocked, shed or dropped)."""
        attempt.status = _ANSWERED
        if not self.s.retry_rejected:  # "overloaded, do not retry", and the client obeys
            self.record_failure(now, attempt)
            return
        self.failed(now, attempt, timed_out=False)

    def record_failure(self, now, attempt):
        if self.breakers is not None:
            self.breakers[attempt.client].record(now, False, attempt.generation)
        if self.limiter is not None:
            self.limiter.record(now, False, attempt.retries, False)

    def failed(self, now, attempt, *, timed_out):
        self.record_failure(now, attempt)
        self.retry_or_fail(now, attempt.retries, attempt.prev_delay, attempt.client, attempt.low_request, timed_out)

    def retry_or_fail(self, now, retries, prev_delay, client, low_request, timed_out):
        lim = self.limiter
        if lim is not None and retries + 1 < self.max_attempts and lim.may_retry(now, retries, timed_out):
            delay = self.next_delay(retries + 1, prev_delay)
            self.push(now + delay, _SEND, (retries + 1, delay, client, low_request))


def _check(servers, service_rate, arrival_rate, timeout, policy, backoff, initial_backlog, horizon, warmup,
           options: dict) -> _Setup:
    if policy is not None and not (hasattr(policy, "limiter") and hasattr(policy, "max_attempts")):
        raise ValueError(f"policy must be a retry policy with limiter() and max_attempts, got {policy!r}")
    if backoff is not None and not hasattr(backoff, "delay"):
        raise ValueError(f"backoff must be a Backoff (with delay()), got {backoff!r}")
    for flag in ("retry_rejected", "drop_expired", "trace"):
        if not isinstance(options[flag], (bool, np.bool_)):
            raise ValueError(f"{flag} must be True or False, got {options[flag]!r}")
    horizon = _checks.positive("horizon", horizon)
    warm = _checks.non_negative("warmup", warmup)
    if warm >= horizon:
        raise ValueError(f"warmup must be shorter than horizon={horizon!r}, got {warmup!r}")
    codel = options["codel"]
    if codel is not None and (not isinstance(codel, tuple) or len(codel) != 2):
        raise ValueError(f"codel must be a (target, interval) pair of seconds, got {codel!r}")
    low = options["low_priority"]
    if not (low == "retries" or isinstance(low, (int, float)) and not isinstance(low, bool) and 0 <= low <= 1):
        raise ValueError(f"low_priority must be 'retries' or a share of requests in [0, 1], got {low!r}")
    breaker = options["breaker"]
    if breaker is not None and not isinstance(breaker, BreakerSettings):
        raise ValueError(f"breaker must be a BreakerSettings, got {breaker!r}")

    def optional(name, least=0):
        return None if options[name] is None else whole(name, options[name], least, maximum=10**8)

    setup = _Setup(
        servers=whole("servers", servers, 1, maximum=10**6), service_rate=_checks.rate("service_rate", service_rate),
        arrival_rate=_checks.rate("arrival_rate", arrival_rate), timeout=_checks.positive("timeout", timeout),
        policy=policy, backoff=backoff, horizon=horizon, warmup=warm,
        backlog=whole("initial_backlog", initial_backlog, 0, maximum=10**8), queue_limit=optional("queue_limit"),
        retry_rejected=bool(options["retry_rejected"]), drop_expired=bool(options["drop_expired"]),
        lifo_threshold=optional("lifo_threshold"),
        codel=None if codel is None else (_checks.positive("codel target", codel[0]),
                                          _checks.positive("codel interval", codel[1])),
        shed_threshold=optional("shed_threshold"), shed_limit=optional("shed_limit"),
        low_share=None if low == "retries" else float(low), breaker=breaker,
        clients=whole("clients", options["clients"], 1, maximum=_checks.MAX_CLIENTS), trace=bool(options["trace"]),
    )
    if setup.shed_limit is not None and (setup.shed_threshold is None or setup.shed_limit < setup.shed_threshold):
        raise ValueError(f"shed_limit must come with a shed_threshold <= it, got shed_limit={setup.shed_limit!r}, "
                         f"shed_threshold={setup.shed_threshold!r}")
    expected = setup.arrival_rate * horizon * (int(policy.max_attempts) if policy is not None else 1)
    if expected > _checks.ATTEMPT_LIMIT:
        raise ValueError(f"one replication could make about {_checks.count_text(expected)} attempts, more than "
                         f"{_checks.ATTEMPT_LIMIT:,}; shorten the horizon")
    return setup


def simulate_defended(servers, service_rate, arrival_rate, *, timeout, policy=None, backoff=None, initial_backlog=0,
                      horizon=1800.0, warmup=600.0, queue_limit=None, retry_rejected=True, drop_expired=False,
                      lifo_threshold=None, codel=None, shed_threshold=None, shed_limit=None, low_priority="retries",
                      breaker=None, clients=1, trace=False, replications=1, seed=0) -> tuple[DefendedRun, ...]:
    """Runs of a retrying queue behind server-side defences, one per replication (child seeds of ``seed``).

    Parameters
    ----------
    servers, service_rate, arrival_rate, timeout, policy, backoff, initial_backlog, horizon, warmup :
        As for :func:`~.escape.simulate_goodput` (constant rates; ``initial_backlog`` attempts sent in
        the timeout before time 0 start a collapsed service).
    queue_limit : int, optional
        Most attempts in the system beyond the servers (a bounded queue).
    retry_rejected : bool
        False: a rejected, shed or dropped attempt carries "overloaded, do not retry" and its
        client obeys.
    drop_expired : bool
        A free server skips an attempt that has waited longer than the timeout.
    lifo_threshold : int, optional
        Adaptive LIFO: the newest waiting attempt is served while more than this many wait (0: LIFO).
    codel : (float, float), optional
        CoDel's ``(target, interval)`` in seconds, applied at dequeue.
    shed_threshold, shed_limit : int, optional
        Shedding by priority: low-priority attempts are shed once ``shed_threshold`` wait; at
        ``shed_limit`` waiting a high-priority attempt pushes out a low-priority one.
    low_priority : "retries" or float
        What is low priority: every retry, or this share of requests (all of their attempts).
    breaker : BreakerSettings, optional
        A circuit breaker on each client.
    clients : int
        Client populations, each with its own breaker; requests spread uniformly over them.
    trace : bool
        Keep ``served``, ``shed_log`` and ``breaker_log`` (for tests; costs memory).
    """
    options = dict(queue_limit=queue_limit, retry_rejected=retry_rejected, drop_expired=drop_expired,
                   lifo_threshold=lifo_threshold, codel=codel, shed_threshold=shed_threshold, shed_limit=shed_limit,
                   low_priority=low_priority, breaker=breaker, clients=clients, trace=trace)
    setup = _check(servers, service_rate, arrival_rate, timeout, policy, backoff, initial_backlog, horizon, warmup,
                   options)
    reps = whole("replications", replications, 1, maximum=10**6)
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(whole("seed", seed, 0))
    return tuple(_Loop(setup, np.random.default_rng(child)).run() for child in root.spawn(reps))


def simulate_defended_goodput(servers, service_rate, arrival_rate, *, replications=4, confidence=0.95, seed=0,
                              **options) -> Estimate:
    """Goodput share (successes per new request from ``warmup`` on) over replications, with its t-interval.

    Takes the arguments of :func:`simulate_defended` (``trace`` aside).
    """
    conf = _checks.level(confidence)
    runs = simulate_defended(servers, service_rate, arrival_rate, replications=replications, seed=seed, **options)
    return estimate(np.array([r.goodput_share for r in runs], dtype=np.float64), conf)
