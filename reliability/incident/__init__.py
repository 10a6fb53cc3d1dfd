"""Incidents as published, schema ``reliability-incident/2``: load and validate a file, and read
what a model of it needs.

The schema is described for writers in ``data/incidents/next/README.md``; the supported kinds of
mechanism, event and figure quantity are the tables of :mod:`reliability.incident.vocabulary`.

Examples
--------
>>> from reliability.incident import available_incidents, load
>>> incident = load(available_incidents()[0])
>>> incident.origin == incident.start.value and incident.origin.utcoffset() is not None
True
"""

from .load import INCIDENT_FOLDER, MIGRATION, available_incidents, incident_folder, incident_path, load, parse_incident
from .schema import (
    Event, Figure, Incident, IncidentFileError, Infrastructure, Instant, Mechanism, Moment, NotPublished, Parameter,
    Prior, Scope, Service, Source, Window,
)
from .vocabulary import EVENT_KINDS, MECHANISM_KINDS, OBSERVATION_LEVELS, QUANTITIES, SCHEMA, from_si, to_si

__all__ = [
    "INCIDENT_FOLDER", "MIGRATION", "SCHEMA", "EVENT_KINDS", "MECHANISM_KINDS", "OBSERVATION_LEVELS", "QUANTITIES",
    "available_incidents", "incident_folder", "incident_path", "load", "parse_incident", "from_si", "to_si",
    "Event", "Figure", "Incident", "IncidentFileError", "Infrastructure", "Instant", "Mechanism", "Moment",
    "NotPublished", "Parameter", "Prior", "Scope", "Service", "Source", "Window",
]
