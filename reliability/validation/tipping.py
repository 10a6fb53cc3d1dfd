"""The tipping surface of a retrying queue: trigger size x duration, simulated, against the fluid model.

Metastable failures are started by a trigger and kept going by a sustaining effect (here: the
retries and the work the servers waste on abandoned attempts). Two trigger kinds: a **load
spike** (the request rate multiplied for a while) and a **capacity drop** (the servers divided
for a while). For each size and duration the retrying queue is simulated from healthy; it has
*tipped* when it is still failing at least half its attempts over the last ``window`` seconds,
``settle`` seconds after the trigger ended. The delayed fluid model
(:meth:`reliability.retry.RetryingQueue.tipping_trigger`) gives, for either kind, the shortest
tipping duration; the simulation agrees with it where the two verdicts match. The simulated
**amplification after the trigger** -- attempts per request once the trigger is over, the
sustaining load as a multiple of the base -- is what keeps a tipped service down.

Examples
--------
>>> frame = tipping_surface(20, 1.0, 3.0, 3, 0.45, [2.5], [5.0, 60.0], settle=300.0, seed=1)
>>> frame.simulated_tipped.tolist(), frame.fluid_tips.tolist()
([False, True], [False, True])
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..cluster import check_cluster, start_batches, startable
from .._validate import as_array, number, whole
from ..retry import Backoff, FixedRetries, RetryingQueue
from ..retry.escape import escape_time
from ..retry.fluid import trigger_servers
from ..simulate import Schedule, simulate_retrying_queue

__all__ = ["TIPPING_SIZES", "tipping_checks", "tipping_surface"]

_START = 60.0  # the trigger starts after a minute of healthy service


def _run(servers, service_rate, timeout, max_retries, lam0, trigger, multiple, duration, backoff, settle, window,
         seed):
    """(tipped, attempts per request after the trigger) of one simulated trigger."""
    end = _START + duration
    horizon = 10.0 * math.ceil((end + settle) / 10.0)
    if trigger == "load":
        rate, capacity = Schedule.surge(lam0, multiple, _START, duration), servers
    else:
        rate = lam0
        capacity = Schedule.steps((0.0, servers), (_START, trigger_servers(servers, multiple)), (end, servers))
    run = simulate_retrying_queue(capacity, service_rate, rate, timeout=timeout, policy=FixedRetries(max_retries),
                                  backoff=backoff, horizon=horizon, interval=10.0, seed=seed)
    last = run.window(horizon - window)
    after = run.window(min(end, horizon - window))
    return last.failure_fraction >= 0.5, after.attempts / max(after.offered, 1)


def _trigger_escape(queue, lam0: float, trigger: str, multiple: float) -> float:
    """Mean time to tip from healthy while the trigger lasts (backlog chain at its load and servers)."""
    if trigger == "load":
        return escape_time(queue, multiple * lam0).mean_time
    left = trigger_servers(queue.servers, multiple)
    if left == 0:
        return 0.0
    return escape_time(RetryingQueue(left, queue.service_rate, queue.timeout, queue.policy), lam0).mean_time


@startable
def tipping_surface(servers, service_rate, timeout, max_retries, base_share, multiples, durations, *,
                    trigger: str = "load", backoff: Backoff | None = None, settle: float = 600.0,
                    window: float = 120.0, seed: int = 0, cluster=None) -> pd.DataFrame:
    """Which triggers tip a healthy retrying queue: one simulated run per (size, duration).

    Parameters
    ----------
    base_share : float
        Base request rate as a share of capacity.
    multiples : sequence of float
        Trigger sizes: the request rate multiplied by this (``trigger="load"``) or the servers
        divided by it (``trigger="capacity"``), each >= 1.
    durations : sequence of float
        Trigger durations, seconds.

    Returns
    -------
    pandas.DataFrame
        ``trigger``, ``multiple``, ``duration``, ``simulated_tipped``, ``amplification_after``
        (attempts per request from the trigger's end), ``fluid_min_duration`` (the delayed fluid
        model's shortest tipping trigger of that size, either kind), ``fluid_tips``, ``agrees`` and
        ``trigger_escape_mean``: the backlog chain's mean time to tip at the trigger's own load
        and servers (:func:`reliability.retry.escape.escape_time`; 0 with no server left). The
        fluid model has no queueing noise: where this is shorter than the trigger, noise can tip
        a queue the fluid model keeps healthy.

    The runs go to the workers of ``cluster`` (:class:`reliability.Cluster`) if given, with the same
    numbers; ``tipping_surface.start(...)`` returns once they are sent, with a function that waits for the frame.
    """
    if trigger not in ("load", "capacity"):
        raise ValueError(f"trigger must be 'load' or 'capacity', got {trigger!r}")
    c = whole("servers", servers, 1)
    queue = RetryingQueue(c, service_rate, timeout, FixedRetries(max_retries))
    lam0 = number("base_share", base_share, minimum=0.0, strict=True) * queue.capacity
    sizes = np.atleast_1d(as_array("multiples", multiples, minimum=1.0))
    spans = np.atleast_1d(as_array("durations", durations, minimum=0.0, strict_minimum=True))
    settle, window = number("settle", settle, minimum=0.0, strict=True), number("window", window, minimum=0.0,
                                                                               strict=True)
    children = np.random.SeedSequence(whole("seed", seed, 0)).spawn(sizes.size * spans.size)
    check_cluster(cluster)
    triggers = [(float(m), float(d)) for m in sizes for d in spans]
    n = len(triggers)
    pending = start_batches(cluster, _run, [c] * n, [queue.service_rate] * n, [queue.timeout] * n, [max_retries] * n,
                       [lam0] * n, [trigger] * n, [m for m, _ in triggers], [d for _, d in triggers], [backoff] * n,
                       [settle] * n, [window] * n, children)
    yield  # the runs go on while the fluid model and the chain work here
    fluid = {m: queue.tipping_trigger(lam0, m, trigger=trigger, backoff=backoff).min_duration for m in map(float, sizes)}
    escape = {m: _trigger_escape(queue, lam0, trigger, m) for m in fluid}
    rows = []
    for (m, d), (tipped, amplification) in zip(triggers, pending()):
        fluid_tips = bool(d >= fluid[m])
        rows.append({"trigger": trigger, "multiple": m, "duration": d, "simulated_tipped": bool(tipped),
                     "amplification_after": float(amplification), "fluid_min_duration": fluid[m],
                     "fluid_tips": fluid_tips, "agrees": fluid_tips == tipped, "trigger_escape_mean": escape[m]})
    return pd.DataFrame(rows)


#: The triggers :func:`tipping_checks` simulates per table size: (kind, sizes, durations in seconds).
TIPPING_SIZES = {
    "full": (("load", (2.0, 2.5, 3.0), (5.0, 10.0, 20.0, 40.0)), ("capacity", (2.0, 4.0), (10.0, 30.0, 90.0))),
    "smoke": (("load", (3.0,), (5.0, 40.0)), ("capacity", (4.0,), (30.0,))),
}


@startable
def tipping_checks(size: str = "full", *, seed: int = 0, cluster=None) -> pd.DataFrame:
    """:func:`tipping_surface` for both trigger kinds at 20 servers, ``mu = 1``, timeout 3 s, 3 retries,
    base load 0.45 of capacity, full-jitter backoff 0.5-10 s.

    Examples
    --------
    >>> sorted(TIPPING_SIZES)
    ['full', 'smoke']
    """
    if size not in TIPPING_SIZES:
        raise ValueError(f"size must be one of {sorted(TIPPING_SIZES)}, got {size!r}")
    root = np.random.SeedSequence(whole("seed", seed, 0))
    frames = [tipping_surface.start(20, 1.0, 3.0, 3, 0.45, sizes, durations, trigger=kind,
                                    backoff=Backoff(0.5, 10.0, "full"), seed=int(child.generate_state(1)[0]),
                                    cluster=cluster)
              for (kind, sizes, durations), child in zip(TIPPING_SIZES[size], root.spawn(len(TIPPING_SIZES[size])))]
    yield
    return pd.concat([frame() for frame in frames], ignore_index=True)
