"""Every figure quantity of the vocabulary, measured from a :class:`~reliability.incident.timeline.Timeline`.

:func:`measure` reads one figure at one observation level and returns one value per sample, in the
unit the figure was published in, so it compares directly with :meth:`Figure.bounds`.
:func:`readings` says which levels a figure is read at: its own, or, when the statement did not
say, every level in its ``readings``, to be carried side by side and never chosen silently.

Intervals (``interval_seconds``, an averaging interval) shorter than the model's time step read one
step. A quantity that the model never reaches (no recovery within the run, no alternation) is
``inf``, so it meets no finite bound.

Examples
--------
>>> from reliability.incident import available_incidents, build_scenario, load
>>> incident = load(available_incidents()[0])
>>> scenario = build_scenario(incident, time_step=60.0)
>>> timeline = scenario.run(scenario.midpoints(), np.zeros(1, dtype=int))
>>> figure = next(f for f in incident.figures if f.role == "measured")
>>> measure(timeline, figure, readings(figure)[0]).shape
(1,)
"""

from __future__ import annotations

import numpy as np

from .arguments import check_figure, check_level, check_timeline
from .vocabulary import QUANTITIES, from_si

__all__ = ["measure", "readings", "MEASURES", "modelled"]


def readings(figure) -> tuple[str, ...]:
    """The observation levels a figure is read at (one, or the unknown level's readings)."""
    check_figure(figure)
    if not QUANTITIES[figure.quantity].failure:
        return ("attempts",) if figure.quantity != "capacity_share" else ("capacity",)
    if figure.observation_level == "unknown":
        return tuple(figure.readings)
    return (figure.observation_level,)


def modelled(figure) -> bool:
    """Whether a model is compared with this figure (measured, numeric, not context)."""
    check_figure(figure)
    return figure.role == "measured" and figure.quantity != "context" and figure.numeric


def _setting(figure, name):
    default, _ = QUANTITIES[figure.quantity].measure[name]
    return float(figure.measure.get(name, default))


def _seconds(timeline, moment) -> np.ndarray:
    if moment.event is not None:
        return timeline.event_time(moment.event)
    value = moment.time.value if moment.time.value is not None else moment.time.low
    return np.full(timeline.samples, timeline.incident.seconds(value))


def _between(timeline, window, default=(0.0, np.inf)):
    start = _seconds(timeline, window.start) if window is not None else np.full(timeline.samples, default[0])
    end = _seconds(timeline, window.end) if window is not None else np.full(timeline.samples, default[1])
    return (timeline.times[None, :] >= start[:, None]) & (timeline.times[None, :] < end[:, None])


def _scope(figure):
    return figure.scope.infrastructures


def _share_in(timeline, figure, level, mask):
    failed, total = timeline.scope_failures(figure.scope, level)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (failed * mask).sum(axis=1) / np.maximum((total * mask).sum(axis=1), 1e-12)


def _blocks(timeline, share_steps: np.ndarray, interval: float):
    """Mean of a per-step series over consecutive intervals; the intervals' end times."""
    width = max(1, int(round(interval / timeline.time_step)))
    usable = share_steps.shape[1] // width * width
    means = share_steps[:, :usable].reshape(share_steps.shape[0], -1, width).mean(axis=2)
    ends = timeline.times[:usable].reshape(-1, width)[:, -1] + timeline.time_step
    return means, ends


