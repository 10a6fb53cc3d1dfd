"""The validation table: every analytic model beside simulation, Monte-Carlo and mpmath, one row per check.

How the checks are read (Bonferroni-corrected intervals, why the retrying queue runs with a
backoff) is told in :mod:`reliability.validation`.

Examples
--------
>>> table = validation_table("smoke", models=["expected_attempts"], seed=1)
>>> table[["model", "verdict"]].drop_duplicates().values.tolist()
[['expected_attempts', 'holds']]
"""

from __future__ import annotations

import math
import zlib
from collections import abc
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .._records import Record
from ..cluster import check_cluster, start_batches, startable
from .._validate import ArgumentTypeError, describe, number, whole
from ..queues import engset, erlang_a, erlang_b, erlang_c, mean_wait, mmck, wait_sf
from ..retry import Backoff, FixedRetries, RetryingQueue, expected_attempts, layered_amplification
from ..simulate import (
    MAX_CUSTOMERS,
    MAX_HORIZON,
    simulate_engset,
    simulate_mmc,
    simulate_mmc_abandonment,
    simulate_mmcc,
    simulate_mmck,
    simulate_retrying_queue,
)
from . import references

__all__ = ["MODELS", "ValidationSize", "SIZES", "validation_table"]

#: Models the table covers, in the order of its rows, with the number of checks (rows) of each.
_CHECKS = {
    "erlang_b": 2,
    "erlang_c": 2,
    "wait_sf": 3,
    "mean_wait": 2,
    "erlang_a": 3,
    "mmck": 2,
    "engset": 1,
    "expected_attempts": 3,
    "layered_amplification": 1,
    "retrying_queue": 6,
}
MODELS = tuple(_CHECKS)


@dataclass(frozen=True, repr=False)
class ValidationSize(Record):
    """How much simulation :func:`validation_table` runs.

    Attributes
    ----------
    customers : int
        Customers per replication of each M/M/c-family simulation (warm-up: a tenth).
    replications : int
        Independent replications of each M/M/c-family simulation.
    monte_carlo_requests : int
        Requests per replication of the retry-amplification Monte-Carlo.
    monte_carlo_replications : int
    retry_replications : int
        Independent runs of the retrying queue per check.
    retry_horizon : float
        Simulated seconds of each retrying-queue run started healthy at a bistable load
        (the first ``retry_warmup`` seconds are discarded).
    retry_short_horizon : float
        Simulated seconds of the runs that end collapsed or recovered (their outcome is
        read over the second half of the run).
    retry_warmup : float
    """

    customers: int
    replications: int
    monte_carlo_requests: int
    monte_carlo_replications: int
    retry_replications: int
    retry_horizon: float
    retry_short_horizon: float
    retry_warmup: float

    def __post_init__(self):
        for name in ("customers", "replications", "monte_carlo_requests", "monte_carlo_replications",
                     "retry_replications"):
            # held to what one simulation may run, so that a size is refused here, not mid-table
            value = whole(f"ValidationSize.{name}", getattr(self, name), 2, maximum=MAX_CUSTOMERS)
            object.__setattr__(self, name, value)
        for name in ("retry_horizon", "retry_short_horizon", "retry_warmup"):
            value = number(f"ValidationSize.{name}", getattr(self, name), minimum=0.0, strict=True,
                           maximum=MAX_HORIZON)
            object.__setattr__(self, name, value)
        if self.retry_warmup >= self.retry_horizon:
            raise ValueError(
                f"ValidationSize.retry_warmup must be < retry_horizon ({self.retry_horizon!r}), got {self.retry_warmup!r}"
            )


#: "smoke": a couple of seconds, for the test suite; "full": the published table, under ten seconds.
SIZES = {
    "smoke": ValidationSize(customers=4_000, replications=20, monte_carlo_requests=20_000,
                            monte_carlo_replications=10, retry_replications=3, retry_horizon=800.0,
                            retry_short_horizon=300.0, retry_warmup=200.0),
    # replications cost little (numpy across them), customers a Python step each
    "full": ValidationSize(customers=10_000, replications=100, monte_carlo_requests=100_000,
                           monte_carlo_replications=30, retry_replications=8, retry_horizon=1200.0,
                           retry_short_horizon=300.0, retry_warmup=200.0),
}

