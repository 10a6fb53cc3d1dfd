"""Estimates across replications, and the summary of a simulated M/M/c-family queue.

Examples
--------
>>> e = estimate([0.30, 0.32, 0.34, 0.36], level=0.95)
>>> e
0.33 [0.288915, 0.371085] (0.95 CI, R=4)
>>> e.contains(1 / 3), round(e.half_width, 4)
(True, 0.0411)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._records import format_value
from .._validate import as_array, describe, number

__all__ = ["Estimate", "estimate", "QueueSimulation"]


@dataclass(frozen=True)
class Estimate:
    """A simulation estimate: the mean over independent replications and its t-interval.

    ``low`` and ``high`` bound a two-sided Student-t confidence interval at ``level`` with
    ``replications - 1`` degrees of freedom. Its repr reads ``value [low, high] (level CI, R=n)``.

    Examples
    --------
    >>> Estimate(value=0.25, low=0.2, high=0.3, level=0.95, replications=20)
    0.25 [0.2, 0.3] (0.95 CI, R=20)
    """

    value: float
    low: float
    high: float
    level: float
    replications: int

    @property
    def half_width(self) -> float:
        return 0.5 * (self.high - self.low)

    def contains(self, reference: float) -> bool:
        """True when ``reference`` lies inside the confidence interval (ends included)."""
        return bool(self.low <= float(reference) <= self.high)

    def __repr__(self) -> str:
        # an interval reads better as "value [low, high]" than as five named fields
        return (
            f"{format_value(self.value)} [{format_value(self.low)}, {format_value(self.high)}] "
            f"({format_value(self.level, 3)} CI, R={self.replications})"
        )


def estimate(samples: Any, level: float) -> Estimate:
    """The mean of one value per replication, with its Student-t interval at ``level``.

    Replications that all agree (or a single one) give an interval of width 0.

    Examples
    --------
    >>> estimate([1.0, 1.0, 1.0], level=0.99)
    1 [1, 1] (0.99 CI, R=3)
    """
    samples = as_array("samples", samples)
    if samples.ndim != 1 or samples.size == 0:
        raise ValueError(f"samples must be a non-empty one-dimensional sequence, got shape {samples.shape}")
    level = number("level", level, minimum=0.0, strict=True)
    if level >= 1.0:
        raise ValueError(f"level must be in (0, 1), got {describe(level)}")
    n = samples.size
    # Squares of 1e-250 underflow and of 1e250 overflow: far from 1, take the moments of x / scale.
    scale = float(np.abs(samples).max())
    scale = scale if not 1e-150 < scale < 1e150 and scale > 0 else 1.0
    scaled = samples / scale
    mean = float(scaled.mean()) * scale
    spread = float(scaled.std(ddof=1)) * scale if n > 1 else 0.0
    # Python floats: an interval beyond the float range has infinite ends, without a warning
    half = float(stats.t.ppf(0.5 + level / 2.0, n - 1)) * spread / math.sqrt(n) if spread > 0 else 0.0
    return Estimate(value=mean, low=mean - half, high=mean + half, level=level, replications=n)


@dataclass(frozen=True)
class QueueSimulation:
    """Summary of a simulated M/M/c-family queue (steady state, after warm-up).

    Every probability is a share of *arrivals* after the warm-up, blocked and abandoning
    customers included: ``p_wait`` arrivals that found every server busy and joined the queue
    (abandoning customers included, as in Erlang A), ``p_block`` arrivals turned away,
    ``p_abandon`` arrivals that left the queue before service, ``mean_wait`` the mean time in
    queue over all arrivals (blocked: 0; abandoning: the time they waited), ``wait_sf[i]`` the
    share of arrivals whose time in queue exceeds ``wait_times[i]``, and ``utilisation`` the
    mean share of busy servers. ``customers`` counts every simulated customer, warm-up included
    (for the Engset model: the arrivals counted, and ``arrival_rate`` is the rate of one idle
    source with ``service_rate`` 1).

    Its repr is one line of parameters, then one line per estimate.
    """

    model: str
    servers: int
    capacity: int | None
    arrival_rate: float
    service_rate: float
    abandonment_rate: float
    customers: int
    customers_per_replication: int
    warmup: int
    replications: int
    level: float
    seed: Any
    p_wait: Estimate
    p_block: Estimate
    p_abandon: Estimate
    mean_wait: Estimate
    utilisation: Estimate
    wait_times: tuple[float, ...] = ()
    wait_sf: tuple[Estimate, ...] = ()
    sources: int | None = None

    def wait_sf_at(self, wait_time: float) -> Estimate:
        """The estimate of ``P(W > wait_time)`` for one of the ``wait_times`` simulated."""
        wanted = number("wait_time", wait_time, minimum=0.0)
        for t, value in zip(self.wait_times, self.wait_sf):
            if t == wanted:
                return value
        raise ValueError(f"wait_time must be one of the simulated wait_times {self.wait_times}, "
                         f"got {describe(wait_time)}")

    def to_frame(self) -> pd.DataFrame:
        """One row per estimate: ``metric``, ``wait_time`` (for ``wait_sf``), ``value``, ``low``, ``high``."""
        rows = []
        for name in ("p_wait", "p_block", "p_abandon", "mean_wait", "utilisation"):
            e = getattr(self, name)
            rows.append({"metric": name, "wait_time": np.nan, "value": e.value, "low": e.low, "high": e.high})
        for t, e in zip(self.wait_times, self.wait_sf):
            rows.append({"metric": "wait_sf", "wait_time": t, "value": e.value, "low": e.low, "high": e.high})
        frame = pd.DataFrame(rows)
        frame["level"] = self.level
        frame["replications"] = self.replications
        return frame

    def __repr__(self) -> str:
        # several estimates with their intervals: one per line, not one long line of fields
        extra = "" if self.capacity is None else f", capacity={self.capacity}"
        if self.sources is not None:
            extra += f", sources={self.sources}"
        patience = f", abandonment_rate={format_value(self.abandonment_rate)}" if self.abandonment_rate > 0 else ""
        lines = [
            f"QueueSimulation({self.model}: servers={self.servers}{extra}, "
            f"arrival_rate={format_value(self.arrival_rate)}, service_rate={format_value(self.service_rate)}"
            f"{patience}; {self.replications} x {self.customers_per_replication:,} customers, "
            f"warm-up {self.warmup:,}, seed={self.seed!r})",
            f"  p_wait      = {self.p_wait!r}",
            f"  p_block     = {self.p_block!r}",
            f"  p_abandon   = {self.p_abandon!r}",
            f"  mean_wait   = {self.mean_wait!r}",
            f"  utilisation = {self.utilisation!r}",
        ]
        lines += [f"  P(W > {format_value(t)}) = {e!r}" for t, e in zip(self.wait_times, self.wait_sf)]
        return "\n".join(lines)
