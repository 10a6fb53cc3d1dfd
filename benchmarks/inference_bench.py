"""Inference: reliability's vectorised ABC-SMC against pyabc, and the incident inference on Dask.

Measured in one run:

* **the model call** -- one call of the incident model (run, figures, distance) for one particle,
  against the cost per particle in a run of the width the inference uses (``model_width``: it pools its
  batches of 512 into runs of up to 2,048 particles on a worker). pyabc calls its model once per particle, so the
  default inference through pyabc would cost (simulations it needed) x (single-call cost); pyabc's
  ``ABCSMC`` with its ``DaskDistributedSampler`` is also run on the real model for a small population
  and a couple of generations, to measure its real time per particle.
* **toy problems with known answers** -- a normal mean under a uniform prior, and a choice between a
  point null and a free mean (exact Bayes factor): reliability's ``abc_smc`` and pyabc's ``ABCSMC``
  with the same population, the same epsilon schedule (pyabc is given reliability's as a
  ``ListEpsilon``) and kernels of the same scale (twice the weighted covariance, model kernel 0.7). pyabc's
  history database goes to a temporary folder.
* **the incident inference** -- the default inference of one incident (the notebook's parameters) on
  a local Dask cluster of 2 workers, the smoke inference, the speed-up from 1 to 2 workers (the
  posteriors must be identical: a correctness check), and simulated incident-hours per second per
  core beside the time of one bare model step; and the default inference of a second incident of a
  different shape (``other_incidents``) on 2 workers, against the same 2-minute target.

``python -m benchmarks.inference_bench`` runs only this part and replaces the inference section of
``benchmarks/results.md``; ``python -m benchmarks`` includes it.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import logging
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy import stats

from benchmarks.common import (AgreementError, Target, fmt_ratio, fmt_seconds, markdown_table, optional_import,
                               time_interleaved, version_of)
from reliability.cluster import Cluster
from reliability.incident import build_scenario, infer, load
from reliability.incident.infer import FITTED_QUANTITIES, LatentPrior, figure_readings, model_width, simulate_batch
from reliability.incident.measure import modelled
from reliability.incident.smc import abc_smc

from benchmarks.inference_toys import (CHOICE_OBSERVED, NORMAL_OBSERVED, TOY_HIGH, TOY_LOW, TOY_N, TOY_SD, ToyProblem,
                                       ToyRow, _box_prior, _distance_is_output, _import_pyabc, _kernels, abc_smc_toy,
                                       abc_target, bench_toys, pyabc_toy, toy_problems)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "04-incident-reconstruction.ipynb"
RESULTS = Path(__file__).resolve().parent / "results.md"
HEADING = "## Inference (ABC-SMC against pyabc, incident inference on Dask)"

DEFAULT_LIMIT = 120.0  # seconds: default inference of one incident, 2 workers
SMOKE_LIMIT = 10.0  # seconds: smoke inference
SPEEDUP_TARGET = 1.7  # from 1 to 2 local workers



@dataclass(frozen=True)
class InferenceConfig:
    """How big the inference benchmark is (``FULL`` for results.md, ``QUICK`` for the tests)."""

    name: str
    toy_particles: int
    toy_generations: int
    call_repetitions: int
    pyabc_population: int  # 0: pyabc is not run on the incident model
    pyabc_generations: int
    workers: tuple[int, ...]  # local workers of the incident inference (first and last: the speed-up)
    pyabc_toys: bool = True  # pyabc on the toy problems (slow: one model call per particle)
    smoke: bool = True  # also the smoke inference
    generations: int = 0  # > 0: the default inference stops after this many generations (its first ones)
    quick_inference: dict | None = None  # overrides the notebook's parameters (QUICK only)
    incident: str = "proton-2025-01-09"
    batch: int = 512  # the sampler's batch (the toys' abc_smc)
    model_batch: int = 0  # particles in the model call measured (0: the width the inference runs the incident at)
    other_incidents: tuple[str, ...] = ()  # also inferred by default on the last worker count
    seed: int = 20250109


FULL = InferenceConfig("full", toy_particles=1000, toy_generations=6, call_repetitions=5, pyabc_population=20,
                       pyabc_generations=2, workers=(1, 2), other_incidents=("azure-2023-03-23",))
QUICK = InferenceConfig("quick", toy_particles=100, toy_generations=3, call_repetitions=1, pyabc_population=0,
                        pyabc_generations=1, workers=(0,), pyabc_toys=False, smoke=False,
                        quick_inference={"time_step_seconds": 240.0, "particles": 60, "max_generations": 2})


# ----------------------------------------------------------------------------------------
# The notebook's parameters
# ----------------------------------------------------------------------------------------

def notebook_parameters(path: Path = NOTEBOOK) -> tuple[dict, dict]:
    """(default, smoke) parameters of the incident notebook: its ``parameters`` cell, and that cell
    updated by ``metadata['reliability']['smoke_parameters']``."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cell = next(c for c in notebook["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    default = {}
    for node in ast.parse("".join(cell["source"])).body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign)
                                                                       else None)
        if isinstance(target, ast.Name) and node.value is not None:
            default[target.id] = ast.literal_eval(node.value)
    smoke = {**default, **notebook["metadata"].get("reliability", {}).get("smoke_parameters", {})}
    return default, smoke


