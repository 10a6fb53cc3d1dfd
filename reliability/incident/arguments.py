"""Validation at the door of the incident pipeline's public calls: objects, readings, levels, settings.

Each check raises :class:`reliability._validate.ArgumentTypeError` (a ``TypeError`` that is also
a ``ValueError``) for a value of the wrong type -- a bool, a string, None, a number where an
incident, a scenario, a timeline or an inference belongs -- and ``ValueError`` for a wrong value,
each message naming the argument and the value (numbers through :mod:`reliability._validate`).

Examples
--------
>>> check_text("reading", "requests")
'requests'
>>> check_text("reading", 3)
Traceback (most recent call last):
...
reliability._validate.ArgumentTypeError: reading must be a non-empty string, got 3
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from .._validate import MAX_POINTS, ArgumentTypeError, as_array, describe, number, whole
from . import _reader
from .schema import Figure, Incident
from .timeline import LEVELS, Timeline
from .vocabulary import FAMILIES

__all__ = ["check_text", "check_incident", "check_figure", "check_timeline", "check_inference", "check_reading",
           "check_infrastructures", "check_build", "check_run", "check_samples", "check_unknown_path",
           "check_whole", "check_counterfactual", "check_headroom_search", "check_shifts", "check_outcomes",
           "MAX_SAMPLES", "MAX_VALUE", "MAX_ITERATIONS", "MAX_SHIFT_MINUTES"]

#: Most samples one run takes (samples x steps stay within the validation layer's MAX_POINTS).
MAX_SAMPLES = 1_000_000
#: Largest setting of an unknown without a bound of its own (a multiple, an amount, a duration in s;
#: beyond it the model's products of rates and times leave the float range) and largest count (the
#: retry layer's own limit): the same limits the file reader holds a file's values to.
MAX_VALUE, MAX_COUNT = _reader.MAX_VALUE, _reader.MAX_COUNT


def check_text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a non-empty string, got {describe(value)}")
    if not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _instance(name: str, value: Any, kind: type, what: str):
    if not isinstance(value, kind):
        raise ArgumentTypeError(f"{name} must be {what}, got {describe(value)}")
    return value


def check_incident(value: Any, name: str = "incident") -> Incident:
    return _instance(name, value, Incident, "an Incident (reliability.incident.load)")


def check_figure(value: Any, name: str = "figure") -> Figure:
    return _instance(name, value, Figure, "a Figure of an incident")


def check_timeline(value: Any, name: str = "timeline") -> Timeline:
    return _instance(name, value, Timeline, "a Timeline (Scenario.run)")


def check_inference(value: Any, name: str = "inference"):
    """The result of the calibration: anything with a scenario, readings and accepted settings."""
    if not all(hasattr(value, attribute) for attribute in ("scenario", "readings", "settings")):
        raise ArgumentTypeError(f"{name} must be the result of reliability.incident.infer, got {describe(value)}")
    return value


def check_reading(inference, reading: Any) -> str:
    check_text("reading", reading)
    if reading not in tuple(inference.readings):
        raise ValueError(f"reading must be one of {', '.join(map(repr, inference.readings))}, got {reading!r}")
    return reading


def check_whole(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    return whole(name, value, minimum, maximum)


def check_samples(value: Any) -> int:
    return whole("samples", value, 1, MAX_SAMPLES)


def check_infrastructures(timeline, value: Any, *, optional: bool = False):
    """A list of infrastructure ids of the timeline's runs (None for all when ``optional``)."""
    if value is None and optional:
        return None
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
        # outcomes iterates twice (the ids, then per id): a list or tuple, not a one-pass iterator
        raise ArgumentTypeError(f"infrastructures must be a list of infrastructure ids, got {describe(value)}")
    for item in value:
        check_text("infrastructures", item)
        if item not in timeline.runs:
            raise ValueError(f"infrastructures names {item!r}, which is not among {', '.join(timeline.runs)}")
    if not value:
        raise ValueError("infrastructures must name at least one infrastructure, got none")
    return value


