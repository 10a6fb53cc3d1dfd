"""Bayesian calibration of an incident's unknowns: ABC-SMC with model choice over its structures.

:func:`infer` samples every unknown of the scenario from the prior its file states (uniform over the
range, or over its logarithm on a log scale; whole numbers and choices uniform), and the structures
the file allows (each hypothesis in or out, each alternative of an unknown intervention) compete as
models. The data are the fitted figures, each with its published tolerance (or range): a run's
distance is the root sum of squares of every fitted figure's miss *outside* its bounds, in units of its
tolerance, so a threshold of 0 keeps exactly the settings at which every fitted figure holds, which is
ABC with a uniform kernel as wide as the tolerance the organisation published. The run
(:func:`reliability.incident.smc.abc_smc`) lowers the threshold generation by generation (the weighted
median of the last distances; one within :data:`SNAP` of 0 is taken as 0) until it reaches 0, or stops
falling and the posterior stops moving.

A figure whose observation level was not published is read at each level it allows: one run per
*reading*, and the readings compete through their evidence (the prior probability that a run meets
every fitted figure under that reading, at the threshold both reached), shown side by side, never
chosen silently.

The incident model (:mod:`reliability.incident.model`) is deterministic: each particle runs once, and
the batch seeds only drive the proposals. Batches run on a :class:`~reliability.cluster.Cluster`
(a local Dask cluster by default), each seeded by its identity, so the numbers do not depend on the
number of workers.

Examples
--------
>>> from reliability.incident import available_incidents, build_scenario, load
>>> scenario = build_scenario(load(available_incidents()[0]), time_step=240.0)
>>> result = infer(scenario, particles=60, max_generations=2, workers=0)
>>> set(result.figure_table(result.readings[0]).status) <= set(STATUSES)
True
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from .._validate import ArgumentTypeError, describe, whole
from ..cluster import Cluster
from .measure import measure, modelled, readings
from .posterior import Posterior, STATUSES, figure_level, miss
from .scenario import Scenario
from .smc import abc_smc

__all__ = ["infer", "LatentPrior", "FITTED_QUANTITIES", "STATUSES", "figure_readings", "figure_distance"]

#: Quantities fitted by default: how bad and how long. Shapes (improvement, alternation, resolution,
#: availability at an instant) are predictions checked against the fit.
FITTED_QUANTITIES = ("peak_failure_rate", "failure_over_window", "time_to_recovery", "total_impact_time",
                     "capacity_share")
#: A threshold within this many tolerances of 0 is taken as 0: a tenth of a published tolerance is below
#: the precision of the figures, and the step to 0 would cost a generation of its own.
SNAP = 0.1
# A figure the model never reaches counts as this many tolerances away (a finite, comparable distance).
_FAR = 1e6


class LatentPrior:
    """The unknowns' priors as one uniform box: logarithms for log scales, half-open cells for whole
    numbers and choices, and the map from the box back to the values the scenario runs on (SI units)."""

    def __init__(self, unknowns):
        self.unknowns, self.free, low, high = tuple(unknowns), [], [], []
        for unknown in self.unknowns:
            lo, hi = self._bounds(unknown)
            if hi > lo:
                self.free.append(unknown)
                low.append(lo)
                high.append(hi)
        self.low, self.high = np.array(low, dtype=float), np.array(high, dtype=float)

    @staticmethod
    def _bounds(unknown):
        if unknown.kind == "choice":
            if not unknown.choices:
                raise ValueError(f"unknown {unknown.path!r} has no choices")
            return 0.0, float(len(unknown.choices))
        low, high = float(unknown.low), float(unknown.high)
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise ValueError(f"unknown {unknown.path!r}: the prior range must be finite with low <= high, "
                             f"got [{unknown.low!r}, {unknown.high!r}]")
        if unknown.kind == "count":
            return (low - 0.5, high + 0.5) if high > low else (low, low)
        if unknown.scale == "log":
            if low <= 0:
                raise ValueError(f"unknown {unknown.path!r}: a log-scale prior needs a range above 0, "
                                 f"got [{unknown.low!r}, {unknown.high!r}]")
            return math.log(low), math.log(high)
        return low, high

    def values(self, z: np.ndarray) -> dict[str, np.ndarray]:
        """The settings the scenario runs on, from latent points ``z`` (n x free dimensions)."""
        n, out, column = len(z), {}, {u.path: i for i, u in enumerate(self.free)}
        for unknown in self.unknowns:
            if unknown.path not in column:
                lo = 0 if unknown.kind == "choice" else float(unknown.low)
                out[unknown.path] = np.full(n, lo, dtype=int if unknown.kind == "choice" else float)
                continue
            x = z[:, column[unknown.path]]
            if unknown.kind == "choice":
                out[unknown.path] = np.minimum(np.floor(x), len(unknown.choices) - 1).astype(int)
            elif unknown.kind == "count":
                out[unknown.path] = np.clip(np.floor(x + 0.5), unknown.low, unknown.high)
            elif unknown.scale == "log":
                out[unknown.path] = np.exp(x)
            else:
                out[unknown.path] = x
        return out


def figure_readings(incident) -> tuple[str, ...]:
    """The reading labels: every level a figure of unknown level is read at (or one label, 'as published')."""
    levels = []
    for figure in incident.figures:
        if modelled(figure) and figure.observation_level == "unknown":
            levels += [r for r in figure.readings if r not in levels]
    return tuple(levels) or ("as published",)


def _scale(figure) -> float:
    """The distance unit of a figure: its tolerance, else half the width of its bounds, else (a one-sided
    figure such as "more than 2 h") a tenth of its value. A figure that must be met exactly is refused."""
    if figure.tolerance:
        return float(figure.tolerance)
    low, high = figure.bounds()
    if math.isfinite(low) and math.isfinite(high) and high > low:
        return (high - low) / 2
    if high > low and figure.value:
        return abs(float(figure.value)) * 0.1
    raise ValueError(f"figure {figure.id!r} is fitted but allows no spread (published {figure.published_text()}, "
                     f"tolerance {figure.tolerance!r}): no model run can meet it exactly; give its tolerance")


def figure_distance(incident, fitted: Sequence[str], reading: str, model: Mapping[str, np.ndarray]) -> np.ndarray:
    """Root sum of squares of each fitted figure's miss in units of its tolerance (``model``: id -> values)."""
    total = 0.0
    for fid in fitted:
        figure = incident.figure(fid)
        total = total + np.minimum(miss(figure, model[fid]) / _scale(figure), _FAR) ** 2
    return np.sqrt(total)


