"""Time-series measures: recovery time, alternation, dominant period -- one of each, used everywhere."""

import math

import numpy as np
import pandas as pd
import pytest

import reliability
from reliability import dynamics, validation
from reliability.series import (
    Alternation,
    Periodicity,
    alternation,
    alternation_runs,
    alternation_states,
    dominant_period,
    recovery_time,
    trace_recovery_time,
)


def test_the_old_homes_give_the_one_implementation():
    assert dynamics.recovery_time is recovery_time
    assert dynamics.dominant_period is dominant_period is reliability.dominant_period
    assert dynamics.alternation_runs is alternation_runs is reliability.alternation_runs
    assert dynamics.Periodicity is Periodicity
    assert validation.recovery_time is trace_recovery_time is reliability.recovery_time


# --- recovery -------------------------------------------------------------------------------------------------

def test_recovery_is_the_start_of_the_sample_after_the_last_failure():
    times = [0.0, 60.0, 120.0, 180.0, 240.0]
    fraction = [0.5, 0.0, 0.3, 0.0, 0.0]
    assert recovery_time(times, fraction) == 180.0
    assert recovery_time(times, fraction, threshold=0.4) == 60.0
    assert recovery_time(times, fraction, threshold=0.5) == 0.0  # at the threshold is healthy
    assert recovery_time(times, fraction, after=120.0) == 60.0   # seconds from the start of the clock
    assert recovery_time(times, fraction, after=180.0) == 0.0
    assert recovery_time(times, [0.0, 0.0, 0.0, 0.0, 0.2]) == math.inf


def test_recovery_measures_several_series_at_once():
    times = np.arange(4) * 10.0
    fraction = np.array([[0.9, 0.0, 0.9], [0.0, 0.0, 0.9], [0.0, 0.0, 0.0], [0.0, 0.0, 0.5]])
    out = recovery_time(times, fraction)
    assert out.tolist() == [10.0, 0.0, math.inf]
    for g in range(3):
        assert recovery_time(times, fraction[:, g]) == out[g]


def test_recovery_start_tolerates_drift_in_summed_time_steps():
    times = np.cumsum(np.full(10, 0.1)) - 0.1  # 0.30000000000000004 and friends
    fraction = np.r_[np.ones(3), np.zeros(7)]
    assert recovery_time(times, fraction, after=0.3) == pytest.approx(0.0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(times=[0, 1], failure_fraction=[0.1]), "shapes"),
    (dict(times=[], failure_fraction=[]), "non-empty"),
    (dict(times=[0, 1], failure_fraction=[0.1, math.nan]), "failure_fraction must not be NaN"),
    (dict(times=[0, 1], failure_fraction=[0.1, 0.2], threshold=1.5), "threshold must be <= 1"),
    (dict(times=[0, 1], failure_fraction=[0.1, 0.2], threshold=-0.1), "threshold must be >= 0"),
    (dict(times=[0, 1], failure_fraction=[0.1, 0.2], after=5.0), "after must be before"),
    (dict(times=[0, 1], failure_fraction=[0.1, 0.2], after=math.inf), "after must be a finite number"),
])
def test_recovery_rejects_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        recovery_time(**kwargs)


def test_a_trace_fails_at_its_threshold_and_above():
    trace = pd.DataFrame({"time": [0.0, 10.0, 20.0, 30.0], "failure_fraction": [1.0, 0.5, 0.49, 0.0]})
    assert trace_recovery_time(trace) == 20.0            # 0.5 itself is a failed interval
    assert trace_recovery_time(trace, threshold=0.51) == 10.0
    assert trace_recovery_time(trace, after=10.0) == 10.0
    assert trace_recovery_time(trace.iloc[:2]) == math.inf
    with pytest.raises(ValueError, match="after"):
        trace_recovery_time(trace, after=40.0)
    with pytest.raises(TypeError, match="DataFrame"):
        trace_recovery_time({"time": [0.0]})
    with pytest.raises(ValueError, match="at least one interval"):
        trace_recovery_time(trace.iloc[:0])


