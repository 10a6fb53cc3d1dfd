"""A time-stepped model of a service through an incident: trigger, retries, capacity, rollback.

The steady-state models of :mod:`reliability.erlang` and :mod:`reliability.retry` say where a
service settles; an incident is the path between states. This module steps a few
infrastructures through time, one step of ``time_step`` seconds at a time:

* **Demand.** Each :class:`Service` sends new requests at a base rate (Poisson counts per step)
  to one :class:`Infrastructure`; load never moves between infrastructures (the mid-migration
  split of the Proton incident).
* **Cost of a request.** An attempt holds one database connection slot for
  ``service_time`` seconds, plus ``setup_time`` when it opens a new connection
  (:class:`ConnectionCost`). Normally a share ``new_connection_fraction`` of requests opens one;
  a retry of a refused attempt opens one too.
* **Trigger.** From ``Trigger.start`` the new-connection rate (and optionally the request rate)
  is multiplied by a constant until the rollback begins; the rollback then ramps the multiple
  linearly back to 1 over ``rollback_duration`` (a fleet-wide deployment is not instantaneous).
* **Capacity.** An infrastructure has ``servers`` database servers with
  ``connections_per_server`` slots each; a load balancer spreads attempts evenly over the
  servers it routes to. Within a step each routed server is a loss system in equilibrium, so
  an attempt is refused with the Erlang B probability ``B(slots, load per server)``
  (the quasi-static approximation: a slot turns over many times per step, which is why the
  step must be longer than the holding time). An optional :class:`Autoscaler` adds servers
  after a reaction delay and a provisioning time.
* **Clients.** Refused attempts and attempts slower than the client ``timeout`` fail; a failed
  attempt is retried after a backoff delay (:class:`reliability.retry.Backoff`) if the retry
  policy allows (:class:`reliability.retry.FixedRetries`, ``RetryBudget``, ``TokenBucket``,
  ``AdaptiveThrottle``, driven here as a mean-field limiter for the whole client population).
* **Flapping mechanisms**, each optional: :class:`HealthCheck` (the load balancer ejects a
  server after consecutive failed probes and re-admits it after consecutive passes) and
  :class:`ConnectionLimit` (a server that hits its connection limit refuses everything until its
  connections drain below a low-water mark). Synchronised retries (backoff without jitter) are
  the third candidate.

Randomness: new requests and arriving retries are Poisson counts per step, outcomes binomial,
health probes Bernoulli, all from one seeded numpy Generator. Retries in flight are carried as
expected counts per future step (the Poisson approximation to many independent clients each
retrying at a random time). With nothing varying, the failure fraction settles at the retry
equilibrium of :class:`reliability.retry.RetryingConnectionPool`; the tests check this and
compare a short trigger with the discrete-event simulator of :mod:`reliability.simulate`.

Examples
--------
A ten-minute surge of new connections on a pool with little headroom. With one retry per
request the service recovers when the surge ends; with three retries, each opening a new
connection, the retry storm outlives its trigger (a metastable failure):

>>> from reliability.dynamics import (ConnectionCost, Infrastructure, Service, Trigger,
...                                   Clients, simulate_incident)
>>> from reliability.retry import FixedRetries
>>> cost = ConnectionCost(service_time=0.02, setup_time=0.05, new_connection_fraction=0.05)
>>> def last_minute(retries):
...     timeline = simulate_incident(
...         [Service("mail", "legacy", request_rate=2000.0)],
...         [Infrastructure("legacy", servers=4, connections_per_server=20)],
...         cost=cost, clients=Clients(policy=FixedRetries(retries)),
...         trigger=Trigger(new_connection_multiple=10.0, rollback_start=600.0),
...         horizon=1200.0, time_step=1.0, seed=1)
...     return round(float(timeline.aggregate(60.0).failure_fraction.iloc[-1]), 2)
>>> last_minute(1), last_minute(3)
(0.01, 0.7)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ._validate import number, whole
from .series import Periodicity, alternation, alternation_runs, dominant_period, recovery_time
from .queues import erlang_b
from .retry import Backoff, FixedRetries, parse_policy, step_gate

__all__ = [
    "ConnectionCost",
    "Trigger",
    "Clients",
    "HealthCheck",
    "ConnectionLimit",
    "Autoscaler",
    "Infrastructure",
    "Service",
    "Timeline",
    "Sweep",
    "Periodicity",
    "simulate_incident",
    "simulate_sweep",
    "normal_offered_load",
    "connections_for_headroom",
    "dominant_period",
    "recovery_time",
    "alternation_runs",
    "flapping_summary",
]

#: Largest number of recorded numbers one run may hold (steps x grid points x services x series).
MAX_RECORDED = 400_000_000

_COUNTS = ("offered", "attempts", "retries", "throttled", "blocked", "timeouts", "successes", "failed_requests")
_LEVELS = ("offered_load", "carried_load", "capacity", "servers_serving", "servers_provisioned",
           "request_multiple", "new_connection_multiple", "user_failure_probability")


# ----------------------------------------------------------------------------------------
# Validation helpers
# ----------------------------------------------------------------------------------------

def _number(owner: str, name: str, value: Any, *, minimum: float = 0.0, strict: bool = False,
            allow_inf: bool = False, maximum: float | None = None) -> float:
    return number(f"{owner}.{name}" if owner else name, value, minimum=minimum, maximum=maximum,
                  strict=strict, allow_inf=allow_inf)


def _whole(owner: str, name: str, value: Any, minimum: int) -> int:
    return whole(f"{owner}.{name}" if owner else name, value, minimum)


def _text(owner: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{owner}.{name} must be a non-empty string, got {value!r}")
    return value


# ----------------------------------------------------------------------------------------
# The parts of a model
# ----------------------------------------------------------------------------------------

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
        if not isinstance(self.retries_need_new_connection, (bool, np.bool_)):
            raise ValueError("ConnectionCost.retries_need_new_connection must be True or False, "
                             f"got {self.retries_need_new_connection!r}")
        for name in ("service_time", "setup_time", "new_connection_fraction"):
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "retries_need_new_connection", bool(self.retries_need_new_connection))

    def holding_time(self, new_connection_multiple=1.0):
        """Mean slot time of a first attempt (s) when new connections are ``multiple`` x normal."""
        m = np.asarray(new_connection_multiple, dtype=np.float64)
        out = self.service_time + self.setup_time * self.new_connection_fraction * m
        return float(out) if out.ndim == 0 else out

    def retry_holding_time(self, new_connection_multiple=1.0):
        """Mean slot time of a retry (s)."""
        if self.retries_need_new_connection:
            m = np.asarray(new_connection_multiple, dtype=np.float64)
            out = np.full(m.shape, self.service_time + self.setup_time)
            return float(out) if out.ndim == 0 else out
        return self.holding_time(new_connection_multiple)

    @property
    def setup_share(self) -> float:
        """Share of the normal slot time of a request spent opening connections."""
        return self.setup_time * self.new_connection_fraction / self.holding_time(1.0)

    def load_multiple(self, new_connection_multiple):
        """Slot time per first attempt with the trigger, over the normal slot time."""
        m = np.asarray(new_connection_multiple, dtype=np.float64)
        out = 1.0 + self.setup_share * (m - 1.0)
        return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class Trigger:
    """What changed, from when, and how it was rolled back.

    From ``start`` until ``rollback_start`` the new-connection rate is
    ``new_connection_multiple`` times normal and the request rate ``request_multiple`` times
    normal. The rollback then returns both multiples linearly to 1 over ``rollback_duration``
    seconds (0: at once). ``rollback_start = inf`` means never.

    Examples
    --------
    >>> trigger = Trigger(new_connection_multiple=5.0, start=0.0, rollback_start=100.0, rollback_duration=100.0)
    >>> trigger.multiples([50.0, 150.0, 250.0])[1]
    array([5., 3., 1.])
    """

    new_connection_multiple: float = 1.0
    request_multiple: float = 1.0
    start: float = 0.0
    rollback_start: float = math.inf
    rollback_duration: float = 0.0

    def __post_init__(self):
        _number("Trigger", "new_connection_multiple", self.new_connection_multiple)
        _number("Trigger", "request_multiple", self.request_multiple)
        _number("Trigger", "start", self.start)
        _number("Trigger", "rollback_start", self.rollback_start, allow_inf=True)
        _number("Trigger", "rollback_duration", self.rollback_duration)
        if self.rollback_start < self.start:
            raise ValueError(
                f"Trigger.rollback_start must be >= start ({self.start!r}), got {self.rollback_start!r}")
        for name in ("new_connection_multiple", "request_multiple", "start", "rollback_start", "rollback_duration"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def end(self) -> float:
        """When the rollback is complete (inf if never)."""
        return self.rollback_start + self.rollback_duration

    def multiples(self, t):
        """``(request multiple, new-connection multiple)`` at times ``t`` (arrays)."""
        shape = _trigger_shape(np.asarray(t, dtype=np.float64), self.start, self.rollback_start,
                               self.rollback_duration)
        return (1.0 + (self.request_multiple - 1.0) * shape,
                1.0 + (self.new_connection_multiple - 1.0) * shape)


def _trigger_shape(t, start, rollback_start, rollback_duration):
    """1 while the trigger is on, falling linearly to 0 over the rollback, 0 outside."""
    t = np.asarray(t, dtype=np.float64)
    duration = np.asarray(rollback_duration, dtype=np.float64)
    on = (t >= start) & (t < rollback_start)
    with np.errstate(divide="ignore", invalid="ignore"):
        ramp = np.where(duration > 0, 1.0 - (t - rollback_start) / np.where(duration > 0, duration, 1.0), 0.0)
    ramping = (t >= rollback_start) & (t < rollback_start + duration)
    return np.where(on, 1.0, np.where(ramping, np.clip(ramp, 0.0, 1.0), 0.0))


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
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            raise ValueError(f"Clients.backoff must be None or a Backoff, got {self.backoff!r}")
        _number("Clients", "timeout", self.timeout, strict=True, allow_inf=True)
        # far above any real fleet; keeps the pooled token capacity (capacity x population) finite
        _number("Clients", "population", self.population, minimum=1.0, maximum=1e15)
        object.__setattr__(self, "timeout", float(self.timeout))
        object.__setattr__(self, "population", float(self.population))

    @property
    def max_retries(self) -> int:
        return 0 if self.policy is None else int(self.policy.max_attempts) - 1


@dataclass(frozen=True)
class HealthCheck:
    """Load-balancer health checks that eject and re-admit servers.

    Every ``interval`` seconds (each server at its own phase) the balancer probes each server
    with a connection attempt. A routed server's probe is refused with the same probability as
    a request (its Erlang B blocking); an ejected server is idle and passes. After
    ``unhealthy_threshold`` consecutive failures the server is ejected (its load moves to the
    others); after ``healthy_threshold`` consecutive passes it is routed to again. Defaults are
    common load-balancer settings (10 s, 3 failures, 2 passes).

    Examples
    --------
    >>> HealthCheck().cycle_time   # shortest eject + re-admit cycle of one server
    50.0
    """

    interval: float = 10.0
    unhealthy_threshold: int = 3
    healthy_threshold: int = 2

    def __post_init__(self):
        _number("HealthCheck", "interval", self.interval, strict=True)
        _whole("HealthCheck", "unhealthy_threshold", self.unhealthy_threshold, 1)
        _whole("HealthCheck", "healthy_threshold", self.healthy_threshold, 1)
        object.__setattr__(self, "interval", float(self.interval))

    @property
    def cycle_time(self) -> float:
        return self.interval * (self.unhealthy_threshold + self.healthy_threshold)


@dataclass(frozen=True)
class ConnectionLimit:
    """A connection limit that, once hit, refuses until connections drain (hysteresis).

    A server whose blocking probability in a step reaches ``saturation_blocking`` has hit its
    limit: it then refuses every new connection (its share of attempts fails; the balancer
    still routes to it) until its open connections, which close with mean lifetime
    ``connection_lifetime``, have drained to ``low_water`` x the limit. That takes
    ``drain_time = connection_lifetime * ln(1 / low_water)`` seconds.

    Examples
    --------
    >>> round(ConnectionLimit(connection_lifetime=60.0, low_water=0.5).drain_time, 3)
    41.589
    """

    connection_lifetime: float = 60.0
    saturation_blocking: float = 0.05
    low_water: float = 0.5

    def __post_init__(self):
        _number("ConnectionLimit", "connection_lifetime", self.connection_lifetime, strict=True)
        _number("ConnectionLimit", "saturation_blocking", self.saturation_blocking, strict=True, maximum=1.0)
        _number("ConnectionLimit", "low_water", self.low_water, strict=True)
        if self.low_water >= 1.0:
            raise ValueError(f"ConnectionLimit.low_water must be < 1, got {self.low_water!r}")
        for name in ("connection_lifetime", "saturation_blocking", "low_water"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def drain_time(self) -> float:
        return self.connection_lifetime * math.log(1.0 / self.low_water)


@dataclass(frozen=True)
class Autoscaler:
    """Add servers when utilisation runs above target (Kubernetes-HPA-like, scale-up only).

    Each step the autoscaler reads the utilisation (carried load over provisioned slots) as it
    was ``reaction_delay`` seconds ago (metrics window and decision interval) and orders
    ``ceil(servers * utilisation / target_utilisation)`` servers; an ordered server is routed to
    ``provisioning_time`` seconds later (start-up and readiness), after passing the health
    check if there is one. Utilisation cannot exceed 1, so a large surge needs several rounds.
    Scale-down is not modelled (capacity only grows during a run).

    Examples
    --------
    >>> Autoscaler(max_servers=40).reaction_time
    120.0
    """

    target_utilisation: float = 0.6
    reaction_delay: float = 60.0
    provisioning_time: float = 60.0
    max_servers: int = 64

    def __post_init__(self):
        _number("Autoscaler", "target_utilisation", self.target_utilisation, strict=True, maximum=1.0)
        _number("Autoscaler", "reaction_delay", self.reaction_delay)
        _number("Autoscaler", "provisioning_time", self.provisioning_time)
        _whole("Autoscaler", "max_servers", self.max_servers, 1)
        for name in ("target_utilisation", "reaction_delay", "provisioning_time"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def reaction_time(self) -> float:
        return self.reaction_delay + self.provisioning_time


@dataclass(frozen=True)
class Infrastructure:
    """A set of database servers; load never leaves it for another infrastructure.

    ``routing="balanced"``: servers are interchangeable replicas behind a load balancer that
    spreads attempts evenly over the servers it routes to, so ejecting one moves its load to
    the others. ``routing="sharded"``: each user's data lives on one server (a shard), so each
    server always receives ``1/servers`` of the attempts, and the share of a server that is
    ejected or closed fails; a user sees *their* shard's state.

    Examples
    --------
    >>> Infrastructure("legacy", servers=8, connections_per_server=100).connections
    800.0
    """

    name: str
    servers: int
    connections_per_server: float
    health_check: HealthCheck | None = None
    connection_limit: ConnectionLimit | None = None
    autoscaler: Autoscaler | None = None
    routing: str = "balanced"

    def __post_init__(self):
        _text("Infrastructure", "name", self.name)
        if self.routing not in ("balanced", "sharded"):
            raise ValueError(f"Infrastructure.routing must be 'balanced' or 'sharded', got {self.routing!r}")
        if self.routing == "sharded" and self.autoscaler is not None:
            raise ValueError("Infrastructure.autoscaler needs routing='balanced': a sharded database cannot "
                             "move users to a new server at once, got routing='sharded' with an autoscaler")
        _whole("Infrastructure", "servers", self.servers, 1)
        _number("Infrastructure", "connections_per_server", self.connections_per_server, strict=True)
        for name, kind in (("health_check", HealthCheck), ("connection_limit", ConnectionLimit),
                           ("autoscaler", Autoscaler)):
            value = getattr(self, name)
            if value is not None and not isinstance(value, kind):
                raise ValueError(f"Infrastructure.{name} must be None or a {kind.__name__}, got {value!r}")
        if self.autoscaler is not None and self.autoscaler.max_servers < self.servers:
            raise ValueError(f"Autoscaler.max_servers must be >= Infrastructure.servers ({self.servers}), "
                             f"got {self.autoscaler.max_servers!r}")
        object.__setattr__(self, "servers", int(self.servers))
        object.__setattr__(self, "connections_per_server", float(self.connections_per_server))

    @property
    def connections(self) -> float:
        return self.servers * self.connections_per_server

    @property
    def max_servers(self) -> int:
        return self.servers if self.autoscaler is None else self.autoscaler.max_servers


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
    rate = np.asarray(request_rate, dtype=np.float64)
    if np.any(~np.isfinite(rate)) or np.any(rate < 0):
        raise ValueError(f"request_rate must be finite and >= 0, got {request_rate!r}")
    out = rate * cost.holding_time(1.0)
    return float(out) if out.ndim == 0 else out


def connections_for_headroom(request_rate, cost: ConnectionCost, servers: int, headroom):
    """Connection slots per server giving ``headroom`` spare capacity over the normal load.

    ``headroom = 0.5`` means 50 % more slots than the normal offered load:
    ``connections_per_server = (1 + headroom) * rate * holding_time(1) / servers``.

    Examples
    --------
    >>> connections_for_headroom(2000.0, ConnectionCost(0.02, 0.05, 0.05), 3, 1.0)
    30.0
    """
    servers = _whole("", "servers", servers, 1)
    h = np.asarray(headroom, dtype=np.float64)
    if np.any(~np.isfinite(h)) or np.any(h <= -1.0):
        raise ValueError(f"headroom must be finite and > -1, got {headroom!r}")
    out = (1.0 + h) * normal_offered_load(request_rate, cost) / servers
    return float(out) if np.ndim(out) == 0 else out


# ----------------------------------------------------------------------------------------
# Erlang B at speed: one table per slot count, interpolated
# ----------------------------------------------------------------------------------------

_TABLE_POINTS = 16385


class _BlockingTable:
    """``B(k, a)`` for a few slot counts ``k``, tabulated in ``u = a / (a + k)`` on [0, 1].

    The map ``u`` folds loads from 0 to infinity onto [0, 1] (B -> 1 as u -> 1) and is
    nearly uniform in resolution around the knee ``a ~ k``; linear interpolation on 16 385
    points is within 2e-6 of :func:`reliability.erlang.erlang_b` (the tests check it), while
    a step costs a gather instead of an incomplete gamma function.
    """

    def __init__(self, slots: np.ndarray):
        self.values, self.index = np.unique(np.asarray(slots, dtype=np.float64), return_inverse=True)
        u = np.linspace(0.0, 1.0, _TABLE_POINTS)
        rows = []
        for k in self.values:
            with np.errstate(divide="ignore"):
                load = np.where(u < 1.0, k * u / np.where(u < 1.0, 1.0 - u, 1.0), 0.0)
            b = np.empty_like(u)
            b[:-1] = erlang_b(k, load[:-1])
            b[-1] = 1.0
            rows.append(b)
        self.table = np.vstack(rows)
        self.slots = self.values[self.index]
        self._grid = u
        self._single = self.values.size == 1

    def __call__(self, load_per_server: np.ndarray) -> np.ndarray:
        if self._single:
            k = self.values[0]
            return np.interp(load_per_server / (load_per_server + k), self._grid, self.table[0])
        u = load_per_server / (load_per_server + self.slots)
        x = u * (_TABLE_POINTS - 1)
        i = np.minimum(x.astype(np.int64), _TABLE_POINTS - 2)
        w = x - i
        flat = self.table.ravel()
        base = self.index * _TABLE_POINTS + i
        lo = flat[base]
        return lo + w * (flat[base + 1] - lo)


# ----------------------------------------------------------------------------------------
# Retry delay kernels
# ----------------------------------------------------------------------------------------

def _clip_integral(z):
    """``G(z) = integral_{-inf}^{z} clip(w, 0, 1) dw``."""
    z = np.asarray(z, dtype=np.float64)
    return np.where(z <= 0.0, 0.0, np.where(z <= 1.0, 0.5 * z * z, z - 0.5))


def _delay_kernel(backoff: Backoff | None, retry_index: int, time_step: float, extra: float) -> np.ndarray:
    """Probability that a retry sent after a failure in step 0 arrives in step j (j >= 1).

    The failure happens at a uniform time in its step; the retry follows ``extra`` seconds
    (the client timeout, for a timed-out attempt) plus the backoff delay. A retry that would
    land in the failure's own step is moved to the next one (the step's outcome is already
    decided), so delays shorter than a step are rounded up.
    """
    if backoff is None:
        low = high = 0.0
        samples = None
    elif backoff.jitter == "decorrelated":
        # no closed form: a fixed, seeded sample of the delay (the kernel must not vary run to run)
        samples = backoff.sample(retry_index, np.random.default_rng(20250109), 20_000)
        low = high = None
    else:
        d = float(backoff.delay(retry_index)) if backoff.jitter == "none" else float(backoff.unjittered(retry_index))
        low, high = {"none": (d, d), "full": (0.0, d), "equal": (d / 2.0, d)}[backoff.jitter]
        samples = None
    if samples is not None:
        y = (extra + samples) / time_step
        top = int(math.floor(y.max())) + 2
        edges = np.arange(top + 1, dtype=np.float64)
        cdf = np.clip(edges[:, None] - y[None, :], 0.0, 1.0).mean(axis=1)
    else:
        a, b = (extra + low) / time_step, (extra + high) / time_step
        top = int(math.floor(b)) + 2
        edges = np.arange(top + 1, dtype=np.float64)
        if b - a > 1e-12:
            cdf = (_clip_integral(edges - a) - _clip_integral(edges - b)) / (b - a)
        else:
            cdf = np.clip(edges - a, 0.0, 1.0)
    mass = np.diff(cdf)            # mass[j] = P(j <= X < j + 1)
    mass = np.maximum(mass, 0.0)
    kernel = mass.copy()
    kernel[1] += kernel[0]          # same-step retries move to the next step
    kernel[0] = 0.0
    kernel /= kernel.sum()
    return kernel


# ----------------------------------------------------------------------------------------
# Counts: exact when small, normal approximation when large
# ----------------------------------------------------------------------------------------

#: Variance above which a binomial or Poisson count is drawn from its normal approximation.
#: Beyond it the approximation's error in any probability is far below the model's own; the
#: exact samplers cost ~20x more per draw at large counts.
_NORMAL_VARIANCE = 25.0
#: Arrays up to this size are drawn exactly in one call (the per-call overhead dominates).
_SMALL_ARRAY = 64
#: Largest Poisson mean drawn by the exact sampler.
_EXACT_POISSON_MAX = 1e15


def _poisson(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    """Poisson counts (float array): exact below ``_NORMAL_VARIANCE``, rounded normal above."""
    mean = np.asarray(mean, dtype=np.float64)
    # numpy's exact sampler refuses means beyond ~1e18 ("lam value too large"); that far out the
    # rounded normal is indistinguishable from the Poisson law (skewness 1/sqrt(mean) < 1e-7)
    if mean.size <= _SMALL_ARRAY and not (mean > _EXACT_POISSON_MAX).any():
        return rng.poisson(mean).astype(np.float64)   # a few draws: exact is cheapest
    out = np.maximum(np.rint(mean + np.sqrt(mean) * rng.standard_normal(mean.shape)), 0.0)
    small = (mean < _NORMAL_VARIANCE) & (mean > 0.0)
    if small.any():
        out[small] = rng.poisson(mean[small])
    return out


def _binomial(rng: np.random.Generator, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Binomial counts (float array; ``n`` holds whole numbers): exact when the variance is small."""
    if n.size <= _SMALL_ARRAY and not (n > _EXACT_POISSON_MAX).any():   # int64 holds n exactly
        return rng.binomial(n.astype(np.int64), p).astype(np.float64)   # a few draws: exact is cheapest
    p = np.broadcast_to(np.asarray(p, dtype=np.float64), n.shape)
    mean = n * p
    variance = mean * (1.0 - p)
    out = np.clip(np.rint(mean + np.sqrt(variance) * rng.standard_normal(n.shape)), 0.0, n)
    # zero variance (n = 0, p = 0 or p = 1) is exact already
    small = (variance < _NORMAL_VARIANCE) & (variance > 0.0) & (n <= _EXACT_POISSON_MAX)
    if small.any():
        out[small] = rng.binomial(n[small].astype(np.int64), p[small])
    return out