# Notebook parameter -> keyword of ``infer`` (the notebook passes them as ``infer(scenario, particles=..., ...)``).
_INFER_KEYS = {"particles": "particles", "max_generations": "max_generations", "inference_seed": "seed",
               "batch": "batch", "max_evaluations": "max_evaluations"}


def inference_settings(parameters: dict) -> tuple[float, dict]:
    """(time step, keyword arguments of ``infer``) from the notebook's parameters."""
    return float(parameters["time_step_seconds"]), {k: parameters[p] for p, k in _INFER_KEYS.items() if p in parameters}


# ----------------------------------------------------------------------------------------
# One model call against a batch
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelCall:
    steps: int
    time_step: float
    dimensions: int
    single: float  # seconds: one call for one particle (run, figures, distance)
    batch: int
    batched: float  # seconds: one call for a batch
    bare_single: float  # seconds: scenario.run alone, one particle
    bare_batched: float  # seconds: scenario.run alone, the batch

    @property
    def per_particle(self) -> float:
        return self.batched / self.batch

    @property
    def bare_step(self) -> float:
        """One bare time step of the model for one particle (its fixed cost: the floor of a step)."""
        return self.bare_single / self.steps

    @property
    def bare_step_batched(self) -> float:
        """One bare time step per particle in the batch."""
        return self.bare_batched / self.steps / self.batch