def _rolling(values: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Trailing mean over ``width`` steps (one width per sample).

    The differences of a running sum, taken as shifted slices for each distinct width (a published
    averaging interval gives one): the inference measures thousands of samples x hundreds of steps,
    where gathering the same columns element by element cost a fifth of a batch.
    """
    samples, steps = values.shape
    cumulative = np.zeros((samples, steps + 1))
    np.cumsum(values, axis=1, out=cumulative[:, 1:])
    count = np.arange(1, steps + 1)  # steps summed so far: the window while it is shorter than its width
    out = np.empty((samples, steps))
    for w in np.unique(width):
        rows = slice(None) if np.all(width == w) else width == w
        head = min(int(w) - 1, steps)  # the first steps, before a whole window: the mean since the start
        out[rows, :head] = (cumulative[rows, 1:head + 1] - 0.0) / count[:head]
        if head < steps:
            out[rows, head:] = (cumulative[rows, head + 1:] - cumulative[rows, :steps - head]) / int(w)
    return out


def _peak_series(timeline, figure, level):
    # a peak read at the same instant as another asks for that one's series too: work each out once
    memo = timeline.__dict__.setdefault("_peak_series", {})
    key = (figure.id, level, figure.scope, figure.averaging_interval)  # what the series depends on
    if key not in memo:
        memo[key] = _peak_series_of(timeline, figure, level)
    return memo[key]


def _peak_series_of(timeline, figure, level):
    interval = figure.averaging_interval
    if interval is None:
        interval = timeline.incident.figure(figure.same_instant_as).averaging_interval
    seconds = timeline.values.get(interval.path) if interval.prior is not None else None
    if seconds is None:
        seconds = np.full(timeline.samples, float(interval.si_value))
    width = np.maximum(1, np.round(np.asarray(seconds) / timeline.time_step)).astype(int)
    return _rolling(timeline.scope_failure_share(figure.scope, level), width)


def _peak_failure_rate(timeline, figure, level):
    mask = _between(timeline, figure.window)  # without a window: from the start on
    if figure.same_instant_as is not None:
        other = timeline.incident.figure(figure.same_instant_as)
        at = np.argmax(np.where(mask, _peak_series(timeline, other, level), -1.0), axis=1)
        return _peak_series(timeline, figure, level)[np.arange(timeline.samples), at]
    return np.where(mask, _peak_series(timeline, figure, level), -np.inf).max(axis=1)


def _failure_over_window(timeline, figure, level):
    return _share_in(timeline, figure, level, _between(timeline, figure.window))


def _availability_at(timeline, figure, level):
    at, half = _seconds(timeline, figure.at), _setting(figure, "interval_seconds") / 2
    t = timeline.times[None, :]
    mask = (t >= at[:, None] - half) & (t < at[:, None] + max(half, timeline.time_step))
    return 1.0 - _share_in(timeline, figure, level, mask)


def _last_bad(timeline, bad, ends, since):
    """Seconds from ``since`` to the end of the last bad interval (0 if none after it; inf if bad at the end)."""
    later = bad & (ends[None, :] > since[:, None])
    last = np.where(later.any(axis=1), ends[np.argmax(np.where(later, ends[None, :], -np.inf), axis=1)], since)
    return np.where(later[:, -1], np.inf, np.maximum(last - since, 0.0))


def _time_to_recovery(timeline, figure, level):
    since = _seconds(timeline, figure.since) if figure.since is not None else np.zeros(timeline.samples)
    shares, ends = _blocks(timeline, timeline.scope_failure_share(figure.scope, level), _setting(figure, "interval_seconds"))
    return _last_bad(timeline, shares > _setting(figure, "threshold"), ends, since)


def _total_impact_time(timeline, figure, level):
    interval = _setting(figure, "interval_seconds")
    shares, ends = _blocks(timeline, timeline.scope_failure_share(figure.scope, level), interval)
    start = ends - max(interval, timeline.time_step)
    if figure.window is not None:
        low, high = _seconds(timeline, figure.window.start), _seconds(timeline, figure.window.end)
        inside = (start[None, :] >= low[:, None]) & (start[None, :] < high[:, None])
    else:
        inside = np.broadcast_to(start[None, :] >= 0.0, shares.shape)  # the incident begins at its start
    width = ends[1] - ends[0] if len(ends) > 1 else timeline.time_step
    return ((shares > _setting(figure, "threshold")) & inside).sum(axis=1) * width


def _improvement_between_windows(timeline, figure, level):
    first = _share_in(timeline, figure, level, _between(timeline, figure.first))
    second = _share_in(timeline, figure, level, _between(timeline, figure.second))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(first > 0, second / np.maximum(first, 1e-300), np.where(second > 0, np.inf, 1.0))


def _alternation_cycle(timeline, figure, level):
    shares, ends = _blocks(timeline, timeline.scope_failure_share(figure.scope, level), _setting(figure, "interval_seconds"))
    mask = _between(timeline, figure.window)
    inside = mask[:, : shares.shape[1] * max(1, int(round(_setting(figure, "interval_seconds") / timeline.time_step)))]
    width = max(1, int(round(_setting(figure, "interval_seconds") / timeline.time_step)))
    inside = inside.reshape(shares.shape[0], -1, width).all(axis=2) if inside.size else inside
    down, up = _setting(figure, "down_threshold"), _setting(figure, "up_threshold")
    state = np.zeros(shares.shape[0], dtype=bool)
    cycles = np.zeros(shares.shape[0])
    for k in range(shares.shape[1]):
        went_down = inside[:, k] & ~state & (shares[:, k] > down)
        came_up = inside[:, k] & state & (shares[:, k] < up)
        cycles += came_up
        state = (state | went_down) & ~came_up
    span = inside.sum(axis=1) * (ends[1] - ends[0] if len(ends) > 1 else timeline.time_step)
    with np.errstate(divide="ignore"):
        return np.where(cycles > 0, span / np.maximum(cycles, 1), np.inf)


def _time_to_resolution(timeline, figure, level):
    since = _seconds(timeline, figure.since) if figure.since is not None else np.zeros(timeline.samples)
    interval = _setting(figure, "interval_seconds")
    shares, ends = _blocks(timeline, timeline.scope_failure_share(figure.scope, level), interval)
    loads, _ = _blocks(timeline, timeline.load(_scope(figure)), interval)
    bad = (shares > _setting(figure, "threshold")) | (np.abs(loads - 1.0) > _setting(figure, "load_tolerance"))
    return _last_bad(timeline, bad, ends, since)


def _capacity_share(timeline, figure, level):
    at = _seconds(timeline, figure.at)
    index = np.clip(np.searchsorted(timeline.times, at), 0, len(timeline.times) - 1)
    rows = np.arange(timeline.samples)
    values = []
    for infrastructure, weight in timeline.weights(_scope(figure)).items():
        run = timeline.runs[infrastructure]
        lost = run.lost[rows, index]
        value = {"lost": lost, "available": 1.0 - lost,
                 "added": run.added[rows, index] / timeline.normal_capacity[infrastructure]}[figure.state]
        values.append(weight[:, 0] * value)
    return np.sum(values, axis=0)


MEASURES = {
    "peak_failure_rate": _peak_failure_rate, "failure_over_window": _failure_over_window,
    "availability_at": _availability_at, "time_to_recovery": _time_to_recovery,
    "total_impact_time": _total_impact_time, "improvement_between_windows": _improvement_between_windows,
    "alternation_cycle": _alternation_cycle, "time_to_resolution": _time_to_resolution,
    "capacity_share": _capacity_share,
}


def measure(timeline, figure, level: str | None = None) -> np.ndarray:
    """The model's value of ``figure`` at ``level`` (default: its only reading), one per sample, in its unit.

    Raises ValueError for a figure a model is not compared with (context, text) or a level it is not read at.
    """
    check_timeline(timeline)
    check_figure(figure)
    check_level(level)
    if figure.quantity not in MEASURES or not figure.numeric:
        raise ValueError(f"figure {figure.id!r} ({figure.quantity}) is not compared with a model")
    levels = readings(figure)
    level = levels[0] if level is None else level
    if level not in levels:
        raise ValueError(f"level must be one of {', '.join(levels)} (the levels figure {figure.id!r} is read at), "
                         f"got {level!r}")
    si = MEASURES[figure.quantity](timeline, figure, "requests" if level in ("users", "capacity") else level)
    return np.asarray(from_si(np.asarray(si, dtype=float), figure.unit), dtype=float).reshape(-1)
