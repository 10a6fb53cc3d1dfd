"""Where an analytic value meets its simulated value: the evidence that the models are right.

:func:`validation_table` puts every analytic model of :mod:`reliability.erlang` and
:mod:`reliability.retry` beside an independent estimate of the same quantity -- the
discrete-event simulation of :mod:`reliability.simulate`, or a Monte-Carlo of independent
failures -- and, where the model is exact, beside a 50-digit mpmath evaluation of the textbook
formula. One row per check; the verdict is ``"holds"`` when the analytic value lies inside the
simulated confidence interval *and* (where an mpmath value exists) agrees with it to
``mpmath_rtol``. ``simulate`` never calls a formula, so agreement is evidence, and a
disagreement is a reason to look.

Confidence intervals are Student-t intervals across independent replications. With some 25
checks in one table, 95 % intervals would flag one good model in most tables; the intervals are
therefore Bonferroni-corrected: each check uses level ``1 - (1 - level) / n`` with ``n`` the
number of simulated checks, so that a whole table of correct models holds with probability at
least ``level``.

What the retrying-queue rows check, and why they use a backoff
--------------------------------------------------------------
:class:`reliability.retry.RetryingQueue` is a *mean-field* model: it treats attempts as a
Poisson stream whose attempts fail independently. A client that retries at once sends its
retry exactly when the queue is long (the long queue is why the first attempt timed out), so
immediate retries see a more congested queue than Poisson arrivals would. Measured with 30 runs
of 2 000 s (20 servers, ``mu = 1``, timeout 3 s, 3 retries, base load 0.7 of capacity; 95 %
intervals), the simulated failure probability is 0.0523 +- 0.0006 without backoff (over the 29
runs that stayed healthy; one collapsed) against the model's 0.05145, and 0.05165 +- 0.00054
with a full-jitter backoff of 5 s to 40 s (no run collapsed), which spreads retries in time as
the model assumes. The table therefore runs the retrying queue with that backoff (the model
says backoff leaves the equilibria unchanged) and checks: the healthy and the collapsed
equilibria at a load where both exist (a run started empty stays near the healthy one, a run
started with a large backlog stays collapsed), that below the recovery threshold a collapsed
start recovers, and that above the onset threshold a healthy start collapses.

Engset (finite sources) is checked against the simulator's finite-source birth-death chain
(call congestion: the share of arrivals that find every server busy) and mpmath.

Examples
--------
>>> table = validation_table("smoke", models=["expected_attempts"], seed=1)
>>> table[["model", "verdict"]].drop_duplicates().values.tolist()
[['expected_attempts', 'holds']]
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .erlang import engset, erlang_a, erlang_b, erlang_c, mean_wait, mmck, wait_sf
from .retry import Backoff, FixedRetries, RetryingQueue, expected_attempts, layered_amplification, metastability_map
from .simulate import (
    simulate_engset,
    simulate_mmc,
    simulate_mmc_abandonment,
    simulate_mmcc,
    simulate_mmck,
    simulate_retrying_queue,
)

__all__ = [
    "ValidationSize",
    "SIZES",
    "MODELS",
    "validation_table",
    "recovery_time",
    "simulated_metastability",
]

#: Models the table covers, in the order of its rows.
MODELS = (
    "erlang_b",
    "erlang_c",
    "wait_sf",
    "mean_wait",
    "erlang_a",
    "mmck",
    "engset",
    "expected_attempts",
    "layered_amplification",
    "retrying_queue",
)

#: Significant digits of the mpmath references.
MPMATH_DIGITS = 50


@dataclass(frozen=True)
class ValidationSize:
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
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
                raise ValueError(f"ValidationSize.{name} must be a whole number >= 2, got {value!r}")
        for name in ("retry_horizon", "retry_short_horizon", "retry_warmup"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValueError(f"ValidationSize.{name} must be a finite number > 0, got {value!r}")
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
# mpmath references (the textbook formulas, evaluated with 50 digits)
# ----------------------------------------------------------------------------------------
# Each imports mpmath itself: only these references need it, not the trace helpers below that
# notebook 02 uses.

def _mp_erlang_b(c: int, a: float):
    import mpmath
    a = mpmath.mpf(a)
    # B(c, a) = (a^c / c!) / sum_{k=0}^{c} a^k / k!
    return (a**c / mpmath.factorial(c)) / mpmath.fsum(a**k / mpmath.factorial(k) for k in range(c + 1))


def _mp_erlang_c(c: int, a: float):
    import mpmath
    a = mpmath.mpf(a)
    # C(c, a) = (a^c/c! * c/(c-a)) / (sum_{k<c} a^k/k! + a^c/c! * c/(c-a))
    top = a**c / mpmath.factorial(c) * c / (c - a)
    return top / (mpmath.fsum(a**k / mpmath.factorial(k) for k in range(c)) + top)


def _mp_wait_sf(c: int, a: float, t: float, mu: float):
    import mpmath
    # P(W > t) = C(c, a) exp(-(c - a) mu t)
    return _mp_erlang_c(c, a) * mpmath.exp(-(c - mpmath.mpf(a)) * mu * t)


def _mp_mean_wait(c: int, a: float, mu: float):
    import mpmath
    # E[W] = C(c, a) / ((c - a) mu)
    return _mp_erlang_c(c, a) / ((c - mpmath.mpf(a)) * mu)


def _mp_erlang_a(c: int, lam: float, mu: float, theta: float) -> dict:
    """Birth-death chain of M/M/c+M summed until its terms vanish (they fall super-geometrically)."""
    import mpmath
    lam, mu, theta = mpmath.mpf(lam), mpmath.mpf(mu), mpmath.mpf(theta)
    # q_n = q_{n-1} * lambda / (min(n, c) mu + max(n - c, 0) theta), q_0 = 1
    terms = [mpmath.mpf(1)]
    n = 0
    while True:
        n += 1
        term = terms[-1] * lam / (min(n, c) * mu + max(n - c, 0) * theta)
        terms.append(term)
        if n > c and term < mpmath.mpf(10) ** (-MPMATH_DIGITS - 10) * terms[c]:
            break
    total = mpmath.fsum(terms)
    p_wait = mpmath.fsum(terms[c:]) / total  # PASTA: an arrival finds n >= c
    queue = mpmath.fsum((k - c) * terms[k] for k in range(c + 1, len(terms))) / total
    # Little: E[W] = E[Q] / lambda; abandonment rate theta E[Q] over arrival rate lambda
    return {"p_wait": p_wait, "p_abandon": theta * queue / lam, "mean_wait": queue / lam}


def _mp_mmck(c: int, k: int, a: float):
    import mpmath
    a = mpmath.mpf(a)
    # pi_n ~ a^n / n! (n <= c), a^c / c! (a/c)^(n-c) (c < n <= K); P(full) = pi_K (PASTA)
    weights = [a**n / mpmath.factorial(n) for n in range(c + 1)]
    weights += [weights[c] * (a / c) ** (n - c) for n in range(c + 1, k + 1)]
    return weights[-1] / mpmath.fsum(weights)


def _mp_engset(c: int, sources: int, b: float):
    import mpmath
    b = mpmath.mpf(b)
    # E = C(N-1, c) b^c / sum_{k=0}^{c} C(N-1, k) b^k (arrival theorem: one source fewer)
    n = sources - 1
    return mpmath.binomial(n, c) * b**c / mpmath.fsum(mpmath.binomial(n, j) * b**j for j in range(c + 1))


def _mp_expected_attempts(p: float, r: int):
    import mpmath
    p = mpmath.mpf(p)
    # E[attempts] = sum_{k=0}^{r} p^k
    return mpmath.fsum(p**k for k in range(r + 1))


def _mp_layered(p: float, retries: Sequence[int]):
    import mpmath
    # bottom layer first: prod_i E(p_i, r_i) with p_below = p_i^(r_i + 1)
    failing, total = mpmath.mpf(p), mpmath.mpf(1)
    for r in reversed(list(retries)):
        total *= mpmath.fsum(failing**k for k in range(r + 1))
        failing = failing ** (r + 1)
    return total


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
# The table
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


def _family_rows(model_set, size: ValidationSize, seed: int, level: float) -> list[_Row]:
    rows: list[_Row] = []
    n, reps = size.customers, size.replications
    common = dict(customers=n, replications=reps, level=level)

    if "erlang_b" in model_set:
        for c, lam, mu in [(10, 8.0, 1.0), (30, 25.0, 1.0)]:
            sim = simulate_mmcc(c, lam, mu, seed=_seed(seed, f"erlang_b/{c}"), **common)
            a = lam / mu
            rows.append(_Row("erlang_b", "blocking probability",
                             dict(servers=c, arrival_rate=lam, service_rate=mu),
                             erlang_b(c, a), sim.p_block.value, sim.p_block.low, sim.p_block.high,
                             float(_mp_erlang_b(c, a)), "simulation (M/M/c/c) + mpmath", case=f"c={c}, a={a:g}"))

    wanted_mmc = {"erlang_c", "wait_sf", "mean_wait"} & model_set
    if wanted_mmc:
        for c, lam, mu, times in [(10, 8.0, 1.0, (0.25, 1.0)), (1, 0.5, 1.0, (1.0,))]:
            sim = simulate_mmc(c, lam, mu, wait_times=times, seed=_seed(seed, f"mmc/{c}"), **common)
            a = lam / mu
            p = dict(servers=c, arrival_rate=lam, service_rate=mu)
            ref = "simulation (M/M/c) + mpmath"
            case = f"c={c}, a={a:g}"
            if "erlang_c" in model_set:
                rows.append(_Row("erlang_c", "probability of waiting", p, erlang_c(c, a), sim.p_wait.value,
                                 sim.p_wait.low, sim.p_wait.high, float(_mp_erlang_c(c, a)), ref, case=case))
            if "wait_sf" in model_set:
                for t in times:
                    e = sim.wait_sf_at(t)
                    rows.append(_Row("wait_sf", f"P(wait > {t:g})", {**p, "wait_time": t},
                                     wait_sf(c, a, t, mu), e.value, e.low, e.high,
                                     float(_mp_wait_sf(c, a, t, mu)), ref, case=f"{case}, t={t:g}"))
            if "mean_wait" in model_set:
                rows.append(_Row("mean_wait", "mean wait", p, mean_wait(c, a, mu), sim.mean_wait.value,
                                 sim.mean_wait.low, sim.mean_wait.high, float(_mp_mean_wait(c, a, mu)), ref,
                                 case=case))

    if "erlang_a" in model_set:
        c, lam, mu, theta = 10, 11.0, 1.0, 0.5
        sim = simulate_mmc_abandonment(c, lam, mu, theta, seed=_seed(seed, "erlang_a"), **common)
        result = erlang_a(c, lam, mu, theta)
        exact = _mp_erlang_a(c, lam, mu, theta)
        p = dict(servers=c, arrival_rate=lam, service_rate=mu, abandonment_rate=theta)
        for name, label in [("p_wait", "probability of waiting"), ("p_abandon", "probability of abandoning"),
                            ("mean_wait", "mean wait")]:
            e = getattr(sim, name)
            rows.append(_Row("erlang_a", label, p, float(getattr(result, name)), e.value, e.low, e.high,
                             float(exact[name]), "simulation (M/M/c+M) + mpmath",
                             case=f"c={c}, a={lam / mu:g}, theta/mu={theta / mu:g}"))

    if "mmck" in model_set:
        for c, k, lam, mu in [(5, 10, 5.0, 1.0), (2, 4, 3.0, 1.0)]:
            sim = simulate_mmck(c, k, lam, mu, seed=_seed(seed, f"mmck/{c}/{k}"), **common)
            a = lam / mu
            rows.append(_Row("mmck", "blocking probability", dict(servers=c, capacity=k, arrival_rate=lam, service_rate=mu),
                             mmck(c, k, a), sim.p_block.value, sim.p_block.low, sim.p_block.high,
                             float(_mp_mmck(c, k, a)), "simulation (M/M/c/K) + mpmath", case=f"c={c}, K={k}, a={a:g}"))

    if "engset" in model_set:
        c, sources, b = 5, 20, 0.3
        # transitions count arrivals and departures alike: twice the customers of the other models
        sim = simulate_engset(c, sources, b, transitions=2 * n, replications=reps, level=level,
                              seed=_seed(seed, f"engset/{c}/{sources}"))
        rows.append(_Row("engset", "call congestion", dict(servers=c, sources=sources, source_load=b),
                         engset(c, sources, b), sim.p_block.value, sim.p_block.low, sim.p_block.high,
                         float(_mp_engset(c, sources, b)), "simulation (Engset) + mpmath",
                         case=f"c={c}, N={sources}, b={b:g}"))
    return rows


def _amplification_rows(model_set, size: ValidationSize, seed: int, level: float) -> list[_Row]:
    rows: list[_Row] = []
    n, reps = size.monte_carlo_requests, size.monte_carlo_replications
    if "expected_attempts" in model_set:
        for p, r in [(0.3, 3), (0.5, 3), (0.9, 5)]:
            rng = np.random.default_rng(_seed(seed, f"expected_attempts/{p}/{r}"))
            # attempts until the first success, capped at r + 1 (geometric: trials to first success)
            means = [np.minimum(rng.geometric(1.0 - p, n), r + 1).mean() for _ in range(reps)]
            mean, low, high = _t_interval(np.array(means), level)
            rows.append(_Row("expected_attempts", "attempts per request", dict(p_fail=p, max_retries=r),
                             expected_attempts(p, r), mean, low, high, float(_mp_expected_attempts(p, r)),
                             "Monte-Carlo (independent failures) + mpmath", case=f"p={p:g}, r={r}"))
    if "layered_amplification" in model_set:
        p, layers = 0.5, (3, 3, 3)
        rng = np.random.default_rng(_seed(seed, "layered"))
        # a bottom call per (request x 64 attempt slots): keep the per-replication size moderate
        per_rep = max(2, n // 20)
        means = [_mc_layer(p, layers, per_rep, rng)[0].mean() for _ in range(reps)]
        mean, low, high = _t_interval(np.array(means), level)
        rows.append(_Row("layered_amplification", "bottom attempts per request",
                         dict(p_fail=p, max_retries_per_layer="3,3,3"), layered_amplification(p, list(layers)),
                         mean, low, high, float(_mp_layered(p, layers)),
                         "Monte-Carlo (independent failures, nested layers) + mpmath", case=f"p={p:g}, 3 layers of r=3"))
    return rows


def _retry_runs(share: float, backlog: int, horizon: float, window: tuple[float, float], size: ValidationSize,
                seed: int, key: str):
    c, mu, timeout, r = _RQ["servers"], _RQ["service_rate"], _RQ["timeout"], _RQ["max_retries"]
    failure, amplification = [], []
    for i in range(size.retry_replications):
        run = simulate_retrying_queue(c, mu, share * c * mu, timeout=timeout, policy=FixedRetries(r),
                                      backoff=_RQ_BACKOFF, horizon=horizon, interval=10.0,
                                      initial_backlog=backlog, seed=_seed(seed, key, i))
        summary = run.window(*window)
        failure.append(summary.failure_fraction)
        amplification.append(summary.amplification)
    return np.array(failure), np.array(amplification)


def _retrying_queue_rows(size: ValidationSize, seed: int, level: float) -> list[_Row]:
    c, mu, timeout, r = _RQ["servers"], _RQ["service_rate"], _RQ["timeout"], _RQ["max_retries"]
    queue = RetryingQueue(c, mu, timeout, r)
    capacity = queue.capacity
    onset, recovery = queue.onset_threshold() / capacity, queue.recovery_threshold() / capacity
    # a backlog the servers need four timeouts to clear: every attempt in it times out
    collapsed_backlog = int(4 * c * mu * timeout)
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
    horizon, warm = size.retry_horizon, size.retry_warmup
    failure, amplification = _retry_runs(share, 0, horizon, (warm, horizon), size, seed, "rq/healthy")
    left = int((failure > 0.5).sum())
    add("failure probability, started healthy", share, healthy.failure_probability, failure,
        f"{bistable}; healthy equilibrium; {left} of {failure.size} runs left it")
    add("attempts per request, started healthy", share, healthy.amplification, amplification,
        f"{bistable}; healthy equilibrium")

    short = size.retry_short_horizon
    failure, amplification = _retry_runs(share, collapsed_backlog, short, (short / 2, short), size, seed,
                                         "rq/collapsed")
    add("failure probability, started collapsed", share, collapsed.failure_probability, failure,
        f"{bistable}; collapsed equilibrium; initial backlog {collapsed_backlog}")
    add("attempts per request, started collapsed", share, collapsed.amplification, amplification,
        f"{bistable}; collapsed equilibrium (every attempt times out)")

    share = _RQ_BELOW_RECOVERY_SHARE
    (only,) = queue.equilibria(share * capacity)
    failure, _ = _retry_runs(share, collapsed_backlog, 2 * short, (short, 2 * short), size, seed, "rq/recovers")
    add("failure probability, started collapsed", share, only.failure_probability, failure,
        f"below the recovery threshold {recovery:.3g}: only the healthy state exists, a collapsed start recovers")

    share = _RQ_ABOVE_ONSET_SHARE
    (only,) = queue.equilibria(share * capacity)
    failure, _ = _retry_runs(share, 0, short, (short / 2, short), size, seed, "rq/collapses")
    add("failure probability, started healthy", share, only.failure_probability, failure,
        f"above the onset threshold {onset:.3g}: only the collapsed state exists, a healthy start collapses")
    return rows


def _simulated_check_count(model_set) -> int:
    counts = {"erlang_b": 2, "erlang_c": 2, "wait_sf": 3, "mean_wait": 2, "erlang_a": 3, "mmck": 2,
              "engset": 1, "expected_attempts": 3, "layered_amplification": 1, "retrying_queue": 6}
    return sum(counts[m] for m in model_set)


def validation_table(size="full", *, seed: int = 0, level: float = 0.95, mpmath_rtol: float = 1e-10,
                     models: Iterable[str] | None = None,
                     analytic_factor: Mapping[str, float] | None = None) -> pd.DataFrame:
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
        Largest relative difference from the mpmath value that still holds.
    models : iterable of str, optional
        Subset of :data:`MODELS` to check (default: all).
    analytic_factor : mapping of str to float, optional
        Multiply the analytic values of these models before comparing: a deliberately wrong
        model, to see that the checks can fail.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, quantity, case`` (the parameter point in short), ``parameters, analytic, simulated, ci_low, ci_high, mpmath,
        mpmath_relative_error, ci_level, reference, verdict, note``; ``simulated`` and the
        interval are NaN where the reference is mpmath alone, ``mpmath`` is NaN where there is no
        exact formula (the mean-field retrying queue). ``verdict`` is ``"holds"`` or ``"fails"``.

    Examples
    --------
    >>> t = validation_table("smoke", models=["layered_amplification"], seed=3)
    >>> float(t.loc[0, "analytic"]), t.loc[0, "verdict"]   # 3 layers of 4 attempts at p = 1/2
    (2.0, 'holds')
    """
    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"size must be one of {sorted(SIZES)} or a ValidationSize, got {size!r}")
        size = SIZES[size]
    elif not isinstance(size, ValidationSize):
        raise ValueError(f"size must be one of {sorted(SIZES)} or a ValidationSize, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    if not isinstance(level, (int, float)) or not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    if not isinstance(mpmath_rtol, (int, float)) or not mpmath_rtol > 0 or not math.isfinite(mpmath_rtol):
        raise ValueError(f"mpmath_rtol must be a finite number > 0, got {mpmath_rtol!r}")
    model_set = set(MODELS) if models is None else set(models)
    unknown = sorted(model_set - set(MODELS))
    if unknown or not model_set:
        raise ValueError(f"models must be a non-empty subset of {list(MODELS)}, got {unknown or list(model_set)}")
    factors = dict(analytic_factor or {})
    for name, factor in factors.items():
        if name not in MODELS:
            raise ValueError(f"analytic_factor keys must be among {list(MODELS)}, got {name!r}")
        if not isinstance(factor, (int, float)) or not math.isfinite(factor):
            raise ValueError(f"analytic_factor[{name!r}] must be a finite number, got {factor!r}")

    import mpmath  # imported here: the rest of the module (used by notebook 02) does not need it

    checks = max(1, _simulated_check_count(model_set))
    per_check = 1.0 - (1.0 - level) / checks
    seed = int(seed)
    with mpmath.workdps(MPMATH_DIGITS):
        rows = _family_rows(model_set, size, seed, per_check)
        rows += _amplification_rows(model_set, size, seed, per_check)
        if "retrying_queue" in model_set:
            rows += _retrying_queue_rows(size, seed, per_check)

    order = {m: i for i, m in enumerate(MODELS)}
    rows.sort(key=lambda row: order[row.model])  # stable: keeps each model's rows in order
    records = []
    for row in rows:
        row.analytic = float(row.analytic) * float(factors.get(row.model, 1.0))
        verdict, relative = _verdict(row, mpmath_rtol)
        records.append({
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
        })
    return pd.DataFrame.from_records(records)


# ----------------------------------------------------------------------------------------
# Reading simulated retry-storm traces
# ----------------------------------------------------------------------------------------

def recovery_time(series: pd.DataFrame, after: float = 0.0, threshold: float = 0.5) -> float:
    """Seconds from ``after`` until the failure fraction drops below ``threshold`` for good.

    Parameters
    ----------
    series : pandas.DataFrame
        ``RetrySimulation.series`` (columns ``time`` and ``failure_fraction``, one row per
        interval of equal width).
    after : float
        Start of the clock (the end of a surge; 0 for a run started collapsed).
    threshold : float
        Failure fraction in (0, 1) that separates a failed interval from a served one.

    Returns
    -------
    float
        ``t - after`` for the start ``t`` of the first interval at or after ``after`` from which on
        every interval stays below ``threshold`` (0 if all do); ``inf`` if the last interval is
        still at or above it (not recovered within the run).

    Examples
    --------
    >>> s = pd.DataFrame({"time": [0.0, 10.0, 20.0, 30.0], "failure_fraction": [0.9, 1.0, 0.2, 0.1]})
    >>> recovery_time(s)
    20.0
    >>> recovery_time(s.iloc[:2])
    inf
    """
    if not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    times = series["time"].to_numpy(dtype=np.float64)
    failing = series["failure_fraction"].to_numpy(dtype=np.float64) >= threshold
    keep = times >= after - 1e-9
    times, failing = times[keep], failing[keep]
    if times.size == 0:
        raise ValueError(f"after must be before the end of the series, got {after!r}")
    if failing[-1]:
        return math.inf
    bad = np.flatnonzero(failing)
    if bad.size == 0:
        return 0.0
    return float(times[bad[-1] + 1] - after)


def simulated_metastability(servers: int, service_rate: float, timeout: float, load_shares: Sequence[float],
                            max_retries: Sequence[int] = (1, 2, 3, 5), *, backoff: Backoff | None = None,
                            horizon: float = 600.0, threshold: float = 0.5, seed: int = 0,
                            policy_factory: Callable[[int], Any] | None = None) -> pd.DataFrame:
    """The metastability map of :func:`reliability.retry.metastability_map`, with simulated points.

    At each (retry cap, load share) the retrying queue is simulated twice for ``horizon``
    seconds: once started empty (healthy) and once started with a backlog of ``4 c mu T``
    attempts (collapsed). A run *ends collapsed* when its failure fraction over the last third
    of the run is at least ``threshold``. The simulated verdict is ``"healthy"`` (both runs end
    served), ``"collapsed"`` (both end collapsed), ``"metastable"`` (each run stays where it
    started) or ``"flipped"`` (the healthy start collapses and the collapsed start recovers).

    Returns
    -------
    pandas.DataFrame
        The rows of ``metastability_map`` (analytic ``verdict``, ``onset_share``,
        ``recovery_share``...) with ``healthy_start_failure``, ``collapsed_start_failure``
        (failure fractions over the last third), ``simulated_verdict`` and ``agrees`` (the
        simulated verdict equals the analytic one; the analytic ``overloaded`` counts as
        ``collapsed`` and ``throttled`` as ``collapsed``: most attempts fail in both).

    Examples
    --------
    >>> frame = simulated_metastability(10, 1.0, 3.0, [0.2], max_retries=[3], horizon=300.0, seed=1)
    >>> frame[["verdict", "simulated_verdict", "agrees"]].values.tolist()
    [['healthy', 'healthy', True]]
    """
    if isinstance(servers, bool) or not isinstance(servers, (int, np.integer)) or servers < 1:
        raise ValueError(f"servers must be a whole number >= 1, got {servers!r}")
    if not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    analytic = metastability_map(servers, service_rate, timeout, load_shares, max_retries,
                                 policy_factory=policy_factory)
    factory = FixedRetries if policy_factory is None else policy_factory
    capacity = servers * service_rate
    backlog = int(math.ceil(4 * capacity * timeout))
    last_third = (horizon - horizon / 3.0, horizon)
    healthy_failure, collapsed_failure = [], []
    for i, row in enumerate(analytic.itertuples(index=False)):
        outcome = []
        for start, initial in (("healthy", 0), ("collapsed", backlog)):
            run = simulate_retrying_queue(servers, service_rate, row.arrival_rate, timeout=timeout,
                                          policy=factory(int(row.max_retries)), backoff=backoff,
                                          horizon=horizon, interval=horizon / 30.0, initial_backlog=initial,
                                          seed=np.random.SeedSequence(entropy=int(seed), spawn_key=(i, initial > 0)))
            outcome.append(run.window(*last_third).failure_fraction)
        healthy_failure.append(outcome[0])
        collapsed_failure.append(outcome[1])
    frame = analytic.copy()
    frame["healthy_start_failure"] = healthy_failure
    frame["collapsed_start_failure"] = collapsed_failure
    stays_healthy = frame["healthy_start_failure"] < threshold
    stays_collapsed = frame["collapsed_start_failure"] >= threshold
    frame["simulated_verdict"] = np.select(
        [stays_healthy & ~stays_collapsed, ~stays_healthy & stays_collapsed, stays_healthy & stays_collapsed],
        ["healthy", "collapsed", "metastable"], default="flipped",
    )
    comparable = frame["verdict"].replace({"overloaded": "collapsed", "throttled": "collapsed"})
    frame["agrees"] = comparable == frame["simulated_verdict"]
    return frame
