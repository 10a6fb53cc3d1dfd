"""Tests of reliability.incident.sensitivity: plausible ranges, the conclusions' definitions, the Morris
screen (an inert assumption found inert, one that acts found acting, the same numbers on 1 and 2
workers), reruns of the full inference and what survives them, and bad input."""

import numpy as np
import pandas as pd
import pytest
import yaml

from reliability.cluster import Cluster
from reliability.incident import ASSUMPTIONS, build_scenario, load, measure
from reliability.incident.sensitivity import (
    CONCLUSIONS, PLAUSIBLE, conclusions_at, plausible_ranges, rerun, screen, surviving,
)

START = "2024-03-05T10:00:00+00:00"
SOURCE = [{"id": "model", "kind": "postmortem", "title": "Synthetic incident", "publisher": "the test suite",
           "url": "https://example.org/synthetic"}]
MULTIPLE = "mechanisms.surge.multiple"
HEADROOM = 0.3
# Tiny, fast screens: a coarse time step, a small design, the nearest tenth kept.
TINY = dict(trajectories=2, design=64, keep=0.1, time_step=240.0, limit=8, iterations=8)


def _at(minutes):
    return f"2024-03-05T{10 + int(minutes // 60):02d}:{int(minutes % 60):02d}:00+00:00"


def _document(first_hour=0.0, recovery=0.0):
    """One fixed platform (30 % headroom, never autoscaled) hit by a request surge from 10 to 50 min."""
    figures = [
        {"id": "first_hour", "statement": "Share failed in the first hour.", "quantity": "failure_over_window",
         "value": round(first_hour, 2), "unit": "percent", "qualifier": "about",
         "tolerance": round(max(2.0, 0.1 * first_hour), 2), "observation_level": "requests",
         "scope": {"services": ["web"]}, "window": {"from": _at(0), "to": _at(60)}, "sources": ["model"]},
        {"id": "recovery", "statement": "Time to recovery.", "quantity": "time_to_recovery",
         "value": round(recovery, 2), "unit": "min", "qualifier": "about", "tolerance": 6.0,
         "observation_level": "requests", "scope": {"services": ["web"]}, "sources": ["model"]},
    ]
    return {"schema": "reliability-incident/2", "id": "synthetic-surge", "title": "A synthetic surge",
            "organisation": "Synthetic Ltd", "time_zone": "UTC", "start": START, "summary": "A synthetic incident.",
            "sources": SOURCE,
            "infrastructures": [{"id": "api", "name": "API", "autoscaled": False,
                                 "headroom": {"value": HEADROOM, "unit": "fraction", "sources": ["model"]}}],
            "services": [{"id": "web", "name": "Web", "infrastructure": "api"}],
            "mechanisms": [{"id": "surge", "kind": "surge_requests", "statement": "Requests surged.",
                            "infrastructures": ["api"], "sources": ["model"],
                            "multiple": {"unknown": {"range": [1.05, 4.0], "unit": "multiple", "scale": "log",
                                                     "reason": "Synthetic prior."}}}],
            "events": [{"id": "begins", "kind": "trigger_start", "time": _at(10), "statement": "It began.",
                        "starts": ["surge"], "infrastructures": ["api"], "sources": ["model"]},
                       {"id": "fixed", "kind": "hotfix", "time": _at(50), "statement": "It was fixed.",
                        "ends": ["surge"], "infrastructures": ["api"], "sources": ["model"]}],
            "figures": figures}


def _write(folder, document):
    path = folder / f"{document['id']}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return load(path)


@pytest.fixture(scope="module")
def surge(tmp_path_factory):
    """The synthetic incident, its figures measured from the model at a surge of 1.6 x."""
    folder = tmp_path_factory.mktemp("sensitivity")
    draft = _write(folder, _document())
    scenario = build_scenario(draft, time_step=120.0)
    timeline = scenario.run({MULTIPLE: np.array([1.6])}, np.zeros(1, dtype=int))
    measured = {f.id: float(measure(timeline, f, "requests")[0]) for f in draft.figures}
    assert measured["first_hour"] > 5.0  # the surge does overload the platform
    return _write(folder, _document(measured["first_hour"], measured["recovery"]))


