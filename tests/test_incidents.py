"""Tests of reliability.incidents: the incident files, the check of a model against them, the
calibration (consistent set, fitted figures never reported as checks that held, impossible
targets), and the counterfactual sizing against the retry equilibria of reliability.retry."""

import copy
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from reliability import incidents
from reliability.queues import erlang_b
from reliability.incidents import (
    CalibrationGrid,
    IncidentFileError,
    calibrate,
    check,
    data_dir,
    load,
    measure,
    parse_incident,
    proton_scenario,
    required_headroom,
    rollback_timing,
)
from reliability.retry import FixedRetries, RetryingConnectionPool

PROTON = "proton-2025-01-09"
# The project's shared source notes (outside the repository; the copy check is skipped without them).
ROOT_SOURCES = Path(__file__).resolve().parents[2] / "shared" / "sources"


@pytest.fixture(scope="module")
def incident():
    return load(PROTON)


@pytest.fixture(scope="module")
def document():
    return yaml.safe_load((data_dir() / "incidents" / f"{PROTON}.yaml").read_text())


@pytest.fixture(scope="module")
def scenario():
    return proton_scenario()


# A small grid around the consistent region: seconds, not minutes.
SMALL_GRID = CalibrationGrid(surge_multiples=(12.0, 18.0, 24.0, 30.0), headrooms=(1.0,), max_retries=(0, 1),
                             rollback_starts=(3600.0, 5400.0), rollback_durations=(0.0, 3600.0), time_step=10.0,
                             horizon=4.0 * 3600)


@pytest.fixture(scope="module")
def calibration(incident, scenario):
    return calibrate(incident, scenario, grid=SMALL_GRID, seed=1)


# --- the data file -----------------------------------------------------------------------------

def test_proton_figures_carry_value_unit_tolerance_and_source(incident):
    assert incident.start.isoformat() == "2025-01-09T16:00:00+01:00"
    assert incident.time_zone == "Europe/Zurich"
    by_id = {f.id: f for f in incident.figures}
    assert by_id["failed_requests"].value == 0.5 and by_id["failed_requests"].unit == "fraction"
    assert by_id["failed_requests"].bounds() == pytest.approx((0.4, 0.6))
    assert by_id["full_service"].to_si(by_id["full_service"].value) == 7200.0
    assert by_id["fully_resolved"].bounds() == (2.75, 3.75)
    assert by_id["autoscaled_recovered"].services == ("vpn", "pass", "drive", "wallet")
    assert by_id["start"].tolerance == 10 and by_id["start"].tolerance_unit == "min"
    for figure in incident.figures:
        assert figure.sources, figure.id
        assert figure.statement
    sources = {s.id: s for s in incident.sources}
    assert sources["status-statement"].kind == "official"
    # what was not published is listed as unknowns
    assert {"surge_multiple", "headroom", "rollback_start", "connection_counts"} <= {u.id for u in incident.unknowns}
    assert {"split_infrastructure", "rollback_fix", "trigger"} <= {f.id for f in incident.figures if f.role == "assumed"}


def test_data_dir_follows_the_package_or_the_environment(tmp_path, monkeypatch):
    assert (data_dir() / "incidents" / f"{PROTON}.yaml").exists()
    shutil.copytree(data_dir(), tmp_path / "data")
    monkeypatch.setenv("RELIABILITY_DATA", str(tmp_path / "data"))
    assert data_dir() == tmp_path / "data"
    assert load(PROTON).id == PROTON
    monkeypatch.setenv("RELIABILITY_DATA", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="does not exist"):
        data_dir()


def test_unknown_incident_name_lists_what_exists():
    with pytest.raises(ValueError, match=f"available: .*{PROTON}"):
        load("no-such-incident")


def _mutate(document, path, value):
    doc = copy.deepcopy(document)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_DELETE = object()


def _figure_index(document, figure_id):
    return next(i for i, f in enumerate(document["figures"]) if f["id"] == figure_id)


