"""A generic calibration of an incident's unknowns: a quasi-random design over their priors, a
distance on the fitted figures scaled by their tolerances, and an accepted set.

:func:`infer` samples every unknown of the scenario from its stated prior (range and scale, whole
numbers for counts, each choice equally) and the variant the file allows, with scrambled Sobol
points, one scramble per seed. Each point runs the model once (the model is deterministic: the
seeds vary the design, and the spread between them shows how far the ranges depend on it). For each
*reading* (the levels at which figures of unknown observation level are read, side by side) it
keeps the points at which every fitted figure holds; when none does, the nearest points by the
distance, flagged as not exact, and the misses say which figures no setting meets and by how much.

Fitted figures are never counted as checks that held; a figure used as a parameter's value is an
assumption; a prediction whose model value is the same at every point of the design follows from
the assumptions, not from the fit. The ABC-SMC of the next step replaces this design.

Examples
--------
>>> from reliability.incident import available_incidents, build_scenario, load
>>> scenario = build_scenario(load(available_incidents()[0]), time_step=120.0)
>>> result = infer(scenario, points=64, seeds=1)
>>> set(result.figure_table(result.readings[0]).status) <= set(STATUSES)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import qmc

from .measure import measure, modelled, readings
from .vocabulary import from_si

__all__ = ["Inference", "infer", "design", "FITTED_QUANTITIES", "STATUSES", "figure_readings"]

#: Quantities fitted by default: how bad and how long. Shapes (improvement, alternation, resolution,
#: availability at an instant) are predictions checked against the fit.
FITTED_QUANTITIES = ("peak_failure_rate", "failure_over_window", "time_to_recovery", "total_impact_time",
                     "capacity_share")
STATUSES = ("fitted", "fitted, not met", "holds", "fails", "follows from assumptions", "assumption", "context")
_FAR = 1e6


def design(scenario, points: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``points`` scrambled Sobol settings of every unknown (SI units, choices as indices) and the variants."""
    dims = len(scenario.unknowns) + 1
    sampler = qmc.Sobol(dims, scramble=True, seed=seed)
    u = sampler.random(points)
    values = {}
    for column, unknown in zip(u.T, scenario.unknowns):
        if unknown.kind == "choice":
            values[unknown.path] = np.minimum((column * len(unknown.choices)).astype(int), len(unknown.choices) - 1)
        elif unknown.kind == "count":
            values[unknown.path] = np.floor(unknown.low + column * (unknown.high - unknown.low + 1)).clip(
                unknown.low, unknown.high)
        elif unknown.scale == "log" and unknown.low > 0:
            values[unknown.path] = np.exp(np.log(unknown.low) + column * (np.log(unknown.high) - np.log(unknown.low)))
        else:
            values[unknown.path] = unknown.low + column * (unknown.high - unknown.low)
    variant = np.minimum((u[:, -1] * len(scenario.variants)).astype(int), len(scenario.variants) - 1)
    return values, variant


def figure_readings(incident) -> tuple[str, ...]:
    """The reading labels: every level a figure of unknown level is read at (or one label, 'as published')."""
    levels = []
    for figure in incident.figures:
        if modelled(figure) and figure.observation_level == "unknown":
            levels += [r for r in figure.readings if r not in levels]
    return tuple(levels) or ("as published",)


def _level(figure, reading: str) -> str:
    options = readings(figure)
    return reading if reading in options else options[0]


def _miss(figure, values: np.ndarray) -> np.ndarray:
    """How far outside the figure's bounds, in its unit (0 inside; inf when the model never gets there)."""
    low, high = figure.bounds()
    values = np.where(np.isnan(values), np.inf, values)
    with np.errstate(invalid="ignore"):
        miss = np.maximum(np.maximum(low - values, values - high), 0.0)
    ok = figure.holds(values)
    return np.where(ok, 0.0, np.where(np.isnan(miss), np.inf, np.maximum(miss, 1e-12)))


def _scale(figure) -> float:
    """The distance unit of a figure: its tolerance, half its range, or a tenth of its value."""
    if figure.tolerance:
        return float(figure.tolerance)
    if figure.range is not None:
        return max((figure.range[1] - figure.range[0]) / 2, 1e-12)
    return max(abs(float(figure.value)) * 0.1, 1e-12)


