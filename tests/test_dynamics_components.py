"""Tests of the components of reliability.dynamics: mechanisms and events, one by one.

Where nothing varies, each component is checked against the steady state of reliability.queues
(Erlang B, Erlang C, the M/M/c response time) or reliability.retry (RetryingQueue's equilibria and
recovery threshold), with tolerances of about 4 standard deviations of the run's sampling noise;
and against the discrete-event simulator (reliability.simulate) on the same small configuration.
"""

import math

import numpy as np
import pandas as pd
import pytest

from reliability.dynamics import (
    CapacityAdded,
    CapacityLoss,
    Clients,
    ConnectionCeiling,
    ConnectionCost,
    Contention,
    Failover,
    Infrastructure,
    LoadShedding,
    RetryStorm,
    Rollback,
    Service,
    Surge,
    Trigger,
    run,
    simulate_incident,
)
from reliability.queues import erlang_b, erlang_c, response_time_sf
from reliability.retry import FixedRetries, RetryingQueue
from reliability.simulate import Schedule, simulate_connection_pool, simulate_retrying_queue

LOSS_COST = ConnectionCost(service_time=0.02, setup_time=0.0, new_connection_fraction=0.0)
NO_RETRIES = Clients(policy=None)


def loss_run(servers, slots, rate, *, mechanisms=(), events=(), horizon=600.0, seed=0, clients=NO_RETRIES):
    return run([Infrastructure("db", servers, slots)], [Service("api", "db", rate)], mechanisms=mechanisms,
               events=events, cost=LOSS_COST, clients=clients, horizon=horizon, seed=seed)


def window(timeline, start, end=math.inf):
    s = timeline.series
    return s[(s.time >= start) & (s.time < end)]


def close_to(frame, p, sd=4.0):
    """Failure share of ``frame`` within ``sd`` binomial standard deviations of ``p``."""
    n = frame.attempts.sum()
    share = frame.failures.sum() / n
    return abs(share - p) <= sd * math.sqrt(p * (1 - p) / n) + 1e-12, (share, p, n)


# --- capacity -------------------------------------------------------------------------------------------

def test_capacity_loss_where_load_stays_is_erlang_b_on_the_survivors():
    # 4 servers x 20 slots at 40 Erlangs: B(20, 10) before; half the servers lost: B(20, 20)
    tl = loss_run(4, 20.0, 2000.0, mechanisms=[CapacityLoss(0.5, start=300.0)])
    ok, info = close_to(window(tl, 0.0, 300.0), erlang_b(20, 10.0))
    assert ok, info
    ok, info = close_to(window(tl, 300.0), erlang_b(20, 20.0))
    assert ok, info
    assert erlang_b(20, 20.0) > 50 * erlang_b(20, 10.0)       # the loss is visible
    assert (window(tl, 300.0).servers_serving == 2.0).all()


def test_capacity_loss_where_load_moves_keeps_the_blocking_and_halves_the_requests():
    tl = loss_run(4, 20.0, 2000.0, mechanisms=[CapacityLoss(0.5, start=300.0, routing="moves")])
    after = window(tl, 300.0)
    ok, info = close_to(after, erlang_b(20, 10.0))
    assert ok, info
    expected = 0.5 * 2000.0 * 300.0
    assert abs(after.requests.sum() - expected) < 4 * math.sqrt(expected)


def test_capacity_loss_ramp_and_end():
    tl = loss_run(4, 20.0, 2000.0, mechanisms=[CapacityLoss(0.5, start=100.0, end=400.0, ramp=100.0)])
    s = tl.series.set_index("time").servers_serving
    # mid-points of the steps: at step 150 the ramp is 50.5 % done
    assert s[150.0] == pytest.approx(4 * (1 - 0.5 * 0.505))
    assert s[250.0] == pytest.approx(2.0) and s[99.0] == 4.0 and s[400.0] == 4.0


def test_capacity_added_is_erlang_b_on_more_servers():
    tl = loss_run(2, 20.0, 2000.0, events=[CapacityAdded(2, at=300.0)])
    ok, info = close_to(window(tl, 0.0, 300.0), erlang_b(20, 20.0))
    assert ok, info
    ok, info = close_to(window(tl, 300.0), erlang_b(20, 10.0))
    assert ok, info
    assert (window(tl, 300.0).capacity == 80.0).all()


def test_capacity_added_as_a_share_of_the_platform():
    tl = loss_run(2, 20.0, 2000.0, events=[CapacityAdded(share=1.0, at=300.0)])
    ok, info = close_to(window(tl, 300.0), erlang_b(20, 10.0))
    assert ok, info


