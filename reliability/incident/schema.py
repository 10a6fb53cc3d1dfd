"""The records of an incident file, schema ``reliability-incident/2`` (``data/incidents/README.md``).

Everything here is frozen and holds what the file says, with two kinds of number only: a
published value (with its sources, or the figure that publishes it) and an unknown (with its
prior). :func:`reliability.incident.load` builds these records; a model builder reads them.

Examples
--------
>>> prior = Prior(reason="not published", low=1.0, high=60.0, unit="min", scale="log")
>>> prior.si_bounds()
(60.0, 3600.0)
>>> Parameter("rollback.duration", "duration", unit="min", prior=prior).known
False
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .._records import Record, format_value
from .._validate import ArgumentTypeError, describe
from .vocabulary import FAMILIES, QUANTITIES, UNIT_SCALE, to_si

__all__ = ["IncidentFileError", "Source", "Prior", "Parameter", "Instant", "Moment", "Window", "Scope",
           "Infrastructure", "Service", "Mechanism", "Event", "Figure", "NotPublished", "Incident"]


class IncidentFileError(ValueError):
    """An incident file that cannot be used: names the file, the field path and the reason.

    Examples
    --------
    >>> error = IncidentFileError("x.yaml", "figures[2].value", "must be a number, got 'many'")
    >>> str(error), error.field
    ("x.yaml: figures[2].value: must be a number, got 'many'", 'figures[2].value')
    """

    def __init__(self, file: str, field: str, reason: str):
        self.file, self.field, self.reason = file, field, reason
        super().__init__(f"{file}: {field}: {reason}" if field else f"{file}: {reason}")

    def __reduce__(self):
        return type(self), (self.file, self.field, self.reason)


@dataclass(frozen=True, repr=False)
class Source(Record):
    """Where figures come from. ``kind`` is one of ``vocabulary.SOURCE_KINDS``."""

    id: str
    kind: str
    title: str
    publisher: str
    url: str | None = None
    reference: str = ""
    note: str = ""


@dataclass(frozen=True, repr=False)
class Prior(Record):
    """What inference may assume about an unknown: a range in ``unit`` on a ``linear`` or ``log``
    scale, or ``choices`` for a setting; always with a one-line ``reason``.

    Priors of times are in seconds from the incident's start (unit ``s``).
    """

    reason: str
    low: float | None = None
    high: float | None = None
    unit: str | None = None
    scale: str = "linear"
    choices: tuple[Any, ...] = ()
    sources: tuple[str, ...] = ()

    @property
    def categorical(self) -> bool:
        return bool(self.choices)

    def si_bounds(self) -> tuple[float, float]:
        """``(low, high)`` in SI units (seconds, fractions).

        Examples
        --------
        >>> Prior("r", low=10, high=50, unit="percent").si_bounds()
        (0.1, 0.5)
        """
        if self.categorical:
            raise ValueError(f"a prior over choices {self.choices!r} has no numeric bounds")
        return to_si(self.low, self.unit), to_si(self.high, self.unit)


@dataclass(frozen=True, repr=False)
class Parameter(Record):
    """One number or setting a model needs: published (``value``, from ``figure`` or ``sources``)
    or unknown (``prior``). ``path`` names it: ``mechanisms.<id>.<name>``, ``events.<id>.time``...
    """

    path: str
    family: str
    unit: str | None = None
    value: Any = None
    prior: Prior | None = None
    figure: str | None = None
    sources: tuple[str, ...] = ()

    @property
    def known(self) -> bool:
        return self.prior is None

    @property
    def si_value(self) -> Any:
        """The published value in SI units (a setting as written); ValueError when unknown."""
        if not self.known:
            raise ValueError(f"{self.path} was not published: it has a prior, not a value")
        return to_si(self.value, self.unit) if self.unit in UNIT_SCALE else self.value


@dataclass(frozen=True, repr=False)
class Instant(Record):
    """A time: ``exact``, ``about`` (± a tolerance), ``between`` (a published bracket) or ``unknown``
    (a prior range). ``low``/``high`` bound it in every form; ``value`` is the published time."""

    form: str
    low: _dt.datetime
    high: _dt.datetime
    value: _dt.datetime | None = None
    reason: str = ""
    sources: tuple[str, ...] = ()

    @property
    def published(self) -> bool:
        return self.form != "unknown"

    def seconds_from(self, origin: _dt.datetime) -> tuple[float, float]:
        """``(low, high)`` in seconds after ``origin``."""
        return (self.low - origin).total_seconds(), (self.high - origin).total_seconds()


@dataclass(frozen=True, repr=False)
class Moment(Record):
    """A window's end or a figure's instant: an event's time (``event`` set) or a timestamp."""

    time: Instant
    event: str | None = None


@dataclass(frozen=True, repr=False)
class Window(Record):
    start: Moment
    end: Moment


@dataclass(frozen=True, repr=False)
class Scope(Record):
    """What a figure is about: ``services`` and the ``infrastructures`` they run on. ``given`` says
    which of the two the file named (naming infrastructures means all their services)."""

    services: tuple[str, ...]
    infrastructures: tuple[str, ...]
    given: str