# ----------------------------------------------------------------------------------------
# The engine
# ----------------------------------------------------------------------------------------

def _check_time_step(time_step: float, horizon: float, infrastructure: Infrastructure,
                     cost: ConnectionCost, clients: Clients, peak_multiple: float) -> tuple[int, float]:
    """Validate the step against every rate of the model; return (steps, step)."""
    dt = _number("", "time_step", time_step, strict=True)
    horizon = _number("", "horizon", horizon, strict=True)
    steps = int(round(horizon / dt))
    if steps < 1 or abs(steps * dt - horizon) > 1e-9 * horizon:
        raise ValueError(f"horizon must be a whole multiple of time_step, got horizon={horizon!r}, time_step={dt!r}")
    # The quasi-static loss model needs the slots to turn over within a step.
    hold = max(cost.holding_time(peak_multiple), float(cost.retry_holding_time(peak_multiple)))
    if hold > dt:
        raise ValueError(
            f"time_step={dt:g} s is shorter than the mean connection holding time ({hold:g} s): the model "
            "treats each server's slots as in equilibrium within a step; use a time_step >= the holding time")
    coarse = []
    hc = infrastructure.health_check
    if hc is not None:
        ratio = hc.interval / dt
        if ratio < 1.0 - 1e-9 or abs(ratio - round(ratio)) > 1e-6:
            raise ValueError(
                f"time_step={dt:g} s is too coarse for the health checks of {infrastructure.name!r}: "
                f"HealthCheck.interval={hc.interval:g} s must be a whole multiple of the time step")
    cl = infrastructure.connection_limit
    if cl is not None:
        coarse.append(("the connection drain of ConnectionLimit (drain_time)", cl.drain_time))
    auto = infrastructure.autoscaler
    if auto is not None:
        coarse.append(("Autoscaler.reaction_delay", auto.reaction_delay))
        coarse.append(("Autoscaler.provisioning_time", auto.provisioning_time))
    if clients.policy is not None:
        coarse.extend(clients.policy.time_scales)  # the policy's windows (budget, throttle)
    for what, seconds in coarse:
        if seconds < dt and not (what.startswith("Autoscaler") and seconds == 0.0):
            raise ValueError(
                f"time_step={dt:g} s is too coarse for the rates of {infrastructure.name!r}: {what} is {seconds:g} s; "
                "a process faster than one step cannot be represented (use time_step <= that time)")
    return steps, dt


