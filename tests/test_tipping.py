"""The tipping surface: trigger size x duration, simulated against the delayed fluid model."""

from __future__ import annotations

import math

import pytest

from reliability import Backoff
from reliability.validation.tipping import tipping_checks, tipping_surface

BACKOFF = Backoff(0.5, 10.0, "full")


def test_long_large_spikes_tip_short_small_ones_do_not_and_the_fluid_model_says_so():
    frame = tipping_surface(20, 1.0, 3.0, 3, 0.45, [3.0], [3.0, 40.0], backoff=BACKOFF, settle=400.0, seed=2)
    assert frame.simulated_tipped.tolist() == [False, True]
    assert frame.fluid_tips.tolist() == [False, True]
    assert frame.agrees.all()
    assert 3.0 < frame.fluid_min_duration[0] < 40.0


def test_a_tipped_queue_sends_every_attempt_and_a_recovered_one_about_one():
    frame = tipping_surface(20, 1.0, 3.0, 3, 0.45, [3.0], [3.0, 40.0], backoff=BACKOFF, settle=400.0, seed=2)
    recovered, tipped = frame.amplification_after.tolist()
    assert recovered == pytest.approx(1.05, abs=0.05)
    # r + 1 attempts per request (the sustaining effect), a little more: retries of the spike's own requests
    assert 3.9 < tipped < 4.3


def test_a_capacity_drop_tips_when_long_in_simulation_and_in_the_fluid_model():
    frame = tipping_surface(20, 1.0, 3.0, 3, 0.45, [4.0], [3.0, 60.0], trigger="capacity", backoff=BACKOFF,
                            settle=400.0, seed=2)
    assert frame.simulated_tipped.tolist() == [False, True]
    assert 3.0 < frame.fluid_min_duration[0] < 60.0 and frame.agrees.tolist() == [True, True]
    # 5 servers left for 9 requests/s: the chain tips the trigger's own queue within seconds
    assert 0.0 < frame.trigger_escape_mean[0] < 10.0


def test_a_small_spike_never_tips_in_the_fluid_model():
    frame = tipping_surface(20, 1.0, 3.0, 3, 0.45, [1.5], [30.0], backoff=BACKOFF, settle=300.0, seed=2)
    assert frame.fluid_min_duration[0] == math.inf and not frame.simulated_tipped[0]


@pytest.mark.parametrize("kwargs, match", [(dict(trigger="flood"), "trigger"), (dict(multiples=[0.5]), "multiples"),
                                           (dict(durations=[0.0]), "durations")])
def test_tipping_surface_refuses_bad_arguments(kwargs, match):
    args = dict(multiples=[2.0], durations=[10.0])
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        tipping_surface(20, 1.0, 3.0, 3, 0.45, **args)


def test_smoke_checks_run_both_trigger_kinds():
    frame = tipping_checks("smoke", seed=1)
    assert set(frame.trigger) == {"load", "capacity"}
    with pytest.raises(ValueError, match="size"):
        tipping_checks("huge")