@dataclass(frozen=True, repr=False)
class Infrastructure(Record):
    """A platform services run on: capacity ``headroom`` over normal load, whether it ``autoscaled``
    (a setting, possibly unknown), ``autoscale_delay``, ``traffic_share`` and ``depends_on``."""

    id: str
    name: str
    headroom: Parameter
    autoscaled: Parameter
    autoscale_delay: Parameter | None = None
    traffic_share: Parameter | None = None
    depends_on: tuple[str, ...] = ()
    description: str = ""
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, repr=False)
class Service(Record):
    """Something users use, on one ``infrastructure``: its ``traffic_share`` there and its ``exposure``
    (how much of its traffic meets the infrastructure's failures, against the other services there)."""

    id: str
    name: str
    infrastructure: str
    traffic_share: Parameter | None = None
    note: str = ""
    exposure: Parameter | None = None


@dataclass(frozen=True, repr=False)
class Mechanism(Record):
    """A model component the postmortem names (or, with ``hypothesis``, that the writer proposes)."""

    id: str
    kind: str
    infrastructures: tuple[str, ...]
    parameters: Mapping[str, Parameter]
    statement: str
    sources: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    hypothesis: bool = False
    reason: str = ""
    note: str = ""

    def parameter(self, name: str) -> Parameter | None:
        """The parameter ``name`` (None when an optional one was not given)."""
        return self.parameters.get(name)


@dataclass(frozen=True, repr=False)
class Event(Record):
    """One timeline entry. ``starts``/``ends`` switch mechanisms on and off, on ``infrastructures``
    (empty: everywhere those mechanisms act); ``parameters`` holds the kind's numbers;
    ``alternatives`` (for ``unknown_intervention``) are the events it may have been."""

    id: str
    kind: str
    time: Instant
    statement: str
    sources: tuple[str, ...] = ()
    infrastructures: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    starts: tuple[str, ...] = ()
    ends: tuple[str, ...] = ()
    parameters: Mapping[str, Parameter] = field(default_factory=dict)
    until: str | None = None
    moves_from: str | None = None
    moves_to: str | None = None
    alternatives: tuple["Event", ...] = ()
    hypothesis: bool = False
    reason: str = ""
    note: str = ""

    def parameter(self, name: str) -> Parameter | None:
        return self.parameters.get(name)


@dataclass(frozen=True, repr=False)
class Figure(Record):
    """One published figure, in the unit it was published in.

    ``role`` is ``measured`` (a model is compared with it), ``fixes_parameter`` (a mechanism or
    event takes its value: then it is an assumption of the model, never a check that held) or
    ``context``. A failure figure carries its ``observation_level``; when that is ``unknown``,
    ``readings`` lists the levels to carry side by side.
    """

    id: str
    statement: str
    quantity: str
    value: Any
    unit: str
    qualifier: str
    sources: tuple[str, ...]
    confidence: str
    role: str
    tolerance: float | None = None
    range: tuple[float, float] | None = None
    observation_level: str | None = None
    readings: tuple[str, ...] = ()
    scope: Scope | None = None
    window: Window | None = None
    first: Window | None = None
    second: Window | None = None
    at: Moment | None = None
    since: Moment | None = None
    periods: tuple[Window, ...] = ()
    averaging_interval: Parameter | None = None
    same_instant_as: str | None = None
    state: str | None = None
    measure: Mapping[str, float] = field(default_factory=dict)
    fixes: tuple[str, ...] = ()
    note: str = ""

    @property
    def numeric(self) -> bool:
        return self.unit in UNIT_SCALE

    @property
    def strict(self) -> bool:
        """Whether the bound excludes its value (``less_than``, ``more_than``)."""
        return self.qualifier in ("less_than", "more_than")

    def bounds(self) -> tuple[float, float]:
        """``(low, high)`` in the figure's unit that a model value must lie in (open when :attr:`strict`).

        Examples
        --------
        >>> f = Figure("f", "s", "failure_over_window", 2.0, "percent", "at_most", (), "official", "measured")
        >>> f.bounds()
        (0.0, 2.0)
        """
        if not self.numeric:
            raise ValueError(f"figure {self.id!r} has unit {self.unit!r}: it has no bounds")
        if self.range is not None:
            return self.range
        value, tolerance = float(self.value), float(self.tolerance or 0.0)
        low, high = {"exact": (value - tolerance, value + tolerance), "about": (value - tolerance, value + tolerance),
                     "at_most": (-math.inf, value + tolerance), "at_least": (value - tolerance, math.inf),
                     "less_than": (-math.inf, value), "more_than": (value, math.inf)}[self.qualifier]
        kind = QUANTITIES.get(self.quantity)
        family = FAMILIES.get(kind.family) if kind is not None and kind.family else None
        if family is not None:
            per_si = 1.0 / UNIT_SCALE[self.unit]
            low, high = max(low, family.low * per_si), min(high, family.high * per_si)
        return low, high

    def si_bounds(self) -> tuple[float, float]:
        low, high = self.bounds()
        return to_si(low, self.unit), to_si(high, self.unit)

    def holds(self, model_value: Any) -> Any:
        """Whether a model value (in the figure's unit) lies within :meth:`bounds`; arrays broadcast."""
        low, high = self.bounds()
        value = _model_values(model_value)
        margin = 1e-12 * max(1.0, abs(low) if math.isfinite(low) else 1.0, abs(high) if math.isfinite(high) else 1.0)
        if self.strict:
            # only the published side is open: the other is the family's bound (0 % may be "less than 0.01 %")
            above = (value > low) if self.qualifier == "more_than" else (value >= low - margin)
            below = (value < high) if self.qualifier == "less_than" else (value <= high + margin)
            ok = above & below
        else:
            ok = (value >= low - margin) & (value <= high + margin)
        return bool(ok) if ok.ndim == 0 else ok

    def published_text(self) -> str:
        """The figure as published: ``about 50 percent``, ``less than 0.01 percent``, ``0.5 to 5 min``.

        Examples
        --------
        >>> Figure("f", "s", "failure_over_window", 0.01, "percent", "less_than", (), "official",
        ...        "measured").published_text()
        'less than 0.01 percent'
        """
        if not self.numeric:
            return self.value.isoformat() if hasattr(self.value, "isoformat") else str(self.value)
        if self.range is not None:
            return f"{format_value(self.range[0])} to {format_value(self.range[1])} {self.unit}"
        prefix = {"exact": "", "about": "about ", "at_most": "at most ", "at_least": "at least ",
                  "less_than": "less than ", "more_than": "more than "}[self.qualifier]
        return f"{prefix}{format_value(float(self.value))} {self.unit}"


