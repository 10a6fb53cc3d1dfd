"""Tests of schema reliability-incident/2 (reliability.incident): every file of the library loads;
each kind of bad file (malformed, self-contradicting, asking for a mechanism the model lacks, of
version 1) is refused naming the file, the field and the reason; units round-trip; and fuzzed
field values give either an incident or that one error, never another exception."""

import copy
import datetime as _dt
import math
import pickle
import re
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliability import paths
from reliability.incident import (
    EVENT_KINDS, MECHANISM_KINDS, QUANTITIES, SCHEMA, IncidentFileError, available_incidents, from_si,
    incident_folder, load, parse_incident, to_si,
)
from reliability.incident.vocabulary import FAMILIES, UNIT_SCALE

ROOT = Path(__file__).resolve().parent.parent
NEXT = ROOT / "data" / "incidents"
V1_PROTON = ROOT / "tests" / "test_incident_v1_proton.yaml"
# The research notes the library was written from (outside the repository; checks skip without them).
LIBRARY = sorted(p.stem for p in NEXT.glob("*.yaml"))


def prior(low, high, unit, scale="linear"):
    return {"unknown": {"range": [low, high], "unit": unit, "scale": scale, "reason": "Not published."}}


def base():
    """A small valid document: a surge on an API, rolled back; a mean and a peak failure figure."""
    return {
        "schema": SCHEMA, "id": "test", "title": "T", "organisation": "O", "summary": "S", "time_zone": "UTC",
        "start": "2024-01-01T10:00:00+00:00",
        "sources": [{"id": "pm", "kind": "postmortem", "title": "PM", "publisher": "O", "url": "https://example.org/pm"},
                    {"id": "copy", "kind": "unverified_copy", "title": "C", "publisher": "X",
                     "url": "https://example.org/copy"}],
        "infrastructures": [
            {"id": "api", "name": "API", "autoscaled": False, "headroom": prior(0.1, 2, "fraction", "log")},
            {"id": "db", "name": "DB", "autoscaled": True, "autoscale_delay": {"value": 2, "unit": "min",
                                                                            "sources": ["pm"]},
             "headroom": prior(10, 200, "percent", "log")}],
        "services": [{"id": "web", "name": "Web", "infrastructure": "api"},
                     {"id": "batch", "name": "Batch", "infrastructure": "db"}],
        "mechanisms": [{"id": "surge", "kind": "surge_requests", "statement": "s", "infrastructures": ["api"],
                        "sources": ["pm"], "multiple": prior(1.5, 10, "multiple", "log")}],
        "events": [
            {"id": "go", "kind": "trigger_start", "time": "2024-01-01T10:00:00+00:00", "statement": "s",
             "starts": ["surge"], "infrastructures": ["api"], "sources": ["pm"]},
            {"id": "undo", "kind": "rollback", "statement": "s", "ends": ["surge"], "sources": ["pm"],
             "time": {"unknown": {"range": ["2024-01-01T10:10:00+00:00", "2024-01-01T11:00:00+00:00"],
                                  "reason": "Not published."}},
             "duration": prior(0, 30, "min")},
            {"id": "back", "kind": "recovered", "time": "2024-01-01T11:30:00+00:00", "statement": "s",
             "infrastructures": ["api"], "sources": ["pm"]}],
        "figures": [
            {"id": "mean", "statement": "s", "quantity": "failure_over_window", "value": 20, "unit": "percent",
             "qualifier": "about", "tolerance": 5, "observation_level": "attempts", "scope": {"services": ["web"]},
             "window": {"from": "go", "to": "back"}, "sources": ["pm"]},
            {"id": "peak", "statement": "s", "quantity": "peak_failure_rate", "value": 40, "unit": "percent",
             "qualifier": "about", "tolerance": 5, "observation_level": "attempts", "scope": {"services": ["web"]},
             "averaging_interval": prior(10, 60, "s"), "sources": ["pm"]},
            {"id": "ttr", "statement": "s", "quantity": "time_to_recovery", "value": 90, "unit": "min",
             "qualifier": "about", "tolerance": 10, "observation_level": "unknown",
             "scope": {"infrastructures": ["api"]}, "sources": ["pm"]}],
    }


