"""Reading a simulated time series: the measures themselves are in :mod:`reliability.series`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..series import alternation, dominant_period
from ._checks import check_instance, check_number, check_text

__all__ = ["flapping_summary"]

# Reading a time series: the measures themselves are in reliability.series

def flapping_summary(series: pd.DataFrame, *, time_step: float, start: float = 0.0, end: float | None = None,
                     min_period: float | None = None, max_period: float | None = None,
                     down_threshold: float = 0.9, up_threshold: float = 0.6,
                     column: str = "failure_fraction") -> dict:
    """Period and up/down run lengths of an aggregated failure-fraction series.

    ``series`` needs columns ``time`` and ``column`` (default ``failure_fraction``; use
    ``failure_probability`` for a :meth:`Timeline.server_view` or ``user_failure_probability``)
    at spacing ``time_step`` (one infrastructure, service or server). Returns the
    :class:`Periodicity` fields plus the mean failure share, the share of samples down, the
    median lengths (s) of complete down and up runs (:func:`alternation_runs`) and ``cycle``,
    their sum (inf unless there are at least two of each).
    """
    check_instance("", "series", series, pd.DataFrame)
    check_text("", "column", column)
    for name in ("time", column):
        if name not in series:
            raise ValueError(f"series has no column {name!r} (columns: {', '.join(map(str, series.columns))})")
    start = check_number("", "start", start, minimum=-np.inf)
    end = None if end is None else check_number("", "end", end, minimum=-np.inf, allow_inf=True)
    frame = series[(series["time"] >= start) & ((series["time"] < end) if end is not None else True)]
    values = frame[column].to_numpy(dtype=np.float64)
    if values.size < 8:
        raise ValueError(f"series must hold at least 8 samples from start={start!r} to end={end!r}, "
                         f"got {values.size}")
    periodicity = dominant_period(values, time_step, min_period, max_period)
    runs = alternation(values, time_step, down_threshold, up_threshold)
    return {
        "period": periodicity.period,
        "peak_ratio": periodicity.peak_ratio,
        "threshold": periodicity.threshold,
        "autocorrelation": periodicity.autocorrelation,
        "periodic": periodicity.periodic,
        "failure_fraction": float(values.mean()) if values.size else 0.0,
        "down_share": runs.down_share,
        "median_down_run": runs.median_down_run,
        "median_up_run": runs.median_up_run,
        "cycle": runs.cycle,
    }
