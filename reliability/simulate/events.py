"""The retrying queue's event loop.

The queue is FCFS, so each admitted attempt's start and departure are known the moment it
arrives, from a heap of the departure times of the attempts in service (Kiefer-Wolfowitz with
a number of servers that may change in time). The event heap therefore holds only
client-side events: responses, give-ups and retries. A client that gives up does not cancel
its attempt: the server still spends the service time on it (wasted work), which is what lets
a retry storm outlive its trigger.

The loop returns the times of every event as record arrays (``attempt``, ``retry``,
``success``, ``timeout``, ``blocked``, ``throttled``, ``failed``), and for each admitted
attempt its arrival, start and end (``adm_*``) and, for an abandoned one, the server time it
wasted (``waste_*``).
"""

from __future__ import annotations

import heapq
import math
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .schedule import Schedule

__all__ = ["RECORDS", "run_retrying"]

# event kinds in the heap, and the two kinds of attempt that never pass through it
_RETRY, _RESPONSE, _GIVE_UP = 0, 1, 2
_FIRST, _BACKLOG = -2, -1
#: Service times drawn at once (one numpy call per chunk instead of one per attempt).
_SERVICE_CHUNK = 8192
#: Backoff delays drawn at once per retry index, for jitters whose delays are independent.
_DELAY_CHUNK = 1024

RECORDS = ("attempt", "retry", "success", "timeout", "blocked", "throttled", "failed",
           "adm_arrive", "adm_start", "adm_end", "waste_start", "waste_end")


def _constant_start(servers: int) -> Callable:
    """FCFS start with ``servers`` servers: the attempt waits for the earliest departure if all are busy."""
    heappop = heapq.heappop

    def start(t: float, busy: list) -> float:
        while busy and busy[0] <= t:
            heappop(busy)
        if len(busy) >= servers:
            t = heappop(busy)
        return t

    return start


def _varying_start(times: list, values: list) -> Callable:
    """FCFS start when the number of servers changes: wait for a departure or for more servers.

    When servers are removed, attempts in service finish first; with no server and none to
    come, the attempt never starts (``inf``).
    """
    heappop, inf = heapq.heappop, math.inf
    n = len(times)

    def start(t: float, busy: list) -> float:
        while busy and busy[0] <= t:
            heappop(busy)
        k = bisect_right(times, t) - 1
        while len(busy) >= values[k]:
            next_departure = busy[0] if busy else inf
            next_change = times[k + 1] if k + 1 < n else inf
            if next_departure <= next_change:
                if next_departure == inf:
                    return inf
                t = next_departure
                while busy and busy[0] <= t:
                    heappop(busy)
            else:
                t = next_change
                k += 1
        return t

    return start


def _system_limit(servers: Schedule, queue_limit: int | None) -> Callable | None:
    """``limit(t)``: most attempts in the system at ``t`` (None: no limit)."""
    if queue_limit is None:
        return None
    times, values = list(servers.times), [int(v) for v in servers.values]
    if len(values) == 1:
        return lambda t: values[0] + queue_limit
    return lambda t: values[bisect_right(times, t) - 1] + queue_limit


def _service_times(rng, service_rate: float, first: list):
    """Service times one by one, drawn in chunks; ``first`` is the chunk drawn up front."""
    chunk = first
    while True:
        yield from chunk
        chunk = (rng.standard_exponential(_SERVICE_CHUNK) / service_rate).tolist()


def _delay_source(backoff: Any, rng) -> Callable:
    """``next_delay(retry, previous)``: the backoff before retry number ``retry`` (1: the first)."""
    if backoff is None:
        return lambda retry, previous: 0.0
    if not (getattr(backoff, "jitter", None) in ("none", "full", "equal") and hasattr(backoff, "sample")):
        return lambda retry, previous: backoff.delay(retry, previous if retry > 1 else None, rng)
    buffers: dict[int, list] = {}

    def next_delay(retry: int, previous: float) -> float:
        # delays that do not depend on the previous one are drawn in batches per retry index
        buffer = buffers.get(retry)
        if buffer is None or buffer[1] == len(buffer[0]):
            buffer = [backoff.sample(retry, rng, _DELAY_CHUNK).tolist(), 0]
            buffers[retry] = buffer
        delay = buffer[0][buffer[1]]
        buffer[1] += 1
        return delay

    return next_delay


@dataclass
class _Run:
    """Everything the loop reads, prepared (and its random numbers drawn) before it starts."""

    arrivals: list              # times of new requests
    client_of: list | None      # the client population of each new request (None: one client)
    new_connection: list | None # whether each new request's first attempt opens a connection
    backlog_events: list        # heap of the attempts already queued at time 0
    limiters: list | None       # one policy limiter per client (None: no policy)
    max_attempts: int
    start: Callable             # FCFS start of an admitted attempt
    system_limit: Callable | None
    next_service: Callable
    next_delay: Callable
    timeout: float
    horizon: float
    setup_time: float
    retry_new_connection: bool


