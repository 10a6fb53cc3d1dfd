"""How long a metastable retrying queue stays healthy: escape times of the backlog chain.

The mean-field model (:mod:`.queue`) says a retrying queue is *bistable* between its recovery
and onset thresholds; a finite queue leaves its healthy state by chance all the same, and what
an operator needs is how long that takes. Here the backlog ``Q`` (attempts in the system,
abandoned ones included, as in the fluid model :mod:`.fluid`) is a birth-death chain:

* births (attempts arriving) at the quasi-static rate ``lambda_Q = lambda0 * A(p(Q))``, with
  ``p(Q)`` the exact FCFS probability that an attempt finding ``Q`` in the system times out
  (:func:`.fluid.conditional_failure`) and ``A`` the policy's amplification;
* deaths (departures) at ``mu * min(Q, c)``.

Its rest points are the fluid equilibria (healthy ``Q_h``, unstable ``Q_u``), and its mean
first-passage time from an empty queue to a tipping backlog is exact for the chain:

``E[tau_N] = sum_{k < N} (sum_{j <= k} pi_j) / (lambda_k pi_k)``,
``pi_j = prod_{i < j} lambda_i / mu_{i+1}``.

Its logarithm is, to leading order, the **quasi-potential barrier**
``Delta Phi = sum_{Q_h <= k < Q_u} log(mu_{k+1} / lambda_k)`` (the WKB / large-deviation
exponent): ``E[tau] ~ exp(Delta Phi)``, and ``Delta Phi`` grows in proportion to the size of
the system (``c``, ``c mu T``) at a fixed load share. The approximation treats attempts as a
Poisson stream whose rate follows the backlog at once; real retries come a timeout plus a
backoff later, in bursts, so the chain is a model to check against the simulator
(:func:`reliability.simulate.escape.simulate_escape_times`), which notebook 05 does. It holds where
the escape is rare on the time scale of a timeout (``E[tau] >> T``), i.e. inside the
metastable band; near the onset threshold the barrier vanishes and the escape time is the
fluid travel time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize

from ..queues._kernels import log_sum_exp
from .._records import Record
from .._validate import as_array, number
from . import fluid

__all__ = ["EscapeEstimate", "backlog_chain", "band_over_axes", "escape_time", "escape_table",
           "recovery_time_estimate", "safe_load", "tip_probability"]


@dataclass(frozen=True, repr=False)
class EscapeEstimate(Record):
    """Time for a healthy retrying queue to tip, from the backlog birth-death chain.

    Attributes
    ----------
    arrival_rate : float
        Base request rate ``lambda0``.
    load_share : float
        ``lambda0 / (c mu)``.
    healthy_backlog, critical_backlog : float
        Fluid rest points ``Q_h`` and ``Q_u`` (both ``inf`` where the fluid model has no healthy
        state; ``Q_u = inf`` where it has no unstable one). The fluid healthy state outlives the
        mean-field onset a little, because it has no queueing noise.
    tip_backlog : int
        Backlog whose first passage counts as tipping.
    barrier : float
        Quasi-potential barrier ``Delta Phi`` between ``Q_h`` and ``Q_u``, in nats (0 where the
        healthy state is gone, ``inf`` where no collapse exists).
    mean_time : float
        Mean first-passage time from an empty queue to ``tip_backlog``, seconds (inf: never).
    """

    arrival_rate: float
    load_share: float
    healthy_backlog: float
    critical_backlog: float
    tip_backlog: int
    barrier: float
    mean_time: float


def default_tip_backlog(queue) -> int:
    """A backlog at which almost every attempt times out: ``c + 2 c mu T`` (the wait is about 2 T)."""
    return int(math.ceil(queue.servers + 2.0 * queue.capacity * queue.timeout))


def backlog_chain(queue, arrival_rate: float, top: int) -> tuple[np.ndarray, np.ndarray]:
    """Birth and death rates of the backlog chain on states ``0 .. top``.

    Examples
    --------
    >>> from reliability.retry import RetryingQueue
    >>> births, deaths = backlog_chain(RetryingQueue(2, 1.0, 5.0, 0), 1.0, 3)
    >>> births.tolist(), deaths.tolist()
    ([1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 2.0, 2.0])
    """
    q = np.arange(top + 1, dtype=np.float64)
    births = arrival_rate * queue._amplification(fluid.conditional_failure(queue, q))
    deaths = queue.service_rate * np.minimum(q, queue.servers)
    return births, deaths


def _log_weights(births: np.ndarray, deaths: np.ndarray) -> np.ndarray:
    """``log pi_j`` of the chain (``pi_0 = 1``), the negative quasi-potential."""
    with np.errstate(divide="ignore"):
        steps = np.log(births[:-1]) - np.log(deaths[1:])
    return np.concatenate([[0.0], np.cumsum(steps)])


def _mean_passage_up(births: np.ndarray, log_pi: np.ndarray, level: int) -> float:
    """Mean first-passage time from state 0 to ``level``."""
    if level == 0:
        return 0.0
    head = np.logaddexp.accumulate(log_pi[:level])
    with np.errstate(divide="ignore"):
        terms = head - np.log(births[:level]) - log_pi[:level]
    log_mean = float(log_sum_exp(terms)) if np.all(np.isfinite(terms)) else math.inf
    # beyond about e^709 s the mean is inf as a float (and astronomically longer than any horizon)
    return math.exp(log_mean) if log_mean < 709.0 else math.inf


def _barrier(queue, arrival_rate: float, log_pi: np.ndarray) -> tuple[float, float, float]:
    """``(Q_h, Q_u, Delta Phi)`` from the fluid rest points and the chain's weights."""
    roots = fluid.fluid_equilibria(queue, arrival_rate)
    if not roots:
        return math.inf, math.inf, 0.0
    healthy = roots[0]
    if len(roots) < 2:
        return healthy, math.inf, math.inf
    critical = roots[1]
    lo, hi = int(round(healthy)), min(int(round(critical)), log_pi.size - 1)
    return healthy, critical, float(max(0.0, log_pi[lo] - log_pi[hi]))