@pytest.fixture(scope="module")
def surge_screen(surge):
    return screen(surge, assumptions=["autoscale_limit", "new_connection_work_share", "timeout", "max_wait"],
                  workers=0, **TINY)


def test_every_assumption_has_a_plausible_range_around_its_default():
    assert set(PLAUSIBLE) == set(ASSUMPTIONS)
    for name, plausible in PLAUSIBLE.items():
        low, high, scale, reason = plausible
        assert 0 < low < ASSUMPTIONS[name].value < high, name
        assert scale in ("linear", "log") and len(reason) > 20, name


def test_overload_and_headroom_needed_follow_their_definitions(surge):
    scenario = build_scenario(surge, time_step=120.0)
    found = conclusions_at(scenario, {MULTIPLE: np.array([2.6, 2.6])}, np.zeros(2, dtype=int))
    # a surge of 2.6 x on capacity 1.3 x normal: offered work peaks at twice the capacity
    assert found["overload"] == pytest.approx(2.6 / (1.0 + HEADROOM)) and found["platform"] == "api"
    # the worst minute fails at most 1 % once the 40-minute backlog waits at most ~half the 30 s timeout:
    # (2.6 - c) * 2400 s <= 0.51 * 30 s * c, so c >= 2.6 / 1.006375, a headroom of 1.5835 .. 1.6
    assert found["overloaded"] and 1.575 < found["headroom_needed"] <= 1.601
    quiet = conclusions_at(scenario, {MULTIPLE: np.array([1.1])}, np.zeros(1, dtype=int))
    # not overloaded: the headroom needed is the one it had
    assert not quiet["overloaded"] and quiet["headroom_needed"] == pytest.approx(HEADROOM)
    assert quiet["overload"] == pytest.approx(1.1 / (1.0 + HEADROOM))


def test_morris_finds_the_inert_assumptions_inert_and_the_timeout_acting(surge_screen):
    table = surge_screen.table.set_index(["conclusion", "assumption"])
    assert set(surge_screen.table.conclusion) == set(CONCLUSIONS)
    assert list(surge_screen.readings) == ["as published"]
    for conclusion in CONCLUSIONS:
        # nothing autoscales and no connection surge: both settings never enter the model
        for inert in ("autoscale_limit", "new_connection_work_share"):
            assert table.loc[(conclusion, inert), "mu_star"] == 0.0, (conclusion, inert)
            assert table.loc[(conclusion, inert), "sigma"] == 0.0, (conclusion, inert)
    # a shorter timeout makes the same backlog fail more: the inferred surge, and the headroom, move
    assert table.loc[("headroom_needed", "timeout"), "mu_star"] > 0.01
    assert "timeout" in surge_screen.matters(0.01)
    assert not {"autoscale_limit", "new_connection_work_share"} & set(surge_screen.matters(1e-9))
    points = surge_screen.points
    assert len(points) == 2 * (4 + 1) and (points.accepted >= 7).all() and (points.failed == 0).all()
    assert points.timeout.between(5.0, 60.0).all() and surge_screen.seconds > 0 and surge_screen.cpu_seconds > 0


def test_the_screen_gives_the_same_numbers_on_two_workers(surge, surge_screen):
    with Cluster(workers=2) as cluster:
        again = screen(surge, assumptions=["autoscale_limit", "new_connection_work_share", "timeout", "max_wait"],
                       cluster=cluster, **TINY)
    # same seed, same numbers: only the processor time of each point may differ
    pd.testing.assert_frame_equal(again.points.drop(columns="cpu_seconds"),
                                  surge_screen.points.drop(columns="cpu_seconds"))
    pd.testing.assert_frame_equal(again.table, surge_screen.table)


def test_rerun_and_what_survives(surge):
    frame = rerun(surge, "timeout", [10.0, 30.0], particles=40, max_generations=2, time_step=240.0, limit=8,
                  workers=0)
    assert list(frame.value) == [10.0, 30.0] and list(frame.is_default) == [False, True]
    assert set(CONCLUSIONS) <= set(frame.columns) and (frame.picked == "as published").all()
    kept = surviving(frame).set_index("conclusion")
    assert kept.loc["same picked structure", "holds"]
    assert kept.loc["headroom needed", "low"] == pytest.approx(frame.headroom_needed.min())


