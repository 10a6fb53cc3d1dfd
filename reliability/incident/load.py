"""Read, validate and look up incident files of schema ``reliability-incident/2``.

:func:`load` takes a name in the incident folder (a file name without ``.yaml``) or a path, and returns an
:class:`~reliability.incident.schema.Incident`, or raises :class:`IncidentFileError` naming the file,
the field path and the reason. The folder is :data:`INCIDENT_FOLDER` inside the data folder
(:func:`reliability.paths.data_dir`, which ``$RELIABILITY_DATA`` overrides).

A version-1 file is refused with a message saying how to migrate it, not converted: version 2
asks for what version 1 could not say (each failure figure's observation level, the events, the
mechanisms, a prior for every unknown), and a converter would have to choose those silently.

Examples
--------
>>> name = available_incidents()[0]
>>> incident = load(name)
>>> incident.id == name, incident.path.name == name + ".yaml"
(True, True)
>>> all(m.kind in MECHANISM_KINDS for m in incident.mechanisms)
True
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import paths
from .._validate import ArgumentTypeError, describe
from ._checks import check_incident
from ._figures import FigureContext, parse_figures
from ._reader import Reader
from ._sections import (
    event_times, parse_events, parse_infrastructures, parse_mechanisms, parse_not_published, parse_services,
    parse_sources, service_placement,
)
from .schema import Incident, IncidentFileError
from .vocabulary import MECHANISM_KINDS, PREVIOUS_SCHEMA, SCHEMA

__all__ = ["INCIDENT_FOLDER", "incident_folder", "available_incidents", "incident_path", "parse_incident", "load",
           "MIGRATION"]

#: Where incident files live, inside the data folder (:func:`reliability.paths.incidents_dir`).
INCIDENT_FOLDER: tuple[str, ...] = ("incidents",)

_TOP_LEVEL = ("schema", "id", "title", "organisation", "summary", "time_zone", "time_zone_label", "time_zone_note",
              "start", "sources", "infrastructures", "services", "mechanisms", "events", "figures", "not_published")

MIGRATION = (
    f"this is a {PREVIOUS_SCHEMA} file; this loader reads {SCHEMA} and does not convert it, because version 2 "
    "needs what version 1 could not say. To migrate: set schema to " + SCHEMA + "; drop date (start gives it); "
    "write start as a time; move autoscaled and the headroom unknown onto each infrastructure; turn the "
    "unknowns into priors where they act (surge multiple on a mechanism, rollback time and duration on a "
    "rollback event, retries on a retry_storm policy); add mechanisms and events; give each figure a quantity "
    "(failure_fraction -> failure_over_window, recovery_time -> time_to_recovery, improvement_ratio -> "
    "improvement_between_windows, resolution_time -> time_to_resolution, role context -> quantity context) "
    "and, for a failure figure, its observation_level; replace model windows in seconds by events or "
    "timestamps; source kinds become official_statement, postmortem, press or unverified_copy. The README "
    "beside the version-2 files (data/incidents/README.md, section 'From version 1') shows each step"
)


def incident_folder() -> Path:
    """The folder of version-2 incident files: :data:`INCIDENT_FOLDER` inside the data folder.

    Examples
    --------
    >>> incident_folder() == paths.incidents_dir()
    True
    """
    return paths.data_dir().joinpath(*INCIDENT_FOLDER)


def available_incidents() -> tuple[str, ...]:
    """The names :func:`load` accepts, sorted.

    Examples
    --------
    >>> all(incident_path(name).stem == name for name in available_incidents())
    True
    """
    folder = incident_folder()
    return tuple(sorted(p.stem for p in folder.glob("*.yaml"))) if folder.is_dir() else ()


def incident_path(name: str | os.PathLike) -> Path:
    """The file of an incident: an existing ``.yaml``/``.yml`` path, or a name in :func:`incident_folder`."""
    if not isinstance(name, (str, os.PathLike)):
        raise ArgumentTypeError(f"incident (name) must be a name in {incident_folder()} or a path to a .yaml file, "
                                f"got {describe(name)}")
    text = os.fspath(name)
    if not isinstance(text, str) or "\x00" in text or len(text) > 4096:
        raise ValueError(f"incident (name) must be a name in {incident_folder()} or an existing .yaml path, "
                         f"got {describe(name)}")
    candidate = Path(name)
    try:
        if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
            return candidate
    except OSError:  # a name too long for the file system, or one it cannot hold
        raise ValueError(f"incident (name) must be a name in {incident_folder()} or an existing .yaml path, "
                         f"got {describe(name)}") from None
    if not isinstance(name, str) or not name.strip() or "/" in name or "\\" in name:
        raise ValueError(f"incident must be a name in {incident_folder()} or an existing .yaml path, got {name!r}")
    stem = name.removesuffix(".yaml")
    path = incident_folder() / f"{stem}.yaml"
    try:
        found = path.is_file()
    except OSError:
        found = False
    if not found:
        raise ValueError(f"no incident named {name!r} in {incident_folder()} "
                         f"(available: {', '.join(available_incidents()) or 'none'})")
    return path


def _header(reader: Reader, doc: Mapping) -> dict[str, Any]:
    """Schema, names, time zone and start: what every later section needs."""
    schema = doc.get("schema")
    if schema == PREVIOUS_SCHEMA:
        reader.fail("schema", MIGRATION)
    if schema != SCHEMA:
        reader.fail("schema", f"must be {SCHEMA!r}, got {schema!r}")
    for key in doc:
        if key not in _TOP_LEVEL:
            reader.fail(str(key), f"is not a field of {SCHEMA} (fields: {', '.join(_TOP_LEVEL)})")
    zone_name = reader.text(doc, "time_zone", "")
    try:
        reader.zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        reader.fail("time_zone", f"must be an IANA time zone such as Europe/Berlin or UTC, got {zone_name!r}")
    raw_start = doc.get("start")
    if isinstance(raw_start, Mapping) and ("between" in raw_start or "unknown" in raw_start):
        reader.fail("start", "must be published (a timestamp, or {about: ...}): it is the model's time origin; "
                    "an unpublished trigger time belongs on its trigger_start event")
    if raw_start is None:
        reader.fail("start", "is required")
    start = reader.instant(raw_start, "start", "start")
    reader.origin = start.value
    return {"id": reader.text(doc, "id", ""), "title": reader.text(doc, "title", ""),
            "organisation": reader.text(doc, "organisation", ""), "summary": reader.text(doc, "summary", ""),
            "time_zone": zone_name, "start": start, **_zone_label(reader, doc, start.value)}


def _zone_label(reader: Reader, doc: Mapping, start) -> dict[str, Any]:
    """The zone's name as the statement prints it; a label the zone does not use on that date needs a note."""
    label = reader.text(doc, "time_zone_label", "", required=False) or None
    note = reader.text(doc, "time_zone_note", "", required=False)
    used = start.astimezone(reader.zone).tzname()
    if label is not None and label != used and not note:
        reader.fail("time_zone_label", f"{label!r} is not what {doc['time_zone']} calls its time on "
                    f"{start.date().isoformat()} ({used!r}): say in time_zone_note which one the published times "
                    "follow, and write them with that offset")
    return {"time_zone_label": label, "time_zone_note": note}


