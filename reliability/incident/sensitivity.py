"""How far the conclusions drawn from an incident depend on the structural assumptions no file gives.

The model of an incident fixes a few structural settings (:data:`~reliability.incident.scenario.ASSUMPTIONS`:
the share of work spent opening connections, the callers' timeout, how long callers queue, the
autoscaler's cap). :data:`PLAUSIBLE` gives each a plausible range, and two conclusions are followed
across them, per reading of the figures:

* **overload**: the posterior median, over the accepted settings, of the peak ratio of offered work
  (retries included) to capacity on the worst fixed platform (the one with the highest median; every
  platform when none is fixed), from the start of the incident on;
* **headroom needed**: on the fixed platforms, the posterior median of the headroom
  :func:`~reliability.incident.counterfactuals.required_headroom` finds for the worst minute to fail at
  most ``target`` where the platform was overloaded, else the inferred headroom; the largest over the
  platforms.

:func:`screen` is a Morris screening (SALib) of the assumptions against both. Each Morris point needs
an inference at its assumption values; a full ABC-SMC per point would take minutes, so the screen
uses a documented proxy: **rejection ABC on one fixed quasi-random design of the prior** (a scrambled
Halton sequence over the latent box of :class:`~reliability.incident.infer.LatentPrior`, the model
index as one more coordinate), the same design at every point (common random numbers, so a
difference between points is the assumptions' doing, not sampling noise). A point keeps every design
setting whose distance is 0 (every fitted figure within its published tolerance), and at least the
nearest ``keep`` share of the design when fewer are exact; the conclusions are taken on those. Each
point is one task on a :class:`~reliability.cluster.Cluster`.

:func:`rerun` then reruns the full :func:`~reliability.incident.infer.infer` for one assumption at its
low, default and high values, and :func:`surviving` says which conclusions hold at every one of them.

Examples
--------
>>> PLAUSIBLE["timeout"].low <= ASSUMPTIONS["timeout"].value <= PLAUSIBLE["timeout"].high
True
>>> from reliability.incident import available_incidents, load
>>> result = screen(load(available_incidents()[0]), trajectories=2, design=16, assumptions=["timeout"],
...                 time_step=600.0, limit=2, iterations=1, workers=0)
>>> sorted(set(result.table.conclusion)), len(result.points) == 2 * 2 * len(result.readings)
(['headroom_needed', 'overload'], True)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from .._records import Record
from .._validate import ArgumentTypeError, describe, number, whole
from ..cluster import Cluster
from .arguments import check_incident, check_text
from .counterfactuals import fixed_platforms, required_headroom
from .infer import LatentPrior, _fitted, figure_distance, figure_readings, infer, simulate_batch
from .posterior import figure_level
from .scenario import ASSUMPTIONS, build_scenario

__all__ = ["PlausibleRange", "PLAUSIBLE", "CONCLUSIONS", "Screen", "screen", "screen_point", "conclusions_at",
           "plausible_ranges", "rerun", "surviving"]

#: The conclusions followed across the assumptions (see the module docstring).
CONCLUSIONS = ("overload", "headroom_needed")


class PlausibleRange(NamedTuple):
    """A plausible range of one structural assumption: ``(low, high, scale, reason)``."""

    low: float
    high: float
    scale: str
    reason: str


#: A plausible range for every structural assumption, each holding its default.
PLAUSIBLE: Mapping[str, PlausibleRange] = {
    "new_connection_work_share": PlausibleRange(
        0.01, 0.2, "log", "opening a connection (TCP, TLS, authentication, session set-up) costs one to a "
        "few queries' work; behind a connection pool 1-20 % of normal work goes to it"),
    "timeout": PlausibleRange(
        5.0, 60.0, "log", "a tight service-set deadline of a few seconds up to the common 30-60 s defaults "
        "of HTTP clients and proxies (nginx proxy_read_timeout 60 s)"),
    "max_wait": PlausibleRange(
        10.0, 300.0, "log", "pool and proxy queue limits: HikariCP's connection timeout 30 s, PgBouncer's "
        "query_wait_timeout 120 s, up to a few minutes of listen and request queues"),
    "autoscale_limit": PlausibleRange(
        2.0, 50.0, "log", "Kubernetes maxReplicas and cloud quotas typically allow 2x to a few tens of times "
        "the normal replica count"),
}


# ---- ranges --------------------------------------------------------------------------------------

def _one_range(name: str, given: Any) -> PlausibleRange:
    label = f"ranges[{name!r}]"
    base = PLAUSIBLE[name]
    if isinstance(given, Mapping) or isinstance(given, (str, bytes)) or not isinstance(given, Sequence):
        raise ArgumentTypeError(f"{label} must be (low, high) or (low, high, scale[, reason]), got {describe(given)}")
    if not 2 <= len(given) <= 4:
        raise ValueError(f"{label} must be (low, high) or (low, high, scale[, reason]), got {given!r}")
    scale = given[2] if len(given) > 2 else base.scale
    if scale not in ("linear", "log"):
        raise ValueError(f"{label}: the scale must be 'linear' or 'log', got {scale!r}")
    maximum = 1.0 if name.endswith("_share") else None
    low = number(f"{label} low", given[0], minimum=0.0, strict=True, maximum=maximum)
    high = number(f"{label} high", given[1], minimum=0.0, strict=True, maximum=maximum)
    if not low < high:
        raise ValueError(f"{label} must have low < high, got ({given[0]!r}, {given[1]!r})")
    reason = str(given[3]) if len(given) > 3 else "given by the caller"
    return PlausibleRange(low, high, scale, reason)


def plausible_ranges(ranges: Mapping[str, Any] | None = None,
                     assumptions: Sequence[str] | None = None) -> dict[str, PlausibleRange]:
    """The ranges screened: :data:`PLAUSIBLE` with ``ranges`` overriding some, for ``assumptions`` (default all).

    Examples
    --------
    >>> tuple(plausible_ranges({"timeout": (10, 30)}, ["timeout"])["timeout"])
    (10.0, 30.0, 'log', 'given by the caller')
    """
    ranges = {} if ranges is None else ranges
    if not isinstance(ranges, Mapping):
        raise ArgumentTypeError(f"ranges must map assumption names to (low, high), got {describe(ranges)}")
    for name in ranges:
        if name not in PLAUSIBLE:
            raise ValueError(f"ranges names an unknown assumption {name!r} (known: {', '.join(PLAUSIBLE)})")
    names = list(PLAUSIBLE) if assumptions is None else _names(assumptions)
    return {name: _one_range(name, ranges[name]) if name in ranges else PLAUSIBLE[name] for name in names}


def _names(assumptions: Any) -> list[str]:
    if isinstance(assumptions, (str, bytes)) or not isinstance(assumptions, Sequence):
        raise ArgumentTypeError(f"assumptions must be a list of assumption names, got {describe(assumptions)}")
    for name in assumptions:
        check_text("assumptions", name)
        if name not in PLAUSIBLE:
            raise ValueError(f"assumptions names an unknown assumption {name!r} (known: {', '.join(PLAUSIBLE)})")
    if not assumptions or len(set(assumptions)) != len(assumptions):
        raise ValueError(f"assumptions must name at least one assumption, each once, got {list(assumptions)!r}")
    return list(assumptions)


def _latent(plausible: PlausibleRange) -> tuple[float, float]:
    if plausible.scale == "log":
        return math.log(plausible.low), math.log(plausible.high)
    return plausible.low, plausible.high


def _value(plausible: PlausibleRange, latent: float) -> float:
    return float(math.exp(latent)) if plausible.scale == "log" else float(latent)


# ---- the conclusions at a set of settings ---------------------------------------------------------

class _Settings:
    """Accepted settings, all equally weighted, shown to the counterfactuals as an inference of one reading."""

    readings = ("accepted",)

    def __init__(self, scenario, values, variant):
        self.scenario, self.incident, self.values, self.variant = scenario, scenario.incident, values, variant

    def settings(self, reading, which="posterior", limit=200):
        n = len(self.variant)
        index = np.unique(np.linspace(0, n - 1, min(n, int(limit))).round().astype(int))
        return {k: np.asarray(v)[index] for k, v in self.values.items()}, self.variant[index]


def _platforms(incident) -> tuple[str, ...]:
    return fixed_platforms(incident) or tuple(i.id for i in incident.infrastructures)


def _overload(timeline, platforms) -> tuple[str, np.ndarray]:
    """The worst platform (highest median peak ratio) and its peak ratio of offered work to capacity per setting."""
    after = timeline.times >= 0
    peaks = {}
    for platform in platforms:
        run = timeline.runs[platform]
        ratio = run.offered_work[:, after] / np.maximum(run.capacity[:, after], 1e-12)
        peaks[platform] = ratio.max(axis=1)
    worst = max(peaks, key=lambda p: float(np.median(peaks[p])))
    return worst, peaks[worst]


def conclusions_at(scenario, values: Mapping[str, np.ndarray], variant: np.ndarray, *, target: float = 0.01,
                   limit: int = 50, iterations: int = 14) -> dict[str, Any]:
    """The overload and the headroom needed (see the module docstring) over equally weighted settings.

    Returns a dict: ``overload`` (median) with ``overload_low``/``overload_high`` (5/95 %) and its
    ``platform``; ``headroom_needed`` (median) with ``needed_low``/``needed_high`` on ``needed_platform``,
    and ``overloaded`` (whether that platform's worst minute failed more than ``target`` as inferred).
    """
    variant = np.asarray(variant, dtype=int)
    platforms = _platforms(scenario.incident)
    worst, peak = _overload(scenario.run(values, variant), platforms)
    out = {"overload": float(np.median(peak)), "overload_low": float(np.percentile(peak, 5)),
           "overload_high": float(np.percentile(peak, 95)), "platform": worst}
    table = required_headroom(_Settings(scenario, values, variant), "accepted", target=target, limit=limit,
                              iterations=iterations)
    best = None
    for row in table.itertuples():
        value = (row.needed, row.needed_low, row.needed_high) if row.overloaded else (row.inferred,) * 3
        if best is None or value[0] > best[0][0]:
            best = (value, row.infrastructure, bool(row.overloaded))
    if best is None:  # no fixed platform: nothing to size
        best = ((math.nan,) * 3, "", False)
    (needed, low, high), where, overloaded = best
    out.update(headroom_needed=float(needed), needed_low=float(low), needed_high=float(high), needed_platform=where,
               overloaded=overloaded)
    return out


# ---- one Morris point: rejection ABC on the fixed design -----------------------------------------

def _accepted(distance: np.ndarray, keep: int) -> tuple[np.ndarray, float]:
    """Every exact setting (distance 0), and at least the ``keep`` nearest: the mask and the threshold.
    Failed runs (NaN) are never accepted; when every run failed, none is."""
    ran = distance[~np.isnan(distance)]
    if not len(ran):
        return np.zeros(len(distance), dtype=bool), math.nan
    threshold = max(0.0, float(np.sort(ran)[min(keep, len(ran)) - 1]))
    return ~np.isnan(distance) & (np.nan_to_num(distance, nan=np.inf) <= threshold), threshold


def _picked(scenario, variant: np.ndarray) -> str:
    """The structure with the most accepted settings (the design is uniform over them: the evidence)."""
    counts = np.bincount(variant, minlength=len(scenario.variants))
    sizes = np.array([len(v.hypotheses) for v in scenario.variants])
    return scenario.variants[int(np.lexsort((sizes, -counts))[0])].name


def screen_point(incident, time_step: float, assumptions: Mapping[str, float], design: np.ndarray,
                 fit: Sequence[str] | None, keep: int, target: float, limit: int,
                 iterations: int) -> list[dict[str, Any]]:
    """One Morris point (one cluster task): the scenario at ``assumptions``, the design run once, and per
    reading the accepted settings and the conclusions on them (one dict per reading).

    ``design`` is the unit-cube design (settings x (free unknowns + 1)), its last column the model index.
    """
    started = time.process_time()
    scenario = build_scenario(incident, time_step=time_step, assumptions=dict(assumptions))
    prior = LatentPrior(scenario.unknowns)
    fitted, _ = _fitted(incident, fit)
    z = prior.low + design[:, :-1] * (prior.high - prior.low)
    variant = np.minimum((design[:, -1] * len(scenario.variants)).astype(int), len(scenario.variants) - 1)
    readings = figure_readings(incident)
    first, outputs = simulate_batch(scenario, prior, fitted, readings[0], (z, variant, None))
    failed = np.isnan(first)
    settings, rows, done = prior.values(z), [], {}
    for reading in readings:
        at_level = {fid: outputs[f"{fid}|{figure_level(incident.figure(fid), reading)}"] for fid in fitted}
        distance = np.where(failed, np.nan, figure_distance(incident, fitted, reading, at_level))
        mask, threshold = _accepted(distance, keep)
        key = mask.tobytes()
        if key not in done and not mask.any():  # every run failed: counted in ``failed``, no conclusion
            done[key] = {"overload": math.nan, "headroom_needed": math.nan, "picked": ""}
        if key not in done:  # readings that accept the same settings share their conclusions
            values = {k: v[mask] for k, v in settings.items()}
            done[key] = conclusions_at(scenario, values, variant[mask], target=target, limit=limit,
                                       iterations=iterations)
            done[key]["picked"] = _picked(scenario, variant[mask])
        rows.append({"reading": reading, **dict(assumptions), **done[key], "accepted": int(mask.sum()),
                     "exact": int((distance == 0).sum()), "threshold": threshold, "failed": int(failed.sum())})
    for row in rows:  # the processor time of the whole point, shown on each of its readings
        row["cpu_seconds"] = time.process_time() - started
    return rows


# ---- the screen ----------------------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class Screen(Record):
    """A Morris screening of the structural assumptions of one incident against its conclusions.

    ``table`` is tidy: one row per reading, conclusion and assumption with ``mu_star``, ``mu_star_conf``
    (95 % bootstrap), ``sigma``, ``mu`` (in the conclusion's unit, per the whole range of the assumption)
    and ``relative`` (``mu_star`` over the median size of the conclusion at the points); ``points`` has
    the assumption values and the conclusions at every Morris point and reading. ``seconds`` is the
    wall time of the screen, ``cpu_seconds`` the processor time its points took on the workers.
    """

    incident: str
    assumptions: tuple[str, ...]
    readings: tuple[str, ...]
    trajectories: int
    levels: int
    design: int
    keep: int
    seconds: float
    cpu_seconds: float
    ranges: Mapping[str, PlausibleRange] = field(repr=False)
    table: pd.DataFrame = field(repr=False)
    points: pd.DataFrame = field(repr=False)

    def matters(self, share: float = 0.05) -> tuple[str, ...]:
        """Assumptions whose ``mu_star`` reaches ``share`` of the conclusion's size for some reading and
        conclusion, the most influential first."""
        share = number("share", share, minimum=0.0, strict=True)
        top = self.table.groupby("assumption", sort=False)["relative"].max()
        return tuple(top[top >= share].sort_values(ascending=False, kind="stable").index)


def _check_screen(incident, trajectories, levels, seed, design, keep):
    check_incident(incident)
    trajectories = whole("trajectories", trajectories, 2, 1000)
    levels = whole("levels", levels, 2, 64)
    if levels % 2:
        raise ValueError(f"levels must be an even whole number (Morris' balanced grid), got {levels!r}")
    seed = whole("seed", seed, 0)
    design = whole("design", design, 16, 1_000_000)
    keep = number("keep", keep, minimum=0.0, strict=True, maximum=0.5)
    return trajectories, levels, seed, design, max(1, math.ceil(keep * design))


def _unit_design(incident, size: int, seed: int) -> np.ndarray:
    """The quasi-random design of the prior, shared by every point (scrambled Halton: any size, no warning)."""
    from scipy.stats import qmc

    free = len(LatentPrior(build_scenario(incident, time_step=600.0).unknowns).free)
    return qmc.Halton(free + 1, scramble=True, seed=seed).random(size)


def _morris_table(problem, X, points, names, readings, ranges, levels, seed):
    from SALib.analyze import morris as analyze

    rows = []
    for reading in readings:
        mine = points[points.reading == reading]
        for conclusion in CONCLUSIONS:
            y = mine[conclusion].to_numpy(dtype=float)
            size = float(np.median(np.abs(y))) or 1.0
            result = analyze.analyze(problem, X, y, num_levels=levels, seed=seed)
            for i, name in enumerate(names):
                rows.append({"reading": reading, "conclusion": conclusion, "assumption": name,
                             "mu_star": float(result["mu_star"][i]), "mu_star_conf": float(result["mu_star_conf"][i]),
                             "sigma": float(result["sigma"][i]), "mu": float(result["mu"][i]),
                             "relative": float(result["mu_star"][i]) / size, "low": ranges[name].low,
                             "default": ASSUMPTIONS[name].value, "high": ranges[name].high})
    return pd.DataFrame(rows)


def screen(incident, *, trajectories: int = 4, levels: int = 4, seed: int = 0, design: int = 4096,
           keep: float = 0.01, assumptions: Sequence[str] | None = None, ranges: Mapping[str, Any] | None = None,
           fit: Sequence[str] | None = None, target: float = 0.01, limit: int = 40, iterations: int = 10,
           time_step: float = 240.0, cluster: Cluster | None = None, scheduler: str | None = None,
           workers: int | None = None) -> Screen:
    """Morris screening of the structural ``assumptions`` (default all) over their plausible ``ranges``.

    ``trajectories`` Morris trajectories on a grid of ``levels`` (on the log scale for a log range),
    each point one task on ``cluster`` (else one opened for the run, as :func:`infer` does); the
    inference at a point is the rejection proxy of the module docstring on a ``design`` of prior
    settings, keeping the exact ones and at least the nearest ``keep`` share. ``limit`` settings and
    ``iterations`` bisection steps size the headroom search for the worst minute to fail at most ``target``.
    """
    from SALib.sample import morris as sample

    trajectories, levels, seed, size, kept = _check_screen(incident, trajectories, levels, seed, design, keep)
    chosen = plausible_ranges(ranges, assumptions)
    names = list(chosen)
    _fitted(incident, fit)  # a wrong fit fails here, not on a worker
    started = time.perf_counter()
    problem = {"num_vars": len(names), "names": names, "bounds": [list(_latent(chosen[n])) for n in names]}
    X = sample.sample(problem, trajectories, num_levels=levels, seed=seed)
    settings = [{n: _value(chosen[n], x) for n, x in zip(names, row)} for row in X]
    unit = _unit_design(incident, size, seed)
    own = cluster is None
    cluster = cluster if cluster is not None else Cluster(scheduler, workers)
    try:
        shared = [cluster.share(incident), cluster.share(unit)]
        n = len(settings)
        results = cluster.map(screen_point, [shared[0]] * n, [float(time_step)] * n, settings, [shared[1]] * n,
                              [fit] * n, [kept] * n, [target] * n, [limit] * n, [iterations] * n)
    finally:
        if own:
            cluster.close()
    points = pd.DataFrame([{"point": i, **row} for i, rows in enumerate(results) for row in rows])
    readings = figure_readings(incident)
    table = _morris_table(problem, X, points, names, readings, chosen, levels, seed)
    cpu = float(points.groupby("point").cpu_seconds.first().sum())
    return Screen(incident.id, tuple(names), readings, trajectories, levels, size, kept,
                  time.perf_counter() - started, cpu, chosen, table, points)


# ---- reruns of the full inference ----------------------------------------------------------------

def _rerun_values(assumption, values, ranges):
    check_text("assumption", assumption)
    if assumption not in PLAUSIBLE:
        raise ValueError(f"assumption must be one of {', '.join(PLAUSIBLE)}, got {assumption!r}")
    plausible = plausible_ranges(ranges, [assumption])[assumption]
    if values is None:
        values = (plausible.low, ASSUMPTIONS[assumption].value, plausible.high)
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ArgumentTypeError(f"values must be a non-empty list of numbers, got {describe(values)}")
    maximum = 1.0 if assumption.endswith("_share") else None
    return [number(f"values[{i}]", v, minimum=0.0, strict=True, maximum=maximum) for i, v in enumerate(values)]


def _rerun_plan(assumption, values, ranges) -> list[tuple[str, float]]:
    """(assumption, value) pairs to infer at: each named assumption at its values."""
    if isinstance(assumption, str):
        return [(assumption, v) for v in _rerun_values(assumption, values, ranges)]
    if not isinstance(assumption, Sequence) or not assumption:
        raise ArgumentTypeError(f"assumption must be an assumption's name or a non-empty list of names, "
                                f"got {describe(assumption)}")
    if values is not None:
        raise ValueError(f"values: give values for one assumption at a time, got {len(assumption)} assumptions")
    names = [check_text(f"assumption[{i}]", name) for i, name in enumerate(assumption)]
    if len(set(names)) < len(names):
        raise ValueError(f"assumption must not repeat a name, got {list(assumption)!r}")
    return [(name, v) for name in names for v in _rerun_values(name, None, ranges)]


def rerun(incident, assumption, values: Sequence[float] | None = None, *, particles: int = 1000,
          seed: int = 0, time_step: float = 120.0, max_generations: int = 20, fit: Sequence[str] | None = None,
          target: float = 0.01, limit: int = 50, ranges: Mapping[str, Any] | None = None,
          cluster: Cluster | None = None, scheduler: str | None = None, workers: int | None = None) -> pd.DataFrame:
    """The full :func:`infer` rerun with ``assumption`` at each of ``values`` (default its plausible low, its
    default and its high), the others at their defaults: per value and reading, the conclusions on
    ``limit`` posterior settings and the structure the posterior picks.

    ``assumption`` may list several names, each rerun at its low, default and high values; the
    setting with every assumption at its default is the same for all of them, so it is inferred
    once (the same seed gives the same posterior) and its rows repeated under each name.
    """
    check_incident(incident)
    plan = _rerun_plan(assumption, values, ranges)
    own = cluster is None
    cluster = cluster if cluster is not None else Cluster(scheduler, workers)
    rows, inferred = [], {}
    try:
        for name, value in plan:
            key = None if value == ASSUMPTIONS[name].value else (name, value)
            if key not in inferred:
                inferred[key] = _rerun_rows(incident, {} if key is None else {name: value}, particles=particles,
                                            seed=seed, time_step=time_step, max_generations=max_generations,
                                            fit=fit, target=target, limit=limit, cluster=cluster)
            rows += [{"assumption": name, "value": value, "is_default": key is None, **row}
                     for row in inferred[key]]
    finally:
        if own:
            cluster.close()
    return pd.DataFrame(rows)


def _rerun_rows(incident, assumptions, *, particles, seed, time_step, max_generations, fit, target, limit,
                cluster) -> list[dict]:
    """Per reading: the conclusions, picked structure and exactness of one inference at ``assumptions``."""
    scenario = build_scenario(incident, time_step=time_step, assumptions=assumptions)
    posterior = infer(scenario, particles=particles, seed=seed, fit=fit, max_generations=max_generations,
                      cluster=cluster)
    rows = []
    for reading in posterior.readings:
        chosen, variant = posterior.settings(reading, limit=limit)
        found = conclusions_at(scenario, chosen, variant, target=target, limit=limit)
        table = posterior.variant_table(reading).set_index("variant")
        picked = posterior.picked_variant(reading)
        rows.append({"reading": reading, **found, "picked": picked,
                     "picked_probability": float(table.loc[picked, "probability"]),
                     "exact": bool(posterior.exact[reading])})
    return rows


def _survival_rows(reading, frame):
    overload, needed = frame.overload, frame.headroom_needed
    picked = frame.picked.unique()
    low, high = float(overload.min()), float(overload.max())
    rows = [
        {"reading": reading, "conclusion": "overload above 1", "holds": bool((overload > 1.0).all()), "low": low,
         "high": high, "statement": f"the peak overload is {low:.3g}-{high:.3g} x capacity over the values"},
        {"reading": reading, "conclusion": "overloaded as inferred", "holds": bool(frame.overloaded.all()),
         "low": math.nan, "high": math.nan,
         "statement": f"the fixed platform failed more than the target at its inferred headroom at "
                      f"{int(frame.overloaded.sum())} of {len(frame)} values"},
        {"reading": reading, "conclusion": "headroom needed", "holds": bool(np.isfinite(needed).all()),
         "low": float(needed.min()), "high": float(needed.max()),
         "statement": f"headroom needed above {float(needed.min()):.3g} at every value "
                      f"(medians {float(needed.min()):.3g}-{float(needed.max()):.3g})"},
        {"reading": reading, "conclusion": "same picked structure", "holds": len(picked) == 1, "low": math.nan,
         "high": math.nan, "statement": "picked: " + "; ".join(map(str, picked))},
    ]
    return rows


def surviving(frame: pd.DataFrame) -> pd.DataFrame:
    """Which conclusions of :func:`rerun` hold at every value: per reading, and over every reading at once.

    Rows: ``overload above 1``, ``overloaded as inferred``, ``headroom needed`` (its lowest median, a bound that
    holds at every value) and ``same picked structure``; ``holds`` says whether it held at every value.
    """
    needed = {"reading", "overload", "headroom_needed", "picked", "overloaded"}
    if not isinstance(frame, pd.DataFrame) or not needed <= set(frame.columns) or frame.empty:
        raise ValueError(f"frame must be a non-empty table from rerun (columns {sorted(needed)}), "
                         f"got {describe(frame)}")
    rows = []
    for reading, part in frame.groupby("reading", sort=False):
        rows += _survival_rows(reading, part)
    if frame.reading.nunique() > 1:
        rows += _survival_rows("every reading", frame)
    return pd.DataFrame(rows, columns=["reading", "conclusion", "holds", "low", "high", "statement"])
