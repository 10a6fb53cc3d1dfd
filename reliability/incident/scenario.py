"""The model of an incident, built from its file alone: unknowns, variants, assumptions, and a run.

:func:`build_scenario` reads an :class:`~reliability.incident.schema.Incident` and returns a
:class:`Scenario`: every unknown of the file as an :class:`Unknown` (its prior in SI units), the
*variants* the file allows (each hypothesis in or out, each alternative of an unknown
intervention), the structural assumptions the model adds (labelled, never inferred), and
:meth:`Scenario.run`, which turns settings of the unknowns (arrays, one entry per sample) into a
:class:`~reliability.incident.timeline.Timeline` through the components of
:mod:`reliability.incident.components` and the fluid model of :mod:`reliability.incident.model`.

Examples
--------
>>> from reliability.incident import available_incidents, load
>>> scenario = build_scenario(load(available_incidents()[0]), time_step=60.0)
>>> all(u.low <= u.high for u in scenario.unknowns if not u.choices)
True
>>> timeline = scenario.run(scenario.midpoints(), np.zeros(1, dtype=int))
>>> timeline.samples
1
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .._records import Record
from .arguments import check_build, check_run, check_samples, check_unknown_path
from .components import COMPONENTS, EVENT_EFFECTS, Settings, platform_specs
from .model import run_model
from .schema import Incident, IncidentFileError, Parameter
from .timeline import Timeline

__all__ = ["Unknown", "Variant", "Assumption", "Scenario", "build_scenario", "ASSUMPTIONS"]


@dataclass(frozen=True, repr=False)
class Unknown(Record):
    """One unknown of the file, with its prior in SI units (seconds, fractions) or its ``choices``.

    ``kind`` is ``number``, ``count`` (whole numbers, uniform over low..high) or ``choice``.
    ``unit`` is the unit the file wrote it in (for display).
    """

    path: str
    kind: str
    low: float = math.nan
    high: float = math.nan
    scale: str = "linear"
    choices: tuple = ()
    unit: str = ""
    reason: str = ""


@dataclass(frozen=True, repr=False)
class Variant(Record):
    """One structure the file allows: which hypotheses are in, which alternative each unknown intervention was."""

    name: str
    hypotheses: tuple[str, ...]
    alternatives: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, repr=False)
class Assumption(Record):
    """A structural setting the model needs and no file gives: fixed, labelled, never inferred."""

    name: str
    value: float
    unit: str
    meaning: str


#: The structural assumptions, with their defaults (a scenario may override each).
ASSUMPTIONS: Mapping[str, Assumption] = {a.name: a for a in (
    Assumption("new_connection_work_share", 0.05, "fraction",
               "share of normal work spent opening connections (a surge of new connections raises work by it)"),
    Assumption("timeout", 30.0, "s", "how long a caller waits for an attempt (unless its retry policy says)"),
    Assumption("max_wait", 60.0, "s", "longest backlog callers queue in before attempts are refused"),
    Assumption("autoscale_limit", 10.0, "multiple", "most capacity an autoscaler reaches, over normal capacity"),
)}


def _unknown(parameter: Parameter) -> Unknown:
    prior = parameter.prior
    if prior.categorical:
        return Unknown(parameter.path, "choice", choices=tuple(prior.choices), reason=prior.reason)
    low, high = prior.si_bounds() if prior.unit else (float(prior.low), float(prior.high))
    kind = "count" if parameter.family == "count" else "number"
    return Unknown(parameter.path, kind, float(low), float(high), prior.scale, unit=prior.unit or "",
                   reason=prior.reason)


def _variants(incident: Incident) -> tuple[Variant, ...]:
    hypotheses = [m.id for m in incident.mechanisms if m.hypothesis] + [
        e.id for e in incident.events if e.hypothesis]
    choices = [(e.id, [a.kind for a in e.alternatives]) for e in incident.events if e.alternatives]
    variants = []
    for included in itertools.product((False, True), repeat=len(hypotheses)):
        chosen = tuple(h for h, on in zip(hypotheses, included) if on)
        for picks in itertools.product(*[kinds for _, kinds in choices]):
            alternatives = {event: kind for (event, _), kind in zip(choices, picks)}
            parts = [("with " + ", ".join(chosen)) if chosen else ("without " + ", ".join(hypotheses))
                     if hypotheses else "as published"]
            parts += [f"{event} as {kind}" for event, kind in alternatives.items()]
            variants.append(Variant("; ".join(parts), chosen, alternatives))
    return tuple(variants)


def _check_supported(incident: Incident) -> None:
    """Every mechanism, event and alternative has a component in the model; else name file, field, reason."""
    name = incident.path.name if incident.path is not None else incident.id
    for i, mechanism in enumerate(incident.mechanisms):
        if mechanism.kind not in COMPONENTS:
            raise IncidentFileError(name, f"mechanisms[{i}].kind", f"the model has no component for mechanism "
                                    f"{mechanism.kind!r} (it models: {', '.join(COMPONENTS)})")
    for i, event in enumerate(incident.events):
        for j, item in enumerate((event, *event.alternatives)):
            if item.kind not in EVENT_EFFECTS:
                where = f"events[{i}].kind" if j == 0 else f"events[{i}].alternatives[{j - 1}].kind"
                raise IncidentFileError(name, where, f"the model has no component for event {item.kind!r} "
                                        f"(it models: {', '.join(EVENT_EFFECTS)})")


def _span(incident: Incident) -> tuple[float, float]:
    """First and last second the model runs: from the earliest trigger to well after the last published time."""
    first, last = 0.0, 3600.0
    for event in incident.events:
        low, high = event.time.seconds_from(incident.origin)
        if event.kind != "deploy":
            first = min(first, low)
            last = max(last, high)
    for figure in incident.figures:
        for window in (figure.window, figure.first, figure.second, *figure.periods):
            if window is not None:
                last = max(last, window.end.time.seconds_from(incident.origin)[1])
        if figure.at is not None:
            last = max(last, figure.at.time.seconds_from(incident.origin)[1])
        if figure.quantity in ("time_to_recovery", "total_impact_time", "time_to_resolution") and figure.numeric:
            last = max(last, figure.si_bounds()[1] if math.isfinite(figure.si_bounds()[1]) else 0.0)
    return max(first - 600.0, -6 * 3600.0), min(1.2 * last + 1800.0, 36 * 3600.0)


@dataclass(frozen=True)
class Scenario:
    """The model of one incident: what inference varies (``unknowns``, ``variants``), what it fixes
    (``assumptions``), and the time grid."""

    incident: Incident
    unknowns: tuple[Unknown, ...]
    variants: tuple[Variant, ...]
    assumptions: Mapping[str, float]
    times: np.ndarray
    time_step: float

    def unknown(self, path: str) -> Unknown:
        check_unknown_path(self, path)
        for unknown in self.unknowns:
            if unknown.path == path:
                return unknown
        raise ValueError(f"scenario of {self.incident.id!r} has no unknown {path!r}")

    def midpoints(self, samples: int = 1) -> dict[str, np.ndarray]:
        """Every unknown at the middle of its prior (geometric on a log scale; the first choice)."""
        samples = check_samples(samples)
        values = {}
        for u in self.unknowns:
            if u.kind == "choice":
                values[u.path] = np.zeros(samples, dtype=int)
            else:
                mid = math.sqrt(u.low * u.high) if u.scale == "log" and u.low > 0 else (u.low + u.high) / 2
                values[u.path] = np.full(samples, round(mid) if u.kind == "count" else mid)
        return values

    def run(self, values: Mapping[str, np.ndarray], variant: np.ndarray, *,
            overrides: Mapping[str, Any] | None = None) -> Timeline:
        """The timeline at ``values`` (unknown path -> one value per sample; a choice as its index).

        ``variant`` is the index into :attr:`variants` per sample; ``overrides`` holds counterfactual
        changes (``headroom`` per infrastructure, retry ``policy``, ``shift`` of interventions,
        ``autoscaled`` per infrastructure).
        """
        variant = check_run(self, values, variant, overrides)
        variant = np.asarray(variant, dtype=int)
        settings = Settings(self, values, variant, dict(overrides or {}))
        specs = platform_specs(settings)
        runs = run_model(specs, self.times, time_step=self.time_step)
        return Timeline(self.incident, self.times, self.time_step, runs, settings.traffic_shares(),
                        {e.id: settings.time(e) for e in self.incident.events},
                        {s.id: 1.0 + np.broadcast_to(s.headroom, (len(variant),)) for s in specs}, values,
                        settings.service_shares())


def build_scenario(incident: Incident, *, time_step: float = 30.0,
                   assumptions: Mapping[str, float] | None = None) -> Scenario:
    """The model of ``incident`` (see the module docstring); raises IncidentFileError for a kind it lacks."""
    time_step, assumptions = check_build(incident, time_step, assumptions)
    if not (isinstance(time_step, (int, float)) and 1.0 <= time_step <= 600.0):
        raise ValueError(f"time_step must be a number of seconds in [1, 600], got {time_step!r}")
    _check_supported(incident)
    fixed = {name: a.value for name, a in ASSUMPTIONS.items()}
    for name, value in dict(assumptions or {}).items():
        if name not in fixed:
            raise ValueError(f"assumptions: unknown assumption {name!r} (known: {', '.join(fixed)})")
        fixed[name] = float(value)
    first, last = _span(incident)
    times = np.arange(math.floor(first / time_step) * time_step, last, time_step)
    return Scenario(incident, tuple(_unknown(p) for p in incident.unknowns), _variants(incident), fixed, times,
                    float(time_step))

