"""Server-side queue disciplines and admission, and a client circuit breaker: the components of a defended queue.

Each is a small stateful object the event loop of :mod:`.defended` drives, and each can be
driven by hand (the tests do):

* :class:`WaitingQueue` -- the attempts waiting for a server, taken FIFO, or newest first once
  more than ``lifo_threshold`` wait (adaptive LIFO, as in B. Maurer, "Fail at scale", ACM Queue
  13(8), 2015; ``lifo_threshold=0`` is plain LIFO);
* :class:`CoDel` -- Controlled Delay at dequeue (Nichols, Jacobson, McGregor, Iyengar, RFC 8289,
  2018): the state machine of the RFC's pseudo-code, ``target`` and ``interval``, drops while the
  sojourn time has stayed above ``target`` for ``interval``, spaced by the control law
  ``interval / sqrt(count)``;
* :class:`PriorityShedding` -- admission by priority: low-priority attempts are shed once
  ``threshold`` attempts wait; at the hard ``limit`` a high-priority attempt pushes out the
  newest waiting low-priority one, so a high-priority attempt is never shed while a
  low-priority one waits;
* :class:`CircuitBreaker` -- on a client: closed until the failure share over a sliding time
  window reaches ``failure_threshold`` (with at least ``minimum_calls``), then open (calls fail
  at once) for ``cool_down``, then half-open with ``probes`` trial calls, closing again when their
  failure share is below the threshold. These are the states and settings of Resilience4j's
  ``CircuitBreaker`` (``failureRateThreshold``, a ``TIME_BASED`` ``slidingWindowSize``,
  ``minimumNumberOfCalls``, ``waitDurationInOpenState``, ``permittedNumberOfCallsInHalfOpenState``;
  resilience4j.readme.io/docs/circuitbreaker).

Examples
--------
>>> queue = WaitingQueue(lifo_threshold=2)
>>> for name in "abcd":
...     queue.push(name)
>>> [queue.pop() for _ in range(4)]   # more than 2 waiting: newest first; then oldest first
['d', 'c', 'a', 'b']
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from .._validate import number, whole

__all__ = ["WaitingQueue", "CoDel", "PriorityShedding", "BreakerSettings", "CircuitBreaker"]


class WaitingQueue:
    """Attempts waiting for a server: FIFO, or newest first while more than ``lifo_threshold`` wait.

    ``lifo_threshold=None`` is plain FIFO.
    """

    __slots__ = ("items", "lifo_threshold")

    def __init__(self, lifo_threshold: int | None = None):
        self.items: deque = deque()
        self.lifo_threshold = None if lifo_threshold is None else whole("lifo_threshold", lifo_threshold, 0)

    def __len__(self) -> int:
        return len(self.items)

    def push(self, item) -> None:
        self.items.append(item)

    def pop(self):
        """The next attempt to serve (None when empty)."""
        if not self.items:
            return None
        if self.lifo_threshold is not None and len(self.items) > self.lifo_threshold:
            return self.items.pop()
        return self.items.popleft()


class CoDel:
    """CoDel's dequeue (RFC 8289, section 5): ``dequeue(queue, now, sojourn)`` returns the attempt to
    serve (or None) and the attempts dropped on the way.

    ``sojourn(item, now)`` gives an item's time in the queue. As in the RFC, nothing is dropped
    while the sojourn time is below ``target`` or the queue holds no other attempt.

    Examples
    --------
    >>> codel = CoDel(target=0.1, interval=1.0)
    >>> queue = WaitingQueue()
    >>> for t in (0.0, 0.01, 0.02):
    ...     queue.push(t)
    >>> codel.dequeue(queue, 0.05, lambda enqueued, now: now - enqueued)
    (0.0, [])
    """

    def __init__(self, target: float, interval: float):
        self.target = number("codel_target", target, minimum=0.0, strict=True)
        self.interval = number("codel_interval", interval, minimum=0.0, strict=True)
        self.first_above_time: float | None = None
        self.drop_next = 0.0
        self.count = 0
        self.lastcount = 0
        self.dropping = False

    def _control_law(self, t: float) -> float:
        return t + self.interval / math.sqrt(self.count)

    def _do_dequeue(self, queue, now: float, sojourn):
        item = queue.pop()
        if item is None:
            self.first_above_time = None
            return None, False
        if sojourn(item, now) < self.target or len(queue) == 0:
            self.first_above_time = None  # below target (or the last one waiting): all is well
            return item, False
        if self.first_above_time is None:
            self.first_above_time = now + self.interval
            return item, False
        return item, now >= self.first_above_time

    def dequeue(self, queue, now: float, sojourn) -> tuple[object, list]:
        dropped = []
        item, ok_to_drop = self._do_dequeue(queue, now, sojourn)
        if item is None:  # an empty queue leaves the dropping state
            self.dropping = False
            return None, dropped
        if self.dropping:
            if not ok_to_drop:
                self.dropping = False
            while self.dropping and now >= self.drop_next:
                dropped.append(item)
                self.count += 1
                item, ok_to_drop = self._do_dequeue(queue, now, sojourn)
                if not ok_to_drop:
                    self.dropping = False
                else:
                    self.drop_next = self._control_law(self.drop_next)
        elif ok_to_drop:
            dropped.append(item)
            item, ok_to_drop = self._do_dequeue(queue, now, sojourn)
            self.dropping = True
            delta = self.count - self.lastcount
            # re-entering soon after the last dropping state: start near the drop rate it ended at
            self.count = delta if delta > 1 and now - self.drop_next < 16 * self.interval else 1
            self.drop_next = self._control_law(now)
            self.lastcount = self.count
        return item, dropped


class PriorityShedding:
    """Admission by priority: ``admit(queue, low, is_low)`` returns ``(admitted, evicted)``.

    ``is_low(item)`` tells a waiting attempt's priority. A low-priority attempt is shed when
    ``threshold`` or more wait; with a hard ``limit``, a high-priority attempt that finds
    ``limit`` waiting pushes out the newest low-priority one (``evicted``), and is shed only
    when none waits.

    Examples
    --------
    >>> shed = PriorityShedding(threshold=1, limit=2)
    >>> queue = WaitingQueue()
    >>> queue.push("high-1"); queue.push("low-1")
    >>> shed.admit(queue, True, lambda item: item.startswith("low"))    # low, queue past threshold: shed
    (False, None)
    >>> shed.admit(queue, False, lambda item: item.startswith("low"))   # high at the limit: pushes out a low
    (True, 'low-1')
    """

    def __init__(self, threshold: int, limit: int | None = None):
        self.threshold = whole("shed_threshold", threshold, 0)
        self.limit = None if limit is None else whole("shed_limit", limit, self.threshold)

    def admit(self, queue: WaitingQueue, low: bool, is_low) -> tuple[bool, object]:
        waiting = len(queue)
        if low:
            return waiting < self.threshold and (self.limit is None or waiting < self.limit), None
        if self.limit is None or waiting < self.limit:
            return True, None
        items = queue.items
        for i in range(len(items) - 1, -1, -1):
            if is_low(items[i]):
                evicted = items[i]
                del items[i]
                return True, evicted
        return False, None


@dataclass(frozen=True)
class BreakerSettings:
    """The settings of a client circuit breaker (Resilience4j's names in :class:`CircuitBreaker`).

    ``retry_when_open``: whether the client's retry policy retries a call the open breaker
    refused (False: the breaker's fast failure is final, the usual configuration).
    """

    failure_threshold: float = 0.5
    window: float = 10.0
    minimum_calls: int = 10
    cool_down: float = 30.0
    probes: int = 5
    retry_when_open: bool = False

    def __post_init__(self):
        object.__setattr__(self, "failure_threshold", number("failure_threshold", self.failure_threshold,
                                                             minimum=0.0, maximum=1.0, strict=True))
        object.__setattr__(self, "window", number("window", self.window, minimum=0.0, strict=True))
        object.__setattr__(self, "minimum_calls", whole("minimum_calls", self.minimum_calls, 1))
        object.__setattr__(self, "cool_down", number("cool_down", self.cool_down, minimum=0.0, strict=True))
        object.__setattr__(self, "probes", whole("probes", self.probes, 1))
        if not isinstance(self.retry_when_open, bool):
            raise ValueError(f"retry_when_open must be True or False, got {self.retry_when_open!r}")


CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class CircuitBreaker:
    """A client's circuit breaker: ``allow(now)`` before a call (its generation, or None when refused),
    ``record(now, success, generation)`` with each permitted call's outcome.

    Outcomes of calls permitted in an earlier state (an older generation) are not counted.

    Examples
    --------
    >>> breaker = CircuitBreaker(BreakerSettings(failure_threshold=0.5, window=10.0, minimum_calls=2,
    ...                                          cool_down=5.0, probes=1))
    >>> g = breaker.allow(0.0); breaker.record(0.5, False, g); breaker.record(0.6, False, g)
    >>> breaker.state, breaker.allow(1.0), breaker.allow(6.0) is not None, breaker.state
    ('open', None, True, 'half-open')
    """

    def __init__(self, settings: BreakerSettings):
        self.settings = settings
        self.state = CLOSED
        self.generation = 0
        self.calls: deque = deque()   # (time, success) of closed-state outcomes within the window
        self.failures = 0
        self.opened_at = -math.inf
        self.probes_sent = 0
        self.probe_results: list = []
        self.log: list = []           # (time, state) at every transition

    def _move(self, now: float, state: str) -> None:
        self.state = state
        self.generation += 1
        self.log.append((now, state))
        if state == OPEN:
            self.opened_at = now
        elif state == HALF_OPEN:
            self.probes_sent, self.probe_results = 0, []
        else:
            self.calls.clear()
            self.failures = 0

    def allow(self, now: float):
        if self.state == OPEN and now >= self.opened_at + self.settings.cool_down:
            self._move(now, HALF_OPEN)
        if self.state == OPEN:
            return None
        if self.state == HALF_OPEN:
            if self.probes_sent >= self.settings.probes:
                return None
            self.probes_sent += 1
        return self.generation

    def record(self, now: float, success: bool, generation) -> None:
        if generation != self.generation:
            return
        s = self.settings
        if self.state == HALF_OPEN:
            self.probe_results.append(success)
            if len(self.probe_results) == s.probes:
                failed = self.probe_results.count(False) / s.probes
                self._move(now, OPEN if failed >= s.failure_threshold else CLOSED)
            return
        calls = self.calls
        calls.append((now, success))
        self.failures += not success
        while calls and calls[0][0] < now - s.window:
            self.failures -= not calls.popleft()[1]
        if len(calls) >= s.minimum_calls and self.failures >= s.failure_threshold * len(calls):
            self._move(now, OPEN)