def _tip_level(queue, tip_backlog) -> int:
    if tip_backlog is None:
        return default_tip_backlog(queue)
    return int(as_array("tip_backlog", tip_backlog, minimum=1.0, integer=True))


def _chain_mean(queue, arrival_rate: float, level: int) -> float:
    """The chain's mean passage time alone (no fluid rest points): what the safe-load search needs."""
    if arrival_rate <= 0:
        return math.inf
    births, deaths = backlog_chain(queue, arrival_rate, level)
    return _mean_passage_up(births, _log_weights(births, deaths), level)


def escape_time(queue, arrival_rate, *, tip_backlog=None) -> EscapeEstimate:
    """Mean time for a retrying queue started empty to reach ``tip_backlog`` (the chain's answer).

    Parameters
    ----------
    queue : RetryingQueue
        The queue and its client policy.
    arrival_rate : float
        Base request rate ``lambda0 >= 0``.
    tip_backlog : int, optional
        Backlog that counts as tipped (default ``c + 2 c mu T``: nearly every attempt times
        out there, and the backlog runs away beyond it).

    Examples
    --------
    >>> from reliability.retry import RetryingQueue
    >>> queue = RetryingQueue(20, 1.0, 3.0, 3)
    >>> slow, fast = escape_time(queue, 13.0), escape_time(queue, 16.0)
    >>> slow.mean_time > 10 * fast.mean_time > 0, slow.barrier > fast.barrier > 0
    (True, True)
    """
    lam0 = number("arrival_rate", arrival_rate, minimum=0.0)
    level = _tip_level(queue, tip_backlog)
    births, deaths = backlog_chain(queue, lam0, level)
    log_pi = _log_weights(births, deaths)
    healthy, critical, barrier = _barrier(queue, lam0, log_pi)
    mean = _mean_passage_up(births, log_pi, level) if lam0 > 0 else math.inf
    return EscapeEstimate(arrival_rate=lam0, load_share=lam0 / queue.capacity, healthy_backlog=healthy,
                          critical_backlog=critical, tip_backlog=level, barrier=barrier, mean_time=mean)


def tip_probability(mean_time, horizon):
    """P(tip within ``horizon``) for an exponential escape time of mean ``mean_time``: ``1 - e^{-H/E tau}``.

    Examples
    --------
    >>> round(tip_probability(100.0, 100.0), 6)
    0.632121
    """
    mean = as_array("mean_time", mean_time, minimum=0.0, strict_minimum=True)
    h = as_array("horizon", horizon, minimum=0.0)
    with np.errstate(divide="ignore"):
        out = -np.expm1(-h / mean)
    return float(out) if out.ndim == 0 else out


def safe_load(queue, horizon, probability=0.01, *, tip_backlog=None) -> float:
    """Highest load share at which P(tip within ``horizon``) <= ``probability`` (chain estimate).

    The escape time falls with load, so the answer is the root of
    ``E[tau](lambda0) = horizon / -log(1 - probability)``, found by bisection between the
    recovery and the onset threshold. Below the recovery threshold no collapsed state exists
    (a passage there is a transient burst of failures that clears by itself), so the answer is
    never below it.

    Examples
    --------
    >>> from reliability.retry import RetryingQueue
    >>> queue = RetryingQueue(20, 1.0, 3.0, 3)
    >>> hour, day = safe_load(queue, 3600.0), safe_load(queue, 86400.0)
    >>> queue.recovery_threshold() / 20 < day < hour < queue.onset_threshold() / 20
    True
    """
    h = number("horizon", horizon, minimum=0.0, strict=True)
    prob = number("probability", probability, minimum=0.0, maximum=1.0, strict=True)
    if prob >= 1.0:
        return queue.onset_threshold() / queue.capacity
    needed = math.log(h) - math.log(-math.log1p(-prob))
    level = _tip_level(queue, tip_backlog)

    def gap(share: float) -> float:
        mean = _chain_mean(queue, share * queue.capacity, level)
        return (math.log(mean) if mean < math.inf else 1e3) - needed

    high = queue.onset_threshold() / queue.capacity
    low = min(queue.recovery_threshold() / queue.capacity, high)
    if low <= 0.0 or gap(low) < 0:
        return low
    if gap(high) >= 0:
        return high
    return float(optimize.brentq(gap, low, high, xtol=1e-5))


