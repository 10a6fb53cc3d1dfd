"""Reading a failure series: when it recovered, how it alternates, and its dominant period.

Each measure is written once here and used by the time-stepped model, the incident figures,
the validation table and the notebooks alike:

- :func:`recovery_time` -- seconds from a start until the failure fraction stays low for good
  (:func:`trace_recovery_time` reads it from a simulated trace);
- :func:`alternation_runs` and :func:`alternation` -- the down and up runs of a flapping series,
  with hysteresis, and the cycle they make;
- :func:`dominant_period` -- the periodogram peak, checked against white noise and by
  autocorrelation.

Examples
--------
>>> recovery_time([0, 60, 120, 180], [0.5, 0.0, 0.3, 0.0])
180.0
>>> alternation(np.tile([1.0] * 3 + [0.2] * 9, 10), time_step=10.0).cycle
120.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._records import Record
from ._validate import as_array, number

__all__ = [
    "recovery_time",
    "trace_recovery_time",
    "alternation_states",
    "alternation_runs",
    "Alternation",
    "alternation",
    "Periodicity",
    "dominant_period",
]

# A sample time this close below the start of the clock counts as at it (sums of time steps drift).
_TIME_TOLERANCE = 1e-9


# ----------------------------------------------------------------------------------------
# Recovery
# ----------------------------------------------------------------------------------------

def recovery_time(times, failure_fraction, threshold: float = 0.01, after: float = 0.0):
    """Seconds from ``after`` until the failure fraction stays at or below ``threshold`` to the end.

    A sample *fails* when its failure fraction is above ``threshold``. Samples before ``after``
    are ignored. The series has recovered at the start of the sample that follows its last
    failing sample; it has not recovered (``inf``) if the last sample fails.

    Parameters
    ----------
    times : array_like, shape (n,)
        Start of each sample (s), increasing.
    failure_fraction : array_like, shape (n,) or (n, points)
        Failure fraction of each sample; a second axis measures several series at once.
    threshold : float
        Failure fraction in [0, 1] at or below which a sample is healthy.
    after : float
        Start of the clock (s), e.g. the end of a surge.

    Returns
    -------
    float or numpy.ndarray
        ``t - after`` for the start ``t`` of the first sample from which every sample is healthy
        (0 if every sample from ``after`` on is), ``inf`` if the last sample fails; one value per
        series for a two-dimensional ``failure_fraction``.

    Raises
    ------
    ValueError
        If the shapes disagree, a value is not finite, ``threshold`` is outside [0, 1], or no
        sample starts at or after ``after``.

    Examples
    --------
    >>> recovery_time([0, 60, 120, 180], [0.5, 0.0, 0.3, 0.0])
    180.0
    >>> recovery_time([0, 60, 120, 180], [0.5, 0.0, 0.3, 0.0], after=120.0)
    60.0
    >>> recovery_time([0, 60, 120], [0.5, 0.4, 0.3])
    inf
    >>> recovery_time([0, 60, 120], [[0.5, 0.0], [0.0, 0.0], [0.0, 0.2]])
    array([60., inf])
    """
    t = as_array("times", times)
    f = as_array("failure_fraction", failure_fraction)
    if t.ndim != 1 or t.size == 0 or f.ndim not in (1, 2) or f.shape[0] != t.size:
        raise ValueError(f"times must be one-dimensional and non-empty, and failure_fraction have as many "
                         f"rows, got shapes {t.shape} and {f.shape}")
    threshold = number("threshold", threshold, minimum=0.0, maximum=1.0)
    after = number("after", after)
    return _seconds_until_healthy(t, f > threshold, after)


def _seconds_until_healthy(times: np.ndarray, failing: np.ndarray, after: float):
    """The recovery rule on a mask of failing samples (time along the first axis)."""
    keep = times >= after - _TIME_TOLERANCE
    times, failing = times[keep], failing[keep]
    if times.size == 0:
        raise ValueError(f"after must be before the start of the last sample, got {after!r}")
    any_failing = failing.any(axis=0)
    last = times.size - 1 - np.argmax(failing[::-1], axis=0)
    following = np.minimum(last + 1, times.size - 1)
    seconds = np.where(any_failing, times[following] - after, 0.0)
    seconds = np.where(failing[-1], math.inf, seconds)
    return float(seconds) if seconds.ndim == 0 else seconds


def trace_recovery_time(trace: pd.DataFrame, after: float = 0.0, threshold: float = 0.5) -> float:
    """:func:`recovery_time` of a simulated trace, where an interval fails at ``threshold`` or above.

    Parameters
    ----------
    trace : pandas.DataFrame
        ``RetrySimulation.series`` (columns ``time`` and ``failure_fraction``, one row per
        interval of equal width).
    after : float
        Start of the clock (the end of a surge; 0 for a run started collapsed).
    threshold : float
        Failure fraction in [0, 1] that separates a failed interval (at or above it) from a
        served one (below it).

    Returns
    -------
    float
        Seconds from ``after`` until every interval stays below ``threshold`` (0 if all do);
        ``inf`` if the last interval is still at or above it (not recovered within the run).

    Examples
    --------
    >>> s = pd.DataFrame({"time": [0.0, 10.0, 20.0, 30.0], "failure_fraction": [0.9, 1.0, 0.2, 0.1]})
    >>> trace_recovery_time(s)
    20.0
    >>> trace_recovery_time(s.iloc[:2])
    inf
    """
    if not isinstance(trace, pd.DataFrame) or not {"time", "failure_fraction"} <= set(trace.columns):
        raise TypeError(f"trace must be a DataFrame with columns 'time' and 'failure_fraction', got {type(trace).__name__}")
    threshold = number("threshold", threshold, minimum=0.0, maximum=1.0)
    # "at or above" a float is "above" the float just below it: one rule, exactly this boundary.
    just_below = math.nextafter(threshold, -math.inf)  # math: no underflow warning at threshold 0
    times = as_array("trace['time']", trace["time"].to_numpy())
    fraction = as_array("trace['failure_fraction']", trace["failure_fraction"].to_numpy())
    if times.size == 0:
        raise ValueError("trace must have at least one interval")
    return _seconds_until_healthy(times, fraction > just_below, number("after", after))


# ----------------------------------------------------------------------------------------
# Alternation (flapping)
# ----------------------------------------------------------------------------------------

def _check_thresholds(down_threshold: float, up_threshold: float) -> tuple[float, float]:
    down = number("down_threshold", down_threshold, minimum=0.0, maximum=1.0)
    up = number("up_threshold", up_threshold, minimum=0.0, maximum=1.0)
    if up > down:
        raise ValueError(f"up_threshold must be <= down_threshold, got {up_threshold!r} > {down_threshold!r}")
    return down, up


def _one_dimensional(values) -> np.ndarray:
    x = as_array("values", values)
    if x.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {x.shape}")
    return x


def alternation_states(values, down_threshold: float = 0.9, up_threshold: float = 0.6) -> np.ndarray:
    """Down (True) or up (False) at each sample, with hysteresis.

    A sample is *down* when the failure share exceeds ``down_threshold`` and *up* when it is below
    ``up_threshold``; in between the state does not change (the first sample is up unless above
    ``down_threshold``), so noise around one threshold is not counted as flapping.

    Examples
    --------
    >>> alternation_states([0.1, 1.0, 0.7, 0.2]).tolist()
    [False, True, True, False]
    """
    x = _one_dimensional(values)
    down, up = _check_thresholds(down_threshold, up_threshold)
    state = np.empty(x.shape, dtype=bool)
    current = False
    for i, v in enumerate(x):
        if v > down:
            current = True
        elif v < up:
            current = False
        state[i] = current
    return state


def alternation_runs(values, down_threshold: float = 0.9, up_threshold: float = 0.6) -> tuple[list[int], list[int]]:
    """Lengths (in samples) of the down runs and up runs of a failure series, with hysteresis.

    The states are those of :func:`alternation_states`. The first and last runs are dropped
    (they are cut by the window).

    Examples
    --------
    >>> alternation_runs([0.1, 1.0, 1.0, 0.7, 0.2, 0.2, 0.95, 0.3])
    ([3, 1], [2])
    """
    return _complete_runs(alternation_states(values, down_threshold, up_threshold))


def _complete_runs(state: np.ndarray) -> tuple[list[int], list[int]]:
    if state.size == 0:
        return [], []
    edges = np.flatnonzero(np.diff(state.astype(np.int8))) + 1
    runs = np.split(state, edges)[1:-1]
    return [r.size for r in runs if r[0]], [r.size for r in runs if not r[0]]


@dataclass(frozen=True, repr=False)
class Alternation(Record):
    """How a failure series alternates between down and up.

    ``down_share`` is the share of samples down; ``median_down_run`` and ``median_up_run`` (s)
    the median lengths of the complete runs (0 if there are none); ``cycle`` (s) their sum,
    ``inf`` unless there are at least two complete runs of each (one of each is not a cycle
    seen twice); ``down_runs`` and ``up_runs`` count the complete runs.
    """

    down_share: float
    median_down_run: float
    median_up_run: float
    cycle: float
    down_runs: int
    up_runs: int


def alternation(values, time_step: float, down_threshold: float = 0.9, up_threshold: float = 0.6) -> Alternation:
    """The down/up runs of an evenly sampled failure series and the cycle they make.

    Parameters
    ----------
    values : array_like, shape (n,)
        Failure share per sample.
    time_step : float
        Sampling interval (s).
    down_threshold, up_threshold : float
        The hysteresis of :func:`alternation_states`.

    Examples
    --------
    >>> alternation(np.tile([1.0] * 3 + [0.2] * 9, 10), time_step=10.0)
    Alternation(down_share=0.25, median_down_run=30, median_up_run=90, cycle=120, down_runs=9, up_runs=9)
    """
    dt = number("time_step", time_step, minimum=0.0, strict=True)
    state = alternation_states(values, down_threshold, up_threshold)
    downs, ups = _complete_runs(state)
    down_run = float(np.median(downs)) * dt if downs else 0.0
    up_run = float(np.median(ups)) * dt if ups else 0.0
    return Alternation(
        down_share=float(state.mean()) if state.size else 0.0,
        median_down_run=down_run,
        median_up_run=up_run,
        cycle=down_run + up_run if len(downs) >= 2 and len(ups) >= 2 else math.inf,
        down_runs=len(downs),
        up_runs=len(ups),
    )


# ----------------------------------------------------------------------------------------
# Dominant period
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class Periodicity(Record):
    """The dominant period of a series and how clearly it stands out.

    ``period`` (s) is the peak of the periodogram within ``[min_period, max_period]``;
    ``peak_ratio`` its power over the mean power in that band; ``threshold`` the ratio that
    white noise exceeds with probability 1 % (``ln(bins / 0.01)``, from the exponential
    distribution of periodogram ordinates); ``autocorrelation`` the series' autocorrelation at
    the lag nearest the period. ``periodic`` is ``peak_ratio > threshold`` and a positive
    autocorrelation. A constant series has ``period = inf`` and is not periodic.
    """

    period: float
    peak_ratio: float
    threshold: float
    autocorrelation: float
    periodic: bool


def _band(n: int, dt: float, min_period: float | None, max_period: float | None) -> tuple[float, float]:
    """The periods searched, in samples; by default from 2 steps (Nyquist) to a third of the series (3 cycles).

    In samples, not seconds: with a time step of 1e-308 s or 1e308 s, periods in seconds over-
    or underflow (``min_period / time_step`` is a Python float: inf or 0, without a warning).
    """
    lo = 2.0 if min_period is None else number("min_period", min_period, minimum=0.0, strict=True) / dt
    hi = n / 3.0 if max_period is None else number("max_period", max_period, minimum=0.0, strict=True) / dt
    if not lo < hi:
        raise ValueError(f"min_period must be < max_period, got {lo * dt!r} and {hi * dt!r} s "
                         f"(time_step={dt!r} s, {n} samples)")
    return lo, hi


def dominant_period(values, time_step: float, min_period: float | None = None,
                    max_period: float | None = None) -> Periodicity:
    """Dominant period of an evenly sampled series (periodogram peak, checked by autocorrelation).

    Parameters
    ----------
    values : array_like
        The series (e.g. failure fraction per step), at least 8 samples.
    time_step : float
        Sampling interval (s).
    min_period, max_period : float, optional
        Band searched; default from 2 steps (Nyquist) to a third of the series (3 cycles).

    Examples
    --------
    >>> t = np.arange(3600.0)
    >>> dominant_period(0.5 + 0.5 * np.sign(np.sin(2 * np.pi * t / 90.0)), 1.0).period
    90.0
    >>> rng = np.random.default_rng(0)
    >>> dominant_period(rng.random(3600), 1.0).periodic
    False
    """
    x = as_array("values", values)
    if x.ndim != 1 or x.size < 8:
        raise ValueError(f"values must be a one-dimensional series of at least 8 samples, got shape {x.shape}")
    dt = number("time_step", time_step, minimum=0.0, strict=True)
    n = x.size
    lo_samples, hi_samples = _band(n, dt, min_period, max_period)
    scale = float(np.abs(x).max())
    if scale > 1e150:  # a series of 1e300s: scaled, so that its mean and power stay finite
        x = x / scale
    x = x - x.mean()
    if not np.any(np.abs(x) > 1e-12):
        return Periodicity(math.inf, 0.0, math.inf, 0.0, False)
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(n)  # cycles per sample
    with np.errstate(divide="ignore", under="ignore"):
        band = (freqs >= 1.0 / hi_samples) & (freqs <= 1.0 / lo_samples) & (freqs > 0)
    if band.sum() < 2:
        raise ValueError(f"the band [min_period, max_period] = [{lo_samples * dt:g}, {hi_samples * dt:g}] s holds "
                         f"fewer than 2 frequencies of a {n:,}-sample series at time_step={dt:g} s")
    band_power = power[band]
    peak = int(np.argmax(band_power))
    period_samples = float(1.0 / freqs[band][peak])
    period = period_samples * dt  # inf if beyond the float range, as a float rounds it
    ratio = float(band_power[peak] / band_power.mean())
    threshold = math.log(band.sum() / 0.01)
    lag = int(round(period_samples))
    acf = float(np.dot(x[:-lag], x[lag:]) / np.dot(x, x)) if 0 < lag < n else 0.0
    return Periodicity(period, ratio, threshold, acf, bool(ratio > threshold and acf > 0.0))