def test_rerun_of_several_assumptions_infers_the_default_once(surge):
    frame = rerun(surge, ["timeout", "max_wait"], particles=40, max_generations=2, time_step=240.0, limit=8,
                  workers=0)
    assert list(frame.assumption.unique()) == ["timeout", "max_wait"]
    readings = frame.reading.nunique()
    assert frame.groupby("assumption", sort=False).size().tolist() == [3 * readings] * 2  # low, default, high
    defaults = frame[frame.is_default].drop(columns=["assumption", "value"])
    by_name = [rows.reset_index(drop=True) for _, rows in defaults.groupby(frame.assumption, sort=False)]
    pd.testing.assert_frame_equal(by_name[0], by_name[1])
    # the default setting is the one a single-assumption rerun infers (same seed, same posterior)
    alone = rerun(surge, "timeout", [30.0], particles=40, max_generations=2, time_step=240.0, limit=8, workers=0)
    pd.testing.assert_frame_equal(alone.drop(columns=["assumption", "value"]), by_name[0])


def test_surviving_says_what_does_not_hold_at_every_value():
    frame = pd.DataFrame({"reading": ["a", "a", "b", "b"], "overload": [1.4, 0.9, 1.5, 1.2],
                          "headroom_needed": [0.4, 0.2, 0.5, 0.3], "overloaded": [True, False, True, True],
                          "picked": ["x", "x", "x", "y"]})
    kept = surviving(frame).set_index(["reading", "conclusion"]).holds
    assert not kept[("a", "overload above 1")] and kept[("b", "overload above 1")]
    assert not kept[("a", "overloaded as inferred")] and kept[("b", "overloaded as inferred")]
    assert kept[("a", "same picked structure")] and not kept[("b", "same picked structure")]
    assert not kept[("every reading", "overload above 1")]
    low = surviving(frame).set_index(["reading", "conclusion"]).low
    assert low[("every reading", "headroom needed")] == 0.2 and low[("b", "headroom needed")] == 0.3


def test_bad_input_names_the_argument(surge):
    with pytest.raises(ValueError, match="assumptions names an unknown assumption 'retries'"):
        screen(surge, assumptions=["retries"], workers=0)
    with pytest.raises(ValueError, match="ranges names an unknown assumption 'retries'"):
        screen(surge, ranges={"retries": (1, 2)}, workers=0)
    with pytest.raises(ValueError, match=r"ranges\['timeout'\] must have low < high"):
        screen(surge, ranges={"timeout": (60.0, 5.0)}, workers=0)
    with pytest.raises(ValueError, match=r"ranges\['new_connection_work_share'\] high must be <= 1"):
        plausible_ranges({"new_connection_work_share": (0.1, 2.0)})
    with pytest.raises(ValueError, match="trajectories must be a whole number >= 2"):
        screen(surge, trajectories=1, workers=0)
    with pytest.raises(ValueError, match="levels must be an even"):
        screen(surge, levels=3, workers=0)
    with pytest.raises(ValueError, match="keep must be"):
        screen(surge, keep=0.0, workers=0)
    with pytest.raises(ValueError, match="fit names 'nope'"):
        screen(surge, fit=["nope"], workers=0)
    with pytest.raises(ValueError, match="assumption must be one of"):
        rerun(surge, "retries", workers=0)
    with pytest.raises(ValueError, match=r"values\[1\] must be > 0"):
        rerun(surge, "timeout", [10.0, -1.0], workers=0)
    with pytest.raises(ValueError, match="assumption must not repeat a name"):
        rerun(surge, ["timeout", "timeout"], workers=0)
    with pytest.raises(TypeError, match="assumption must be an assumption's name or a non-empty list"):
        rerun(surge, [], workers=0)
    with pytest.raises(ValueError, match="values: give values for one assumption at a time"):
        rerun(surge, ["timeout", "max_wait"], [10.0], workers=0)
    with pytest.raises(ValueError, match="frame must be a non-empty table from rerun"):
        surviving(pd.DataFrame({"reading": []}))