def refused(document, field, reason):
    """The document is refused naming test.yaml, exactly ``field``, and a reason matching ``reason``."""
    with pytest.raises(IncidentFileError) as info:
        parse_incident(document, "test.yaml")
    error = info.value
    assert (error.file, error.field) == ("test.yaml", field), str(error)
    assert re.search(reason, error.reason), error.reason
    assert str(error) == f"test.yaml: {field}: {error.reason}"
    return error


# ---- the library ---------------------------------------------------------------------------

def test_the_library_has_proton_and_several_other_shapes():
    assert "proton-2025-01-09" in LIBRARY and len(LIBRARY) >= 4
    assert available_incidents() == tuple(LIBRARY)
    assert incident_folder() == NEXT


@pytest.mark.parametrize("name", LIBRARY)
def test_every_library_file_loads_and_is_complete(name):
    incident = load(name)
    assert incident.id == name and incident.path == NEXT / f"{name}.yaml"
    for figure in incident.figures:
        kind = QUANTITIES[figure.quantity]
        assert (figure.observation_level is not None) == kind.failure, figure.id
        if figure.observation_level == "unknown":
            assert len(figure.readings) >= 2
        for source in figure.sources:
            assert incident.source(source).kind in ("official_statement", "postmortem", "press")
    for parameter in incident.unknowns:
        assert parameter.prior.reason and not parameter.known
    assert len({p.path for p in incident.unknowns}) == len(incident.unknowns)
    assert {m.kind for m in incident.mechanisms} <= set(MECHANISM_KINDS)
    assert {e.kind for e in incident.events} <= set(EVENT_KINDS)


def test_library_shapes_unlike_protons():
    kinds = {name: {m.kind for m in load(name).mechanisms} for name in LIBRARY}
    assert "retry_storm" in kinds["azure-2023-03-23"] and "contention" in kinds["azure-2023-03-23"]
    assert "connection_ceiling" in kinds["buildkite-2021-09-20"]
    assert kinds["fastly-2021-06-08"] == {"capacity_loss"}
    slack = load("slack-2020-05-12")
    assert len([e for e in slack.events if e.kind == "impact_start"]) == 2
    assert {e.kind for e in slack.events} >= {"autoscaled", "capacity_added", "rollback", "hotfix"}
    layers = {m.parameter("layer").value for m in load("azure-2023-03-23").mechanisms if m.kind == "retry_storm"}
    assert layers == {"end_user_clients", "calling_service"}


def test_a_figure_that_fixes_a_parameter_is_labelled_so():
    fastly = load("fastly-2021-06-08")
    share = fastly.figure("share_of_network_erroring")
    assert share.role == "fixes_parameter" and share.fixes == ("mechanisms.config_triggered_bug.share",)
    parameter = fastly.mechanism("config_triggered_bug").parameter("share")
    assert parameter.known and parameter.figure == share.id and parameter.si_value == pytest.approx(0.85)
    assert fastly.figure("network_normal_at").role == "measured"


def test_unverified_sources_inform_only_priors_and_hypotheses():
    azure = load("azure-2023-03-23")
    unverified = {s.id for s in azure.sources if s.kind == "unverified_copy"}
    for figure in azure.figures:
        assert not unverified & set(figure.sources)
    assert azure.mechanism("refresh_spike").hypothesis
    assert unverified & set(azure.unknown("events.change_deployed.time").prior.sources)


def test_proton_keeps_every_version_1_figure_and_source():
    old = yaml.safe_load(V1_PROTON.read_text())
    new = load("proton-2025-01-09")
    assert [s["id"] for s in old["sources"]] == [s.id for s in new.sources]
    for figure in old["figures"]:
        migrated = new.figure(figure["id"])
        assert migrated.sources == tuple(figure["sources"])
        if figure["unit"] in UNIT_SCALE:
            assert to_si(migrated.value, migrated.unit) == pytest.approx(to_si(figure["value"], figure["unit"]))
    failed = new.figure("failed_requests")
    assert (failed.value, failed.unit, failed.observation_level, failed.readings) == \
        (50, "percent", "unknown", ("attempts", "requests"))
    assert failed.si_bounds() == pytest.approx((0.4, 0.6))
    assert new.figure("flapping").observation_level == "users"
    assert {p.path for p in new.unknowns} >= {"mechanisms.connection_surge.multiple", "events.rollback.time",
                                              "events.rollback.duration", "infrastructures.legacy.headroom",
                                              "mechanisms.app_retries.max_retries"}


