"""The demand side of the model: what a request costs, who sends it, and what clients do on failure.

Examples
--------
>>> cost = ConnectionCost(service_time=0.02, setup_time=0.05, new_connection_fraction=0.05)
>>> normal_offered_load(2000.0, cost)
45.0
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validate import as_array, broadcast, output
from ._checks import (MAX_SERVERS, check_flag, check_instance, check_number as _number, check_text as _text,
                      check_whole as _whole)
from ..retry import Backoff, FixedRetries, parse_policy

__all__ = ["ConnectionCost", "Clients", "Service", "normal_offered_load", "connections_for_headroom"]

@dataclass(frozen=True)
class ConnectionCost:
    """How long an attempt holds a database connection slot.

    An attempt holds a slot for ``service_time`` seconds of work, plus ``setup_time`` for each
    new connection it opens. Normally a request opens ``new_connection_fraction`` new
    connections on average (most reuse a pooled one); during the trigger that number is
    multiplied by ``Trigger.new_connection_multiple`` (it may exceed 1: a request that opens
    several). A retry of a refused attempt has no connection yet, so it opens one
    (``retries_need_new_connection=True``, as in :class:`reliability.retry.RetryingConnectionPool`).

    Examples
    --------
    >>> cost = ConnectionCost(service_time=0.02, setup_time=0.05, new_connection_fraction=0.1)
    >>> round(cost.holding_time(1.0), 6), round(cost.holding_time(10.0), 6)
    (0.025, 0.07)
    >>> round(cost.setup_share, 3)   # share of normal slot time spent opening connections
    0.2
    >>> round(cost.load_multiple(10.0), 3)   # slot time per request, surged / normal
    2.8
    """

    service_time: float = 0.02
    setup_time: float = 0.05
    new_connection_fraction: float = 0.05
    retries_need_new_connection: bool = True

    def __post_init__(self):
        _number("ConnectionCost", "service_time", self.service_time, strict=True)
        _number("ConnectionCost", "setup_time", self.setup_time)
        _number("ConnectionCost", "new_connection_fraction", self.new_connection_fraction, maximum=1.0)
        check_flag("ConnectionCost", "retries_need_new_connection", self.retries_need_new_connection)
        for name in ("service_time", "setup_time", "new_connection_fraction"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "retries_need_new_connection", bool(self.retries_need_new_connection))

    def holding_time(self, new_connection_multiple=1.0):
        """Mean slot time of a first attempt (s) when new connections are ``multiple`` x normal."""
        m = _multiple(new_connection_multiple)
        with np.errstate(under="ignore"):  # a tiny multiple adds nothing
            out = self.service_time + self.setup_time * self.new_connection_fraction * m
        return float(out) if out.ndim == 0 else out

    def retry_holding_time(self, new_connection_multiple=1.0):
        """Mean slot time of a retry (s)."""
        if self.retries_need_new_connection:
            m = _multiple(new_connection_multiple)
            out = np.full(m.shape, self.service_time + self.setup_time)
            return float(out) if out.ndim == 0 else out
        return self.holding_time(new_connection_multiple)

    @property
    def setup_share(self) -> float:
        """Share of the normal slot time of a request spent opening connections."""
        return self.setup_time * self.new_connection_fraction / self.holding_time(1.0)

    def load_multiple(self, new_connection_multiple):
        """Slot time per first attempt with the trigger, over the normal slot time."""
        m = _multiple(new_connection_multiple)
        with np.errstate(under="ignore"):
            out = 1.0 + self.setup_share * (m - 1.0)
        return float(out) if out.ndim == 0 else out


def _multiple(value) -> np.ndarray:
    """A new-connection multiple (>= 0; the 1e308 far end keeps slot times finite: 0.05 x 1e308 s)."""
    return as_array("new_connection_multiple", value, minimum=0.0)


@dataclass(frozen=True)
class Clients:
    """What the clients do with a failed attempt.

    ``policy`` is a retry policy of :mod:`reliability.retry` (``None``: never retry),
    ``backoff`` the delay before each retry (``None``: retry at once, i.e. in the next step),
    ``timeout`` how long a client waits for an accepted attempt before giving up (a refused
    attempt fails at once). ``population`` is the number of independent client instances:
    token buckets and throttle windows are per client, so it sets the total token capacity
    and the small-count correction of adaptive throttling.

    Examples
    --------
    >>> Clients().policy
    FixedRetries(max_retries=3)
    """

    policy: Any = field(default_factory=lambda: FixedRetries(3))
    backoff: Backoff | None = field(default_factory=lambda: Backoff(1.0, 30.0, "full"))
    timeout: float = 10.0
    population: float = 100_000.0

    def __post_init__(self):
        # a policy drives this model through its per-step gate (reliability.retry.gates)
        object.__setattr__(self, "policy", parse_policy(self.policy, name="Clients.policy",
                                                        require=("step_gate", "time_scales", "max_attempts")))
        check_instance("Clients", "backoff", self.backoff, Backoff, optional=True)
        _number("Clients", "timeout", self.timeout, strict=True, allow_inf=True)
        # far above any real fleet; keeps the pooled token capacity (capacity x population) finite
        _number("Clients", "population", self.population, minimum=1.0, maximum=1e15)
        object.__setattr__(self, "timeout", float(self.timeout))
        object.__setattr__(self, "population", float(self.population))

    @property
    def max_retries(self) -> int:
        return 0 if self.policy is None else int(self.policy.max_attempts) - 1



@dataclass(frozen=True)
class Service:
    """A service: its name, the infrastructure it runs on, and its base request rate (1/s)."""

    name: str
    infrastructure: str
    request_rate: float

    def __post_init__(self):
        _text("Service", "name", self.name)
        _text("Service", "infrastructure", self.infrastructure)
        _number("Service", "request_rate", self.request_rate)
        object.__setattr__(self, "request_rate", float(self.request_rate))


def normal_offered_load(request_rate, cost: ConnectionCost):
    """Offered load (Erlangs) of a request rate without trigger or retries: ``rate * holding_time(1)``.

    Examples
    --------
    >>> normal_offered_load(2000.0, ConnectionCost(0.02, 0.05, 0.05))
    45.0
    """
    rate = as_array("request_rate", request_rate, minimum=0.0)
    check_instance("", "cost", cost, ConnectionCost)
    with np.errstate(under="ignore"):  # a tiny rate offers (next to) no load
        out = rate * cost.holding_time(1.0)
    return output(out, out.ndim == 0)


def connections_for_headroom(request_rate, cost: ConnectionCost, servers: int, headroom):
    """Connection slots per server giving ``headroom`` spare capacity over the normal load.

    ``headroom = 0.5`` means 50 % more slots than the normal offered load:
    ``connections_per_server = (1 + headroom) * rate * holding_time(1) / servers``.

    Examples
    --------
    >>> connections_for_headroom(2000.0, ConnectionCost(0.02, 0.05, 0.05), 3, 1.0)
    30.0
    """
    servers = _whole("", "servers", servers, 1, MAX_SERVERS)
    h = as_array("headroom", headroom, minimum=-1.0, strict_minimum=True)
    load = normal_offered_load(request_rate, cost)
    h, load = broadcast(headroom=h, request_rate=np.asarray(load))
    with np.errstate(over="ignore", under="ignore"):
        out = (1.0 + h) * load / servers
    if not np.all(np.isfinite(out)):
        raise ValueError(f"headroom and request_rate give more connection slots than a float holds, got "
                         f"headroom={headroom!r}, request_rate={request_rate!r}")
    return output(out, np.ndim(out) == 0)