@dataclass(frozen=True)
class Inference:
    """What :func:`infer` found: the design, every figure's model values, and per reading the accepted set."""

    scenario: object
    values: Mapping[str, np.ndarray]
    variant: np.ndarray
    seed_of: np.ndarray
    fitted: tuple[str, ...]
    predicted: tuple[str, ...]
    readings: tuple[str, ...]
    model: Mapping[tuple[str, str], np.ndarray]
    distance: Mapping[str, np.ndarray]
    accepted: Mapping[str, np.ndarray]
    exact: Mapping[str, bool]

    @property
    def incident(self):
        return self.scenario.incident

    def level(self, figure_id: str, reading: str) -> str:
        return _level(self.incident.figure(figure_id), reading)

    def best(self, reading: str) -> int:
        return int(np.argmin(self.distance[reading]))

    def settings(self, reading: str, which: str = "accepted", limit: int = 200):
        """Values and variants of the accepted points (at most ``limit``, nearest first) or of the ``best``."""
        index = np.flatnonzero(self.accepted[reading])
        index = index[np.argsort(self.distance[reading][index], kind="stable")][:limit]
        if which == "best":
            index = np.array([self.best(reading)])
        return {k: v[index] for k, v in self.values.items()}, self.variant[index]

    def ranges(self, reading: str) -> pd.DataFrame:
        """For each numeric unknown: its prior and the 5-50-95 % of the accepted set, in the file's unit."""
        rows, mask = [], self.accepted[reading]
        for unknown in self.scenario.unknowns:
            values = self.values[unknown.path][mask]
            row = {"unknown": unknown.path, "unit": unknown.unit}
            if unknown.kind == "choice":
                counts = pd.Series(np.asarray(unknown.choices, dtype=object)[values.astype(int)]).value_counts(
                    normalize=True)
                row.update(accepted=", ".join(f"{k} {v:.0%}" for k, v in counts.items()))
            else:
                unit = unknown.unit or "s"
                low5, mid, high95 = (float(from_si(q, unit)) for q in np.percentile(values, [5, 50, 95]))
                prior = float(from_si(unknown.low, unit)), float(from_si(unknown.high, unit))
                span = prior[1] - prior[0]
                edge = span > 0 and (low5 - prior[0] < 0.05 * span or prior[1] - high95 < 0.05 * span)
                row.update(prior_low=prior[0], prior_high=prior[1], low=low5, median=mid, high=high95, at_edge=edge)
            rows.append(row)
        return pd.DataFrame(rows)

    def figure_table(self, reading: str) -> pd.DataFrame:
        """Every figure: its status, what it was published as, and the model's values on the accepted set."""
        rows = []
        for figure in self.incident.figures:
            row = {"figure": figure.id, "quantity": figure.quantity, "published": figure.published_text(),
                   "unit": figure.unit, "level": "", "status": "context", "model_low": math.nan, "model": math.nan,
                   "model_high": math.nan, "holding_share": math.nan, "miss": math.nan}
            if figure.role == "fixes_parameter":
                row["status"] = "assumption"
            elif modelled(figure) and (figure.id, _level(figure, reading)) in self.model:
                row.update(self._figure_row(figure, reading))
            rows.append(row)
        return pd.DataFrame(rows)

    def _figure_row(self, figure, reading):
        level = _level(figure, reading)
        values, mask = self.model[(figure.id, level)], self.accepted[reading]
        finite = np.where(np.isfinite(values[mask]), values[mask], np.nan)
        low, mid, high = (np.nanpercentile(finite, q) if np.isfinite(finite).any() else math.inf for q in (5, 50, 95))
        held = figure.holds(values[mask])
        best = self.best(reading)
        row = {"level": level, "model_low": low, "model": mid, "model_high": high,
               "holding_share": float(np.mean(held)), "miss": float(_miss(figure, values[[best]])[0])}
        if figure.id in self.fitted:
            row["status"] = "fitted" if self.exact[reading] else (
                "fitted" if row["miss"] == 0 else "fitted, not met")
        elif np.isfinite(values).all() and np.ptp(values) <= 1e-9 * max(1.0, float(np.abs(values).max())):
            row["status"] = "follows from assumptions"
        else:
            row["status"] = "holds" if row["holding_share"] >= 0.5 else "fails"
        return row

    def unmet(self, reading: str) -> pd.DataFrame:
        """Fitted figures that no setting of the design meets, with the smallest miss (in their unit)."""
        rows = []
        for fid in self.fitted:
            figure = self.incident.figure(fid)
            misses = _miss(figure, self.model[(fid, _level(figure, reading))])
            if (misses > 0).all():
                closest = int(np.argmin(misses))
                rows.append({"figure": fid, "published": figure.published_text(), "unit": figure.unit,
                             "closest": float(self.model[(fid, _level(figure, reading))][closest]),
                             "miss": float(misses[closest])})
        return pd.DataFrame(rows, columns=["figure", "published", "unit", "closest", "miss"])

    def variant_table(self, reading: str) -> pd.DataFrame:
        """Model comparison: per variant, points tried, accepted, the share accepted and the best distance."""
        rows = []
        for index, variant in enumerate(self.scenario.variants):
            mine = self.variant == index
            rows.append({"variant": variant.name, "points": int(mine.sum()),
                         "accepted": int((mine & self.accepted[reading]).sum()),
                         "acceptance": float((mine & self.accepted[reading]).sum() / max(mine.sum(), 1)),
                         "best_distance": float(self.distance[reading][mine].min()) if mine.any() else math.inf})
        return pd.DataFrame(rows)

    def picked_variant(self, reading: str) -> str:
        """The structure that explains the figures best: the highest share accepted; among those within two
        standard errors of it, the one with the fewest hypotheses (a hypothesis must earn its place)."""
        table = self.variant_table(reading)
        best = table.acceptance.max()
        error = np.sqrt(best * (1.0 - best) / np.maximum(table.points, 1))
        close = table[table.acceptance >= best - 2.0 * error - 1e-12].copy()
        close["size"] = [len(self.scenario.variants[i].hypotheses) for i in close.index]
        return close.sort_values(["size", "acceptance", "best_distance"], ascending=[True, False, True]).iloc[0].variant