def test_the_readme_example_loads():
    text = (NEXT / "README.md").read_text(encoding="utf-8")
    example = yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))
    incident = parse_incident(example, "example.yaml")
    assert incident.figure("peak_errors").observation_level == "unknown"
    del example["mechanisms"][0]
    refused_example = pytest.raises(IncidentFileError, parse_incident, example, "example.yaml")
    assert "events[0].starts[0]: unknown mechanism 'surge'" in str(refused_example.value)


def test_incident_folder_follows_the_data_folder(tmp_path, monkeypatch):
    shutil.copytree(NEXT, tmp_path / "incidents")
    monkeypatch.setenv(paths.DATA_ENVIRONMENT_VARIABLE, str(tmp_path))
    assert incident_folder() == tmp_path / "incidents"
    assert load("fastly-2021-06-08").path == tmp_path / "incidents" / "fastly-2021-06-08.yaml"


def test_unknown_name_lists_what_exists():
    with pytest.raises(ValueError, match="no incident named 'nope'.*available: azure-2023-03-23"):
        load("nope")


# ---- version 1 -----------------------------------------------------------------------------

def test_a_version_1_file_gets_the_migration_message(tmp_path):
    v1 = tmp_path / "proton-2025-01-09.yaml"
    v1.write_text(V1_PROTON.read_text())
    error = pytest.raises(IncidentFileError, load, v1).value
    assert (error.file, error.field) == ("proton-2025-01-09.yaml", "schema")
    assert "reliability-incident/1 file" in error.reason and "observation_level" in error.reason
    assert "data/incidents/README.md" in error.reason


def test_an_unknown_schema_is_refused():
    document = base()
    document["schema"] = "reliability-incident/9"
    refused(document, "schema", "must be 'reliability-incident/2'")


# ---- contradictions ------------------------------------------------------------------------

def test_the_base_document_is_valid():
    incident = parse_incident(base(), "test.yaml")
    assert incident.seconds(incident.event("back").time.value) == 5400.0
    assert incident.unknown("events.undo.time").prior.si_bounds() == (600.0, 3600.0)


def test_an_event_before_the_start_is_refused():
    document = base()
    document["events"][2]["time"] = "2024-01-01T09:00:00+00:00"
    refused(document, "events[2].time", "before the incident's start")


def test_a_deploy_and_an_unpublished_trigger_may_precede_the_start():
    document = base()
    document["events"].append({"id": "latent", "kind": "deploy", "time": "2023-12-01T09:00:00+00:00",
                               "statement": "s", "sources": ["pm"]})
    document["events"][0]["time"] = {"unknown": {"range": ["2024-01-01T09:00:00+00:00",
                                                           "2024-01-01T10:00:00+00:00"], "reason": "r"}}
    parse_incident(document, "test.yaml")


@pytest.mark.parametrize("where, field, what", [
    ({"services": ["mobile"]}, "figures[0].scope.services[0]", "unknown service 'mobile'"),
    ({"infrastructures": ["cdn"]}, "figures[0].scope.infrastructures[0]", "unknown infrastructure 'cdn'"),
])
def test_a_figure_about_an_undeclared_service_or_infrastructure_is_refused(where, field, what):
    document = base()
    document["figures"][0]["scope"] = where
    refused(document, field, what)


def test_an_event_about_an_undeclared_infrastructure_is_refused():
    document = base()
    document["events"][2]["infrastructures"] = ["cdn"]
    refused(document, "events[2].infrastructures[0]", "unknown infrastructure 'cdn'")


def test_a_peak_below_the_window_mean_is_refused():
    document = base()
    document["figures"][1]["value"] = 5  # 0-10 % against a mean of 15-25 %
    refused(document, "figures[1].value", r"peak \(about 5 percent\) is below the mean failure of figure 'mean'")


