"""Server-side defences: the M/M/c/K mean field, the simulated goodput, and the two side by side."""

from __future__ import annotations

import numpy as np
import pytest

from reliability import Backoff, FixedRetries, RetryingQueue, erlang_b, mmck
from reliability.retry.defences import BoundedRetryingQueue, defended_band
from reliability.simulate.escape import simulate_goodput
from reliability.validation.defences import defence_table

BACKOFF = Backoff(0.5, 10.0, "full")


def test_a_loss_system_blocks_as_erlang_b_and_a_bounded_queue_as_mmck():
    loss = BoundedRetryingQueue(10, 1.0, 5.0, 0, queue_limit=0)
    blocked, _ = loss.outcome_shares(7.0)
    assert blocked[0] == pytest.approx(erlang_b(10, 7.0), rel=1e-10)
    bounded = BoundedRetryingQueue(10, 1.0, 5.0, 0, queue_limit=5)
    blocked, _ = bounded.outcome_shares(9.0)
    assert blocked[0] == pytest.approx(mmck(10, 15, 9.0), rel=1e-9)


def test_a_long_bounded_queue_times_out_like_the_unbounded_one():
    bounded = BoundedRetryingQueue(20, 1.0, 3.0, 3, queue_limit=2000)
    unbounded = RetryingQueue(20, 1.0, 3.0, 3)
    blocked, late = bounded.outcome_shares(15.0)
    assert blocked[0] < 1e-12
    assert late[0] == pytest.approx(float(unbounded._failure(15.0)), rel=1e-6)


def test_without_retries_there_is_one_equilibrium_at_the_base_rate():
    queue = BoundedRetryingQueue(20, 1.0, 3.0, 0, queue_limit=30)
    (only,) = queue.equilibria(15.0)
    assert only.stable and only.attempt_rate == pytest.approx(15.0, rel=1e-9)
    assert only.goodput_share == pytest.approx(1 - only.blocked - only.timed_out)


def test_a_concurrency_limit_removes_the_band_and_a_long_queue_keeps_it():
    tight = defended_band(BoundedRetryingQueue(20, 1.0, 3.0, 3, queue_limit=10), [0.5, 0.6, 0.8])
    assert not tight.metastable.any() and (tight.worst_goodput_share > 0.98).all()
    loose = defended_band(BoundedRetryingQueue(20, 1.0, 3.0, 3, queue_limit=60), [0.6, 0.8])
    assert loose.metastable.all() and (loose.worst_goodput_share < 0.4).all()


def test_honouring_do_not_retry_narrows_the_band():
    retried = defended_band(BoundedRetryingQueue(20, 1.0, 3.0, 3, queue_limit=60), [0.5])
    honoured = defended_band(BoundedRetryingQueue(20, 1.0, 3.0, 3, queue_limit=60, retry_rejected=False), [0.5])
    assert retried.metastable[0] and not honoured.metastable[0]


@pytest.mark.parametrize("kwargs, match", [(dict(queue_limit=-1), "queue_limit"), (dict(retry_rejected="no"),
                                           "retry_rejected"), (dict(timeout=0.0), "timeout")])
def test_bounded_queue_refuses_bad_arguments(kwargs, match):
    args = dict(servers=20, service_rate=1.0, timeout=3.0, max_retries=3)
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        BoundedRetryingQueue(**args)


def test_simulated_goodput_is_full_when_healthy_and_zero_when_collapsed():
    healthy = simulate_goodput(20, 1.0, 10.0, timeout=3.0, policy=FixedRetries(3), backoff=BACKOFF, horizon=400.0,
                               warmup=100.0, replications=2, seed=1)
    assert healthy.value == pytest.approx(1.0, abs=0.02)
    collapsed = simulate_goodput(20, 1.0, 12.0, timeout=3.0, policy=FixedRetries(3), backoff=BACKOFF,
                                 initial_backlog=240, horizon=400.0, warmup=200.0, replications=2, seed=1)
    assert collapsed.value < 0.05


def test_simulated_concurrency_limit_recovers_from_a_collapse():
    share = simulate_goodput(20, 1.0, 12.0, timeout=3.0, policy=FixedRetries(3), backoff=BACKOFF, initial_backlog=240,
                             queue_limit=10, horizon=400.0, warmup=200.0, replications=2, seed=1)
    assert share.value > 0.95


def test_simulate_goodput_refuses_a_warmup_past_the_horizon():
    with pytest.raises(ValueError, match="warmup"):
        simulate_goodput(20, 1.0, 10.0, timeout=3.0, horizon=100.0, warmup=100.0)


def test_defence_table_model_and_simulation_agree_and_the_tight_limit_wins():
    frame = defence_table(20, 1.0, 3.0, 3, backoff=BACKOFF, replications=1, horizon=400.0, warmup=200.0, seed=3)
    by_name = frame.set_index(frame.defence.str.split(" ").str[0] + frame.defence.str.contains("do not").map(
        {True: "-no-retry", False: ""}))
    assert not by_name.loc["none", "recovers_at_band"]
    assert by_name.loc["concurrency", "removes_band"]
    assert (frame.normal_simulated > 0.97).all()  # at normal load no defence costs goodput that matters
    modelled = frame[frame.agrees.notna()]
    assert modelled.agrees.all()
    # dropping expired work has its mean field now (M/M/c+D): a collapsed state in the band, as simulated
    deadline = frame.loc[frame.defence.str.startswith("deadline")].iloc[0]
    assert deadline.model_band and deadline.band_model_worst < 0.1 and not deadline.recovers_at_band
    assert np.isfinite(frame.band_model_worst).all()
