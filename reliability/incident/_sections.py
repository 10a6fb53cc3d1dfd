"""Readers of the sections of an incident document other than figures: sources, infrastructures,
services, mechanisms, events and what was not published."""

from __future__ import annotations

from typing import Mapping

from ._reader import Reader
from .schema import Event, Infrastructure, Instant, Mechanism, NotPublished, Parameter, Service, Source
from .vocabulary import EVENT_KINDS, MECHANISM_KINDS, SOURCE_KINDS, ParameterSpec

HEADROOM = ParameterSpec("amount", "spare capacity over the normal load")
AUTOSCALED = ParameterSpec("choice", "whether the platform adds capacity by itself", choices=(True, False))
AUTOSCALE_DELAY = ParameterSpec("duration", "time from overload to added capacity", required=False)
TRAFFIC_SHARE = ParameterSpec("share", "share of the normal traffic it serves", required=False)
EXPOSURE = ParameterSpec("share", "share of its requests that meet the failures of its infrastructure, against the "
                         "others there", required=False)

_EVENT_BASE = ("id", "kind", "time", "statement", "sources", "infrastructures", "services", "starts", "ends",
               "hypothesis", "reason", "note")
_LINKS = {"load_shedding": ("until",), "failover": ("from", "to"), "unknown_intervention": ("alternatives",)}


def parse_sources(reader: Reader, doc: Mapping) -> tuple[Source, ...]:
    items, ids = reader.entries(doc, "sources")
    sources = []
    for i, raw in enumerate(items):
        path = f"sources[{i}]"
        reader.fields(raw, path, ("id", "kind", "title", "publisher", "url", "reference", "note"),
                      ("id", "kind", "title", "publisher"))
        url = raw.get("url")
        if url is not None and (not isinstance(url, str) or not url.startswith(("http://", "https://"))):
            reader.fail(f"{path}.url", f"must be an http(s) URL, got {url!r}")
        reference = reader.text(raw, "reference", path, required=url is None)
        sources.append(Source(id=ids[i], kind=reader.choice(raw, "kind", path, SOURCE_KINDS),
                              title=reader.text(raw, "title", path), publisher=reader.text(raw, "publisher", path),
                              url=url, reference=reference, note=reader.text(raw, "note", path, required=False)))
    reader.sources = {source.id: source for source in sources}
    return tuple(sources)


def service_placement(reader: Reader, doc: Mapping, infrastructure_ids: list[str]) -> dict[str, str]:
    """Service id -> infrastructure id, checked (the figures need it before the services are read)."""
    items, ids = reader.entries(doc, "services")
    placement = {}
    for i, raw in enumerate(items):
        infrastructure = raw.get("infrastructure")
        if infrastructure not in infrastructure_ids:
            reader.fail(f"services[{i}].infrastructure", f"unknown infrastructure {infrastructure!r} "
                        f"(known: {', '.join(infrastructure_ids)})")
        placement[ids[i]] = infrastructure
    return placement


def parse_infrastructures(reader: Reader, items: list, ids: list[str]) -> tuple[Infrastructure, ...]:
    result = []
    for i, raw in enumerate(items):
        path, key = f"infrastructures[{i}]", f"infrastructures.{ids[i]}"
        reader.fields(raw, path, ("id", "name", "description", "autoscaled", "autoscale_delay", "headroom",
                                  "traffic_share", "depends_on", "sources"), ("id", "name"))
        autoscaled = reader.parameter(raw.get("autoscaled"), f"{path}.autoscaled", AUTOSCALED, f"{key}.autoscaled")
        delay_spec = AUTOSCALE_DELAY
        if autoscaled.known and autoscaled.value is False:
            if "autoscale_delay" in raw:
                reader.fail(f"{path}.autoscale_delay", "does not apply: the infrastructure did not autoscale")
        else:
            delay_spec = ParameterSpec("duration", AUTOSCALE_DELAY.meaning)
        depends_on = reader.ids(raw, "depends_on", path, ids, "infrastructure")
        if ids[i] in depends_on:
            reader.fail(f"{path}.depends_on", f"infrastructure {ids[i]!r} cannot depend on itself")
        result.append(Infrastructure(
            id=ids[i], name=reader.text(raw, "name", path),
            headroom=reader.parameter(raw.get("headroom"), f"{path}.headroom", HEADROOM, f"{key}.headroom"),
            autoscaled=autoscaled,
            autoscale_delay=reader.parameter(raw.get("autoscale_delay"), f"{path}.autoscale_delay", delay_spec,
                                             f"{key}.autoscale_delay"),
            traffic_share=reader.parameter(raw.get("traffic_share"), f"{path}.traffic_share", TRAFFIC_SHARE,
                                           f"{key}.traffic_share"),
            depends_on=depends_on, description=reader.text(raw, "description", path, required=False),
            sources=reader.source_ids(raw, path, required=False)))
    return tuple(result)


