"""What :func:`~reliability.incident.infer.infer` found, read for people: posterior ranges, model and
reading probabilities, the status of every figure with its posterior predictive probability, and the
settings the counterfactuals rerun.

Fitted figures are never counted as checks that held; a figure used as a parameter's value is an
assumption; a prediction whose model value is the same at every prior draw follows from the
assumptions, not from the fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from .measure import modelled, readings
from .smc import SMCResult, weighted_quantile
from .vocabulary import from_si

__all__ = ["Posterior", "STATUSES", "figure_level", "miss"]

STATUSES = ("fitted", "fitted, not met", "holds", "fails", "follows from assumptions", "assumption", "context")


def figure_level(figure, reading: str) -> str:
    """The level ``figure`` is read at under ``reading`` (its only level when it has one)."""
    options = readings(figure)
    return reading if reading in options else options[0]


def miss(figure, values: np.ndarray) -> np.ndarray:
    """How far outside the figure's bounds, in its unit (0 inside; inf where the model never gets there)."""
    low, high = figure.bounds()
    values = np.where(np.isnan(values), np.inf, values)
    with np.errstate(invalid="ignore"):
        outside = np.maximum(np.maximum(low - values, values - high), 0.0)
    ok = figure.holds(values)
    return np.where(ok, 0.0, np.where(np.isnan(outside), np.inf, np.maximum(outside, 1e-12)))


def _resample(weight: np.ndarray, n: int) -> np.ndarray:
    """``n`` indices drawn in proportion to ``weight`` by systematic resampling (fixed offset: reproducible)."""
    edges = np.cumsum(weight) / weight.sum()
    return np.minimum(np.searchsorted(edges, (np.arange(n) + 0.5) / n), len(weight) - 1)


