"""Checks across sections: a file whose parts are each well formed may still contradict itself.

Each check names the field that contradicts and what it contradicts. With unpublished times
only definite contradictions are errors: a time known only as a range conflicts when every
time in its range does.
"""

from __future__ import annotations

import datetime as _dt

from ._reader import Reader
from .schema import Event, Figure, Incident, Instant, Window
from .vocabulary import EVENT_KINDS, to_si

#: Markers of impact that cannot come before the trigger that caused it.
_EFFECT_MARKERS = ("impact_start", "recovering", "mitigated", "recovered", "resolved")


def check_incident(reader: Reader, incident: Incident) -> None:
    """Raise IncidentFileError on the first contradiction found."""
    events = {event.id: i for i, event in enumerate(incident.events)}
    figures = {figure.id: i for i, figure in enumerate(incident.figures)}
    _events_after_start(reader, incident, events)
    _mechanisms_start_before_they_end(reader, incident, events)
    _effects_follow_triggers(reader, incident, events)
    _autoscaling_only_where_it_exists(reader, incident, events)
    for figure in incident.figures:
        _figure_times(reader, incident, figure, f"figures[{figures[figure.id]}]")
    _same_instant_references(reader, incident, figures)
    _peaks_above_means(reader, incident, figures)
    _traffic_shares_fit(reader, incident)


def _text(instant: Instant) -> str:
    if instant.value is not None and instant.form == "exact":
        return instant.value.isoformat()
    return f"{instant.low.isoformat()} to {instant.high.isoformat()}"


def _before(a: Instant, b: Instant) -> bool:
    """Whether ``a`` is certainly before ``b``."""
    return a.high < b.low


def _events_after_start(reader: Reader, incident: Incident, events: dict[str, int]) -> None:
    start = incident.start
    for event in incident.events:
        path = f"events[{events[event.id]}]"
        may_precede = EVENT_KINDS[event.kind].category == "change" or (
            event.kind == "trigger_start" and event.time.form in ("between", "unknown"))
        if not may_precede and event.time.low < start.low:
            reader.fail(f"{path}.time", f"{_text(event.time)} is before the incident's start ({_text(start)}): only a "
                        "deploy, or a trigger_start whose time was not published, may come earlier")
        if event.until is not None and not incident.event(event.until).time.high > event.time.low:
            reader.fail(f"{path}.until", f"event {event.until!r} ({_text(incident.event(event.until).time)}) ends the "
                        f"shedding before it begins ({_text(event.time)})")


def _switching(incident: Incident) -> list[tuple[Event, str, str]]:
    """(event, 'starts' or 'ends', mechanism) for every switch, alternatives included."""
    result = []
    for event in incident.events:
        for item in (event, *event.alternatives):
            result += [(event, "starts", m) for m in item.starts] + [(event, "ends", m) for m in item.ends]
    return result


def _mechanisms_start_before_they_end(reader: Reader, incident: Incident, events: dict[str, int]) -> None:
    switches = _switching(incident)
    for mechanism in incident.mechanisms:
        starts = [event for event, what, m in switches if what == "starts" and m == mechanism.id]
        if not starts:
            continue  # active from the beginning: it may end at any time
        for event, what, m in switches:
            if what == "ends" and m == mechanism.id and all(_before(event.time, s.time) for s in starts):
                first = min(starts, key=lambda s: s.time.low)
                reader.fail(f"events[{events[event.id]}].time", f"{event.kind} {event.id!r} ends mechanism "
                            f"{mechanism.id!r} at {_text(event.time)}, before it starts (event {first.id!r} at "
                            f"{_text(first.time)})")


def _reachable(incident: Incident, infrastructures: tuple[str, ...]) -> set[str]:
    """The infrastructures and everything they depend on, directly or not."""
    seen, todo = set(), list(infrastructures)
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += list(incident.infrastructure(current).depends_on)
    return seen


def _effects_follow_triggers(reader: Reader, incident: Incident, events: dict[str, int]) -> None:
    """No impact, recovery or resolution before the first trigger on the same infrastructure."""
    triggers = [(event, incident.mechanism(m)) for event, what, m in _switching(incident) if what == "starts"]
    for event in incident.events:
        if event.kind not in _EFFECT_MARKERS:
            continue
        reach = _reachable(incident, event.infrastructures)
        causes = [cause for cause, mechanism in triggers if reach & set(mechanism.infrastructures)]
        if causes and all(_before(event.time, cause.time) for cause in causes):
            first = min(causes, key=lambda c: c.time.low)
            reader.fail(f"events[{events[event.id]}].time", f"{event.kind} at {_text(event.time)} is before the "
                        f"first trigger on {sorted(event.infrastructures)} (event {first.id!r} at {_text(first.time)})")


