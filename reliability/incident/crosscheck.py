"""The incident at one inferred setting, replayed in :mod:`reliability.dynamics` (the stochastic,
time-stepped queueing model), beside the fluid model inference ran on.

Inference needs thousands of runs, so it uses the vectorised fluid model of
:mod:`reliability.incident.model`; this adapter turns the same incident file, at one setting of its
unknowns, into :func:`reliability.dynamics.run` components (platforms, services, surges, capacity
loss, ceiling, retry storm, contention, load shedding, capacity added, failover) and compares the
share of failed attempts and of failed requests per platform. What the adapter simplifies: each
mechanism's activity becomes one window (from when it is first half on to when it is next half
off: ramps and stages become steps, a recurrence keeps its first window), one retry layer and one
ceiling per platform, no dependency between platforms, and a few sizes the files never give
(servers, request rate, connection cost: :data:`REPLAY_SIZES`).

Examples
--------
>>> from reliability.incident import available_incidents, build_scenario, load
>>> scenario = build_scenario(load(available_incidents()[0]), time_step=60.0)
>>> parts = dynamics_components(scenario, scenario.midpoints(), 0)
>>> sorted(parts)
['events', 'mechanisms', 'platforms', 'services']
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import dynamics
from ..retry import FixedRetries
from .._validate import ArgumentTypeError, describe, number, whole
from .arguments import check_inference, check_reading, check_run
from .components import Settings, activity, ceiling_ratio

__all__ = ["dynamics_components", "cross_check", "REPLAY_SIZES"]

#: Sizes the replay needs and no incident file gives (labelled assumptions of the cross-check).
REPLAY_SIZES = {"servers": 4, "request_rate": 400.0, "service_time": 0.02, "setup_time": 0.05,
                "new_connection_fraction": 0.05, "attempt_timeout": 0.1}


def _window(times, on) -> tuple[float, float]:
    """First time ``on`` reaches one half, and the next time it falls below (inf if it never does)."""
    above = np.flatnonzero(on >= 0.5)
    if not len(above):
        return math.inf, math.inf
    start = above[0]
    below = np.flatnonzero(on[start:] < 0.5)
    return float(times[start]), float(times[start + below[0]]) if len(below) else math.inf


def _mechanism_parts(settings, mechanism, where, shift, first):
    times = settings.scenario.times - shift
    a = activity(settings, mechanism, where, ramp=mechanism.parameter("ramp"))[0]
    start, end = _window(times, a)
    if not math.isfinite(start):
        return []
    number = lambda name: float(settings.number(mechanism.parameter(name))[0])
    kind, label = mechanism.kind, f"{mechanism.id}@{where}"
    if kind in ("surge_requests", "surge_new_connections"):
        target = "requests" if kind == "surge_requests" else "new_connections"
        return [dynamics.Surge(label, target, number("multiple"), start=start, end=end, platforms=where)]
    if kind == "capacity_loss":
        routing = str(settings.setting(mechanism.parameter("routing"), "stays")[0])
        return [dynamics.CapacityLoss(min(number("share"), 0.999), start=start, end=end, routing=routing,
                                      platforms=where)]
    if kind == "contention":
        return [dynamics.Contention(number("slowdown"), start=start, end=end, platforms=where)]
    if kind == "connection_ceiling" and first.setdefault(("ceiling", where), True):
        first[("ceiling", where)] = False
        rate = REPLAY_SIZES["request_rate"]
        normal = float(dynamics.normal_offered_load(rate, _cost()))
        return [dynamics.ConnectionCeiling(max(1.0, float(ceiling_ratio(settings, mechanism)[0]) * normal),
                                           platforms=where)]
    if kind == "retry_storm" and first.setdefault(("retries", where), True):
        first[("retries", where)] = False
        layer = str(settings.setting(mechanism.parameter("layer"), "calling_service")[0])
        return [dynamics.RetryStorm(layer, FixedRetries(int(round(number("max_retries")))), backoff=None,
                                    timeout=REPLAY_SIZES["attempt_timeout"], platforms=where)]
    return []


def _event_parts(settings, shift):
    parts = []
    for event, owner, mask in settings.switches():
        if not mask[0]:
            continue
        at = float(settings.time(owner)[0]) - shift
        share = lambda name: float(settings.number(event.parameter(name))[0])
        for where in event.infrastructures:
            if event.kind == "load_shedding":
                until = math.inf if event.until is None else float(
                    settings.time(settings.incident.event(event.until))[0]) - shift
                parts.append(dynamics.LoadShedding(min(share("share"), 1.0), start=max(at, 0.0), until=until,
                                                   platforms=where))
            elif event.kind in ("capacity_added", "autoscaled"):
                parts.append(dynamics.CapacityAdded(share=share("amount"), at=max(at, 0.0), platforms=where))
        if event.kind == "failover":
            parts.append(dynamics.Failover(share("share"), max(at, 0.0), event.moves_from, event.moves_to))
    return parts


def _cost():
    return dynamics.ConnectionCost(REPLAY_SIZES["service_time"], REPLAY_SIZES["setup_time"],
                                   REPLAY_SIZES["new_connection_fraction"])


def dynamics_components(scenario, values, variant: int) -> dict:
    """Platforms, services, mechanisms and events of :func:`reliability.dynamics.run` for one setting."""
    if not all(hasattr(scenario, a) for a in ("incident", "unknowns", "variants", "times")):
        raise ArgumentTypeError(f"scenario must be a Scenario (build_scenario), got {describe(scenario)}")
    variant = whole("variant", variant, 0, len(scenario.variants) - 1)
    check_run(scenario, values, np.array([variant]), None)
    one = {k: np.asarray(v, dtype=float).reshape(-1)[:1] for k, v in values.items()}
    settings = Settings(scenario, one, np.array([int(variant)]), {})
    shift, first = float(scenario.times[0]), {}
    platforms, services = [], []
    for infrastructure in scenario.incident.infrastructures:
        headroom = float(settings.number(infrastructure.headroom)[0])
        autoscaled = bool(settings.setting(infrastructure.autoscaled, False)[0])
        connections = float(dynamics.connections_for_headroom(REPLAY_SIZES["request_rate"], _cost(),
                                                              REPLAY_SIZES["servers"], headroom))
        platforms.append(dynamics.Infrastructure(infrastructure.id, REPLAY_SIZES["servers"], connections,
                                                 autoscaler=dynamics.Autoscaler() if autoscaled else None))
        mine = scenario.incident.services_on(infrastructure.id) or (infrastructure.id,)
        services += [dynamics.Service(s, infrastructure.id, REPLAY_SIZES["request_rate"] / len(mine)) for s in mine]
    mechanisms = [part for m in scenario.incident.mechanisms for where in m.infrastructures
                  for part in _mechanism_parts(settings, m, where, shift, first)]
    return {"platforms": platforms, "services": services, "mechanisms": mechanisms,
            "events": _event_parts(settings, shift)}


def cross_check(inference, reading: str, *, time_step: float = 5.0, seed: int = 0) -> pd.DataFrame:
    """Per platform, failed attempts and failed requests from the start on: fluid model and dynamics replay."""
    check_reading(check_inference(inference), reading)
    time_step = number("time_step", time_step, minimum=0.0, strict=True)
    seed = whole("seed", seed, 0)
    values, variant = inference.settings(reading, which="best")
    scenario = inference.scenario
    fluid = scenario.run(values, variant)
    parts = dynamics_components(scenario, values, int(variant[0]))
    horizon = float(scenario.times[-1] - scenario.times[0] + scenario.time_step)
    replay = dynamics.run(parts["platforms"], parts["services"], mechanisms=parts["mechanisms"],
                          events=parts["events"], cost=_cost(), horizon=horizon, time_step=time_step, seed=seed,
                          # where the file names no retry storm, nobody retries
                          clients=dynamics.Clients(policy=FixedRetries(0), backoff=None))
    series = replay.series[replay.series.time >= -float(scenario.times[0])]
    rows = []
    for infrastructure in scenario.incident.infrastructures:
        mine = series[series.infrastructure == infrastructure.id]
        after = fluid.times >= 0
        run = fluid.runs[infrastructure.id]
        rows.append({
            "infrastructure": infrastructure.id,
            "fluid_attempts": float((run.attempts * run.attempt_failure)[0, after].sum() / run.attempts[0, after].sum()),
            "fluid_requests": float((run.requests * run.request_failure)[0, after].sum() / run.requests[0, after].sum()),
            "dynamics_attempts": float(mine.failed_attempts.sum() / max(mine.attempts.sum(), 1.0)),
            "dynamics_requests": float(mine.failed_requests.sum() / max(mine.requests.sum(), 1.0))})
    return pd.DataFrame(rows)
