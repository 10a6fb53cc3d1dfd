"""The toy problems of the inference benchmark: a normal mean and a model choice with known answers, run
by reliability's ``abc_smc`` and by pyabc's ``ABCSMC`` with the same population and thresholds and kernels of the same scale
(pyabc's history database goes to a temporary folder). Used by :mod:`benchmarks.inference_bench`.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
from scipy import stats

from benchmarks.common import AgreementError, optional_import, version_of
from reliability.incident.smc import abc_smc

if TYPE_CHECKING:
    from benchmarks.inference_bench import InferenceConfig

# Toy problems: n = 10 points of sd 1, summarised by their mean (sufficient), prior U(-5, 5).
TOY_N, TOY_LOW, TOY_HIGH = 10, -5.0, 5.0
TOY_SD = 1.0 / math.sqrt(TOY_N)  # sd of the sample mean
NORMAL_OBSERVED = 1.0  # observed mean, normal-mean problem
CHOICE_OBSERVED = 0.5  # observed mean, model choice: model 0 "mean is 0", model 1 "mean ~ U(-5, 5)"


def _import_pyabc():
    """pyabc, quiet (it logs every generation at INFO), or None when it is not installed."""
    pyabc = optional_import("pyabc")
    if pyabc is not None:
        for name in ("ABC", "ABC.History", "ABC.Sampler", "ABC.Distance", "ABC.Epsilon", "ABC.Population"):
            logging.getLogger(name).setLevel(logging.WARNING)
    return pyabc


def _distance_is_output(simulated, observed) -> float:
    return simulated["distance"]


def _box_prior(pyabc, low, high):
    return pyabc.Distribution(**{f"z{i}": pyabc.RV("uniform", lo, hi - lo) for i, (lo, hi) in enumerate(zip(low, high))})


def _kernels(pyabc, models: int) -> dict:
    """Kernels of reliability's scale: Gaussian with twice the weighted covariance, model kernel 0.7."""
    transition = [pyabc.MultivariateNormalTransition(scaling=2.0, bandwidth_selector=lambda n, d: 1.0)
                  for _ in range(models)]
    return dict(transitions=transition, model_perturbation_kernel=pyabc.ModelPerturbationKernel(
        models, probability_to_stay=0.7))


# Toy problems with known answers
# ----------------------------------------------------------------------------------------

def _exact_choice() -> float:
    """P(model 0 | observed mean) with equal model priors: point null N(0, s^2) against U(-5, 5) * N(mu, s^2)."""
    null = stats.norm.pdf(CHOICE_OBSERVED, 0.0, TOY_SD)
    free = (stats.norm.cdf((TOY_HIGH - CHOICE_OBSERVED) / TOY_SD)
            - stats.norm.cdf((TOY_LOW - CHOICE_OBSERVED) / TOY_SD)) / (TOY_HIGH - TOY_LOW)
    return float(null / (null + free))


def _abc_target_choice(epsilon: float) -> float:
    """P(model 0 | |mean - observed| <= epsilon): what ABC estimates at threshold ``epsilon`` (exact)."""
    if math.isinf(epsilon):
        return 0.5  # every simulation accepted: the model prior
    if epsilon <= 0:
        return _exact_choice()
    x, s = CHOICE_OBSERVED, TOY_SD
    null = stats.norm.cdf((x + epsilon) / s) - stats.norm.cdf((x - epsilon) / s)

    def integral(c):  # integral over mu in [low, high] of Phi((c - mu) / s), by parts
        def g(u):
            return u * stats.norm.cdf(u) + stats.norm.pdf(u)
        return s * (g((c - TOY_LOW) / s) - g((c - TOY_HIGH) / s))

    free = (integral(x + epsilon) - integral(x - epsilon)) / (TOY_HIGH - TOY_LOW)
    return float(null / (null + free))