def recovery_time_estimate(queue, arrival_rate, backlog, *, level=None) -> float:
    """Mean time for the chain to drain from ``backlog`` down to ``level`` (default ``c``).

    Infinite when the chain drifts upwards at large backlogs (load at or above the recovery
    threshold). A geometric tail beyond the tabulated backlogs closes the sum.

    Examples
    --------
    >>> from reliability.retry import RetryingQueue
    >>> queue = RetryingQueue(20, 1.0, 3.0, 3)
    >>> short, long = recovery_time_estimate(queue, 4.0, 300), recovery_time_estimate(queue, 4.0, 600)
    >>> 0 < short < long, recovery_time_estimate(queue, 6.0, 300)
    (True, inf)
    """
    lam0 = number("arrival_rate", arrival_rate, minimum=0.0)
    start = int(as_array("backlog", backlog, minimum=0.0, integer=True))
    low = queue.servers if level is None else int(as_array("level", level, minimum=0.0, integer=True))
    if start <= low:
        return 0.0
    top = max(start, default_tip_backlog(queue)) + 10
    births, deaths = backlog_chain(queue, lam0, top)
    ratio = births[-1] / deaths[-1]
    if ratio >= 1.0:
        return math.inf
    log_pi = _log_weights(births, deaths)
    # sum_{j >= k} pi_j, with the geometric tail beyond ``top`` (births and deaths constant there)
    tail = log_pi[-1] + math.log(ratio) - math.log1p(-ratio) if ratio > 0 else -math.inf
    suffix = np.logaddexp.accumulate(np.append(log_pi, tail)[::-1])[::-1][:-1]
    k = np.arange(low + 1, start + 1)
    return float(np.sum(np.exp(suffix[k] - np.log(deaths[k]) - log_pi[k])))


def escape_table(queue, load_shares, *, tip_backlog=None) -> pd.DataFrame:
    """Chain estimates over load shares, one row each (the fields of :class:`EscapeEstimate`).

    Examples
    --------
    >>> from reliability.retry import RetryingQueue
    >>> frame = escape_table(RetryingQueue(20, 1.0, 3.0, 3), [0.7, 0.8])
    >>> bool(frame.mean_time.is_monotonic_decreasing)
    True
    """
    shares = np.atleast_1d(as_array("load_shares", load_shares, minimum=0.0))
    rows = [escape_time(queue, float(s) * queue.capacity, tip_backlog=tip_backlog) for s in shares]
    return pd.DataFrame([vars(r) for r in rows])


def band_over_axes(servers, timeouts, *, service_rate: float = 1.0, policy=3, horizons=(3600.0, 86400.0),
                   probability: float = 0.01) -> pd.DataFrame:
    """The metastable band and the safe loads over server count x timeout (tidy, one row per pair).

    Returns
    -------
    pandas.DataFrame
        ``servers``, ``timeout``, ``idle_failure`` (``e^{-mu T}``: attempts that time out with
        no queue at all), ``recovery_share``, ``onset_share``, ``band_width`` and one
        ``safe_share_<h>h`` column per horizon (P(tip within it) <= ``probability``).

    Examples
    --------
    >>> frame = band_over_axes([20, 200], [3.0, 10.0], horizons=[3600.0])
    >>> frame.sort_values("onset_share").servers.tolist(), bool(frame.recovery_share.eq(0.25).all())
    ([20, 200, 20, 200], True)
    """
    from .queue import RetryingQueue  # the queue imports nothing from here; kept local to stay a leaf

    counts = [int(as_array("servers", c, minimum=1.0, integer=True)) for c in np.atleast_1d(servers)]
    spans = np.atleast_1d(as_array("timeouts", timeouts, minimum=0.0, strict_minimum=True))
    hours = np.atleast_1d(as_array("horizons", horizons, minimum=0.0, strict_minimum=True))
    rows = []
    for c in counts:
        for t in spans:
            queue = RetryingQueue(c, service_rate, float(t), policy)
            onset, recovery = queue.onset_threshold() / queue.capacity, queue.recovery_threshold() / queue.capacity
            row = {"servers": c, "timeout": float(t), "idle_failure": math.exp(-queue.service_rate * float(t)),
                   "recovery_share": recovery, "onset_share": onset, "band_width": max(0.0, onset - recovery)}
            for h in hours:
                row[f"safe_share_{h / 3600:g}h"] = safe_load(queue, float(h), probability)
            rows.append(row)
    return pd.DataFrame(rows)
