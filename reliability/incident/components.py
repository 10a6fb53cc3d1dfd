"""One component per mechanism kind and per event kind: how each shapes an infrastructure's profiles.

A mechanism is active (0..1 per sample and step) from the events that start it (from the beginning
when none does) until the events that end it; :func:`activity` computes that, with a trigger's
duration, a loss's ramp, and a rollback's duration, stages and share. Each mechanism component then
writes into its infrastructures' profiles (:class:`Profiles`): demand, lost capacity, capacity
added, shed share, ceiling, slowdown, retry layers. Event components do the same for the
interventions that are not switches (load shedding, capacity added or lost, autoscaling, failover).
:func:`platform_specs` collects the profiles as :class:`~reliability.incident.model.PlatformSpec`.

Examples
--------
>>> sorted(COMPONENTS)[:2]
['capacity_loss', 'connection_ceiling']
>>> shape = ramp_shape(np.array([-1.0, 0.25, 0.6, 2.0]), stages=np.array([0, 0, 2, 0]))
>>> shape.tolist()
[0.0, 0.25, 0.5, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .model import PlatformSpec, RetryLayer

__all__ = ["Settings", "Profiles", "activity", "ramp_shape", "COMPONENTS", "EVENT_EFFECTS", "platform_specs",
           "INTERVENTION_KINDS"]

INTERVENTION_KINDS = ("rollback", "hotfix", "load_shedding", "capacity_added", "capacity_lost", "failover",
                      "autoscaled", "unknown_intervention")


def ramp_shape(fraction: np.ndarray, stages: Any = 0) -> np.ndarray:
    """0 before, 1 after, linear in between; in ``stages`` equal steps where ``stages`` > 0."""
    fraction = np.clip(fraction, 0.0, 1.0)
    stages = np.broadcast_to(np.asarray(stages, dtype=float), fraction.shape)
    stepped = np.floor(fraction * np.maximum(stages, 1.0) + 1e-9) / np.maximum(stages, 1.0)
    return np.where(stages > 0, stepped, fraction)


class Settings:
    """The values of one run: the scenario, one value per sample of each unknown, the variant, overrides."""

    def __init__(self, scenario, values: Mapping[str, np.ndarray], variant: np.ndarray, overrides: dict):
        self.scenario, self.incident = scenario, scenario.incident
        self.values, self.variant, self.overrides = values, variant, overrides
        self.samples = len(variant)
        self.t = scenario.times[None, :]

    def number(self, parameter, default: float = math.nan) -> np.ndarray:
        """A numeric parameter in SI units, one value per sample."""
        if parameter is None:
            return np.full(self.samples, default)
        if parameter.known:
            return np.full(self.samples, float(parameter.si_value))
        return np.broadcast_to(np.asarray(self.values[parameter.path], dtype=float), (self.samples,))

    def setting(self, parameter, default: Any = None) -> np.ndarray:
        """A setting (a word, true/false) per sample, as an object array."""
        if parameter is None:
            return np.full(self.samples, default, dtype=object)
        if parameter.known:
            return np.full(self.samples, parameter.value, dtype=object)
        choices = np.array(self.scenario.unknown(parameter.path).choices, dtype=object)
        return choices[np.asarray(self.values[parameter.path], dtype=int)]

    def time(self, event) -> np.ndarray:
        """When ``event`` happened, seconds after the start, per sample (shifted in a counterfactual)."""
        path = f"events.{event.id}.time"
        if path in self.values:
            seconds = np.asarray(self.values[path], dtype=float)
        else:
            low, high = event.time.seconds_from(self.incident.origin)
            seconds = np.full(self.samples, (low + high) / 2 if event.time.value is None else
                              self.incident.seconds(event.time.value))
        if event.kind in INTERVENTION_KINDS:
            seconds = seconds + float(self.overrides.get("shift", 0.0))
        return np.broadcast_to(seconds, (self.samples,))

    def included(self, item_id: str) -> np.ndarray:
        """Per sample, whether a hypothesis is in the run's variant (always True for a published item)."""
        hypothesis = any(m.id == item_id and m.hypothesis for m in self.incident.mechanisms) or any(
            e.id == item_id and e.hypothesis for e in self.incident.events)
        if not hypothesis:
            return np.ones(self.samples, dtype=bool)
        chosen = np.array([item_id in v.hypotheses for v in self.scenario.variants])
        return chosen[self.variant]

    def chosen(self, event_id: str, kind: str) -> np.ndarray:
        picked = np.array([v.alternatives.get(event_id) == kind for v in self.scenario.variants])
        return picked[self.variant]

    def switches(self):
        """Every event that may switch mechanisms, with the samples it happens in: (event, time owner, mask)."""
        for event in self.incident.events:
            mask = self.included(event.id)
            yield event, event, mask
            for alternative in event.alternatives:
                yield alternative, event, mask & self.chosen(event.id, alternative.kind)

    def traffic_shares(self) -> dict[str, np.ndarray | None]:
        return {i.id: (None if i.traffic_share is None else self.number(i.traffic_share))
                for i in self.incident.infrastructures}

    def service_shares(self) -> dict[str, tuple]:
        """Each service: (its infrastructure, its traffic share there, its exposure); None where not given."""
        return {s.id: (s.infrastructure, None if s.traffic_share is None else self.number(s.traffic_share),
                       None if s.exposure is None else self.number(s.exposure))
                for s in self.incident.services}


