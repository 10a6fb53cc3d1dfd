"""Server-side defences against retry storms: the mean field beside the simulator, one row per defence.

Each defence is simulated three times: started empty at a normal load (its cost: the goodput
it gives up when nothing is wrong), started collapsed (a backlog of ``4 c mu T`` attempts) at a
load inside the unbounded queue's bistable band (does it recover: the band removed?), and
started empty at a high load (does it stay up?). The defences that act at admission or as a
deadline on the FCFS queue run in :func:`reliability.simulate.escape.simulate_goodput`; adaptive
LIFO, CoDel, shedding by priority and the client circuit breaker need an explicit waiting line
and run in :func:`reliability.simulate.defended.simulate_defended_goodput` (which reproduces the
first loop exactly where both apply). Beside each, the mean field of :mod:`reliability.retry`
and how far it is to be trusted (``mean_field``):

* exact under the mean-field assumption: none (:class:`~reliability.retry.RetryingQueue`), a
  bounded queue, a concurrency limit and "do not retry" (M/M/c/K,
  :class:`~reliability.retry.defences.BoundedRetryingQueue`), dropping expired work (M/M/c+D,
  :class:`~reliability.retry.deadlines.ExpiringRetryingQueue`), shedding retries by priority (a
  birth-death chain, :class:`~reliability.retry.admission.PriorityShedQueue`);
* approximate: adaptive LIFO (exact for the attempts that find a long queue,
  :class:`~reliability.retry.disciplines.AdaptiveLifoQueue`), CoDel (a deadline at its target,
  :func:`~reliability.retry.deadlines.codel_mean_field`);
* no fixed point: the circuit breaker, whose model is the set of unbounded-queue states it allows
  (:class:`~reliability.retry.admission.CircuitBreakerQueue`).

The model's stable goodput shares stand beside the simulated ones: a run agrees when it ends
within ``tolerance`` of one of them, or between two that coexist.

What it shows (:func:`defence_checks` ``("full", seed=20250109)``: 20 servers, ``mu T = 3``,
3 retries, loads 0.5 / 0.6 / 0.8 of capacity). Every defence costs under 0.2 % of goodput at
the normal load (within the runs' noise), and model and simulation agree for all nine. Dropping
expired work keeps the band (the mean field's collapsed state at 0.6 serves 6 % of requests, the
runs 5.5 %) and so do the bounded queues at ``K = c mu T``, which recover at 0.6 but tip at 0.8.
The concurrency limit, adaptive LIFO, CoDel and shedding retries by priority remove it: no
second stable state at any load share up to 0.95 and every collapsed start recovered. The
circuit breakers end every collapse (the collapsed start recovers) but not the chance tips at
0.8: each costs a window and a cool-down, so the runs keep 91 % of the goodput, as the renewal
cycle of :class:`~reliability.retry.admission.CircuitBreakerQueue` says (0.91).

Examples
--------
>>> frame = defence_table(20, 1.0, 3.0, 3, replications=1, horizon=300.0, warmup=150.0, seed=1,
...                       defences=["concurrency limit"])
>>> frame[["defence", "removes_band"]].values.tolist()
[['concurrency limit (K = 10)', True]]
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..cluster import check_cluster, start_batches, startable
from .._validate import number, whole
from ..retry import Backoff, FixedRetries, RetryingQueue
from ..retry.admission import CircuitBreakerQueue, PriorityShedQueue
from ..retry.deadlines import ExpiringRetryingQueue, codel_mean_field
from ..retry.defences import BoundedRetryingQueue
from ..retry.disciplines import AdaptiveLifoQueue
from ..simulate.defended import simulate_defended_goodput
from ..simulate.disciplines import BreakerSettings
from ..simulate.escape import simulate_goodput
from ..simulate.estimate import estimate

__all__ = ["DEFENCES", "DEFENCE_SIZES", "BREAKER_CLIENTS", "defence_checks", "defence_setups", "defence_table"]

#: The defences, by name, in the order of the table.
DEFENCES = ("none", "drop expired work", "bounded queue", "bounded queue, do not retry", "concurrency limit",
            "adaptive LIFO", "CoDel", "priority shedding", "circuit breaker")
#: Short keys of the defences, for recorded results.
KEYS = dict(zip(DEFENCES, ["none", "drop_expired", "bounded", "bounded_no_retry", "concurrency", "adaptive_lifo",
                           "codel", "priority_shedding", "circuit_breaker"]))
#: A simulated run "recovered" when its goodput share is at least this.
RECOVERED = 0.9
#: Client populations, each with its own breaker, in the circuit-breaker runs.
BREAKER_CLIENTS = 10


def defence_setups(servers: int, service_rate: float, timeout: float, max_retries: int) -> dict:
    """``name -> (label, simulator, simulator options, mean-field model or None, how far the model holds)``.

    Examples
    --------
    >>> setups = defence_setups(20, 1.0, 3.0, 3)
    >>> setups["CoDel"][0], setups["CoDel"][4]
    ('CoDel (target 0.15 s, interval 1 s)', 'approximate (a deadline at the target)')
    """
    bound = int(math.ceil(servers * service_rate * timeout))   # a queue that a timeout's worth of service clears
    limit = max(1, servers // 2)                                # a tight limit: c + c/2 in flight
    target, interval = timeout / 20.0, timeout / 3.0            # CoDel's scale: a small share of the timeout
    breaker = BreakerSettings()
    fcfs, explicit = simulate_goodput, simulate_defended_goodput

    def bounded(k, retry_rejected):
        return BoundedRetryingQueue(servers, service_rate, timeout, max_retries, queue_limit=k,
                                    retry_rejected=retry_rejected)

    queue = (servers, service_rate, timeout, max_retries)
    return {
        "none": ("none (unbounded FIFO)", fcfs, {},
                 RetryingQueue(servers, service_rate, timeout, FixedRetries(max_retries)), "exact (M/M/c)"),
        "drop expired work": ("deadline: drop expired work", fcfs, {"drop_expired": True},
                              ExpiringRetryingQueue(*queue), "exact (M/M/c+D)"),
        "bounded queue": (f"bounded queue (K = {bound})", fcfs, {"queue_limit": bound}, bounded(bound, True),
                          "exact (M/M/c/K)"),
        "bounded queue, do not retry": (f"bounded queue (K = {bound}), do not retry", fcfs,
                                        {"queue_limit": bound, "retry_rejected": False}, bounded(bound, False),
                                        "exact (M/M/c/K)"),
        "concurrency limit": (f"concurrency limit (K = {limit})", fcfs, {"queue_limit": limit}, bounded(limit, True),
                              "exact (M/M/c/K)"),
        "adaptive LIFO": (f"adaptive LIFO (newest first beyond {limit} waiting)", explicit,
                          {"lifo_threshold": limit}, AdaptiveLifoQueue(*queue, lifo_threshold=limit),
                          "approximate (FIFO below the threshold)"),
        "CoDel": (f"CoDel (target {target:g} s, interval {interval:g} s)", explicit, {"codel": (target, interval)},
                  codel_mean_field(*queue, target=target), "approximate (a deadline at the target)"),
        "priority shedding": (f"shed retries beyond {limit} waiting", explicit, {"shed_threshold": limit},
                              PriorityShedQueue(*queue, shed_threshold=limit), "exact (birth-death chain)"),
        "circuit breaker": (f"client circuit breakers (open at {breaker.failure_threshold:.0%} failed, "
                            f"cool-down {breaker.cool_down:g} s)", explicit,
                            {"breaker": breaker, "clients": BREAKER_CLIENTS},
                            CircuitBreakerQueue(*queue, failure_threshold=breaker.failure_threshold,
                                                window=breaker.window, cool_down=breaker.cool_down),
                            "none (the states it allows)"),
    }


def _stable_shares(model, arrival_rate: float) -> list[float]:
    """Goodput shares of the model's stable equilibria at one base rate."""
    if isinstance(model, RetryingQueue):
        return [e.goodput / arrival_rate for e in model.equilibria(arrival_rate) if e.stable]
    return [e.goodput_share for e in model.equilibria(arrival_rate) if e.stable]