@dataclass(frozen=True, repr=False)
class NotPublished(Record):
    """Something not published that no model infers (a database engine): context only."""

    id: str
    description: str
    note: str = ""


def _model_values(model_value: Any) -> np.ndarray:
    """Model values as floats (NaN and inf allowed: a value the model never reaches); numbers only."""
    try:
        value = None if isinstance(model_value, (bool, np.bool_, str, bytes)) else np.asarray(model_value)
    except (ValueError, TypeError):
        value = None  # a ragged sequence
    if value is None or value.dtype.kind not in "fiu":
        raise ArgumentTypeError(f"model_value must be a number or an array of numbers, got {describe(model_value)}")
    return value.astype(np.float64)


def _find(items, ident: str, what: str, owner: str):
    for item in items:
        if item.id == ident:
            return item
    known = ", ".join(item.id for item in items) or "none"
    raise ValueError(f"incident {owner!r} has no {what} {ident!r} ({what}s: {known})")


@dataclass(frozen=True)
class Incident:
    """An incident as published: sources, infrastructures, services, mechanisms, events, figures,
    and every unknown with its prior (``unknowns``, collected from wherever the file wrote them).

    Times in a model are seconds after :attr:`origin`, the published start.
    """

    id: str
    title: str
    organisation: str
    summary: str
    time_zone: str
    start: Instant
    sources: tuple[Source, ...]
    infrastructures: tuple[Infrastructure, ...]
    services: tuple[Service, ...]
    mechanisms: tuple[Mechanism, ...]
    events: tuple[Event, ...]
    figures: tuple[Figure, ...]
    unknowns: tuple[Parameter, ...]
    not_published: tuple[NotPublished, ...] = ()
    time_zone_label: str | None = None
    time_zone_note: str = ""
    path: Path | None = None

    @property
    def origin(self) -> _dt.datetime:
        """The model's time zero: the published start."""
        return self.start.value

    def seconds(self, moment: _dt.datetime) -> float:
        """Seconds from :attr:`origin` to ``moment``."""
        return (moment - self.origin).total_seconds()

    def figure(self, ident: str) -> Figure:
        return _find(self.figures, ident, "figure", self.id)

    def event(self, ident: str) -> Event:
        return _find(self.events, ident, "event", self.id)

    def mechanism(self, ident: str) -> Mechanism:
        return _find(self.mechanisms, ident, "mechanism", self.id)

    def infrastructure(self, ident: str) -> Infrastructure:
        return _find(self.infrastructures, ident, "infrastructure", self.id)

    def service(self, ident: str) -> Service:
        return _find(self.services, ident, "service", self.id)

    def source(self, ident: str) -> Source:
        return _find(self.sources, ident, "source", self.id)

    def services_on(self, infrastructure: str) -> tuple[str, ...]:
        return tuple(s.id for s in self.services if s.infrastructure == infrastructure)

    def unknown(self, path: str) -> Parameter:
        """The unknown at ``path`` (e.g. ``mechanisms.surge.multiple``)."""
        for parameter in self.unknowns:
            if parameter.path == path:
                return parameter
        raise ValueError(f"incident {self.id!r} has no unknown {path!r} "
                         f"(unknowns: {', '.join(p.path for p in self.unknowns) or 'none'})")

    def __repr__(self) -> str:
        return (f"Incident({self.id!r}, start={self.origin.isoformat()}, infrastructures="
                f"{[i.id for i in self.infrastructures]}, mechanisms={[m.kind for m in self.mechanisms]}, "
                f"events={len(self.events)}, figures={len(self.figures)}, unknowns={len(self.unknowns)})")
