"""Running the model: :func:`run` (platforms, services, mechanisms, events) and the two original
entry points, :func:`simulate_incident` (one :class:`Trigger`) and :func:`simulate_sweep` (one
platform, many parameter points at once).

Examples
--------
A retry storm that outlives its trigger: a 5-minute surge of requests pushes a queue whose
clients retry 3 times past capacity; after the surge the base load (0.4 of capacity) is above the
recovery threshold ``capacity / (r + 1)`` = 0.25, so the collapse sustains itself until load
shedding brings the load below it:

>>> from reliability.retry import FixedRetries
>>> timeline = run([Infrastructure("db", 1, 10.0)], [Service("api", "db", 200.0)],
...                mechanisms=[Surge("spike", "requests", 3.0, start=0.0, end=300.0),
...                            RetryStorm("calling_service", FixedRetries(3), backoff=None, timeout=0.1)],
...                events=[LoadShedding(0.6, start=900.0, until=1200.0)],
...                cost=ConnectionCost(0.02, 0.0, 0.0), horizon=1800.0, seed=1)
>>> minute = timeline.aggregate(300.0)
>>> [round(float(x), 1) for x in minute.failure_fraction]
[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
import pandas as pd

from .._validate import ArgumentTypeError, as_array, broadcast, describe
from ._checks import MAX_MULTIPLE, MAX_SLOTS, check_instance, check_sequence, check_steps
from .engine import MAX_ENGINE_RETRIES, PlatformRun, run_platform
from .events import CapacityAdded, Failover, LoadShedding, Rollback
from .mechanisms import CapacityLoss, ConnectionCeiling, Contention, RetryStorm, Surge, Trigger
from .parts import Clients, ConnectionCost, Service
from .platforms import Infrastructure
from .profile import StepProfile
from .record import COUNTS as _COUNTS, LEVELS as _LEVELS
from .timeline import SERIES_COLUMNS, Sweep, Timeline, finish_counts

__all__ = ["run", "simulate_incident", "simulate_sweep"]

def _child_rngs(seed, n: int) -> list[np.random.Generator]:
    if isinstance(seed, np.random.Generator):
        return [seed] * n
    if isinstance(seed, (bool, np.bool_)) or not (seed is None or isinstance(seed, (int, np.integer,
                                                                                   np.random.SeedSequence))):
        raise ArgumentTypeError(f"seed must be a whole number >= 0, a SeedSequence or a Generator, got "
                                f"{describe(seed)}")
    if isinstance(seed, (int, np.integer)) and seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed!r}")
    sequence = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [np.random.default_rng(s) for s in sequence.spawn(n)]


def _check_model(services, infrastructures, cost, clients, trigger=None, *, platforms="infrastructures"):
    services = check_sequence("services", services, Service)
    infrastructures = check_sequence(platforms, infrastructures, Infrastructure)
    if not services:
        raise ValueError("services must list at least one Service, got none")
    names = [i.name for i in infrastructures]
    if len(set(names)) != len(names):
        raise ValueError(f"infrastructure names must be unique, got {names}")
    service_names = [s.name for s in services]
    if len(set(service_names)) != len(service_names):
        raise ValueError(f"service names must be unique, got {service_names}")
    for s in services:
        if s.infrastructure not in names:
            raise ValueError(f"service {s.name!r} runs on infrastructure {s.infrastructure!r}, "
                             f"which is not among the {platforms} {names}")
    check_instance("", "cost", cost, ConnectionCost)
    check_instance("", "clients", clients, Clients)
    check_instance("", "trigger", trigger, Trigger, optional=True)
    return services, infrastructures


def _step_times(horizon, time_step) -> np.ndarray:
    """Mid-points of the steps (what time-only components are evaluated at), after checking that the
    run is a whole number of steps and not more than MAX_STEPS of them (before anything is allocated)."""
    steps, dt, _ = check_steps(horizon, time_step)
    return (np.arange(steps) + 0.5) * dt


def _frames(infra, mine, data, steps, dt):
    """The per-service rows and per-server rows of one platform's full run."""
    times = np.arange(steps) * dt
    n = infra.max_servers
    serving = data["serving"][:, 0, :]
    blocking = data["server_blocking"][:, 0]
    server_frame = pd.DataFrame({
        "time": np.repeat(times, n),
        "infrastructure": infra.name,
        "server": np.tile(np.arange(n), steps),
        "serving": serving.ravel(),
        # what a request to this server meets: refusal if it is out of service, else its blocking
        "failure_probability": np.where(serving, blocking[:, None], 1.0).ravel(),
    })
    frames = []
    for j, service in enumerate(mine):
        frame = {"time": times, "infrastructure": infra.name, "service": service.name}
        frame.update({name: data[name][:, 0, j] for name in _COUNTS})
        frame.update({name: data[name][:, 0] for name in _LEVELS})
        frames.append(pd.DataFrame(frame))
    return frames, server_frame