def _run(infrastructure: Infrastructure, request_rates: np.ndarray, connections_per_server: np.ndarray,
         cost: ConnectionCost, clients: Clients, *, new_connection_multiple, request_multiple, start,
         rollback_start, rollback_duration, horizon: float, time_step: float, rng: np.random.Generator,
         mode: str = "full", retry_caps=None) -> tuple[dict, int, float]:
    """Step one infrastructure through time for G parameter points at once.

    ``request_rates`` is (G, S); every other per-point argument broadcasts to (G,).
    ``retry_caps`` (G,), with any policy (none: FixedRetries), gives each point its own retry
    cap; the engine then runs with the largest.
    Returns the recorded arrays (``mode="full"``: counts (T, G, S) and levels (T, G);
    ``"summary"``: attempts, failures and offered load (T, G) in float32).
    """
    rates = np.atleast_2d(np.asarray(request_rates, dtype=np.float64))
    G, S = rates.shape
    per_point = np.broadcast_arrays(
        np.asarray(connections_per_server, dtype=np.float64), np.asarray(new_connection_multiple, dtype=np.float64),
        np.asarray(request_multiple, dtype=np.float64), np.asarray(start, dtype=np.float64),
        np.asarray(rollback_start, dtype=np.float64), np.asarray(rollback_duration, dtype=np.float64),
        np.zeros(G))
    k_slots, conn_mult, req_mult, t_start, t_roll, d_roll, _ = (np.array(a, dtype=np.float64) for a in per_point)
    if k_slots.shape != (G,):
        raise ValueError(f"per-point parameters must broadcast to {G} points, got shape {k_slots.shape}")
    if np.any(k_slots <= 0):
        raise ValueError(f"connections_per_server must be > 0, got {k_slots[k_slots <= 0][0]!r}")
    steps, dt = _check_time_step(time_step, horizon, infrastructure, cost, clients,
                                 float(max(conn_mult.max(), 1.0)))
    policy = clients.policy
    r = clients.max_retries
    caps = None
    if retry_caps is not None:
        caps = np.broadcast_to(np.asarray(retry_caps), (G,))
        if not np.all(np.isfinite(caps)) or np.any(caps < 0) or np.any(caps != np.floor(caps)):
            raise ValueError(f"max_retries must be whole numbers >= 0, got {retry_caps!r}")
        caps = caps.astype(np.int64)
        r = int(caps.max())
        # the engine runs the policy with the largest cap; each point masks the retries beyond its own
        policy = (FixedRetries(0) if policy is None else policy).with_max_retries(r)
        clients = Clients(policy=policy, backoff=clients.backoff, timeout=clients.timeout,
                          population=clients.population)
    R = r + 1
    recorded = steps * G * (S * R * 4 + 4) if mode == "full" else steps * G * 3
    if recorded > MAX_RECORDED:
        raise ValueError(
            f"the run would record {recorded:,} numbers (steps={steps:,} x points={G:,} x services={S}), more than "
            f"{MAX_RECORDED:,}; use a longer time_step, a shorter horizon or fewer points")

    table = _BlockingTable(k_slots)
    timeout = clients.timeout
    n_max = infrastructure.max_servers
    n0 = infrastructure.servers
    hc = infrastructure.health_check
    cl = infrastructure.connection_limit
    auto = infrastructure.autoscaler
    static_servers = hc is None and cl is None and auto is None
    sharded = infrastructure.routing == "sharded"

    # The trigger and everything that follows from it alone, for all steps at once.
    shape = _trigger_shape(((np.arange(steps) + 0.5) * dt)[:, None], t_start, t_roll, d_roll)   # (T, G)
    m_req = 1.0 + (req_mult - 1.0) * shape
    m_conn = 1.0 + (conn_mult - 1.0) * shape
    extra_first = cost.setup_time * cost.new_connection_fraction * m_conn
    hold_first = cost.service_time + extra_first
    if cost.retries_need_new_connection:
        extra_retry = np.full_like(m_conn, cost.setup_time)
    else:
        extra_retry = extra_first
    hold_retry = cost.service_time + extra_retry
    # P(attempt slower than the timeout): exponential work plus the deterministic set-up time
    if math.isfinite(timeout):
        p_to_first = np.exp(-np.maximum(timeout - extra_first, 0.0) / cost.service_time)
        p_to_retry = np.exp(-np.maximum(timeout - extra_retry, 0.0) / cost.service_time)
        with_timeouts = max(p_to_first.max(), p_to_retry.max() if r else 0.0) > 1e-12
    else:
        with_timeouts = False
    chunk = max(1, min(steps, 4_000_000 // max(G * S, 1)))

    # retry delay kernels, one per retry index, for refused and for timed-out failures
    kernels_refused = [_delay_kernel(clients.backoff, k, dt, 0.0) for k in range(1, r + 1)]
    kernels_timeout = ([_delay_kernel(clients.backoff, k, dt, timeout) for k in range(1, r + 1)]
                       if with_timeouts else kernels_refused)
    J = max([len(x) for x in kernels_refused + kernels_timeout], default=2)
    K_ref = np.zeros((J, max(r, 1)))
    K_to = np.zeros((J, max(r, 1)))
    for k in range(r):
        K_ref[:len(kernels_refused[k]), k] = kernels_refused[k]
        K_to[:len(kernels_timeout[k]), k] = kernels_timeout[k]
    ref_offsets = [j for j in range(J) if K_ref[j].any()]
    to_offsets = [j for j in range(J) if K_to[j].any()]
    pending = np.zeros((J, G, S, max(r, 1)))

    # policy state (mean field over the client population): the policy's per-step gate
    gate = step_gate(policy, rates, dt, clients.population)

    # servers: provisioned (autoscaler), admitted (health check), open (connection limit)
    idx = np.arange(n_max)
    provisioned_count = np.full(G, n0, dtype=np.int64)
    provisioned = idx[None, :] < provisioned_count[:, None]
    admitted = np.ones((G, n_max), dtype=bool)
    open_ = np.ones((G, n_max), dtype=bool)
    routed = provisioned & admitted
    n_routed = np.full(G, float(n0))
    n_open = n_routed
    if hc is not None:
        spi = int(round(hc.interval / dt))
        phase = rng.integers(0, spi, n_max)
        probe_masks = [phase == s for s in range(spi)]
        probes_any = [bool(m.any()) for m in probe_masks]
        fails = np.zeros((G, n_max), dtype=np.int64)
        passes = np.zeros((G, n_max), dtype=np.int64)
    if cl is not None:
        drain_steps = max(1, int(round(cl.drain_time / dt)))
        reopen_at = np.zeros((G, n_max), dtype=np.int64)
    if auto is not None:
        delay_steps = int(round(auto.reaction_delay / dt))
        prov_steps = int(round(auto.provisioning_time / dt))
        util_ring = np.zeros((delay_steps + 1, G))
        ready_ring = np.zeros((prov_steps + 1, G), dtype=np.int64)
        ordered = provisioned_count.copy()

    full = mode == "full"
    if full:
        rec_arrivals = np.zeros((steps, G, S, R))
        rec_blocked = np.zeros((steps, G, S, R))
        rec_timeouts = np.zeros((steps, G, S, R)) if with_timeouts else None
        rec_throttled = np.zeros((steps, G, S, R)) if gate.throttles else None
        rec_abandoned = np.zeros((steps, G, S))
        rec_levels = np.zeros((steps, 6, G))
        rec_serving = np.zeros((steps, G, n_max), dtype=bool)
    else:
        out = {name: np.zeros((steps, G), dtype=np.float32)
               for name in ("attempts", "failures", "offered_load", "user_failure_probability")}

    arrivals = np.zeros((G, S, R))
    rate_sum = rates.sum(axis=1) * dt
    if caps is not None:
        cap_mask = (np.arange(max(r, 1))[None, :] < caps[:, None]).astype(np.float64)[:, None, :]
    for t in range(steps):
        c = t % chunk
        if c == 0:
            upto = min(steps, t + chunk)
            first_chunk = _poisson(rng, rates[None] * (m_req[t:upto] * dt)[:, :, None])
        arrivals[..., 0] = first_chunk[c]
        slot = t % J
        # Erlang B is the blocking of a Poisson stream of a given *intensity*: the offered load is
        # the expected one (new requests at their rate, retries as scheduled), not the realised
        # count, whose Poisson scatter B already accounts for.
        first_intensity = rate_sum * m_req[t]                   # (G,) expected new requests per step
        if r:
            scheduled = pending[slot].copy()
            retry_intensity = scheduled.sum(axis=(1, 2))
            arrivals[..., 1:] = _poisson(rng, scheduled)
            pending[slot] = 0.0
        else:
            retry_intensity = 0.0
        reject = gate.rejection()
        if reject is not None:
            throttled = _binomial(rng, arrivals, reject[..., None])
            sent = arrivals - throttled
            # expected attempts that pass the throttle (one client population per service)
            keep = 1.0 - reject
            first_intensity = (rates * m_req[t][:, None] * dt * keep).sum(axis=1)
            if r:
                retry_intensity = (scheduled * keep[..., None]).sum(axis=(1, 2))
        else:
            throttled = None
            sent = arrivals

        hf, hr = hold_first[t], hold_retry[t]
        offered_load = (first_intensity * hf + retry_intensity * hr) / dt

        # routing: provisioned and admitted servers get traffic; closed ones refuse their share
        if not static_servers:
            routed = provisioned & admitted
            n_routed = routed.sum(axis=1)
            n_open = (routed & open_).sum(axis=1) if cl is not None else n_routed
        if sharded:
            # every shard keeps its share; the shares of ejected or closed shards fail
            b = table(offered_load / n0)
            p_block = 1.0 - (n_open / n0) * (1.0 - b)
        else:
            b = table(offered_load / np.maximum(n_routed, 1))
            if static_servers:
                p_block = b
            else:
                p_block = np.where(n_routed > 0, 1.0 - (n_open / np.maximum(n_routed, 1)) * (1.0 - b), 1.0)
        blocked = _binomial(rng, sent, p_block[:, None, None])
        accepted = sent - blocked
        if with_timeouts:
            p_to = np.empty((G, 1, R))
            p_to[:, 0, 0] = p_to_first[t]
            p_to[:, 0, 1:] = p_to_retry[t][:, None]
            timeouts = _binomial(rng, accepted, p_to)
            successes = accepted - timeouts
        else:
            timeouts = None
            successes = accepted
        # what one user meets: with sharded data, their server's state; otherwise the service's
        if sharded:
            user_p = np.where(routed[:, 0] & open_[:, 0], b, 1.0)
        else:
            user_p = p_block
        acc_by_index = accepted.sum(axis=1)
        carried_load = (acc_by_index[:, 0] * hf + (acc_by_index[:, 1:].sum(axis=1) * hr if r else 0.0)) / dt

        # retries wanted after attempts 0..r-1, gated by the policy
        refused = blocked if throttled is None else blocked + throttled
        if r:
            want_ref = refused[..., :r]
            want_to = timeouts[..., :r] if with_timeouts else None
            if caps is not None:
                # points with a lower cap give up after their last allowed retry
                want_ref = want_ref * cap_mask
                if with_timeouts:
                    want_to = want_to * cap_mask
            grant_ref, grant_to = gate.grant(t, arrivals[..., 0], want_ref, want_to, successes)
            # spread the granted retries over the steps their backoff delays land in
            for j in ref_offsets:
                pending[(t + j) % J] += grant_ref * K_ref[j]
            if with_timeouts:
                for j in to_offsets:
                    pending[(t + j) % J] += grant_to * K_to[j]
            abandoned = refused.sum(axis=-1) - grant_ref.sum(axis=-1)
            if with_timeouts:
                abandoned += timeouts.sum(axis=-1) - grant_to.sum(axis=-1)
        else:
            abandoned = refused[..., 0] + (timeouts[..., 0] if with_timeouts else 0.0)
        gate.observe(t, arrivals, successes)

        if full:
            rec_arrivals[t] = arrivals
            rec_blocked[t] = blocked
            if with_timeouts:
                rec_timeouts[t] = timeouts
            if gate.throttles:
                rec_throttled[t] = throttled
            rec_abandoned[t] = abandoned
            rec_levels[t, 0] = offered_load
            rec_levels[t, 1] = carried_load
            rec_levels[t, 2] = n_open
            rec_levels[t, 3] = provisioned_count
            rec_levels[t, 4] = b
            rec_levels[t, 5] = user_p
            rec_serving[t] = provisioned if static_servers else (provisioned & admitted & open_)
        else:
            total = arrivals.sum(axis=(1, 2))
            out["attempts"][t] = total
            out["failures"][t] = total - successes.sum(axis=(1, 2))
            out["offered_load"][t] = offered_load
            out["user_failure_probability"][t] = user_p

        # health checks: probe the provisioned servers whose phase falls in this step
        if hc is not None and probes_any[t % spi]:
            probing = provisioned & probe_masks[t % spi]
            if cl is None:
                fail_p = np.where(routed, b[:, None], 0.0)
            else:
                # a closed server refuses the probe too; an ejected open one is idle and passes
                fail_p = np.where(routed & open_, b[:, None], np.where(open_, 0.0, 1.0))
            fail = probing & (rng.random((G, n_max)) < fail_p)
            ok = probing & ~fail
            fails = np.where(ok, 0, fails + fail)
            passes = np.where(fail, 0, passes + ok)
            # eject after enough consecutive failures, re-admit after enough consecutive passes
            admitted = np.where(admitted, fails < hc.unhealthy_threshold, passes >= hc.healthy_threshold)
        # connection limit: saturated open servers close until drained
        if cl is not None:
            hit = routed & open_ & (b >= cl.saturation_blocking)[:, None]
            reopen_at = np.where(hit, t + 1 + drain_steps, reopen_at)
            open_ = ~hit & (open_ | (t + 1 >= reopen_at))
        # autoscaler: order servers from the delayed utilisation; they arrive after provisioning
        if auto is not None:
            util_ring[t % (delay_steps + 1)] = np.minimum(carried_load / (provisioned_count * k_slots), 1.0)
            if t >= delay_steps:
                seen = util_ring[(t - delay_steps) % (delay_steps + 1)]
                desired = np.minimum(np.ceil(provisioned_count * seen / auto.target_utilisation - 1e-9),
                                     auto.max_servers).astype(np.int64)
                order = np.maximum(desired - ordered, 0)
                ordered += order
                ready_ring[(t + prov_steps) % (prov_steps + 1)] += order
            arriving = ready_ring[(t + 1) % (prov_steps + 1)].copy()
            ready_ring[(t + 1) % (prov_steps + 1)] = 0
            if arriving.any():
                new_mask = (idx[None, :] >= provisioned_count[:, None]) & \
                           (idx[None, :] < (provisioned_count + arriving)[:, None])
                if hc is not None:
                    # a new server is routed to only after passing its readiness checks
                    admitted = np.where(new_mask, False, admitted)
                    fails = np.where(new_mask, 0, fails)
                    passes = np.where(new_mask, 0, passes)
                provisioned_count = provisioned_count + arriving
                provisioned = idx[None, :] < provisioned_count[:, None]

    if not full:
        return out, steps, dt
    out = {
        "offered": rec_arrivals[..., 0],
        "attempts": rec_arrivals.sum(axis=-1),
        "retries": rec_arrivals[..., 1:].sum(axis=-1),
        "throttled": rec_throttled.sum(axis=-1) if gate.throttles else np.zeros((steps, G, S)),
        "blocked": rec_blocked.sum(axis=-1),
        "timeouts": rec_timeouts.sum(axis=-1) if with_timeouts else np.zeros((steps, G, S)),
        "failed_requests": rec_abandoned,
        "offered_load": rec_levels[:, 0],
        "carried_load": rec_levels[:, 1],
        "capacity": rec_levels[:, 2] * k_slots[None, :],
        "servers_serving": rec_levels[:, 2],
        "servers_provisioned": rec_levels[:, 3],
        "request_multiple": m_req,
        "new_connection_multiple": m_conn,
        "server_blocking": rec_levels[:, 4],
        "user_failure_probability": rec_levels[:, 5],
        "serving": rec_serving,
    }
    out["successes"] = out["attempts"] - out["throttled"] - out["blocked"] - out["timeouts"]
    return out, steps, dt


# ----------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------

def _finish_counts(frame: pd.DataFrame) -> pd.DataFrame:
    frame["sent"] = frame["attempts"] - frame["throttled"]
    frame["failures"] = frame["blocked"] + frame["timeouts"] + frame["throttled"]
    outcomes = frame["failures"] + frame["successes"]
    frame["failure_fraction"] = np.divide(frame["failures"].to_numpy(), outcomes.to_numpy(),
                                          out=np.zeros(len(frame)), where=outcomes.to_numpy() > 0)
    return frame


@dataclass(frozen=True)
class Timeline:
    """The result of :func:`simulate_incident`: a tidy time series per service.

    ``series`` has one row per step and service: ``time`` (start of the step, s since the
    model's origin), ``infrastructure``, ``service``, counts of ``offered`` new requests,
    ``attempts`` (new and retried), ``retries``, ``throttled`` (refused locally by the client's
    policy), ``sent``, outcomes ``blocked`` (refused by a full or closed server, or no server
    routed), ``timeouts``, ``successes``, ``failures`` (the three failure kinds),
    ``failure_fraction`` (failures over outcomes: what an error-rate dashboard shows),
    ``failed_requests`` (requests given up for good), and the infrastructure's levels in that
    step: ``offered_load`` and ``carried_load`` (Erlangs), ``capacity`` (connection slots on
    the servers that accept traffic), ``servers_serving``, ``servers_provisioned``, and the
    trigger's ``request_multiple`` and ``new_connection_multiple``.
    """

    series: pd.DataFrame = field(repr=False)
    servers: pd.DataFrame = field(repr=False)
    time_step: float
    horizon: float
    parameters: dict = field(repr=False)

    def server_view(self, infrastructure: str, server: int = 0, interval: float | None = None) -> pd.DataFrame:
        """What a request sent to one server meets, per step or averaged over ``interval``.

        Columns ``time``, ``serving`` (share of the interval the server was in service) and
        ``failure_probability`` (1 while it is out of service, else its blocking). With
        ``routing="sharded"`` this is what the users whose data lives on that server see.
        """
        frame = self.servers[(self.servers["infrastructure"] == infrastructure) & (self.servers["server"] == server)]
        if frame.empty:
            raise ValueError(f"no server {server!r} on infrastructure {infrastructure!r}")
        frame = frame[["time", "serving", "failure_probability"]].astype({"serving": float})
        if interval is None:
            return frame.reset_index(drop=True)
        interval = _number("", "interval", interval, strict=True)
        frame = frame.assign(time=np.floor(frame["time"] / interval + 1e-9) * interval)
        return frame.groupby("time", as_index=False).mean()

    def aggregate(self, interval: float = 60.0, by: str = "service") -> pd.DataFrame:
        """Sum counts (and average levels) over ``interval`` seconds, per service or per infrastructure.

        ``by="service"`` keeps one row per interval and service; ``by="infrastructure"`` sums
        the services of each infrastructure; ``by="all"`` sums everything. Failure fractions
        are recomputed from the summed counts.
        """
        interval = _number("", "interval", interval, strict=True)
        ratio = interval / self.time_step
        if ratio < 1 - 1e-9 or abs(ratio - round(ratio)) > 1e-6:
            raise ValueError(f"interval must be a whole multiple of time_step={self.time_step:g}, got {interval!r}")
        keys = {"service": ["infrastructure", "service"], "infrastructure": ["infrastructure"], "all": []}
        if by not in keys:
            raise ValueError(f"by must be 'service', 'infrastructure' or 'all', got {by!r}")
        frame = self.series.copy()
        # levels belong to the infrastructure: one value per step, then averaged over the interval
        steps = frame.drop_duplicates(["time", "infrastructure"])[["time", "infrastructure", *_LEVELS]].copy()
        frame["time"] = np.floor(frame["time"] / interval + 1e-9) * interval
        steps["time"] = np.floor(steps["time"] / interval + 1e-9) * interval
        level = steps.groupby(["time", "infrastructure"], sort=True)[list(_LEVELS)].mean()
        summed = frame.groupby(["time"] + keys[by], sort=True)[list(_COUNTS)].sum()
        if by == "service":
            result = summed.reset_index().merge(level.reset_index(), on=["time", "infrastructure"])
        elif by == "infrastructure":
            result = summed.join(level).reset_index()
        else:
            additive = ["offered_load", "carried_load", "capacity", "servers_serving", "servers_provisioned"]
            level_all = level.groupby("time")[additive].sum()
            multiples = level.groupby("time")[["request_multiple", "new_connection_multiple"]].max()
            result = summed.join(level_all).join(multiples).reset_index()
        return _finish_counts(result)

    def __repr__(self) -> str:
        p = self.parameters
        return (f"Timeline(services={[s.name for s in p['services']]}, horizon={self.horizon:g} s, "
                f"time_step={self.time_step:g} s, trigger={p['trigger']!r}, seed={p['seed']!r})")


def _child_rngs(seed, n: int) -> list[np.random.Generator]:
    if isinstance(seed, np.random.Generator):
        return [seed] * n
    if isinstance(seed, bool) or not (seed is None or isinstance(seed, (int, np.integer, np.random.SeedSequence))):
        raise ValueError(f"seed must be a whole number >= 0, a SeedSequence or a Generator, got {seed!r}")
    if isinstance(seed, (int, np.integer)) and seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed!r}")
    sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [np.random.default_rng(s) for s in sequence.spawn(n)]


def _check_model(services, infrastructures, cost, clients, trigger):
    if isinstance(services, Service):
        services = [services]
    if isinstance(infrastructures, Infrastructure):
        infrastructures = [infrastructures]
    services, infrastructures = list(services), list(infrastructures)
    if not services:
        raise ValueError("services must list at least one Service, got none")
    for s in services:
        if not isinstance(s, Service):
            raise ValueError(f"services must be Service objects, got {s!r}")
    for i in infrastructures:
        if not isinstance(i, Infrastructure):
            raise ValueError(f"infrastructures must be Infrastructure objects, got {i!r}")
    names = [i.name for i in infrastructures]
    if len(set(names)) != len(names):
        raise ValueError(f"infrastructure names must be unique, got {names}")
    service_names = [s.name for s in services]
    if len(set(service_names)) != len(service_names):
        raise ValueError(f"service names must be unique, got {service_names}")
    for s in services:
        if s.infrastructure not in names:
            raise ValueError(f"service {s.name!r} runs on infrastructure {s.infrastructure!r}, "
                             f"which is not among {names}")
    if not isinstance(cost, ConnectionCost):
        raise ValueError(f"cost must be a ConnectionCost, got {cost!r}")
    if not isinstance(clients, Clients):
        raise ValueError(f"clients must be Clients, got {clients!r}")
    if not isinstance(trigger, Trigger):
        raise ValueError(f"trigger must be a Trigger, got {trigger!r}")
    return services, infrastructures


def simulate_incident(services: Sequence[Service], infrastructures: Sequence[Infrastructure], *,
                      cost: ConnectionCost, clients: Clients, trigger: Trigger, horizon: float,
                      time_step: float = 1.0, seed=0) -> Timeline:
    """Step services on their infrastructures through an incident.

    Parameters
    ----------
    services : sequence of Service
    infrastructures : sequence of Infrastructure
        Each service's ``infrastructure`` must name one of them. Infrastructures are simulated
        independently (no load moves between them), each with its own random stream.
    cost : ConnectionCost
    clients : Clients
    trigger : Trigger
        Applied to every infrastructure (the Proton surge was global).
    horizon, time_step : float
        Seconds simulated and the step (the horizon must be a whole number of steps). The step
        must be at least the connection holding time and at most every other time scale of the
        model (health-check interval, drain time, autoscaler delays, policy windows); otherwise
        ValueError names the offending rate.
    seed : int, SeedSequence or Generator

    Returns
    -------
    Timeline

    Examples
    --------
    >>> cost = ConnectionCost(service_time=0.02, setup_time=0.05, new_connection_fraction=0.05)
    >>> quiet = simulate_incident([Service("mail", "legacy", 1000.0)],
    ...                           [Infrastructure("legacy", 2, 30.0)], cost=cost, clients=Clients(),
    ...                           trigger=Trigger(), horizon=60.0, seed=3)
    >>> int(quiet.series.failures.sum())
    0
    """
    services, infrastructures = _check_model(services, infrastructures, cost, clients, trigger)
    rngs = _child_rngs(seed, len(infrastructures))
    frames = []
    server_frames = []
    for infra, rng in zip(infrastructures, rngs):
        mine = [s for s in services if s.infrastructure == infra.name]
        if not mine:
            continue
        rates = np.array([[s.request_rate for s in mine]])
        data, steps, dt = _run(
            infra, rates, infra.connections_per_server, cost, clients,
            new_connection_multiple=trigger.new_connection_multiple, request_multiple=trigger.request_multiple,
            start=trigger.start, rollback_start=trigger.rollback_start, rollback_duration=trigger.rollback_duration,
            horizon=horizon, time_step=time_step, rng=rng, mode="full")
        times = np.arange(steps) * dt
        n = infra.max_servers
        serving = data["serving"][:, 0, :]
        blocking = data["server_blocking"][:, 0]
        server_frames.append(pd.DataFrame({
            "time": np.repeat(times, n),
            "infrastructure": infra.name,
            "server": np.tile(np.arange(n), steps),
            "serving": serving.ravel(),
            # what a request to this server meets: refusal if it is out of service, else its blocking
            "failure_probability": np.where(serving, blocking[:, None], 1.0).ravel(),
        }))
        for j, service in enumerate(mine):
            frame = {"time": times, "infrastructure": infra.name, "service": service.name}
            frame.update({name: data[name][:, 0, j] for name in _COUNTS})
            frame.update({name: data[name][:, 0] for name in _LEVELS})
            frames.append(pd.DataFrame(frame))
    series = pd.concat(frames, ignore_index=True).sort_values(["time", "infrastructure", "service"],
                                                              ignore_index=True)
    series = _finish_counts(series)
    columns = ["time", "infrastructure", "service", "offered", "attempts", "retries", "throttled", "sent",
               "blocked", "timeouts", "successes", "failures", "failure_fraction", "failed_requests",
               *_LEVELS]
    series = series[columns]
    parameters = dict(services=services, infrastructures=infrastructures, cost=cost, clients=clients,
                      trigger=trigger, seed=seed)
    servers = pd.concat(server_frames, ignore_index=True)
    return Timeline(series=series, servers=servers, time_step=float(time_step), horizon=float(horizon),
                    parameters=parameters)


@dataclass(frozen=True)
class Sweep:
    """Per-step totals of one infrastructure for many parameter points (see :func:`simulate_sweep`).

    ``attempts``, ``failures``, ``offered_load`` and ``user_failure_probability`` (see
    :class:`Timeline`) are (steps, points) arrays; ``points`` is a
    DataFrame of the per-point parameters, one row per point.
    """

    attempts: np.ndarray = field(repr=False)
    failures: np.ndarray = field(repr=False)
    offered_load: np.ndarray = field(repr=False)
    user_failure_probability: np.ndarray = field(repr=False)
    points: pd.DataFrame = field(repr=False)
    time_step: float
    horizon: float

    @property
    def times(self) -> np.ndarray:
        return np.arange(self.attempts.shape[0]) * self.time_step

    def failure_fraction(self, interval: float) -> np.ndarray:
        """Failure fraction per ``interval`` (rows) and point (columns); 0 where nothing was attempted."""
        n = int(round(interval / self.time_step))
        if n < 1 or abs(n * self.time_step - interval) > 1e-6 * interval:
            raise ValueError(f"interval must be a whole multiple of time_step={self.time_step:g}, got {interval!r}")
        usable = (self.attempts.shape[0] // n) * n
        att = self.attempts[:usable].astype(np.float64).reshape(-1, n, self.attempts.shape[1]).sum(axis=1)
        fail = self.failures[:usable].astype(np.float64).reshape(-1, n, self.attempts.shape[1]).sum(axis=1)
        return np.divide(fail, att, out=np.zeros_like(att), where=att > 0)

    def __repr__(self) -> str:
        return f"Sweep(points={len(self.points)}, horizon={self.horizon:g} s, time_step={self.time_step:g} s)"


def simulate_sweep(infrastructure: Infrastructure, services: Sequence[Service], *, cost: ConnectionCost,
                   clients: Clients, horizon: float, time_step: float = 1.0, seed=0,
                   connections_per_server=None, new_connection_multiple=1.0, request_multiple=1.0,
                   start=0.0, rollback_start=math.inf, rollback_duration=0.0, max_retries=None) -> Sweep:
    """Run one infrastructure for many parameter points at once (vectorised over points).

    Every keyword from ``connections_per_server`` on may be an array; they broadcast together
    to one dimension of points. ``max_retries`` (if given) replaces the retry cap of the clients'
    policy (``FixedRetries`` where there is none) at each point. Only the totals over the infrastructure's services are kept
    (attempts, failures, offered load per step), in float32, so thousands of points fit.

    Examples
    --------
    >>> cost = ConnectionCost(0.02, 0.05, 0.05)
    >>> sweep = simulate_sweep(Infrastructure("legacy", 2, 30.0), [Service("mail", "legacy", 1000.0)],
    ...                        cost=cost, clients=Clients(), horizon=120.0,
    ...                        new_connection_multiple=[1.0, 20.0])
    >>> frac = sweep.failure_fraction(120.0)[0]
    >>> bool(frac[0] < 0.01 < 0.3 < frac[1])
    True
    """
    services, _ = _check_model(services, [infrastructure], cost, clients, Trigger())
    mine = [s for s in services if s.infrastructure == infrastructure.name]
    if not mine:
        raise ValueError(f"no service runs on infrastructure {infrastructure.name!r}")
    k = infrastructure.connections_per_server if connections_per_server is None else connections_per_server
    caps = clients.max_retries if max_retries is None else max_retries
    arrays = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in (
        k, new_connection_multiple, request_multiple, start, rollback_start, rollback_duration, caps)))
    if arrays[0].ndim != 1:
        raise ValueError(f"sweep parameters must broadcast to one dimension, got shape {arrays[0].shape}")
    names = ("connections_per_server", "new_connection_multiple", "request_multiple", "start",
             "rollback_start", "rollback_duration", "max_retries")
    for name, values in zip(names, arrays):
        if np.isnan(values).any():
            raise ValueError(f"{name} must not be NaN")
        if name not in ("rollback_start",) and np.isinf(values).any():
            raise ValueError(f"{name} must be finite, got {values[np.isinf(values)][0]!r}")
        if (values < 0).any():
            raise ValueError(f"{name} must be >= 0, got {values[values < 0][0]!r}")
    if (arrays[4] < arrays[3]).any():
        raise ValueError("rollback_start must be >= start at every point")
    G = arrays[0].size
    rates = np.tile(np.array([s.request_rate for s in mine]), (G, 1))
    rng = _child_rngs(seed, 1)[0]
    data, steps, dt = _run(infrastructure, rates, arrays[0], cost, clients, new_connection_multiple=arrays[1],
                           request_multiple=arrays[2], start=arrays[3], rollback_start=arrays[4],
                           rollback_duration=arrays[5], horizon=horizon, time_step=time_step, rng=rng,
                           mode="summary", retry_caps=None if max_retries is None else arrays[6])
    points = pd.DataFrame(dict(zip(names, arrays)))
    return Sweep(attempts=data["attempts"], failures=data["failures"], offered_load=data["offered_load"],
                 user_failure_probability=data["user_failure_probability"], points=points, time_step=dt,
                 horizon=float(horizon))