def _consistent(value: float, stable: list[float], tolerance: float) -> bool:
    """A run's goodput share is consistent with the model's stable shares: near one of them or,
    where two coexist, between them (the run tipped, or recovered, while it was measured)."""
    if any(abs(value - y) <= tolerance for y in stable):
        return True
    return len(stable) > 1 and min(stable) - tolerance <= value <= max(stable) + tolerance


def _simulated_columns(values: list[list[float]], level: float) -> dict:
    """Mean and t-interval (over replications) of the three runs: normal, collapsed start, high."""
    out = {}
    for name, v in zip(("normal", "collapsed_start", "high"), values):
        est = estimate(np.asarray(v, dtype=np.float64), level)
        out.update({f"{name}_simulated": est.value, f"{name}_low": est.low, f"{name}_high": est.high})
    return out


def _model_states(model, starts, capacity: float) -> tuple[list[list[float]], list[bool]]:
    """The model's stable goodput shares at each start's load, and whether the two others are bistable."""
    equilibria = [_stable_shares(model, share * capacity) for share, _ in starts]
    bistable = [len(ys) > 1 and max(ys) - min(ys) > 0.05 for ys in equilibria[1:]]
    stable = equilibria
    if isinstance(model, CircuitBreakerQueue):  # a run may average chance tips ended by the breakers
        stable = [ys + [model.cycle_goodput_share(share * capacity)] if ys else ys
                  for ys, (share, _) in zip(equilibria, starts)]
    return stable, bistable