def test_a_peak_below_a_mean_of_another_scope_or_level_is_not_a_contradiction():
    for change in ({"observation_level": "requests"}, {"scope": {"infrastructures": ["db"]}}):
        document = base()
        document["figures"][1].update(value=5, **change)
        parse_incident(document, "test.yaml")


def test_a_window_that_ends_before_it_starts_is_refused():
    document = base()
    document["figures"][0]["window"] = {"from": "back", "to": "go"}
    refused(document, "figures[0].window.to", "ends .* before it starts")


def test_a_recovery_before_its_trigger_is_refused():
    document = base()
    document["events"][0]["time"] = "2024-01-01T12:00:00+00:00"
    document["events"][1]["time"] = "2024-01-01T12:10:00+00:00"
    refused(document, "events[2].time", "recovered at .* before the first trigger on \\['api'\\] \\(event 'go'")


def test_a_mechanism_ended_before_it_starts_is_refused():
    document = base()
    document["events"][0]["time"] = "2024-01-01T11:20:00+00:00"
    refused(document, "events[1].time", "rollback 'undo' ends mechanism 'surge' .* before it starts")


@pytest.mark.parametrize("section, index, kind, field", [
    ("mechanisms", 0, "thundering_herd", "mechanisms[0].kind"),
    ("events", 0, "reboot", "events[0].kind"),
    ("figures", 0, "apdex", "figures[0].quantity"),
])
def test_a_kind_the_model_lacks_is_refused_with_the_supported_ones(section, index, kind, field):
    document = base()
    document[section][index]["quantity" if section == "figures" else "kind"] = kind
    supported = {"mechanisms": MECHANISM_KINDS, "events": EVENT_KINDS, "figures": QUANTITIES}[section]
    error = refused(document, field, f"unknown .*{kind!r}.*supported: ")
    assert all(name in error.reason for name in supported)


# ---- malformed fields ----------------------------------------------------------------------