def _applies(event, infrastructure: str) -> bool:
    return not event.infrastructures or infrastructure in event.infrastructures


def _switch_off(settings, event, owner, mask, begun) -> np.ndarray:
    """The share of a mechanism ``event`` has switched off, per sample and step."""
    at = settings.time(owner)[:, None]
    length = settings.number(event.parameter("duration") if event.kind == "rollback" else event.parameter("ramp"), 0.0)
    stages = settings.number(event.parameter("stages"), 0.0)[:, None]
    share = settings.number(event.parameter("share"), 1.0)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(length[:, None] > 0, (settings.t - at) / np.maximum(length[:, None], 1e-9),
                            (settings.t >= at).astype(float))
    off = share * ramp_shape(fraction, stages)
    return np.where((mask & (at[:, 0] >= begun))[:, None], off, 0.0)


def activity(settings: Settings, mechanism, infrastructure: str, ramp=None) -> np.ndarray:
    """How active ``mechanism`` is on ``infrastructure``, 0..1 per sample and step."""
    starts = [(e, o, m) for e, o, m in settings.switches() if mechanism.id in e.starts and _applies(e, infrastructure)]
    ends = [(e, o, m) for e, o, m in settings.switches() if mechanism.id in e.ends and _applies(e, infrastructure)]
    shape = (settings.samples, settings.t.shape[1])
    if not starts:
        starts = [(None, None, np.ones(settings.samples, dtype=bool))]
    on = np.zeros(shape)
    ramp_seconds = settings.number(ramp, 0.0)[:, None]
    for event, owner, mask in starts:
        begun = settings.time(owner) if event is not None else np.full(settings.samples, -np.inf)
        start = begun[:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            window = np.where(ramp_seconds > 0, np.clip((settings.t - start) / np.maximum(ramp_seconds, 1e-9), 0, 1),
                              (settings.t >= start).astype(float))
        if event is not None and event.parameter("duration") is not None and event.kind == "trigger_start":
            window = window * (settings.t < start + settings.number(event.parameter("duration"))[:, None])
        for end, end_owner, end_mask in ends:
            window = window * (1.0 - _switch_off(settings, end, end_owner, end_mask, begun))
        on = np.maximum(on, np.where(mask[:, None], window, 0.0))
    return on * settings.included(mechanism.id)[:, None]


@dataclass
class Profiles:
    """What the components write for one infrastructure (samples x steps)."""

    demand: np.ndarray
    lost_stays: np.ndarray
    lost_moves: np.ndarray
    shed: np.ndarray
    added: np.ndarray
    ceiling: np.ndarray
    slowdown: np.ndarray
    layers: list = field(default_factory=list)
    explicit_autoscaling: bool = False
    timeouts: list = field(default_factory=list)


def _surge_requests(settings, mechanism, where, profiles, capacity):
    a = activity(settings, mechanism, where)
    profiles.demand *= 1.0 + (settings.number(mechanism.parameter("multiple"))[:, None] - 1.0) * a


def _surge_new_connections(settings, mechanism, where, profiles, capacity):
    a = activity(settings, mechanism, where)
    share = settings.scenario.assumptions["new_connection_work_share"]
    profiles.demand *= 1.0 + share * (settings.number(mechanism.parameter("multiple"))[:, None] - 1.0) * a


def _capacity_loss(settings, mechanism, where, profiles, capacity):
    a = activity(settings, mechanism, where, ramp=mechanism.parameter("ramp"))
    loss = settings.number(mechanism.parameter("share"))[:, None] * a
    stays = (settings.setting(mechanism.parameter("routing"), "stays") == "stays")[:, None]
    profiles.lost_stays[:] = 1.0 - (1.0 - profiles.lost_stays) * (1.0 - np.where(stays, loss, 0.0))
    profiles.lost_moves[:] = 1.0 - (1.0 - profiles.lost_moves) * (1.0 - np.where(stays, 0.0, loss))


def ceiling_ratio(settings, mechanism) -> np.ndarray:
    """The ceiling over the connections in use at normal peak. A ceiling written as a count is divided by
    the middle of its prior (the normal use is not published; labelled an assumption in the report)."""
    size = mechanism.parameter("size")
    value = settings.number(size)
    if size.unit != "count":
        return value
    if size.known:
        return np.full(settings.samples, 1.0)
    low, high = size.prior.low, size.prior.high
    return value / math.sqrt(low * high)


def _connection_ceiling(settings, mechanism, where, profiles, capacity):
    a = activity(settings, mechanism, where)
    ratio = ceiling_ratio(settings, mechanism)[:, None]
    profiles.ceiling[:] = np.minimum(profiles.ceiling, np.where(a >= 0.5, ratio, np.inf))


def _retry_storm(settings, mechanism, where, profiles, capacity):
    a = activity(settings, mechanism, where)
    retries = np.round(settings.number(mechanism.parameter("max_retries"))).astype(int)
    layer = settings.setting(mechanism.parameter("layer"), "calling_service")
    policy = settings.overrides.get("policy")
    # one layer per kind of caller present among the samples
    for kind in sorted(set(layer.tolist())):
        active = a * (layer == kind)[:, None]
        profiles.layers.append(RetryLayer(retries, active, kind,
                                          None if policy is None else policy))
    timeout = mechanism.parameter("timeout")
    if timeout is not None and timeout.known:
        profiles.timeouts.append(float(timeout.si_value))


def _contention(settings, mechanism, where, profiles, capacity):
    a = activity(settings, mechanism, where)
    slowdown = 1.0 + (settings.number(mechanism.parameter("slowdown"))[:, None] - 1.0) * a
    profiles.slowdown[:] = np.maximum(profiles.slowdown, slowdown)


COMPONENTS = {
    "surge_requests": _surge_requests, "surge_new_connections": _surge_new_connections,
    "capacity_loss": _capacity_loss, "connection_ceiling": _connection_ceiling, "retry_storm": _retry_storm,
    "contention": _contention,
}


def _from(settings, owner):
    return (settings.t >= settings.time(owner)[:, None]).astype(float)


def _load_shedding(settings, event, owner, mask, profiles, capacity):
    on = _from(settings, owner)
    if event.until is not None:
        on = on * (settings.t < settings.time(settings.incident.event(event.until))[:, None])
    share = settings.number(event.parameter("share"))[:, None] * on
    profiles.shed[:] = 1.0 - (1.0 - profiles.shed) * (1.0 - np.where(mask[:, None], share, 0.0))


def _capacity_change(sign):
    def effect(settings, event, owner, mask, profiles, capacity):
        amount = settings.number(event.parameter("amount"))[:, None] * capacity[:, None] * _from(settings, owner)
        profiles.added += sign * np.where(mask[:, None], amount, 0.0)
        if event.kind == "autoscaled":
            profiles.explicit_autoscaling = True
    return effect


def _nothing(*_):
    return None


EVENT_EFFECTS = {
    **{kind: _nothing for kind in ("trigger_start", "trigger_end", "deploy", "rollback", "hotfix",
                                   "unknown_intervention", "failover", "impact_start", "detected", "reported",
                                   "escalated", "identified", "status_post", "recovering", "mitigated", "recovered",
                                   "resolved")},
    "load_shedding": _load_shedding, "capacity_added": _capacity_change(1.0), "capacity_lost": _capacity_change(-1.0),
    "autoscaled": _capacity_change(1.0),
}


def _failover(settings, profiles_by_id):
    for event, owner, mask in settings.switches():
        if event.kind != "failover":
            continue
        moved = settings.number(event.parameter("share"))[:, None] * _from(settings, owner) * mask[:, None]
        profiles_by_id[event.moves_from].demand *= 1.0 - moved
        profiles_by_id[event.moves_to].demand += moved


def _infrastructure_settings(settings, infrastructure):
    overrides = settings.overrides
    headroom = np.asarray(overrides.get("headroom", {}).get(infrastructure.id, settings.number(infrastructure.headroom)),
                          dtype=float)
    autoscaled = settings.setting(infrastructure.autoscaled, False).astype(bool)
    if infrastructure.id in overrides.get("autoscaled", {}):
        autoscaled = np.full(settings.samples, bool(overrides["autoscaled"][infrastructure.id]))
    delay = settings.number(infrastructure.autoscale_delay, overrides.get("autoscale_delay", 60.0))
    return np.broadcast_to(headroom, (settings.samples,)), autoscaled, np.nan_to_num(delay, nan=60.0)


# a setting of 1e-308 (a time, a share) underflows to its limit, 0: the honest answer, not a warning
@np.errstate(under="ignore")
def platform_specs(settings: Settings) -> list[PlatformSpec]:
    """The model's infrastructures at these settings, every component applied."""
    shape = (settings.samples, settings.t.shape[1])
    profiles_by_id, setup = {}, {}
    for infrastructure in settings.incident.infrastructures:
        setup[infrastructure.id] = _infrastructure_settings(settings, infrastructure)
        profiles_by_id[infrastructure.id] = Profiles(np.ones(shape), np.zeros(shape), np.zeros(shape), np.zeros(shape),
                                                     np.zeros(shape), np.full(shape, np.inf), np.ones(shape))
    for mechanism in settings.incident.mechanisms:
        for where in mechanism.infrastructures:
            COMPONENTS[mechanism.kind](settings, mechanism, where, profiles_by_id[where], 1.0 + setup[where][0])
    for event, owner, mask in settings.switches():
        for where in event.infrastructures:
            EVENT_EFFECTS[event.kind](settings, event, owner, mask, profiles_by_id[where], 1.0 + setup[where][0])
    _failover(settings, profiles_by_id)
    assumed = settings.scenario.assumptions
    specs = []
    for infrastructure in settings.incident.infrastructures:
        p = profiles_by_id[infrastructure.id]
        headroom, autoscaled, delay = setup[infrastructure.id]
        specs.append(PlatformSpec(
            infrastructure.id, headroom, p.demand, p.lost_stays, p.lost_moves, p.shed, p.added, p.ceiling, p.slowdown,
            tuple(p.layers), autoscaled & (not p.explicit_autoscaling), delay, tuple(infrastructure.depends_on),
            min(p.timeouts) if p.timeouts else assumed["timeout"], assumed["max_wait"], assumed["autoscale_limit"]))
    return specs