def check_level(level: Any, optional: bool = True):
    if level is None and optional:
        return None
    check_text("level", level)
    return level


def check_unknown_path(scenario, path: Any) -> str:
    check_text("path", path)
    paths = [u.path for u in scenario.unknowns]
    if path not in paths:
        raise ValueError(f"path must name an unknown of {scenario.incident.id!r} ({', '.join(paths) or 'none'}), "
                         f"got {path!r}")
    return path


# ---- build_scenario and Scenario.run -------------------------------------------------------------

def check_build(incident: Any, time_step: Any, assumptions: Any) -> tuple[float, Mapping[str, float] | None]:
    """The arguments of :func:`~reliability.incident.scenario.build_scenario`, checked: (time_step, assumptions)."""
    check_incident(incident)
    time_step = number("time_step", time_step, minimum=1.0, maximum=600.0)
    if assumptions is None:
        return time_step, None
    if not isinstance(assumptions, Mapping):
        raise ArgumentTypeError(f"assumptions must be a mapping of assumption name -> value, got "
                                f"{describe(assumptions)}")
    checked = {}
    for key, value in assumptions.items():
        check_text("assumptions", key)
        checked[key] = number(f"assumptions[{key!r}]", value, **_ASSUMPTION_RANGES.get(key, {"minimum": 0.0}))
    return time_step, checked


#: The range of each structural assumption: a share in (0, 1]; times in seconds from a millisecond (a
#: zero timeout divides by zero); an autoscaler's limit at least normal capacity.
_ASSUMPTION_RANGES = {
    "new_connection_work_share": dict(minimum=0.0, strict=True, maximum=1.0),
    "timeout": dict(minimum=1e-3, maximum=MAX_VALUE),
    "max_wait": dict(minimum=1e-3, maximum=MAX_VALUE),
    "autoscale_limit": dict(minimum=1.0, maximum=MAX_VALUE),
}


def _bounds(scenario, unknown) -> dict:
    """Range checks of one unknown's setting: choices and counts as whole numbers, numbers in their family."""
    if unknown.kind == "choice":
        return dict(minimum=0.0, maximum=float(len(unknown.choices) - 1), integer=True)
    if unknown.kind == "count":
        return dict(minimum=0.0, maximum=float(MAX_COUNT), integer=True)
    if unknown.path.startswith("events.") and unknown.path.endswith(".time"):
        return dict(minimum=-MAX_VALUE, maximum=MAX_VALUE)  # seconds from the start: before it too
    try:
        family = FAMILIES[scenario.incident.unknown(unknown.path).family]
        low, high = family.low, family.high
    except (KeyError, ValueError):
        low, high = 0.0, math.inf
    return dict(minimum=low, maximum=min(high, MAX_VALUE))


def check_run(scenario, values: Any, variant: Any, overrides: Any) -> np.ndarray:
    """Check the arguments of :meth:`Scenario.run`; returns the variant as a 1-d int array."""
    if not isinstance(values, Mapping):
        raise ArgumentTypeError(f"values must be a mapping of unknown path -> one value per sample, got "
                                f"{describe(values)}")
    checked = as_array("variant", variant, minimum=0.0, maximum=float(len(scenario.variants) - 1), integer=True)
    if checked.ndim > 1 or checked.size == 0:
        raise ValueError(f"variant must be one variant index per sample (a non-empty 1-d array), got shape "
                         f"{checked.shape}")
    checked = checked.reshape(-1)
    if checked.size > MAX_SAMPLES or checked.size * len(scenario.times) > MAX_POINTS:
        raise ValueError(f"variant holds {checked.size:,} samples: more than {MAX_SAMPLES:,} samples (or "
                         f"{MAX_POINTS:.0e} sample-steps) one run takes")
    for unknown in scenario.unknowns:
        if unknown.path not in values:
            raise ValueError(f"values has no setting for the unknown {unknown.path!r} (each unknown needs one "
                             "value per sample)")
        label = f"values[{unknown.path!r}]"
        value = as_array(label, values[unknown.path], **_bounds(scenario, unknown))
        if value.ndim > 1 or value.size not in (1, checked.size):
            raise ValueError(f"{label} must be one value, or one per sample of the variant ({checked.size}), "
                             f"got shape {value.shape}")
    _check_overrides(scenario, overrides, checked)
    return checked.astype(int)