@pytest.mark.parametrize("change, message", [
    (lambda d: _mutate(d, ["schema"], "v0"), "schema: must be 'reliability-incident/1'"),
    (lambda d: _mutate(d, ["time_zone"], "Mars/Olympus"), "time_zone: must be an IANA time zone"),
    (lambda d: _mutate(d, ["start"], "2025-01-09T16:00:00"), "start: must carry a UTC offset"),
    (lambda d: _mutate(d, ["start"], "2025-01-09T16:00:00+03:00"), "start: UTC offset"),
    (lambda d: _mutate(d, ["date"], "2025-01-10"), "date: must be the local date of start"),
    (lambda d: _mutate(d, ["title"], _DELETE), "title: is required"),
    (lambda d: _mutate(d, ["surprise"], 1), "surprise: is not a field"),
    (lambda d: _mutate(d, ["services", 0, "infrastructure"], "mainframe"), r"services\[0\].infrastructure: unknown"),
    (lambda d: _mutate(d, ["sources", 1, "id"], "status-statement"), r"sources\[1\].id: duplicate id"),
    (lambda d: _mutate(d, ["sources", 0, "url"], "ftp://x"), r"sources\[0\].url: must be an http"),
    (lambda d: _mutate(d, ["sources", 0, "publsher"], "x"), r"sources\[0\].publsher: is not a field here"),
    (lambda d: _mutate(d, ["services", 0, "infra"], "legacy"), r"services\[0\].infra: is not a field here"),
    (lambda d: _mutate(d, ["unknowns", 0, "units"], "x"), r"unknowns\[0\].units: is not a field here"),
])
def test_malformed_top_level_is_rejected_with_field_and_reason(document, change, message):
    with pytest.raises(IncidentFileError, match=message):
        parse_incident(change(document), "test.yaml")


@pytest.mark.parametrize("figure_id, key, value, message", [
    ("failed_requests", "tolerance", -0.1, "tolerance: must be >= 0"),
    ("failed_requests", "tolerance", _DELETE, "tolerance: is required for a numeric figure"),
    ("failed_requests", "unit", "furlongs", "unit: unknown unit 'furlongs'"),
    ("failed_requests", "value", 1.5, "value: a fraction must be in"),
    ("failed_requests", "value", "half", "value: must be a number"),
    ("failed_requests", "qualifier", "roughly", "qualifier: must be one of"),
    ("failed_requests", "sources", ["tabloid"], r"sources\[0\]: unknown source 'tabloid'"),
    ("failed_requests", "services", ["fax"], r"services\[0\]: unknown service 'fax'"),
    ("failed_requests", "model", _DELETE, "model: is required for a measured figure"),
    ("failed_requests", "model", {"quantity": "vibes"}, "model.quantity: must be one of"),
    ("failed_requests", "model", {"quantity": "failure_fraction"}, "model.end_seconds: is required"),
    ("failed_requests", "model", {"quantity": "failure_fraction", "end_seconds": 60, "colour": 1},
     "model.colour: is not a parameter"),
    ("full_service", "unit", "ratio", "unit: quantity 'recovery_time' is measured in s, min, h"),
    ("flapping", "range", [3, 5], "range: must contain the value"),
    ("flapping", "range", [1], r"range: must be \[low, high\]"),
    ("start", "value", "yesterday", "value: must be an ISO 8601 timestamp"),
    ("start", "tolerance_unit", "fortnight", "tolerance_unit: must be one of s, min, h"),
    ("trigger", "tolerance", 3, "tolerance: a text figure has no tolerance"),
    ("date", "value", "9 Jan", "value: must be a date"),
    ("failed_requests", "tolerence", 0.1, "tolerence: is not a field here"),
    ("flapping", "tolerance", 1, "tolerance: must not be given with a range"),
    ("start", "qualifier", "range", "qualifier: a range needs a numeric figure"),
    ("failed_requests", "services", ["mail", "vpn"], "services: a modelled figure must concern services of one "
     "infrastructure"),
])
def test_malformed_figure_is_rejected_with_field_and_reason(document, figure_id, key, value, message):
    i = _figure_index(document, figure_id)
    with pytest.raises(IncidentFileError, match=rf"test.yaml: figures\[{i}\]\.{message}"):
        parse_incident(_mutate(document, ["figures", i, key], value), "test.yaml")


