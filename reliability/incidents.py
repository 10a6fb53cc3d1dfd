"""Real incidents: their published figures, a model calibrated to some of them, checked on the rest.

An incident file (``data/incidents/NAME.yaml``, schema in ``data/incidents/README.md``) lists
every figure that was published about an incident -- value, unit, how sure, tolerance, source --
and what was *not* published. :func:`load` reads and validates it. A model timeline from
:mod:`reliability.dynamics` is compared with the figures by :func:`check`.

The unpublished quantities (size of the surge, headroom of the fixed infrastructure, client
retry settings, when and how fast the rollback happened) are inferred by :func:`calibrate`: a
grid search that keeps *every* grid point whose predictions fall within the tolerances of a
stated subset of the figures (the fitted ones). The other figures are then predictions, checked
at the best-fitting point and over the whole consistent set. A fitted figure is never reported
as a check that held.

The model's own assumptions (request rates, what a connection costs, how many database servers,
health-check settings...) are not published either; they live in a :class:`Scenario`, built for
the Proton incident by :func:`proton_scenario`. Results are conditional on them, and the
notebooks say so.

Examples
--------
>>> incident = load("proton-2025-01-09")
>>> incident.figure("failed_requests").bounds()
(0.4, 0.6)
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from .dynamics import (
    Autoscaler,
    Clients,
    ConnectionCost,
    HealthCheck,
    Infrastructure,
    Service,
    Timeline,
    Trigger,
    connections_for_headroom,
    normal_offered_load,
    simulate_incident,
    simulate_sweep,
)
from .queues import erlang_b
from . import paths
from .series import alternation, recovery_time
from .retry import Backoff, FixedPointMap, parse_policy

__all__ = [
    "IncidentFileError",
    "Source",
    "Figure",
    "Unknown",
    "Incident",
    "data_dir",
    "incident_path",
    "load",
    "parse_incident",
    "measure",
    "check",
    "InfrastructureSpec",
    "Scenario",
    "proton_scenario",
    "CalibrationGrid",
    "Calibration",
    "calibrate",
    "flapping_mechanisms",
    "required_headroom",
    "policy_counterfactuals",
    "fully_migrated",
    "rollback_timing",
]

SCHEMA = "reliability-incident/1"


# ----------------------------------------------------------------------------------------
# Where the data lives
# ----------------------------------------------------------------------------------------

def data_dir() -> Path:
    """The project's ``data/`` folder: ``$RELIABILITY_DATA`` if set, else ``data/`` beside the package.

    Kept here for callers that import it from this module; :func:`reliability.paths.data_dir`
    is the one implementation.

    Examples
    --------
    >>> (data_dir() / "incidents").is_dir()
    True
    """
    return paths.data_dir()


def incident_path(name: str | os.PathLike) -> Path:
    """Path of an incident file: a name in ``data/incidents/`` (with or without ``.yaml``), or a path."""
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") and candidate.exists():
        return candidate
    if not isinstance(name, str) or not name.strip() or "/" in name or "\\" in name:
        raise ValueError(f"incident name must be a file name in data/incidents or an existing .yaml path, got {name!r}")
    stem = name[:-5] if name.endswith(".yaml") else name
    folder = data_dir() / "incidents"
    path = folder / f"{stem}.yaml"
    if not path.exists():
        available = sorted(p.stem for p in folder.glob("*.yaml"))
        raise ValueError(f"no incident named {name!r} in {folder} (available: {', '.join(available) or 'none'})")
    return path


# ----------------------------------------------------------------------------------------
# The schema
# ----------------------------------------------------------------------------------------

class IncidentFileError(ValueError):
    """A malformed incident file; the message names the file, the field and the reason."""


_UNITS_SECONDS = {"s": 1.0, "min": 60.0, "h": 3600.0}
_UNITS_NUMERIC = {"fraction": 1.0, "percent": 0.01, "ratio": 1.0, "count": 1.0, "multiple": 1.0, **_UNITS_SECONDS}
_UNITS_OTHER = {"timestamp", "date", "text"}
_QUALIFIERS = ("exact", "about", "at_most", "at_least", "range")
_CONFIDENCE = ("official", "press", "likely")
_ROLES = ("measured", "assumed", "context")
_SOURCE_KINDS = ("official", "press", "other")

# quantity -> (SI unit family, {parameter: (default or None if required, kind)})
_QUANTITIES: dict[str, tuple[str, dict[str, tuple[Any, str]]]] = {
    "failure_fraction": ("fraction", {"start_seconds": (0.0, "seconds"), "end_seconds": (None, "seconds")}),
    "recovery_time": ("seconds", {"threshold": (0.01, "probability"), "interval_seconds": (60.0, "seconds")}),
    "improvement_ratio": ("ratio", {"first": (None, "window"), "second": (None, "window")}),
    "alternation_cycle": ("seconds", {"start_seconds": (0.0, "seconds"), "end_seconds": (None, "seconds"),
                                      "interval_seconds": (10.0, "seconds"), "down_threshold": (0.9, "probability"),
                                      "up_threshold": (0.6, "probability"), "view": ("user", "view")}),
    "resolution_time": ("seconds", {"load_tolerance": (0.05, "fraction"), "threshold": (0.01, "probability"),
                                    "interval_seconds": (60.0, "seconds")}),
}
_FAMILY_UNITS = {"fraction": ("fraction", "percent"), "ratio": ("ratio",), "seconds": tuple(_UNITS_SECONDS)}


@dataclass(frozen=True)
class Source:
    id: str
    title: str
    publisher: str
    kind: str
    reference: str
    url: str | None = None


@dataclass(frozen=True)
class Figure:
    """One published figure: its value, unit, how sure, tolerance, sources, and how a model measures it.

    ``role`` is ``"measured"`` (a model can be compared with it), ``"assumed"`` (built into the
    model's structure or time origin) or ``"context"`` (not modelled). ``bounds()`` gives the
    interval a model value must fall in, in the figure's unit; ``to_si``/``from_si`` convert
    between the unit and seconds/fractions.
    """

    id: str
    statement: str
    value: Any
    unit: str
    qualifier: str
    confidence: str
    sources: tuple[str, ...]
    role: str
    tolerance: float | None = None
    tolerance_unit: str | None = None
    range: tuple[float, float] | None = None
    services: tuple[str, ...] = ()
    model: Mapping[str, Any] | None = None
    note: str = ""

    @property
    def numeric(self) -> bool:
        return self.unit in _UNITS_NUMERIC

    @property
    def scale(self) -> float:
        """SI value of one unit (seconds for durations, 0.01 for percent)."""
        if not self.numeric:
            raise ValueError(f"figure {self.id!r} has unit {self.unit!r}, which is not numeric")
        return _UNITS_NUMERIC[self.unit]

    def to_si(self, value):
        return np.asarray(value, dtype=np.float64) * self.scale if np.ndim(value) else float(value) * self.scale

    def from_si(self, value):
        return np.asarray(value, dtype=np.float64) / self.scale if np.ndim(value) else float(value) / self.scale

    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` in the figure's unit that a model value must fall in."""
        if not self.numeric:
            raise ValueError(f"figure {self.id!r} is not numeric (unit {self.unit!r}): it has no bounds")
        if self.range is not None:
            return self.range
        v, tol = float(self.value), float(self.tolerance or 0.0)
        return {
            "about": (v - tol, v + tol),
            "exact": (v - tol, v + tol),
            "at_most": (-math.inf, v + tol),
            "at_least": (v - tol, math.inf),
        }[self.qualifier]

    def holds(self, model_value) -> Any:
        """Whether a model value (in the figure's unit) falls within :meth:`bounds` (arrays broadcast)."""
        low, high = self.bounds()
        value = np.asarray(model_value, dtype=np.float64)
        ok = (value >= low - 1e-12) & (value <= high + 1e-12)
        return bool(ok) if ok.ndim == 0 else ok

    def tolerance_text(self) -> str:
        if not self.numeric:
            if self.tolerance is not None:
                return f"± {self.tolerance:g} {self.tolerance_unit}"
            return ""
        if self.range is not None:
            return f"[{self.range[0]:g}, {self.range[1]:g}] {self.unit}"
        tol = float(self.tolerance or 0.0)
        return {"about": f"± {tol:g} {self.unit}", "exact": f"± {tol:g} {self.unit}",
                "at_most": f"≤ {float(self.value) + tol:g} {self.unit}",
                "at_least": f"≥ {float(self.value) - tol:g} {self.unit}"}[self.qualifier]

    def published_text(self) -> str:
        if self.numeric:
            if self.range is not None:
                # a range stands for wording such as "minute to minute": show it, not its nominal point
                return f"{self.range[0]:g} to {self.range[1]:g} {self.unit}"
            prefix = {"about": "about ", "at_most": "at most ", "at_least": "at least ", "exact": ""}[self.qualifier]
            return f"{prefix}{float(self.value):g} {self.unit}"
        return str(self.value)


@dataclass(frozen=True)
class Unknown:
    id: str
    description: str
    unit: str
    note: str = ""


@dataclass(frozen=True)
class Incident:
    """An incident as published: metadata, sources, services, infrastructures, figures, unknowns."""

    id: str
    title: str
    organisation: str
    date: _dt.date
    time_zone: str
    start: _dt.datetime
    summary: str
    sources: tuple[Source, ...]
    infrastructures: Mapping[str, Mapping[str, Any]]
    services: Mapping[str, Mapping[str, Any]]
    figures: tuple[Figure, ...]
    unknowns: tuple[Unknown, ...]
    path: Path | None = None

    def figure(self, figure_id: str) -> Figure:
        for f in self.figures:
            if f.id == figure_id:
                return f
        raise ValueError(f"incident {self.id!r} has no figure {figure_id!r} "
                         f"(figures: {', '.join(f.id for f in self.figures)})")

    def infrastructure_of(self, service_ids: Sequence[str]) -> str:
        infras = {self.services[s]["infrastructure"] for s in service_ids}
        if len(infras) != 1:
            raise ValueError(f"services {list(service_ids)} run on several infrastructures: {sorted(infras)}")
        return infras.pop()

    def figures_frame(self) -> pd.DataFrame:
        """One row per figure: id, what was published, unit, tolerance, confidence, role, sources."""
        return pd.DataFrame([{
            "figure": f.id, "published": f.published_text(), "unit": f.unit, "tolerance": f.tolerance_text(),
            "confidence": f.confidence, "role": f.role, "services": ", ".join(f.services),
            "sources": ", ".join(f.sources), "statement": f.statement,
        } for f in self.figures])

    def unknowns_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"unknown": u.id, "description": u.description, "unit": u.unit, "note": u.note}
                             for u in self.unknowns])

    def __repr__(self) -> str:
        return (f"Incident({self.id!r}, start={self.start.isoformat()}, services={list(self.services)}, "
                f"figures={len(self.figures)}, unknowns={len(self.unknowns)})")


