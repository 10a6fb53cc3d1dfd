"""Simulation-based calibration of :func:`~reliability.incident.infer.infer`: do its credible intervals
cover the truth as often as they claim, and does its model choice pick the structure that made the data?

A *twin* of an incident is the same incident with its fitted figures re-published from the model at a
known setting: the unknowns at a latent point drawn from the prior (uniform on the box of
:class:`~reliability.incident.infer.LatentPrior`), one structure (variant) drawn uniformly, and each
fitted figure republished as "about" its model value plus Uniform(-tolerance, +tolerance) noise, with
the tolerance that :func:`infer` uses as its distance unit. The noise is then exactly the likelihood
ABC assumes at threshold 0 (a run is kept when every fitted figure holds, a uniform kernel as wide as
the tolerance), so the ABC posterior is the true posterior, and its central 90 % intervals must cover
the truth in 90 % of twins up to Monte-Carlo error (and the ABC error, where a run stops above 0).

:func:`coverage` draws the twins, runs one inference per twin (the twins are what is spread over the
cluster; each inference runs in its worker's process) and counts.

Examples
--------
>>> from reliability.incident import available_incidents, build_scenario, load
>>> scenario = build_scenario(load(available_incidents()[0]), time_step=300.0)
>>> truth = draw_truth(scenario, np.random.default_rng(1))
>>> twin = synthesise_twin(scenario, truth.z, truth.variant, truth.reading, np.random.default_rng(2))
>>> twin.id == scenario.incident.id + "-twin", figure_readings(twin)
(True, ('as published',))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .._records import Record
from .._validate import probability, whole
from ..cluster import Cluster
from .infer import LatentPrior, _fitted, _scale, figure_readings, infer
from .measure import measure, modelled
from .posterior import figure_level
from .schema import Figure, Incident
from .smc import weighted_quantile
from .vocabulary import from_si

__all__ = ["Truth", "CoverageResult", "draw_truth", "synthesise_twin", "twin_scenario", "calibrate_twin",
           "coverage"]

# Truth draws tried before giving up on a prior where the model almost never reaches every fitted figure.
_ATTEMPTS = 1000
# Options of infer that coverage sets itself: each twin's inference runs in its cluster task's process.
_OWN_OPTIONS = ("scheduler", "workers")


@dataclass(frozen=True, repr=False)
class Truth(Record):
    """A generating setting: the latent point ``z`` (free unknowns), the variant index and the reading."""

    z: np.ndarray
    variant: int
    reading: str


@dataclass(frozen=True, repr=False)
class CoverageResult(Record):
    """How often the central ``level`` credible intervals of :func:`infer` covered the truth over ``twins``.

    ``coverage`` is the share over every (twin, numeric unknown) pair, ``per_unknown`` the share per
    unknown, ``model_choice`` the share of twins whose picked structure is the generating one, ``exact``
    the share of twins whose final ABC threshold is 0, and ``standard_error`` the Monte-Carlo standard
    error of one unknown's share if the intervals were exact (``sqrt(level (1 - level) / twins)``).
    ``reading_choice`` is the share of twins whose most probable reading is the generating one (only
    meaningful when the twins hide their figures' level, ``publish_level=False``; with one reading it is 1).
    ``table`` has one row per twin and unknown, ``twin_table`` one row per twin.
    """

    incident: str
    twins: int
    level: float
    coverage: float
    per_unknown: Mapping[str, float]
    model_choice: float
    exact: float
    standard_error: float
    table: pd.DataFrame = field(repr=False)
    twin_table: pd.DataFrame = field(repr=False)
    reading_choice: float = math.nan


def _model_figures(scenario, z, variant: int, reading: str, fitted: Sequence[str]) -> dict[str, float]:
    """The model's value of each fitted figure (in its unit, at the reading's level) at one setting."""
    values = LatentPrior(scenario.unknowns).values(np.atleast_2d(np.asarray(z, dtype=float)))
    timeline = scenario.run(values, np.array([variant]))
    incident = scenario.incident
    return {fid: float(measure(timeline, incident.figure(fid), figure_level(incident.figure(fid), reading))[0])
            for fid in fitted}


def _check_setting(scenario, z, variant, reading) -> tuple[np.ndarray, int, str]:
    prior = LatentPrior(scenario.unknowns)
    z = np.asarray(z, dtype=float).reshape(-1)
    if z.shape != prior.low.shape or not np.all((z >= prior.low) & (z <= prior.high)):
        raise ValueError(f"z must be a point of the latent prior box ({len(prior.low)} values within "
                         f"{prior.low.tolist()} .. {prior.high.tolist()}), got {z.tolist()}")
    variant = whole("variant", variant, 0, len(scenario.variants) - 1)
    options = figure_readings(scenario.incident)
    if reading not in options:
        raise ValueError(f"reading must be one of {', '.join(map(repr, options))}, got {reading!r}")
    return z, variant, reading


def _twin_figure(figure: Figure, model_value: float | None, reading: str, rng, publish_level: bool = True) -> Figure:
    """The figure as the twin publishes it: its level fixed to the reading's (unless ``publish_level`` is
    False: then it stays unknown, as in the original), and, when fitted, "about" the model value plus
    uniform noise as wide as the figure's distance unit."""
    changes = {}
    if publish_level and modelled(figure) and figure.observation_level == "unknown":
        changes.update(observation_level=figure_level(figure, reading), readings=())
    if model_value is not None:
        tolerance = _scale(figure)
        changes.update(value=model_value + rng.uniform(-tolerance, tolerance), qualifier="about",
                       tolerance=tolerance, range=None)
    return replace(figure, **changes) if changes else figure