def test_proton_figures_match_the_shared_source_notes(incident):
    """Every published figure, pinned to ../shared/sources/proton-2025-01-09-facts.md.

    value, unit, qualifier, confidence and sources as the notes give them; the bounds are the
    project's documented reading of the wording (see each figure's note).
    """
    expected = {
        # figure: (value, unit, qualifier, confidence, sources, bounds or None)
        "date": ("2025-01-09", "date", "exact", "press", ("em360tech", "security-nl"), None),
        "start": ("2025-01-09T15:00:00+00:00", "timestamp", "about", "official", ("status-statement",), None),
        "first_status_post": ("2025-01-09T15:10:00+00:00", "timestamp", "about", "press", ("macg",), None),
        "failed_requests": (0.5, "fraction", "about", "official", ("status-statement",), (0.4, 0.6)),
        "flapping": (2, "min", "range", "official", ("status-statement",), (0.5, 5.0)),
        "full_service": (2, "h", "about", "official", ("status-statement",), (1.5, 2.5)),
        "second_hour_improved": (0.5, "ratio", "at_most", "official", ("status-statement",), (-math.inf, 0.5)),
        # "about one more hour (about 19:00 to 19:30 Zurich)": 3 to 3.5 h after 16:00, widened a quarter hour
        "fully_resolved": (3.25, "h", "range", "official", ("status-statement", "security-nl"), (2.75, 3.75)),
        # "by about 16:15 Zurich", confidence "likely" in the notes
        "autoscaled_recovered": (15, "min", "at_most", "likely", ("status-statement", "press-quote"), (-math.inf, 20.0)),
    }
    for fid, (value, unit, qualifier, confidence, sources, bounds) in expected.items():
        f = incident.figure(fid)
        got = f.value.astimezone(incidents._dt.timezone.utc).isoformat() if unit == "timestamp" else (
            f.value.isoformat() if unit == "date" else f.value)
        assert (got, f.unit, f.qualifier, f.confidence, f.sources) == (value, unit, qualifier, confidence, sources), fid
        if bounds is not None:
            assert f.bounds() == pytest.approx(bounds), fid
    # the text figures are official, from the statement; nothing else is figured
    assert {f.id for f in incident.figures} == set(expected) | {"trigger", "split_infrastructure", "rollback_fix"}
    for fid in ("trigger", "split_infrastructure", "rollback_fix"):
        assert incident.figure(fid).confidence == "official" and incident.figure(fid).sources == ("status-statement",)
    # a range is shown as the range, not as an invented point
    assert incident.figure("flapping").published_text() == "0.5 to 5 min"
    # Calendar's platform was not published: the file must say it is an assumption
    assert "assumption" in incident.services["calendar"]["note"]
    # the statement's wording is not copied into the file's prose
    statement = (ROOT_SOURCES / "proton-2025-01-09-status-statement.txt")
    if statement.exists():
        words = statement.read_text(encoding="utf-8").split()
        phrases = {" ".join(words[i:i + 8]).lower() for i in range(len(words) - 7)}
        prose = " ".join([incident.summary, *(f.statement for f in incident.figures),
                          *(f.note for f in incident.figures)]).lower()
        prose = " ".join(prose.split())
        assert not [p for p in phrases if p in prose]


