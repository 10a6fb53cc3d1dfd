"""What would have changed: headroom each fixed platform needed, other retry policies, interventions
earlier or later, and, where a platform autoscaled, that platform's fate without it.

Every function reruns the scenario on the accepted settings of one reading of an
:class:`~reliability.incident.posterior.Posterior` (``limit`` of them, drawn by weight) and
reports medians and 5-95 % ranges over them, so each answer carries the uncertainty of the fit.
Outcomes per infrastructure: the share of requests that failed from the start on, and the impact
time (minutes with more than 1 % of requests failing).

Examples
--------
>>> from reliability.incident import available_incidents, build_scenario, infer, load
>>> scenario = build_scenario(load(available_incidents()[0]), time_step=120.0)
>>> result = infer(scenario, particles=20, max_generations=1, workers=0)
>>> list(intervention_timing(result, result.readings[0], [0.0], limit=4).columns)[:2]
['shift_minutes', 'infrastructure']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..retry import AdaptiveThrottle, RetryBudget, TokenBucket
from .arguments import check_counterfactual, check_headroom_search, check_outcomes, check_shifts
from .components import INTERVENTION_KINDS

__all__ = ["outcomes", "required_headroom", "policy_counterfactuals", "intervention_timing", "autoscaled_fate",
           "fixed_platforms", "autoscaled_platforms", "COUNTERFACTUAL_POLICIES"]

#: The retry policies tried in place of the inferred fixed retries.
COUNTERFACTUAL_POLICIES = {
    "retry budget (10 %)": RetryBudget(ratio=0.1),
    "token bucket (AWS standard)": TokenBucket.aws_standard(),
    "adaptive throttling (k = 2)": AdaptiveThrottle(k=2.0),
}


def _impacted(timeline, infrastructure, threshold=0.01):
    run = timeline.runs[infrastructure]
    after = timeline.times >= 0
    share = run.request_failure[:, after]
    failed = (run.requests[:, after] * share).sum(axis=1) / np.maximum(run.requests[:, after].sum(axis=1), 1e-12)
    width = max(1, int(round(60.0 / timeline.time_step)))
    usable = share.shape[1] // width * width
    minutes = share[:, :usable].reshape(share.shape[0], -1, width).mean(axis=2)
    return failed, (minutes > threshold).sum(axis=1) * width * timeline.time_step / 60.0


def outcomes(timeline, infrastructures=None) -> pd.DataFrame:
    """Per infrastructure: failed request share and impact minutes (median, 5 %, 95 % over the samples)."""
    check_outcomes(timeline, infrastructures)
    rows = []
    for infrastructure in infrastructures or list(timeline.runs):
        failed, minutes = _impacted(timeline, infrastructure)
        rows.append({"infrastructure": infrastructure, "failed_share": float(np.median(failed)),
                     "failed_low": float(np.percentile(failed, 5)), "failed_high": float(np.percentile(failed, 95)),
                     "impact_minutes": float(np.median(minutes)), "impact_low": float(np.percentile(minutes, 5)),
                     "impact_high": float(np.percentile(minutes, 95))})
    return pd.DataFrame(rows)


def fixed_platforms(incident) -> tuple[str, ...]:
    """Infrastructures published as not autoscaled (or whose autoscaling was not published)."""
    return tuple(i.id for i in incident.infrastructures if not (i.autoscaled.known and i.autoscaled.value is True))


def autoscaled_platforms(incident) -> tuple[str, ...]:
    """Infrastructures published as autoscaled."""
    return tuple(i.id for i in incident.infrastructures if i.autoscaled.known and i.autoscaled.value is True)


def _rerun(inference, reading, limit, overrides=None):
    values, variant = inference.settings(reading, limit=limit)
    return inference.scenario.run(values, variant, overrides=overrides), values


def required_headroom(inference, reading: str, *, target: float = 0.01, limit: int = 50,
                      iterations: int = 14) -> pd.DataFrame:
    """Headroom each fixed platform needed for its worst minute of requests to fail at most ``target``.

    ``overloaded`` says whether, at the inferred settings, its worst minute failed more than that. Bisection on a log scale between the inferred headroom and 100 times normal capacity, per setting.
    """
    limit = check_counterfactual(inference, reading, limit)
    target, iterations = check_headroom_search(target, iterations)
    if not 0.0 < target < 1.0:
        raise ValueError(f"target must be in (0, 1), got {target!r}")
    rows = []
    values, variant = inference.settings(reading, limit=limit)
    for infrastructure in fixed_platforms(inference.incident):
        path = f"infrastructures.{infrastructure}.headroom"
        start = values[path] if path in values else np.full(len(variant), float(
            inference.incident.infrastructure(infrastructure).headroom.si_value))
        as_inferred = _worst_minute(inference.scenario.run(values, variant), infrastructure)
        low, high = np.full(len(variant), 1e-3), np.full(len(variant), 100.0)
        for _ in range(iterations):
            middle = np.sqrt(low * high)
            timeline = inference.scenario.run(values, variant, overrides={"headroom": {infrastructure: middle}})
            worst = _worst_minute(timeline, infrastructure)
            ok = worst <= target
            high, low = np.where(ok, middle, high), np.where(ok, low, middle)
        rows.append({"infrastructure": infrastructure, "inferred": float(np.median(start)),
                     "needed": float(np.median(high)), "needed_low": float(np.percentile(high, 5)),
                     "needed_high": float(np.percentile(high, 95)),
                     "reachable": bool(np.median(high) < 99.0),
                     "overloaded": bool(np.median(as_inferred) > target)})
    return pd.DataFrame(rows, columns=["infrastructure", "inferred", "needed", "needed_low", "needed_high",
                                       "reachable", "overloaded"])


def _worst_minute(timeline, infrastructure):
    run = timeline.runs[infrastructure]
    share = run.request_failure[:, timeline.times >= 0]
    width = max(1, int(round(60.0 / timeline.time_step)))
    usable = share.shape[1] // width * width
    return share[:, :usable].reshape(share.shape[0], -1, width).mean(axis=2).max(axis=1)


def _retrying(incident) -> tuple[str, ...]:
    return tuple(sorted({i for m in incident.mechanisms if m.kind == "retry_storm" for i in m.infrastructures}))


def policy_counterfactuals(inference, reading: str, *, limit: int = 100) -> pd.DataFrame:
    """Outcomes with the inferred retries and with each of :data:`COUNTERFACTUAL_POLICIES` (empty without retries)."""
    limit = check_counterfactual(inference, reading, limit)
    where = _retrying(inference.incident)
    if not where:
        return pd.DataFrame(columns=["policy", "infrastructure"])
    frames = [outcomes(_rerun(inference, reading, limit)[0], where).assign(policy="as inferred")]
    for name, policy in COUNTERFACTUAL_POLICIES.items():
        frames.append(outcomes(_rerun(inference, reading, limit, {"policy": policy})[0], where).assign(policy=name))
    frame = pd.concat(frames, ignore_index=True)
    return frame[["policy", *[c for c in frame.columns if c != "policy"]]]


def intervention_timing(inference, reading: str, shifts_minutes, *, limit: int = 100) -> pd.DataFrame:
    """Outcomes with every intervention moved by each shift (minutes; negative is earlier)."""
    limit = check_counterfactual(inference, reading, limit)
    shifts_minutes = check_shifts(shifts_minutes).tolist()
    if not any(e.kind in INTERVENTION_KINDS for e in inference.incident.events):
        return pd.DataFrame(columns=["shift_minutes", "infrastructure"])
    frames = []
    for shift in shifts_minutes:
        timeline, _ = _rerun(inference, reading, limit, {"shift": 60.0 * float(shift)})
        frames.append(outcomes(timeline).assign(shift_minutes=float(shift)))
    frame = pd.concat(frames, ignore_index=True)
    return frame[["shift_minutes", *[c for c in frame.columns if c != "shift_minutes"]]]


def autoscaled_fate(inference, reading: str, *, limit: int = 100) -> pd.DataFrame:
    """For each platform that autoscaled: its outcome as inferred and without autoscaling; and each fixed
    platform's outcome had it autoscaled like it. Empty when no platform autoscaled."""
    limit = check_counterfactual(inference, reading, limit)
    scaled = autoscaled_platforms(inference.incident)
    if not scaled:
        return pd.DataFrame(columns=["case", "infrastructure"])
    frames = [outcomes(_rerun(inference, reading, limit)[0]).assign(case="as inferred")]
    off = {i: False for i in scaled}
    frames.append(outcomes(_rerun(inference, reading, limit, {"autoscaled": off})[0]).assign(
        case="autoscaling off"))
    fixed = fixed_platforms(inference.incident)
    if fixed:
        on = {i: True for i in fixed}
        frames.append(outcomes(_rerun(inference, reading, limit, {"autoscaled": on})[0]).assign(
            case="every platform autoscaled"))
    frame = pd.concat(frames, ignore_index=True)
    return frame[["case", *[c for c in frame.columns if c != "case"]]]