def test_failover_moves_a_share_of_the_load_to_another_platform():
    platforms = [Infrastructure("a", 1, 30.0), Infrastructure("b", 1, 30.0)]
    services = [Service("api", "a", 1000.0), Service("web", "b", 500.0)]
    tl = run(platforms, services, events=[Failover(0.4, at=300.0, source="a", target="b")], cost=LOSS_COST,
             clients=NO_RETRIES, horizon=600.0, seed=2)
    s = window(tl, 300.0)
    on_a, on_b = s[s.infrastructure == "a"], s[s.infrastructure == "b"]
    moved = on_b[on_b.service == "api"]
    expected = 0.4 * 1000.0 * 300.0
    assert abs(moved.requests.sum() - expected) < 4 * math.sqrt(expected)
    assert window(tl, 0.0, 300.0).query("infrastructure == 'b' and service == 'api'").requests.sum() == 0
    ok, info = close_to(on_a, erlang_b(30, 0.6 * 20.0))
    assert ok, info
    ok, info = close_to(on_b, erlang_b(30, 10.0 + 8.0))     # its own 10 Erlangs and 8 moved in
    assert ok, info


# --- connection ceiling -------------------------------------------------------------------------------

def test_platform_ceiling_is_erlang_b_of_the_ceiling():
    # servers with ample slots behind a proxy of 30 connections, 25 Erlangs offered
    tl = loss_run(4, 100.0, 1250.0, mechanisms=[ConnectionCeiling(30)])
    ok, info = close_to(tl.series, erlang_b(30, 25.0))
    assert ok, info
    assert erlang_b(100, 6.25) < 1e-12      # the servers themselves never refuse


def test_server_ceiling_lowers_each_servers_slots():
    tl = loss_run(4, 100.0, 1250.0, mechanisms=[ConnectionCeiling(10, level="server")])
    ok, info = close_to(tl.series, erlang_b(10, 6.25))
    assert ok, info
    assert (tl.series.capacity == 40.0).all()


def test_ceiling_with_a_wait_is_the_erlang_c_tail():
    wait = 0.01
    tl = loss_run(4, 100.0, 1250.0, mechanisms=[ConnectionCeiling(30, wait_timeout=wait)])
    p = float(erlang_c(30, 25.0)) * math.exp(-(30 - 25.0) * wait / 0.02)
    ok, info = close_to(tl.series, p)
    assert ok, info
    assert p < 0.5 * erlang_b(30, 25.0) < erlang_c(30, 25.0)   # waiting helps, and it shows


def test_ceiling_against_the_simulated_pool():
    # the same 30-connection pool at 25 Erlangs, no retries: model vs three simulated runs
    tl = loss_run(1, 1000.0, 1250.0, mechanisms=[ConnectionCeiling(30)], horizon=300.0, seed=2)
    model = tl.series.failures.sum() / tl.series.attempts.sum()
    shares = []
    for seed in range(3):
        sim = simulate_connection_pool(30, 50.0, 1250.0, timeout=30.0, horizon=100.0, seed=seed).series
        shares.append(sim.failures.sum() / (sim.failures.sum() + sim.successes.sum()))
    sim_mean, sim_sd = np.mean(shares), np.std(shares, ddof=1)
    n_model = tl.series.attempts.sum()
    tolerance = 4 * math.hypot(sim_sd / math.sqrt(3), math.sqrt(model * (1 - model) / n_model))
    assert tolerance < 0.01
    assert abs(model - sim_mean) < tolerance, (model, shares)
    assert abs(sim_mean - erlang_b(30, 25.0)) < 0.01


# --- contention, shedding, triggers -------------------------------------------------------------------

def test_contention_multiplies_the_load():
    tl = loss_run(1, 50.0, 1000.0, mechanisms=[Contention(2.0, start=300.0)])
    ok, info = close_to(window(tl, 0.0, 300.0), erlang_b(50, 20.0))
    assert ok, info
    ok, info = close_to(window(tl, 300.0), erlang_b(50, 40.0))
    assert ok, info