def synthesise_twin(scenario, z, variant: int, reading: str, rng: np.random.Generator, *,
                    fit: Sequence[str] | None = None, publish_level: bool = True) -> Incident:
    """A twin of the scenario's incident whose fitted figures the model published at a known setting.

    The unknowns take ``LatentPrior(scenario.unknowns).values(z)``, the structure is
    ``scenario.variants[variant]``, and figures of unknown observation level are read at ``reading``
    (one of :func:`figure_readings`), which the twin then publishes as their level. Each fitted figure
    (``fit``, as in :func:`infer`) becomes "about" its model value plus Uniform(-t, t) noise drawn from
    ``rng``, with tolerance ``t`` the figure's distance unit in :func:`infer` (its tolerance, else half
    its published range, else a tenth of a one-sided value). Every other figure is unchanged. With
    ``publish_level=False`` the figures of unknown level keep it unknown: the twin's inference then
    weighs every reading, and whether it favours ``reading`` checks the comparison of readings.

    Infer a twin on :func:`twin_scenario` (the scenario's own time grid): rebuilding the scenario from the
    twin's file could move the end of the run, which depends on the published times.

    Raises ValueError when a fitted figure's model value is not finite at this setting (the model never
    recovers, say): no republished value could stand for it. :func:`draw_truth` redraws such settings,
    and the ABC posterior is conditioned the same way, since a non-finite model value never meets a figure.
    """
    z, variant, reading = _check_setting(scenario, z, variant, reading)
    incident = scenario.incident
    fitted, _ = _fitted(incident, fit)
    model = _model_figures(scenario, z, variant, reading, fitted)
    unreached = [fid for fid, value in model.items() if not math.isfinite(value)]
    if unreached:
        raise ValueError(f"at this setting the model never reaches fitted figure(s) {', '.join(unreached)} of "
                         f"{incident.id!r}: a twin needs finite values (draw another setting)")
    if not isinstance(publish_level, (bool, np.bool_)):
        raise TypeError(f"publish_level must be True or False, got {publish_level!r}")
    figures = tuple(_twin_figure(f, model.get(f.id), reading, rng, bool(publish_level)) for f in incident.figures)
    return replace(incident, id=f"{incident.id}-twin", figures=figures)


def twin_scenario(scenario, twin: Incident):
    """The scenario with its incident replaced by ``twin``: same unknowns, variants, assumptions and times."""
    return replace(scenario, incident=twin)


def draw_truth(scenario, rng: np.random.Generator, *, fit: Sequence[str] | None = None,
               attempts: int = _ATTEMPTS) -> Truth:
    """A setting drawn from the prior: a reading, then the latent point and the variant (both uniform),
    drawn again while some fitted figure's model value is not finite (so the truth follows the prior
    conditioned on the figures being reachable, as the ABC posterior is)."""
    prior = LatentPrior(scenario.unknowns)
    options = figure_readings(scenario.incident)
    fitted, _ = _fitted(scenario.incident, fit)
    reading = options[int(rng.integers(len(options)))]
    for _ in range(whole("attempts", attempts, 1)):
        z = prior.low + rng.random(len(prior.low)) * (prior.high - prior.low)
        variant = int(rng.integers(len(scenario.variants)))
        model = _model_figures(scenario, z, variant, reading, fitted)
        if all(math.isfinite(value) for value in model.values()):
            return Truth(z, variant, reading)
    raise ValueError(f"in {attempts} prior draws of {scenario.incident.id!r} (reading {reading!r}) no setting "
                       f"gave every fitted figure a finite model value")


def _interval_rows(posterior, reading: str, truth: Truth, level: float) -> list[dict]:
    """Per free numeric unknown: the truth, the posterior median and central ``level`` interval under
    ``reading``, covered."""
    final = posterior.runs[reading].final
    prior = posterior.prior
    truths, values = prior.values(truth.z[None, :]), prior.values(final.z)
    rows, tails = [], ((1 - level) / 2, 0.5, (1 + level) / 2)
    for unknown in prior.free:
        if unknown.kind == "choice":
            continue
        true = float(truths[unknown.path][0])
        low, median, high = (float(q) for q in weighted_quantile(values[unknown.path], final.weight, tails))
        unit = unknown.unit or "s"
        rows.append({"unknown": unknown.path, "unit": unit, "truth": float(from_si(true, unit)),
                     "low": float(from_si(low, unit)), "median": float(from_si(median, unit)),
                     "high": float(from_si(high, unit)), "covered": bool(low <= true <= high)})
    return rows