def _measure_all(scenario, values, variant, reading=None):
    """Every modelled figure at every level it is read at (or only at ``reading``'s level)."""
    timeline = scenario.run(values, variant)
    return {(f.id, level): np.asarray(measure(timeline, f, level), dtype=float)
            for f in scenario.incident.figures if modelled(f)
            for level in (readings(f) if reading is None else (figure_level(f, reading),))}


def simulate_batch(scenario, prior: LatentPrior, fitted: tuple, reading: str, job, every_level: bool = True) -> tuple:
    """One batch on a worker: run the scenario at the latent points, measure every figure, and the distance.

    Figures are measured at every level they are read at, or, without ``every_level``, at ``reading``'s
    only (all one reading's inference keeps). A batch whose run raises is rerun one particle at a time;
    particles that still fail get a NaN distance, which the sampler counts as failures and rejects.
    """
    z, variant, _ = job
    values = prior.values(z)
    level = None if every_level else reading
    try:
        model, failed = _measure_all(scenario, values, variant, level), np.zeros(len(z), dtype=bool)
    except (ValueError, FloatingPointError, ArithmeticError):
        model, failed = _one_at_a_time(scenario, values, variant, level)
    at_level = {fid: model[(fid, figure_level(scenario.incident.figure(fid), reading))] for fid in fitted}
    distance = figure_distance(scenario.incident, fitted, reading, at_level)
    return np.where(failed, np.nan, distance), {f"{k[0]}|{k[1]}": v for k, v in model.items()}


def _one_at_a_time(scenario, values, variant, reading=None):
    parts = []
    for i in range(len(variant)):
        try:
            parts.append(_measure_all(scenario, {k: v[i:i + 1] for k, v in values.items()}, variant[i:i + 1],
                                      reading))
        except (ValueError, FloatingPointError, ArithmeticError):
            parts.append(None)
    keys = next((p.keys() for p in parts if p is not None), ())
    failed = np.array([p is None for p in parts], dtype=bool)
    return {k: np.concatenate([p[k] if p is not None else np.array([np.nan]) for p in parts]) for k in keys}, failed


def _fitted(incident, fit):
    measured = [f.id for f in incident.figures if modelled(f)]
    if fit is None:
        fit = [fid for fid in measured if incident.figure(fid).quantity in FITTED_QUANTITIES]
    for fid in fit:
        if fid not in measured:
            raise ValueError(f"fit names {fid!r}, which is not a measured figure of {incident.id!r} "
                             f"(measured: {', '.join(measured) or 'none'})")
        _scale(incident.figure(fid))
    return tuple(fit), tuple(fid for fid in measured if fid not in fit)


def _check_arguments(scenario, seed, fit, max_evaluations):
    if not isinstance(scenario, Scenario):
        raise ArgumentTypeError(f"scenario must be a Scenario (reliability.incident.build_scenario), "
                                f"got {describe(scenario)}")
    whole("seed", seed, 0, 2**63 - 1)
    whole("max_evaluations", max_evaluations, 1, 10**9)
    if fit is not None and (isinstance(fit, (str, bytes)) or not isinstance(fit, (list, tuple))
                            or not all(isinstance(fid, str) for fid in fit)):
        raise ArgumentTypeError(f"fit must be a list of figure ids, got {describe(fit)}")


