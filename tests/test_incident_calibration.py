"""Simulation-based calibration of the inference: twins of a small incident, synthesised from the model at
settings drawn from the prior, must be covered by their 90 % credible intervals in about 90 % of cases
(the test holds it above 75 %), and model choice must pick the generating structure in most of them.

The twin incident (document builder after tests/test_incident_twins.py): one platform, a request surge
of unknown size and a capacity loss of unknown share that may or may not have happened (the two
structures), ended by a fix at an unknown time; four fitted figures."""

import numpy as np
import pytest
import yaml

from reliability.cluster import Cluster
from reliability.incident import build_scenario, load, measure
from reliability.incident.calibration import (
    CoverageResult, coverage, draw_truth, synthesise_twin, twin_scenario,
)
from reliability.incident.infer import LatentPrior, figure_distance, figure_readings
from reliability.incident.posterior import figure_level

from twin_documents import START, SOURCE, at as _at, published as _published, unknown as _unknown  # noqa: E402

FITTED = ("peak", "first_hour", "impact", "lost")
TWINS = 20


def _figure(ident, quantity, unit, value, tolerance, **extra):
    figure = {"id": ident, "statement": f"Synthetic {quantity}.", "quantity": quantity, "value": value, "unit": unit,
              "qualifier": "about", "tolerance": tolerance, "sources": ["model"], **extra}
    if quantity != "capacity_share":
        figure.update(observation_level="requests", scope={"services": ["web"]})
    return figure


def _document():
    return {
        "schema": "reliability-incident/2", "id": "twin-calibration", "title": "Calibration twin",
        "organisation": "Twin Ltd", "time_zone": "UTC", "start": START, "summary": "A synthetic incident.",
        "sources": SOURCE,
        "infrastructures": [{"id": "api", "name": "API", "autoscaled": False, "headroom": _published(0.3, "fraction")}],
        "services": [{"id": "web", "name": "Web", "infrastructure": "api"}],
        "mechanisms": [
            {"id": "surge", "kind": "surge_requests", "statement": "A surge (synthetic).", "infrastructures": ["api"],
             "sources": ["model"], "multiple": _unknown(1.1, 4.0, "multiple", "log")},
            {"id": "loss", "kind": "capacity_loss", "statement": "A capacity loss (synthetic).",
             "infrastructures": ["api"], "hypothesis": True, "reason": "A candidate of the calibration.",
             "share": _unknown(10, 60, "percent"), "routing": "stays"}],
        "events": [
            {"id": "begins", "kind": "trigger_start", "time": _at(10), "statement": "It began.",
             "starts": ["surge", "loss"], "infrastructures": ["api"], "sources": ["model"]},
            {"id": "fixed", "kind": "hotfix", "statement": "It was fixed.", "ends": ["surge", "loss"],
             "infrastructures": ["api"], "sources": ["model"],
             "time": {"unknown": {"range": [_at(30), _at(70)], "reason": "Not published."}}}],
        # Placeholder values: every fitted figure is republished by the twins.
        "figures": [
            _figure("peak", "peak_failure_rate", "percent", 30, 3, averaging_interval=_published(60, "s")),
            _figure("first_hour", "failure_over_window", "percent", 10, 2, window={"from": _at(0), "to": _at(60)}),
            _figure("impact", "total_impact_time", "min", 40, 5),
            _figure("lost", "capacity_share", "percent", 20, 3, state="lost", at="begins",
                    scope={"infrastructures": ["api"]})],
    }


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    path = tmp_path_factory.mktemp("calibration") / "twin-calibration.yaml"
    path.write_text(yaml.safe_dump(_document(), sort_keys=False))
    return build_scenario(load(path), time_step=120.0)


@pytest.fixture(scope="module")
def calibration(scenario):
    with Cluster(workers=2) as cluster:
        return coverage(scenario, TWINS, particles=200, seed=0, cluster=cluster, batch=256)


def test_twin_figures_hold_at_its_truth(scenario):
    rng = np.random.default_rng(7)
    for _ in range(5):
        truth = draw_truth(scenario, rng)
        twin = synthesise_twin(scenario, truth.z, truth.variant, truth.reading, rng)
        values = LatentPrior(scenario.unknowns).values(truth.z[None, :])
        timeline = twin_scenario(scenario, twin).run(values, np.array([truth.variant]))
        model = {}
        for fid in FITTED:
            figure, original = twin.figure(fid), scenario.incident.figure(fid)
            model[fid] = measure(timeline, figure, figure_level(figure, truth.reading))
            assert figure.holds(model[fid][0]), (fid, figure.published_text(), model[fid])
            assert (figure.qualifier, figure.tolerance) == ("about", original.tolerance)
            assert figure.value != original.value
        assert figure_distance(twin, FITTED, truth.reading, model)[0] == 0.0
        assert figure_readings(twin) == ("as published",)


def test_coverage_of_the_90_percent_intervals(calibration):
    assert isinstance(calibration, CoverageResult)
    assert len(calibration.twin_table) == TWINS and len(calibration.table) == 3 * TWINS
    assert calibration.coverage > 0.75, calibration.table
    assert calibration.model_choice > 0.5, calibration.twin_table


def test_a_twin_gives_the_same_numbers_in_this_process(scenario, calibration):
    # Twin i is seeded by its index: the first two twins alone, in this process, repeat the cluster's.
    alone = coverage(scenario, 2, particles=200, seed=0, cluster=Cluster(workers=0), batch=256)
    assert alone.table.equals(calibration.table[calibration.table.twin < 2].reset_index(drop=True))


def test_coverage_refuses_options_it_sets(scenario):
    with pytest.raises(ValueError, match="workers"):
        coverage(scenario, 2, cluster=Cluster(workers=0), workers=2)
    with pytest.raises(ValueError, match="level"):
        coverage(scenario, 2, level=1.0, cluster=Cluster(workers=0))


READING_TWINS = 12


def _reading_document():
    """The calibration twin with a client retry layer (so attempts and requests differ) and figures whose
    observation level is not published: two readings."""
    document = _document()
    document["id"] = "twin-readings"
    document["mechanisms"].append(
        {"id": "retries", "kind": "retry_storm", "statement": "Clients retry (synthetic).", "infrastructures": ["api"],
         "sources": ["model"], "layer": "end_user_clients",
         "policy": {"max_retries": _published(3, "count"), "backoff": "none"}})
    for figure in document["figures"]:
        if figure["quantity"] != "capacity_share":
            figure["observation_level"] = "unknown"
    return document


@pytest.fixture(scope="module")
def reading_scenario(tmp_path_factory):
    path = tmp_path_factory.mktemp("readings") / "twin-readings.yaml"
    path.write_text(yaml.safe_dump(_reading_document(), sort_keys=False))
    return build_scenario(load(path), time_step=120.0)


def test_twins_that_hide_their_level_are_read_at_the_level_that_made_them(reading_scenario):
    assert figure_readings(reading_scenario.incident) == ("attempts", "requests")
    with Cluster(workers=2) as cluster:
        result = coverage(reading_scenario, READING_TWINS, particles=200, seed=1, cluster=cluster, batch=256,
                          publish_level=False)
    table = result.twin_table
    assert set(table.reading) == {"attempts", "requests"}, table  # both readings generate some twins
    assert result.reading_choice > 0.5, table[["reading", "favoured_reading", "reading_probability"]]
    assert result.coverage > 0.75, result.table
    with pytest.raises(TypeError, match="publish_level"):
        coverage(reading_scenario, 1, cluster=Cluster(workers=0), publish_level="no")
