"""Field-by-field reading of an incident document: every error names the file, the field path and
the reason. Holds what later sections need: the time zone and start, the sources, the figures
(for parameters that take a figure's value) and the unknowns met so far."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Mapping, NoReturn, Sequence
from zoneinfo import ZoneInfo

from .. import _validate
from .schema import IncidentFileError, Instant, Parameter, Prior

#: Largest value of a family without a bound of its own, in SI units, and largest count (as
#: :data:`reliability.incident.arguments.MAX_VALUE` and ``MAX_COUNT``, which a run checks).
MAX_VALUE = 1e12
MAX_COUNT = 10**9
from .vocabulary import DURATION_UNITS, FAMILIES, UNIT_SCALE, VERIFIED_SOURCE_KINDS, ParameterSpec, to_si

#: A prior's reason is one line: long enough to say why, short enough to read in a table.
REASON_LENGTH = 300


class Reader:
    """Validating accessors over one document, plus the state the sections share."""

    def __init__(self, name: str):
        self.name = name
        self.zone: ZoneInfo | None = None
        self.origin: _dt.datetime | None = None
        self.sources: dict[str, Any] = {}
        self.figures: dict[str, Any] = {}
        self.unknowns: list[Parameter] = []
        self.figure_uses: dict[str, list[str]] = {}

    # ---- basic fields ------------------------------------------------------------------
    def fail(self, path: str, reason: str) -> NoReturn:
        raise IncidentFileError(self.name, path, reason)

    def mapping(self, value: Any, path: str) -> Mapping:
        if not isinstance(value, Mapping):
            self.fail(path, f"must be a mapping, got {type(value).__name__} {value!r}")
        return value

    def fields(self, raw: Any, path: str, allowed: Sequence[str], required: Sequence[str] = ()) -> Mapping:
        """``raw`` as a mapping with only ``allowed`` keys and every ``required`` one (not null)."""
        raw = self.mapping(raw, path)
        for key in raw:
            if key not in allowed:
                self.fail(_join(path, key), f"is not a field here (fields: {', '.join(allowed)})")
        for key in required:
            if raw.get(key) is None:
                self.fail(_join(path, key), "is required")
        return raw

    def text(self, raw: Mapping, key: str, path: str, *, required: bool = True) -> str:
        value = raw.get(key)
        if value is None:
            if required:
                self.fail(_join(path, key), "is required")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.fail(_join(path, key), f"must be a non-empty string, got {value!r}")
        return " ".join(value.split())

    def number(self, value: Any, path: str, *, minimum: float | None = None, maximum: float | None = None,
               strict: bool = False) -> float:
        try:
            return _validate.number("value", value, minimum=minimum, maximum=maximum, strict=strict)
        except ValueError as error:
            self.fail(path, str(error).removeprefix("value "))

    def choice(self, raw: Mapping, key: str, path: str, options: Sequence, *, default: Any = None) -> Any:
        value = raw.get(key, default)
        if value is None and default is None:
            self.fail(_join(path, key), f"is required (one of {', '.join(map(str, options))})")
        if value not in options:
            self.fail(_join(path, key), f"must be one of {', '.join(map(str, options))}, got {value!r}")
        return value

    def flag(self, raw: Mapping, key: str, path: str) -> bool:
        value = raw.get(key, False)
        if not isinstance(value, bool):
            self.fail(_join(path, key), f"must be true or false, got {value!r}")
        return value

    def ids(self, raw: Mapping, key: str, path: str, known: Sequence[str], what: str, *,
            required: bool = False) -> tuple[str, ...]:
        value = raw.get(key)
        if value is None:
            if required:
                self.fail(_join(path, key), f"is required: a list of {what} ids")
            return ()
        if not isinstance(value, list) or not value:
            self.fail(_join(path, key), f"must be a non-empty list of {what} ids, got {value!r}")
        for i, item in enumerate(value):
            if item not in known:
                self.fail(f"{path}.{key}[{i}]", f"unknown {what} {item!r} (known: {', '.join(known) or 'none'})")
        if len(set(value)) != len(value):
            self.fail(_join(path, key), f"lists a {what} twice: {value!r}")
        return tuple(value)

    def entries(self, doc: Mapping, key: str, *, required: bool = True) -> tuple[list, list[str]]:
        """A top-level list of objects with unique ids: (the list, their ids)."""
        items = doc.get(key)
        if items is None and not required:
            return [], []
        if not isinstance(items, list) or not items:
            self.fail(key, "must be a non-empty list" if required else "must be a list")
        ids: list[str] = []
        for i, item in enumerate(items):
            ident = self.text(self.mapping(item, f"{key}[{i}]"), "id", f"{key}[{i}]")
            if ident in ids:
                self.fail(f"{key}[{i}].id", f"duplicate id {ident!r}")
            ids.append(ident)
        return items, ids

    def source_ids(self, raw: Mapping, path: str, *, required: bool = True, verified: bool = True) -> tuple[str, ...]:
        """Source ids; with ``verified``, an unverified copy is refused (it may inform priors only)."""
        ids = self.ids(raw, "sources", path, list(self.sources), "source", required=required)
        if verified:
            for i, ident in enumerate(ids):
                if self.sources[ident].kind not in VERIFIED_SOURCE_KINDS:
                    self.fail(f"{path}.sources[{i}]", f"source {ident!r} is of kind {self.sources[ident].kind!r}: it "
                              "may inform a prior or a hypothesis, not a published value")
        return ids

    # ---- times -------------------------------------------------------------------------
    def timestamp(self, value: Any, path: str) -> _dt.datetime:
        """An ISO 8601 timestamp with a UTC offset that matches the incident's time zone on its date."""
        stamp = value
        if isinstance(value, str):
            try:
                stamp = _dt.datetime.fromisoformat(value)
            except ValueError:
                stamp = None
        if not isinstance(stamp, _dt.datetime):
            self.fail(path, f"must be an ISO 8601 timestamp with a UTC offset, got {value!r}")
        if stamp.utcoffset() is None:
            self.fail(path, f"must carry a UTC offset (e.g. +01:00), got {value!r}")
        try:
            local = stamp.astimezone(self.zone) if self.zone is not None else stamp
        except (OverflowError, ValueError):
            self.fail(path, f"is out of the range of dates, got {value!r}")
        if local.utcoffset() != stamp.utcoffset():
            self.fail(path, f"UTC offset {_offset(stamp)} does not match the incident's time zone on that date "
                      f"({_offset(local)})")
        return stamp

    def instant(self, raw: Any, path: str, unknown_path: str) -> Instant:
        """A time in one of its four forms (see the README, section Times)."""
        if isinstance(raw, (str, _dt.datetime)):
            stamp = self.timestamp(raw, path)
            return Instant("exact", stamp, stamp, value=stamp)
        raw = self.mapping(raw, path)
        if "about" in raw:
            self.fields(raw, path, ("about", "tolerance", "tolerance_unit"), ("about", "tolerance", "tolerance_unit"))
            stamp = self.timestamp(raw["about"], f"{path}.about")
            unit = self.choice(raw, "tolerance_unit", path, DURATION_UNITS)
            tolerance = self.number(raw["tolerance"], f"{path}.tolerance", minimum=0.0, strict=True)
            try:
                width = _dt.timedelta(seconds=to_si(tolerance, unit))
                return Instant("about", stamp - width, stamp + width, value=stamp)
            except OverflowError:
                self.fail(f"{path}.tolerance", f"reaches beyond the range of dates, got {tolerance:g} {unit}")
        if "between" in raw:
            self.fields(raw, path, ("between", "sources"), ("between",))
            low, high = self._time_range(raw["between"], f"{path}.between")
            sources = self.source_ids(raw, path, required=False)
            return self._unknown_time("between", low, high, "published bracket", sources, unknown_path)
        if "unknown" in raw:
            self.fields(raw, path, ("unknown",))
            body = self.fields(raw["unknown"], f"{path}.unknown", ("range", "reason", "sources"), ("range", "reason"))
            low, high = self._time_range(body["range"], f"{path}.unknown.range")
            sources = self.source_ids(body, f"{path}.unknown", required=False, verified=False)
            return self._unknown_time("unknown", low, high, self.reason(body, f"{path}.unknown"), sources,
                                      unknown_path)
        self.fail(path, f"must be a timestamp, {{about: ...}}, {{between: [...]}} or {{unknown: ...}}, got {raw!r}")

    def _time_range(self, raw: Any, path: str) -> tuple[_dt.datetime, _dt.datetime]:
        if not isinstance(raw, list) or len(raw) != 2:
            self.fail(path, f"must be [earliest, latest], got {raw!r}")
        low, high = self.timestamp(raw[0], f"{path}[0]"), self.timestamp(raw[1], f"{path}[1]")
        if not low < high:
            self.fail(path, f"is {'empty' if low == high else 'inverted'}: earliest {low.isoformat()} must be "
                      f"before latest {high.isoformat()}")
        return low, high

    def _unknown_time(self, form, low, high, reason, sources, unknown_path) -> Instant:
        seconds = ((low - self.origin).total_seconds(), (high - self.origin).total_seconds())
        prior = Prior(reason=reason, low=seconds[0], high=seconds[1], unit="s", sources=sources)
        self.unknowns.append(Parameter(unknown_path, "duration", unit="s", prior=prior))
        return Instant(form, low, high, reason=reason, sources=sources)

    # ---- numbers and settings ----------------------------------------------------------
    def reason(self, raw: Mapping, path: str) -> str:
        reason = self.text(raw, "reason", path)
        if len(reason) > REASON_LENGTH:
            self.fail(f"{path}.reason", f"must be one line of at most {REASON_LENGTH} characters, got {len(reason)}")
        return reason

    def parameter(self, raw: Any, path: str, spec: ParameterSpec, unknown_path: str) -> Parameter | None:
        """A parameter in one of its forms: ``{figure}``, ``{value, unit, sources}`` or ``{unknown}``
        (a setting: its value as is, or ``{unknown: {choices}}``)."""
        if raw is None:
            if spec.required:
                self.fail(path, "is required (write {unknown: {...}} with a prior when it was not published)")
            return None
        if spec.family == "choice":
            return self._setting(raw, path, spec, unknown_path)
        raw = self.mapping(raw, path)
        forms = [key for key in ("figure", "value", "unknown") if key in raw]
        if len(forms) != 1:
            self.fail(path, f"must have exactly one of figure, value, unknown, got {sorted(raw)}")
        if forms[0] == "figure":
            return self._from_figure(raw, path, spec, unknown_path)
        if forms[0] == "value":
            self.fields(raw, path, ("value", "unit", "sources", "note"), ("value", "unit", "sources"))
            unit = self._unit(raw.get("unit"), f"{path}.unit", spec.family)
            value = self._in_family(raw["value"], unit, f"{path}.value", spec)
            return Parameter(unknown_path, spec.family, unit=unit, value=value, sources=self.source_ids(raw, path))
        self.fields(raw, path, ("unknown",))
        prior = self.prior(raw["unknown"], f"{path}.unknown", spec)
        parameter = Parameter(unknown_path, spec.family, unit=prior.unit, prior=prior)
        self.unknowns.append(parameter)
        return parameter

    def _setting(self, raw, path, spec, unknown_path) -> Parameter:
        if isinstance(raw, Mapping):
            self.fields(raw, path, ("unknown",), ("unknown",))
            prior = self.prior(raw["unknown"], f"{path}.unknown", spec)
            parameter = Parameter(unknown_path, "choice", prior=prior)
            self.unknowns.append(parameter)
            return parameter
        if not _member(raw, spec.choices):
            self.fail(path, f"must be one of {', '.join(map(str, spec.choices))} (or {{unknown: {{choices: ...}}}}), "
                      f"got {raw!r}")
        return Parameter(unknown_path, "choice", value=raw)

    def _from_figure(self, raw, path, spec, unknown_path) -> Parameter:
        self.fields(raw, path, ("figure",))
        ident = raw["figure"]
        if not isinstance(ident, str) or ident not in self.figures:
            self.fail(f"{path}.figure", f"unknown figure {ident!r} (figures: {', '.join(self.figures) or 'none'})")
        figure = self.figures[ident]
        if not figure.numeric or figure.unit not in FAMILIES[spec.family].units:
            self.fail(f"{path}.figure", f"figure {ident!r} is in {figure.unit!r}; this parameter takes "
                      f"{', '.join(FAMILIES[spec.family].units)}")
        self._in_family(figure.value, figure.unit, f"{path}.figure", spec)
        self.figure_uses.setdefault(ident, []).append(unknown_path)
        return Parameter(unknown_path, spec.family, unit=figure.unit, value=figure.value, figure=ident,
                         sources=figure.sources)

    def prior(self, raw: Any, path: str, spec: ParameterSpec) -> Prior:
        """``{range, unit, scale, reason, sources}`` or, for a setting, ``{choices, reason, sources}``."""
        if spec.family == "choice":
            body = self.fields(raw, path, ("choices", "reason", "sources"), ("choices", "reason"))
            choices = body["choices"]
            if not isinstance(choices, list) or len(choices) < 2 or len(set(map(str, choices))) != len(choices):
                self.fail(f"{path}.choices", f"must list at least two different options, got {choices!r}")
            for i, option in enumerate(choices):
                if not _member(option, spec.choices):
                    self.fail(f"{path}.choices[{i}]", f"must be one of {', '.join(map(str, spec.choices))}, "
                              f"got {option!r}")
            return Prior(reason=self.reason(body, path), choices=tuple(choices),
                         sources=self.source_ids(body, path, required=False, verified=False))
        body = self.fields(raw, path, ("range", "unit", "scale", "reason", "sources"), ("range", "unit", "reason"))
        unit = self._unit(body["unit"], f"{path}.unit", spec.family)
        bounds = body["range"]
        if not isinstance(bounds, list) or len(bounds) != 2:
            self.fail(f"{path}.range", f"must be [low, high], got {bounds!r}")
        low = self._in_family(bounds[0], unit, f"{path}.range[0]", spec)
        high = self._in_family(bounds[1], unit, f"{path}.range[1]", spec)
        if not low < high:
            self.fail(f"{path}.range", f"is {'empty' if low == high else 'inverted'}: low {low:g} must be below "
                      f"high {high:g} (a value that was published is a figure, not a prior)")
        scale = self.choice(body, "scale", path, ("linear", "log"), default="linear")
        if scale == "log" and low <= 0:
            self.fail(f"{path}.range[0]", f"must be > 0 on a log scale, got {low:g}")
        return Prior(reason=self.reason(body, path), low=low, high=high, unit=unit, scale=scale,
                     sources=self.source_ids(body, path, required=False, verified=False))

    def _unit(self, unit: Any, path: str, family: str) -> str:
        allowed = FAMILIES[family].units
        if unit not in allowed:
            self.fail(path, f"must be one of {', '.join(allowed)} here, got {unit!r}")
        return unit

    def _in_family(self, value: Any, unit: str, path: str, spec: ParameterSpec) -> float:
        """A number in ``unit`` whose SI value lies in the family's range (and above ``spec.minimum``)."""
        family = FAMILIES[spec.family]
        per_si = 1.0 / UNIT_SCALE[unit]
        low = family.low if spec.minimum is None else max(family.low, spec.minimum)
        # no bound of its own: the model's limit (a multiple or duration beyond 1e12 leaves the float range
        # in its products; counts are retry caps)
        high = min(family.high, MAX_COUNT if family.whole else MAX_VALUE)
        number = self.number(value, path, minimum=low * per_si, maximum=high * per_si)
        if family.whole:
            try:
                _validate.whole("value", number)
            except ValueError:
                self.fail(path, f"must be a whole number, got {value!r}")
        return number


def _member(value: Any, options: Sequence) -> bool:
    """``value in options`` without ``1 == True``: a true/false setting must be a YAML boolean."""
    return any(value == option and type(value) is type(option) for option in options)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _offset(stamp: _dt.datetime) -> str:
    minutes = int(stamp.utcoffset().total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