def test_load_shedding_refuses_its_share_at_the_front_door():
    tl = loss_run(1, 50.0, 2000.0, events=[LoadShedding(0.4, start=200.0, until=400.0)])
    during, outside = window(tl, 200.0, 400.0), pd.concat([window(tl, 0.0, 200.0), window(tl, 400.0)])
    n = during.requests.sum()
    assert abs(during.shed.sum() / n - 0.4) < 4 * math.sqrt(0.24 / n)
    assert outside.shed.sum() == 0
    # the platform sees 24 Erlangs instead of 40
    ok, info = close_to(during, erlang_b(50, 24.0))
    assert ok, info
    ok, info = close_to(outside, erlang_b(50, 40.0))
    assert ok, info
    # shed requests are failed requests, not failed attempts
    assert (tl.series.requests == tl.series.offered + tl.series.shed).all()
    assert during.failed_requests.sum() >= during.shed.sum() > during.failures.sum()


def test_staged_rollback_and_a_second_trigger():
    tl = loss_run(1, 200.0, 1000.0, horizon=600.0, mechanisms=[
        Surge("deploy", "requests", 3.0, start=100.0),
        Surge("hotfix", "new_connections", 2.0, start=400.0, end=500.0)],
        events=[Rollback("deploy", start=200.0, duration=90.0, stages=3)])
    m = tl.series.set_index("time")
    assert m.request_multiple[50.0] == 1.0 and m.request_multiple[150.0] == 3.0
    assert m.request_multiple[210.0] == pytest.approx(1 + 2 * 2 / 3)
    assert m.request_multiple[240.0] == pytest.approx(1 + 2 / 3)
    assert m.request_multiple[270.0] == 1.0 and m.request_multiple[450.0] == 1.0
    assert m.new_connection_multiple[450.0] == 2.0 and m.new_connection_multiple[500.0] == 1.0
    # the surge's load shows in the offered requests
    assert window(tl, 100.0, 200.0).offered.mean() == pytest.approx(3000.0, rel=0.01)


def test_partial_linear_rollback():
    tl = loss_run(1, 200.0, 1000.0, horizon=400.0, mechanisms=[Surge("s", "requests", 5.0)],
                  events=[Rollback("s", start=100.0, duration=100.0, share=0.5)])
    m = tl.series.set_index("time").request_multiple
    assert m[149.0] == pytest.approx(1 + 4 * (1 - 0.5 * 0.495))
    assert m[300.0] == pytest.approx(3.0)


def test_run_without_components_is_simulate_incident_without_trigger():
    kwargs = dict(cost=ConnectionCost(0.02, 0.05, 0.05), clients=Clients(policy=FixedRetries(2)), horizon=300.0,
                  seed=4)
    a = run([Infrastructure("db", 2, 20.0)], [Service("api", "db", 1500.0)], **kwargs)
    b = simulate_incident([Service("api", "db", 1500.0)], [Infrastructure("db", 2, 20.0)], trigger=Trigger(), **kwargs)
    pd.testing.assert_frame_equal(a.series, b.series)
    assert a.series.failures.sum() > 0


def test_a_trigger_and_its_surges_agree():
    # the legacy Trigger is one surge on each rate with a linear rollback
    trigger = Trigger(new_connection_multiple=6.0, request_multiple=1.5, start=60.0, rollback_start=200.0,
                      rollback_duration=100.0)
    cost = ConnectionCost(0.02, 0.05, 0.05)
    old = simulate_incident([Service("api", "db", 1500.0)], [Infrastructure("db", 2, 20.0)], cost=cost,
                            clients=NO_RETRIES, trigger=trigger, horizon=400.0, seed=1)
    new = run([Infrastructure("db", 2, 20.0)], [Service("api", "db", 1500.0)], cost=cost, clients=NO_RETRIES,
              mechanisms=[Surge("c", "new_connections", 6.0, start=60.0), Surge("r", "requests", 1.5, start=60.0)],
              events=[Rollback("c", 200.0, 100.0), Rollback("r", 200.0, 100.0)], horizon=400.0, seed=1)
    for column in ("request_multiple", "new_connection_multiple", "offered_load"):
        np.testing.assert_allclose(new.series[column], old.series[column], rtol=1e-12)


# --- retry storm ----------------------------------------------------------------------------------------

QUEUE = RetryingQueue(servers=10, service_rate=50.0, timeout=0.04, policy=3)


def storm_run(rate, *, retries=3, mechanisms=(), events=(), horizon=600.0, seed=1, layer="calling_service",
              waits=True, timeout=0.04, servers=1, slots=10.0):
    storm = RetryStorm(layer, FixedRetries(retries), backoff=None, timeout=timeout, waits=waits)
    return run([Infrastructure("db", servers, slots)], [Service("api", "db", rate)], mechanisms=[storm, *mechanisms],
               events=events, cost=LOSS_COST, horizon=horizon, seed=seed)