# The retrying queue of the table: bistable between 0.25 and 0.835 of capacity (3 retries).
_RQ = dict(servers=20, service_rate=1.0, timeout=3.0, max_retries=3)
_RQ_BACKOFF = Backoff(base=5.0, cap=40.0, jitter="full")
_RQ_BISTABLE_SHARE = 0.7
_RQ_BELOW_RECOVERY_SHARE = 0.2
_RQ_ABOVE_ONSET_SHARE = 0.95


# ----------------------------------------------------------------------------------------
# Monte-Carlo of retry amplification (independent failures; no formula involved)
# ----------------------------------------------------------------------------------------

def _mc_layer(p: float, retries: Sequence[int], n: int, rng: np.random.Generator):
    """Bottom attempts and success of ``n`` independent calls into a stack of retrying layers.

    The top layer makes up to ``r + 1`` calls into the stack below and stops at the first
    success. Calls below are i.i.d., so each of the ``n`` calls draws ``r + 1`` fresh calls from
    below and uses those up to its first success.
    """
    if not retries:
        return np.ones(n), rng.random(n) >= p
    r = retries[0]
    cost, ok = _mc_layer(p, retries[1:], n * (r + 1), rng)
    cost, ok = cost.reshape(n, r + 1), ok.reshape(n, r + 1)
    succeeded = ok.any(axis=1)
    first = np.where(succeeded, ok.argmax(axis=1), r)  # index of the last call made
    used = np.arange(r + 1)[None, :] <= first[:, None]
    return (cost * used).sum(axis=1), succeeded


# ----------------------------------------------------------------------------------------
# Rows
# ----------------------------------------------------------------------------------------

def _t_interval(samples: np.ndarray, level: float) -> tuple[float, float, float]:
    x = np.asarray(samples, dtype=np.float64)
    mean = float(x.mean())
    spread = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2.0, x.size - 1)) * spread / math.sqrt(x.size) if spread > 0 else 0.0
    return mean, mean - half, mean + half


def _seed(seed: int, key: str, *more: int) -> np.random.SeedSequence:
    # one independent stream per check, stable under adding or removing other checks
    return np.random.SeedSequence(entropy=seed, spawn_key=(zlib.crc32(key.encode()), *more))


def _fmt(parameters: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in parameters.items())


@dataclass
class _Row:
    model: str
    quantity: str
    parameters: dict
    analytic: float
    simulated: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    mpmath: float = math.nan
    reference: str = "simulation"
    note: str = ""
    case: str = ""


def _verdict(row: _Row, mpmath_rtol: float) -> tuple[str, float]:
    holds = True
    relative = math.nan
    if not math.isnan(row.mpmath):
        relative = abs(row.analytic - row.mpmath) / abs(row.mpmath) if row.mpmath != 0 else abs(row.analytic)
        holds &= relative <= mpmath_rtol
    if not math.isnan(row.simulated):
        holds &= row.ci_low <= row.analytic <= row.ci_high
    return ("holds" if holds else "fails"), relative


def _erlang_b_rows(size: ValidationSize, seed: int, level: float) -> list[_Row]:
    rows = []
    for c, lam, mu in [(10, 8.0, 1.0), (30, 25.0, 1.0)]:
        sim = simulate_mmcc(c, lam, mu, customers=size.customers, replications=size.replications, level=level,
                            seed=_seed(seed, f"erlang_b/{c}"))
        a = lam / mu
        rows.append(_Row("erlang_b", "blocking probability", dict(servers=c, arrival_rate=lam, service_rate=mu),
                         erlang_b(c, a), sim.p_block.value, sim.p_block.low, sim.p_block.high,
                         float(references.erlang_b(c, a)), "simulation (M/M/c/c) + mpmath", case=f"c={c}, a={a:g}"))
    return rows


def _mmc_rows(model_set, size: ValidationSize, seed: int, level: float) -> list[_Row]:
    """Erlang C, the waiting-time survival function and the mean wait: one M/M/c simulation each point."""
    rows = []
    for c, lam, mu, times in [(10, 8.0, 1.0, (0.25, 1.0)), (1, 0.5, 1.0, (1.0,))]:
        sim = simulate_mmc(c, lam, mu, wait_times=times, customers=size.customers, replications=size.replications,
                           level=level, seed=_seed(seed, f"mmc/{c}"))
        a = lam / mu
        p = dict(servers=c, arrival_rate=lam, service_rate=mu)
        ref = "simulation (M/M/c) + mpmath"
        case = f"c={c}, a={a:g}"
        if "erlang_c" in model_set:
            rows.append(_Row("erlang_c", "probability of waiting", p, erlang_c(c, a), sim.p_wait.value,
                             sim.p_wait.low, sim.p_wait.high, float(references.erlang_c(c, a)), ref, case=case))
        if "wait_sf" in model_set:
            for t in times:
                e = sim.wait_sf_at(t)
                rows.append(_Row("wait_sf", f"P(wait > {t:g})", {**p, "wait_time": t},
                                 wait_sf(c, a, t, mu), e.value, e.low, e.high,
                                 float(references.wait_sf(c, a, t, mu)), ref, case=f"{case}, t={t:g}"))
        if "mean_wait" in model_set:
            rows.append(_Row("mean_wait", "mean wait", p, mean_wait(c, a, mu), sim.mean_wait.value,
                             sim.mean_wait.low, sim.mean_wait.high, float(references.mean_wait(c, a, mu)), ref,
                             case=case))
    return rows


