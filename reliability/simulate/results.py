"""Results of a retrying-queue run: the per-interval series, its summary over a window.

Examples
--------
>>> series = pd.DataFrame({
...     "time": [0.0, 1.0], "offered": [10, 10], "attempts": [12, 14], "retries": [2, 4],
...     "successes": [9, 8], "timeouts": [3, 6], "blocked": [0, 0], "throttled": [0, 0],
...     "failed_requests": [0, 1], "queue_length": [1.0, 2.0], "busy_servers": [4.0, 5.0],
...     "servers": [5.0, 5.0], "wasted_work": [0.5, 1.0]})
>>> summarise(series, 0.0, 2.0, 1.0)
RetrySummary(start=0, end=2, offered=20, attempts=26, retries=6, successes=17, timeouts=9, blocked=0, throttled=0, failed_requests=1, amplification=1.3, goodput=8.5, failure_fraction=0.346154, request_failure_fraction=0.0555556, mean_queue_length=1.5, mean_busy_servers=4.5, utilisation=0.9, wasted_fraction=0.166667)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._records import Record, format_value
from .._validate import number

__all__ = ["RetrySummary", "RetrySimulation", "summarise", "occupancy"]

_TOTALS = ("offered", "attempts", "retries", "successes", "timeouts", "blocked", "throttled", "failed_requests")


@dataclass(frozen=True, repr=False)
class RetrySummary(Record):
    """Totals and ratios of a retrying-queue run over the window ``[start, end)``.

    ``amplification`` is attempts sent per new request, ``goodput`` successful requests per
    second, ``failure_fraction`` the share of attempt outcomes that were failures (timeouts,
    blocked and locally throttled attempts: what an error-rate dashboard shows),
    ``request_failure_fraction`` the share of finished requests that failed for good,
    ``utilisation`` busy servers over servers, and ``wasted_fraction`` the share of server
    time spent on attempts whose client had given up.
    """

    start: float
    end: float
    offered: int
    attempts: int
    retries: int
    successes: int
    timeouts: int
    blocked: int
    throttled: int
    failed_requests: int
    amplification: float
    goodput: float
    failure_fraction: float
    request_failure_fraction: float
    mean_queue_length: float
    mean_busy_servers: float
    utilisation: float
    wasted_fraction: float


def _ratio(numerator: float, denominator: float) -> float:
    # an empty window has no failures to report: 0, not NaN
    return float(numerator) / float(denominator) if denominator > 0 else 0.0


def summarise(series: pd.DataFrame, start: float, end: float, interval: float) -> RetrySummary:
    """Summary over the whole intervals of ``series`` inside ``[start, end)``."""
    rows = series[(series["time"] >= start - 1e-9 * interval) & (series["time"] + interval <= end + 1e-9 * interval)]
    if rows.empty:
        raise ValueError(f"window [{start!r}, {end!r}) holds no whole interval of the series")
    total = {k: int(rows[k].sum()) for k in _TOTALS}
    duration = len(rows) * interval
    failures = total["timeouts"] + total["blocked"] + total["throttled"]
    busy = float(rows["busy_servers"].sum()) * interval
    servers = float(rows["servers"].sum()) * interval
    return RetrySummary(
        start=float(rows["time"].iloc[0]),
        end=float(rows["time"].iloc[-1]) + interval,
        amplification=_ratio(total["attempts"], total["offered"]),
        goodput=total["successes"] / duration,
        failure_fraction=_ratio(failures, failures + total["successes"]),
        request_failure_fraction=_ratio(total["failed_requests"], total["failed_requests"] + total["successes"]),
        mean_queue_length=float(rows["queue_length"].mean()),
        mean_busy_servers=busy / duration,
        utilisation=_ratio(busy, servers),
        wasted_fraction=_ratio(float(rows["wasted_work"].sum()), busy),
        **total,
    )


@dataclass(frozen=True)
class RetrySimulation:
    """Result of :func:`simulate_retrying_queue`: a tidy time series and its summary.

    ``series`` has one row per interval: ``time`` (interval start, s), ``servers`` (mean over
    the interval), ``arrival_rate`` (mean base request rate, 1/s), counts of ``offered`` new
    requests, ``attempts`` sent, of which ``retries``, attempt outcomes ``successes`` (goodput),
    ``timeouts`` (the client gave up), ``blocked`` (no room in the system or no free
    connection), ``throttled`` (rejected locally by the policy), ``failures`` (the three
    together), ``failed_requests`` (requests abandoned for good), ``failure_fraction``
    (failures over all outcomes; 0 in an interval without outcomes), ``goodput`` (successes per
    second), time averages ``queue_length`` (attempts waiting) and ``busy_servers``, and
    ``wasted_work`` (server-seconds spent on attempts whose client gave up).

    Its repr shows the main parameters, then the summary.
    """

    series: pd.DataFrame = field(repr=False)
    summary: RetrySummary
    horizon: float
    interval: float
    parameters: dict = field(repr=False)

    def window(self, start: float = 0.0, end: float | None = None) -> RetrySummary:
        """Summary over the whole intervals inside ``[start, end)`` (``end`` defaults to the horizon)."""
        start = number("start", start, minimum=0.0)
        end = self.horizon if end is None else number("end", end, minimum=0.0)
        if end <= start:
            raise ValueError(f"window end must be > start, got start={start!r}, end={end!r}")
        try:
            return summarise(self.series, start, end, self.interval)
        except ValueError:
            raise ValueError(f"window [start={start!r}, end={end!r}) holds no whole interval of {self.interval!r} s "
                             f"of the run (0 to {self.horizon!r} s)") from None

    def __repr__(self) -> str:
        # the parameters that say which run this was, then its summary on a line of its own
        p = self.parameters
        return (
            f"RetrySimulation(servers={format_value(p['servers'])}, service_rate={format_value(p['service_rate'])}, "
            f"arrival_rate={format_value(p['arrival_rate'])}, timeout={format_value(p['timeout'])}, "
            f"policy={p['policy']!r}, horizon={format_value(self.horizon)} s, seed={p['seed']!r})\n  {self.summary!r}"
        )


def occupancy(begins: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Integral over each bin of #{k : begins[k] <= t < ends[k]} (ends may be inf).

    ``G(v, x) = sum_{v_k <= x} (x - v_k)`` is the integral up to ``x`` of the count of ``v``
    already passed; the occupancy integral up to ``x`` is ``G(begins, x) - G(ends, x)``.

    Examples
    --------
    >>> occupancy(np.array([0.5]), np.array([1.5]), np.array([0.0, 1.0, 2.0])).tolist()
    [0.5, 0.5]
    """
    def cumulative(values):
        v = np.sort(values)
        finite = v[np.isfinite(v)]
        sums = np.concatenate(([0.0], np.cumsum(finite)))
        k = np.searchsorted(finite, edges, side="right")
        return k * edges - sums[k]

    total = cumulative(begins) - cumulative(ends)
    return np.maximum(np.diff(total), 0.0)