def test_waiting_attempts_without_retries_fail_as_the_mm_c_response_time():
    tl = storm_run(200.0, retries=0)
    ok, info = close_to(tl.series, float(response_time_sf(10, 4.0, 0.04, 50.0)))
    assert ok, info


def test_healthy_storm_state_is_the_retrying_queue_healthy_equilibrium():
    healthy = QUEUE.equilibria(200.0)[0]
    assert healthy.state == "healthy"
    tl = storm_run(200.0, horizon=600.0)
    steady = window(tl, 60.0)
    ok, info = close_to(steady, healthy.failure_probability)
    assert ok, info
    attempt_rate = steady.attempts.sum() / 540.0
    assert attempt_rate == pytest.approx(healthy.attempt_rate, rel=0.01)


def test_storm_sustains_itself_after_its_trigger_at_the_worst_stable_state():
    worst = [e for e in QUEUE.equilibria(200.0) if e.stable][-1]
    assert worst.state == "collapsed"
    tl = storm_run(200.0, mechanisms=[Surge("spike", "requests", 3.0, start=0.0, end=60.0)], horizon=900.0)
    plateau = window(tl, 300.0)      # four minutes after the trigger ended
    assert plateau.failures.sum() / plateau.attempts.sum() == pytest.approx(worst.failure_probability, abs=1e-3)
    assert plateau.attempts.sum() / 600.0 == pytest.approx(worst.attempt_rate, rel=0.01)
    # without retries the same trigger leaves nothing behind
    calm = window(storm_run(200.0, retries=0, mechanisms=[Surge("spike", "requests", 3.0, end=60.0)],
                            horizon=900.0), 300.0)
    assert calm.failures.sum() / calm.attempts.sum() < 0.2


@pytest.mark.parametrize("shed_to, recovers", [(0.85, True), (1.15, False)])
def test_storm_ends_only_when_load_is_shed_below_the_recovery_threshold(shed_to, recovers):
    # 100 slots, so that the attempt counts' noise (about 1 %) is well inside the 15 % margins:
    # a small system near the threshold leaves the collapsed state by chance (a finite-size escape
    # that the mean field does not have)
    queue = RetryingQueue(servers=100, service_rate=50.0, timeout=0.04, policy=3)
    threshold = queue.recovery_threshold()          # c mu / (r + 1) = 1250 / s
    base = 2000.0
    share = 1.0 - shed_to * threshold / base
    tl = storm_run(base, mechanisms=[Surge("spike", "requests", 3.0, end=60.0)], slots=100.0,
                   events=[LoadShedding(share, start=300.0, until=900.0)], horizon=1200.0)
    end_of_shedding = window(tl, 800.0, 900.0)
    after = window(tl, 1000.0)
    fail = end_of_shedding.failures.sum() / end_of_shedding.attempts.sum()
    if recovers:
        # back at the healthy state of the shed load (p ~ e^{-mu T}: slow service alone times out)
        ok, info = close_to(end_of_shedding, queue.equilibria(shed_to * threshold)[0].failure_probability)
        assert ok, info
        ok, info = close_to(after, queue.equilibria(base)[0].failure_probability)   # and stays healthy
        assert ok, info
    else:
        assert fail > 0.99 and after.failures.sum() / after.attempts.sum() > 0.99


def test_storm_against_the_simulated_retrying_queue():
    # healthy state at 0.4 of capacity, model vs three simulated runs of the same queue. 100 slots:
    # a 10-slot queue at this load tips into the collapsed state by chance within a few thousand
    # service times in simulation (finite-size escape), which would make the comparison meaningless
    tl = storm_run(2000.0, horizon=300.0, seed=5, slots=100.0)
    steady = window(tl, 30.0)
    model = steady.failures.sum() / steady.attempts.sum()
    shares = []
    for seed in range(3):
        sim = simulate_retrying_queue(100, 50.0, 2000.0, timeout=0.04, policy=FixedRetries(3), horizon=60.0,
                                      seed=seed).series
        sim = sim[sim.time >= 5.0]
        shares.append(sim.failures.sum() / (sim.failures.sum() + sim.successes.sum()))
    assert max(shares) < 0.5, shares        # every simulated run stayed healthy, so the spread is noise
    sim_mean, sim_sd = np.mean(shares), np.std(shares, ddof=1)
    tolerance = 4 * math.hypot(sim_sd / math.sqrt(3), math.sqrt(model * (1 - model) / steady.attempts.sum()))
    assert tolerance < 0.01
    assert abs(model - sim_mean) < tolerance, (model, shares)
    # the same short surge collapses both, and both stay collapsed after it (10 slots)
    sim = simulate_retrying_queue(10, 50.0, Schedule.surge(200.0, 3.0, 0.0, 60.0), timeout=0.04,
                                  policy=FixedRetries(3), horizon=200.0, seed=0).series
    late = sim[sim.time >= 120.0]
    tl = storm_run(200.0, mechanisms=[Surge("spike", "requests", 3.0, end=60.0)], horizon=200.0)
    model_late = window(tl, 120.0)
    assert late.failures.sum() / (late.failures.sum() + late.successes.sum()) > 0.99
    assert model_late.failures.sum() / model_late.attempts.sum() > 0.99
    # and without the surge the model stays healthy over the same time (the collapse is the surge's)
    assert share_of(window(storm_run(200.0, horizon=200.0), 120.0)) < 0.2


