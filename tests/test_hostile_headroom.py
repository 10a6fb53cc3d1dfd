"""Hostile input to every public function and constructor of reliability.headroom.

As tests/test_hostile_retry.py (the same strategies and outcome classes, repeated here so each
module stands alone): hypothesis replaces one argument by a hostile value; under
warnings-as-errors the call answers a finite right number (records and frames without NaN) or a
``ValueError``/``TypeError`` naming the argument, a ``TypeError`` for what is not a number.
Bounded by the code (max_servers, max_surge and step limits), derandomized, never timed.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reliability import (
    Autoscaling,
    CapacityModel,
    failure_probability,
    failure_sweep,
    headroom_for_failure,
    headroom_sweep,
    largest_absorbed_surge,
    migration_tax,
    parse_retry_policy,
    pooled_requirement,
    servers_needed,
    side_state,
    split_failure,
    split_loads,
    split_requirement,
    surge_for_failure,
)


from hostile_harness import (  # noqa: E402  (tests/ is on sys.path under pytest)
    ARRAYS, EXTREME, HOSTILE, HOSTILE_VALUES, HUGE_INTS, NON_FINITE, NOT_NUMBERS, NUMBERISH,
    _holds_nan, _is_not_number, _same, attack, check_outcome,
)



# -- the calls -------------------------------------------------------------------------------
#: Arguments that take None or a string by design, and what of the hostile values they accept.
BY_DESIGN = {"capacity": (None,), "retry_policy": (None, "", "5"), "autoscaling": (None,), "target": (None,),
             "whole_servers": (True, False)}
#: Arguments that take text: a policy or a model by name, a side to surge.
TEXT = ("capacity", "retry_policy", "surge_on")
#: ``headroom`` is servers / base load - 1: NaN by definition on a side that carries no load
#: (documented on SideState and SideRequirement), so a zero load or share may show it.
ZERO_LOAD_NAN = ("base_load", "offered_load", "new_share")

test_capacity_model = attack(CapacityModel, dict(kind="erlang_c", wait_time=0.1, service_rate=1.0),
                             text=("kind",))
test_capacity_erlang_b = attack(CapacityModel.erlang_b, dict(service_rate=1.0))
test_capacity_engset = attack(CapacityModel.engset, dict(sources=100, service_rate=1.0))
test_capacity_erlang_c = attack(CapacityModel.erlang_c, dict(wait_time=0.1, service_rate=1.0))
test_capacity_erlang_a = attack(CapacityModel.erlang_a, dict(abandonment_rate=0.2, service_rate=1.0, metric="abandon"),
                                accepts={"metric": (None,)}, text=("metric",))
test_capacity_parse = attack(lambda capacity: CapacityModel.parse(capacity), dict(capacity="engset:200"),
                             text=("capacity",))
test_capacity_failure = attack(lambda servers, load: CapacityModel.erlang_c(0.1).failure(servers, load),
                               dict(servers=12, load=10.0))
test_capacity_with_sources = attack(lambda sources: CapacityModel.engset(100).with_sources(sources), dict(sources=50))
test_autoscaling = attack(Autoscaling, dict(max_scale=2.0, reaction_time=5.0))
test_autoscaling_scaled = attack(lambda servers: Autoscaling(2.0, 5.0).scaled(servers), dict(servers=10))
test_parse_retry_policy = attack(lambda retry_policy: parse_retry_policy(retry_policy), dict(retry_policy="fixed:3"),
                                 accepts=BY_DESIGN, text=TEXT)
test_split_loads = attack(split_loads, dict(offered_load=100.0, new_share=0.5))
test_failure_probability = attack(failure_probability, dict(servers=60, base_load=50.0, surge=1.5, retry_policy=3),
                                  accepts=BY_DESIGN, text=TEXT)
test_side_state = attack(side_state, dict(servers=60, base_load=50.0, surge=1.5, retry_policy=3), accepts=BY_DESIGN, text=TEXT,
                         allowed_nan=ZERO_LOAD_NAN)
test_split_failure = attack(split_failure, dict(old_servers=60, new_servers=60, offered_load=100.0, new_share=0.5,
                                                surge=1.5, surge_on="both"),
                            accepts=BY_DESIGN, text=TEXT, allowed_nan=ZERO_LOAD_NAN)
test_servers_needed = attack(servers_needed, dict(base_load=50.0, target=0.01, surge=1.5, retry_policy=3,
                                                  max_servers=10**6), accepts=BY_DESIGN, text=TEXT)
test_pooled_requirement = attack(pooled_requirement, dict(offered_load=100.0, target=0.01, surge=1.5),
                                 accepts=BY_DESIGN, text=TEXT, allowed_nan=ZERO_LOAD_NAN)
test_split_requirement = attack(split_requirement, dict(offered_load=100.0, new_share=0.5, target=0.01, surge=1.5),
                                accepts=BY_DESIGN, text=TEXT, allowed_nan=ZERO_LOAD_NAN)
# margin_ratio is NaN by design where the pooled margin is not positive (MigrationTax docstring)
test_migration_tax = attack(migration_tax, dict(offered_load=100.0, new_share=0.5, target=0.01, surge=1.5),
                            accepts=BY_DESIGN, text=TEXT, allowed_nan=("*",))
test_largest_absorbed_surge = attack(largest_absorbed_surge, dict(servers=60, base_load=50.0, target=0.01,
                                                                  max_surge=1000.0), accepts=BY_DESIGN, text=TEXT)
test_surge_for_failure = attack(surge_for_failure, dict(observed=(0.4, 0.6), servers=60, base_load=50.0),
                                accepts=BY_DESIGN, text=TEXT)
test_headroom_for_failure = attack(headroom_for_failure, dict(observed=(0.4, 0.6), surge=3.0, base_load=50.0),
                                   accepts=BY_DESIGN, text=TEXT)
test_headroom_sweep = attack(headroom_sweep, dict(offered_load=100.0, new_share=[0.5], target=0.01),
                             accepts=BY_DESIGN, text=TEXT, allowed_nan=ZERO_LOAD_NAN)
test_failure_sweep = attack(failure_sweep, dict(base_load=50.0, headroom=[0.2], surge=[1.5]), accepts=BY_DESIGN, text=TEXT)


# -- extreme but valid: the right limit, and why ---------------------------------------------

def test_a_load_far_beyond_the_servers_fails_every_attempt():
    # Erlang B: B(c, a) = 1 - c / a + O(1 / a^2) as a grows, so at 1e300 Erlangs on 10 slots it is 1
    assert failure_probability(10, 1e300) == 1.0
    assert failure_probability(10, 1e300, 1.0, retry_policy="fixed:3") == 1.0


def test_a_side_without_load_never_fails():
    # no requests, no failures: p = 0 whatever the servers, surge and retries
    state = side_state(60, 0.0, 1.5, retry_policy=3)
    assert state.failure == 0.0 and state.state == "stable"
    assert failure_probability(0, 0.0) == 0.0


def test_sizing_a_load_beyond_max_servers_names_base_load():
    with pytest.raises(ValueError, match="base_load=1e\\+300"):
        servers_needed(1e300, 0.01)


def test_a_surge_whose_retried_load_leaves_the_float_range_names_surge_and_base_load():
    with pytest.raises(ValueError, match="surge.*base_load"):
        failure_probability(60, 1e300, 1e10, retry_policy=3)
    with pytest.raises(ValueError, match="max_surge"):
        largest_absorbed_surge(60, 1e300, 0.01, max_surge=1e10)


def test_a_huge_capacity_absorbs_the_surge_of_its_overload_limit():
    # Erlang B far into overload: B(c, a) -> 1 - c / a, so B = 0.01 at a = c / 0.99 (to O(1 / sqrt(c)));
    # with 1e12 slots and 50 Erlangs the side absorbs a surge of about 1e12 / (0.99 x 50)
    surge = largest_absorbed_surge(10**12, 50.0, 0.01)
    assert surge == pytest.approx(1e12 / (0.99 * 50.0), rel=1e-5)


def test_kinds_and_metrics_that_are_not_strings_are_type_errors():
    with pytest.raises(TypeError, match="capacity.kind"):
        CapacityModel(kind=np.array(["erlang_b"]))
    with pytest.raises(TypeError, match="capacity"):
        failure_probability(10, 5.0, capacity=3)
