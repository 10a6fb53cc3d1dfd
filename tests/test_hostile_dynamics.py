"""Hostile input to the public calls of reliability.dynamics (issue 10, the time-stepped model).

Specific cases first (each failed on the code before: a crash with another exception, a warning, a
NaN, an allocation that does not end, or an error that did not name the argument), then
hypothesis attacks through tests/hostile_harness.py: one argument of a valid call replaced by a
hostile value, under warnings-as-errors, must give a finite answer or a ValueError/TypeError naming
the argument (a TypeError for what is not a number or not the object the argument takes). Every
run here is a few steps long, so the time is bounded by the code's own limits, never by a timer.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from reliability.dynamics import (
    MAX_ENGINE_RETRIES, MAX_STEPS, Autoscaler, BlockingTable, CapacityAdded, CapacityLoss, Clients, ConnectionCeiling,
    ConnectionCost, ConnectionLimit, Contention, Failover, HealthCheck, Infrastructure, LoadShedding, RetryStorm,
    Rollback, Service, StepProfile, Surge, Trigger, binomial_counts, connections_for_headroom, delay_kernel,
    flapping_summary, normal_offered_load, poisson_counts, run, simulate_incident, simulate_sweep, trigger_shape,
)
from reliability.retry import Backoff, FixedRetries

from hostile_harness import attack  # noqa: E402  (tests/ is on sys.path under pytest)

DB = Infrastructure("db", 2, 30.0)
API = Service("api", "db", 1000.0)
COST = ConnectionCost(0.02, 0.05, 0.05)
TIMES = np.array([5.0, 15.0, 25.0])


def _quiet(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="warn"):
            return call(*args, **kwargs)


# -- bounded work ------------------------------------------------------------------------------

@pytest.mark.parametrize("horizon, time_step", [(1e9, 1.0), (1e308, 1.0), (60.0, 1e-308), (1e308, 1e-308)])
def test_huge_runs_are_refused_before_anything_is_allocated(horizon, time_step):
    # the original allocated np.arange(steps) first: 1e9 steps is 8 GB, 1e308 numpy's own error
    for call in (lambda: run([DB], [API], horizon=horizon, time_step=time_step),
                 lambda: simulate_incident([API], [DB], cost=COST, clients=Clients(), trigger=Trigger(),
                                           horizon=horizon, time_step=time_step),
                 lambda: simulate_sweep(DB, [API], cost=COST, clients=Clients(), horizon=horizon,
                                        time_step=time_step)):
        with pytest.raises(ValueError, match=rf"horizon=.* over time_step=.* more than the 4e\+06 steps"):
            call()


def test_retry_caps_beyond_the_engine_are_refused():
    with pytest.raises(ValueError, match=f"max_retries of the clients' policy must be <= {MAX_ENGINE_RETRIES}"):
        run([DB], [API], clients=Clients(policy=FixedRetries(10**6)), horizon=10.0)
    with pytest.raises(ValueError, match="max_retries must be <= 100"):
        simulate_sweep(DB, [API], cost=COST, clients=Clients(), horizon=10.0, max_retries=[1, 10**9])


def test_kernels_and_tables_refuse_sizes_they_cannot_hold():
    with pytest.raises(ValueError, match="extra and the backoff delay"):
        delay_kernel(Backoff(1.0, 30.0, "full"), 1, 1.0, 1e308)
    with pytest.raises(ValueError, match="slots must hold 1 to 4,096 distinct slot counts"):
        BlockingTable(np.arange(1.0, 5000.0))
    with pytest.raises(ValueError, match="points must be a whole number <= "):
        StepProfile.neutral(TIMES, 10**12)


# -- wrong types name the argument -------------------------------------------------------------

@pytest.mark.parametrize("call, argument", [
    (lambda: simulate_incident([API], [DB], cost=COST, clients=Clients(), trigger=None, horizon=10.0), "trigger"),
    (lambda: run("db", [API], horizon=10.0), "platforms"),
    (lambda: run([DB], [API], horizon=10.0, mechanisms=5), "mechanisms"),
    (lambda: run([DB], np.array(5.0), horizon=10.0), "services"),
    (lambda: run([DB], [API], horizon=10.0, seed=True), "seed"),
    (lambda: run([DB], [API], horizon=10.0, cost=1e308), "cost"),
    (lambda: Infrastructure(None, 2, 30.0), "Infrastructure.name"),
    (lambda: Infrastructure("db", 2, 30.0, health_check="often"), "Infrastructure.health_check"),
    (lambda: Infrastructure("db", 2, 30.0, routing=np.array(["balanced"])), "Infrastructure.routing"),
    (lambda: Surge("s", np.array([1.0, 2.0])), "Surge.target"),
    (lambda: CapacityLoss(0.5, platforms=float("nan")), "CapacityLoss.platforms"),
    (lambda: LoadShedding(0.5, platforms={"a": 1}), "LoadShedding.platforms"),
    (lambda: RetryStorm(waits=1), "RetryStorm.waits"),
    (lambda: ConnectionCost(retries_need_new_connection="yes"), "retries_need_new_connection"),
    (lambda: CapacityAdded(servers="2"), "CapacityAdded.servers"),
    (lambda: normal_offered_load(2000.0, cost=None), "cost"),
    (lambda: COST.holding_time("5"), "new_connection_multiple"),
    (lambda: trigger_shape(None, 0.0, 10.0, 1.0), "t"),
    (lambda: Surge("s", "requests", 2.0).shape(["5", "6"]), "times"),
    (lambda: poisson_counts(0.5, [1.0]), "rng"),
    (lambda: delay_kernel(0.5, 1, 1.0, 0.0), "backoff"),
    (lambda: flapping_summary([0.1] * 20, time_step=1.0), "series"),
])
def test_wrong_types_raise_a_type_error_naming_the_argument(call, argument):
    with pytest.raises(TypeError, match=argument):
        call()


# -- values: no NaN, no warning, no other exception ---------------------------------------------

def test_elementwise_helpers_refuse_nan_and_huge_ints_instead_of_answering_nan():
    # the original: holding_time(nan) -> nan, lost([nan]) -> [nan], holding_time(10**400) -> OverflowError
    with pytest.raises(ValueError, match="new_connection_multiple must not be NaN"):
        COST.holding_time(math.nan)
    with pytest.raises(ValueError, match="times must not be NaN, got nan at index 1"):
        CapacityLoss(0.5, ramp=10.0).lost([1.0, math.nan])
    with pytest.raises(ValueError, match="new_connection_multiple must be a finite number within the float range"):
        COST.load_multiple(10**400)
    with pytest.raises(ValueError, match="request_rate must be >= 0"):
        normal_offered_load(-1.0, COST)


def test_extreme_but_valid_values_give_the_limit_without_a_warning():
    # a rollback or ramp of 1e-308 s is a step (the slope overflowed: RuntimeWarning before)
    assert _quiet(trigger_shape, [5.0, 15.0], 0.0, 10.0, 1e-308).tolist() == [1.0, 0.0]
    assert _quiet(CapacityLoss(0.5, ramp=1e-308).lost, [1.0]).tolist() == [0.5]
    assert _quiet(Rollback("s", 0.0, 1e-308).removed, [1.0]).tolist() == [1.0]
    # a tiny load is blocked with probability 0; a zero mean draws 0 (an int had no .astype)
    assert _quiet(BlockingTable(np.array([10.0])), np.array([1e-308])).tolist() == [0.0]
    assert _quiet(poisson_counts, np.random.default_rng(0), 0.0).tolist() == 0.0
    assert _quiet(binomial_counts, np.random.default_rng(0), 0, 0.5).tolist() == 0.0
    # an interval longer than the run holds no whole interval (numpy's dimension error before)
    sweep = simulate_sweep(DB, [API], cost=COST, clients=Clients(), horizon=20.0)
    assert sweep.failure_fraction(1e308).shape == (0, 1)


def test_errors_name_the_argument_that_made_them():
    frame = run([DB], [API], horizon=120.0, seed=1).aggregate(10.0)
    with pytest.raises(ValueError, match=r"at least 8 samples from start=1e\+308"):
        flapping_summary(frame, time_step=10.0, start=1e308)
    with pytest.raises(ValueError, match="new_connection_multiple"):
        simulate_sweep(DB, [API], cost=COST, clients=Clients(), horizon=10.0, new_connection_multiple=1e10)
    with pytest.raises(ValueError, match="request_multiple must be <= 1e\\+12"):
        simulate_sweep(DB, [API], cost=COST, clients=Clients(), horizon=10.0, request_multiple=1e308)
    with pytest.raises(ValueError, match="headroom and request_rate must broadcast"):
        connections_for_headroom([1.0, 2.0], COST, 2, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="which is not among the platforms"):
        run([], [API], horizon=10.0)
    with pytest.raises(ValueError, match="connections_per_server must be <= 1e\\+12"):
        Infrastructure("db", 2, 1e308)


def test_valid_runs_are_unchanged_by_the_checks():
    timeline = run([DB], [API], mechanisms=[Surge("s", "requests", 3.0, 10.0, 20.0)],
                   events=[Rollback("s", 15.0)], horizon=30.0, seed=1)
    again = run([DB], [API], mechanisms=(Surge("s", "requests", 3.0, 10.0, 20.0),),
                events=(Rollback("s", 15.0),), horizon=30.0, seed=1)
    pd.testing.assert_frame_equal(timeline.series, again.series)
    assert not timeline.series.select_dtypes("number").isna().to_numpy().any()


# -- hypothesis: one hostile argument at a time ----------------------------------------------------

PLATFORMS = {"platforms": (None, "abc", "5", ["5", "6"])}
test_infrastructure = attack(Infrastructure, dict(name="db", servers=2, connections_per_server=30.0,
                                                  health_check=None, routing="balanced"),
                             accepts={"health_check": (None,)}, text=("name", "routing"))
test_health_check = attack(HealthCheck, dict(interval=10.0, unhealthy_threshold=3, healthy_threshold=2))
test_connection_limit = attack(ConnectionLimit, dict(connection_lifetime=60.0, saturation_blocking=0.05,
                                                     low_water=0.5))
test_autoscaler = attack(Autoscaler, dict(target_utilisation=0.6, reaction_delay=60.0, provisioning_time=60.0,
                                          max_servers=64))
test_service = attack(Service, dict(name="api", infrastructure="db", request_rate=1000.0),
                      text=("name", "infrastructure"))
test_connection_cost = attack(ConnectionCost, dict(service_time=0.02, setup_time=0.05, new_connection_fraction=0.05,
                                                   retries_need_new_connection=True),
                              accepts={"retries_need_new_connection": (True, False, np.bool_(True))})
test_holding_time = attack(lambda multiple: COST.holding_time(multiple), dict(multiple=2.0))
test_clients = attack(Clients, dict(policy=FixedRetries(2), backoff=None, timeout=10.0, population=1000.0),
                      accepts={"policy": (None, "5"), "backoff": (None,)}, text=("policy",))
test_trigger = attack(Trigger, dict(new_connection_multiple=5.0, request_multiple=1.0, start=0.0, rollback_start=60.0,
                                    rollback_duration=10.0))
test_trigger_shape = attack(trigger_shape, dict(t=TIMES, start=0.0, rollback_start=10.0, rollback_duration=5.0))
test_surge = attack(Surge, dict(name="s", target="requests", multiple=3.0, start=0.0, end=20.0, platforms=None),
                    accepts=PLATFORMS, text=("name", "target", "platforms"))
test_capacity_loss = attack(CapacityLoss, dict(share=0.5, start=0.0, end=20.0, ramp=5.0, routing="stays",
                                               platforms=None), accepts=PLATFORMS, text=("routing", "platforms"))
test_capacity_lost = attack(lambda times: CapacityLoss(0.5, ramp=10.0).lost(times), dict(times=TIMES))
test_ceiling = attack(ConnectionCeiling, dict(size=100.0, level="platform", wait_timeout=0.0, platforms=None),
                      accepts=PLATFORMS, text=("level", "platforms"))
test_retry_storm = attack(RetryStorm, dict(layer="calling_service", policy=FixedRetries(2), backoff=None,
                                           timeout=1.0, waits=True, population=1000.0, platforms=None),
                          accepts={**PLATFORMS, "policy": (None, "5"), "backoff": (None,),
                                   "waits": (True, False, np.bool_(True))},
                          text=("layer", "policy", "platforms"))
test_contention = attack(Contention, dict(slowdown=2.0, start=0.0, end=20.0, platforms=None), accepts=PLATFORMS,
                         text=("platforms",))
test_rollback = attack(Rollback, dict(surge="s", start=10.0, duration=30.0, stages=3, share=1.0), text=("surge",))
test_rollback_removed = attack(lambda times: Rollback("s", 0.0, 30.0, 3).removed(times), dict(times=TIMES))
test_load_shedding = attack(LoadShedding, dict(share=0.4, start=10.0, until=20.0, platforms=None), accepts=PLATFORMS,
                            text=("platforms",))
test_capacity_added = attack(CapacityAdded, dict(servers=2.0, at=60.0, platforms=None), accepts=PLATFORMS,
                             text=("platforms",))
test_failover = attack(Failover, dict(share=0.5, at=60.0, source="a", target="b"), text=("source", "target"))
test_connections_for_headroom = attack(connections_for_headroom, dict(request_rate=2000.0, cost=COST, servers=3,
                                                                      headroom=1.0))
test_run = attack(run, dict(platforms=[DB], services=[API], cost=COST, horizon=10.0, time_step=1.0, seed=1),
                  accepts={"cost": (None,), "seed": (None,)})
test_simulate_incident = attack(simulate_incident, dict(services=[API], infrastructures=[DB], cost=COST,
                                                        clients=Clients(), trigger=Trigger(5.0, rollback_start=5.0),
                                                        horizon=10.0, time_step=1.0, seed=1),
                                accepts={"seed": (None,)})
test_simulate_sweep = attack(simulate_sweep, dict(infrastructure=DB, services=[API], cost=COST, clients=Clients(),
                                                  horizon=10.0, new_connection_multiple=5.0, rollback_start=5.0,
                                                  max_retries=2), accepts={"max_retries": (None,)})
test_step_profile = attack(StepProfile.from_trigger, dict(times=TIMES, new_connection_multiple=5.0,
                                                          request_multiple=1.0, start=0.0, rollback_start=10.0,
                                                          rollback_duration=5.0))
test_delay_kernel = attack(delay_kernel, dict(backoff=None, retry_index=1, time_step=1.0, extra=0.5),
                           accepts={"backoff": (None,)})
test_binomial_counts = attack(lambda n, p: binomial_counts(np.random.default_rng(0), n, p), dict(n=[10.0], p=0.3))