# ----------------------------------------------------------------------------------------
# Reading a time series: the measures themselves are in reliability.series
# ----------------------------------------------------------------------------------------

def flapping_summary(series: pd.DataFrame, *, time_step: float, start: float = 0.0, end: float | None = None,
                     min_period: float | None = None, max_period: float | None = None,
                     down_threshold: float = 0.9, up_threshold: float = 0.6,
                     column: str = "failure_fraction") -> dict:
    """Period and up/down run lengths of an aggregated failure-fraction series.

    ``series`` needs columns ``time`` and ``column`` (default ``failure_fraction``; use
    ``failure_probability`` for a :meth:`Timeline.server_view` or ``user_failure_probability``)
    at spacing ``time_step`` (one infrastructure, service or server). Returns the
    :class:`Periodicity` fields plus the mean failure share, the share of samples down, the
    median lengths (s) of complete down and up runs (:func:`alternation_runs`) and ``cycle``,
    their sum (inf unless there are at least two of each).
    """
    frame = series[(series["time"] >= start) & ((series["time"] < end) if end is not None else True)]
    if column not in frame:
        raise ValueError(f"series has no column {column!r}")
    values = frame[column].to_numpy(dtype=np.float64)
    periodicity = dominant_period(values, time_step, min_period, max_period)
    runs = alternation(values, time_step, down_threshold, up_threshold)
    return {
        "period": periodicity.period,
        "peak_ratio": periodicity.peak_ratio,
        "threshold": periodicity.threshold,
        "autocorrelation": periodicity.autocorrelation,
        "periodic": periodicity.periodic,
        "failure_fraction": float(values.mean()) if values.size else 0.0,
        "down_share": runs.down_share,
        "median_down_run": runs.median_down_run,
        "median_up_run": runs.median_up_run,
        "cycle": runs.cycle,
    }