class IncidentProblem:
    """The scenario, latent prior and fitted figures of one incident at one time step, and one reading."""

    def __init__(self, name: str, time_step: float):
        self.scenario = build_scenario(load(name), time_step=time_step)
        self.prior = LatentPrior(self.scenario.unknowns)
        incident = self.scenario.incident
        self.fitted = tuple(f.id for f in incident.figures if modelled(f) and f.quantity in FITTED_QUANTITIES)
        self.reading = figure_readings(incident)[0]

    def draw(self, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        z = self.prior.low + rng.random((n, len(self.prior.low))) * (self.prior.high - self.prior.low)
        return z, rng.integers(0, len(self.scenario.variants), size=n)

    def distance(self, z: np.ndarray, variant: np.ndarray) -> np.ndarray:
        return simulate_batch(self.scenario, self.prior, self.fitted, self.reading, (z, variant, 0))[0]


def bench_model_call(problem: IncidentProblem, config: InferenceConfig) -> ModelCall:
    """One call for one particle against one call for a batch, with and without figures and distance, timed
    in turns (the load drifts alike for all four) after one warm-up each; medians."""
    width = config.model_batch or model_width(len(problem.scenario.times))
    one, many = problem.draw(1, config.seed), problem.draw(width, config.seed + 1)
    scenario, reps, few = problem.scenario, 3 * config.call_repetitions, config.call_repetitions

    def bare(zv):
        return lambda: scenario.run(problem.prior.values(zv[0]), zv[1])

    timers = [("single", lambda: problem.distance(*one), 1, reps), ("batched", lambda: problem.distance(*many), 1, few),
              ("bare_single", bare(one), 1, reps), ("bare_batched", bare(many), 1, few)]
    for _, function, _, _ in timers:
        function()
    times = {key: t.seconds for key, t in time_interleaved(timers).items()}
    return ModelCall(steps=len(scenario.times), time_step=scenario.time_step, dimensions=len(problem.prior.low),
                     batch=width, **times)


# ----------------------------------------------------------------------------------------
# pyabc on the incident model
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PyabcRun:
    population: int
    generations: int
    simulations: int
    seconds: float
    workers: int
    sampler: str
    note: str = ""

    @property
    def per_particle(self) -> float:
        return self.seconds / self.simulations if self.simulations else math.nan


class _PyabcIncidentModel:
    """pyabc's model interface on the incident: one call, one particle, one variant (a pyabc model)."""

    def __init__(self, problem: IncidentProblem, variant: int):
        self.problem, self.variant = problem, variant
        self.keys = [f"z{i}" for i in range(len(problem.prior.low))]

    def __call__(self, parameters) -> dict:
        z = np.array([[float(parameters[k]) for k in self.keys]])
        distance = float(self.problem.distance(z, np.array([self.variant]))[0])
        return {"distance": distance if math.isfinite(distance) else 1e12}


def bench_pyabc_incident(problem: IncidentProblem, config: InferenceConfig, log) -> PyabcRun | None:
    """pyabc's ABCSMC with its DaskDistributedSampler on the real incident model (2 local workers)."""
    pyabc = _import_pyabc()
    if pyabc is None or not config.pyabc_population:
        return None
    from distributed import Client, LocalCluster

    workers = 2
    log(f"pyabc on the incident model: population {config.pyabc_population}, "
        f"{config.pyabc_generations} generations, {workers} Dask workers")
    models = [_PyabcIncidentModel(problem, v) for v in range(len(problem.scenario.variants))]
    priors = [_box_prior(pyabc, problem.prior.low, problem.prior.high) for _ in models]
    with tempfile.TemporaryDirectory(prefix="pyabc-history-") as folder, \
            LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                         silence_logs=40) as cluster, Client(cluster) as client:
        sampler = pyabc.sampler.DaskDistributedSampler(dask_client=client, batch_size=1)
        abc = pyabc.ABCSMC(models, priors, _distance_is_output, population_size=config.pyabc_population,
                           sampler=sampler, **_kernels(pyabc, len(models)))
        abc.new(f"sqlite:///{Path(folder) / 'history.db'}", {"distance": 0.0})
        start = time.perf_counter()
        history = abc.run(max_nr_populations=config.pyabc_generations)
        seconds = time.perf_counter() - start
        simulations = int(history.total_nr_simulations)
    return PyabcRun(config.pyabc_population, config.pyabc_generations, simulations, seconds, workers,
                    "DaskDistributedSampler (batch_size=1)")


# ----------------------------------------------------------------------------------------
# The incident inference on a local Dask cluster
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InferenceRun:
    label: str
    workers: int
    time_step: float
    settings: dict
    steps: int
    start_seconds: float  # opening the local cluster
    close_seconds: float  # closing it
    seconds: float  # the inference itself, cluster up
    load: str  # load average when it started
    simulations: int
    generations: dict  # reading -> generations
    stopped: dict  # reading -> why it stopped
    posterior: Any
    incident: str = ""

    @property
    def wall(self) -> float:
        """What ``infer(scenario)`` costs a caller: the cluster it opens and closes, and the inference."""
        return self.start_seconds + self.seconds + self.close_seconds

    @property
    def incident_hours(self) -> float:
        return self.simulations * self.steps * self.time_step / 3600.0

    @property
    def hours_per_core_second(self) -> float:
        return self.incident_hours / (self.seconds * max(self.workers, 1))


def run_inference(label: str, incident: str, time_step: float, settings: dict, workers: int, log) -> InferenceRun:
    """``infer`` on a cluster of ``workers`` local processes (0: this process), timing the cluster apart."""
    scenario, load_average = build_scenario(load(incident), time_step=time_step), _load()
    log(f"{label}: {incident}, time step {time_step:g} s, {settings or 'infer defaults'}, {workers} workers")
    start = time.perf_counter()
    cluster = Cluster(workers=workers)
    opened = time.perf_counter() - start
    try:
        start = time.perf_counter()
        posterior = infer(scenario, cluster=cluster, **settings)
        seconds = time.perf_counter() - start
    finally:
        start = time.perf_counter()
        cluster.close()
        closed = time.perf_counter() - start
    runs = posterior.runs
    return InferenceRun(label, workers, time_step, dict(settings), len(scenario.times), opened, closed, seconds,
                        load_average,
                        sum(r.evaluations for r in runs.values()),
                        {k: len(r.generations) for k, r in runs.items()}, {k: r.stopped for k, r in runs.items()},
                        posterior, incident)