def _model_columns(states, simulated, tolerance: float) -> dict:
    stable, bistable = states
    # no stable state (a breaker cycling above the onset): the model makes no claim there
    agrees = all(_consistent(x, ys, tolerance) for values, ys in zip(simulated, stable) if ys for x in values)
    return dict(normal_model=max(stable[0], default=np.nan), band_model_worst=min(stable[1], default=np.nan),
                high_model_worst=min(stable[2], default=np.nan), model_band=bistable[0], agrees=agrees,
                model_traps=any(bistable))


def _goodput(simulate, servers: int, service_rate: float, arrival_rate: float, backlog: int, seed, options: dict):
    """Goodput share of one run of a defence (a batch a cluster worker can run)."""
    return simulate(servers, service_rate, arrival_rate, initial_backlog=backlog, seed=seed, **options).value


@startable
def defence_table(servers, service_rate, timeout, max_retries, *, normal_share: float = 0.5,
                  band_share: float = 0.6, high_share: float = 0.8, backoff: Backoff | None = None,
                  replications: int = 2, horizon: float = 900.0, warmup: float = 450.0, tolerance: float = 0.15,
                  seed: int = 0, level: float = 0.95, defences=DEFENCES, cluster=None) -> pd.DataFrame:
    """Goodput shares of each defence at a normal, a bistable and a high load, simulated and in the mean field.

    Returns
    -------
    pandas.DataFrame
        One row per defence: ``defence`` (its label), ``key`` (a short name); ``normal_simulated``,
        ``collapsed_start_simulated``, ``high_simulated`` (goodput per request, mean over
        replications) each with its t-interval at ``level`` (``normal_low``, ``normal_high``, ...;
        of width 0 for one replication); ``normal_cost`` (goodput given up at normal load against
        no defence, simulated; NaN without a "none" row); ``normal_model``, ``band_model_worst``,
        ``high_model_worst`` (the model's best stable goodput at normal load, its worst at the
        two others; NaN without a model or a stable state); ``mean_field`` (how far the model
        holds); ``recovers_at_band`` (every collapsed start recovered), ``stays_up_at_high``
        (every healthy start at the high load kept its goodput), ``removes_band`` (both, and the
        model has no second stable state at either load); ``model_band`` (the model has two
        stable states at the band load); ``agrees`` (every run's share within ``tolerance`` of a
        stable model share, or between two coexisting ones).

    Every run is independent and seeded by its defence, load and replication: with a ``cluster``
    (:class:`reliability.Cluster`) they run on its workers, with the same numbers;
    ``defence_table.start(...)`` returns once they are sent, with a function that waits for the frame.
    """
    c = whole("servers", servers, 1)
    capacity = c * number("service_rate", service_rate, minimum=0.0, strict=True)
    backlog = int(math.ceil(4 * capacity * timeout))
    setups = defence_setups(c, service_rate, timeout, max_retries)
    unknown = [d for d in defences if d not in setups]
    if unknown:
        raise ValueError(f"defences must be among {list(setups)}, got {unknown}")
    root = np.random.SeedSequence(whole("seed", seed, 0))
    check_cluster(cluster)
    starts = ((normal_share, 0), (band_share, backlog), (high_share, 0))
    # children in the order of DEFENCES: a defence keeps its seeds whichever others are in the table
    children = dict(zip(DEFENCES, root.spawn(len(DEFENCES))))
    # every run of every defence in one list of batches: each runs alone on its own seed
    runs = []
    for name in defences:
        _, simulate, options, _, _ = setups[name]
        common = dict(timeout=timeout, policy=FixedRetries(max_retries), backoff=backoff, horizon=horizon,
                      warmup=warmup, replications=1, **options)
        for (share, start), run_seeds in zip(starts, children[name].spawn(3)):
            runs += [(simulate, share * capacity, start, rep_seed, common) for rep_seed in run_seeds.spawn(replications)]
    functions, rates, backlogs, seeds, options = zip(*runs)
    n = len(runs)
    pending = start_batches(cluster, _goodput, functions, [c] * n, [service_rate] * n, rates, backlogs, seeds, options)
    # the mean field of each defence (a scan and bisections per load) on the workers too, after the runs
    models = start_batches(cluster, _model_states, [setups[name][3] for name in defences],
                           [starts] * len(defences), [capacity] * len(defences))
    yield
    states = dict(zip(defences, models()))
    values = iter(pending())
    rows = []
    for name in defences:
        label, _, _, _, holds = setups[name]
        # one value per replication: a run ends near one stable state, an average of runs need not
        simulated = [[next(values) for _ in range(replications)] for _ in starts]
        row = {"defence": label, "key": KEYS[name], **_simulated_columns(simulated, level), "mean_field": holds,
               "recovers_at_band": min(simulated[1]) >= RECOVERED, "stays_up_at_high": min(simulated[2]) >= RECOVERED}
        row.update(_model_columns(states[name], simulated, tolerance))
        # a lucky run may stay up where a collapsed state exists: the model has the last word on the trap
        row["removes_band"] = row["recovers_at_band"] and row["stays_up_at_high"] and not row.pop("model_traps")
        rows.append(row)
    frame = pd.DataFrame(rows)
    none = frame.loc[frame.key == "none", "normal_simulated"]
    frame.insert(frame.columns.get_loc("normal_high") + 1, "normal_cost",
                 none.iloc[0] - frame.normal_simulated if len(none) else np.nan)
    return frame


#: How much :func:`defence_checks` simulates per table size.
DEFENCE_SIZES = {"full": {"replications": 2, "horizon": 900.0}, "smoke": {"replications": 1, "horizon": 300.0}}


@startable
def defence_checks(size: str = "full", *, seed: int = 0, cluster=None) -> pd.DataFrame:
    """:func:`defence_table` at 20 servers, ``mu = 1``, timeout 3 s, 3 retries, full-jitter backoff 0.5-10 s.

    Examples
    --------
    >>> sorted(DEFENCE_SIZES)
    ['full', 'smoke']
    """
    if size not in DEFENCE_SIZES:
        raise ValueError(f"size must be one of {sorted(DEFENCE_SIZES)}, got {size!r}")
    spec = DEFENCE_SIZES[size]
    table = defence_table.start(20, 1.0, 3.0, 3, backoff=Backoff(0.5, 10.0, "full"), replications=spec["replications"],
                                horizon=spec["horizon"], warmup=spec["horizon"] / 2, seed=seed, cluster=cluster)
    yield
    return table()