def parse_incident(document: Any, name: str = "<incident>") -> Incident:
    """Validate a parsed document (a dict, as from YAML) and build an :class:`Incident`.

    Raises
    ------
    IncidentFileError
        Naming ``name``, the field path and the reason.
    """
    if not isinstance(name, str):
        raise ArgumentTypeError(f"name must be the file's name (a string), got {describe(name)}")
    reader = Reader(name)
    doc = reader.mapping(document, "document")
    header = _header(reader, doc)
    sources = parse_sources(reader, doc)
    raw_infrastructures, infrastructure_ids = reader.entries(doc, "infrastructures")
    placement = service_placement(reader, doc, infrastructure_ids)
    raw_events, event_ids, times = event_times(reader, doc)
    figures = parse_figures(reader, doc, FigureContext(placement, infrastructure_ids, times, header["start"]))
    infrastructures = parse_infrastructures(reader, raw_infrastructures, infrastructure_ids)
    services = parse_services(reader, doc)
    mechanisms = parse_mechanisms(reader, doc, infrastructure_ids, placement)
    events = parse_events(reader, raw_events, event_ids, times, mechanisms, infrastructure_ids, placement)
    figures = tuple(replace(f, role="fixes_parameter", fixes=tuple(reader.figure_uses[f.id]))
                    if f.id in reader.figure_uses else f for f in figures)
    incident = Incident(**header, sources=sources, infrastructures=infrastructures, services=services,
                        mechanisms=mechanisms, events=events, figures=figures, unknowns=tuple(reader.unknowns),
                        not_published=parse_not_published(reader, doc))
    check_incident(reader, incident)
    return incident


def load(name: str | os.PathLike) -> Incident:
    """Read and validate an incident file by name (its file name without ``.yaml``) or path.

    Raises
    ------
    IncidentFileError
        A file that is malformed, contradicts itself, asks for a mechanism the model lacks, or is
        of version 1 (the message says how to migrate).
    ValueError
        No such incident (the message lists those available).
    """
    import yaml

    path = incident_path(name)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise IncidentFileError(path.name, "", f"not valid YAML: {error}") from None
    except UnicodeDecodeError as error:
        raise IncidentFileError(path.name, "", f"not a UTF-8 text file: {error}") from None
    except RecursionError:
        raise IncidentFileError(path.name, "", "not a usable YAML document: nested too deeply") from None
    except OSError as error:
        raise IncidentFileError(path.name, "", f"cannot be read: {error.strerror or error}") from None
    incident = parse_incident(document, path.name)
    if incident.id != path.stem:
        raise IncidentFileError(path.name, "id", f"must match the file name {path.stem!r}, got {incident.id!r}")
    return replace(incident, path=path)
