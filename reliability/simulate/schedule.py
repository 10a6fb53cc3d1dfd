"""Piecewise-constant schedules (a request rate, a number of servers) and Poisson arrivals on them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .._validate import ArgumentTypeError, as_array, describe, number, whole
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
        times = _numbers("Schedule.times", self.times)
        values = _numbers("Schedule.values", self.values)
        if len(times) == 0 or len(times) != len(values):
            raise ValueError(
                f"Schedule.times and Schedule.values must be non-empty and of equal length, "
                f"got {len(times)} and {len(values)}"
            )
        if times[0] != 0.0:
            raise ValueError(f"Schedule.times[0] must be 0, got {describe(self.times[0])}")
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
        """``value`` for ever (a number >= 0)."""
        return cls((0.0,), (_checks.non_negative("value", value),))

    @classmethod
    def surge(cls, base: float, multiple: float, start: float, duration: float) -> "Schedule":
        """``base``, then ``multiple x base`` during ``[start, start + duration)``, then ``base`` again."""
        base = _checks.non_negative("base", base)
        start = _checks.non_negative("start", start)
        duration = _checks.positive("duration", duration)
        multiple = _checks.non_negative("multiple", multiple)
        peak, end = multiple * base, start + duration  # Python floats: inf on overflow, no warning
        if not math.isfinite(peak):
            raise ValueError(f"multiple x base must be finite, got multiple={multiple!r} x base={base!r}")
        if not math.isfinite(end) or (start > 0.0 and end <= start):
            raise ValueError(f"start + duration must be finite and after start, got start={start!r}, "
                             f"duration={duration!r}")
        if start == 0.0:
            return cls((0.0, duration), (peak, base))
        return cls((0.0, start, end), (base, peak, base))

    @classmethod
    def steps(cls, *pairs: tuple[float, float]) -> "Schedule":
        """From ``(time, value)`` pairs, the first at time 0: ``Schedule.steps((0, 10), (600, 6))``."""
        for i, pair in enumerate(pairs):
            if isinstance(pair, (str, bytes, dict)) or not isinstance(pair, (tuple, list, np.ndarray)) \
                    or len(pair) != 2:
                raise ValueError(f"Schedule.steps takes (time, value) pairs, got pairs[{i}]={describe(pair)}")
        return cls(tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))

    def __call__(self, t):
        """The value at time ``t >= 0`` (a number or an array; ``inf``: the last value)."""
        checked = as_array("t", t, minimum=0.0, allow_inf=True)
        idx = np.searchsorted(np.asarray(self.times), checked, side="right") - 1
        out = np.asarray(self.values)[np.maximum(idx, 0)]
        return float(out) if checked.ndim == 0 else out

    def cumulative(self, t) -> np.ndarray:
        """``integral of the schedule over [0, t]`` for an array of times ``t >= 0`` (inf beyond double range)."""
        times, values = np.asarray(self.times), np.asarray(self.values)
        t = as_array("t", t, minimum=0.0)
        with np.errstate(over="ignore", invalid="ignore"):  # value x time beyond 1.8e308 is inf
            at_breaks = np.concatenate(([0.0], np.cumsum(values[:-1] * np.diff(times))))
            idx = np.maximum(np.searchsorted(times, t, side="right") - 1, 0)
            return at_breaks[idx] + values[idx] * (t - times[idx])

    def integral(self, start: float, end: float) -> float:
        """``integral of the schedule over [start, end]`` (``0 <= start <= end``)."""
        start, end = _window(start, end)
        if start == end:
            return 0.0
        low, high = self.cumulative(np.array([start, end]))
        with np.errstate(invalid="ignore"):
            return float(high - low) if math.isfinite(low) else math.inf

    def maximum(self, start: float, end: float) -> float:
        """Largest value taken on ``[start, end)`` (the value at ``start`` when ``end == start``)."""
        start, end = _window(start, end)
        edges = self.times + (math.inf,)
        return max(v for v, a, b in zip(self.values, edges[:-1], edges[1:])
                   if b > start and (a < end or a <= start))


def _numbers(name: str, values: Any) -> tuple[float, ...]:
    """A sequence of real numbers as floats, each checked (bools, strings and None are not numbers)."""
    try:
        one_dimensional = np.ndim(values) == 1
    except ValueError:  # ragged
        one_dimensional = False
    if isinstance(values, (str, bytes, dict, set)) or values is None or not one_dimensional:
        raise ArgumentTypeError(f"{name} must be a sequence of numbers, got {describe(values)}")
    return tuple(number(f"{name}[{i}]", v, allow_inf=True) for i, v in enumerate(values))


def _window(start: Any, end: Any) -> tuple[float, float]:
    start = _checks.non_negative("start", start)
    end = _checks.non_negative("end", end)
    if end < start:
        raise ValueError(f"end must be >= start, got start={start!r}, end={end!r}")
    return start, end


def as_rate(name: str, value: Any) -> Schedule | Callable:
    """A request rate as a Schedule (a number becomes a constant one) or a function of time.

    A schedule's rates are held to :data:`~reliability.simulate._checks.MAX_RATE`, as a number is.
    """
    if isinstance(value, Schedule):
        if max(value.values) > _checks.MAX_RATE:
            raise ValueError(f"{name} schedule values must be <= {_checks.MAX_RATE:g}, got {max(value.values)!r}")
        return value
    if callable(value):
        return value
    checked = _checks.non_negative(name, value)
    if checked > _checks.MAX_RATE:
        raise ValueError(f"{name} must be <= {_checks.MAX_RATE:g} (beyond, the simulated clock underflows), "
                         f"got {describe(value)}")
    return Schedule.constant(checked)


def as_servers(value: Any) -> Schedule:
    """A number of servers as a Schedule of whole numbers, at most MAX_SERVERS (a constant one needs at least 1)."""
    if isinstance(value, Schedule):
        for i, v in enumerate(value.values):
            if not float(v).is_integer() or v > _checks.MAX_SERVERS:
                raise ValueError(f"servers schedule values must be whole numbers <= {_checks.MAX_SERVERS:,}, "
                                 f"got values[{i}]={v!r}")
        return value
    return Schedule.constant(whole("servers", value, 1, maximum=_checks.MAX_SERVERS))


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
