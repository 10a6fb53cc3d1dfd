"""A published metastability experiment against the delayed fluid model's tipping trigger.

An experiment file (``data/experiments/<id>.yaml``, schema ``reliability-experiment/1``) holds a
controlled experiment as its authors released it: the clients' timeout and retries, a capacity
drop (a CPU cut) of a given size and length per run, the request rate of each run, and whether the
run ended in a metastable failure. What the authors did not publish, the base load as a share of
the server's capacity, is unknown: :func:`experiment_check` finds the base loads at which the
fluid model (:meth:`reliability.retry.RetryingQueue.tipping_trigger`, ``trigger="capacity"``)
gives every run its published outcome. This is a check of consistency, not a prediction: the
band is fitted to the outcomes, and its width says how sharply the model separates them. A
statement that can be read two ways (the reduced rate) is checked under each reading.

Examples
--------
>>> frame = experiment_check("retry-capacity-drop-osdi22", rtol=1e-2)
>>> frame.reading.tolist(), bool(frame.consistent.all())
(['0.75', '0.7'], True)
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import yaml

from .._validate import number, whole
from ..paths import data_dir
from ..retry import FixedRetries, RetryingQueue

__all__ = ["experiment_check", "load_experiment", "shortest_cut"]

SCHEMA = "reliability-experiment/1"


def _fail(path, field: str, reason: str):
    raise ValueError(f"{path}: {field}: {reason}")


def load_experiment(name) -> dict:
    """Read an experiment file: a name in ``data/experiments/`` or a path to a ``.yaml`` file."""
    if not isinstance(name, (str, Path)):
        raise TypeError(f"name must be an experiment name or a path, got {name!r}")
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = data_dir() / "experiments" / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"name: no experiment file {str(path)!r}")
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(document, dict) or document.get("schema") != SCHEMA:
        _fail(path, "schema", f"must be {SCHEMA!r}")
    client = document.get("client") or {}
    number("client.timeout_seconds", client.get("timeout_seconds"), minimum=0.0, strict=True)
    whole("client.max_retries", client.get("max_retries"), 0)
    if client.get("backoff") != "none":
        _fail(path, "client.backoff", "only 'none' (resend at once) is modelled")
    cpus = number("capacity.normal_cpus", (document.get("capacity") or {}).get("normal_cpus"), minimum=0.0,
                  strict=True)
    runs = document.get("runs")
    if not isinstance(runs, list) or not runs:
        _fail(path, "runs", "must list at least one run")
    for i, run in enumerate(runs):
        for key in ("trigger_seconds", "trigger_cpus", "rate_interval_us"):
            number(f"runs[{i}].{key}", run.get(key), minimum=0.0, strict=True)
        if run["trigger_cpus"] >= cpus:
            _fail(path, f"runs[{i}].trigger_cpus", f"must be below capacity.normal_cpus={cpus!r} (a cut)")
        if not isinstance(run.get("metastable"), bool):
            _fail(path, f"runs[{i}].metastable", "must be true or false")
    return document


def shortest_cut(queue: RetryingQueue, load_share: float, kept_share: float) -> float:
    """Shortest cut to ``kept_share`` of the servers that tips the queue at ``load_share`` of capacity (s)."""
    return queue.tipping_trigger(load_share * queue.capacity, 1.0 / kept_share, trigger="capacity").min_duration


def experiment_check(name, *, servers: int = 40, mu_timeout: float = 100.0,
                     rtol: float = 1e-3) -> pd.DataFrame:
    """The base loads at which the fluid model gives every run of a published experiment its outcome.

    The server is ``servers`` servers with a mean service time of ``timeout / mu_timeout``; a cut
    to ``trigger_cpus`` of ``normal_cpus`` keeps that share of the servers
    (:func:`reliability.retry.fluid.trigger_servers` rounds it). A run tips in the model when
    its cut lasts at least the fluid model's shortest tipping cut at its load. The shortest cut
    falls as the load rises, so each run's outcome holds on one side of a boundary load
    (:meth:`reliability.retry.RetryingQueue.tipping_load`, to ``rtol`` of capacity).

    Returns
    -------
    pandas.DataFrame
        One row per reading of the statement: ``reading`` (the reduced run's rate share, as a
        string), ``low`` and ``high`` (the band of base loads, share of capacity, reproducing
        every run; NaN when empty), ``consistent`` (the band is not empty), and per run
        ``edge_<id>`` (the base load above which that run tips in the model; inf: never within
        the range) and ``shortest_<id>`` (the fluid model's shortest tipping cut at the band's
        middle, s).
    """
    document = load_experiment(name)
    client, runs = document["client"], document["runs"]
    timeout = float(client["timeout_seconds"])
    queue = RetryingQueue(whole("servers", servers, 1), number("mu_timeout", mu_timeout, minimum=0.0, strict=True)
                          / timeout, timeout, FixedRetries(int(client["max_retries"])))
    tolerance = number("rtol", rtol, minimum=0.0, strict=True)
    low_end, high_end = (float(x) for x in document["unknowns"]["base_load_share"]["range"])
    fastest = min(float(run["rate_interval_us"]) for run in runs)
    normal = float(document["capacity"]["normal_cpus"])
    readings = [None] + [float(r["value"]) for r in document.get("readings", {}).get("reduced_rate_share", [])]
    edges: dict = {}

    def edge(rate: float, kept: float, seconds: float) -> float:  # the base load above which a run tips
        key = (rate, kept, seconds)
        if key not in edges:  # the runs share their cuts: each boundary is found once
            lowest = queue.tipping_load(1.0 / kept, seconds, trigger="capacity", rtol=tolerance * rate)
            edges[key] = max(lowest / queue.capacity / rate, low_end)  # inf: it never tips below capacity
        return edges[key]

    rows = []
    for reading in readings[1:] or readings:
        def share_of(run):  # the run's rate as a share of the fastest run's
            nominal = fastest / float(run["rate_interval_us"])
            return reading if reading is not None and nominal < 1.0 else nominal

        low, high, row = low_end, high_end, {"reading": "nominal" if reading is None else f"{reading:g}"}
        for run in runs:
            kept = float(run["trigger_cpus"]) / normal
            at = row[f"edge_{run['id']}"] = edge(share_of(run), kept, float(run["trigger_seconds"]))
            if run["metastable"]:
                low = max(low, at)
            else:
                high = min(high, at - tolerance)
        consistent = low <= high
        row.update(low=low if consistent else math.nan, high=high if consistent else math.nan, consistent=consistent)
        for run in runs:
            middle = 0.5 * (low + high)
            row[f"shortest_{run['id']}"] = (shortest_cut(queue, middle * share_of(run),
                                                         float(run["trigger_cpus"]) / normal)
                                            if consistent else math.nan)
        rows.append(row)
    return pd.DataFrame(rows)