def _set(document, keys, value):
    target = document
    for key in keys[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return document


_DELETE = object()


@pytest.mark.parametrize("keys, value, field, reason", [
    (("figures", 0, "tolrance"), 5, "figures[0].tolrance", "is not a field here"),
    (("figures", 0, "tolerance"), _DELETE, "figures[0].tolerance", "is required with qualifier 'about'"),
    (("figures", 0, "value"), 120, "figures[0].value", r"must lie in \[0, 100\] percent"),
    (("figures", 0, "unit"), "min", "figures[0].unit", "must be one of fraction, percent"),
    (("figures", 0, "observation_level"), _DELETE, "figures[0].observation_level", "is required"),
    (("figures", 0, "readings"), ["attempts", "requests"], "figures[0].readings", "only for observation_level unknown"),
    (("figures", 2, "readings"), ["attempts"], "figures[2].readings", "at least two different levels"),
    (("figures", 0, "sources"), ["copy"], "figures[0].sources[0]", "may inform a prior or a hypothesis"),
    (("figures", 0, "confidence"), "official", None, None),
    (("figures", 0, "window"), {"from": "go", "to": "later"}, "figures[0].window.to", "event id or a timestamp"),
    (("figures", 0, "window"), {"from": "2024-01-01T10:00:00+02:00", "to": "back"}, "figures[0].window.from",
     "UTC offset \\+02:00 does not match"),
    (("figures", 1, "averaging_interval"), _DELETE, "figures[1].averaging_interval", "is required"),
    (("figures", 1, "qualifier"), "less_than", "figures[1].tolerance", "a strict bound"),
    (("mechanisms", 0, "multiple"), prior(10, 1.5, "multiple"), "mechanisms[0].multiple.unknown.range", "inverted"),
    (("mechanisms", 0, "multiple"), prior(2, 2, "multiple"), "mechanisms[0].multiple.unknown.range", "empty"),
    (("infrastructures", 0, "headroom"), prior(0, 2, "fraction", "log"),
     "infrastructures[0].headroom.unknown.range[0]", "must be > 0 on a log scale"),
    (("mechanisms", 0, "multiple"), prior(0.5, 2, "multiple"), "mechanisms[0].multiple.unknown.range[0]", ">= 1"),
    (("mechanisms", 0, "multiple"), {"unknown": {"range": [1.5, 3], "unit": "multiple"}},
     "mechanisms[0].multiple.unknown.reason", "is required"),
    (("mechanisms", 0, "multiple"), {"value": 3, "unit": "multiple", "sources": ["copy"]},
     "mechanisms[0].multiple.sources[0]", "unverified_copy"),
    (("mechanisms", 0, "multiple"), {"figure": "mean"}, "mechanisms[0].multiple.figure", "in 'percent'"),
    (("mechanisms", 0, "sources"), ["copy"], "mechanisms[0].sources[0]", "may inform a prior or a hypothesis"),
    (("mechanisms", 0, "hypothesis"), True, "mechanisms[0].reason", "is required"),
    (("infrastructures", 0, "autoscaled"), "maybe", "infrastructures[0].autoscaled", "must be one of True, False"),
    (("infrastructures", 0, "autoscaled"), 1, "infrastructures[0].autoscaled", "must be one of True, False"),
    (("infrastructures", 1, "autoscale_delay"), _DELETE, "infrastructures[1].autoscale_delay", "is required"),
    (("infrastructures", 0, "depends_on"), ["api"], "infrastructures[0].depends_on", "cannot depend on itself"),
    (("events", 1, "duration"), _DELETE, "events[1].duration", "is required"),
    (("events", 2, "starts"), ["surge"], "events[2].starts", "is an observation"),
    (("events", 0, "starts"), _DELETE, "events[0].starts", "is required"),
    (("events", 1, "time"), {"unknown": {"range": ["2024-01-01T11:00:00+00:00", "2024-01-01T10:10:00+00:00"],
                                         "reason": "r"}}, "events[1].time.unknown.range", "inverted"),
    (("events", 1, "time"), {"soon": True}, "events[1].time", "must be a timestamp"),
    (("events", 2, "time"), "2024-01-01 11:30", "events[2].time", "must carry a UTC offset"),
    (("time_zone",), "Mars/Olympus", "time_zone", "IANA time zone"),
    (("time_zone_label",), "CET", "time_zone_label", "'CET' is not what UTC calls its time"),
    (("start",), {"unknown": {"range": ["2024-01-01T09:00:00+00:00", "2024-01-01T10:00:00+00:00"], "reason": "r"}},
     "start", "must be published"),
    (("sources", 0, "kind"), "blog", "sources[0].kind", "must be one of official_statement"),
    (("sources", 0, "url"), "ftp://example.org", "sources[0].url", "http"),
    (("colour",), "red", "colour", "is not a field of reliability-incident/2"),
])
def test_malformed_fields_are_refused_with_field_and_reason(keys, value, field, reason):
    document = _set(base(), keys, value)
    if field is None:
        parse_incident(document, "test.yaml")
    else:
        refused(document, field, reason)


def test_a_time_zone_label_that_is_wrong_for_the_date_needs_a_note():
    slack = yaml.safe_load((NEXT / "slack-2020-05-12.yaml").read_text())
    del slack["time_zone_note"]
    refused(slack, "time_zone_label", "'PST' is not what America/Los_Angeles calls its time on 2020-05-12 \\('PDT'\\)")


def test_total_impact_time_must_match_its_periods():
    document = base()
    document["figures"].append({"id": "impact", "statement": "s", "quantity": "total_impact_time", "value": 60,
                                "unit": "min", "observation_level": "users", "scope": {"services": ["web"]},
                                "periods": [{"from": "go", "to": "back"}], "sources": ["pm"]})
    refused(document, "figures[3].value", "does not match its periods, which add up to 90 min")
    document["figures"][3].update(value=1.5, unit="h")
    assert parse_incident(document, "test.yaml").figure("impact").si_bounds() == (5400.0, 5400.0)


def test_an_autoscaled_event_on_a_fixed_platform_is_refused():
    document = base()
    document["events"].append({"id": "grew", "kind": "autoscaled", "time": "2024-01-01T10:30:00+00:00",
                               "statement": "s", "infrastructures": ["api"], "sources": ["pm"],
                               "amount": {"value": 50, "unit": "percent", "sources": ["pm"]}})
    refused(document, "events[3].infrastructures[0]", "written as not autoscaled")


def test_traffic_shares_that_exceed_the_whole_are_refused():
    document = base()
    document["infrastructures"][0]["traffic_share"] = {"value": 70, "unit": "percent", "sources": ["pm"]}
    document["infrastructures"][1]["traffic_share"] = prior(40, 60, "percent")
    refused(document, "infrastructures[1].traffic_share", "add up to at least 1.1")


def test_an_unknown_intervention_lists_alternatives_as_hypotheses():
    document = base()
    document["events"][1] = {"id": "undo", "kind": "unknown_intervention", "statement": "s", "sources": ["pm"],
                             "infrastructures": ["api"], "time": "2024-01-01T10:30:00+00:00",
                             "alternatives": [{"kind": "load_shedding", "share": prior(10, 90, "percent")},
                                              {"kind": "rollback", "ends": ["surge"], "duration": prior(1, 30, "min")}]}
    event = parse_incident(document, "test.yaml").event("undo")
    assert [a.kind for a in event.alternatives] == ["load_shedding", "rollback"]
    assert all(a.hypothesis for a in event.alternatives)
    document["events"][1]["alternatives"] = document["events"][1]["alternatives"][:1]
    refused(document, "events[1].alternatives", "at least two")


def test_invalid_yaml_and_a_mismatched_id_name_the_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("schema: [unclosed\n")
    with pytest.raises(IncidentFileError, match="broken.yaml: not valid YAML"):
        load(broken)
    renamed = tmp_path / "other-name.yaml"
    renamed.write_text(yaml.safe_dump(base()))
    with pytest.raises(IncidentFileError, match="other-name.yaml: id: must match the file name"):
        load(renamed)


def test_the_error_survives_pickling():
    error = IncidentFileError("a.yaml", "figures[0].value", "must be a number")
    again = pickle.loads(pickle.dumps(error))
    assert (again.file, again.field, again.reason, str(again)) == (error.file, error.field, error.reason, str(error))


# ---- units and bounds ----------------------------------------------------------------------

@given(value=st.floats(-1e12, 1e12, allow_nan=False), unit=st.sampled_from(sorted(UNIT_SCALE)))
def test_units_round_trip_through_si(value, unit):
    assert from_si(to_si(value, unit), unit) == pytest.approx(value, rel=1e-12, abs=1e-300)


@settings(max_examples=60, deadline=None)
@given(unit=st.sampled_from(FAMILIES["share"].units + ("count",)), value=st.floats(0, 1, allow_nan=False))
def test_a_figure_keeps_its_published_unit(unit, value):
    document = base()
    published = value * 100 if unit == "percent" else value
    document["figures"][0].update(value=published, unit=unit, tolerance=0)
    document["figures"][1].update(value=100 if unit == "percent" else 1, unit=unit, tolerance=0)
    try:
        figure = parse_incident(document, "test.yaml").figure("mean")
    except IncidentFileError as error:
        assert unit == "count" and error.field == "figures[0].unit"
        return
    assert (figure.value, figure.unit) == (published, unit)
    assert figure.si_bounds()[0] == pytest.approx(value)


def test_strict_bounds_exclude_their_value():
    buildkite = load("buildkite-2021-09-20")
    overall = buildkite.figure("failure_overall")
    assert overall.strict and overall.published_text() == "less than 0.01 percent"
    assert overall.holds(0.0099) and not overall.holds(0.01)
    assert overall.si_bounds() == pytest.approx((0.0, 1e-4))


# ---- fuzzing: an incident or a named error, nothing else ----------------------------------

_JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=8)
    | st.sampled_from(["go", "back", "web", "api", "percent", "min", "unknown", "2024-01-01T10:00:00+00:00"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["unknown", "range", "unit", "value", "figure", "reason", "from", "to", "about",
                         "tolerance", "tolerance_unit", "between", "services", "choices"]), children, max_size=3),
    max_leaves=6)