# --- alternation ----------------------------------------------------------------------------------------------

def test_hysteresis_holds_the_state_between_the_thresholds():
    assert alternation_states([0.7, 0.95, 0.7, 0.5, 0.7]).tolist() == [False, True, True, False, False]
    assert alternation_states([]).tolist() == []
    assert alternation_runs([]) == ([], [])


def test_alternation_cycle_needs_two_complete_runs_of_each():
    square = np.tile([1.0] * 3 + [0.2] * 9, 10)
    found = alternation(square, time_step=10.0)
    assert isinstance(found, Alternation)
    assert (found.median_down_run, found.median_up_run, found.cycle) == (30.0, 90.0, 120.0)
    assert found.down_share == 0.25  # 3 samples of every 12
    once = alternation([0.1, 1.0, 0.1, 1.0, 0.1], time_step=1.0)   # two downs, one complete up
    assert (once.down_runs, once.up_runs, once.cycle) == (2, 1, math.inf)
    flat = alternation(np.full(20, 0.5), time_step=1.0)
    assert (flat.down_share, flat.median_down_run, flat.cycle) == (0.0, 0.0, math.inf)


def test_flapping_summary_reads_the_same_alternation():
    frame = pd.DataFrame({"time": np.arange(0, 1200, 10.0), "failure_fraction": np.tile([1.0] * 3 + [0.2] * 9, 10)})
    summary = dynamics.flapping_summary(frame, time_step=10.0)
    found = alternation(frame.failure_fraction, 10.0)
    assert (summary["cycle"], summary["median_down_run"], summary["median_up_run"], summary["down_share"]) == (
        found.cycle, found.median_down_run, found.median_up_run, found.down_share)


@pytest.mark.parametrize("call, message", [
    (lambda: alternation_runs([[0.1]]), "one-dimensional"),
    (lambda: alternation_runs([0.1], down_threshold=1.5), "down_threshold must be <= 1"),
    (lambda: alternation_runs([0.1], down_threshold=0.5, up_threshold=0.7), "up_threshold must be <= down_threshold"),
    (lambda: alternation([0.1], time_step=0.0), "time_step must be > 0"),
    (lambda: alternation([0.1, math.nan], time_step=1.0), "values must not be NaN"),
])
def test_alternation_rejects_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- dominant period ------------------------------------------------------------------------------------------

def test_dominant_period_of_a_square_wave_and_of_noise():
    t = np.arange(3600.0)
    wave = dominant_period(0.5 + 0.5 * np.sign(np.sin(2 * np.pi * t / 120.0)), 1.0)
    assert wave.period == pytest.approx(120.0) and wave.periodic and wave.autocorrelation > 0.9
    assert not dominant_period(np.random.default_rng(3).random(3600), 1.0).periodic
    flat = dominant_period(np.full(64, 0.2), 2.0)
    assert (flat.period, flat.periodic) == (math.inf, False)


def test_periodicity_uses_the_shared_record_repr():
    assert repr(Periodicity(90.0, 51.25, 11.1, 0.81234567, True)) == (
        "Periodicity(period=90, peak_ratio=51.25, threshold=11.1, autocorrelation=0.812346, periodic=True)")


@pytest.mark.parametrize("call, message", [
    (lambda: dominant_period([0.1] * 7, 1.0), "at least 8 samples"),
    (lambda: dominant_period([0.1] * 7 + [math.inf], 1.0), "values must be finite"),
    (lambda: dominant_period([0.1] * 8, -1.0), "time_step must be > 0"),
    (lambda: dominant_period(np.arange(100.0), 1.0, min_period=50.0, max_period=10.0), "min_period must be < max_period"),
    (lambda: dominant_period(np.arange(100.0), 1.0, min_period=30.0, max_period=31.0), "fewer than 2 frequencies"),
])
def test_dominant_period_rejects_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()
