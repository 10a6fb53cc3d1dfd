"""Tests of the generic incident pipeline (reliability.incident: scenario, measure, infer,
counterfactuals) on every file of the library, with Proton's honest verdicts kept."""

import dataclasses
import math

import numpy as np
import pytest

import reliability
from reliability.incident import (
    IncidentFileError, autoscaled_fate, available_incidents, build_scenario, data_dir, infer, intervention_timing,
    load, measure, modelled, policy_counterfactuals, readings, required_headroom,
)

PROTON = "proton-2025-01-09"
FAST = dict(particles=100, max_generations=3, workers=0)


@pytest.fixture(scope="module")
def proton():
    return build_scenario(load(PROTON), time_step=60.0)


@pytest.fixture(scope="module")
def proton_fit(proton):
    return infer(proton, **FAST)


def test_public_names_and_data_dir():
    assert reliability.IncidentFileError is IncidentFileError and reliability.data_dir() == data_dir()
    assert not hasattr(reliability, "proton_scenario")
    assert (data_dir() / "incidents" / f"{PROTON}.yaml").exists()


def test_package_code_names_no_incident_or_company():
    import re
    from pathlib import Path

    banned = re.compile(r'proton_|mail_rate|calendar_rate|legacy_servers|"legacy"|"kubernetes"|"mail"|"calendar"',
                        re.I)
    folder = Path(reliability.__file__).parent / "incident"
    for path in folder.glob("*.py"):
        text = path.read_text()
        assert not banned.search(text), path
        for name in ("proton", "azure", "buildkite", "fastly", "slack"):
            assert name not in text.lower(), (path, name)


@pytest.mark.parametrize("name", available_incidents())
def test_every_incident_builds_runs_and_measures(name):
    incident = load(name)
    scenario = build_scenario(incident, time_step=120.0)
    timeline = scenario.run(scenario.midpoints(3), np.zeros(3, dtype=int))
    for figure in incident.figures:
        if modelled(figure):
            for level in readings(figure):
                values = measure(timeline, figure, level)
                assert values.shape == (3,) and not np.isnan(values).any(), (figure.id, level)


@pytest.mark.parametrize("name", available_incidents())
def test_a_reading_measured_alone_gives_the_same_distances_and_values(name):
    """The inference measures each figure at its reading's level only: the same numbers as measuring all."""
    from reliability.incident.infer import LatentPrior, _fitted, figure_readings, simulate_batch

    scenario = build_scenario(load(name), time_step=240.0)
    prior, (fitted, _) = LatentPrior(scenario.unknowns), _fitted(scenario.incident, None)
    rng = np.random.default_rng(4)
    z = prior.low + rng.random((64, len(prior.low))) * (prior.high - prior.low)
    job = (z, rng.integers(0, len(scenario.variants), len(z)), None)
    for reading in figure_readings(scenario.incident):
        every, outputs = simulate_batch(scenario, prior, fitted, reading, job)
        alone, own = simulate_batch(scenario, prior, fitted, reading, job, False)
        np.testing.assert_array_equal(alone, every)
        assert own.keys() <= outputs.keys() and len(own) == sum(1 for f in scenario.incident.figures if modelled(f))
        for key, values in own.items():
            np.testing.assert_array_equal(values, outputs[key])


@pytest.mark.parametrize("name", available_incidents())
def test_batches_run_together_give_each_batch_its_own_numbers(name):
    """The inference pools the sampler's batches into wider model runs (model_width): bit for bit the same."""
    from reliability.incident.infer import LatentPrior, _fitted, figure_readings, simulate_batch

    scenario = build_scenario(load(name), time_step=240.0)
    prior, (fitted, _) = LatentPrior(scenario.unknowns), _fitted(scenario.incident, None)
    rng = np.random.default_rng(5)
    jobs = []
    for size in (48, 16, 33):
        z = prior.low + rng.random((size, len(prior.low))) * (prior.high - prior.low)
        jobs.append((z, rng.integers(0, len(scenario.variants), size), None))
    pooled = (np.concatenate([job[0] for job in jobs]), np.concatenate([job[1] for job in jobs]), None)
    bounds = np.cumsum([0, 48, 16, 33])
    for reading in figure_readings(scenario.incident):
        distance, outputs = simulate_batch(scenario, prior, fitted, reading, pooled, False)
        for job, a, b in zip(jobs, bounds[:-1], bounds[1:]):
            alone, own = simulate_batch(scenario, prior, fitted, reading, job, False)
            np.testing.assert_array_equal(distance[a:b], alone)
            assert outputs.keys() == own.keys()
            for key, values in own.items():
                np.testing.assert_array_equal(outputs[key][a:b], values)


