"""ABC-SMC (reliability.incident.smc) against posteriors known in closed form, its bookkeeping, its
reproducibility on any number of Dask workers, and the cluster it runs on (reliability.cluster)."""

import math
import time

import numpy as np
import pytest
from scipy.stats import norm

from reliability.cluster import SCHEDULER_VARIABLE, Cluster, scheduler_address
from reliability.incident import available_incidents, build_scenario, infer, load
from reliability.incident.smc import abc_smc, weighted_quantile

# Data: the mean of 10 draws of N(theta, 1) is 1.0; prior theta ~ U(-5, 5). With the uniform kernel of
# half-width eps on |simulated mean - 1|, the ABC posterior is the exact posterior N(1, 1/10) convolved
# with U(-eps, eps) (the prior is flat there): variance 1/10 + eps^2 / 3.
N_DRAWS, OBSERVED = 10, 1.0


def _normal_mean(jobs, observed=OBSERVED, fixed_model=None, fail_below=None):
    out = []
    for z, model, seed in jobs:
        rng = np.random.default_rng(seed)
        theta = z[:, 0] if fixed_model is None else np.where(model == fixed_model, 0.0, z[:, 0])
        distance = np.abs(theta + rng.standard_normal(len(z)) / math.sqrt(N_DRAWS) - observed)
        if fail_below is not None:
            distance = np.where(z[:, 0] < fail_below, np.nan, distance)
        out.append((distance, {"theta": z[:, 0].copy()}))
    return out


def test_normal_mean_posterior_matches_the_closed_form():
    result = abc_smc(_normal_mean, [-5.0], [5.0], 1, particles=1000, seed=3, target_epsilon=0.05)
    final = result.final
    assert result.converged and final.epsilon <= 0.05
    mean = float(final.weight @ final.z[:, 0])
    sd = math.sqrt(float(final.weight @ (final.z[:, 0] - mean) ** 2))
    expected_sd = math.sqrt(1 / N_DRAWS + final.epsilon ** 2 / 3)
    # Monte-Carlo errors with an effective sample size of several hundred: mean +- 3 sd / sqrt(ess)
    assert final.ess > 500
    assert abs(mean - OBSERVED) < 3 * expected_sd / math.sqrt(final.ess)
    assert abs(sd / expected_sd - 1) < 0.08
    low, high = weighted_quantile(final.z[:, 0], final.weight, (0.05, 0.95))
    assert abs(low - (OBSERVED - 1.645 * expected_sd)) < 0.08 and abs(high - (OBSERVED + 1.645 * expected_sd)) < 0.08


def test_model_probability_matches_the_exact_bayes_factor():
    # model 0: theta ~ U(-5, 5); model 1: theta = 0. Observed mean 0.5.
    observed = 0.5
    result = abc_smc(lambda jobs: _normal_mean(jobs, observed, fixed_model=1), [-5.0], [5.0], 2, particles=1000,
                     seed=4, target_epsilon=0.02)
    eps = result.final.epsilon
    sd = 1 / math.sqrt(N_DRAWS)
    # P(|mean - 0.5| <= eps | model): model 1 exactly; model 0 = 2 eps / 10 (the prior is flat over +-5).
    evidence_fixed = norm.cdf(observed + eps, 0, sd) - norm.cdf(observed - eps, 0, sd)
    evidence_free = 2 * eps / 10
    exact = evidence_free / (evidence_free + evidence_fixed)
    assert abs(result.final.model_probabilities[0] - exact) < 0.05, (result.final.model_probabilities, exact)
    # the evidence estimate of the final generation agrees with the closed form (all models together)
    total = 0.5 * (evidence_free + evidence_fixed)
    assert abs(math.exp(result.final.log_evidence_at(eps)) / total - 1) < 0.15