def _check_overrides(scenario, overrides: Any, variant: np.ndarray) -> None:
    if overrides is None:
        return
    if not isinstance(overrides, Mapping):
        raise ArgumentTypeError(f"overrides must be None or a mapping, got {describe(overrides)}")
    known = ("headroom", "policy", "shift", "autoscaled")
    ids = [i.id for i in scenario.incident.infrastructures]
    for key, value in overrides.items():
        if key not in known:
            raise ValueError(f"overrides: {key!r} is not a counterfactual (known: {', '.join(known)})")
        if key == "shift":
            number("overrides['shift']", value, minimum=-MAX_VALUE, maximum=MAX_VALUE)
        elif key == "policy":
            if value is not None and not hasattr(value, "amplification"):
                raise ArgumentTypeError(f"overrides['policy'] must be None or a retry policy, got {describe(value)}")
        else:
            _per_infrastructure(key, value, ids, variant)


def _per_infrastructure(key: str, value: Any, ids, variant: np.ndarray) -> None:
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"overrides[{key!r}] must map infrastructure ids to settings, got {describe(value)}")
    for infrastructure, setting in value.items():
        if infrastructure not in ids:
            raise ValueError(f"overrides[{key!r}] names {infrastructure!r}, which is not among {', '.join(ids)}")
        label = f"overrides[{key!r}][{infrastructure!r}]"
        if key == "autoscaled":
            if not isinstance(setting, (bool, np.bool_)):
                raise ArgumentTypeError(f"{label} must be True or False, got {describe(setting)}")
        else:
            setting = as_array(label, setting, minimum=0.0, maximum=MAX_VALUE)
            if setting.ndim > 1 or setting.size not in (1, variant.size):
                raise ValueError(f"{label} must be one value, or one per sample of the variant ({variant.size}), "
                                 f"got shape {setting.shape}")


# ---- counterfactuals -----------------------------------------------------------------------------

#: Most bisection steps of a headroom search (a double's mantissa is exhausted well before).
MAX_ITERATIONS = 60
#: Largest shift of the interventions, in minutes (about two years).
MAX_SHIFT_MINUTES = 1e6


def check_counterfactual(inference: Any, reading: Any, limit: Any) -> int:
    """The arguments every counterfactual takes: the inference, one of its readings, a sample limit."""
    check_reading(check_inference(inference), reading)
    return whole("limit", limit, 1, MAX_SAMPLES)


def check_headroom_search(target: Any, iterations: Any) -> tuple[float, int]:
    target = number("target", target, minimum=0.0, strict=True, maximum=1.0)
    return target, whole("iterations", iterations, 1, MAX_ITERATIONS)


def check_shifts(shifts_minutes: Any) -> np.ndarray:
    shifts = as_array("shifts_minutes", shifts_minutes, minimum=-MAX_SHIFT_MINUTES, maximum=MAX_SHIFT_MINUTES)
    if shifts.ndim > 1 or not 1 <= shifts.size <= 1000:
        raise ValueError(f"shifts_minutes must be a list of 1 to 1,000 shifts, got shape {shifts.shape}")
    return shifts.reshape(-1)


def check_outcomes(timeline: Any, infrastructures: Any) -> None:
    check_infrastructures(check_timeline(timeline), infrastructures, optional=True)
