"""Hostile input to the public calls of reliability.incident (issue 10, the incident pipeline).

Bad paths and file contents give an error naming the file, field and reason (IncidentFileError)
or the argument; every public call refuses a value of the wrong type with a TypeError naming the
argument (an incident, scenario, timeline or inference where a number or a string stood) and a bad
value with a ValueError naming it, never an AttributeError, KeyError, OSError, a warning or a NaN.
Each case failed on the code before. The counterfactuals take a stand-in inference (the accepted
settings at the prior's midpoints), so this module does not depend on the calibration's speed.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
import yaml

from reliability.incident import (
    ASSUMPTIONS, IncidentFileError, autoscaled_fate, build_scenario, cross_check, dynamics_components, event_table,
    failure_bands, from_si, incident_path, intervention_timing, load, local_time, measure, modelled, name_list,
    outcomes, parse_incident, policy_counterfactuals, readings, required_headroom, to_si, unknown_label, zone_label,
)
from reliability.retry import FixedRetries

from hostile_harness import attack  # noqa: E402  (tests/ is on sys.path under pytest)

PROTON = "proton-2025-01-09"
SCENARIO = build_scenario(load(PROTON), time_step=300.0)
INCIDENT = SCENARIO.incident
VALUES = SCENARIO.midpoints(2)
VARIANT = np.zeros(2, dtype=int)
TIMELINE = SCENARIO.run(VALUES, VARIANT)
FIGURE = next(f for f in INCIDENT.figures if modelled(f))
LEGACY = INCIDENT.infrastructures[0].id
with open(incident_path(PROTON), encoding="utf-8") as _handle:
    DOCUMENT = yaml.safe_load(_handle)


class StandIn:
    """The part of an inference the counterfactuals read: the scenario, the readings, the settings."""

    scenario, incident, readings = SCENARIO, INCIDENT, ("attempts", "requests")

    def settings(self, reading, which="accepted", limit=200):
        count = 1 if which == "best" else min(limit, 2)
        return SCENARIO.midpoints(count), np.zeros(count, dtype=int)


INFERENCE = StandIn()


# -- files: bad paths and bad contents -----------------------------------------------------------

@pytest.mark.parametrize("content, reason", [
    (b"\xff\xfe\x00\x01" * 10, "not a UTF-8 text file"),               # UnicodeDecodeError before
    (b"a: " + b"[" * 600 + b"]" * 600 + b"\n", "nested too deeply"),   # RecursionError before
    (b"- 1\n- 2\n", "document: must be a mapping"),
])
def test_a_bad_file_names_the_file_and_the_reason(tmp_path, content, reason):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(IncidentFileError, match=f"bad.yaml: .*{reason}"):
        load(path)


@pytest.mark.parametrize("name, error", [(3.0, TypeError), (None, TypeError), (["a"], TypeError),
                                         ("x" * 5000, ValueError), ("pro\x00ton", ValueError)])
def test_a_bad_name_is_refused_naming_it(name, error):
    # a float gave Path's TypeError, a 5,000-character name the file system's OSError
    with pytest.raises(error, match=r"incident \(name\) must be"):
        load(name)


def test_parse_incident_checks_the_name_and_keeps_the_file_errors():
    with pytest.raises(TypeError, match="name must be the file's name"):
        parse_incident(DOCUMENT, None)
    broken = copy.deepcopy(DOCUMENT)
    broken["infrastructures"][0]["headroom"]["unknown"]["range"] = [math.nan, 3]
    with pytest.raises(IncidentFileError, match=r"x.yaml: infrastructures\[0\].headroom.unknown.range\[0\]"):
        parse_incident(broken, "x.yaml")


# -- build_scenario and Scenario.run ---------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    (dict(time_step=True), TypeError, "time_step must be a number"),        # True was 1 s before
    (dict(time_step=10**400), ValueError, "time_step"),
    (dict(assumptions=3.0), TypeError, "assumptions must be a mapping"),  # 'float' is not iterable
    (dict(assumptions={"timeout": math.nan}), ValueError, r"assumptions\['timeout'\]"),  # NaN timelines before
    (dict(assumptions={"max_wait": 0.0}), ValueError, r"assumptions\['max_wait'\] must be >= 0.001"),
    (dict(assumptions={"timeout": "30"}), TypeError, r"assumptions\['timeout'\]"),
])
def test_build_scenario_refuses_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        build_scenario(INCIDENT, **kwargs)
    with pytest.raises(TypeError, match="incident must be an Incident"):
        build_scenario(PROTON)   # AttributeError 'str' object has no attribute 'path' before


@pytest.mark.parametrize("change, error, match", [
    (lambda v: {k: x for k, x in v.items() if k != "infrastructures.legacy.headroom"}, ValueError,
     "values has no setting for the unknown 'infrastructures.legacy.headroom'"),   # KeyError before
    (lambda v: {**v, "infrastructures.legacy.headroom": np.array([math.nan, 1.0])}, ValueError,
     r"values\['infrastructures.legacy.headroom'\] must not be NaN"),              # p_fail NaN before
    (lambda v: {**v, "mechanisms.connection_surge.multiple": np.array([math.inf, 1.0])}, ValueError,
     "multiple'] must be finite"),                                                  # RuntimeWarning before
    (lambda v: {**v, "mechanisms.app_retries.max_retries": np.array([2.5, 1.0])}, ValueError,
     "max_retries'] must be a whole number"),
    (lambda v: {**v, "mechanisms.app_retries.backoff": np.array([7, 0])}, ValueError, r"backoff'\] must be <= 1"),
    (lambda v: {**v, "events.rollback.time": ["5", "6"]}, TypeError, r"values\['events.rollback.time'\]"),
    (lambda v: {**v, "events.rollback.duration": np.ones(3)}, ValueError, "one per sample of the variant"),
    (lambda v: 3.0, TypeError, "values must be a mapping"),
])
def test_scenario_run_checks_the_settings(change, error, match):
    with pytest.raises(error, match=match):
        SCENARIO.run(change(dict(VALUES)), VARIANT)


@pytest.mark.parametrize("variant, overrides, error, match", [
    (np.array([0, 9]), None, ValueError, "variant must be <= 1"),        # IndexError before
    (np.zeros(0, dtype=int), None, ValueError, "variant must be one variant index per sample"),
    (VARIANT, 3.0, TypeError, "overrides must be None or a mapping"),
    (VARIANT, {"policy": 3.0}, TypeError, r"overrides\['policy'\] must be None or a retry policy"),
    (VARIANT, {"shift": None}, TypeError, r"overrides\['shift'\]"),
    (VARIANT, {"headroom": {LEGACY: math.inf}}, ValueError, r"overrides\['headroom'\]\['legacy'\] must be finite"),
    (VARIANT, {"autoscaled": {LEGACY: np.array([True, False])}}, TypeError, "must be True or False"),
    (VARIANT, {"speed": 2.0}, ValueError, "'speed' is not a counterfactual"),
    (VARIANT, {"headroom": {LEGACY: np.zeros(0)}}, ValueError, r"overrides\['headroom'\]\['legacy'\] must be one"),
    (0, None, ValueError, r"values\['events.rollback.time'\] must be one value, or one per sample"),
])
def test_scenario_run_checks_variant_and_overrides(variant, overrides, error, match):
    with pytest.raises(error, match=match):
        SCENARIO.run(VALUES, variant, overrides=overrides)


def test_scenario_helpers_name_their_argument():
    with pytest.raises(ValueError, match="samples must be a whole number >= 1"):
        SCENARIO.midpoints(0)
    with pytest.raises(TypeError, match="path must be a non-empty string"):
        SCENARIO.unknown(3.0)
    with pytest.raises(ValueError, match="path must name an unknown"):
        SCENARIO.unknown("nope")
    with pytest.raises(ValueError, match="samples must be a whole number <= 1,000,000"):
        SCENARIO.midpoints(10**9)  # would have allocated before


# -- reading a timeline ------------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, match", [
    (lambda: measure(None, FIGURE), TypeError, "timeline must be a Timeline"),   # AttributeError before
    (lambda: measure(TIMELINE, "f"), TypeError, "figure must be a Figure"),
    (lambda: measure(TIMELINE, FIGURE, 3), TypeError, "level must be a non-empty string"),
    (lambda: measure(TIMELINE, FIGURE, "abc"), ValueError, "level must be one of attempts, requests"),
    (lambda: readings(2.0), TypeError, "figure must be a Figure"),
    (lambda: TIMELINE.failures(LEGACY, "requests"), TypeError, "infrastructures must be a list"),
    (lambda: TIMELINE.failures([LEGACY], np.array(["requests"])), TypeError, "level must be one of"),
    (lambda: TIMELINE.load(["nowhere"]), ValueError, "infrastructures must be ids among"),   # KeyError before
    (lambda: TIMELINE.frame([LEGACY], "requests", 7), ValueError, "sample must be a whole number <= 1"),
    (lambda: TIMELINE.event_time(0.0), TypeError, "event_id must be an event id"),
    (lambda: TIMELINE.event_time("nope"), ValueError, "event_id must be one of"),
    (lambda: outcomes(TIMELINE, "legacy"), TypeError, "infrastructures must be a list"),
    (lambda: failure_bands(None, INCIDENT), TypeError, "timeline must be a Timeline"),
    (lambda: local_time(INCIDENT, 1e308), ValueError, "seconds must be <= 1e\\+11"),   # OverflowError before
    (lambda: local_time(INCIDENT, "600"), TypeError, "seconds must be a number"),
    (lambda: local_time(INCIDENT, 60.0, with_date="yes"), TypeError, "with_date must be True or False"),
    (lambda: local_time(None, 60.0), TypeError, "incident must be an Incident"),
    (lambda: zone_label("Europe/Zurich"), TypeError, "incident must be an Incident"),
    (lambda: event_table(3), TypeError, "incident must be an Incident"),
    (lambda: name_list("abc"), TypeError, "names must be a list"),
    (lambda: name_list([1, 2]), TypeError, "names must be a non-empty string"),
    (lambda: name_list(np.array(5.0)), TypeError, "names must be a list"),   # iteration over a 0-d array
    (lambda: unknown_label(None, INCIDENT), TypeError, "path must be a non-empty string"),
    (lambda: unknown_label("infrastructures", INCIDENT), ValueError, "path must be an unknown's path"),
    (lambda: to_si(2.0, ["h"]), TypeError, "unit must be one of"),                     # unhashable list before
    (lambda: from_si(2.0, None), TypeError, "unit must be one of"),
    (lambda: FIGURE.holds("0.5"), TypeError, "model_value must be a number"),
])
def test_reading_calls_name_their_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_tiny_settings_give_their_limit_without_an_underflow_warning():
    # a rollback at 1e-308 s, an autoscaler delay of 1e-308 s, a work share of 1e-308 underflowed (RuntimeWarning)
    with warnings.catch_warnings(), np.errstate(all="warn"):
        warnings.simplefilter("error")
        for path in ("events.rollback.time", "infrastructures.kubernetes.autoscale_delay"):
            timeline = SCENARIO.run({**VALUES, path: np.full(2, 1e-308)}, VARIANT)
            assert np.isfinite(timeline.failure_share([LEGACY], "requests")).all()
        tiny = build_scenario(INCIDENT, time_step=300.0, assumptions={"new_connection_work_share": 1e-308})
        assert np.isfinite(tiny.run(VALUES, VARIANT).load([LEGACY])).all()
        assert to_si(1e-308, "ms") == pytest.approx(1e-311, rel=1e-3) and from_si(5e-324, "percent") > 0


def test_holds_keeps_nan_and_inf_as_values_the_model_never_reaches():
    assert not FIGURE.holds(math.nan) and not FIGURE.holds(math.inf)


# -- counterfactuals and the cross-check ---------------------------------------------------------------

@pytest.mark.parametrize("call, error, match", [
    (lambda: required_headroom(object(), "requests"), TypeError, "inference must be the result"),
    (lambda: required_headroom(INFERENCE, "lost"), ValueError, "reading must be one of"),       # KeyError before
    (lambda: required_headroom(INFERENCE, "requests", target=math.nan), ValueError, "target"),
    (lambda: required_headroom(INFERENCE, "requests", iterations=10**9), ValueError, "iterations must be"),
    (lambda: required_headroom(INFERENCE, "requests", limit=True), TypeError, "limit"),
    (lambda: policy_counterfactuals(INFERENCE, None), TypeError, "reading must be a non-empty string"),
    (lambda: intervention_timing(INFERENCE, "requests", "30"), TypeError, "shifts_minutes"),
    (lambda: intervention_timing(INFERENCE, "requests", [1e308]), ValueError, "shifts_minutes must be <="),
    (lambda: intervention_timing(INFERENCE, "requests", []), ValueError, "shifts_minutes must be a list of 1"),
    (lambda: autoscaled_fate(INFERENCE, "requests", limit=0), ValueError, "limit must be a whole number >= 1"),
    (lambda: cross_check(INFERENCE, "requests", time_step=0.0), ValueError, "time_step must be > 0"),
    (lambda: cross_check(INFERENCE, "requests", seed=-1), ValueError, "seed must be a whole number"),
    (lambda: cross_check(INFERENCE, "requests", seed=True), TypeError, "seed must be a whole number"),
    (lambda: cross_check(INFERENCE, "requests", time_step="5"), TypeError, "time_step must be a number"),
    (lambda: dynamics_components(None, VALUES, 0), TypeError, "scenario must be a Scenario"),
    (lambda: dynamics_components(SCENARIO, VALUES, 5), ValueError, "variant must be a whole number <= 1"),
])
def test_counterfactuals_name_their_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_counterfactuals_run_on_valid_arguments():
    table = required_headroom(INFERENCE, "requests", limit=2, iterations=2)
    assert list(table.infrastructure) == [LEGACY] and not table.drop(columns="infrastructure").isna().any().any()
    timing = intervention_timing(INFERENCE, "requests", np.array([-30.0, 0.0]), limit=2)
    assert sorted(set(timing.shift_minutes)) == [-30.0, 0.0]


# -- hypothesis: one hostile argument at a time ---------------------------------------------------------

def _run_with(path):
    """A hostile setting of one unknown: the error names ``values['<path>']``."""
    return attack(lambda values: SCENARIO.run({**VALUES, path: values}, VARIANT), dict(values=VALUES[path]))


test_run_headroom = _run_with("infrastructures.legacy.headroom")
test_run_retries = _run_with("mechanisms.app_retries.max_retries")
test_run_backoff = _run_with("mechanisms.app_retries.backoff")
test_run_rollback_time = _run_with("events.rollback.time")
def _measured(scenario):
    """Every modelled figure at the prior's midpoints (a Scenario's choice unknowns have NaN bounds by design)."""
    timeline = scenario.run(scenario.midpoints(1), np.zeros(1, dtype=int))
    return [measure(timeline, f, level) for f in scenario.incident.figures if modelled(f) for level in readings(f)]


test_assumptions = attack(lambda **assumed: _measured(build_scenario(INCIDENT, time_step=300.0, assumptions=assumed)),
                          {name: a.value for name, a in ASSUMPTIONS.items()})
test_overrides = attack(lambda headroom, shift: SCENARIO.run(VALUES, VARIANT, overrides={
    "headroom": {LEGACY: headroom}, "shift": shift, "policy": FixedRetries(1)}), dict(headroom=0.5, shift=60.0))
test_local_time = attack(lambda seconds: local_time(INCIDENT, seconds), dict(seconds=600.0))
test_to_si = attack(lambda value: to_si(value, "min"), dict(value=2.0))
test_from_si = attack(lambda value: from_si(value, "percent"), dict(value=0.5))
test_frame = attack(lambda sample: TIMELINE.frame([LEGACY], "requests", sample), dict(sample=1))
test_required_headroom = attack(lambda target, limit, iterations: required_headroom(
    INFERENCE, "requests", target=target, limit=limit, iterations=iterations),
    dict(target=0.01, limit=1, iterations=2))


def test_a_hostile_leaf_of_the_file_is_refused_or_runs_without_nan():
    """A few leaves of the Proton file, each given each hostile value, parsed, built, run and measured."""
    leaves = [("infrastructures", 0, "headroom", "unknown", "range", 1), ("mechanisms", 0, "multiple", "unknown",
                                                                         "range", 0),
              ("events", 2, "duration", "unknown", "range", 1), ("start", "tolerance")]
    for path in leaves:
        for value in (math.nan, math.inf, -1.0, 0.0, True, "abc", None, 1e308, 1e-308, 10**400, [], {}):
            document = copy.deepcopy(DOCUMENT)
            node = document
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                try:
                    incident = parse_incident(document, "x.yaml")
                except IncidentFileError as error:
                    assert str(error).startswith("x.yaml: ") and path[0] in str(error), (path, value, error)
                    continue
                scenario = build_scenario(incident, time_step=600.0)
                timeline = scenario.run(scenario.midpoints(1), np.zeros(1, dtype=int))
                for figure in (f for f in incident.figures if modelled(f)):
                    for level in readings(figure):
                        assert not np.isnan(measure(timeline, figure, level)).any(), (path, value, figure.id)