def same_posterior(a, b) -> list[str]:
    """Where two posteriors differ (every generation of every reading, bit for bit); empty when identical."""
    differences = []
    if list(a.runs) != list(b.runs):
        return [f"readings {list(a.runs)} against {list(b.runs)}"]
    for reading in a.runs:
        ga, gb = a.runs[reading].generations, b.runs[reading].generations
        if len(ga) != len(gb):
            differences.append(f"{reading}: {len(ga)} generations against {len(gb)}")
            continue
        for t, (x, y) in enumerate(zip(ga, gb)):
            for name in ("z", "model", "weight", "distance"):
                if not np.array_equal(getattr(x, name), getattr(y, name)):
                    differences.append(f"{reading}, generation {t}: {name} differs")
            if x.evaluations != y.evaluations:
                differences.append(f"{reading}, generation {t}: {x.evaluations} simulations against {y.evaluations}")
    return differences


@dataclass(frozen=True)
class IncidentResult:
    model_call: ModelCall
    pyabc: PyabcRun | None
    default: list  # InferenceRun per worker count of the config
    smoke: InferenceRun | None
    identical: bool | None  # posteriors of the first and last worker counts
    others: list = ()  # InferenceRun of each other incident's default inference


def bench_incident(config: InferenceConfig, log) -> IncidentResult:
    default, smoke = notebook_parameters()
    if config.quick_inference is not None:
        default = smoke = {**default, **config.quick_inference}
    time_step, settings = inference_settings(default)
    label = "default inference"
    if config.generations:  # same seeds, same batches: these are the first generations of the default run
        settings["max_generations"], label = config.generations, f"default inference, first {config.generations} generations"
    problem = IncidentProblem(config.incident, time_step)
    log(f"model call: one particle against a batch of {config.model_batch or model_width(len(problem.scenario.times))} "
        f"({len(problem.scenario.times)} steps)")
    call = bench_model_call(problem, config)
    pyabc_run = bench_pyabc_incident(problem, config, log)
    # Last worker count first (the default inference on 2 workers), then the others on the same inference.
    runs = [run_inference(label, config.incident, time_step, settings, w, log)
            for w in reversed(config.workers)][::-1]
    identical = None
    if len(runs) > 1:
        differences = same_posterior(runs[0].posterior, runs[-1].posterior)
        if differences:
            raise AgreementError(f"the posterior on {runs[0].workers} and {runs[-1].workers} workers differs: "
                                 + "; ".join(differences[:5]))
        identical = True
    smoke_run = None
    if config.smoke:
        smoke_step, smoke_settings = inference_settings(smoke)
        smoke_run = run_inference("smoke inference", config.incident, smoke_step, smoke_settings,
                                  config.workers[-1], log)
    others = [run_inference(label, other, time_step, settings, config.workers[-1], log)
              for other in config.other_incidents]
    return IncidentResult(call, pyabc_run, runs, smoke_run, identical, others)


# ----------------------------------------------------------------------------------------
# Targets and the markdown section
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InferenceResult:
    config: InferenceConfig
    toys: list
    incident: IncidentResult
    load_before: str
    load_after: str
    seconds: float


def _load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def bench_inference(config: InferenceConfig = FULL, *, log: Callable[[str], None] | None = None) -> InferenceResult:
    """Every measurement of this module, in one run (raises AgreementError on a wrong answer)."""
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    start, before = time.perf_counter(), _load()
    toys = bench_toys(config, log)
    incident = bench_incident(config, log)
    return InferenceResult(config, toys, incident, before, _load(), time.perf_counter() - start)


