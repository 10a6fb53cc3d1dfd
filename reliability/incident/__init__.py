"""Incidents as published, schema ``reliability-incident/2``: load and validate a file, and read
what a model of it needs.

The schema is described for writers in ``data/incidents/README.md``; the supported kinds of
mechanism, event and figure quantity are the tables of :mod:`reliability.incident.vocabulary`.

Examples
--------
>>> from reliability.incident import available_incidents, load
>>> incident = load(available_incidents()[0])
>>> incident.origin == incident.start.value and incident.origin.utcoffset() is not None
True
"""

from ..paths import data_dir
from .load import INCIDENT_FOLDER, MIGRATION, available_incidents, incident_folder, incident_path, load, parse_incident
from .schema import (
    Event, Figure, Incident, IncidentFileError, Infrastructure, Instant, Mechanism, Moment, NotPublished, Parameter,
    Prior, Scope, Service, Source, Window,
)
from .vocabulary import EVENT_KINDS, MECHANISM_KINDS, OBSERVATION_LEVELS, QUANTITIES, SCHEMA, from_si, to_si
from .scenario import ASSUMPTIONS, Assumption, Scenario, Unknown, Variant, build_scenario
from .timeline import Timeline
from .measure import measure, modelled, readings
from .infer import LatentPrior, figure_readings, infer
from .posterior import Posterior
from .smc import SMCResult, abc_smc
from .calibration import CoverageResult, Truth, coverage, draw_truth, synthesise_twin, twin_scenario
from .sensitivity import PLAUSIBLE, PlausibleRange, Screen, plausible_ranges, rerun, screen, surviving
from .crosscheck import REPLAY_SIZES, cross_check, dynamics_components
from .describe import event_table, failure_bands, local_time, name_list, unknown_label, zone_label
from .counterfactuals import (
    autoscaled_fate, autoscaled_platforms, fixed_platforms, intervention_timing, outcomes, policy_counterfactuals,
    required_headroom,
)

__all__ = [
    "data_dir", "INCIDENT_FOLDER", "MIGRATION", "SCHEMA", "EVENT_KINDS", "MECHANISM_KINDS", "OBSERVATION_LEVELS", "QUANTITIES",
    "available_incidents", "incident_folder", "incident_path", "load", "parse_incident", "from_si", "to_si",
    "Event", "Figure", "Incident", "IncidentFileError", "Infrastructure", "Instant", "Mechanism", "Moment",
    "NotPublished", "Parameter", "Prior", "Scope", "Service", "Source", "Window",
    "ASSUMPTIONS", "Assumption", "Scenario", "Unknown", "Variant", "build_scenario", "Timeline", "measure", "modelled",
    "readings", "LatentPrior", "Posterior", "SMCResult", "abc_smc", "CoverageResult", "Truth", "coverage", "draw_truth",
    "synthesise_twin", "twin_scenario", "PLAUSIBLE", "PlausibleRange", "Screen", "plausible_ranges", "rerun", "screen",
    "surviving", "figure_readings", "infer", "autoscaled_fate", "autoscaled_platforms", "fixed_platforms",
    "intervention_timing", "outcomes", "policy_counterfactuals", "required_headroom", "event_table", "failure_bands",
    "local_time", "name_list", "unknown_label", "zone_label", "REPLAY_SIZES", "cross_check", "dynamics_components",
]