def _erlang_a_rows(size: ValidationSize, seed: int, level: float) -> list[_Row]:
    c, lam, mu, theta = 10, 11.0, 1.0, 0.5
    sim = simulate_mmc_abandonment(c, lam, mu, theta, customers=size.customers, replications=size.replications,
                                   level=level, seed=_seed(seed, "erlang_a"))
    result = erlang_a(c, lam, mu, theta)
    exact = references.erlang_a(c, lam, mu, theta)
    p = dict(servers=c, arrival_rate=lam, service_rate=mu, abandonment_rate=theta)
    rows = []
    for name, label in [("p_wait", "probability of waiting"), ("p_abandon", "probability of abandoning"),
                        ("mean_wait", "mean wait")]:
        e = getattr(sim, name)
        rows.append(_Row("erlang_a", label, p, float(getattr(result, name)), e.value, e.low, e.high,
                         float(getattr(exact, name)), "simulation (M/M/c+M) + mpmath",
                         case=f"c={c}, a={lam / mu:g}, theta/mu={theta / mu:g}"))
    return rows


def _mmck_rows(size: ValidationSize, seed: int, level: float) -> list[_Row]:
    rows = []
    for c, k, lam, mu in [(5, 10, 5.0, 1.0), (2, 4, 3.0, 1.0)]:
        sim = simulate_mmck(c, k, lam, mu, customers=size.customers, replications=size.replications, level=level,
                            seed=_seed(seed, f"mmck/{c}/{k}"))
        a = lam / mu
        rows.append(_Row("mmck", "blocking probability", dict(servers=c, capacity=k, arrival_rate=lam, service_rate=mu),
                         mmck(c, k, a), sim.p_block.value, sim.p_block.low, sim.p_block.high,
                         float(references.mmck(c, k, a)), "simulation (M/M/c/K) + mpmath", case=f"c={c}, K={k}, a={a:g}"))
    return rows


def _engset_rows(size: ValidationSize, seed: int, level: float) -> list[_Row]:
    c, sources, b = 5, 20, 0.3
    # transitions count arrivals and departures alike: twice the customers of the other models
    sim = simulate_engset(c, sources, b, transitions=2 * size.customers, replications=size.replications, level=level,
                          seed=_seed(seed, f"engset/{c}/{sources}"))
    return [_Row("engset", "call congestion", dict(servers=c, sources=sources, source_load=b),
                 engset(c, sources, b), sim.p_block.value, sim.p_block.low, sim.p_block.high,
                 float(references.engset(c, sources, b)), "simulation (Engset) + mpmath",
                 case=f"c={c}, N={sources}, b={b:g}")]


def _expected_attempts_rows(size: ValidationSize, seed: int, level: float) -> list[_Row]:
    rows = []
    for p, r in [(0.3, 3), (0.5, 3), (0.9, 5)]:
        rng = np.random.default_rng(_seed(seed, f"expected_attempts/{p}/{r}"))
        # attempts until the first success, capped at r + 1 (geometric: trials to first success)
        means = [np.minimum(rng.geometric(1.0 - p, size.monte_carlo_requests), r + 1).mean()
                 for _ in range(size.monte_carlo_replications)]
        mean, low, high = _t_interval(np.array(means), level)
        rows.append(_Row("expected_attempts", "attempts per request", dict(p_fail=p, max_retries=r),
                         expected_attempts(p, r), mean, low, high, float(references.expected_attempts(p, r)),
                         "Monte-Carlo (independent failures) + mpmath", case=f"p={p:g}, r={r}"))
    return rows