def inference_targets(result: InferenceResult) -> list[Target]:
    inc = result.incident
    runs = {r.workers: r for r in inc.default}
    two = runs.get(2)
    out = []
    text = (f"{two.wall:.1f} s ({two.seconds:.1f} s inference, {two.start_seconds:.1f} s starting the cluster, "
            f"{two.close_seconds:.1f} s closing it); "
            f"{two.simulations:,} simulations") if two else "not in this configuration"
    out.append(Target("inference", f"default inference of {result.config.incident} within {DEFAULT_LIMIT / 60:g} min "
                      "on a local cluster of 2 workers",
                      (f"not the target's condition, its first {result.config.generations} generations only: " + text
                       if result.config.generations and two else text),
                      None if result.config.generations else two and two.wall <= DEFAULT_LIMIT))
    for other in inc.others:
        out.append(Target("inference", f"default inference of {other.incident} within {DEFAULT_LIMIT / 60:g} min "
                          f"on a local cluster of {other.workers} workers",
                          f"{other.wall:.1f} s ({other.seconds:.1f} s inference, {other.start_seconds:.1f} s starting "
                          f"the cluster, {other.close_seconds:.1f} s closing it); {other.simulations:,} simulations, "
                          f"generations {', '.join(f'{r} {g}' for r, g in other.generations.items())}",
                          None if result.config.generations else other.wall <= DEFAULT_LIMIT))
    smoke = inc.smoke
    out.append(Target("inference", f"smoke inference within {SMOKE_LIMIT:g} s",
                      f"{smoke.wall:.1f} s ({smoke.seconds:.1f} s inference, {smoke.start_seconds:.1f} + "
                      f"{smoke.close_seconds:.1f} s starting and closing the cluster)"
                      if smoke else "not in this configuration", smoke and smoke.wall <= SMOKE_LIMIT))
    if 1 in runs and 2 in runs:
        speedup = runs[1].seconds / runs[2].seconds
        text = (f"{fmt_ratio(speedup)} ({runs[1].seconds:.1f} s on 1 worker, {runs[2].seconds:.1f} s on 2; with cluster "
                f"start: {fmt_ratio(runs[1].wall / runs[2].wall)}); posteriors identical bit for bit")
        met = speedup >= SPEEDUP_TARGET
    else:
        text, met = "not in this configuration", None
    out.append(Target("inference", f"speed-up from 1 to 2 local workers ≥ {SPEEDUP_TARGET:g}x, same posterior", text, met))
    run, call = inc.default[-1], inc.model_call
    ceiling = call.time_step / 3600.0 / call.bare_step_batched
    out.append(Target("inference", "simulated incident-hours per second per core, beside one bare model step",
                      f"{run.hours_per_core_second:,.0f} h/s per core ({run.workers} workers); bare step "
                      f"{fmt_seconds(call.bare_step)} for one particle, {fmt_seconds(call.bare_step_batched)} per "
                      f"particle in a batch of {call.batch} (a ceiling of {ceiling:,.0f} h/s per core)", "measured"))
    projected = run.simulations * call.single
    measured = (f"; pyabc's ABCSMC measured on the real model: {fmt_seconds(inc.pyabc.per_particle)} per particle on "
                f"2 workers, {run.simulations * inc.pyabc.per_particle / 3600:.1f} h for these simulations"
                if inc.pyabc is not None else "")
    out.append(Target("inference", "pyabc's one-particle model interface on the default inference (projection)",
                      f"{run.simulations:,} simulations x {fmt_seconds(call.single)} per single-particle call = "
                      f"{projected / 60:,.0f} min on one core ({projected / 120:,.0f} min on 2) against "
                      f"{run.seconds:.0f} s on {run.workers}{measured}", "measured"))
    return out


def _verdict_text(target: Target) -> str:
    return target.met if isinstance(target.met, str) else target.verdict