def _simulate(services, infrastructures, build, *, horizon, time_step, seed, parameters) -> Timeline:
    """Run every platform that has services (each its own random stream) and collect a Timeline.

    ``build(infrastructure, services, rates)`` returns ``(PlatformRun, retry layer)``.
    """
    rngs = _child_rngs(seed, len(infrastructures))
    frames, server_frames, layers = [], [], {}
    for infra, rng in zip(infrastructures, rngs):
        mine = [s for s in services if s.infrastructure == infra.name]
        if not mine:
            continue
        spec, layer = build(infra, mine, np.array([[s.request_rate for s in mine]]))
        layers[infra.name] = (layer, infra.routing == "sharded")
        data, steps, dt = run_platform(spec, horizon=horizon, time_step=time_step, rng=rng, mode="full")
        service_frames, server_frame = _frames(infra, mine, data, steps, dt)
        frames.extend(service_frames)
        server_frames.append(server_frame)
    series = pd.concat(frames, ignore_index=True).sort_values(["time", "infrastructure", "service"],
                                                              ignore_index=True)
    series = finish_counts(series, layers)[SERIES_COLUMNS]
    parameters = dict(parameters, services=services, infrastructures=infrastructures, seed=seed, layers=layers)
    return Timeline(series=series, servers=pd.concat(server_frames, ignore_index=True), time_step=float(time_step),
                    horizon=float(horizon), parameters=parameters)


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
        Applied to every infrastructure (a change rolled out everywhere at once).
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
    >>> quiet = simulate_incident([Service("api", "db", 1000.0)],
    ...                           [Infrastructure("db", 2, 30.0)], cost=cost, clients=Clients(),
    ...                           trigger=Trigger(), horizon=60.0, seed=3)
    >>> int(quiet.series.failures.sum())
    0
    """
    services, infrastructures = _check_model(services, infrastructures, cost, clients, trigger)
    check_instance("", "trigger", trigger, Trigger)
    times = _step_times(horizon, time_step)

    def build(infra, mine, rates):
        profile = StepProfile.from_trigger(times, trigger.new_connection_multiple, trigger.request_multiple,
                                           trigger.start, trigger.rollback_start, trigger.rollback_duration)
        spec = PlatformRun(infra, rates, np.array([infra.connections_per_server]), cost, clients, profile,
                           peak_multiple=float(max(trigger.new_connection_multiple, 1.0)))
        return spec, "calling_service"

    return _simulate(services, infrastructures, build, horizon=horizon, time_step=time_step, seed=seed,
                     parameters=dict(cost=cost, clients=clients, trigger=trigger))


_MECHANISMS = (Surge, CapacityLoss, ConnectionCeiling, RetryStorm, Contention)
_EVENTS = (Rollback, LoadShedding, CapacityAdded, Failover)


def _components(mechanisms, events, platform_names) -> list:
    """Check the components and attach each rollback to the surge it names."""
    mechanisms = check_sequence("mechanisms", mechanisms, _MECHANISMS, single=False)
    events = check_sequence("events", events, _EVENTS, single=False)
    for items in (mechanisms, events):
        for item in items:
            unknown = [p for p in (getattr(item, "platforms", None) or ()) if p not in platform_names]
            if unknown:
                raise ValueError(f"{type(item).__name__}.platforms names {unknown}, which are not among "
                                 f"{platform_names}")
    surges = [m for m in mechanisms if isinstance(m, Surge)]
    names = [s.name for s in surges]
    if len(set(names)) != len(names):
        raise ValueError(f"surge names must be unique, got {names}")
    rollbacks = [e for e in events if isinstance(e, Rollback)]
    for rollback in rollbacks:
        if rollback.surge not in names:
            raise ValueError(f"Rollback.surge names {rollback.surge!r}, which is not among the surges {names}")
    attached = {s.name: dataclasses.replace(s, rollbacks=s.rollbacks + tuple(r for r in rollbacks if r.surge == s.name))
                for s in surges}
    return ([attached[m.name] if isinstance(m, Surge) else m for m in mechanisms]
            + [e for e in events if not isinstance(e, Rollback)])


def _single(components, kind, platform: str):
    found = [c for c in components if isinstance(c, kind)]
    if len(found) > 1:
        raise ValueError(f"platform {platform!r} has {len(found)} {kind.__name__} components; give it at most one")
    return found[0] if found else None


def run(platforms: Sequence[Infrastructure], services: Sequence[Service], *, mechanisms=(), events=(),
        cost: ConnectionCost | None = None, clients: Clients | None = None, horizon: float,
        time_step: float = 1.0, seed=0) -> Timeline:
    """Step services on their platforms through a scenario of mechanisms and events.

    Parameters
    ----------
    platforms : sequence of Infrastructure
    services : sequence of Service
    mechanisms : sequence of Surge, CapacityLoss, ConnectionCeiling, RetryStorm, Contention
        Each applies to the platforms it names (all by default). At most one RetryStorm and one
        ConnectionCeiling per platform; a RetryStorm replaces ``clients`` on its platforms.
    events : sequence of Rollback, LoadShedding, CapacityAdded, Failover
        A Rollback acts on the surge it names; a Failover moves a share of its source's services
        to its target, where they appear under their own names.
    cost : ConnectionCost, optional
    clients : Clients, optional
        What clients do where no RetryStorm says otherwise (a calling service's retries).
    horizon, time_step, seed
        As for :func:`simulate_incident`.

    Returns
    -------
    Timeline
        With every observation level (:mod:`reliability.dynamics.timeline`).
    """
    cost = ConnectionCost() if cost is None else cost
    clients = Clients() if clients is None else clients
    services, platforms = _check_model(services, platforms, cost, clients, platforms="platforms")
    components = _components(mechanisms, events, [p.name for p in platforms])
    times = _step_times(horizon, time_step)

    moved = [(Service(s.name, f.target, s.request_rate), f) for f in components if isinstance(f, Failover)
             for s in services if s.infrastructure == f.source]

    def build(infra, senders, rates):
        mine = [c for c in components if c.applies_to(infra.name)]
        profile = StepProfile.neutral(times, 1, infra.servers).apply(mine, infra.name)
        if any(s is m for s in senders for m, _ in moved):
            # services moved in by a failover send only the moved share, from the failover on
            profile.service_multiple = np.column_stack([
                next((f.moved(times) for m, f in moved if m is s), np.ones(times.size)) for s in senders])
        storm = _single(mine, RetryStorm, infra.name)
        peak = math.prod(s.peak_multiple for s in mine if isinstance(s, Surge) and s.target == "new_connections")
        slowdown = math.prod(c.peak_multiple for c in mine if isinstance(c, Contention))
        spec = PlatformRun(infra, rates, np.array([infra.connections_per_server]), cost,
                           clients if storm is None else storm.clients(), profile,
                           ceiling=_single(mine, ConnectionCeiling, infra.name),
                           queueing=storm is not None and storm.waits, peak_multiple=peak, peak_slowdown=slowdown)
        return spec, "calling_service" if storm is None else storm.layer

    return _simulate(services + [m for m, _ in moved], platforms, build, horizon=horizon, time_step=time_step,
                     seed=seed, parameters=dict(cost=cost, clients=clients, trigger=None, mechanisms=tuple(mechanisms),
                                     events=tuple(events)))


def _sweep_points(raw: dict) -> list[np.ndarray]:
    """The per-point parameters of :func:`simulate_sweep`, each checked, broadcast to one dimension of points."""
    checked = {
        "connections_per_server": as_array("connections_per_server", raw["connections_per_server"], minimum=0.0,
                                           strict_minimum=True, maximum=MAX_SLOTS),
        "new_connection_multiple": as_array("new_connection_multiple", raw["new_connection_multiple"], minimum=0.0,
                                            maximum=MAX_MULTIPLE),
        "request_multiple": as_array("request_multiple", raw["request_multiple"], minimum=0.0, maximum=MAX_MULTIPLE),
        "start": as_array("start", raw["start"], minimum=0.0),
        "rollback_start": as_array("rollback_start", raw["rollback_start"], minimum=0.0, allow_inf=True),
        "rollback_duration": as_array("rollback_duration", raw["rollback_duration"], minimum=0.0),
        # the engine keeps one retry column per attempt
        "max_retries": as_array("max_retries", raw["max_retries"], minimum=0.0, integer=True,
                                maximum=MAX_ENGINE_RETRIES),
    }
    arrays = [np.atleast_1d(a) for a in broadcast(**checked)]
    if arrays[0].ndim != 1 or arrays[0].size == 0:
        shapes = ", ".join(f"{name} {np.shape(value)}" for name, value in checked.items() if np.ndim(value))
        raise ValueError(f"sweep parameters must broadcast to one dimension of at least one point, got shape "
                         f"{arrays[0].shape} from {shapes}")
    if (arrays[4] < arrays[3]).any():
        raise ValueError("rollback_start must be >= start at every point")
    return arrays


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
    >>> sweep = simulate_sweep(Infrastructure("db", 2, 30.0), [Service("api", "db", 1000.0)],
    ...                        cost=cost, clients=Clients(), horizon=120.0,
    ...                        new_connection_multiple=[1.0, 20.0])
    >>> frac = sweep.failure_fraction(120.0)[0]
    >>> bool(frac[0] < 0.01 < 0.3 < frac[1])
    True
    """
    check_instance("", "infrastructure", infrastructure, Infrastructure)
    services, _ = _check_model(services, [infrastructure], cost, clients)
    mine = [s for s in services if s.infrastructure == infrastructure.name]
    if not mine:
        raise ValueError(f"no service runs on infrastructure {infrastructure.name!r}")
    k = infrastructure.connections_per_server if connections_per_server is None else connections_per_server
    caps = clients.max_retries if max_retries is None else max_retries
    names = ("connections_per_server", "new_connection_multiple", "request_multiple", "start",
             "rollback_start", "rollback_duration", "max_retries")
    arrays = _sweep_points(dict(zip(names, (k, new_connection_multiple, request_multiple, start, rollback_start,
                                            rollback_duration, caps))))
    G = arrays[0].size
    rates = np.tile(np.array([s.request_rate for s in mine]), (G, 1))
    rng = _child_rngs(seed, 1)[0]
    k_slots, conn_mult, req_mult, t_start, t_roll, d_roll = (np.array(a, dtype=np.float64) for a in arrays[:6])
    profile = StepProfile.from_trigger(_step_times(horizon, time_step), conn_mult, req_mult, t_start, t_roll, d_roll)
    spec = PlatformRun(infrastructure, rates, k_slots, cost, clients, profile,
                       retry_caps=None if max_retries is None else arrays[6],
                       peak_multiple=float(max(conn_mult.max(), 1.0)))
    data, steps, dt = run_platform(spec, horizon=horizon, time_step=time_step, rng=rng, mode="summary")
    points = pd.DataFrame(dict(zip(names, arrays)))
    return Sweep(attempts=data["attempts"], failures=data["failures"], offered_load=data["offered_load"],
                 user_failure_probability=data["user_failure_probability"], points=points, time_step=dt,
                 horizon=float(horizon))