@dataclass(frozen=True)
class ToyRow:
    problem: str
    method: str
    mean: float
    sd: float
    model_probability: float  # NaN for the one-model problem
    simulations: int
    generations: int
    seconds: float
    final_epsilon: float
    ess: float  # effective sample size of the free mean's particles (Kish)


def _our_toy_simulate(observed: float, models: int):
    def simulate(jobs):
        out = []
        for z, model, seed in jobs:
            rng = np.random.default_rng(seed)
            mean = np.where(model == 0, 0.0, z[:, 0]) if models == 2 else z[:, 0]
            out.append((np.abs(mean + TOY_SD * rng.standard_normal(len(z)) - observed), {}))
        return out
    return simulate


def abc_smc_toy(problem: str, observed: float, models: int, config: InferenceConfig) -> tuple[ToyRow, list[float]]:
    start = time.perf_counter()
    result = abc_smc(_our_toy_simulate(observed, models), np.array([TOY_LOW]), np.array([TOY_HIGH]), models,
                     particles=config.toy_particles, seed=config.seed, max_generations=config.toy_generations,
                     batch=config.batch, tolerance=0.0)
    seconds = time.perf_counter() - start
    final = result.final
    free = final.model == models - 1  # the free mean: the only model in the normal-mean problem
    w = final.weight[free] / final.weight[free].sum()
    mean = float(w @ final.z[free, 0])
    sd = math.sqrt(float(w @ (final.z[free, 0] - mean) ** 2))
    probability = float(final.model_probabilities[0]) if models == 2 else math.nan
    schedule = [g.epsilon for g in result.generations]
    return ToyRow(problem, "reliability abc_smc", mean, sd, probability, result.evaluations, len(result.generations),
                  seconds, schedule[-1], float(1 / np.sum(w ** 2))), schedule


def _pyabc_toy_mean(parameters):
    return {"mean": float(parameters["mu"]) + TOY_SD * np.random.standard_normal()}


def _pyabc_toy_null(parameters):
    return {"mean": TOY_SD * np.random.standard_normal()}


def _pyabc_toy_distance(simulated, observed):
    return abs(simulated["mean"] - observed["mean"])


def pyabc_toy(problem: str, observed: float, models: int, schedule: list[float], config: InferenceConfig,
           pyabc) -> ToyRow:
    functions = [_pyabc_toy_null, _pyabc_toy_mean] if models == 2 else [_pyabc_toy_mean]
    priors = [pyabc.Distribution(mu=pyabc.RV("uniform", TOY_LOW, TOY_HIGH - TOY_LOW)) for _ in functions]
    np.random.seed(config.seed % 2**32)
    with tempfile.TemporaryDirectory(prefix="pyabc-history-") as folder:
        # Generation 0 accepts every proposal (reliability's threshold there is inf); a finite stand-in keeps
        # pyabc's own stopping test (inf - inf) free of a RuntimeWarning.
        finite = [min(e, 1e300) for e in schedule]
        abc = pyabc.ABCSMC(functions, priors, _pyabc_toy_distance, population_size=config.toy_particles,
                           eps=pyabc.epsilon.ListEpsilon(finite), sampler=pyabc.sampler.SingleCoreSampler(),
                           **_kernels(pyabc, len(functions)))
        abc.new(f"sqlite:///{Path(folder) / 'history.db'}", {"mean": observed})
        start = time.perf_counter()
        history = abc.run(max_nr_populations=len(schedule))
        seconds = time.perf_counter() - start
        probabilities = history.get_model_probabilities(history.max_t)["p"]  # indexed by model; dead models absent
        p0 = float(probabilities.get(0, 0.0))
        frame, w = history.get_distribution(m=models - 1, t=history.max_t)
        simulations, generations = int(history.total_nr_simulations), int(history.n_populations)
    mu, w = frame["mu"].to_numpy(), np.asarray(w) / np.sum(w)
    mean = float(w @ mu)
    return ToyRow(problem, f"pyabc {version_of('pyabc')} ABCSMC", mean, math.sqrt(float(w @ (mu - mean) ** 2)),
                  p0 if models == 2 else math.nan, simulations, generations, seconds, schedule[-1],
                  float(1 / np.sum(w ** 2)))