def _model_call_section(call: ModelCall, pyabc_run: PyabcRun | None, run: InferenceRun) -> str:
    rows = [["incident model + figures + distance (what a pyabc model call runs)", fmt_seconds(call.single),
             fmt_seconds(call.batched), fmt_seconds(call.per_particle), fmt_ratio(call.single / call.per_particle)],
            ["bare model run (`scenario.run`)", fmt_seconds(call.bare_single), fmt_seconds(call.bare_batched),
             fmt_seconds(call.bare_batched / call.batch), fmt_ratio(call.bare_single * call.batch / call.bare_batched)],
            ["one bare time step", fmt_seconds(call.bare_step), fmt_seconds(call.bare_batched / call.steps),
             fmt_seconds(call.bare_step_batched), fmt_ratio(call.bare_step / call.bare_step_batched)]]
    text = (f"{call.steps} time steps of {call.time_step:g} s, {call.dimensions} inferred dimensions. Median of "
            "repetitions after a warm-up.\n\n"
            + markdown_table(["call", "one particle", f"batch of {call.batch}", "per particle in the batch",
                              "one particle costs"], rows) + "\n\n")
    projected = run.simulations * call.single
    lines = [[f"reliability `infer` (batches of 512 in runs of {call.batch} on Dask)", f"{run.workers}", f"{run.simulations:,}",
              f"{run.seconds:.1f} s", fmt_seconds(run.seconds * max(run.workers, 1) / run.simulations)],
             ["pyabc, projected: simulations x one single-particle call", "1", f"{run.simulations:,}",
              f"{projected:,.0f} s ({projected / 3600:.1f} h)", fmt_seconds(call.single)]]
    if pyabc_run is not None:
        lines.append([f"pyabc {version_of('pyabc')} ABCSMC, {pyabc_run.sampler}, measured on the real model "
                      f"(population {pyabc_run.population}, {pyabc_run.generations} generations)",
                      f"{pyabc_run.workers}", f"{pyabc_run.simulations:,}", f"{pyabc_run.seconds:.1f} s",
                      fmt_seconds(pyabc_run.per_particle * pyabc_run.workers)])
        pyabc_projected = run.simulations * pyabc_run.per_particle
        lines.append(["pyabc, projected from its measured time per particle on 2 workers", f"{pyabc_run.workers}",
                      f"{run.simulations:,}", f"{pyabc_projected:,.0f} s ({pyabc_projected / 3600:.1f} h)",
                      fmt_seconds(pyabc_run.per_particle * pyabc_run.workers)])
    return text + ("The default inference through pyabc's one-particle model interface:\n\n"
                   + markdown_table(["method", "workers", "simulations", "wall", "core time per simulation"], lines)
                   + "\n")


def _fmt(x, digits=3):
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _toy_section(toys, config: InferenceConfig) -> str:
    rows = []
    for problem, results in toys:
        for r in results:
            mean, sd = abc_target(problem.observed, r.final_epsilon)
            target_p = problem.target_probability(r.final_epsilon) if problem.models == 2 else None
            rows.append([problem.name, r.method, r.generations, f"{r.final_epsilon:.3g}", f"{r.simulations:,}",
                         f"{_fmt(r.mean)} ({_fmt(mean)})", f"{_fmt(r.sd)} ({_fmt(sd)})",
                         f"{_fmt(r.model_probability)} ({_fmt(target_p)})" if problem.models == 2 else "—",
                         f"{r.seconds:.2f} s", fmt_seconds(r.seconds / r.simulations)])
    exact = {p.name: p.exact for p, _ in toys}
    normal, choice = exact["normal mean"], exact["model choice"]
    return (f"{TOY_N} points of sd 1 summarised by their mean, prior U({TOY_LOW:g}, {TOY_HIGH:g}), {config.toy_particles} "
            f"particles. **Normal mean**: observed mean {NORMAL_OBSERVED:g}; exact posterior mean "
            f"{normal[0]:.3f}, sd {normal[1]:.4f}. **Model choice**: observed mean {CHOICE_OBSERVED:g}, "
            f"model 0 'the mean is 0' against model 1 'mean ~ U(-5, 5)', equal prior odds; exact P(model 0) = "
            f"{choice[2]:.4f} (Bayes factor {choice[2] / (1 - choice[2]):.3f}); "
            f"model 1's posterior mean {choice[0]:.3f}, sd {choice[1]:.4f}. reliability's `abc_smc` ran "
            "first (weighted-median thresholds, at most "
            f"{config.toy_generations} generations); pyabc's `ABCSMC` was given the same thresholds (`ListEpsilon`), "
            "population size, model kernel 0.7 and Gaussian kernels of twice the weighted covariance "
            "(`MultivariateNormalTransition(scaling=2)` with a unit bandwidth; reliability's own are the same scale, "
            "half component-wise in the prior box and half in its logit), with its `SingleCoreSampler` (both in one "
            "process) and its history in a temporary folder. In brackets: ABC's exact target at the final threshold "
            "(the prior times P(|simulated mean - observed| <= threshold)), which both must meet (mean within 0.1, sd "
            "within 25 %, model probability within 0.1, or four standard errors at the effective sample size where "
            "that is wider) before their times count.\n\n"
            + markdown_table(["problem", "method", "generations", "final threshold", "simulations",
                              "posterior mean (target)", "posterior sd (target)", "P(model 0) (target)", "wall",
                              "per simulation"], rows) + "\n")