def _infer_seed(seed: int, index: int) -> int:
    """The inference seed of twin ``index``: from the twin's identity, not from the order twins finish in."""
    return int(np.random.SeedSequence([seed, index, 1]).generate_state(1)[0])


def calibrate_twin(scenario, index: int, seed: int, level: float, particles: int,
                   infer_options: Mapping, publish_level: bool = True) -> tuple[dict, list[dict]]:
    """One twin, end to end (a cluster task): draw its truth, synthesise it, infer it in this process.

    Returns the twin's summary and its rows (one per numeric unknown). With ``publish_level=False`` the
    twin keeps its figures' level unknown and the summary says which reading the inference favoured."""
    rng = np.random.default_rng([seed, index])
    fit = infer_options.get("fit")
    truth = draw_truth(scenario, rng, fit=fit)
    twin = synthesise_twin(scenario, truth.z, truth.variant, truth.reading, rng, fit=fit,
                           publish_level=publish_level)
    posterior = infer(twin_scenario(scenario, twin), particles=particles, seed=_infer_seed(seed, index),
                      workers=0, **infer_options)
    # a twin that hides its level is judged under the generating reading (the intervals given that reading)
    reading = truth.reading if truth.reading in posterior.runs else posterior.readings[0]
    run = posterior.runs[reading]
    summary = {"twin": index, "reading": truth.reading, "variant": scenario.variants[truth.variant].name,
               "picked": posterior.picked_variant(reading), "threshold": run.final.epsilon,
               "converged": run.converged, "generations": len(run.generations), "simulations": run.evaluations}
    summary["picked_right"] = summary["picked"] == summary["variant"]
    readings = posterior.reading_table()
    favoured = readings.sort_values("probability", ascending=False, kind="stable").iloc[0]
    summary.update(favoured_reading=str(favoured.reading),
                   reading_probability=float(readings.set_index("reading").probability.get(truth.reading, np.nan)))
    summary["reading_right"] = summary["favoured_reading"] == truth.reading
    rows = [{"twin": index, **row} for row in _interval_rows(posterior, reading, truth, level)]
    return summary, rows


def _check_options(infer_options: Mapping) -> dict:
    clash = [name for name in infer_options if name in _OWN_OPTIONS]
    if clash:
        raise ValueError(f"coverage sets {', '.join(clash)} itself: each twin is inferred in one cluster task "
                         f"(pass cluster= for where the twins run)")
    return dict(infer_options)


def _result(scenario, twins: int, level: float, results) -> CoverageResult:
    twin_table = pd.DataFrame([summary for summary, _ in results])
    table = pd.DataFrame([row for _, rows in results for row in rows],
                         columns=["twin", "unknown", "unit", "truth", "low", "median", "high", "covered"])
    per_unknown = {name: float(group.mean()) for name, group in table.groupby("unknown", sort=False).covered}
    return CoverageResult(scenario.incident.id, twins, level,
                          float(table.covered.mean()) if len(table) else math.nan, per_unknown,
                          float(twin_table.picked_right.mean()), float((twin_table.threshold == 0).mean()),
                          math.sqrt(level * (1 - level) / twins), table, twin_table,
                          float(twin_table.reading_right.mean()))


def coverage(scenario, twins: int = 20, *, particles: int = 1000, seed: int = 0, level: float = 0.9,
             cluster: Cluster | None = None, publish_level: bool = True, **infer_options) -> CoverageResult:
    """Simulation-based calibration of :func:`infer` on ``twins`` twins of the scenario's incident.

    Twin ``i`` draws its truth from the prior (:func:`draw_truth`, seeded by ``(seed, i)``), is synthesised
    (:func:`synthesise_twin`) and inferred with ``particles`` and ``infer_options`` (``fit``,
    ``max_generations``, ``batch``, ``max_evaluations``) in one cluster task (``workers=0`` inside it).
    For each twin and numeric unknown it records whether the truth lies in the central ``level``
    credible interval, and whether the picked structure (:meth:`Posterior.picked_variant`) is the
    generating one. ``cluster`` runs the twins (default: a local Dask cluster, closed at the end), and the
    numbers do not depend on its number of workers. With ``publish_level=False`` each twin keeps its
    figures' observation level unknown (the truth is still drawn at one reading): the inference weighs every
    reading, the intervals are those under the generating reading, and ``reading_choice`` says how often the
    most probable reading is the generating one.
    """
    if not isinstance(publish_level, (bool, np.bool_)):
        raise TypeError(f"publish_level must be True or False, got {publish_level!r}")
    twins = whole("twins", twins, 1, 100_000)
    seed = whole("seed", seed, 0)
    level = float(probability("level", level, open_interval=True))
    infer_options = _check_options(infer_options)
    own = cluster is None
    cluster = Cluster() if own else cluster
    try:
        shared = cluster.share(scenario)
        results = cluster.map(calibrate_twin, [shared] * twins, range(twins), [seed] * twins, [level] * twins,
                              [particles] * twins, [infer_options] * twins, [bool(publish_level)] * twins)
    finally:
        if own:
            cluster.close()
    return _result(scenario, twins, level, results)