#: Most particle-steps (particles x time steps) one model run holds on a worker, and the bounds of its
#: width in particles. The sampler's batches (its units of random numbers) are pooled and cut into equal
#: runs of at most this size, as many as the workers or a multiple of them: a wider run spreads numpy's
#: fixed cost per call of the time-step loop over more particles (2,048 particles ran an incident of 484 steps
#: about 7 % faster than 1,024 in one measurement; a worker then peaked at 1.3 GB), and equal runs keep
#: every worker busy to the end of a round. The model is deterministic and works particle by particle,
#: so every particle's numbers are those of its batch run alone, bit for bit (tested).
MODEL_CELLS = 1_000_000
MODEL_WIDTH = (512, 2048)


def model_width(steps: int) -> int:
    """Particles per model run for a scenario of ``steps`` time steps (:data:`MODEL_CELLS`)."""
    low, high = MODEL_WIDTH
    return int(min(high, max(low, MODEL_CELLS // max(int(steps), 1))))


def _split(distance, outputs, sizes) -> list:
    bounds = np.cumsum([0, *sizes])
    return [(distance[a:b], {key: value[a:b] for key, value in outputs.items()})
            for a, b in zip(bounds[:-1], bounds[1:])]


def _runs(total: int, workers: int, width: int) -> list[int]:
    """Sizes of the equal model runs of at most ``width`` that ``total`` particles are cut into."""
    count = max(workers, math.ceil(total / width))
    count = min(total, math.ceil(count / workers) * workers)
    size, extra = divmod(total, count)
    return [size + 1] * extra + [size] * (count - extra)


class _Simulator:
    """The ``simulate`` callable of the sampler: batches of one reading, spread over the cluster."""

    def __init__(self, cluster, scenario, prior, fitted, reading):
        self.cluster, self.args = cluster, (cluster.share(scenario), cluster.share(prior), fitted, reading)
        self.workers, self.width = max(cluster.workers, 1), model_width(len(scenario.times))

    def __call__(self, jobs):
        z = np.concatenate([job[0] for job in jobs])
        variant = np.concatenate([job[1] for job in jobs])
        sizes = _runs(len(z), self.workers, self.width)
        bounds = np.cumsum([0, *sizes])
        runs = [(z[a:b], variant[a:b], None) for a, b in zip(bounds[:-1], bounds[1:])]
        n = len(runs)
        # one reading's run keeps each figure at that reading's level only
        results = self.cluster.map(simulate_batch, *([a] * n for a in self.args), runs, [False] * n)
        distance = np.concatenate([r[0] for r in results])
        outputs = {key: np.concatenate([r[1][key] for r in results]) for key in results[0][1]}
        return _split(distance, outputs, [len(job[0]) for job in jobs])


def infer(scenario, *, particles: int = 1000, seed: int = 0, fit: Sequence[str] | None = None,
          max_generations: int = 20, batch: int | None = None, max_evaluations: int = 100_000,
          cluster: Cluster | None = None, scheduler: str | None = None, workers: int | None = None) -> Posterior:
    """Calibrate ``scenario`` by ABC-SMC, one run per reading (see the module docstring).

    ``cluster`` runs the batches (else one is opened for the run: at ``scheduler`` or
    ``$RELIABILITY_SCHEDULER``, else a local cluster of ``workers`` processes, 0 for this process).
    ``batch`` particles go to a worker at a time (default: ``particles``, at most 512: the model runs a
    batch at about the cost of a few particles, and small runs stay small).
    """
    if batch is None:
        batch = min(512, max(16, int(particles) if isinstance(particles, (int, np.integer)) else 512))
    _check_arguments(scenario, seed, fit, max_evaluations)
    fitted, predicted = _fitted(scenario.incident, fit)
    if not fitted:
        raise ValueError(f"incident {scenario.incident.id!r} has no figure to fit (fit={fit!r})")
    prior = LatentPrior(scenario.unknowns)
    if not len(prior.low):
        raise ValueError(f"incident {scenario.incident.id!r} has no unknown with a range to infer")
    own = cluster is None
    cluster = cluster if cluster is not None else Cluster(scheduler, workers)
    try:
        runs = {}
        for reading in figure_readings(scenario.incident):
            simulator = _Simulator(cluster, scenario, prior, fitted, reading)
            runs[reading] = abc_smc(simulator, prior.low, prior.high, len(scenario.variants), particles=particles,
                                    seed=int(seed), max_generations=max_generations, batch=batch,
                                    max_evaluations=max_evaluations, snap=SNAP)
    finally:
        if own:
            cluster.close()
    return Posterior(scenario, prior, fitted, predicted, runs)