@dataclass(frozen=True)
class Posterior:
    """ABC-SMC runs of one scenario, one per reading, with the summaries the notebook shows."""

    scenario: object
    prior: object
    fitted: tuple[str, ...]
    predicted: tuple[str, ...]
    runs: Mapping[str, SMCResult]

    def __repr__(self) -> str:
        parts = ", ".join(f"{r}: {len(run.generations)} generations, {run.final.epsilon:.3g}"
                          for r, run in self.runs.items())
        return f"Posterior({self.incident.id!r}, {parts})"

    @property
    def incident(self):
        return self.scenario.incident

    @property
    def readings(self) -> tuple[str, ...]:
        return tuple(self.runs)

    @property
    def exact(self) -> dict[str, bool]:
        """Per reading: whether the final threshold is 0 (every fitted figure holds at every particle)."""
        return {r: run.final.epsilon == 0.0 for r, run in self.runs.items()}

    def level(self, figure_id: str, reading: str) -> str:
        return figure_level(self.incident.figure(figure_id), reading)

    def particles(self, reading: str) -> int:
        return len(self.runs[reading].final.weight)

    def _values(self, reading, index=None):
        final = self.runs[reading].final
        z = final.z if index is None else final.z[index]
        return self.prior.values(z), final.model if index is None else final.model[index]

    def settings(self, reading: str, which: str = "posterior", limit: int = 200):
        """Values and variants of ``limit`` settings drawn from the posterior in proportion to their weight
        (``which="best"``: the one particle nearest the figures, the heaviest among ties)."""
        final = self.runs[reading].final
        if which == "best":
            order = np.lexsort((-final.weight, final.distance))
            return self._values(reading, order[:1])
        if which not in ("posterior", "accepted"):
            raise ValueError(f"which must be 'posterior' or 'best', got {which!r}")
        if isinstance(limit, bool) or not isinstance(limit, (int, np.integer)) or limit < 1:
            raise ValueError(f"limit must be a whole number >= 1, got {limit!r}")
        return self._values(reading, _resample(final.weight, int(limit)))

    def model_values(self, reading: str, figure_id: str, generation: int = -1) -> np.ndarray:
        """The model's value of a figure at every particle of a generation (at the reading's level)."""
        population = self.runs[reading].generations[generation]
        return population.outputs[f"{figure_id}|{self.level(figure_id, reading)}"]

    def ranges(self, reading: str) -> pd.DataFrame:
        """Each unknown: its prior and its posterior median and 90 % credible interval, in the file's unit."""
        final, rows = self.runs[reading].final, []
        values = self.prior.values(final.z)
        for unknown in self.scenario.unknowns:
            row = {"unknown": unknown.path, "unit": unknown.unit}
            x = values[unknown.path]
            if unknown.kind == "choice":
                shares = {c: float(final.weight[x == i].sum()) for i, c in enumerate(unknown.choices)}
                row.update(accepted=", ".join(f"{c} {s:.0%}" for c, s in shares.items()))
            else:
                unit = unknown.unit or "s"
                low5, mid, high95 = (float(from_si(q, unit)) for q in weighted_quantile(x, final.weight,
                                                                                          (0.05, 0.5, 0.95)))
                prior = float(from_si(unknown.low, unit)), float(from_si(unknown.high, unit))
                span = prior[1] - prior[0]
                edge = span > 0 and (low5 - prior[0] < 0.05 * span or prior[1] - high95 < 0.05 * span)
                row.update(prior_low=prior[0], prior_high=prior[1], low=low5, median=mid, high=high95, at_edge=edge)
            rows.append(row)
        return pd.DataFrame(rows)

    def figure_table(self, reading: str) -> pd.DataFrame:
        """Every figure: its status, as published, the posterior 5/50/95 % of the model value, and the
        posterior predictive probability that it holds."""
        rows = []
        for figure in self.incident.figures:
            row = {"figure": figure.id, "quantity": figure.quantity, "published": figure.published_text(),
                   "unit": figure.unit, "level": "", "status": "context", "model_low": math.nan, "model": math.nan,
                   "model_high": math.nan, "holding_probability": math.nan, "miss": math.nan}
            if figure.role == "fixes_parameter":
                row["status"] = "assumption"
            elif modelled(figure):
                row.update(self._figure_row(figure, reading))
            rows.append(row)
        return pd.DataFrame(rows)

    def _figure_row(self, figure, reading):
        final = self.runs[reading].final
        values = self.model_values(reading, figure.id)
        finite = np.isfinite(values)
        low, mid, high = (weighted_quantile(np.where(finite, values, np.inf), final.weight, (0.05, 0.5, 0.95))
                          .astype(float))
        held = float(final.weight[figure.holds(values)].sum())
        row = {"level": self.level(figure.id, reading), "model_low": low, "model": mid, "model_high": high,
               "holding_probability": held, "miss": float(np.min(miss(figure, values)))}
        prior_values = self.model_values(reading, figure.id, generation=0)
        if figure.id in self.fitted:
            row["status"] = "fitted" if row["miss"] == 0 else "fitted, not met"
        elif np.isfinite(prior_values).all() and np.ptp(prior_values) <= 1e-9 * max(
                1.0, float(np.abs(prior_values).max())):
            row["status"] = "follows from assumptions"
        else:
            row["status"] = "holds" if held >= 0.5 else "fails"
        return row

    def unmet(self, reading: str) -> pd.DataFrame:
        """Fitted figures no particle meets, with the closest model value and the miss (in their unit)."""
        rows = []
        for fid in self.fitted:
            figure, values = self.incident.figure(fid), self.model_values(reading, fid)
            misses = miss(figure, values)
            if (misses > 0).all():
                closest = int(np.argmin(misses))
                rows.append({"figure": fid, "published": figure.published_text(), "unit": figure.unit,
                             "closest": float(values[closest]), "miss": float(misses[closest])})
        return pd.DataFrame(rows, columns=["figure", "published", "unit", "closest", "miss"])

    def variant_table(self, reading: str) -> pd.DataFrame:
        """Model comparison within a reading: each structure's posterior probability and its particles."""
        final = self.runs[reading].final
        rows = []
        for index, variant in enumerate(self.scenario.variants):
            mine = final.model == index
            rows.append({"variant": variant.name, "probability": float(final.model_probabilities[index]),
                         "particles": int(mine.sum()),
                         "best_distance": float(final.distance[mine].min()) if mine.any() else math.inf})
        return pd.DataFrame(rows)

    def picked_variant(self, reading: str) -> str:
        """The structure that explains the figures best: among those whose posterior probability is within a
        Bayes factor of 3 of the most probable (weaker evidence is "not worth more than a bare mention",
        Kass & Raftery 1995), the one with the fewest hypotheses, then the most probable."""
        table = self.variant_table(reading)
        table["size"] = [len(v.hypotheses) for v in self.scenario.variants]
        close = table[table.probability >= table.probability.max() / 3.0]
        return close.sort_values(["size", "probability"], ascending=[True, False], kind="stable").iloc[0].variant

    def deciding_figures(self, reading: str) -> pd.DataFrame:
        """Which figures decide between the structures: per figure, the prior predictive probability that it
        holds (the share of the first generation, drawn from the prior, that meets it) under the structure
        where it holds most often and the one where it holds least often. A figure that holds as often under
        every structure decides nothing; the ratio of the two shares is its Bayes factor on its own."""
        first = self.runs[reading].generations[0]
        names = [v.name for v in self.scenario.variants]
        rows = []
        for figure in self.incident.figures:
            if not modelled(figure):
                continue
            held = figure.holds(self.model_values(reading, figure.id, generation=0))
            shares = np.array([held[first.model == i].mean() if (first.model == i).any() else np.nan
                               for i in range(len(names))], dtype=float)
            if not np.isfinite(shares).any():
                continue
            high, low = int(np.nanargmax(shares)), int(np.nanargmin(shares))
            rows.append({"figure": figure.id, "fitted": figure.id in self.fitted, "most_often_under": names[high],
                         "most_often": float(shares[high]), "least_often_under": names[low],
                         "least_often": float(shares[low]), "spread": float(shares[high] - shares[low])})
        return pd.DataFrame(rows, columns=["figure", "fitted", "most_often_under", "most_often",
                                           "least_often_under", "least_often", "spread"])

    def reading_table(self) -> pd.DataFrame:
        """The readings compared: each one's evidence (the prior probability that a run lands within the
        smallest threshold any reading reached: 0 means every fitted figure holds) and its posterior
        probability, the readings equally likely a priori. A reading whose runs never came that close gets
        evidence 0."""
        common = min(run.final.epsilon for run in self.runs.values())
        logs = {r: run.final.log_evidence_at(common) for r, run in self.runs.items()}
        top = max(logs.values())
        shares = {r: (math.exp(v - top) if math.isfinite(v) else 0.0) for r, v in logs.items()}
        total = sum(shares.values()) or 1.0
        return pd.DataFrame([{"reading": r, "threshold": common, "evidence": math.exp(v) if math.isfinite(v) else 0.0,
                              "probability": shares[r] / total} for r, v in logs.items()])

    def generation_table(self, reading: str) -> pd.DataFrame:
        """How the run went: per generation the threshold, simulations, acceptance, effective sample size,
        failed runs, how far the posterior moved and the model probabilities."""
        run, rows = self.runs[reading], []
        for t, population in enumerate(run.generations):
            rows.append({"generation": t, "threshold": population.epsilon, "simulations": population.evaluations,
                         "acceptance": population.acceptance, "ess": population.ess, "failed": population.failures,
                         "moved": run.shifts[t - 1] if t else math.nan,
                         **{f"P({v.name})": float(p) for v, p in zip(self.scenario.variants,
                                                                     population.model_probabilities)}})
        return pd.DataFrame(rows)