def test_thresholds_fall_and_weights_are_a_distribution():
    result = abc_smc(_normal_mean, [-5.0], [5.0], 1, particles=200, seed=1, max_generations=5)
    thresholds = [g.epsilon for g in result.generations]
    assert math.isinf(thresholds[0]) and all(b <= a for a, b in zip(thresholds[1:], thresholds[2:]))
    for g in result.generations:
        assert abs(g.weight.sum() - 1) < 1e-12 and (g.weight >= 0).all()
        assert (g.distance <= g.epsilon).all() and len(g.weight) == 200
        assert ((g.z >= -5) & (g.z <= 5)).all()
    assert result.stopped == "max_generations" and not result.converged


def test_failed_simulations_are_counted_and_never_accepted():
    result = abc_smc(lambda jobs: _normal_mean(jobs, fail_below=-2.0), [-5.0], [5.0], 1, particles=200, seed=2,
                     max_generations=3)
    first = result.generations[0]
    assert first.failures > 0.2 * first.evaluations  # a third of the prior fails
    for g in result.generations:
        assert (g.z[:, 0] >= -2.0).all()
        assert (g.outputs["theta"] == g.z[:, 0]).all()


def test_same_seed_same_numbers_and_another_seed_other_numbers():
    one = abc_smc(_normal_mean, [-5.0], [5.0], 1, particles=100, seed=7, max_generations=3)
    two = abc_smc(_normal_mean, [-5.0], [5.0], 1, particles=100, seed=7, max_generations=3)
    other = abc_smc(_normal_mean, [-5.0], [5.0], 1, particles=100, seed=8, max_generations=3)
    assert np.array_equal(one.final.z, two.final.z) and np.array_equal(one.final.weight, two.final.weight)
    assert not np.array_equal(one.final.z, other.final.z)


@pytest.mark.parametrize("kwargs, message", [
    (dict(low=[1.0], high=[0.0]), "high > low"),
    (dict(low=[0.0], high=[math.inf]), "finite"),
    (dict(low=[0.0, 1.0], high=[1.0]), "one length"),
    (dict(particles=5), "particles must be between 10"),
    (dict(models=0), "models must be between 1"),
])
def test_bad_arguments_are_refused(kwargs, message):
    arguments = dict(low=[0.0], high=[1.0], models=1, particles=20)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        abc_smc(_normal_mean, arguments.pop("low"), arguments.pop("high"), arguments.pop("models"), **arguments)


def test_an_incident_posterior_is_the_same_on_one_and_two_dask_workers():
    # two structures and two readings: the model kernel and both runs are exercised
    scenario = build_scenario(load("proton-2025-01-09"), time_step=240.0)
    options = dict(particles=40, max_generations=3, seed=5, batch=16)
    results = []
    for workers in (1, 2):
        with Cluster(workers=workers) as cluster:
            assert cluster.workers == workers
            results.append(infer(scenario, cluster=cluster, **options))
    inline = infer(scenario, workers=0, **options)
    for reading in inline.readings:
        finals = [r.runs[reading].final for r in (*results, inline)]
        for other in finals[1:]:
            assert np.array_equal(finals[0].z, other.z) and np.array_equal(finals[0].weight, other.weight)
            assert np.array_equal(finals[0].model, other.model)


def test_the_width_of_the_model_runs_changes_no_number(monkeypatch):
    """The inference pools each round's batches into equal runs of at most model_width particles."""
    import importlib

    infer_module = importlib.import_module("reliability.incident.infer")

    scenario = build_scenario(load("proton-2025-01-09"), time_step=240.0)
    options = dict(particles=40, max_generations=3, seed=5, batch=16, workers=0)
    wide = infer(scenario, **options)
    monkeypatch.setattr(infer_module, "MODEL_WIDTH", (7, 7))  # runs of 7 cut across the batches of 16
    narrow = infer(scenario, **options)
    for reading in wide.readings:
        a, b = wide.runs[reading], narrow.runs[reading]
        assert a.evaluations == b.evaluations and len(a.generations) == len(b.generations)
        for one, other in zip(a.generations, b.generations):
            assert np.array_equal(one.z, other.z) and np.array_equal(one.weight, other.weight)
            assert np.array_equal(one.model, other.model) and np.array_equal(one.distance, other.distance)


