"""Server-side defences against retry storms: the mean field beside the simulator, one row per defence.

Each defence is simulated (:func:`reliability.simulate.escape.simulate_goodput`) three times: started
empty at a normal load (its cost: the goodput it gives up when nothing is wrong), started
collapsed (a backlog of ``4 c mu T`` attempts) at a load inside the unbounded queue's bistable
band (does it recover: the band removed?), and started empty at a high load (does it stay up?).
Where the defence has a mean-field steady state (:class:`reliability.retry.RetryingQueue` for
none, :class:`reliability.retry.defences.BoundedRetryingQueue` for a bounded queue, a
concurrency limit and "do not retry") the model's stable goodput shares stand beside the
simulated ones: a run agrees when it ends within ``tolerance`` of one of them.

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

from .._validate import number, whole
from ..retry import Backoff, FixedRetries, RetryingQueue
from ..retry.defences import BoundedRetryingQueue
from ..simulate.escape import simulate_goodput

__all__ = ["DEFENCES", "DEFENCE_SIZES", "defence_checks", "defence_table"]

#: The defences, by name: simulator options and the mean-field model (None: simulated only).
DEFENCES = ("none", "drop expired work", "bounded queue", "bounded queue, do not retry", "concurrency limit")
#: A simulated run "recovered" when its goodput share is at least this.
RECOVERED = 0.9


def _setups(servers: int, service_rate: float, timeout: float, max_retries: int) -> dict:
    """``name -> (label, simulator options, mean-field model or None)``."""
    bound = int(math.ceil(servers * service_rate * timeout))   # a queue that a timeout's worth of service clears
    limit = max(1, servers // 2)                                # a tight concurrency limit: c + c/2 in flight

    def bounded(k, retry_rejected):
        return BoundedRetryingQueue(servers, service_rate, timeout, max_retries, queue_limit=k,
                                    retry_rejected=retry_rejected)

    return {
        "none": ("none (unbounded FIFO)", {}, RetryingQueue(servers, service_rate, timeout, FixedRetries(max_retries))),
        "drop expired work": ("deadline: drop expired work", {"drop_expired": True}, None),
        "bounded queue": (f"bounded queue (K = {bound})", {"queue_limit": bound}, bounded(bound, True)),
        "bounded queue, do not retry": (f"bounded queue (K = {bound}), do not retry",
                                        {"queue_limit": bound, "retry_rejected": False}, bounded(bound, False)),
        "concurrency limit": (f"concurrency limit (K = {limit})", {"queue_limit": limit}, bounded(limit, True)),
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


def defence_table(servers, service_rate, timeout, max_retries, *, normal_share: float = 0.5,
                  band_share: float = 0.6, high_share: float = 0.8, backoff: Backoff | None = None,
                  replications: int = 2, horizon: float = 900.0, warmup: float = 450.0, tolerance: float = 0.15,
                  seed: int = 0, defences=DEFENCES) -> pd.DataFrame:
    """Goodput shares of each defence at a normal, a bistable and a high load, simulated and in the mean field.

    Returns
    -------
    pandas.DataFrame
        One row per defence: ``defence``; ``normal_simulated``, ``collapsed_start_simulated``,
        ``high_simulated`` (goodput per request, mean over replications); ``normal_model``,
        ``band_model_worst``, ``high_model_worst`` (the model's best stable goodput at normal
        load, its worst at the two others; NaN without a model); ``recovers_at_band`` (every
        collapsed start recovered), ``stays_up_at_high`` (every healthy start at the high load
        kept its goodput), ``removes_band`` (both, and where a model exists, it has no second stable
        state at either load); ``model_band`` (the model has two stable states at the
        band load; None without a model); ``agrees`` (every run's share within
        ``tolerance`` of a stable model share, or between two coexisting ones; None without a model).
    """
    c = whole("servers", servers, 1)
    capacity = c * number("service_rate", service_rate, minimum=0.0, strict=True)
    backlog = int(math.ceil(4 * capacity * timeout))
    setups = _setups(c, service_rate, timeout, max_retries)
    unknown = [d for d in defences if d not in setups]
    if unknown:
        raise ValueError(f"defences must be among {list(setups)}, got {unknown}")
    root = np.random.SeedSequence(whole("seed", seed, 0))
    rows = []
    for name, child in zip(defences, root.spawn(len(defences))):
        label, options, model = setups[name]
        common = dict(timeout=timeout, policy=FixedRetries(max_retries), backoff=backoff, horizon=horizon,
                      warmup=warmup, replications=1, **options)
        starts = ((normal_share, 0), (band_share, backlog), (high_share, 0))
        # one value per replication: a run ends near one stable state, an average of runs need not
        simulated = [[simulate_goodput(c, service_rate, share * capacity, initial_backlog=start, seed=rep_seed,
                                       **common).value for rep_seed in run_seeds.spawn(replications)]
                     for (share, start), run_seeds in zip(starts, child.spawn(3))]
        means = [float(np.mean(v)) for v in simulated]
        row = {"defence": label, "normal_simulated": means[0], "collapsed_start_simulated": means[1],
               "high_simulated": means[2], "recovers_at_band": min(simulated[1]) >= RECOVERED,
               "stays_up_at_high": min(simulated[2]) >= RECOVERED}
        row["removes_band"] = row["recovers_at_band"] and row["stays_up_at_high"]
        if model is None:
            row.update(normal_model=np.nan, band_model_worst=np.nan, high_model_worst=np.nan, model_band=None,
                       agrees=None)
        else:
            stable = [_stable_shares(model, share * capacity) for share, _ in starts]
            bistable = [max(ys) - min(ys) > 0.05 for ys in stable[1:]]
            # a lucky run may stay up where a collapsed state exists: the model has the last word on the trap
            row["removes_band"] = row["removes_band"] and not any(bistable)
            row.update(normal_model=max(stable[0]), band_model_worst=min(stable[1]), high_model_worst=min(stable[2]),
                       model_band=bistable[0],
                       agrees=all(_consistent(x, ys, tolerance) for values, ys in zip(simulated, stable) for x in values))
        rows.append(row)
    return pd.DataFrame(rows)


#: How much :func:`defence_checks` simulates per table size.
DEFENCE_SIZES = {"full": {"replications": 2, "horizon": 900.0}, "smoke": {"replications": 1, "horizon": 300.0}}


def defence_checks(size: str = "full", *, seed: int = 0) -> pd.DataFrame:
    """:func:`defence_table` at 20 servers, ``mu = 1``, timeout 3 s, 3 retries, full-jitter backoff 0.5-10 s.

    Examples
    --------
    >>> sorted(DEFENCE_SIZES)
    ['full', 'smoke']
    """
    if size not in DEFENCE_SIZES:
        raise ValueError(f"size must be one of {sorted(DEFENCE_SIZES)}, got {size!r}")
    spec = DEFENCE_SIZES[size]
    return defence_table(20, 1.0, 3.0, 3, backoff=Backoff(0.5, 10.0, "full"), replications=spec["replications"],
                         horizon=spec["horizon"], warmup=spec["horizon"] / 2, seed=seed)