def parse_services(reader: Reader, doc: Mapping) -> tuple[Service, ...]:
    items, ids = reader.entries(doc, "services")
    result = []
    for i, raw in enumerate(items):
        path = f"services[{i}]"
        reader.fields(raw, path, ("id", "name", "infrastructure", "traffic_share", "exposure", "note"),
                      ("id", "name", "infrastructure"))
        result.append(Service(id=ids[i], name=reader.text(raw, "name", path), infrastructure=raw["infrastructure"],
                              traffic_share=reader.parameter(raw.get("traffic_share"), f"{path}.traffic_share",
                                                             TRAFFIC_SHARE, f"services.{ids[i]}.traffic_share"),
                              note=reader.text(raw, "note", path, required=False),
                              exposure=reader.parameter(raw.get("exposure"), f"{path}.exposure", EXPOSURE,
                                                        f"services.{ids[i]}.exposure")))
    return tuple(result)


def _provenance(reader: Reader, raw: Mapping, path: str) -> tuple[bool, tuple[str, ...], str]:
    """(hypothesis, sources, reason): a named item cites verified sources; a hypothesis says why."""
    hypothesis = reader.flag(raw, "hypothesis", path)
    if hypothesis:
        return True, reader.source_ids(raw, path, required=False, verified=False), reader.reason(raw, path)
    sources = reader.source_ids(raw, path, required=True)
    return False, sources, reader.text(raw, "reason", path, required=False)


def parse_mechanisms(reader: Reader, doc: Mapping, infrastructure_ids: list[str],
                     placement: Mapping[str, str]) -> tuple[Mechanism, ...]:
    items, ids = reader.entries(doc, "mechanisms")
    result = []
    for i, raw in enumerate(items):
        path = f"mechanisms[{i}]"
        kind_name = raw.get("kind")
        if not isinstance(kind_name, str) or kind_name not in MECHANISM_KINDS:
            reader.fail(f"{path}.kind", f"unknown mechanism kind {kind_name!r}: the model has no such component "
                        f"(supported: {', '.join(MECHANISM_KINDS)})")
        kind = MECHANISM_KINDS[kind_name]
        grouped = {name for names in kind.groups.values() for name in names}
        top = [name for name in kind.parameters if name not in grouped]
        reader.fields(raw, path, ("id", "kind", "statement", "infrastructures", "services", "sources", "hypothesis",
                                  "reason", "note", *top, *kind.groups), ("id", "kind", "statement"))
        infrastructures = reader.ids(raw, "infrastructures", path, infrastructure_ids, "infrastructure", required=True)
        services = reader.ids(raw, "services", path, list(placement), "service")
        for j, service in enumerate(services):
            if placement[service] not in infrastructures:
                reader.fail(f"{path}.services[{j}]", f"service {service!r} runs on {placement[service]!r}, which is "
                            f"not among the mechanism's infrastructures {list(infrastructures)}")
        hypothesis, sources, reason = _provenance(reader, raw, path)
        parameters = _kind_parameters(reader, raw, path, kind.parameters, kind.groups, f"mechanisms.{ids[i]}")
        result.append(Mechanism(id=ids[i], kind=kind_name, infrastructures=infrastructures, parameters=parameters,
                                statement=reader.text(raw, "statement", path), sources=sources, services=services,
                                hypothesis=hypothesis, reason=reason, note=reader.text(raw, "note", path,
                                                                                        required=False)))
    return tuple(result)