def _inference_section(runs, smoke) -> str:
    rows = []
    for r in list(runs) + ([smoke] if smoke else []):
        settings = ", ".join(f"{k}={v}" for k, v in r.settings.items()) or "infer's defaults"
        rows.append([r.label, r.workers, f"{r.time_step:g} s", settings,
                     "; ".join(f"{k}: {g}" for k, g in r.generations.items()), f"{r.simulations:,}",
                     f"{r.seconds:.1f} s", f"{r.start_seconds:.1f} + {r.close_seconds:.1f} s", f"{r.wall:.1f} s",
                     f"{r.hours_per_core_second:,.0f}",
                     "; ".join(f"{k}: {why}" for k, why in r.stopped.items()), r.load])
    return markdown_table(["run", "workers", "time step", "settings", "generations per reading", "simulations",
                           "inference", "cluster start + close", "wall", "incident-h/s per core", "stopped",
                           "load average at start"],
                          rows) + "\n"


def render_section(result: InferenceResult) -> str:
    inc, targets = result.incident, inference_targets(result)
    default, smoke = notebook_parameters()
    return "\n".join([
        HEADING, "",
        f"`python -m benchmarks.inference_bench` ({result.config.name} configuration), {result.seconds:.0f} s; "
        f"load average (1, 5, 15 min) {result.load_before} at the start and {result.load_after} at the end, on 2 "
        f"cores shared with other jobs. pyabc {version_of('pyabc')}, distributed {version_of('distributed')}. "
        f"Incident {result.config.incident}, with the parameters of notebooks/04 (time step "
        f"{default['time_step_seconds']:g} s; smoke: {smoke['time_step_seconds']:g} s).", "",
        markdown_table(["area", "target", "measured", "verdict"],
                       [[t.area, t.target, t.measured, _verdict_text(t)] for t in targets]), "",
        "### One model call against a batch", "",
        _model_call_section(inc.model_call, inc.pyabc, inc.default[-1]),
        "### Toy problems with known posteriors: reliability's abc_smc and pyabc's ABCSMC", "",
        _toy_section(result.toys, result.config),
        "### Incident inference on a local Dask cluster", "",
        "The posteriors on 1 and 2 workers are compared bit for bit (every generation of every reading) before "
        "any time counts. Incident-hours per core-second: simulations x the model's span / (inference time x "
        "workers)." if inc.identical else "One run in this configuration (no speed-up measured).", "",
        _inference_section(inc.default, inc.smoke),
    ])


def replace_section(page: str, section: str) -> str:
    """``page`` with its inference section (from HEADING to the next ``## `` heading) replaced, or appended."""
    if HEADING not in page:
        return page.rstrip("\n") + "\n\n" + section
    before, rest = page.split(HEADING, 1)
    after = rest.split("\n## ", 1)
    return before + section + ("\n## " + after[1] if len(after) > 1 else "")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.inference_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny configuration, printed, nothing written")
    parser.add_argument("--output", "-o", type=Path, default=RESULTS, help="results page whose section is replaced")
    parser.add_argument("--generations", type=int, default=0,
                        help="stop the default inference after this many generations (a busy machine)")
    parser.add_argument("--toy-particles", type=int, default=FULL.toy_particles, help="population of the toy problems")
    parser.add_argument("--pyabc-population", type=int, default=FULL.pyabc_population,
                        help="population of pyabc on the incident model (0: not run)")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else dataclasses.replace(
        FULL, generations=args.generations, toy_particles=args.toy_particles, pyabc_population=args.pyabc_population)
    try:
        result = bench_inference(config)
    except AgreementError as exc:
        print(f"answer-agreement check failed, nothing written: {exc}", file=sys.stderr)
        return 1
    section = render_section(result)
    if args.quick:
        print(section)
        return 0
    page = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    args.output.write_text(replace_section(page, section), encoding="utf-8")
    print(section.split("### ", 1)[0])
    return 0


if __name__ == "__main__":  # the local Dask cluster starts worker processes: only under this guard
    sys.exit(main())