def test_unknown_level_gives_both_readings(proton_fit):
    assert proton_fit.readings == ("attempts", "requests")
    figure = proton_fit.incident.figure("failed_requests")
    assert readings(figure) == ("attempts", "requests")
    # retries no user sees: at every posterior draw, attempts fail at least as often as requests are lost
    values, variant = proton_fit.settings("requests", limit=200)
    timeline = proton_fit.scenario.run(values, variant)
    attempts, requests = (measure(timeline, figure, level) for level in ("attempts", "requests"))
    assert (attempts >= requests - 1e-9).all()
    assert (attempts > requests + 1.0).any()


def test_fitted_figures_are_never_counted_as_held(proton_fit):
    for reading in proton_fit.readings:
        table = proton_fit.figure_table(reading).set_index("figure")
        for fid in proton_fit.fitted:
            assert table.loc[fid, "status"] in ("fitted", "fitted, not met")
        assert table.loc["date", "status"] == "context"
        for fid in proton_fit.predicted:
            assert table.loc[fid, "status"] in ("holds", "fails", "follows from assumptions")
    assert set(proton_fit.fitted) == {"failed_requests", "full_service", "autoscaled_recovered"}
    assert set(proton_fit.predicted) == {"flapping", "second_hour_improved", "fully_resolved"}


def test_proton_honest_verdicts(proton_fit):
    # the fluid model has no flapping mechanism: the alternation is a prediction that fails, never "held"
    for reading in proton_fit.readings:
        table = proton_fit.figure_table(reading).set_index("figure")
        assert table.loc["flapping", "status"] == "fails"
        assert table.loc["flapping", "miss"] > 0  # no posterior particle flaps within 0.5-5 min
        assert table.loc["flapping", "holding_probability"] == 0


def test_posterior_particles_are_within_the_threshold_and_the_prior(proton_fit):
    for reading in proton_fit.readings:
        final = proton_fit.runs[reading].final
        assert len(final.weight) == 100 and abs(final.weight.sum() - 1.0) < 1e-12 and (final.weight > 0).all()
        assert (final.distance <= final.epsilon).all()
        if proton_fit.exact[reading]:
            for fid in proton_fit.fitted:
                assert proton_fit.incident.figure(fid).holds(proton_fit.model_values(reading, fid)).all()
        ranges = proton_fit.ranges(reading)
        numeric = ranges.dropna(subset=["low"])
        assert (numeric.low <= numeric["median"]).all() and (numeric["median"] <= numeric.high).all()
        assert (numeric.prior_low <= numeric.low + 1e-9).all() and (numeric.high <= numeric.prior_high + 1e-9).all()
        table = proton_fit.generation_table(reading)
        assert (np.diff(table.threshold.to_numpy()[1:]) <= 0).all()  # thresholds never rise


def test_impossible_figures_are_named_with_their_miss(proton):
    incident = proton.incident
    impossible = dataclasses.replace(incident.figure("failed_requests"), value=99.9, tolerance=0.01)
    changed = dataclasses.replace(incident, figures=tuple(impossible if f.id == "failed_requests" else f
                                                          for f in incident.figures))
    result = infer(build_scenario(changed, time_step=120.0), particles=40, max_generations=2, workers=0)
    unmet = result.unmet("requests").set_index("figure")
    assert "failed_requests" in unmet.index and unmet.loc["failed_requests", "miss"] > 0
    assert not result.exact["requests"]


