"""Reader of the figures of an incident document: value and unit as published, qualifier and
tolerance, observation level, scope, the times the quantity takes, and how a model reads it."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Mapping

from ._reader import Reader
from .schema import Figure, Instant, Moment, Scope, Window
from .vocabulary import (
    CAPACITY_STATES, CONFIDENCE, DURATION_UNITS, FAMILIES, NON_NUMERIC_UNITS, OBSERVATION_LEVELS,
    OFFICIAL_SOURCE_KINDS, QUALIFIERS, QUANTITIES, READINGS, UNIT_SCALE, ParameterSpec,
)

AVERAGING_INTERVAL = ParameterSpec("duration", "interval over which the peak was averaged")
_BASE = ("id", "statement", "quantity", "value", "unit", "qualifier", "tolerance", "range", "sources", "confidence",
         "role", "note")
_TIME_KEYS = ("window", "first", "second", "at", "from", "periods")
DEFAULT_READINGS = ("attempts", "requests")


class FigureContext:
    """What figures may refer to: services (with their infrastructures) and events (with their times)."""

    def __init__(self, placement: Mapping[str, str], infrastructure_ids: list[str], times: Mapping[str, Instant],
                 start: Instant):
        self.placement, self.infrastructure_ids, self.times, self.start = placement, infrastructure_ids, times, start


def parse_figures(reader: Reader, doc: Mapping, context: FigureContext) -> tuple[Figure, ...]:
    items, _ = reader.entries(doc, "figures")
    figures = tuple(_parse_figure(reader, raw, f"figures[{i}]", context) for i, raw in enumerate(items))
    reader.figures = {figure.id: figure for figure in figures}
    return figures


def _allowed_fields(quantity: str) -> tuple[str, ...]:
    kind = QUANTITIES[quantity]
    extra = [*kind.required, *kind.optional]
    if kind.family is not None:
        extra.append("scope")
    else:
        extra += ["scope", "tolerance_unit"]
    if kind.failure:
        extra += ["observation_level", "readings"]
    if kind.measure:
        extra.append("measure")
    if quantity == "peak_failure_rate":
        extra += ["averaging_interval", "same_instant_as"]
    if quantity == "capacity_share":
        extra.append("state")
    return (*_BASE, *extra)


def _parse_figure(reader: Reader, raw: Any, path: str, context: FigureContext) -> Figure:
    raw = reader.mapping(raw, path)
    quantity = raw.get("quantity")
    if not isinstance(quantity, str) or quantity not in QUANTITIES:
        reader.fail(f"{path}.quantity", f"unknown quantity {quantity!r}: the model cannot measure it "
                    f"(supported: {', '.join(QUANTITIES)})")
    reader.fields(raw, path, _allowed_fields(quantity), ("id", "statement", "quantity", "value", "unit", "sources"))
    kind = QUANTITIES[quantity]
    ident = reader.text(raw, "id", path)
    value, unit, qualifier, tolerance, value_range = _value(reader, raw, path, kind.family)
    level, readings = _level(reader, raw, path, kind.failure)
    sources = reader.source_ids(raw, path)
    times = _times(reader, raw, path, quantity, context)
    averaging = same_instant = None
    if quantity == "peak_failure_rate":
        same_instant = reader.text(raw, "same_instant_as", path, required=False) or None
        if same_instant is None:
            averaging = reader.parameter(raw.get("averaging_interval"), f"{path}.averaging_interval",
                                         AVERAGING_INTERVAL, f"figures.{ident}.averaging_interval")
        elif "averaging_interval" in raw:
            reader.fail(f"{path}.averaging_interval", "must not be given with same_instant_as: the figure shares "
                        f"the averaging interval of {same_instant!r}")
    role = reader.choice(raw, "role", path, ("measured", "context"), default="measured")
    return Figure(
        id=ident, statement=reader.text(raw, "statement", path), quantity=quantity, value=value, unit=unit,
        qualifier=qualifier, sources=sources, confidence=_confidence(reader, raw, path, sources),
        role="context" if kind.family is None else role, tolerance=tolerance, range=value_range,
        observation_level=level, readings=readings, scope=_scope(reader, raw, path, quantity, context),
        averaging_interval=averaging, same_instant_as=same_instant,
        state=reader.choice(raw, "state", path, CAPACITY_STATES) if quantity == "capacity_share" else None,
        measure=_measure(reader, raw, path, quantity), note=reader.text(raw, "note", path, required=False), **times)


def _value(reader: Reader, raw: Mapping, path: str, family: str | None):
    """(value, unit, qualifier, tolerance, range), checked against the unit and the qualifier."""
    unit = raw["unit"]
    units = FAMILIES[family].units if family else (*UNIT_SCALE, *NON_NUMERIC_UNITS)
    if unit not in units:
        reader.fail(f"{path}.unit", f"must be one of {', '.join(units)} for this quantity, got {unit!r}")
    qualifier = reader.choice(raw, "qualifier", path, QUALIFIERS, default="exact")
    if unit in UNIT_SCALE:
        if "tolerance_unit" in raw:
            reader.fail(f"{path}.tolerance_unit", f"is only for timestamps; the tolerance is in {unit!r}")
        value = _numeric_value(reader, raw["value"], f"{path}.value", unit, family)
        tolerance, value_range = _tolerance(reader, raw, path, value, qualifier)
        return value, unit, qualifier, tolerance, value_range
    if qualifier not in ("exact", "about") or "range" in raw:
        reader.fail(f"{path}.qualifier", f"a {unit} figure is exact or about, got qualifier {qualifier!r}")
    if unit == "timestamp":
        stamp = reader.timestamp(raw["value"], f"{path}.value")
        if qualifier == "about" or "tolerance" in raw:
            reader.fields(raw, path, raw.keys(), ("tolerance", "tolerance_unit"))
            reader.choice(raw, "tolerance_unit", path, DURATION_UNITS)
            return stamp, unit, qualifier, reader.number(raw["tolerance"], f"{path}.tolerance", minimum=0.0), None
        return stamp, unit, qualifier, None, None
    if "tolerance" in raw or "tolerance_unit" in raw:
        reader.fail(f"{path}.tolerance", f"a {unit} figure has no tolerance")
    if unit == "date":
        try:
            value = raw["value"] if isinstance(raw["value"], _dt.date) else _dt.date.fromisoformat(str(raw["value"]))
        except ValueError:
            reader.fail(f"{path}.value", f"must be a date YYYY-MM-DD, got {raw['value']!r}")
        return value, unit, qualifier, None, None
    return reader.text(raw, "value", path), unit, qualifier, None, None


def _numeric_value(reader: Reader, value: Any, path: str, unit: str, family: str | None) -> float:
    number = reader.number(value, path)
    bounds = FAMILIES[family] if family else None
    per_si = 1.0 / UNIT_SCALE[unit]
    if bounds is not None and not bounds.low * per_si <= number <= bounds.high * per_si:
        high = "" if bounds.high == float("inf") else f", {bounds.high * per_si:g}"
        reader.fail(path, f"must lie in [{bounds.low * per_si:g}{high or ', inf'}] {unit}, got {number:g}")
    return number


def _tolerance(reader: Reader, raw: Mapping, path: str, value: float, qualifier: str):
    """The tolerance (in the figure's unit) or the range, as the qualifier requires."""
    tolerance, value_range = raw.get("tolerance"), raw.get("range")
    if qualifier == "range":
        if value_range is None:
            reader.fail(f"{path}.range", "is required with qualifier 'range'")
        if tolerance is not None:
            reader.fail(f"{path}.tolerance", "must not be given with a range: the range replaces it")
        if not isinstance(value_range, list) or len(value_range) != 2:
            reader.fail(f"{path}.range", f"must be [low, high], got {value_range!r}")
        low, high = (reader.number(v, f"{path}.range[{i}]") for i, v in enumerate(value_range))
        if not low <= value <= high or not low < high:
            reader.fail(f"{path}.range", f"must be [low, high] with low < high containing the value {value:g}, "
                        f"got [{low:g}, {high:g}]")
        return None, (low, high)
    if value_range is not None:
        reader.fail(f"{path}.range", f"is only for qualifier 'range', got qualifier {qualifier!r}")
    if qualifier in ("less_than", "more_than"):
        if tolerance is not None:
            reader.fail(f"{path}.tolerance", f"a strict bound ({qualifier}) has no tolerance")
        return None, None
    if tolerance is None:
        if qualifier == "about":
            reader.fail(f"{path}.tolerance", "is required with qualifier 'about' (how far a model may be and agree)")
        return None, None
    return reader.number(tolerance, f"{path}.tolerance", minimum=0.0), None


def _level(reader: Reader, raw: Mapping, path: str, failure: bool) -> tuple[str | None, tuple[str, ...]]:
    if not failure:
        return None, ()
    level = reader.choice(raw, "observation_level", path, OBSERVATION_LEVELS)
    readings = raw.get("readings")
    if level != "unknown":
        if readings is not None:
            reader.fail(f"{path}.readings", f"is only for observation_level unknown, got level {level!r}")
        return level, ()
    if readings is None:
        return level, DEFAULT_READINGS
    if not isinstance(readings, list) or len(readings) < 2 or not all(r in READINGS for r in readings) or \
            len(set(readings)) != len(readings):
        reader.fail(f"{path}.readings", f"must list at least two different levels of {', '.join(READINGS)}, "
                    f"got {readings!r}")
    return level, tuple(readings)


def _scope(reader: Reader, raw: Mapping, path: str, quantity: str, context: FigureContext) -> Scope | None:
    body = raw.get("scope")
    if body is None:
        if QUANTITIES[quantity].family is not None:
            reader.fail(f"{path}.scope", "is required: {services: [...]} or {infrastructures: [...]}")
        return None
    body = reader.fields(body, f"{path}.scope", ("services", "infrastructures"))
    if len(body) != 1:
        reader.fail(f"{path}.scope", f"must name either services or infrastructures, got {sorted(body)}")
    if "services" in body:
        services = reader.ids(body, "services", f"{path}.scope", list(context.placement), "service", required=True)
        infrastructures = tuple(dict.fromkeys(context.placement[s] for s in services))
        given = "services"
    else:
        infrastructures = reader.ids(body, "infrastructures", f"{path}.scope", context.infrastructure_ids,
                                     "infrastructure", required=True)
        services = tuple(s for s, i in context.placement.items() if i in infrastructures)
        given = "infrastructures"
    if quantity == "capacity_share" and given != "infrastructures":
        reader.fail(f"{path}.scope", "a capacity share is about infrastructures: write {infrastructures: [...]}")
    return Scope(services=services, infrastructures=infrastructures, given=given)


def _moment(reader: Reader, raw: Any, path: str, context: FigureContext) -> Moment:
    """An event id (its time) or a timestamp."""
    if isinstance(raw, str) and raw in context.times:
        return Moment(time=context.times[raw], event=raw)
    if isinstance(raw, _dt.datetime) or (isinstance(raw, str) and _looks_like_time(raw)):
        stamp = reader.timestamp(raw, path)
        return Moment(time=Instant("exact", stamp, stamp, value=stamp))
    reader.fail(path, f"must be an event id or a timestamp, got {raw!r} (events: {', '.join(context.times) or 'none'})")


def _looks_like_time(text: str) -> bool:
    try:
        _dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _window(reader: Reader, raw: Any, path: str, context: FigureContext) -> Window:
    body = reader.fields(raw, path, ("from", "to"), ("from", "to"))
    return Window(start=_moment(reader, body["from"], f"{path}.from", context),
                  end=_moment(reader, body["to"], f"{path}.to", context))


def _times(reader: Reader, raw: Mapping, path: str, quantity: str, context: FigureContext) -> dict[str, Any]:
    kind = QUANTITIES[quantity]
    result: dict[str, Any] = {}
    for key in kind.required:
        if raw.get(key) is None:
            reader.fail(f"{path}.{key}", f"is required for quantity {quantity!r}")
    for key in _TIME_KEYS:
        if raw.get(key) is None:
            continue
        where = f"{path}.{key}"
        if key in ("window", "first", "second"):
            result[key] = _window(reader, raw[key], where, context)
        elif key == "periods":
            if not isinstance(raw[key], list) or not raw[key]:
                reader.fail(where, f"must be a non-empty list of {{from, to}} windows, got {raw[key]!r}")
            result[key] = tuple(_window(reader, w, f"{where}[{i}]", context) for i, w in enumerate(raw[key]))
        else:
            result["since" if key == "from" else key] = _moment(reader, raw[key], where, context)
    if quantity in ("time_to_recovery", "time_to_resolution") and "since" not in result:
        result["since"] = Moment(time=context.start)
    return result


def _measure(reader: Reader, raw: Mapping, path: str, quantity: str) -> dict[str, float]:
    """How a model reads the figure: the quantity's settings, defaults filled in."""
    spec = QUANTITIES[quantity].measure
    body = reader.fields(raw.get("measure") or {}, f"{path}.measure", tuple(spec))
    result = {}
    for key, (default, kind) in spec.items():
        value = body.get(key, default)
        where = f"{path}.measure.{key}"
        result[key] = (reader.number(value, where, minimum=0.0, maximum=1.0) if kind == "share"
                       else reader.number(value, where, minimum=0.0, strict=True))
    if quantity == "alternation_cycle" and result["up_threshold"] > result["down_threshold"]:
        reader.fail(f"{path}.measure.up_threshold", f"must be <= down_threshold ({result['down_threshold']:g})")
    return result


def _confidence(reader: Reader, raw: Mapping, path: str, sources: tuple[str, ...]) -> str:
    official = any(reader.sources[s].kind in OFFICIAL_SOURCE_KINDS for s in sources)
    confidence = reader.choice(raw, "confidence", path, CONFIDENCE, default="official" if official else "press")
    if confidence == "official" and not official:
        reader.fail(f"{path}.confidence", f"is 'official' but none of its sources {list(sources)} is an official "
                    "statement or postmortem")
    return confidence