class _Reader:
    """Validating accessors that name the field path in every error."""

    def __init__(self, origin: str):
        self.origin = origin

    def fail(self, path: str, reason: str):
        raise IncidentFileError(f"{self.origin}: {path}: {reason}")

    def mapping(self, value, path):
        if not isinstance(value, Mapping):
            self.fail(path, f"must be a mapping, got {type(value).__name__} {value!r}")
        return value

    def get(self, mapping, key, path, *, required=True, default=None):
        if key not in mapping or mapping[key] is None:
            if required:
                self.fail(f"{path}.{key}" if path else key, "is required")
            return default
        return mapping[key]

    def text(self, mapping, key, path, *, required=True, default=None):
        value = self.get(mapping, key, path, required=required, default=default)
        if value is default and not required:
            return value
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{path}.{key}" if path else key, f"must be a non-empty string, got {value!r}")
        return " ".join(value.split())

    def number(self, value, path, *, minimum=None, strict=False):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(path, f"must be a number, got {value!r}")
        value = float(value)
        if not math.isfinite(value):
            self.fail(path, f"must be finite, got {value!r}")
        if minimum is not None and (value < minimum or (strict and value == minimum)):
            self.fail(path, f"must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
        return value

    def choice(self, mapping, key, path, options, *, required=True, default=None):
        value = self.get(mapping, key, path, required=required, default=default)
        if value not in options:
            self.fail(f"{path}.{key}", f"must be one of {', '.join(options)}, got {value!r}")
        return value

    def id_list(self, mapping, key, path, known, what, *, required=True):
        value = self.get(mapping, key, path, required=required, default=[])
        if not isinstance(value, list) or (required and not value):
            self.fail(f"{path}.{key}", f"must be a non-empty list of {what} ids, got {value!r}")
        for i, item in enumerate(value):
            if item not in known:
                self.fail(f"{path}.{key}[{i}]", f"unknown {what} {item!r} (known: {', '.join(known) or 'none'})")
        return tuple(value)

    def known_keys(self, mapping, path, allowed):
        """Reject a misspelt or unknown field instead of silently ignoring it."""
        for key in mapping:
            if key not in allowed:
                self.fail(f"{path}.{key}", f"is not a field here (fields: {', '.join(allowed)})")

    def entries(self, mapping, key):
        """A top-level non-empty list of objects with unique ids: (the list, their ids)."""
        items = self.get(mapping, key, "")
        if not isinstance(items, list) or not items:
            self.fail(key, "must be a non-empty list")
        return items, self.unique_ids(items, key)

    def unique_ids(self, items, path):
        ids = []
        for i, item in enumerate(items):
            self.mapping(item, f"{path}[{i}]")
            ident = self.text(item, "id", f"{path}[{i}]")
            if ident in ids:
                self.fail(f"{path}[{i}].id", f"duplicate id {ident!r}")
            ids.append(ident)
        return ids


def _parse_time(reader: _Reader, value, path) -> _dt.datetime:
    if isinstance(value, _dt.datetime):
        stamp = value
    elif isinstance(value, str):
        try:
            stamp = _dt.datetime.fromisoformat(value)
        except ValueError:
            reader.fail(path, f"must be an ISO 8601 timestamp with a UTC offset, got {value!r}")
    else:
        reader.fail(path, f"must be an ISO 8601 timestamp with a UTC offset, got {value!r}")
    if stamp.tzinfo is None or stamp.utcoffset() is None:
        reader.fail(path, f"must carry a UTC offset (e.g. +01:00), got {value!r}")
    return stamp


_FIGURE_FIELDS = ("id", "statement", "value", "unit", "qualifier", "tolerance", "range", "tolerance_unit",
                  "confidence", "sources", "services", "role", "model", "note")


def _parse_figure(reader: _Reader, raw, path, sources, services, zone, service_infrastructure=None) -> Figure:
    reader.known_keys(raw, path, _FIGURE_FIELDS)
    fid = reader.text(raw, "id", path)
    statement = reader.text(raw, "statement", path)
    unit = reader.get(raw, "unit", path)
    if unit not in _UNITS_NUMERIC and unit not in _UNITS_OTHER:
        reader.fail(f"{path}.unit", f"unknown unit {unit!r} (known: {', '.join([*_UNITS_NUMERIC, *_UNITS_OTHER])})")
    qualifier = reader.choice(raw, "qualifier", path, _QUALIFIERS)
    confidence = reader.choice(raw, "confidence", path, _CONFIDENCE)
    role = reader.choice(raw, "role", path, _ROLES, required=False, default="measured")
    figure_sources = reader.id_list(raw, "sources", path, sources, "source")
    figure_services = reader.id_list(raw, "services", path, services, "service", required=False)
    note = reader.text(raw, "note", path, required=False, default="") or ""
    value = reader.get(raw, "value", path)
    tolerance = raw.get("tolerance")
    tolerance_unit = raw.get("tolerance_unit")
    value_range = raw.get("range")
    if unit in _UNITS_NUMERIC:
        value = reader.number(value, f"{path}.value")
        if value_range is not None:
            if qualifier != "range":
                reader.fail(f"{path}.range", f"is only allowed with qualifier 'range', got qualifier {qualifier!r}")
            if not (isinstance(value_range, list) and len(value_range) == 2):
                reader.fail(f"{path}.range", f"must be [low, high], got {value_range!r}")
            low = reader.number(value_range[0], f"{path}.range[0]")
            high = reader.number(value_range[1], f"{path}.range[1]")
            if not low <= value <= high:
                reader.fail(f"{path}.range", f"must contain the value {value:g}, got [{low:g}, {high:g}]")
            value_range = (low, high)
        elif qualifier == "range":
            reader.fail(f"{path}.range", "is required with qualifier 'range'")
        if tolerance is None and value_range is None:
            reader.fail(f"{path}.tolerance", "is required for a numeric figure (or give a range)")
        if tolerance is not None and value_range is not None:
            reader.fail(f"{path}.tolerance", "must not be given with a range: the range replaces the tolerance")
        if tolerance is not None:
            tolerance = reader.number(tolerance, f"{path}.tolerance", minimum=0.0)
        if tolerance_unit is not None:
            reader.fail(f"{path}.tolerance_unit", f"is only for timestamps; the tolerance is in {unit!r}")
        if unit == "fraction" and not 0.0 <= value <= 1.0:
            reader.fail(f"{path}.value", f"a fraction must be in [0, 1], got {value!r}")
    elif qualifier == "range" or value_range is not None:
        reader.fail(f"{path}.range" if value_range is not None else f"{path}.qualifier",
                    f"a range needs a numeric figure, got unit {unit!r}")
    elif unit == "timestamp":
        stamp = _parse_time(reader, value, f"{path}.value")
        if zone is not None and stamp.utcoffset() != stamp.astimezone(zone).utcoffset():
            reader.fail(f"{path}.value", f"UTC offset {stamp.utcoffset()} does not match the incident's time zone "
                        f"on that date ({stamp.astimezone(zone).utcoffset()})")
        value = stamp
        if tolerance is not None:
            tolerance = reader.number(tolerance, f"{path}.tolerance", minimum=0.0)
            if tolerance_unit not in _UNITS_SECONDS:
                reader.fail(f"{path}.tolerance_unit", f"must be one of s, min, h for a timestamp, got {tolerance_unit!r}")
    elif unit == "date":
        if isinstance(value, _dt.date):
            value = value.isoformat()
        try:
            value = _dt.date.fromisoformat(str(value))
        except ValueError:
            reader.fail(f"{path}.value", f"must be a date YYYY-MM-DD, got {value!r}")
    else:  # text
        if not isinstance(value, str) or not value.strip():
            reader.fail(f"{path}.value", f"must be a non-empty string for unit 'text', got {value!r}")
        if tolerance is not None:
            reader.fail(f"{path}.tolerance", "a text figure has no tolerance")
    model = raw.get("model")
    if role == "measured":
        if unit not in _UNITS_NUMERIC:
            reader.fail(f"{path}.role", f"a measured figure must be numeric, got unit {unit!r}")
        if model is None:
            reader.fail(f"{path}.model", "is required for a measured figure (what quantity of a model to compare)")
    if model is not None:
        model = dict(reader.mapping(model, f"{path}.model"))
        quantity = model.get("quantity")
        if quantity not in _QUANTITIES:
            reader.fail(f"{path}.model.quantity", f"must be one of {', '.join(_QUANTITIES)}, got {quantity!r}")
        family, spec = _QUANTITIES[quantity]
        if unit not in _FAMILY_UNITS[family]:
            reader.fail(f"{path}.unit", f"quantity {quantity!r} is measured in {', '.join(_FAMILY_UNITS[family])}, "
                        f"got {unit!r}")
        for key in model:
            if key != "quantity" and key not in spec:
                reader.fail(f"{path}.model.{key}", f"is not a parameter of {quantity!r} "
                            f"(parameters: {', '.join(spec) or 'none'})")
        for key, (default, kind) in spec.items():
            mpath = f"{path}.model.{key}"
            if key not in model:
                if default is None:
                    reader.fail(mpath, "is required")
                model[key] = default
                continue
            if kind == "window":
                w = model[key]
                if not (isinstance(w, list) and len(w) == 2):
                    reader.fail(mpath, f"must be [start_seconds, end_seconds], got {w!r}")
                a = reader.number(w[0], f"{mpath}[0]", minimum=0.0)
                b = reader.number(w[1], f"{mpath}[1]", minimum=0.0)
                if not a < b:
                    reader.fail(mpath, f"start must be before end, got {w!r}")
                model[key] = (a, b)
            elif kind == "view":
                if model[key] not in ("user", "service"):
                    reader.fail(mpath, f"must be 'user' or 'service', got {model[key]!r}")
            elif kind == "probability":
                model[key] = reader.number(model[key], mpath, minimum=0.0)
                if model[key] > 1:
                    reader.fail(mpath, f"must be <= 1, got {model[key]!r}")
            else:
                model[key] = reader.number(model[key], mpath, minimum=0.0)
        if quantity == "alternation_cycle" and model["up_threshold"] > model["down_threshold"]:
            reader.fail(f"{path}.model.up_threshold", "must be <= down_threshold")
        if "end_seconds" in spec and not model["start_seconds"] < model["end_seconds"]:
            reader.fail(f"{path}.model.end_seconds", "must be after start_seconds")
        if not figure_services:
            reader.fail(f"{path}.services", "is required when a figure has a model quantity")
        if service_infrastructure is not None:
            infras = sorted({service_infrastructure[s] for s in figure_services})
            if len(infras) != 1:
                reader.fail(f"{path}.services", f"a modelled figure must concern services of one infrastructure, "
                            f"got {list(figure_services)} on {', '.join(infras)}")
    return Figure(id=fid, statement=statement, value=value, unit=unit, qualifier=qualifier, confidence=confidence,
                  sources=figure_sources, role=role, tolerance=tolerance, tolerance_unit=tolerance_unit,
                  range=value_range, services=figure_services, model=model, note=note)


def parse_incident(document: Any, origin: str = "<incident>") -> Incident:
    """Validate a parsed incident document (a dict, as from YAML) and build an :class:`Incident`.

    Raises :class:`IncidentFileError` (a ValueError) naming the field and the reason.
    """
    reader = _Reader(origin)
    doc = reader.mapping(document, "document")
    schema = reader.get(doc, "schema", "")
    if schema != SCHEMA:
        reader.fail("schema", f"must be {SCHEMA!r}, got {schema!r}")
    ident = reader.text(doc, "id", "")
    title = reader.text(doc, "title", "")
    organisation = reader.text(doc, "organisation", "")
    summary = reader.text(doc, "summary", "")
    zone_name = reader.text(doc, "time_zone", "")
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        reader.fail("time_zone", f"must be an IANA time zone such as Europe/Zurich, got {zone_name!r}")
    start = _parse_time(reader, reader.get(doc, "start", ""), "start")
    if start.utcoffset() != start.astimezone(zone).utcoffset():
        reader.fail("start", f"UTC offset {start.utcoffset()} does not match {zone_name} on that date "
                    f"({start.astimezone(zone).utcoffset()})")
    raw_date = reader.get(doc, "date", "")
    try:
        date = raw_date if isinstance(raw_date, _dt.date) and not isinstance(raw_date, _dt.datetime) \
            else _dt.date.fromisoformat(str(raw_date))
    except ValueError:
        reader.fail("date", f"must be a date YYYY-MM-DD, got {raw_date!r}")
    if start.date() != date:
        reader.fail("date", f"must be the local date of start ({start.date().isoformat()}), got {date.isoformat()}")

    raw_sources, source_ids = reader.entries(doc, "sources")
    sources = []
    for i, raw in enumerate(raw_sources):
        path = f"sources[{i}]"
        reader.known_keys(raw, path, ("id", "title", "publisher", "kind", "reference", "url", "note"))
        url = raw.get("url")
        if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
            reader.fail(f"{path}.url", f"must be an http(s) URL, got {url!r}")
        sources.append(Source(id=source_ids[i], title=reader.text(raw, "title", path),
                              publisher=reader.text(raw, "publisher", path),
                              kind=reader.choice(raw, "kind", path, _SOURCE_KINDS),
                              reference=reader.text(raw, "reference", path), url=url))

    raw_infras, infra_ids = reader.entries(doc, "infrastructures")
    infrastructures = {}
    for i, raw in enumerate(raw_infras):
        path = f"infrastructures[{i}]"
        reader.known_keys(raw, path, ("id", "name", "autoscaled", "description"))
        autoscaled = reader.get(raw, "autoscaled", path)
        if not isinstance(autoscaled, bool):
            reader.fail(f"{path}.autoscaled", f"must be true or false, got {autoscaled!r}")
        infrastructures[infra_ids[i]] = {"name": reader.text(raw, "name", path), "autoscaled": autoscaled,
                                         "description": reader.text(raw, "description", path, required=False,
                                                                    default="")}
    raw_services, service_ids = reader.entries(doc, "services")
    services = {}
    for i, raw in enumerate(raw_services):
        path = f"services[{i}]"
        reader.known_keys(raw, path, ("id", "name", "infrastructure", "note"))
        infra = reader.get(raw, "infrastructure", path)
        if infra not in infrastructures:
            reader.fail(f"{path}.infrastructure", f"unknown infrastructure {infra!r} (known: {', '.join(infra_ids)})")
        services[service_ids[i]] = {"name": reader.text(raw, "name", path), "infrastructure": infra,
                                    "note": reader.text(raw, "note", path, required=False, default="") or ""}

    raw_figures, _ = reader.entries(doc, "figures")
    service_infrastructure = {sid: spec["infrastructure"] for sid, spec in services.items()}
    figures = tuple(_parse_figure(reader, raw, f"figures[{i}]", source_ids, service_ids, zone, service_infrastructure)
                    for i, raw in enumerate(raw_figures))
    raw_unknowns = doc.get("unknowns") or []
    if not isinstance(raw_unknowns, list):
        reader.fail("unknowns", f"must be a list, got {raw_unknowns!r}")
    unknown_ids = reader.unique_ids(raw_unknowns, "unknowns")
    for i, raw in enumerate(raw_unknowns):
        reader.known_keys(raw, f"unknowns[{i}]", ("id", "description", "unit", "note"))
    unknowns = tuple(Unknown(id=unknown_ids[i], description=reader.text(raw, "description", f"unknowns[{i}]"),
                             unit=reader.text(raw, "unit", f"unknowns[{i}]"),
                             note=reader.text(raw, "note", f"unknowns[{i}]", required=False, default="") or "")
                     for i, raw in enumerate(raw_unknowns))
    allowed = {"schema", "id", "title", "organisation", "date", "time_zone", "start", "summary", "sources",
               "infrastructures", "services", "figures", "unknowns"}
    extra = sorted(set(doc) - allowed)
    if extra:
        reader.fail(extra[0], f"is not a field of {SCHEMA} (fields: {', '.join(sorted(allowed))})")
    return Incident(id=ident, title=title, organisation=organisation, date=date, time_zone=zone_name, start=start,
                    summary=summary, sources=tuple(sources), infrastructures=infrastructures, services=services,
                    figures=figures, unknowns=unknowns)


def load(name: str | os.PathLike) -> Incident:
    """Read and validate an incident file by name (``"proton-2025-01-09"``) or path.

    Raises
    ------
    IncidentFileError
        A malformed file: the message names the file, the field and the reason.
    """
    import yaml

    path = incident_path(name)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise IncidentFileError(f"{path.name}: not valid YAML: {exc}") from None
    incident = parse_incident(document, path.name)
    return replace(incident, path=path)


# ----------------------------------------------------------------------------------------
# Measuring a model the way a figure was measured
# ----------------------------------------------------------------------------------------

def _bin(values: np.ndarray, n: int) -> np.ndarray:
    usable = (values.shape[0] // n) * n
    return values[:usable].reshape(-1, n, *values.shape[1:]).sum(axis=1)


def _ratio(num, den):
    return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)


def _steps(seconds: float, dt: float, what: str) -> int:
    n = int(round(seconds / dt))
    if abs(n * dt - seconds) > 1e-6 * max(1.0, seconds):
        raise ValueError(f"{what}={seconds:g} s must be a whole number of model steps ({dt:g} s)")
    return n


def _measure_arrays(quantity: str, params: Mapping[str, Any], attempts: np.ndarray, failures: np.ndarray,
                    offered_load: np.ndarray, dt: float, normal_load, user_failure=None) -> np.ndarray:
    """A figure's quantity, per point, from per-step arrays (steps, points). SI units."""
    attempts = np.asarray(attempts, dtype=np.float64)
    failures = np.asarray(failures, dtype=np.float64)
    T = attempts.shape[0]
    horizon = T * dt

    def window(a, b):
        if b > horizon + 1e-9:
            raise ValueError(f"the model run ({horizon:g} s) ends before the figure's window [{a:g}, {b:g}] s")
        i, j = _steps(a, dt, "window start"), _steps(b, dt, "window end")
        return _ratio(failures[i:j].sum(axis=0), attempts[i:j].sum(axis=0))

    if quantity == "failure_fraction":
        return window(params["start_seconds"], params["end_seconds"])
    if quantity == "improvement_ratio":
        first, second = window(*params["first"]), window(*params["second"])
        out = _ratio(second, first)
        return np.where((first == 0) & (second > 0), np.inf, out)
    if quantity in ("recovery_time", "resolution_time"):
        n = _steps(params["interval_seconds"], dt, "interval_seconds")
        frac = _ratio(_bin(failures, n), _bin(attempts, n))
        bad = frac > params["threshold"]
        if quantity == "resolution_time":
            load = _bin(np.asarray(offered_load, dtype=np.float64), n) / n
            bad |= load > (1.0 + params["load_tolerance"]) * np.asarray(normal_load, dtype=np.float64)
        # bad bins as failure fractions of 1 and good ones of 0: the one recovery rule, at threshold 0
        bin_starts = np.arange(bad.shape[0]) * n * dt
        return recovery_time(bin_starts, bad.astype(np.float64), threshold=0.0)
    if quantity == "alternation_cycle":
        n = _steps(params["interval_seconds"], dt, "interval_seconds")
        i, j = _steps(params["start_seconds"], dt, "start_seconds"), _steps(params["end_seconds"], dt, "end_seconds")
        if j > T:
            raise ValueError(f"the model run ({horizon:g} s) ends before the figure's window end {params['end_seconds']:g} s")
        if params.get("view", "user") == "user":
            if user_failure is None:
                raise ValueError("the user view of alternation needs the user failure probability series")
            frac = _bin(np.asarray(user_failure, dtype=np.float64)[i:j], n) / n
        else:
            frac = _ratio(_bin(failures[i:j], n), _bin(attempts[i:j], n))
        return np.array([alternation(frac[:, g], n * dt, params["down_threshold"], params["up_threshold"]).cycle
                         for g in range(frac.shape[1])], dtype=np.float64)
    raise ValueError(f"unknown quantity {quantity!r}")


def _timeline_arrays(timeline: Timeline, services: Sequence[str]):
    series = timeline.series
    names = set(series["service"].unique())
    missing = [s for s in services if s not in names]
    if missing:
        raise ValueError(f"the timeline has no service {missing[0]!r} (services: {', '.join(sorted(names))})")
    mine = series[series["service"].isin(services)]
    infras = mine["infrastructure"].unique()
    if len(infras) != 1:
        raise ValueError(f"services {list(services)} run on several infrastructures in the timeline: {list(infras)}")
    grouped = mine.groupby("time", sort=True)
    attempts = grouped["attempts"].sum().to_numpy()[:, None]
    failures = grouped["failures"].sum().to_numpy()[:, None]
    load = grouped["offered_load"].first().to_numpy()[:, None]
    user = grouped["user_failure_probability"].first().to_numpy()[:, None]
    params = timeline.parameters
    infra_services = [s for s in params["services"] if s.infrastructure == infras[0]]
    normal = normal_offered_load(sum(s.request_rate for s in infra_services), params["cost"])
    return attempts, failures, load, normal, user


def measure(timeline: Timeline, figure: Figure) -> float:
    """The model's value of a measured figure, in the figure's unit.

    Examples
    --------
    >>> incident = load("proton-2025-01-09")
    >>> scenario = proton_scenario()
    >>> quiet = scenario.timeline(surge_multiple=1.0, headroom=1.0, horizon=7200.0, time_step=5.0)
    >>> measure(quiet, incident.figure("failed_requests"))
    0.0
    """
    if figure.model is None:
        raise ValueError(f"figure {figure.id!r} has no model quantity (role {figure.role!r})")
    attempts, failures, load, normal, user = _timeline_arrays(timeline, figure.services)
    value = _measure_arrays(figure.model["quantity"], figure.model, attempts, failures, load,
                            timeline.time_step, normal, user)[0]
    return float(figure.from_si(value))


def _as_figures(figures) -> tuple[Figure, ...]:
    if isinstance(figures, Incident):
        return figures.figures
    if isinstance(figures, Figure):
        return (figures,)
    out = tuple(figures)
    for f in out:
        if not isinstance(f, Figure):
            raise ValueError(f"figures must be an Incident or Figure objects, got {f!r}")
    return out


def check(timeline: Timeline, figures, *, fitted: Sequence[str] = (), calibration: "Calibration | None" = None
          ) -> pd.DataFrame:
    """Compare a model timeline with published figures: one row per figure.

    Columns: ``figure``, ``published`` (value as published, with unit), ``model`` (the model's
    value in the same unit; NaN for figures without a model quantity), ``unit``, ``tolerance``
    (the interval that counts as agreement), ``holds`` (True/False for a prediction, None for a
    fitted, assumed or unmodelled figure), ``status`` (``"fitted"``, ``"holds"``, ``"fails"``,
    ``"assumed"`` or ``"not modelled"``) and, with a ``calibration``, ``consistent_share``: the
    share of the grid points consistent with the fitted figures at which the prediction holds.

    A figure used to fit the model (``fitted``, or ``calibration.fitted``) is never reported
    as a check that held: its status is ``"fitted"``.
    """
    figures = _as_figures(figures)
    fitted = set(fitted) | (set(calibration.fitted) if calibration is not None else set())
    known = {f.id for f in figures}
    unknown = sorted(fitted - known)
    if unknown:
        raise ValueError(f"fitted names figures that are not among the figures checked: {unknown}")
    shares = calibration.prediction_shares() if calibration is not None else {}
    rows = []
    for f in figures:
        row = {"figure": f.id, "published": f.published_text(), "unit": f.unit, "tolerance": f.tolerance_text()}
        if f.role == "measured":
            value = measure(timeline, f)
            row["model"] = value
            if f.id in fitted:
                row["holds"], row["status"] = None, "fitted"
            else:
                ok = f.holds(value)
                row["holds"], row["status"] = ok, "holds" if ok else "fails"
        else:
            row["model"] = math.nan
            row["holds"] = None
            row["status"] = "assumed" if f.role == "assumed" else "not modelled"
        if calibration is not None:
            row["consistent_share"] = shares.get(f.id, math.nan) if f.id not in fitted else math.nan
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["holds"] = frame["holds"].astype(object)
    return frame


# ----------------------------------------------------------------------------------------
# The model's assumptions for an incident
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InfrastructureSpec:
    """An infrastructure sized by its headroom over the normal load of the services on it."""

    name: str
    servers: int
    headroom: float
    health_check: HealthCheck | None = None
    autoscaler: Autoscaler | None = None
    routing: str = "balanced"
    connection_limit: Any = None

    def __post_init__(self):
        if self.routing not in ("balanced", "sharded"):
            raise ValueError(f"InfrastructureSpec.routing must be 'balanced' or 'sharded', got {self.routing!r}")
        if isinstance(self.servers, bool) or not isinstance(self.servers, (int, np.integer)) or self.servers < 1:
            raise ValueError(f"InfrastructureSpec.servers must be a whole number >= 1, got {self.servers!r}")
        if not (isinstance(self.headroom, (int, float)) and math.isfinite(self.headroom) and self.headroom > -1):
            raise ValueError(f"InfrastructureSpec.headroom must be a finite number > -1, got {self.headroom!r}")

    def build(self, request_rate: float, cost: ConnectionCost, headroom: float | None = None) -> Infrastructure:
        h = self.headroom if headroom is None else headroom
        k = connections_for_headroom(request_rate, cost, self.servers, h)
        return Infrastructure(self.name, self.servers, k, health_check=self.health_check,
                              connection_limit=self.connection_limit, autoscaler=self.autoscaler,
                              routing=self.routing)


@dataclass(frozen=True)
class Scenario:
    """Everything the model assumes about an incident that was not published.

    ``services`` carry base request rates; ``infrastructures`` are sized by headroom;
    ``calibrated`` names the infrastructure whose headroom is inferred. ``clients`` gives the
    backoff and timeout; its retry policy is replaced by ``FixedRetries(max_retries)`` where
    the retry count is a calibrated unknown.
    """

    services: tuple[Service, ...]
    infrastructures: tuple[InfrastructureSpec, ...]
    cost: ConnectionCost
    clients: Clients
    calibrated: str

    def __post_init__(self):
        names = [i.name for i in self.infrastructures]
        if self.calibrated not in names:
            raise ValueError(f"Scenario.calibrated must name one of the infrastructures {names}, got {self.calibrated!r}")
        for s in self.services:
            if s.infrastructure not in names:
                raise ValueError(f"service {s.name!r} runs on {s.infrastructure!r}, not among {names}")

    def spec(self, name: str) -> InfrastructureSpec:
        for i in self.infrastructures:
            if i.name == name:
                return i
        raise ValueError(f"no infrastructure {name!r} in the scenario")

    def request_rate(self, infrastructure: str) -> float:
        return sum(s.request_rate for s in self.services if s.infrastructure == infrastructure)

    def normal_load(self, infrastructure: str) -> float:
        return normal_offered_load(self.request_rate(infrastructure), self.cost)

    def infrastructure(self, name: str, headroom: float | None = None) -> Infrastructure:
        return self.spec(name).build(self.request_rate(name), self.cost, headroom)

    def clients_with(self, max_retries: int | None = None, policy=None) -> Clients:
        if policy is not None:
            return replace(self.clients, policy=policy)
        if max_retries is None:
            return self.clients
        return replace(self.clients, policy=parse_policy(int(max_retries), name="max_retries"))

    def services_on(self, name: str) -> list[Service]:
        return [s for s in self.services if s.infrastructure == name]

    def timeline(self, *, surge_multiple: float, headroom: float | None = None, max_retries: int | None = None,
                 rollback_start: float = math.inf, rollback_duration: float = 0.0, horizon: float = 4.5 * 3600,
                 time_step: float = 1.0, seed=0, policy=None, infrastructures: Sequence[str] | None = None,
                 services: Sequence[Service] | None = None, specs: Sequence[InfrastructureSpec] | None = None
                 ) -> Timeline:
        """Run the scenario for one set of the unknowns (``headroom`` of the calibrated infrastructure)."""
        specs = list(self.infrastructures if specs is None else specs)
        services = list(self.services if services is None else services)
        names = [s.name for s in specs] if infrastructures is None else list(infrastructures)
        built = []
        for spec in specs:
            if spec.name not in names:
                continue
            rate = sum(s.request_rate for s in services if s.infrastructure == spec.name)
            if rate <= 0:
                continue
            h = headroom if (spec.name == self.calibrated and headroom is not None) else None
            built.append(spec.build(rate, self.cost, h))
        chosen = [s for s in services if s.infrastructure in {b.name for b in built}]
        trigger = Trigger(new_connection_multiple=surge_multiple, rollback_start=rollback_start,
                          rollback_duration=rollback_duration)
        return simulate_incident(chosen, built, cost=self.cost, clients=self.clients_with(max_retries, policy),
                                 trigger=trigger, horizon=horizon, time_step=time_step, seed=seed)


def proton_scenario(*, mail_rate: float = 40_000.0, calendar_rate: float = 10_000.0,
                    other_rates: Mapping[str, float] | None = None, service_time: float = 0.01,
                    setup_time: float = 0.01, new_connection_fraction: float = 0.1, legacy_servers: int = 8,
                    legacy_headroom: float = 1.0, kubernetes_servers: int = 8,
                    kubernetes_target_utilisation: float = 0.6, autoscaler_reaction_delay: float = 60.0,
                    autoscaler_provisioning_time: float = 60.0, kubernetes_max_servers: int = 96,
                    health_check_interval: float = 10.0, unhealthy_threshold: int = 3, healthy_threshold: int = 2,
                    routing: str = "sharded", backoff_base: float = 1.0, backoff_cap: float = 30.0,
                    jitter: str = "full", timeout: float = 10.0, max_retries: int = 1) -> Scenario:
    """The model's assumptions for the Proton incident (none of these numbers was published).

    Defaults: Mail 40 000 and Calendar 10 000 requests/s and 30 000/s over the four migrated
    services (an illustrative scale: results depend on ratios, and on scale only through
    Poisson noise and the size of each server's connection pool); a request holds a
    database connection slot 10 ms, opening a connection costs another 10 ms and 10 % of
    requests normally open one (so set-up is 9 % of normal database time); 8 fixed database
    servers behind a balancer with common health-check settings (10 s, 3 failures out, 2
    passes in); the Kubernetes side starts at 60 % utilisation and scales out after a
    60 s metrics delay and 60 s pod start-up; clients back off 1 s doubling to 30 s with full
    jitter and time out after 10 s.

    Examples
    --------
    >>> scenario = proton_scenario()
    >>> round(scenario.normal_load("legacy"), 1), scenario.calibrated
    (550.0, 'legacy')
    """
    other = {"vpn": 5_000.0, "pass": 10_000.0, "drive": 12_000.0, "wallet": 3_000.0} \
        if other_rates is None else dict(other_rates)
    services = [Service("mail", "legacy", mail_rate), Service("calendar", "legacy", calendar_rate)]
    services += [Service(name, "kubernetes", rate) for name, rate in other.items()]
    check = HealthCheck(health_check_interval, unhealthy_threshold, healthy_threshold)
    legacy = InfrastructureSpec("legacy", legacy_servers, legacy_headroom, health_check=check, routing=routing)
    kubernetes = InfrastructureSpec(
        "kubernetes", kubernetes_servers, 1.0 / kubernetes_target_utilisation - 1.0, health_check=check,
        autoscaler=Autoscaler(kubernetes_target_utilisation, autoscaler_reaction_delay, autoscaler_provisioning_time,
                              kubernetes_max_servers))
    cost = ConnectionCost(service_time, setup_time, new_connection_fraction)
    clients = Clients(policy=parse_policy(max_retries, name="max_retries"),
                      backoff=Backoff(backoff_base, backoff_cap, jitter), timeout=timeout)
    return Scenario(tuple(services), (legacy, kubernetes), cost, clients, calibrated="legacy")


# ----------------------------------------------------------------------------------------
# Calibration: every grid point consistent with the fitted figures
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CalibrationGrid:
    """The grid of unknowns searched by :func:`calibrate` (times in seconds)."""

    surge_multiples: tuple[float, ...] = tuple(np.round(np.geomspace(3.0, 100.0, 17), 3))
    headrooms: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)
    max_retries: tuple[int, ...] = (0, 1, 3)
    rollback_starts: tuple[float, ...] = tuple(60.0 * np.arange(60, 151, 15))
    rollback_durations: tuple[float, ...] = tuple(60.0 * np.array([0, 30, 60, 90, 120]))
    time_step: float = 5.0
    horizon: float = 4.0 * 3600

    def __post_init__(self):
        for name in ("surge_multiples", "headrooms", "max_retries", "rollback_starts", "rollback_durations"):
            values = tuple(getattr(self, name))
            if not values:
                raise ValueError(f"CalibrationGrid.{name} must not be empty")
            arr = np.asarray(values, dtype=np.float64)
            if not np.isfinite(arr).all() or (arr < 0).any():
                raise ValueError(f"CalibrationGrid.{name} must hold finite numbers >= 0, got {values!r}")
            object.__setattr__(self, name, values)
        if any(float(r) != int(r) for r in self.max_retries):
            raise ValueError(f"CalibrationGrid.max_retries must be whole numbers, got {self.max_retries!r}")
        if any(h <= -1 for h in self.headrooms):
            raise ValueError(f"CalibrationGrid.headrooms must be > -1, got {self.headrooms!r}")

    @property
    def size(self) -> int:
        return (len(self.surge_multiples) * len(self.headrooms) * len(self.max_retries)
                * len(self.rollback_starts) * len(self.rollback_durations))