def _kind_parameters(reader: Reader, raw: Mapping, path: str, specs: Mapping[str, ParameterSpec],
                     groups: Mapping[str, tuple[str, ...]], key: str) -> dict[str, Parameter]:
    """The parameters of a mechanism or event kind, those of a group read from its nested mapping."""
    where = {name: group for group, names in groups.items() for name in names}
    nested = {}
    for group, names in groups.items():
        body = raw.get(group)
        if body is None and any(specs[name].required for name in names):
            reader.fail(f"{path}.{group}", f"is required (fields: {', '.join(names)})")
        nested[group] = reader.fields(body or {}, f"{path}.{group}", names)
    parameters = {}
    for name, spec in specs.items():
        group = where.get(name)
        source, field_path = (nested[group], f"{path}.{group}.{name}") if group else (raw, f"{path}.{name}")
        parameter = reader.parameter(source.get(name), field_path, spec, f"{key}.{name}")
        if parameter is not None:
            parameters[name] = parameter
    return parameters


def event_times(reader: Reader, doc: Mapping) -> tuple[list, list[str], dict[str, Instant]]:
    """First pass over the events: their kinds checked and their times read (figures refer to them)."""
    items, ids = reader.entries(doc, "events")
    times = {}
    for i, raw in enumerate(items):
        kind = raw.get("kind")
        if not isinstance(kind, str) or kind not in EVENT_KINDS:
            reader.fail(f"events[{i}].kind", f"unknown event kind {kind!r}: the model has no such event "
                        f"(supported: {', '.join(EVENT_KINDS)})")
        if raw.get("time") is None:
            reader.fail(f"events[{i}].time", "is required (write {unknown: {range: [...], reason: ...}} when it "
                        "was not published)")
        times[ids[i]] = reader.instant(raw["time"], f"events[{i}].time", f"events.{ids[i]}.time")
    return items, ids, times


def parse_events(reader: Reader, items: list, ids: list[str], times: Mapping[str, Instant],
                 mechanisms: tuple[Mechanism, ...], infrastructure_ids: list[str],
                 placement: Mapping[str, str]) -> tuple[Event, ...]:
    scope = _EventScope(reader, {m.id: m for m in mechanisms}, infrastructure_ids, placement, ids)
    return tuple(_parse_event(scope, raw, f"events[{i}]", ids[i], times[ids[i]]) for i, raw in enumerate(items))


class _EventScope:
    """What an event may refer to: mechanisms, infrastructures, services, other events."""

    def __init__(self, reader, mechanisms, infrastructure_ids, placement, event_ids):
        self.reader, self.mechanisms = reader, mechanisms
        self.infrastructure_ids, self.placement, self.event_ids = infrastructure_ids, placement, event_ids


def _parse_event(scope: _EventScope, raw: Mapping, path: str, ident: str, time: Instant) -> Event:
    reader = scope.reader
    kind_name = raw["kind"]
    kind = EVENT_KINDS[kind_name]
    reader.fields(raw, path, (*_EVENT_BASE, *kind.parameters, *_LINKS.get(kind_name, ())),
                  ("id", "kind", "time", "statement"))
    infrastructures = reader.ids(raw, "infrastructures", path, scope.infrastructure_ids, "infrastructure",
                                 required=kind.needs_infrastructures)
    services = reader.ids(raw, "services", path, list(scope.placement), "service")
    starts, ends = _effects(scope, raw, path, kind_name, infrastructures)
    hypothesis, sources, reason = _provenance(reader, raw, path)
    until, moves_from, moves_to = _links(scope, raw, path, kind_name, ident)
    alternatives = ()
    if kind_name == "unknown_intervention":
        alternatives = _alternatives(scope, raw, path, ident, time, infrastructures, sources, reason)
    return Event(id=ident, kind=kind_name, time=time, statement=reader.text(raw, "statement", path), sources=sources,
                 infrastructures=infrastructures, services=services, starts=starts, ends=ends,
                 parameters=_kind_parameters(reader, raw, path, kind.parameters, {}, f"events.{ident}"),
                 until=until, moves_from=moves_from, moves_to=moves_to, alternatives=alternatives,
                 hypothesis=hypothesis, reason=reason, note=reader.text(raw, "note", path, required=False))