def _autoscaling_only_where_it_exists(reader: Reader, incident: Incident, events: dict[str, int]) -> None:
    for event in incident.events:
        if event.kind != "autoscaled":
            continue
        for j, ident in enumerate(event.infrastructures):
            setting = incident.infrastructure(ident).autoscaled
            if setting.known and setting.value is False:
                reader.fail(f"events[{events[event.id]}].infrastructures[{j}]", f"infrastructure {ident!r} is "
                            "written as not autoscaled (autoscaled: false), yet this event says it autoscaled")


def _window_order(reader: Reader, window: Window, path: str) -> None:
    start, end = window.start.time, window.end.time
    exact = start.form == end.form == "exact"
    if _before(end, start) or (exact and end.value <= start.value):
        reader.fail(f"{path}.to", f"the window ends ({_text(end)}) before it starts ({_text(start)})")


def _figure_times(reader: Reader, incident: Incident, figure: Figure, path: str) -> None:
    start = incident.start
    windows = [(key, getattr(figure, key)) for key in ("window", "first", "second") if getattr(figure, key)]
    windows += [(f"periods[{i}]", w) for i, w in enumerate(figure.periods)]
    for key, window in windows:
        _window_order(reader, window, f"{path}.{key}")
        if _before(window.start.time, start):
            reader.fail(f"{path}.{key}.from", f"{_text(window.start.time)} is before the incident's start "
                        f"({_text(start)})")
    if figure.at is not None and _before(figure.at.time, start):
        reader.fail(f"{path}.at", f"{_text(figure.at.time)} is before the incident's start ({_text(start)})")
    if figure.periods and all(w.start.time.value and w.end.time.value for w in figure.periods):
        total = sum((w.end.time.value - w.start.time.value for w in figure.periods), _dt.timedelta())
        in_unit = total.total_seconds() / to_si(1.0, figure.unit)
        if not figure.holds(in_unit):
            reader.fail(f"{path}.value", f"{figure.published_text()} does not match its periods, which add up to "
                        f"{in_unit:g} {figure.unit}")


def _same_instant_references(reader: Reader, incident: Incident, figures: dict[str, int]) -> None:
    for figure in incident.figures:
        other = figure.same_instant_as
        if other is None:
            continue
        path = f"figures[{figures[figure.id]}].same_instant_as"
        if other not in figures or other == figure.id:
            reader.fail(path, f"must be the id of another figure, got {other!r}")
        if incident.figure(other).quantity != "peak_failure_rate" or incident.figure(other).same_instant_as:
            reader.fail(path, f"figure {other!r} must be a peak_failure_rate with its own averaging_interval")


def _contains(outer: Window | None, inner: Window) -> bool:
    """Whether ``inner`` certainly lies inside ``outer`` (None: the whole incident)."""
    if outer is None:
        return True
    return outer.start.time.high <= inner.start.time.low and inner.end.time.high <= outer.end.time.low


def _peaks_above_means(reader: Reader, incident: Incident, figures: dict[str, int]) -> None:
    """A peak cannot be below the mean of a window it contains, for the same scope and level."""
    peaks = [f for f in incident.figures if f.quantity == "peak_failure_rate"]
    means = [f for f in incident.figures if f.quantity == "failure_over_window"]
    for peak in peaks:
        for mean in means:
            same = (set(peak.scope.services) == set(mean.scope.services)
                    and (peak.observation_level, peak.readings) == (mean.observation_level, mean.readings))
            if same and _contains(peak.window, mean.window) and peak.si_bounds()[1] < mean.si_bounds()[0]:
                reader.fail(f"figures[{figures[peak.id]}].value", f"the peak ({peak.published_text()}) is below the "
                            f"mean failure of figure {mean.id!r} ({mean.published_text()}) over a window inside "
                            "the peak's, for the same scope and observation level")


def _traffic_shares_fit(reader: Reader, incident: Incident) -> None:
    """Published traffic shares and the lowest shares the priors allow must fit in the whole."""
    groups = [("infrastructures", "infrastructures", list(enumerate(incident.infrastructures)))]
    groups += [(f"services on {i.id}", "services", [(j, s) for j, s in enumerate(incident.services)
                                                   if s.infrastructure == i.id]) for i in incident.infrastructures]
    for label, section, items in groups:
        shares = [(j, item.traffic_share) for j, item in items if item.traffic_share is not None]
        least = sum(p.si_value if p.known else p.prior.si_bounds()[0] for _, p in shares)
        if least > 1.0 + 1e-12:
            reader.fail(f"{section}[{shares[-1][0]}].traffic_share", f"the traffic shares of the {label} add up "
                        f"to at least {least:.4g}, more than the whole")