def test_a_scheduler_that_does_not_answer_is_named_within_seconds(monkeypatch):
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"scheduler 'tcp://127\.0\.0\.1:9' did not answer within 2 s"):
        Cluster(scheduler="tcp://127.0.0.1:9", timeout=2.0)
    assert time.monotonic() - start < 30  # a bound on a hang, not a speed assertion
    monkeypatch.setenv(SCHEDULER_VARIABLE, "tcp://example.invalid:8786")
    assert scheduler_address() == "tcp://example.invalid:8786"
    assert scheduler_address("tcp://other:1") == "tcp://other:1"
    with pytest.raises(TypeError, match="scheduler must be an address"):
        scheduler_address(8786)
    with pytest.raises(ValueError, match="workers must be between 0"):
        Cluster(workers=-1)
    with pytest.raises(TypeError, match="workers must be a whole number"):
        Cluster(workers=True)


def test_an_existing_scheduler_gets_the_same_work_and_gives_the_same_numbers():
    from distributed import LocalCluster

    scenario = build_scenario(load(available_incidents()[0]), time_step=240.0)
    options = dict(particles=30, max_generations=2, seed=9, batch=16)
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as existing:
        with Cluster(scheduler=existing.scheduler_address) as cluster:
            assert cluster.address == existing.scheduler_address and "1 workers" in repr(cluster)
            remote = infer(scenario, cluster=cluster, **options)
    inline = infer(scenario, workers=0, **options)
    for reading in inline.readings:
        assert np.array_equal(remote.runs[reading].final.z, inline.runs[reading].final.z)


@pytest.mark.parametrize("unknown, message", [
    (dict(kind="number", low=2.0, high=1.0), "low <= high"),
    (dict(kind="number", low=math.nan, high=1.0), "finite"),
    (dict(kind="number", low=0.0, high=1.0, scale="log"), "log-scale prior needs a range above 0"),
    (dict(kind="number", low=-1.0, high=1.0, scale="log"), "log-scale prior needs a range above 0"),
    (dict(kind="choice", choices=()), "has no choices"),
])
def test_priors_that_cannot_be_sampled_are_refused(unknown, message):
    from reliability.incident import LatentPrior, Unknown

    with pytest.raises(ValueError, match=r"unknown 'x\.y'.*" + message if "choices" not in message else message):
        LatentPrior([Unknown("x.y", **unknown)])


def test_latent_prior_maps_scales_counts_and_choices():
    from reliability.incident import LatentPrior, Unknown

    prior = LatentPrior([Unknown("a", "number", 1.0, 100.0, "log"), Unknown("b", "count", 0, 5),
                         Unknown("c", "choice", choices=("x", "y", "z")), Unknown("d", "number", 2.0, 2.0)])
    assert np.allclose(prior.low, [0.0, -0.5, 0.0]) and np.allclose(prior.high, [math.log(100.0), 5.5, 3.0])
    values = prior.values(np.array([[math.log(10.0), 2.49, 2.999], [0.0, -0.5, 0.0]]))
    assert np.allclose(values["a"], [10.0, 1.0]) and list(values["b"]) == [2.0, 0.0]
    assert list(values["c"]) == [2, 0] and list(values["d"]) == [2.0, 2.0]
    # whole numbers: each of 0..5 gets one sixth of the latent range
    grid = np.linspace(-0.5, 5.5, 60001)[:, None] * np.ones((1, 3))
    counts = np.bincount(prior.values(grid)["b"].astype(int))
    assert np.allclose(counts / counts.sum(), 1 / 6, atol=1e-3)


def test_a_fitted_figure_with_no_spread_is_refused():
    import dataclasses

    incident = load(available_incidents()[0])
    fitted = next(f for f in incident.figures if f.tolerance and f.qualifier in ("about", "exact"))
    exact = dataclasses.replace(fitted, tolerance=0.0, range=None)
    changed = dataclasses.replace(incident, figures=tuple(exact if f.id == fitted.id else f for f in incident.figures))
    with pytest.raises(ValueError, match=f"figure '{fitted.id}' is fitted but allows no spread"):
        infer(build_scenario(changed, time_step=240.0), particles=10, workers=0)