_UNKNOWNS = ("surge_multiple", "headroom", "max_retries", "rollback_start", "rollback_duration")


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate` found.

    ``points`` has one row per grid point simulated in full (those that passed the first-hour
    figures), with the unknowns, ``load_multiple`` (database time per request during the
    surge over normal), ``overload`` (that load over the fixed capacity, ``load_multiple /
    (1 + headroom)``), the model value of every measured figure (in its unit), a
    ``<figure>_holds`` column for each, ``consistent`` (all fitted figures hold) and
    ``misfit`` (sum over fitted figures of the squared distance to the published value in
    units of the tolerance). ``screened`` has every grid point of the first stage.
    ``best`` is the consistent point of least misfit.
    """

    incident: str
    fitted: tuple[str, ...]
    predicted: tuple[str, ...]
    points: pd.DataFrame = field(repr=False)
    screened: pd.DataFrame = field(repr=False)
    best: Mapping[str, Any]
    grid: CalibrationGrid = field(repr=False)

    @property
    def consistent(self) -> pd.DataFrame:
        return self.points[self.points["consistent"]].reset_index(drop=True)

    def ranges(self) -> pd.DataFrame:
        """Range of each unknown over the consistent points, with the grid searched and the best point."""
        rows = []
        cons = self.consistent
        for name in (*_UNKNOWNS, "load_multiple", "overload"):
            values = cons[name]
            searched = self.screened[name] if name in self.screened else self.points[name]
            if name == "overload" and name not in self.screened:
                searched = self.screened["load_multiple"] / (1.0 + self.screened["headroom"])
            rows.append({"unknown": name, "low": float(values.min()), "high": float(values.max()),
                         "best": float(self.best[name]), "grid_low": float(searched.min()),
                         "grid_high": float(searched.max()),
                         "values": ", ".join(f"{v:g}" for v in sorted(values.unique()))})
        return pd.DataFrame(rows)

    def prediction_shares(self) -> dict[str, float]:
        cons = self.consistent
        return {f: float(cons[f"{f}_holds"].mean()) for f in self.predicted}

    def __repr__(self) -> str:
        return (f"Calibration({self.incident!r}, fitted={list(self.fitted)}, grid points simulated="
                f"{len(self.points)}, consistent={int(self.points['consistent'].sum())}, best={dict(self.best)})")


def _surge_sweep(scenario: Scenario, infra_name: str, *, headroom, surge, rollback_start, rollback_duration,
                 max_retries: int, horizon: float, time_step: float, seed):
    spec = scenario.spec(infra_name)
    rate = scenario.request_rate(infra_name)
    k = connections_for_headroom(rate, scenario.cost, spec.servers, np.asarray(headroom, dtype=np.float64))
    infra = spec.build(rate, scenario.cost)
    # The services of one infrastructure share its servers and their fate: one merged stream
    # is statistically the same (a sum of Poisson streams) and halves the work.
    merged = [Service("+".join(s.name for s in scenario.services_on(infra_name)), infra_name, rate)]
    caps = np.asarray(max_retries)
    clients = scenario.clients_with(int(caps.max()))
    return simulate_sweep(infra, merged, cost=scenario.cost, clients=clients, horizon=horizon, time_step=time_step,
                          seed=seed, connections_per_server=k, new_connection_multiple=surge,
                          rollback_start=rollback_start, rollback_duration=rollback_duration,
                          max_retries=caps if caps.ndim else None)


def _figure_values(figure: Figure, sweep, normal_load: float) -> np.ndarray:
    si = _measure_arrays(figure.model["quantity"], figure.model, sweep.attempts, sweep.failures,
                         sweep.offered_load, sweep.time_step, normal_load, sweep.user_failure_probability)
    return figure.from_si(si)


def _window_end(figure: Figure) -> float:
    model = figure.model
    q = model["quantity"]
    if q in ("failure_fraction", "alternation_cycle"):
        return float(model["end_seconds"])
    if q == "improvement_ratio":
        return float(max(model["first"][1], model["second"][1]))
    return math.inf  # recovery and resolution need the whole run


def _misfit(figure: Figure, values: np.ndarray) -> np.ndarray:
    low, high = figure.bounds()
    if math.isfinite(low) and math.isfinite(high):
        centre, half = 0.5 * (low + high), max(0.5 * (high - low), 1e-12)
    else:
        centre, half = float(figure.value), max(float(figure.tolerance or 0.0), 0.1 * abs(float(figure.value)), 1e-12)
    with np.errstate(invalid="ignore"):
        out = ((np.asarray(values, dtype=np.float64) - centre) / half) ** 2
    return np.where(np.isfinite(out), out, 1e6)


def _describe_miss(figure: Figure, values: np.ndarray) -> str:
    finite = values[np.isfinite(values)]
    span = (f"{finite.min():.3g} to {finite.max():.3g}" if finite.size else "none finite")
    if finite.size != values.size:
        span += f" ({values.size - finite.size} points never)"
    low, high = figure.bounds()
    return (f"{figure.id} must be in [{low:g}, {high:g}] {figure.unit}; over the grid the model gives {span} "
            f"{figure.unit}")


def calibrate(incident: Incident, scenario: Scenario, *, fit: Sequence[str] = ("failed_requests", "full_service"),
              grid: CalibrationGrid | None = None, seed=0) -> Calibration:
    """Infer the unknowns: keep every grid point whose fitted figures fall within their tolerances.

    Two stages keep it cheap. Figures whose window ends before the earliest rollback start
    (the first hour) do not depend on the rollback, so the grid of surge x headroom x retries
    is screened on them first with short runs; the survivors are crossed with every rollback
    start and duration and simulated over the whole horizon, where the remaining fitted
    figures decide. Every measured figure of the calibrated infrastructure that is not fitted
    is then a prediction, evaluated at every simulated point; figures of other infrastructures
    (the autoscaled services) are predicted from runs of that infrastructure at each surge and
    retry setting that stayed consistent.

    Raises
    ------
    ValueError
        If a fitted figure is unknown or not measured, or if no grid point reproduces the
        fitted figures (the message names the figure and the range the grid reaches).
    """
    if not isinstance(incident, Incident):
        raise ValueError(f"incident must be an Incident (from load()), got {incident!r}")
    if not isinstance(scenario, Scenario):
        raise ValueError(f"scenario must be a Scenario, got {scenario!r}")
    grid = CalibrationGrid() if grid is None else grid
    fit = tuple(fit)
    if not fit:
        raise ValueError("fit must name at least one figure")
    target = scenario.calibrated
    fitted = []
    for fid in fit:
        figure = incident.figure(fid)
        if figure.role != "measured":
            raise ValueError(f"figure {fid!r} cannot be fitted: its role is {figure.role!r}, not 'measured'")
        if incident.infrastructure_of(figure.services) != target:
            raise ValueError(f"figure {fid!r} concerns infrastructure {incident.infrastructure_of(figure.services)!r}; "
                             f"only figures of the calibrated infrastructure {target!r} can be fitted")
        fitted.append(figure)
    measured = [f for f in incident.figures if f.role == "measured"]
    own = [f for f in measured if incident.infrastructure_of(f.services) == target]
    other = [f for f in measured if incident.infrastructure_of(f.services) != target]
    predicted = [f for f in measured if f.id not in fit]
    dt = float(grid.time_step)
    normal = scenario.normal_load(target)

    # Stage 1: figures that end before any rollback can start
    first_rollback = min(grid.rollback_starts)
    early = [f for f in fitted if _window_end(f) <= first_rollback]
    if early:
        stage1_end = max(_window_end(f) for f in early)
        stage1_horizon = dt * math.ceil(stage1_end / dt)
    surges = np.asarray(grid.surge_multiples, dtype=np.float64)
    heads = np.asarray(grid.headrooms, dtype=np.float64)
    S, H = np.meshgrid(surges, heads, indexing="ij")
    screened = pd.DataFrame({
        "surge_multiple": np.tile(S.ravel(), len(grid.max_retries)),
        "headroom": np.tile(H.ravel(), len(grid.max_retries)),
        "max_retries": np.repeat(np.asarray(grid.max_retries, dtype=np.int64), S.size),
    })
    if early:
        sweep = _surge_sweep(scenario, target, headroom=screened.headroom.to_numpy(),
                             surge=screened.surge_multiple.to_numpy(), rollback_start=math.inf, rollback_duration=0.0,
                             max_retries=screened.max_retries.to_numpy(), horizon=stage1_horizon, time_step=dt,
                             seed=seed)
        passed = np.ones(len(screened), dtype=bool)
        for f in early:
            values = _figure_values(f, sweep, normal)
            screened[f.id] = values
            passed &= f.holds(values)
        screened["passed"] = passed
    else:
        screened["passed"] = True
    screened["load_multiple"] = scenario.cost.load_multiple(screened["surge_multiple"].to_numpy())
    if not screened["passed"].any():
        reasons = "; ".join(_describe_miss(f, screened[f.id].to_numpy()) for f in early
                            if not screened[f.id].pipe(lambda s: f.holds(s.to_numpy())).any())
        raise ValueError(f"impossible calibration targets: no grid point reproduces the fitted figures ({reasons}). "
                         "Widen the grid or check the scenario's assumptions")

    # Stage 2: survivors x rollback start x rollback duration, over the whole horizon
    survivors = screened[screened["passed"]][["surge_multiple", "headroom", "max_retries"]]
    roll = pd.DataFrame([(a, b) for a in grid.rollback_starts for b in grid.rollback_durations],
                        columns=["rollback_start", "rollback_duration"])
    full = survivors.merge(roll, how="cross")
    horizon = dt * math.ceil(float(grid.horizon) / dt)
    points = full.reset_index(drop=True)
    sweep = _surge_sweep(scenario, target, headroom=points.headroom.to_numpy(), surge=points.surge_multiple.to_numpy(),
                         rollback_start=points.rollback_start.to_numpy(),
                         rollback_duration=points.rollback_duration.to_numpy(),
                         max_retries=points.max_retries.to_numpy(), horizon=horizon, time_step=dt, seed=seed)
    for f in own:
        points[f.id] = _figure_values(f, sweep, normal)
    points["load_multiple"] = scenario.cost.load_multiple(points["surge_multiple"].to_numpy())
    # the surged load (before retries) over the capacity it met: what the figures pin down best
    points["overload"] = points["load_multiple"] / (1.0 + points["headroom"])
    consistent = np.ones(len(points), dtype=bool)
    misfit = np.zeros(len(points))
    for f in fitted:
        consistent &= f.holds(points[f.id].to_numpy())
        misfit += _misfit(f, points[f.id].to_numpy())
    points["consistent"] = consistent
    points["misfit"] = misfit
    if not consistent.any():
        reasons = "; ".join(_describe_miss(f, points[f.id].to_numpy()) for f in fitted
                            if not f.holds(points[f.id].to_numpy()).all())
        raise ValueError(f"impossible calibration targets: no grid point reproduces all fitted figures together "
                         f"({reasons}). Widen the grid or check the scenario's assumptions")

    # Figures of other infrastructures: one run per (surge, retries) that stayed consistent
    for f in other:
        infra = incident.infrastructure_of(f.services)
        end = _window_end(f)
        h = dt * math.ceil((min(end, 3600.0) if not math.isfinite(end) else end) / dt)
        combos = points.loc[points["consistent"], ["surge_multiple", "max_retries"]].drop_duplicates()
        sweep = _surge_sweep(scenario, infra, headroom=scenario.spec(infra).headroom,
                             surge=combos.surge_multiple.to_numpy(), rollback_start=math.inf, rollback_duration=0.0,
                             max_retries=combos.max_retries.to_numpy(), horizon=h, time_step=dt, seed=seed)
        values = {(m, r): v for m, r, v in zip(combos.surge_multiple, combos.max_retries,
                                                _figure_values(f, sweep, scenario.normal_load(infra)))}
        points[f.id] = [values.get((m, r), math.nan) for m, r in zip(points.surge_multiple, points.max_retries)]
    for f in measured:
        points[f"{f.id}_holds"] = f.holds(points[f.id].to_numpy())
    best_row = points[points["consistent"]].sort_values(["misfit", "surge_multiple"]).iloc[0]
    best = {name: (int(best_row[name]) if name == "max_retries" else float(best_row[name]))
            for name in (*_UNKNOWNS, "load_multiple", "overload")}
    return Calibration(incident=incident.id, fitted=fit, predicted=tuple(f.id for f in predicted), points=points,
                       screened=screened, best=best, grid=grid)


# ----------------------------------------------------------------------------------------
# Which mechanism flaps, and the counterfactuals
# ----------------------------------------------------------------------------------------

def flapping_mechanisms(scenario: Scenario, *, surge_multiple: float, headroom: float, max_retries: int,
                        horizon: float = 3600.0, time_step: float = 1.0, settle: float = 300.0,
                        interval: float = 10.0, seed=0) -> tuple[pd.DataFrame, dict[str, Timeline]]:
    """Run the calibrated infrastructure with each candidate flapping mechanism on its own.

    Mechanisms: ``none`` (loss model, jittered retries), ``synchronised retries`` (backoff
    without jitter: retries come in waves), ``health checks (balanced)`` (ejection and
    re-admission of interchangeable replicas), ``health checks (sharded)`` (each user on one
    server: the user sees their shard's state), ``connection limit`` (a server that hits its
    limit refuses until pooled connections, 60 s idle lifetime, drain to half). Returns a
    table -- one row per mechanism and view (``service``: all requests; ``one user``: a user
    whose data is on server 0 when data is sharded, else the service) with the dominant
    period, its significance, the mean failure share, the share of ``interval`` means that are
    down, the median down and up run lengths and their sum (see
    :func:`reliability.dynamics.flapping_summary`) -- and the timelines.
    """
    from .dynamics import ConnectionLimit, flapping_summary

    spec = scenario.spec(scenario.calibrated)
    base = replace(spec, health_check=None, connection_limit=None, routing="balanced")
    check_spec = spec.health_check or HealthCheck()
    jitterless = None
    if scenario.clients.backoff is not None:
        b = scenario.clients.backoff
        jitterless = Backoff(b.base, b.cap, "none")
    variants = {
        "none": (base, None),
        "synchronised retries": (base, jitterless),
        "health checks (balanced)": (replace(base, health_check=check_spec), None),
        "health checks (sharded)": (replace(base, health_check=check_spec, routing="sharded"), None),
        "connection limit": (replace(base, connection_limit=ConnectionLimit(60.0), routing="sharded"), None),
    }
    rows, timelines = [], {}
    for name, (variant, backoff) in variants.items():
        specs = [variant]
        sc = scenario if backoff is None else replace(scenario, clients=replace(scenario.clients, backoff=backoff))
        retries = max(int(max_retries), 1) if name == "synchronised retries" else int(max_retries)
        tl = sc.timeline(surge_multiple=surge_multiple, headroom=headroom, max_retries=retries, horizon=horizon,
                         time_step=time_step, seed=seed, specs=specs, infrastructures=[variant.name])
        timelines[name] = tl
        aggregate = tl.aggregate(interval, by="infrastructure")
        for view, column in (("service", "failure_fraction"), ("one user", "user_failure_probability")):
            summary = flapping_summary(aggregate, time_step=interval, start=settle, column=column,
                                       max_period=min(900.0, (horizon - settle) / 3))
            rows.append({"mechanism": name, "view": view, "max_retries": retries, **summary})
    return pd.DataFrame(rows), timelines


def _steady_failure(k: float, per_server_rate: float, hold_first: float, hold_retry: float, policy) -> float:
    """Healthy mean-field blocking of one server: the least root of ``p = B(k, rate (h1 + (A(p) - 1) hr))``,
    the state a service reaches up from ``p = 0`` (the one retry fixed-point solver, reliability.retry)."""
    fixed_point = FixedPointMap(
        lambda _, amplification: erlang_b(k, per_server_rate * (hold_first + (amplification - 1.0) * hold_retry)),
        1, None if policy is None else policy.amplification)
    return float(fixed_point.healthiest()[0])


def required_headroom(scenario: Scenario, surge_multiples, *, targets=(0.01, 0.001), max_retries: int = 1,
                      verify: bool = True, horizon: float = 1800.0, time_step: float = 5.0, seed=0) -> pd.DataFrame:
    """Headroom the calibrated infrastructure needed to keep failures at or below each target during the surge.

    Mean field first: for each surge, the least connection slots per server ``k`` (continuous)
    whose healthy retry equilibrium ``p = B(k, rate_per_server * (h1 + (A(p) - 1) hr))`` --
    iterated up from ``p = 0``, so it is the state a healthy service stays in -- is at most
    the target; headroom = ``servers * k / normal load - 1``. With ``verify`` the time-stepped
    model (health checks and all) is run at that headroom for ``horizon`` seconds and its
    failure fraction reported beside it.
    """
    from scipy import optimize

    surges = np.atleast_1d(np.asarray(surge_multiples, dtype=np.float64))
    if not np.isfinite(surges).all() or (surges < 0).any():
        raise ValueError(f"surge_multiples must be finite and >= 0, got {surge_multiples!r}")
    targets = np.atleast_1d(np.asarray(targets, dtype=np.float64))
    if ((targets <= 0) | (targets >= 1)).any():
        raise ValueError(f"targets must be in (0, 1), got {targets!r}")
    name = scenario.calibrated
    spec = scenario.spec(name)
    rate = scenario.request_rate(name) / spec.servers
    policy = scenario.clients_with(max_retries).policy
    normal = scenario.normal_load(name)
    rows = []
    for m in surges:
        h1 = float(scenario.cost.holding_time(m))
        hr = float(scenario.cost.retry_holding_time(m))
        for target in targets:
            # At the healthy fixed point p = target the offered load is known, so k solves
            # B(k, a) = target directly; the iteration from p = 0 then confirms that this is the
            # state a healthy server settles in (else fall back to a search on the iteration).
            amplification = 1.0 if policy is None else float(policy.amplification(target))
            load = rate * (h1 + (amplification - 1.0) * hr)
            high = max(2.0, 2.0 * load)
            while float(erlang_b(high, load)) > target:
                high *= 2.0
            k = optimize.brentq(lambda x: float(erlang_b(x, load)) - target, 1e-9, high, xtol=1e-10)
            if abs(_steady_failure(k, rate, h1, hr, policy) - target) > 1e-6 * target:
                k = optimize.brentq(lambda x: _steady_failure(x, rate, h1, hr, policy) - target, 1e-9, 4 * high,
                                    xtol=1e-9)
            rows.append({"surge_multiple": float(m), "target": float(target), "connections_per_server": k,
                         "headroom": spec.servers * k / normal - 1.0,
                         "load_multiple": float(scenario.cost.load_multiple(m))})
    frame = pd.DataFrame(rows)
    if verify:
        sweep = _surge_sweep(scenario, name, headroom=frame.headroom.to_numpy(), surge=frame.surge_multiple.to_numpy(),
                             rollback_start=math.inf, rollback_duration=0.0, max_retries=max_retries,
                             horizon=horizon, time_step=time_step, seed=seed)
        frame["simulated_failure_fraction"] = sweep.failure_fraction(horizon)[0]
    return frame


def _summary_row(timeline: Timeline, incident: Incident, figure_ids: Sequence[str]) -> dict:
    row = {}
    for fid in figure_ids:
        row[fid] = measure(timeline, incident.figure(fid))
    series = timeline.series
    legacy = series[series["service"].isin(incident.figure(figure_ids[0]).services)]
    row["requests_failed_share"] = float(legacy["failed_requests"].sum() / max(legacy["offered"].sum(), 1.0))
    row["amplification"] = float(legacy["attempts"].sum() / max(legacy["offered"].sum(), 1.0))
    return row


def policy_counterfactuals(incident: Incident, scenario: Scenario, best: Mapping[str, Any], policies: Mapping[str, Any],
                           *, horizon: float = 4.5 * 3600, time_step: float = 1.0, seed=0) -> pd.DataFrame:
    """The calibrated incident replayed with other client retry policies (one row per policy).

    Columns: the policy, the first-hour failure fraction (of attempts, as a server sees it),
    time to full service and the improvement ratio as the figures define them,
    ``requests_failed_share`` (requests the clients gave up on for good, over all requests:
    what users felt) and ``amplification`` (attempts per request).
    """
    rows = []
    for label, policy in policies.items():
        tl = scenario.timeline(surge_multiple=best["surge_multiple"], headroom=best["headroom"],
                               rollback_start=best["rollback_start"], rollback_duration=best["rollback_duration"],
                               horizon=horizon, time_step=time_step, seed=seed,
                               policy=policy if policy is not None else None,
                               max_retries=0 if policy is None else None,
                               infrastructures=[scenario.calibrated])
        row = {"policy": label}
        row.update(_summary_row(tl, incident, ["failed_requests", "full_service", "second_hour_improved"]))
        rows.append(row)
    return pd.DataFrame(rows)


def fully_migrated(incident: Incident, scenario: Scenario, best: Mapping[str, Any], *, horizon: float = 4.5 * 3600,
                   time_step: float = 1.0, seed=0) -> tuple[dict, Timeline]:
    """The same incident had Mail and Calendar already run on the autoscaled infrastructure.

    The calibrated infrastructure's services move to the autoscaled one, sized like it (its
    servers scaled with the total load, same target utilisation); returns their first-hour
    failure fraction, time to full service and the timeline.
    """
    target = scenario.calibrated
    autoscaled = [s for s in scenario.infrastructures if s.autoscaler is not None]
    if not autoscaled:
        raise ValueError("the scenario has no autoscaled infrastructure to migrate to")
    dest = autoscaled[0]
    moved = tuple(replace(s, infrastructure=dest.name) if s.infrastructure == target else s for s in scenario.services)
    total = sum(s.request_rate for s in moved if s.infrastructure == dest.name)
    before = scenario.request_rate(dest.name)
    servers = max(dest.servers, int(math.ceil(dest.servers * total / before)))
    auto = dest.autoscaler
    grown = replace(dest, servers=servers,
                    autoscaler=replace(auto, max_servers=max(auto.max_servers, int(math.ceil(auto.max_servers * total / before)))))
    tl = scenario.timeline(surge_multiple=best["surge_multiple"], max_retries=best["max_retries"],
                           rollback_start=best["rollback_start"], rollback_duration=best["rollback_duration"],
                           horizon=horizon, time_step=time_step, seed=seed, services=moved, specs=[grown],
                           infrastructures=[dest.name])
    row = _summary_row(tl, incident, ["failed_requests", "full_service"])
    return row, tl


def rollback_timing(incident: Incident, scenario: Scenario, best: Mapping[str, Any], rollback_starts, *,
                    horizon: float = 6 * 3600, time_step: float = 5.0, seed=0) -> pd.DataFrame:
    """Time to full service and requests failed had the rollback begun at other times (one run per start)."""
    starts = np.atleast_1d(np.asarray(rollback_starts, dtype=np.float64))
    if not np.isfinite(starts).all() or (starts < 0).any():
        raise ValueError(f"rollback_starts must be finite and >= 0, got {rollback_starts!r}")
    figure = incident.figure("full_service")
    target = scenario.calibrated
    sweep = _surge_sweep(scenario, target, headroom=best["headroom"], surge=best["surge_multiple"],
                         rollback_start=starts, rollback_duration=best["rollback_duration"],
                         max_retries=best["max_retries"], horizon=horizon, time_step=time_step, seed=seed)
    normal = scenario.normal_load(target)
    full_service = _figure_values(figure, sweep, normal)
    failed = sweep.failures.astype(np.float64).sum(axis=0)
    return pd.DataFrame({"rollback_start": starts, "rollback_start_min": starts / 60.0,
                         "full_service_h": full_service if figure.unit == "h" else figure.to_si(full_service) / 3600.0,
                         "failed_attempts": failed})