def _effects(scope: _EventScope, raw: Mapping, path: str, kind_name: str,
             infrastructures: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The mechanisms an event switches on and off, where the kind allows and needs them."""
    reader, kind = scope.reader, EVENT_KINDS[kind_name]
    known = list(scope.mechanisms)
    lists = {}
    for key, needed in (("starts", kind.needs_starts), ("ends", kind.needs_ends)):
        if kind.category == "marker" and key in raw:
            reader.fail(f"{path}.{key}", f"a {kind_name} event is an observation: it cannot switch mechanisms")
        lists[key] = reader.ids(raw, key, path, known, "mechanism", required=needed)
        for j, mechanism in enumerate(lists[key]):
            acts_on = scope.mechanisms[mechanism].infrastructures
            stray = [i for i in infrastructures if i not in acts_on]
            if stray:
                reader.fail(f"{path}.{key}[{j}]", f"mechanism {mechanism!r} acts on {list(acts_on)}, not on "
                            f"{stray} (the event's infrastructures)")
    return lists["starts"], lists["ends"]


def _links(scope: _EventScope, raw: Mapping, path: str, kind_name: str, ident: str):
    reader = scope.reader
    until = moves_from = moves_to = None
    if kind_name == "load_shedding" and raw.get("until") is not None:
        until = raw["until"]
        if until not in scope.event_ids or until == ident:
            reader.fail(f"{path}.until", f"must be the id of another event, got {until!r}")
    if kind_name == "failover":
        moves_from, moves_to = raw.get("from"), raw.get("to")
        for key, value in (("from", moves_from), ("to", moves_to)):
            if value is None:
                reader.fail(f"{path}.{key}", "is required for a failover (an infrastructure id)")
            if value not in scope.infrastructure_ids:
                reader.fail(f"{path}.{key}", f"unknown infrastructure {value!r} "
                            f"(known: {', '.join(scope.infrastructure_ids)})")
        if moves_from == moves_to:
            reader.fail(f"{path}.to", f"must differ from 'from' ({moves_from!r})")
    return until, moves_from, moves_to


def _alternatives(scope: _EventScope, raw: Mapping, path: str, ident: str, time: Instant,
                  infrastructures: tuple[str, ...], sources: tuple[str, ...], reason: str) -> tuple[Event, ...]:
    """The interventions an unknown one may have been: each a hypothesis sharing the time and place."""
    reader = scope.reader
    items = raw.get("alternatives")
    if not isinstance(items, list) or len(items) < 2:
        reader.fail(f"{path}.alternatives", f"must list at least two interventions it may have been, got {items!r}")
    allowed = [k for k, spec in EVENT_KINDS.items() if spec.category == "intervention" and k != "unknown_intervention"]
    result = []
    for j, item in enumerate(items):
        apath = f"{path}.alternatives[{j}]"
        kind_name = reader.choice(reader.mapping(item, apath), "kind", apath, allowed)
        kind = EVENT_KINDS[kind_name]
        reader.fields(item, apath, ("kind", "starts", "ends", "note", *kind.parameters, *_LINKS.get(kind_name, ())))
        starts, ends = _effects(scope, item, apath, kind_name, infrastructures)
        until, moves_from, moves_to = _links(scope, item, apath, kind_name, ident)
        key = f"events.{ident}.{kind_name}"
        result.append(Event(id=f"{ident}.{kind_name}", kind=kind_name, time=time, statement=raw["statement"],
                            sources=sources, infrastructures=infrastructures, starts=starts, ends=ends,
                            parameters=_kind_parameters(reader, item, apath, kind.parameters, {}, key),
                            until=until, moves_from=moves_from, moves_to=moves_to, hypothesis=True,
                            reason=reason, note=reader.text(item, "note", apath, required=False)))
    if len({event.kind for event in result}) != len(result):
        reader.fail(f"{path}.alternatives", "lists the same kind twice")
    return tuple(result)


def parse_not_published(reader: Reader, doc: Mapping) -> tuple[NotPublished, ...]:
    items, ids = reader.entries(doc, "not_published", required=False)
    result = []
    for i, raw in enumerate(items):
        path = f"not_published[{i}]"
        reader.fields(raw, path, ("id", "description", "note"), ("id", "description"))
        result.append(NotPublished(id=ids[i], description=reader.text(raw, "description", path),
                                   note=reader.text(raw, "note", path, required=False)))
    return tuple(result)