def _prepare(servers, service_rate, base, backlog, timeout, queue_limit, setup_time, new_connection_fraction,
             retry_new_connection, policy, clients, backoff, horizon, rng) -> _Run:
    """The loop's inputs; random numbers in a fixed order: clients, connections, services, backlog."""
    limiters = [policy.limiter() for _ in range(clients)] if policy is not None else None
    n_base = base.size
    client_of = rng.integers(0, clients, n_base).tolist() if clients > 1 else None
    new_connection = (rng.random(n_base) < new_connection_fraction).tolist() if new_connection_fraction > 0 else None
    first_services = (rng.standard_exponential(_SERVICE_CHUNK) / service_rate).tolist()
    # attempts sent before time 0 by live clients, already in the queue
    events = [(a, seq, _BACKLOG, 0, 0.0, 0 if clients == 1 else int(rng.integers(clients)), False)
              for seq, a in enumerate(backlog)]
    heapq.heapify(events)
    values = [int(v) for v in servers.values]
    constant = len(values) == 1 and values[0] > 0
    return _Run(
        arrivals=base.tolist(), client_of=client_of, new_connection=new_connection, backlog_events=events,
        limiters=limiters, max_attempts=int(policy.max_attempts) if policy is not None else 1,
        start=_constant_start(values[0]) if constant else _varying_start(list(servers.times), values),
        system_limit=_system_limit(servers, queue_limit),
        next_service=_service_times(rng, service_rate, first_services).__next__,
        next_delay=_delay_source(backoff, rng), timeout=timeout, horizon=horizon, setup_time=setup_time,
        retry_new_connection=retry_new_connection,
    )


def run_retrying(*, servers: Schedule, service_rate, base, backlog, timeout, queue_limit, setup_time,
                 new_connection_fraction, retry_new_connection, policy, clients, backoff, horizon,
                 rng) -> dict[str, np.ndarray]:
    """Run the event loop; returns the record arrays named in :data:`RECORDS`."""
    run = _prepare(servers, service_rate, base, backlog, timeout, queue_limit, setup_time,
                   new_connection_fraction, retry_new_connection, policy, clients, backoff, horizon, rng)
    records = {k: array("d") for k in RECORDS}
    _loop(run, records, rng)
    return {k: np.frombuffer(v, dtype=np.float64) if len(v) else np.zeros(0) for k, v in records.items()}


def _loop(run: _Run, rec: dict, rng) -> None:
    """Take events in time order (new requests merged with the heap) until the horizon."""
    heappush, heappop, inf = heapq.heappush, heapq.heappop, math.inf
    arrivals, client_of, new_connection, events = run.arrivals, run.client_of, run.new_connection, run.backlog_events
    limiters, max_attempts, start, system_limit = run.limiters, run.max_attempts, run.start, run.system_limit
    next_service, next_delay, timeout, horizon = run.next_service, run.next_delay, run.timeout, run.horizon
    setup_time, retry_new_connection = run.setup_time, run.retry_new_connection
    r_attempt, r_retry, r_success, r_timeout = rec["attempt"], rec["retry"], rec["success"], rec["timeout"]
    r_blocked, r_throttled, r_failed = rec["blocked"], rec["throttled"], rec["failed"]
    a_arrive, a_start, a_end, w_start, w_end = (rec[k] for k in RECORDS[7:])
    busy: list[float] = []      # departures of attempts in service (Kiefer-Wolfowitz heap)
    inflight: list[float] = []  # departures of all admitted attempts (in service or waiting)
    n_base, i, seq, prev_start = len(arrivals), 0, len(events), 0.0
    while True:
        if i < n_base and arrivals[i] < (events[0][0] if events else inf):
            now, kind, retries, prev_delay, cause_timeout = arrivals[i], _FIRST, 0, 0.0, False
            client = client_of[i] if client_of is not None else 0
            needs_setup = new_connection[i] if new_connection is not None else False
            i += 1
        elif events:
            now, _, kind, retries, prev_delay, client, cause_timeout = heappop(events)
            needs_setup = retry_new_connection and kind == _RETRY
        else:
            break
        if now >= horizon:
            break
        lim = limiters[client] if limiters is not None else None
        if kind == _RESPONSE:
            r_success.append(now)
            if lim is not None:
                lim.record(now, True, retries, cause_timeout)
            continue
        if kind == _GIVE_UP:
            r_timeout.append(now)
            timed_out = True
            if lim is not None:
                lim.record(now, False, retries, cause_timeout)
        elif kind != _BACKLOG and lim is not None and not lim.admit(now, rng):
            r_throttled.append(now)
            timed_out = False
        else:  # an attempt is sent: a new request's first, a retry, or one of the backlog
            r_attempt.append(now)
            if kind == _RETRY:
                r_retry.append(now)
            if system_limit is not None:
                while inflight and inflight[0] <= now:
                    heappop(inflight)
            if system_limit is not None and len(inflight) >= system_limit(now):
                r_blocked.append(now)
                timed_out = False
                if lim is not None:
                    lim.record(now, False, retries, cause_timeout)
            else:
                # FCFS: never before the previous start
                t = prev_start = start(now if now > prev_start else prev_start, busy)
                hold = next_service()
                if needs_setup:
                    hold += setup_time
                end = t + hold
                heappush(busy, end)
                if system_limit is not None:
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
        if retries + 1 < max_attempts and lim.may_retry(now, retries, timed_out):
            delay = next_delay(retries + 1, prev_delay)
            heappush(events, (now + delay, seq, _RETRY, retries + 1, delay, client, timed_out))
            seq += 1
        else:
            r_failed.append(now)