_TARGETS = [
    ("start",), ("time_zone",), ("sources", 0, "kind"), ("sources", 0, "url"), ("infrastructures", 0, "autoscaled"),
    ("infrastructures", 0, "headroom"), ("infrastructures", 1, "autoscale_delay"), ("services", 0, "infrastructure"),
    ("mechanisms", 0, "kind"), ("mechanisms", 0, "multiple"), ("mechanisms", 0, "infrastructures"),
    ("events", 0, "time"), ("events", 0, "starts"), ("events", 1, "time"), ("events", 1, "duration"),
    ("events", 2, "kind"), ("figures", 0, "value"), ("figures", 0, "unit"), ("figures", 0, "qualifier"),
    ("figures", 0, "tolerance"), ("figures", 0, "window"), ("figures", 0, "scope"), ("figures", 0, "readings"),
    ("figures", 1, "averaging_interval"), ("figures", 1, "same_instant_as"), ("figures", 2, "measure"),
    ("figures", 2, "from"), ("figures", 0, "observation_level"), ("id",), ("figures",), ("events",),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.sampled_from(_TARGETS), _JUNK), min_size=1, max_size=3))
def test_fuzzed_fields_give_an_incident_or_a_named_error(changes):
    document = base()
    for keys, value in changes:
        try:
            _set(document, keys, copy.deepcopy(value))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced the container
    try:
        parse_incident(document, "test.yaml")
    except IncidentFileError as error:
        assert error.file == "test.yaml" and error.reason