def test_invalid_yaml_names_the_file(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("schema: [unclosed\n")
    with pytest.raises(IncidentFileError, match="broken.yaml: not valid YAML"):
        load(bad)


def test_several_incidents_and_services_fit_the_schema(document):
    other = copy.deepcopy(document)
    other["id"] = "example-2024-03-01"
    other["date"] = "2024-03-01"
    other["start"] = "2024-03-01T09:30:00+01:00"
    other["services"].append({"id": "search", "name": "Search", "infrastructure": "kubernetes"})
    parsed = parse_incident(other, "other.yaml")
    assert parsed.id == "example-2024-03-01" and "search" in parsed.services


# --- measuring and checking ----------------------------------------------------------------------

def test_measure_reads_a_timeline_the_way_the_figures_define(incident, scenario):
    tl = scenario.timeline(surge_multiple=25.0, headroom=1.0, max_retries=1, rollback_start=3600.0,
                           rollback_duration=1800.0, horizon=4 * 3600.0, time_step=10.0, seed=3)
    legacy = tl.series[tl.series.service.isin(["mail", "calendar"])]
    first_hour = legacy[legacy.time < 3600]
    assert measure(tl, incident.figure("failed_requests")) == pytest.approx(
        first_hour.failures.sum() / first_hour.attempts.sum())
    full = measure(tl, incident.figure("full_service"))
    minute = tl.aggregate(60.0, by="infrastructure")
    legacy_min = minute[minute.infrastructure == "legacy"]
    assert full == pytest.approx(legacy_min[legacy_min.failure_fraction > 0.01].time.max() / 3600 + 1 / 60)
    # load is back within 5 % of normal only near the end of the rollback (1 h + 30 min)
    assert 1.45 <= measure(tl, incident.figure("fully_resolved")) <= 1.5 + 1 / 60
    assert measure(tl, incident.figure("autoscaled_recovered")) < 15.0


def test_check_marks_fitted_figures_and_never_counts_them_as_held(incident, scenario):
    tl = scenario.timeline(surge_multiple=25.0, headroom=1.0, max_retries=1, rollback_start=5400.0,
                           horizon=4 * 3600.0, time_step=10.0, seed=3)
    table = check(tl, incident, fitted=["failed_requests", "full_service"])
    assert list(table.columns) == ["figure", "published", "unit", "tolerance", "model", "holds", "status"]
    rows = table.set_index("figure")
    assert rows.loc["failed_requests", "status"] == "fitted" and rows.loc["failed_requests", "holds"] is None
    assert rows.loc["trigger", "status"] == "assumed" and math.isnan(rows.loc["trigger", "model"])
    assert rows.loc["date", "status"] == "not modelled"
    assert set(table.status) <= {"fitted", "holds", "fails", "assumed", "not modelled"}
    predictions = table[table.status.isin(["holds", "fails"])]
    for row in predictions.itertuples():
        figure = incident.figure(row.figure)
        assert row.holds == figure.holds(row.model)
    with pytest.raises(ValueError, match="fitted names figures"):
        check(tl, incident, fitted=["no_such_figure"])


# --- calibration ---------------------------------------------------------------------------------------

def test_calibration_keeps_every_consistent_point(calibration, incident):
    cons = calibration.consistent
    assert len(cons) > 0
    for fid in calibration.fitted:
        assert cons[f"{fid}_holds"].all()
        assert incident.figure(fid).holds(cons[fid].to_numpy()).all()
    # everything simulated but not consistent misses some fitted figure
    rejected = calibration.points[~calibration.points.consistent]
    if len(rejected):
        misses = np.zeros(len(rejected), dtype=bool)
        for fid in calibration.fitted:
            misses |= ~rejected[f"{fid}_holds"].to_numpy()
        assert misses.all()
    ranges = calibration.ranges().set_index("unknown")
    assert ranges.loc["surge_multiple", "low"] <= calibration.best["surge_multiple"] <= ranges.loc["surge_multiple", "high"]
    assert set(calibration.predicted) == {"flapping", "second_hour_improved", "fully_resolved", "autoscaled_recovered"}
    shares = calibration.prediction_shares()
    assert all(0.0 <= v <= 1.0 for v in shares.values())


def test_check_with_calibration_reports_consistent_shares(calibration, incident, scenario):
    b = calibration.best
    tl = scenario.timeline(surge_multiple=b["surge_multiple"], headroom=b["headroom"], max_retries=b["max_retries"],
                           rollback_start=b["rollback_start"], rollback_duration=b["rollback_duration"],
                           horizon=4 * 3600.0, time_step=10.0, seed=1)
    table = check(tl, incident, calibration=calibration).set_index("figure")
    assert table.loc["failed_requests", "status"] == "fitted"
    assert math.isnan(table.loc["failed_requests", "consistent_share"])
    assert table.loc["autoscaled_recovered", "consistent_share"] == pytest.approx(
        calibration.prediction_shares()["autoscaled_recovered"])


def test_impossible_calibration_targets_name_the_figure(incident, scenario, document):
    i = _figure_index(document, "failed_requests")
    doc = _mutate(document, ["figures", i, "value"], 0.99)
    doc = _mutate(doc, ["figures", i, "tolerance"], 0.001)
    impossible = parse_incident(doc, "impossible.yaml")
    tiny = CalibrationGrid(surge_multiples=(5.0, 10.0), headrooms=(1.0,), max_retries=(0,), rollback_starts=(3600.0,),
                           rollback_durations=(0.0,), time_step=10.0, horizon=4 * 3600.0)
    with pytest.raises(ValueError, match=r"impossible calibration targets.*failed_requests must be in \[0.989, 0.991\]"):
        calibrate(impossible, scenario, grid=tiny)


def test_calibration_refuses_figures_it_cannot_fit(incident, scenario):
    with pytest.raises(ValueError, match="role is 'context'"):
        calibrate(incident, scenario, fit=["date"], grid=SMALL_GRID)
    with pytest.raises(ValueError, match="only figures of the calibrated infrastructure"):
        calibrate(incident, scenario, fit=["autoscaled_recovered"], grid=SMALL_GRID)
    with pytest.raises(ValueError, match="has no figure"):
        calibrate(incident, scenario, fit=["nope"], grid=SMALL_GRID)
    with pytest.raises(ValueError, match="CalibrationGrid.headrooms must not be empty"):
        CalibrationGrid(headrooms=())


# --- counterfactuals -----------------------------------------------------------------------------

def test_required_headroom_meets_the_target_and_matches_the_retry_equilibrium(scenario):
    frame = required_headroom(scenario, [10.0], targets=(0.01,), max_retries=1, verify=True, horizon=900.0,
                              time_step=10.0, seed=2)
    row = frame.iloc[0]
    spec = scenario.spec("legacy")
    rate = scenario.request_rate("legacy") / spec.servers
    cost = scenario.cost
    # at the returned size the healthy fixed point is exactly the target ...
    p = 0.01
    load = rate * (cost.holding_time(10.0) + (FixedRetries(1).amplification(p) - 1) * cost.retry_holding_time(10.0))
    assert erlang_b(row.connections_per_server, load) == pytest.approx(p, rel=1e-6)
    # ... which is the healthy equilibrium of retry.RetryingConnectionPool (new-connection share 0.1 x 10 = 1)
    # at the neighbouring whole numbers of slots
    pool = lambda k: RetryingConnectionPool(k, 1 / cost.service_time, cost.setup_time, 1.0, FixedRetries(1))
    below = pool(math.floor(row.connections_per_server)).equilibria(rate)[0]
    above = pool(math.ceil(row.connections_per_server)).equilibria(rate)[0]
    assert below.failure_probability >= p >= above.failure_probability
    # the time-stepped model at that size fails about 1 % too
    assert row.simulated_failure_fraction == pytest.approx(p, rel=0.15)
    assert row.headroom == pytest.approx(spec.servers * row.connections_per_server / scenario.normal_load("legacy") - 1)


def test_rollback_timing_orders_the_outage(incident, scenario):
    best = {"surge_multiple": 25.0, "headroom": 1.0, "max_retries": 1, "rollback_duration": 0.0}
    frame = rollback_timing(incident, scenario, best, [1800.0, 3600.0, 5400.0], horizon=3 * 3600.0, time_step=10.0)
    assert frame.full_service_h.is_monotonic_increasing
    assert frame.failed_attempts.is_monotonic_increasing
    with pytest.raises(ValueError, match="rollback_starts must be finite"):
        rollback_timing(incident, scenario, best, [-1.0])


def test_bad_scenario_and_arguments(scenario):
    with pytest.raises(ValueError, match="Scenario.calibrated must name"):
        incidents.Scenario(scenario.services, scenario.infrastructures, scenario.cost, scenario.clients, "mainframe")
    with pytest.raises(ValueError, match="targets must be in"):
        required_headroom(scenario, [5.0], targets=(1.5,))
    with pytest.raises(ValueError, match="routing must be"):
        proton_scenario(routing="anycast")