def _layered_rows(size: ValidationSize, seed: int, level: float) -> list[_Row]:
    p, layers = 0.5, (3, 3, 3)
    rng = np.random.default_rng(_seed(seed, "layered"))
    # a bottom call per (request x 64 attempt slots): keep the per-replication size moderate
    per_rep = max(2, size.monte_carlo_requests // 20)
    means = [_mc_layer(p, layers, per_rep, rng)[0].mean() for _ in range(size.monte_carlo_replications)]
    mean, low, high = _t_interval(np.array(means), level)
    return [_Row("layered_amplification", "bottom attempts per request",
                 dict(p_fail=p, max_retries_per_layer="3,3,3"), layered_amplification(p, list(layers)),
                 mean, low, high, float(references.layered_amplification(p, layers)),
                 "Monte-Carlo (independent failures, nested layers) + mpmath", case=f"p={p:g}, 3 layers of r=3")]


def _retry_run(share: float, backlog: int, horizon: float, window: tuple[float, float], seed) -> tuple[float, float]:
    """(failure fraction, attempts per request) over ``window`` of one run of the retrying queue."""
    c, mu, timeout, r = _RQ["servers"], _RQ["service_rate"], _RQ["timeout"], _RQ["max_retries"]
    run = simulate_retrying_queue(c, mu, share * c * mu, timeout=timeout, policy=FixedRetries(r),
                                  backoff=_RQ_BACKOFF, horizon=horizon, interval=10.0,
                                  initial_backlog=backlog, seed=seed)
    summary = run.window(*window)
    return summary.failure_fraction, summary.amplification


def _retry_settings(size: ValidationSize) -> dict[str, tuple]:
    """The retrying queue's simulated settings, by stream key: (load share, backlog, horizon, window)."""
    c, mu, timeout = _RQ["servers"], _RQ["service_rate"], _RQ["timeout"]
    # a backlog the servers need four timeouts to clear: every attempt in it times out
    collapsed = int(4 * c * mu * timeout)
    horizon, warm, short = size.retry_horizon, size.retry_warmup, size.retry_short_horizon
    return {
        "rq/healthy": (_RQ_BISTABLE_SHARE, 0, horizon, (warm, horizon)),
        "rq/collapsed": (_RQ_BISTABLE_SHARE, collapsed, short, (short / 2, short)),
        "rq/recovers": (_RQ_BELOW_RECOVERY_SHARE, collapsed, 2 * short, (short, 2 * short)),
        "rq/collapses": (_RQ_ABOVE_ONSET_SHARE, 0, short, (short / 2, short)),
    }


def _retry_batches(size: ValidationSize, seed: int) -> list[tuple]:
    """One batch per replication of every setting: ``(key, arguments of _retry_run)``."""
    return [(key, (*setting, _seed(seed, key, i))) for key, setting in _retry_settings(size).items()
            for i in range(size.retry_replications)]


def _retry_samples(batches: list[tuple], results: list[tuple]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Failure fractions and attempts per request of each setting's replications, in order."""
    samples: dict[str, list] = {}
    for (key, _), result in zip(batches, results):
        samples.setdefault(key, []).append(result)
    return {key: tuple(np.array(column) for column in zip(*runs)) for key, runs in samples.items()}


def _retrying_queue_rows(size: ValidationSize, level: float, samples: dict) -> list[_Row]:
    """The retrying queue's checks from its simulated ``samples`` (:func:`_retry_samples`)."""
    c, mu, timeout, r = _RQ["servers"], _RQ["service_rate"], _RQ["timeout"], _RQ["max_retries"]
    queue = RetryingQueue(c, mu, timeout, r)
    capacity = queue.capacity
    onset, recovery = queue.onset_threshold() / capacity, queue.recovery_threshold() / capacity
    collapsed_backlog = _retry_settings(size)["rq/collapsed"][1]
    base = dict(servers=c, service_rate=mu, timeout=timeout, max_retries=r, backoff="full jitter 5-40 s")
    rows: list[_Row] = []

    def add(quantity, share, analytic, samples, note):
        mean, low, high = _t_interval(samples, level)
        rows.append(_Row("retrying_queue", quantity, {**base, "load_share": share}, analytic, mean, low, high,
                         reference="simulation (retrying queue, replications)", note=note,
                         case=f"c={c}, mu T={mu * timeout:g}, r={r}, load {share:g} of capacity"))

    share = _RQ_BISTABLE_SHARE
    states = queue.equilibria(share * capacity)
    healthy = next(e for e in states if e.state == "healthy")
    collapsed = next(e for e in states if e.state == "collapsed")
    bistable = f"bistable load (recovery {recovery:.3g} < {share:g} < onset {onset:.3g})"
    failure, amplification = samples["rq/healthy"]
    left = int((failure > 0.5).sum())
    add("failure probability, started healthy", share, healthy.failure_probability, failure,
        f"{bistable}; healthy equilibrium; {left} of {failure.size} runs left it")
    add("attempts per request, started healthy", share, healthy.amplification, amplification,
        f"{bistable}; healthy equilibrium")

    failure, amplification = samples["rq/collapsed"]
    add("failure probability, started collapsed", share, collapsed.failure_probability, failure,
        f"{bistable}; collapsed equilibrium; initial backlog {collapsed_backlog}")
    add("attempts per request, started collapsed", share, collapsed.amplification, amplification,
        f"{bistable}; collapsed equilibrium (every attempt times out)")

    share = _RQ_BELOW_RECOVERY_SHARE
    (only,) = queue.equilibria(share * capacity)
    failure, _ = samples["rq/recovers"]
    add("failure probability, started collapsed", share, only.failure_probability, failure,
        f"below the recovery threshold {recovery:.3g}: only the healthy state exists, a collapsed start recovers")

    share = _RQ_ABOVE_ONSET_SHARE
    (only,) = queue.equilibria(share * capacity)
    failure, _ = samples["rq/collapses"]
    add("failure probability, started healthy", share, only.failure_probability, failure,
        f"above the onset threshold {onset:.3g}: only the collapsed state exists, a healthy start collapses")
    return rows


def _groups(model_set) -> list:
    """The checks in groups that simulate independently (each on streams keyed by its own names), in
    :data:`MODELS` order: ``(models that ask for the group, builder of its rows)``; the retrying
    queue's replications are batches of their own (:func:`_retry_batches`)."""
    return [
        ({"erlang_b"}, _erlang_b_rows),
        ({"erlang_c", "wait_sf", "mean_wait"}, partial(_mmc_rows, model_set)),
        ({"erlang_a"}, _erlang_a_rows),
        ({"mmck"}, _mmck_rows),
        ({"engset"}, _engset_rows),
        ({"expected_attempts"}, _expected_attempts_rows),
        ({"layered_amplification"}, _layered_rows),
    ]


def _start_rows(model_set, size: ValidationSize, seed: int, level: float,
                cluster=None) -> Callable[[], list[_Row]]:
    """Send the checks of the chosen models to ``cluster``; returns a function that waits for their
    rows, in :data:`MODELS` order.

    The groups of checks and each replication of the retrying queue (the longest runs) are the
    batches that ``cluster`` spreads over its workers; their streams are keyed by name, so the
    rows are the same wherever they run.
    """
    builders = [build for models, build in _groups(model_set) if models & model_set]
    retry_batches = _retry_batches(size, seed) if "retrying_queue" in model_set else []
    batches = [(build, (size, seed, level)) for build in builders] + [(_retry_run, args) for _, args in retry_batches]
    pending = start_batches(cluster, _call, *zip(*batches)) if batches else list

    def rows() -> list[_Row]:
        results = pending()
        found = [row for group in results[:len(builders)] for row in group]
        if retry_batches:
            found += _retrying_queue_rows(size, level, _retry_samples(retry_batches, results[len(builders):]))
        order = {m: i for i, m in enumerate(MODELS)}
        found.sort(key=lambda row: order[row.model])  # stable: keeps each model's rows in order
        return found

    return rows


def _call(function, arguments: tuple):
    return function(*arguments)


# ----------------------------------------------------------------------------------------
# The table
# ----------------------------------------------------------------------------------------

def _checked_size(size) -> ValidationSize:
    if isinstance(size, ValidationSize):
        return size
    if isinstance(size, str) and size in SIZES:
        return SIZES[size]
    raise ValueError(f"size must be one of {sorted(SIZES)} or a ValidationSize, got {describe(size)}")


def _checked_models(models: Iterable[str] | None) -> set[str]:
    if models is None:
        return set(MODELS)
    if isinstance(models, (str, bytes)) or not isinstance(models, abc.Iterable):
        # a string is an iterable of letters, not of model names
        raise ArgumentTypeError(f"models must be a list of names from {list(MODELS)}, got {describe(models)}")
    try:
        items = list(models)
    except TypeError:  # a 0-d array is an Iterable that cannot be iterated
        raise ArgumentTypeError(f"models must be a list of names from {list(MODELS)}, got {describe(models)}") from None
    unknown = [m for m in items if not isinstance(m, str) or m not in MODELS]
    if unknown or not items:
        raise ValueError(f"models must be a non-empty subset of {list(MODELS)}, got {describe(unknown or items)}")
    return set(items)


def _checked_factors(analytic_factor: Mapping[str, float] | None) -> dict[str, float]:
    if analytic_factor is None:
        return {}
    if not isinstance(analytic_factor, Mapping):
        raise ArgumentTypeError(f"analytic_factor must be a mapping of model names to numbers, got "
                                f"{describe(analytic_factor)}")
    factors = {}
    for name, factor in analytic_factor.items():
        if name not in MODELS:
            raise ValueError(f"analytic_factor keys must be among {list(MODELS)}, got {describe(name)}")
        factors[name] = number(f"analytic_factor[{name!r}]", factor, minimum=None)
    return factors


def _record(row: _Row, factor: float, mpmath_rtol: float, per_check: float) -> dict:
    row.analytic = float(row.analytic) * factor
    verdict, relative = _verdict(row, mpmath_rtol)
    return {
        "model": row.model,
        "quantity": row.quantity,
        "case": row.case or _fmt(row.parameters),
        "parameters": _fmt(row.parameters),
        "analytic": row.analytic,
        "simulated": row.simulated,
        "ci_low": row.ci_low,
        "ci_high": row.ci_high,
        "mpmath": row.mpmath,
        "mpmath_relative_error": relative,
        "ci_level": per_check if not math.isnan(row.simulated) else math.nan,
        "reference": row.reference,
        "verdict": verdict,
        "note": row.note,
    }


@startable
def validation_table(size="full", *, seed: int = 0, level: float = 0.95, mpmath_rtol: float = 1e-10,
                     models: Iterable[str] | None = None,
                     analytic_factor: Mapping[str, float] | None = None, cluster=None) -> pd.DataFrame:
    """Every analytic model against simulation, Monte-Carlo and mpmath: one row per check.

    Parameters
    ----------
    size : {"smoke", "full"} or ValidationSize
        How much to simulate: ``"smoke"`` takes a couple of seconds, ``"full"`` under ten.
    seed : int
        Seed of every simulation (each check draws its own independent stream from it).
    level : float
        Family-wise confidence level, in (0, 1): each simulated check uses a Student-t
        interval at ``1 - (1 - level) / n`` for ``n`` simulated checks (Bonferroni).
    mpmath_rtol : float
        Largest relative difference from the mpmath value (:mod:`reliability.validation.references`)
        that still holds.
    models : iterable of str, optional
        Subset of :data:`MODELS` to check (default: all).
    analytic_factor : mapping of str to float, optional
        Multiply the analytic values of these models before comparing: a deliberately wrong
        model, to see that the checks can fail.
    cluster : reliability.Cluster, optional
        Where the groups of simulations run (default: here); the same numbers anywhere.
        ``validation_table.start(...)`` returns once they are sent, with a function that waits
        for the table.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, quantity, case`` (the parameter point in short), ``parameters, analytic,
        simulated, ci_low, ci_high, mpmath, mpmath_relative_error, ci_level, reference, verdict,
        note``; ``simulated`` and the interval are NaN where the reference is mpmath alone,
        ``mpmath`` is NaN where there is no exact formula (the mean-field retrying queue).
        ``verdict`` is ``"holds"`` or ``"fails"``.

    Examples
    --------
    >>> t = validation_table("smoke", models=["layered_amplification"], seed=3)
    >>> float(t.loc[0, "analytic"]), t.loc[0, "verdict"]   # 3 layers of 4 attempts at p = 1/2
    (2.0, 'holds')
    """
    size = _checked_size(size)
    seed = whole("seed", seed, 0)
    level = number("level", level, minimum=None)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {describe(level)}")
    mpmath_rtol = number("mpmath_rtol", mpmath_rtol, minimum=0.0, strict=True)
    model_set = _checked_models(models)
    factors = _checked_factors(analytic_factor)
    check_cluster(cluster)

    checks = max(1, sum(_CHECKS[m] for m in model_set))
    per_check = 1.0 - (1.0 - level) / checks
    rows = _start_rows(model_set, size, seed, per_check, cluster)
    yield
    records = [_record(row, factors.get(row.model, 1.0), mpmath_rtol, per_check) for row in rows()]
    return pd.DataFrame.from_records(records)