def test_infer_refuses_bad_arguments(proton):
    with pytest.raises(ValueError, match="fit names 'date'"):
        infer(proton, fit=["date"], workers=0)
    with pytest.raises(ValueError, match="particles must be between 10"):
        infer(proton, particles=0, workers=0)
    with pytest.raises(TypeError, match="particles must be a whole number"):
        infer(proton, particles=12.5, workers=0)
    with pytest.raises(ValueError, match="seed must be a whole number"):
        infer(proton, seed=-1, workers=0)
    for bad in (dict(seed=True), dict(fit=3.0), dict(max_evaluations=True)):
        with pytest.raises(TypeError, match=f"{next(iter(bad))} must be"):
            infer(proton, workers=0, **bad)
    with pytest.raises(ValueError, match="max_evaluations must be a whole number >= 1"):
        infer(proton, max_evaluations=0, workers=0)
    with pytest.raises(TypeError, match="scenario must be a Scenario"):
        infer("proton", workers=0)
    with pytest.raises(ValueError, match="time_step"):
        build_scenario(proton.incident, time_step=0.0)


def test_a_mechanism_the_model_lacks_names_file_field_and_reason(proton):
    incident = proton.incident
    odd = dataclasses.replace(incident.mechanisms[0], kind="cosmic_rays")
    broken = dataclasses.replace(incident, mechanisms=(odd, *incident.mechanisms[1:]))
    with pytest.raises(IncidentFileError, match=r"proton-2025-01-09.yaml: mechanisms\[0\].kind: the model has no "
                                                r"component for mechanism 'cosmic_rays' \(it models: "):
        build_scenario(broken)


def test_counterfactuals(proton_fit):
    reading = "requests"
    needed = required_headroom(proton_fit, reading, limit=8, iterations=8)
    assert list(needed.infrastructure) == ["legacy"]
    row = needed.iloc[0]
    assert row.needed >= 0 and row.needed_low <= row.needed <= row.needed_high
    policies = policy_counterfactuals(proton_fit, reading, limit=8)
    assert {"as inferred", "retry budget (10 %)", "adaptive throttling (k = 2)"} <= set(policies.policy)
    timing = intervention_timing(proton_fit, reading, [-30.0, 0.0, 30.0], limit=8)
    legacy = timing[timing.infrastructure == "legacy"].set_index("shift_minutes")
    # an earlier rollback never lengthens the outage
    assert legacy.loc[-30.0, "impact_minutes"] <= legacy.loc[30.0, "impact_minutes"]
    fate = autoscaled_fate(proton_fit, reading, limit=8)
    assert {"as inferred", "autoscaling off", "every platform autoscaled"} == set(fate.case)


def test_no_autoscaled_platform_means_no_fate():
    scenario = build_scenario(load("fastly-2021-06-08"), time_step=120.0)
    result = infer(scenario, particles=20, max_generations=1, workers=0)
    assert autoscaled_fate(result, result.readings[0], limit=4).empty
    assert policy_counterfactuals(result, result.readings[0], limit=4).empty


def test_cross_check_replays_the_best_setting_in_dynamics(proton_fit):
    from reliability.incident import cross_check, dynamics_components

    values, variant = proton_fit.settings("requests", which="best")
    parts = dynamics_components(proton_fit.scenario, values, int(variant[0]))
    assert [p.name for p in parts["platforms"]] == ["legacy", "kubernetes"]
    assert any(type(m).__name__ == "Surge" for m in parts["mechanisms"])
    table = cross_check(proton_fit, "requests", time_step=20.0)
    assert list(table.infrastructure) == ["legacy", "kubernetes"]
    shares = table.drop(columns="infrastructure").to_numpy()
    assert ((shares >= 0) & (shares <= 1)).all()


def test_the_trailing_mean_of_peak_figures_is_the_plain_one():
    from reliability.incident.measure import _rolling

    rng = np.random.default_rng(5)
    values = rng.random((7, 12))
    width = np.array([1, 3, 3, 12, 20, 5, 1])  # one width per sample, some longer than the run
    expected = np.array([[values[i, max(0, j + 1 - w):j + 1].mean() for j in range(12)] for i, w in enumerate(width)])
    assert np.allclose(_rolling(values, width), expected, rtol=1e-13, atol=0)
    assert np.allclose(_rolling(values, np.full(7, 4)), _rolling(values[::-1], np.full(7, 4))[::-1], rtol=0, atol=0)
