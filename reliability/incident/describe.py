"""Words and tables about an incident, computed from its file: local times, names, the timeline of
events, and the model's failure share over time on the accepted settings (for a figure).

Nothing here models anything: these are the helpers a notebook needs so that every sentence,
title, axis and legend comes from the incident rather than from code written for one incident.

Examples
--------
>>> from reliability.incident import available_incidents, load
>>> incident = load(available_incidents()[0])
>>> local_time(incident, 0.0) == incident.origin.astimezone(zone(incident)).strftime("%H:%M")
True
"""

from __future__ import annotations

import datetime as _dt
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from .._validate import ArgumentTypeError, describe, number
from .arguments import check_incident, check_text, check_timeline

__all__ = ["zone", "local_time", "zone_label", "infrastructure_names", "event_table", "unknown_label",
           "failure_bands", "name_list"]


def zone(incident) -> ZoneInfo:
    return ZoneInfo(check_incident(incident).time_zone)


def zone_label(incident) -> str:
    """The zone as the statement printed it, or as its own zone names it on the day."""
    check_incident(incident)
    return incident.time_zone_label or incident.origin.astimezone(zone(incident)).tzname()


def local_time(incident, seconds: float, with_date: bool = False) -> str:
    """``seconds`` after the start as a wall-clock time in the incident's own zone."""
    check_incident(incident)
    if not isinstance(with_date, (bool, np.bool_)):
        raise ArgumentTypeError(f"with_date must be True or False, got {describe(with_date)}")
    # a wall-clock time exists within a few thousand years of the start (datetime's own range)
    seconds = number("seconds", seconds, minimum=-1e11, maximum=1e11)
    try:
        moment = incident.origin + _dt.timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"seconds={seconds:g} after the start is beyond the range of dates") from None
    return moment.astimezone(zone(incident)).strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M")


def name_list(names) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    # any iterable of strings (a list, dict.values(), a generator); a bare string or a mapping is a mistake
    if isinstance(names, (str, bytes, dict)) or not hasattr(names, "__iter__") or (
            isinstance(names, np.ndarray) and names.ndim == 0):
        raise ArgumentTypeError(f"names must be a list of names (strings), got {describe(names)}")
    names = [check_text("names", name) for name in names]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def infrastructure_names(incident) -> dict[str, str]:
    check_incident(incident)
    return {i.id: i.name for i in incident.infrastructures}


def event_table(incident) -> pd.DataFrame:
    """The timeline as published: local time (or its range), kind, what happened, where."""
    rows = []
    names = infrastructure_names(incident)
    for event in sorted(incident.events, key=lambda e: e.time.low):
        low, high = event.time.seconds_from(incident.origin)
        when = local_time(incident, low, abs(low) > 86400) if event.time.form != "unknown" and low == high else (
            f"{local_time(incident, low, abs(low) > 86400)} to {local_time(incident, high, abs(high) > 86400)}")
        rows.append({f"time ({zone_label(incident)})": when, "published": event.time.form, "event": event.kind.replace(
            "_", " "), "what happened": event.statement,
            "where": ", ".join(names[i] for i in event.infrastructures)})
    return pd.DataFrame(rows)


def unknown_label(path: str, incident) -> str:
    """A readable name for an unknown's path: ``headroom of <platform name>``, ``time of <event>``..."""
    check_text("path", path)
    parts = path.split(".")
    if len(parts) < 2 or parts[0] in ("infrastructures", "mechanisms") and len(parts) < 3:
        raise ValueError(f"path must be an unknown's path such as 'infrastructures.<id>.headroom', got {path!r}")
    names = infrastructure_names(incident)
    if parts[0] == "infrastructures":
        return f"{parts[2].replace('_', ' ')} of {names.get(parts[1], parts[1])}"
    if parts[0] == "events":
        return f"{' '.join(parts[2:]).replace('_', ' ')} of event {parts[1]}"
    if parts[0] == "mechanisms":
        return f"{parts[2].replace('_', ' ')} of {parts[1].replace('_', ' ')}"
    return " ".join(parts[1:]).replace("_", " ")


def failure_bands(timeline, incident) -> pd.DataFrame:
    """Per infrastructure and level, the median and 5-95 % of the failure share per step over the samples."""
    check_timeline(timeline)
    frames = []
    names = infrastructure_names(incident)
    for infrastructure in timeline.runs:
        for level in ("attempts", "requests"):
            share = timeline.failure_share([infrastructure], level)
            frames.append(pd.DataFrame({
                "hours": timeline.times / 3600.0, "median": np.median(share, axis=0),
                "low": np.percentile(share, 5, axis=0), "high": np.percentile(share, 95, axis=0),
                "infrastructure": names[infrastructure], "level": f"failed {level}"}))
    return pd.concat(frames, ignore_index=True)