def abc_target(observed: float, epsilon: float) -> tuple[float, float]:
    """(mean, sd) of the free mean's ABC posterior at threshold ``epsilon`` (exact, on a fine grid): the prior
    times P(|simulated mean - observed| <= epsilon | mu); at epsilon = 0 the truncated normal posterior."""
    mu = np.linspace(TOY_LOW, TOY_HIGH, 200_001)
    if math.isinf(epsilon):
        density = np.ones_like(mu)
    elif epsilon <= 0:
        density = stats.norm.pdf(observed, mu, TOY_SD)
    else:
        density = stats.norm.cdf((observed + epsilon - mu) / TOY_SD) - stats.norm.cdf((observed - epsilon - mu) / TOY_SD)
    density = density / density.sum()
    mean = float(density @ mu)
    return mean, math.sqrt(float(density @ (mu - mean) ** 2))


def _check_toy(row: ToyRow, problem: "ToyProblem") -> None:
    """Against ABC's exact target at the row's final threshold: mean within 0.1 (a third of the exact
    posterior sd), sd within 25 %, P(model 0) within 0.1, or four standard errors at the effective sample
    size where that is wider (small populations)."""
    mean, sd = abc_target(problem.observed, row.final_epsilon)
    n, problems = max(row.ess, 1.0), []
    if abs(row.mean - mean) > max(0.1, 4 * sd / math.sqrt(n)):
        problems.append(f"posterior mean {row.mean:.3f} against {mean:.3f}")
    if abs(row.sd / sd - 1) > max(0.25, 4 / math.sqrt(2 * n)):
        problems.append(f"posterior sd {row.sd:.3f} against {sd:.3f}")
    if problem.models == 2:
        target = problem.target_probability(row.final_epsilon)
        if abs(row.model_probability - target) > max(0.1, 4 * math.sqrt(target * (1 - target) / n)):
            problems.append(f"P(model 0) {row.model_probability:.3f} against {target:.3f}")
    if problems:
        raise AgreementError(f"{row.method} on the {row.problem} at threshold {row.final_epsilon:.3g}: "
                             + "; ".join(problems))


@dataclass(frozen=True)
class ToyProblem:
    name: str
    observed: float
    models: int
    target_probability: Callable[[float], float] | None = None  # P(model 0): ABC's exact target at a threshold

    @property
    def exact(self) -> tuple[float, float, float]:
        """The exact posterior: mean and sd of the free mean, P(model 0) (NaN: one model)."""
        return (*abc_target(self.observed, 0.0), _exact_choice() if self.models == 2 else math.nan)


def toy_problems() -> tuple[ToyProblem, ...]:
    return (ToyProblem("normal mean", NORMAL_OBSERVED, 1),
            ToyProblem("model choice", CHOICE_OBSERVED, 2, _abc_target_choice))


def bench_toys(config: InferenceConfig, log, *, sampler: Callable = abc_smc_toy) -> list[tuple[ToyProblem, list[ToyRow]]]:
    """Each toy problem by reliability's abc_smc, then by pyabc on the same epsilon schedule; answers checked."""
    pyabc = _import_pyabc()
    out = []
    for problem in toy_problems():
        log(f"toy {problem.name}: abc_smc, {config.toy_particles} particles")
        ours, schedule = sampler(problem.name, problem.observed, problem.models, config)
        _check_toy(ours, problem)
        rows = [ours]
        if pyabc is not None and config.pyabc_toys:
            log(f"toy {problem.name}: pyabc, same schedule ({len(schedule)} generations)")
            theirs = pyabc_toy(problem.name, problem.observed, problem.models, schedule, config, pyabc)
            _check_toy(theirs, problem)
            rows.append(theirs)
        out.append((problem, rows))
    return out


# ----------------------------------------------------------------------------------------
