"""The words of schema ``reliability-incident/2``: units, source kinds, and the kinds of mechanism,
event and figure quantity a model of an incident has to implement.

The tables here are the contract between an incident file and the model built from it: the
loader accepts exactly these kinds (anything else is refused with the list below), and a model
builder implements one component per mechanism kind and per event kind. Each kind says which
parameters it takes; a parameter's *family* says which units it may be written in and what
range its value must lie in.

Examples
--------
>>> sorted(MECHANISM_KINDS)[:3]
['capacity_loss', 'connection_ceiling', 'contention']
>>> to_si(75, "percent"), from_si(4500.0, "min")
(0.75, 75.0)
>>> EVENT_KINDS["rollback"].category, sorted(EVENT_KINDS["rollback"].parameters)
('intervention', ['duration', 'share', 'stages'])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .._records import Record
from .._validate import ArgumentTypeError, as_array, describe, is_scalar, output

__all__ = [
    "SCHEMA", "PREVIOUS_SCHEMA", "UNIT_SCALE", "NON_NUMERIC_UNITS", "Family", "FAMILIES", "ParameterSpec",
    "MechanismKind", "EventKind", "QuantityKind", "MECHANISM_KINDS", "EVENT_KINDS", "QUANTITIES",
    "SOURCE_KINDS", "VERIFIED_SOURCE_KINDS", "OFFICIAL_SOURCE_KINDS", "OBSERVATION_LEVELS", "READINGS",
    "QUALIFIERS", "CONFIDENCE", "ROLES", "CAPACITY_STATES", "to_si", "from_si", "unit_family",
]

SCHEMA = "reliability-incident/2"
PREVIOUS_SCHEMA = "reliability-incident/1"

#: SI value of one unit: durations in seconds, shares as fractions, counts and multiples as is.
UNIT_SCALE: Mapping[str, float] = {
    "fraction": 1.0, "percent": 0.01, "ratio": 1.0, "multiple": 1.0, "count": 1.0,
    "ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0,
}
NON_NUMERIC_UNITS = ("timestamp", "date", "text")
DURATION_UNITS = ("ms", "s", "min", "h", "d")


@dataclass(frozen=True, repr=False)
class Family(Record):
    """Which units a value of one kind may be written in, and the range of its SI value."""

    units: tuple[str, ...]
    low: float = 0.0
    high: float = math.inf
    whole: bool = False


#: Value families. ``share``: a part of a whole (0-100 %); ``amount``: relative to a normal level,
#: may exceed 100 % (capacity added, headroom); ``multiple``: times the normal level.
FAMILIES: Mapping[str, Family] = {
    "share": Family(("fraction", "percent"), 0.0, 1.0),
    "amount": Family(("fraction", "percent")),
    "multiple": Family(("multiple", "ratio")),
    "ratio": Family(("ratio", "fraction", "percent")),
    "duration": Family(DURATION_UNITS),
    "count": Family(("count",), whole=True),
    "size": Family(("count", "multiple")),
}


@dataclass(frozen=True, repr=False)
class ParameterSpec(Record):
    """One parameter of a mechanism, event, infrastructure or figure.

    ``family`` is a key of :data:`FAMILIES`, or ``"choice"`` for a setting picked from
    ``choices``. ``minimum`` (SI) tightens the family's lower bound.
    """

    family: str
    meaning: str
    required: bool = True
    choices: tuple[Any, ...] = ()
    minimum: float | None = None


@dataclass(frozen=True, repr=False)
class MechanismKind(Record):
    """A model component the postmortem names. ``groups`` nests parameters under a key (``policy``)."""

    meaning: str
    parameters: Mapping[str, ParameterSpec]
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, repr=False)
class EventKind(Record):
    """One kind of timeline event.

    ``category``: ``trigger`` (switches a mechanism on or off), ``change`` (a deploy; may precede
    the incident's start), ``intervention`` (what people or systems did), ``marker`` (an
    observation such as detection or recovery; no effect on a model, compared with it).
    """

    meaning: str
    category: str
    parameters: Mapping[str, ParameterSpec] = field(default_factory=dict)
    needs_starts: bool = False
    needs_ends: bool = False
    needs_infrastructures: bool = False


@dataclass(frozen=True, repr=False)
class QuantityKind(Record):
    """What a figure measures. ``family`` is None for context figures (not modelled).

    ``required``/``optional`` name the time fields the quantity takes (``window``, ``first``,
    ``second``, ``at``, ``from``, ``periods``); ``measure`` maps each reading setting to its
    default and kind (``share`` or ``seconds``).
    """

    meaning: str
    family: str | None
    failure: bool
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    measure: Mapping[str, tuple[float, str]] = field(default_factory=dict)


def _p(family: str, meaning: str, **kw) -> ParameterSpec:
    return ParameterSpec(family=family, meaning=meaning, **kw)


MECHANISM_KINDS: Mapping[str, MechanismKind] = {
    "surge_new_connections": MechanismKind(
        "While active, clients open new connections at `multiple` times the normal rate.",
        {"multiple": _p("multiple", "new-connection rate over normal", minimum=1.0)}),
    "surge_requests": MechanismKind(
        "While active, the offered load (requests, or the work each costs) is `multiple` times normal.",
        {"multiple": _p("multiple", "offered load over normal", minimum=1.0)}),
    "capacity_loss": MechanismKind(
        "While active, `share` of the capacity is unavailable, built up over `ramp` (a step without it); "
        "`routing` says whether traffic meant for the lost part still goes there and fails (`stays`) "
        "or moves to what is left (`moves`).",
        {"share": _p("share", "share of capacity lost"),
         "ramp": _p("duration", "time over which the loss builds up", required=False),
         "routing": _p("choice", "where traffic for the lost capacity goes", choices=("stays", "moves"))}),
    "connection_ceiling": MechanismKind(
        "A hard limit on concurrent connections (or slots): work beyond `size` waits up to "
        "`wait_timeout`, then fails.",
        {"size": _p("size", "the limit: a count, or a multiple of the connections in use at normal peak"),
         "level": _p("choice", "where the limit sits", required=False,
                     choices=("process", "host", "pooler", "proxy", "database")),
         "wait_timeout": _p("duration", "how long work waits for a connection", required=False)}),
    "retry_storm": MechanismKind(
        "Callers at `layer` retry failed or timed-out attempts under `policy`; the retries add load.",
        {"layer": _p("choice", "who retries", choices=("end_user_clients", "calling_service", "internal_nodes")),
         "max_retries": _p("count", "retries after the first attempt"),
         "backoff": _p("choice", "wait between retries", choices=("none", "constant", "exponential")),
         "base_delay": _p("duration", "first wait between retries", required=False),
         "max_delay": _p("duration", "longest wait between retries", required=False),
         "timeout": _p("duration", "how long a caller waits before giving up on an attempt", required=False)},
        groups={"policy": ("max_retries", "backoff", "base_delay", "max_delay", "timeout")}),
    "contention": MechanismKind(
        "Service slows under load (lock contention, spin-waits): at saturation each request takes "
        "`slowdown` times as long as when idle.",
        {"slowdown": _p("multiple", "service time at saturation over idle", minimum=1.0)}),
}

_AMOUNT = _p("amount", "capacity, relative to the infrastructure's normal capacity")
EVENT_KINDS: Mapping[str, EventKind] = {
    "trigger_start": EventKind("A trigger begins: the mechanisms in `starts` switch on (for `duration`, "
                               "if given).", "trigger",
                               {"duration": _p("duration", "how long the trigger lasts", required=False)},
                               needs_starts=True),
    "trigger_end": EventKind("A trigger ends by itself: the mechanisms in `ends` switch off over `ramp`.",
                             "trigger", {"ramp": _p("duration", "time to switch off fully", required=False)},
                             needs_ends=True),
    "deploy": EventKind("A software or configuration change reaches production; may start or end mechanisms "
                        "and may precede the incident's start (a latent change).", "change"),
    "rollback": EventKind("A change is undone: the mechanisms in `ends` switch off over `duration`, in "
                          "`stages` equal steps (a ramp without), for `share` of the fleet (all without).",
                          "intervention",
                          {"duration": _p("duration", "time from the first to the last server"),
                           "stages": _p("count", "steps of the rollback", required=False, minimum=1.0),
                           "share": _p("share", "share of the fleet rolled back", required=False)},
                          needs_ends=True),
    "hotfix": EventKind("A fix (or a correction of configuration) is applied; may end mechanisms, or start "
                        "one (a fix that causes a new dip).", "intervention"),
    "load_shedding": EventKind("`share` of the offered load is refused at the door, until the event in `until` "
                               "(to the end without).", "intervention",
                               {"share": _p("share", "share of load shed")}, needs_infrastructures=True),
    "capacity_added": EventKind("Capacity `amount` is added (manual scale-out, a new fleet).", "intervention",
                                {"amount": _AMOUNT}, needs_infrastructures=True),
    "capacity_lost": EventKind("Capacity `amount` is lost in one step and stays lost.", "intervention",
                               {"amount": _AMOUNT}, needs_infrastructures=True),
    "failover": EventKind("`share` of the load moves from infrastructure `from` to `to`.", "intervention",
                          {"share": _p("share", "share of the load moved")}),
    "autoscaled": EventKind("An autoscaler adds capacity `amount`.", "intervention", {"amount": _AMOUNT},
                            needs_infrastructures=True),
    "unknown_intervention": EventKind("Something ended or eased the impact, but the statement does not say "
                                      "what: `alternatives` lists the interventions it may have been.",
                                      "intervention", needs_infrastructures=True),
    **{kind: EventKind(meaning, "marker", needs_infrastructures=needs) for kind, meaning, needs in (
        ("impact_start", "Customer impact begins.", True),
        ("detected", "The organisation's monitoring noticed.", False),
        ("reported", "Customers reported the problem.", False),
        ("escalated", "The problem reached the people who fixed it.", False),
        ("identified", "The cause was found.", False),
        ("status_post", "A status-page post.", False),
        ("recovering", "Impact begins to decline.", True),
        ("mitigated", "Impact is declared mitigated.", True),
        ("recovered", "Customer impact ends.", True),
        ("resolved", "The incident is declared resolved.", True),
    )},
}

_RECOVERY = {"threshold": (0.01, "share"), "interval_seconds": (60.0, "seconds")}
QUANTITIES: Mapping[str, QuantityKind] = {
    "peak_failure_rate": QuantityKind("Highest failure share over any `averaging_interval` in `window` "
                                      "(the whole incident without).", "share", True, optional=("window",)),
    "failure_over_window": QuantityKind("Failed over total in `window`.", "share", True, required=("window",)),
    "availability_at": QuantityKind("Share served successfully around the instant `at`.", "share", True,
                                    required=("at",), measure={"interval_seconds": (60.0, "seconds")}),
    "time_to_recovery": QuantityKind("Time from `from` (the start without) after which no interval fails "
                                     "more than `threshold`.", "duration", True, optional=("from",),
                                     measure=_RECOVERY),
    "total_impact_time": QuantityKind("Total time failing more than `threshold` in `window` (the whole incident "
                                      "without); `periods` are the published periods it adds up.", "duration", True,
                                      optional=("window", "periods"), measure=_RECOVERY),
    "improvement_between_windows": QuantityKind("Failure share in `second` over that in `first`.", "ratio", True,
                                                required=("first", "second")),
    "alternation_cycle": QuantityKind("One down-plus-up cycle of the failure share in `window` (down above "
                                      "`down_threshold`, up again below `up_threshold`).", "duration", True,
                                      required=("window",),
                                      measure={"interval_seconds": (10.0, "seconds"), "down_threshold": (0.9, "share"),
                                               "up_threshold": (0.6, "share")}),
    "time_to_resolution": QuantityKind("Time from `from` after which load is within `load_tolerance` of normal "
                                       "and no interval fails more than `threshold`.", "duration", True,
                                       optional=("from",), measure={"load_tolerance": (0.05, "share"), **_RECOVERY}),
    "capacity_share": QuantityKind("Share of an infrastructure's capacity lost, available or added at `at`.",
                                   "amount", False, required=("at",)),
    "context": QuantityKind("Published, but not compared with a model (dates, text, counts of tickets...).",
                            None, False),
}

#: Source kinds. An ``unverified_copy`` (a scraped or reordered copy, a summary by a third party)
#: and a ``reference`` (documentation or code cited for a default, not about the incident) may
#: inform priors and hypotheses only, never a published value.
SOURCE_KINDS = ("official_statement", "postmortem", "press", "unverified_copy", "reference")
OFFICIAL_SOURCE_KINDS = ("official_statement", "postmortem")
VERIFIED_SOURCE_KINDS = ("official_statement", "postmortem", "press")

#: What a failure figure counts: each try at the server (``attempts``, retries included), what
#: the originating caller asked for after all retries (``requests``), the share of ``users``
#: failing, or ``unknown`` (then at least two ``READINGS`` are carried side by side).
OBSERVATION_LEVELS = ("attempts", "requests", "users", "unknown")
READINGS = ("attempts", "requests", "users")
QUALIFIERS = ("exact", "about", "at_most", "at_least", "less_than", "more_than", "range")
CONFIDENCE = ("official", "press", "likely", "derived")
ROLES = ("measured", "fixes_parameter", "context")
CAPACITY_STATES = ("lost", "available", "added")


def unit_family(unit: str) -> tuple[str, ...]:
    """The families a unit belongs to.

    Examples
    --------
    >>> unit_family("percent")
    ('share', 'amount', 'ratio')
    """
    return tuple(name for name, family in FAMILIES.items() if unit in family.units)


def _scale(unit: str) -> float:
    if not isinstance(unit, str):
        raise ArgumentTypeError(f"unit must be one of {', '.join(UNIT_SCALE)}, got {describe(unit)}")
    if unit not in UNIT_SCALE:
        raise ValueError(f"unit must be one of {', '.join(UNIT_SCALE)}, got {unit!r}")
    return UNIT_SCALE[unit]


def to_si(value: Any, unit: str):
    """A value in a published unit as SI: seconds for durations, a fraction for percent.

    Examples
    --------
    >>> to_si(2, "h"), to_si([50, 3], "percent").tolist()
    (7200.0, [0.5, 0.03])
    """
    scale = _scale(unit)
    # 1e308 h is inf seconds: the honest answer, not a warning; 1e-308 ms is 0 s
    with np.errstate(over="ignore", under="ignore"):
        return output(as_array("value", value, allow_inf=True) * scale, is_scalar(value))


def from_si(value: Any, unit: str):
    """An SI value in a published unit (the inverse of :func:`to_si`).

    Examples
    --------
    >>> from_si(0.41, "percent"), from_si(90.0, "min")
    (41.0, 1.5)
    """
    # multiplying by the exact inverse (100 for percent) keeps 0.41 -> 41.0, where dividing gives 40.99...
    per_si = 1.0 / _scale(unit)
    with np.errstate(over="ignore", under="ignore"):
        return output(as_array("value", value, allow_inf=True) * per_si, is_scalar(value))
