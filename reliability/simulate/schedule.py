"""Piecewise-constant schedules (a request rate, a number of servers) and Poisson arrivals on them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .._validate import whole
from . import _checks

__all__ = ["Schedule", "as_rate", "as_servers", "poisson_arrivals"]


@dataclass(frozen=True)
class Schedule:
    """A piecewise-constant function of time: ``values[i]`` on ``[times[i], times[i+1])``.

    ``times[0]`` must be 0; the last value holds for ever. Used for a request rate that
    changes in time (a surge) and for a number of servers that changes (an outage, a
    scale-up).

    Examples
    --------
    >>> surge = Schedule.surge(7.0, multiple=5.0, start=100.0, duration=60.0)
    >>> surge
    Schedule(times=(0.0, 100.0, 160.0), values=(7.0, 35.0, 7.0))
    >>> surge(130.0), surge.integral(0.0, 200.0)
    (35.0, 3080.0)
    """

    times: tuple[float, ...]
    values: tuple[float, ...]

    def __post_init__(self):
        try:
            times = tuple(float(t) for t in self.times)
            values = tuple(float(v) for v in self.values)
        except (TypeError, ValueError):
            raise ValueError(
                f"Schedule.times and Schedule.values must be sequences of numbers, got {self.times!r}, {self.values!r}"
            ) from None
        if len(times) == 0 or len(times) != len(values):
            raise ValueError(
                f"Schedule.times and Schedule.values must be non-empty and of equal length, "
                f"got {len(times)} and {len(values)}"
            )
        if times[0] != 0.0:
            raise ValueError(f"Schedule.times[0] must be 0, got {self.times[0]!r}")
        for i, t in enumerate(times):
            if not math.isfinite(t) or (i > 0 and t <= times[i - 1]):
                raise ValueError(f"Schedule.times must be finite and strictly increasing, got times[{i}]={t!r}")
        for i, v in enumerate(values):
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"Schedule.values must be finite numbers >= 0, got values[{i}]={v!r}")
        object.__setattr__(self, "times", times)
        object.__setattr__(self, "values", values)

    @classmethod
    def constant(cls, value: float) -> "Schedule":
        return cls((0.0,), (value,))

    @classmethod
    def surge(cls, base: float, multiple: float, start: float, duration: float) -> "Schedule":
        """``base``, then ``multiple x base`` during ``[start, start + duration)``, then ``base`` again."""
        start = _checks.non_negative("start", start)
        duration = _checks.positive("duration", duration)
        multiple = _checks.non_negative("multiple", multiple)
        if start == 0.0:
            return cls((0.0, duration), (multiple * base, base))
        return cls((0.0, start, start + duration), (base, multiple * base, base))

    @classmethod
    def steps(cls, *pairs: tuple[float, float]) -> "Schedule":
        """From ``(time, value)`` pairs, the first at time 0: ``Schedule.steps((0, 10), (600, 6))``."""
        return cls(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))

    def __call__(self, t):
        scalar = np.ndim(t) == 0
        idx = np.searchsorted(np.asarray(self.times), np.asarray(t, dtype=np.float64), side="right") - 1
        out = np.asarray(self.values)[np.maximum(idx, 0)]
        return float(out) if scalar else out

    def cumulative(self, t) -> np.ndarray:
        """``integral of the schedule over [0, t]`` for an array of times ``t >= 0``."""
        times, values = np.asarray(self.times), np.asarray(self.values)
        t = np.asarray(t, dtype=np.float64)
        at_breaks = np.concatenate(([0.0], np.cumsum(values[:-1] * np.diff(times))))
        idx = np.maximum(np.searchsorted(times, t, side="right") - 1, 0)
        return at_breaks[idx] + values[idx] * (t - times[idx])

    def integral(self, start: float, end: float) -> float:
        """``integral of the schedule over [start, end]`` (``0 <= start <= end``)."""
        low, high = self.cumulative(np.array([start, end]))
        return float(high - low)

    def maximum(self, start: float, end: float) -> float:
        """Largest value taken on ``[start, end)``."""
        edges = self.times + (math.inf,)
        return max(v for v, a, b in zip(self.values, edges[:-1], edges[1:]) if b > start and a < end)


def as_rate(name: str, value: Any) -> Schedule | Callable:
    """A request rate as a Schedule (a number becomes a constant one) or a function of time."""
    if isinstance(value, Schedule) or callable(value):
        return value
    return Schedule.constant(_checks.non_negative(name, value))


def as_servers(value: Any) -> Schedule:
    """A number of servers as a Schedule of whole numbers (a constant one needs at least 1)."""
    if isinstance(value, Schedule):
        for i, v in enumerate(value.values):
            if not float(v).is_integer():
                raise ValueError(f"servers schedule values must be whole numbers, got values[{i}]={v!r}")
        return value
    return Schedule.constant(whole("servers", value, 1))


def poisson_arrivals(rate, horizon: float, max_rate: float | None, rng) -> np.ndarray:
    """Poisson arrival times on [0, horizon) for a schedule (exact) or a callable (thinning).

    Examples
    --------
    >>> times = poisson_arrivals(Schedule.constant(2.0), 100.0, None, np.random.default_rng(0))
    >>> bool(np.all(np.diff(times) >= 0)) and 150 < times.size < 250
    True
    """
    if isinstance(rate, Schedule):
        edges = list(rate.times) + [math.inf]
        parts = []
        for v, a, b in zip(rate.values, edges[:-1], edges[1:]):
            b = min(b, horizon)
            if a >= horizon:
                break
            count = rng.poisson(v * (b - a)) if v > 0 else 0
            parts.append(np.sort(rng.uniform(a, b, count)))
        return np.concatenate(parts) if parts else np.zeros(0)
    return _thinned_arrivals(rate, horizon, max_rate, rng)


def _thinned_arrivals(rate: Callable, horizon: float, max_rate: float, rng) -> np.ndarray:
    """Arrivals of a time-varying rate ``rate(t) <= max_rate``: candidates at max_rate, each kept
    with probability ``rate(t) / max_rate``."""
    count = rng.poisson(max_rate * horizon)
    candidates = np.sort(rng.uniform(0.0, horizon, count))
    try:
        values = np.asarray(rate(candidates), dtype=np.float64)
        if values.shape != candidates.shape:
            raise TypeError
    except (TypeError, ValueError):
        # a function of one float, not of an array
        values = np.array([float(rate(float(t))) for t in candidates])
    bad = ~np.isfinite(values) | (values < 0) | (values > max_rate)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"arrival_rate(t) must be in [0, max_arrival_rate={max_rate:g}], got {values[i]!r} at t={candidates[i]:g}"
        )
    keep = rng.uniform(0.0, max_rate, count) < values
    return candidates[keep]