def share_of(frame):
    return frame.failures.sum() / frame.attempts.sum()


# --- observation levels ---------------------------------------------------------------------------------

def test_observation_levels_by_layer():
    # a loss platform at constant load: each attempt is refused independently with the same p,
    # so a request fails after r + 1 refusals with p^(r + 1)
    kwargs = dict(retries=2, waits=False, timeout=10.0, servers=1, slots=40.0, horizon=600.0, seed=3)
    service = storm_run(2000.0, layer="calling_service", **kwargs)
    users = storm_run(2000.0, layer="end_user_clients", **kwargs)
    counts = ["attempts", "failures", "requests", "failed_requests"]
    pd.testing.assert_frame_equal(service.series[counts], users.series[counts])
    s = window(service, 60.0)
    p = s.failed_attempts.sum() / s.attempts.sum()
    request_share = s.failed_requests.sum() / s.requests.sum()
    n = s.requests.sum()
    assert abs(request_share - p ** 3) < 4 * math.sqrt(p ** 3 / n) + 0.02 * p ** 3, (request_share, p ** 3)
    assert request_share < p / 5                      # the levels differ a lot here
    np.testing.assert_array_equal(service.series.users_failing, service.series.request_failure_fraction)
    np.testing.assert_array_equal(users.series.users_failing, users.series.failure_fraction)
    minute = users.aggregate(60.0)
    np.testing.assert_allclose(minute.users_failing, minute.failure_fraction)
    assert service.aggregate(60.0, by="all").users_failing.iloc[-1] == pytest.approx(
        service.aggregate(60.0, by="all").request_failure_fraction.iloc[-1])


# --- bad input --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(events=[Rollback("nope", 10.0)]), "Rollback.surge"),
    (dict(mechanisms=[CapacityLoss(0.5, platforms="elsewhere")]), "not among"),
    (dict(mechanisms=[RetryStorm(), RetryStorm()]), "at most one"),
    (dict(mechanisms=[Surge("a", "requests", 2.0), Surge("a", "requests", 3.0)]), "unique"),
    (dict(mechanisms=["surge"]), "mechanisms must be"),
    (dict(events=[Surge("a", "requests", 2.0)]), "events must be"),
    (dict(events=[Failover(0.5, 0.0, "db", "nowhere")]), "not among"),
])
def test_bad_scenarios_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        loss_run(1, 20.0, 100.0, horizon=10.0, **kwargs)


@pytest.mark.parametrize("make, message", [
    (lambda: CapacityLoss(1.5), "CapacityLoss.share"),
    (lambda: CapacityLoss(0.5, routing="sideways"), "CapacityLoss.routing"),
    (lambda: RetryStorm("everyone"), "RetryStorm.layer"),
    (lambda: ConnectionCeiling(0), "ConnectionCeiling.size"),
    (lambda: ConnectionCeiling(10, level="rack"), "ConnectionCeiling.level"),
    (lambda: Surge("s", "requests", 2.0, start=10.0, end=5.0), "Surge.end"),
    (lambda: LoadShedding(0.5, start=10.0, until=5.0), "LoadShedding.until"),
    (lambda: Rollback("s", 0.0, stages=-1), "Rollback.stages"),
    (lambda: Contention(0.0), "Contention.slowdown"),
    (lambda: CapacityAdded(), "exactly one"),
    (lambda: Failover(0.5, 0.0, "a", "a"), "Failover.target"),
])
def test_bad_components_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_contention_too_slow_for_the_step_is_refused():
    with pytest.raises(ValueError, match="holding time"):
        loss_run(1, 20.0, 100.0, horizon=10.0, mechanisms=[Contention(100.0)])