@settings(max_examples=200, deadline=None)
@given(low=st.floats(allow_nan=True, allow_infinity=True), high=st.floats(allow_nan=True, allow_infinity=True),
       unit=st.sampled_from(sorted(UNIT_SCALE) + ["furlong"]), scale=st.sampled_from(["linear", "log", "cubic"]))
def test_fuzzed_priors_give_a_prior_or_a_named_error(low, high, unit, scale):
    document = base()
    document["events"][1]["duration"] = prior(low, high, unit, scale)
    try:
        incident = parse_incident(document, "test.yaml")
    except IncidentFileError as error:
        assert error.field.startswith("events[1].duration.unknown")
        return
    got = incident.unknown("events.undo.duration").prior
    assert unit in FAMILIES["duration"].units and 0 <= got.low < got.high and math.isfinite(got.high)
    assert scale in ("linear", "log") and (scale == "linear" or got.low > 0)


_OFFSETS = st.builds(lambda minutes: _dt.timezone(_dt.timedelta(minutes=minutes)), st.integers(-23 * 60, 23 * 60))


@settings(max_examples=150, deadline=None)
@given(stamp=st.datetimes(min_value=_dt.datetime(1, 1, 2), max_value=_dt.datetime(9999, 12, 30), timezones=_OFFSETS),
       as_text=st.booleans(), zone=st.sampled_from(["UTC", "Europe/Zurich", "America/Los_Angeles", "Asia/Kolkata"]))
def test_fuzzed_times_give_an_incident_or_a_named_error(stamp, as_text, zone):
    document = base()
    document["time_zone"] = zone
    document["events"][2]["time"] = stamp.isoformat() if as_text else stamp
    try:
        incident = parse_incident(document, "test.yaml")
    except IncidentFileError as error:
        assert error.field in ("start", "events[2].time", "events[0].time", "figures[0].window.to",
                               "figures[0].window.from"), str(error)
        return
    assert incident.event("back").time.value == stamp


def test_event_links_are_checked():
    document = base()
    document["events"].append({"id": "shed", "kind": "load_shedding", "time": "2024-01-01T10:20:00+00:00",
                               "statement": "s", "infrastructures": ["api"], "sources": ["pm"], "until": "go",
                               "share": {"value": 30, "unit": "percent", "sources": ["pm"]}})
    refused(document, "events[3].until", "ends the shedding before it begins")
    document["events"][3]["until"] = "back"
    assert parse_incident(document, "test.yaml").event("shed").parameter("share").si_value == pytest.approx(0.3)
    document["events"].append({"id": "move", "kind": "failover", "time": "2024-01-01T10:20:00+00:00",
                               "statement": "s", "sources": ["pm"], "from": "api",
                               "share": {"value": 1, "unit": "fraction", "sources": ["pm"]}})
    refused(document, "events[4].to", "is required for a failover")
    document["events"][4]["to"] = "api"
    refused(document, "events[4].to", "must differ from 'from'")
    document["events"][4]["to"] = "db"
    assert parse_incident(document, "test.yaml").event("move").moves_to == "db"