def _fitted(incident, fit):
    measured = [f.id for f in incident.figures if modelled(f)]
    if fit is None:
        fit = [fid for fid in measured if incident.figure(fid).quantity in FITTED_QUANTITIES]
    for fid in fit:
        if fid not in measured:
            raise ValueError(f"fit names {fid!r}, which is not a measured figure of {incident.id!r} "
                             f"(measured: {', '.join(measured) or 'none'})")
    return tuple(fit), tuple(fid for fid in measured if fid not in fit)


def _evaluate(scenario, values, variant, batch):
    model: dict[tuple[str, str], list] = {}
    figures = [f for f in scenario.incident.figures if modelled(f)]
    for start in range(0, len(variant), batch):
        part = slice(start, start + batch)
        timeline = scenario.run({k: v[part] for k, v in values.items()}, variant[part])
        for figure in figures:
            for level in readings(figure):
                model.setdefault((figure.id, level), []).append(measure(timeline, figure, level))
    return {key: np.concatenate(parts) for key, parts in model.items()}


def infer(scenario, *, points: int = 1024, seeds: int = 2, fit: Sequence[str] | None = None,
          min_accepted: int = 20, nearest_share: float = 0.02, batch: int = 256) -> Inference:
    """Calibrate ``scenario`` on ``points`` design points per seed (see the module docstring)."""
    for name, value, least in (("points", points, 8), ("seeds", seeds, 1), ("min_accepted", min_accepted, 1),
                               ("batch", batch, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}")
    fitted, predicted = _fitted(scenario.incident, fit)
    parts = [design(scenario, points, seed) for seed in range(seeds)]
    values = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    variant = np.concatenate([p[1] for p in parts])
    seed_of = np.repeat(np.arange(seeds), points)
    model = _evaluate(scenario, values, variant, batch)
    labels = figure_readings(scenario.incident)
    distance, accepted, exact = {}, {}, {}
    for reading in labels:
        total = np.zeros(len(variant))
        for fid in fitted:
            figure = scenario.incident.figure(fid)
            miss = _miss(figure, model[(fid, _level(figure, reading))]) / _scale(figure)
            total += np.minimum(miss, _FAR) ** 2
        distance[reading] = np.sqrt(total)
        ok = distance[reading] == 0
        exact[reading] = bool(ok.sum() >= min_accepted)
        if not exact[reading]:
            keep = max(min_accepted, int(math.ceil(nearest_share * len(variant))))
            ok = np.zeros(len(variant), dtype=bool)
            ok[np.argsort(distance[reading], kind="stable")[:keep]] = True
        accepted[reading] = ok
    return Inference(scenario, values, variant, seed_of, fitted, predicted, labels, model, distance, accepted, exact)
