"""The engine: one platform stepped through time for G parameter points at once.

:func:`run_platform` builds the step components of :mod:`.steps` and :mod:`.platform_steps` from a
:class:`PlatformRun` and calls them once per step in this order (see :mod:`.steps`):

``demand.step -> retries.arrive -> retries.throttle -> servers.route -> servers.serve ->
retries.settle -> recorder.record -> parts.update (health check, connection limit, autoscaler)``.

Everything that depends on time alone (surges, rollbacks, shedding, capacity, contention) is in
the run's :class:`~reliability.dynamics.profile.StepProfile`, evaluated before the loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..retry import FixedRetries
from ._checks import MAX_STEPS, check_choice, check_instance, check_number as _number, check_steps
from .parts import Clients, ConnectionCost
from .platforms import Infrastructure
from .platform_steps import platform_parts
from .record import Recorder
from .steps import Demand, RetryLayer, Servers, StepState

__all__ = ["MAX_ENGINE_RETRIES", "MAX_RECORDED", "MAX_STEPS", "PlatformRun", "check_time_step", "run_platform"]

#: Largest number of recorded numbers one run may hold (steps x grid points x services x series).
MAX_RECORDED = 400_000_000
#: Most retries per request the engine carries: it keeps one column and one delay kernel per attempt,
#: so a cap of a million would not end; real clients retry a handful of times.
MAX_ENGINE_RETRIES = 100


def check_time_step(time_step: float, horizon: float, infrastructure, cost, clients, peak_multiple: float,
                    peak_slowdown: float = 1.0) -> tuple[int, float]:
    """Validate the step against every rate of the model; return (steps, step)."""
    steps, dt, horizon = check_steps(horizon, time_step)
    check_instance("", "infrastructure", infrastructure, Infrastructure)
    check_instance("", "cost", cost, ConnectionCost)
    check_instance("", "clients", clients, Clients)
    peak_multiple = _number("", "peak_multiple", peak_multiple)
    peak_slowdown = _number("", "peak_slowdown", peak_slowdown, strict=True)
    # The quasi-static loss model needs the slots to turn over within a step.
    hold = max(cost.holding_time(peak_multiple), float(cost.retry_holding_time(peak_multiple)))
    if peak_slowdown > 1.0:
        hold = hold + cost.service_time * (peak_slowdown - 1.0)
    if hold > dt:
        raise ValueError(
            f"time_step={dt:g} s is shorter than the mean connection holding time ({hold:g} s at "
            f"peak_multiple={peak_multiple:g} of the new_connection_multiple and peak_slowdown={peak_slowdown:g}): "
            "the model treats each server's slots as in equilibrium within a step; use a time_step >= the "
            "holding time")
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


@dataclass
class PlatformRun:
    """What one platform's run needs: the platform, per-point request rates (G, S) and slots (G,),
    the cost and clients, the step profile, and the components read once (ceiling, waiting)."""

    infrastructure: Any
    rates: np.ndarray
    k_slots: np.ndarray
    cost: Any
    clients: Any
    profile: Any
    ceiling: Any = None
    queueing: bool = False
    retry_caps: Any = None
    peak_multiple: float = 1.0
    peak_slowdown: float = 1.0


def _costs(cost, profile, timeout: float, retries: bool):
    """Holding times of first attempts and retries, and their timeout probabilities, per step (T, G)."""
    m_conn, slow = profile.new_connection_multiple, profile.slowdown
    service = cost.service_time * slow if "slowdown" in profile.touched else cost.service_time
    extra_first = cost.setup_time * cost.new_connection_fraction * m_conn
    extra_retry = np.full_like(m_conn, cost.setup_time) if cost.retries_need_new_connection else extra_first
    hold_first, hold_retry = service + extra_first, service + extra_retry
    if not math.isfinite(timeout):
        return (hold_first, hold_retry, None, None), False
    # P(attempt slower than the timeout): exponential work plus the deterministic set-up time
    with np.errstate(under="ignore"):  # a timeout of many holding times: the probability is 0
        p_to_first = np.exp(-np.maximum(timeout - extra_first, 0.0) / service)
        p_to_retry = np.exp(-np.maximum(timeout - extra_retry, 0.0) / service)
    with_timeouts = max(p_to_first.max(), p_to_retry.max() if retries else 0.0) > 1e-12
    return (hold_first, hold_retry, p_to_first, p_to_retry), with_timeouts


def _retry_caps(clients, caps, points: int):
    """(clients, r, caps): with per-point caps the engine runs the policy with the largest one."""
    if caps is None:
        return clients, clients.max_retries, None
    caps = np.broadcast_to(np.asarray(caps), (points,))
    if not np.all(np.isfinite(caps)) or np.any(caps < 0) or np.any(caps != np.floor(caps)):
        raise ValueError(f"max_retries must be whole numbers >= 0, got {caps!r}")
    caps = caps.astype(np.int64)
    r = int(caps.max())
    # each point masks the retries beyond its own cap
    policy = (FixedRetries(0) if clients.policy is None else clients.policy).with_max_retries(r)
    return (Clients(policy=policy, backoff=clients.backoff, timeout=clients.timeout, population=clients.population),
            r, caps)


def _check_retry_ring(clients, r: int, with_timeouts: bool, dt: float, points: int, services: int) -> None:
    """Refuse a ring of retries in flight too long to hold: one slot per step of the longest delay."""
    if not r:
        return
    longest = (clients.timeout if with_timeouts else 0.0) + (clients.backoff.cap if clients.backoff else 0.0)
    slots = (longest / dt + 3.0) * points * services * r
    if not slots <= MAX_RECORDED:
        raise ValueError(f"retries in flight would span {longest:g} s (Clients.timeout plus the backoff cap) of "
                         f"time_step={dt:g} s for {points:,} points x {services} services x {r} retries, more "
                         f"than {MAX_RECORDED:,} numbers; use a shorter Clients.timeout or a longer time_step")


def run_platform(spec: PlatformRun, *, horizon: float, time_step: float, rng, mode: str = "full"):
    """Step one platform through time; returns ``(recorded arrays, steps, time_step)``.

    ``mode="full"``: counts (T, G, S) and levels (T, G); ``"summary"``: attempts, failures,
    offered load and user failure probability (T, G) in float32.
    """
    check_instance("", "spec", spec, PlatformRun)
    check_choice("", "mode", mode, ("full", "summary"))
    rates = np.atleast_2d(np.asarray(spec.rates, dtype=np.float64))
    points, services = rates.shape
    steps, dt = check_time_step(time_step, horizon, spec.infrastructure, spec.cost, spec.clients,
                                spec.peak_multiple, spec.peak_slowdown)
    clients, r, caps = _retry_caps(spec.clients, spec.retry_caps, points)
    if r > MAX_ENGINE_RETRIES:
        raise ValueError(f"max_retries of the clients' policy must be <= {MAX_ENGINE_RETRIES} for the time-stepped "
                         f"model (one column per attempt), got {r:,}")
    recorded = steps * points * (services * (r + 1) * 4 + 4) if mode == "full" else steps * points * 3
    if recorded > MAX_RECORDED:
        raise ValueError(
            f"the run would record {recorded:,} numbers (steps={steps:,} x points={points:,} x services={services}), "
            f"more than {MAX_RECORDED:,}; use a longer time_step, a shorter horizon or fewer points")
    if spec.profile.times.size != steps:
        raise ValueError(f"spec.profile holds {spec.profile.times.size} steps, but horizon={horizon!r} and "
                         f"time_step={time_step!r} make {steps}")
    costs, with_timeouts = _costs(spec.cost, spec.profile, clients.timeout, bool(r))
    if spec.queueing:
        with_timeouts = math.isfinite(clients.timeout)
    _check_retry_ring(clients, r, with_timeouts, dt, points, services)
    servers = Servers(spec.infrastructure, spec.k_slots, costs, spec.profile, ceiling=spec.ceiling,
                      queueing=spec.queueing, timeout=clients.timeout, max_retries=r, with_timeouts=with_timeouts,
                      time_step=dt, rng=rng)
    retries = RetryLayer(clients, r, caps, rates, dt, with_timeouts, rng)
    parts = platform_parts(spec.infrastructure, servers, dt, rng)
    demand = Demand(rates, spec.profile, dt, steps, rng)
    recorder = Recorder(mode, steps, points, services, r, servers, retries.gate.throttles, with_timeouts)
    state = StepState(points, services, r + 1)
    for t in range(steps):
        demand.step(state, t)
        retries.arrive(state, t)
        retries.throttle(state, t, demand)
        servers.route(state, t)
        servers.serve(state, t)
        retries.settle(state, t)
        recorder.record(state, t)
        for part in parts:
            part.update(state, t)
    return recorder.result(spec.profile, servers.k_slots), steps, dt