def test_an_event_known_only_from_an_unverified_copy_must_be_a_hypothesis():
    document = base()
    document["events"][2]["sources"] = ["copy"]
    refused(document, "events[2].sources[0]", "may inform a prior or a hypothesis")
    document["events"][2].update(hypothesis=True, reason="Only a copy says so.")
    assert parse_incident(document, "test.yaml").event("back").hypothesis


def _exposed(document):
    """``base()`` with a second service on the API, its exposure unknown, the mean figure about it."""
    document["services"].append({"id": "mobile", "name": "Mobile", "infrastructure": "api",
                                 "traffic_share": {"value": 20, "unit": "percent", "sources": ["pm"]},
                                 "exposure": prior(0.1, 100, "percent", "log")})
    document["figures"][0]["scope"] = {"services": ["mobile"]}
    return document


def test_a_service_exposure_is_read_as_an_unknown_share():
    incident = parse_incident(_exposed(base()), "test.yaml")
    exposure = next(s for s in incident.services if s.id == "mobile").exposure
    assert exposure.path == "services.mobile.exposure" and exposure.prior.scale == "log"
    assert "services.mobile.exposure" in [p.path for p in incident.unknowns]
    document = _exposed(base())
    document["services"][2]["exposure"] = {"value": 150, "unit": "percent", "sources": ["pm"]}
    refused(document, "services[2].exposure.value", "")
    document["services"][2]["exposure"] = prior(1, 10, "s")
    refused(document, "services[2].exposure.unknown.unit", "")


def test_exposed_services_share_their_infrastructure_failures_by_exposure():
    import numpy as np

    from reliability.incident import build_scenario

    incident = parse_incident(_exposed(base()), "test.yaml")
    scenario = build_scenario(incident, time_step=60.0)
    values = scenario.midpoints()
    rows = []
    for exposure in (0.01, 0.2, 1.0):  # mobile against web (exposure 1)
        values = {**values, "services.mobile.exposure": np.array([exposure])}
        timeline = scenario.run(values, np.zeros(1, dtype=int))
        whole = timeline.failure_share(["api"], "attempts")
        scope = lambda services: type(incident.figures[0].scope)(tuple(services), ("api",), "services")  # noqa: E731
        web, mobile = (timeline.scope_failure_share(scope([s]), "attempts") for s in ("web", "mobile"))
        both = timeline.scope_failure_share(scope(["web", "mobile"]), "attempts")
        uncapped = (web < 1) & (mobile < 1)
        # the services' failures add up to the infrastructure's (traffic shares 80 / 20 %)
        assert np.allclose((0.8 * web + 0.2 * mobile)[uncapped], whole[uncapped], rtol=1e-12, atol=1e-15)
        assert np.allclose(both[uncapped], whole[uncapped], rtol=1e-12, atol=1e-15)
        assert np.allclose(mobile, np.minimum(1.0, whole * exposure / (0.8 + 0.2 * exposure)), rtol=1e-12)
        rows.append(float(np.max(mobile)))
    assert rows[0] < rows[1] < rows[2]
    # without any exposure a service's figure reads its infrastructure, as before
    plain = build_scenario(parse_incident(base(), "test.yaml"), time_step=60.0)
    timeline = plain.run(plain.midpoints(), np.zeros(1, dtype=int))
    figure = plain.incident.figures[0]
    assert np.array_equal(timeline.scope_failure_share(figure.scope, "attempts"),
                          timeline.failure_share(list(figure.scope.infrastructures), "attempts"))


@pytest.mark.parametrize("scope", ["web", ["api"], None, {"services": ["web"]}])
def test_a_scope_that_is_not_a_figures_scope_is_refused(scope):
    import numpy as np

    from reliability.incident import build_scenario

    scenario = build_scenario(parse_incident(_exposed(base()), "test.yaml"), time_step=60.0)
    timeline = scenario.run(scenario.midpoints(), np.zeros(1, dtype=int))
    with pytest.raises(TypeError, match="scope must be a figure's Scope"):
        timeline.scope_failures(scope, "attempts")
    with pytest.raises(ValueError, match="level must be one of"):
        timeline.scope_failures(scenario.incident.figures[0].scope, "bytes")
