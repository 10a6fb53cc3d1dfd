"""The retrying M/M/c queue: the mean-field model of a retry storm, and its metastability map."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._validate import as_array, describe, whole
from ..queues.erlang_c import _response_time_sf
from . import fluid
from .equilibria import Equilibrium, RetryFixedPoint, check_positive, rate
from .fluid import TippingPoint
from .policies import MAX_RETRIES, FixedRetries, parse_policy

__all__ = ["RetryingQueue", "metastability_map", "MAX_SERVERS"]

#: Most servers of a retrying queue (the equilibrium scans are checked to this size).
MAX_SERVERS = 10**12


@dataclass(frozen=True)
class RetryingQueue(RetryFixedPoint):
    """An M/M/c queue whose clients time out and retry: the mean-field retry-storm model.

    ``servers`` servers with service rate ``service_rate`` (``c``, ``mu``) serve attempts FCFS
    from an infinite queue. Requests arrive at base rate ``lambda0``. A client gives up on an
    attempt whose response time (wait + service) exceeds ``timeout`` and retries it under
    ``policy``; the abandoned attempt still occupies a server when its turn comes (the server
    does not know the client left), so a saturated queue has high throughput and near-zero
    goodput -- "up, but down".

    Mean field: each attempt fails independently with probability
    ``p = F(lambda) = P(W + S > timeout)`` of M/M/c at the total attempt rate
    ``lambda = lambda0 * A(p)`` (:func:`reliability.queues.response_time_sf`), and ``p = 1``
    where ``lambda >= c mu`` (no steady state: the backlog grows without bound). Equilibria are
    the fixed points ``p = F(lambda0 A(p))``. Treating attempts as Poisson and their failures as
    independent is the approximation; the simulator (:mod:`reliability.simulate`) checks it.
    Client backoff delays retries but does not change these steady-state rates.

    The collapsed state ``p = 1`` exists exactly when ``lambda0 * A(1) >= c mu``; for a fixed
    cap of ``r`` retries that is ``lambda0 >= c mu / (r + 1)``, the recovery threshold (load
    must be shed below it to recover). The healthy state exists below the onset threshold
    (the fold of the healthy branch). Between the two the queue is metastable. With
    ``c = 10, mu = 1, timeout = 2, r = 3`` that is ``0.25 <= lambda0 / (c mu) < 0.661``; in
    simulation the healthy state at ``0.4 c mu`` outlives a 2000 s run, while at ``0.5 c mu``
    queueing noise alone tips it within about 10^3 s -- metastable states have finite lifetimes
    that this mean-field model does not give.

    Parameters
    ----------
    servers : int
        ``c >= 1``.
    service_rate : float
        ``mu > 0`` per server.
    timeout : float
        Client timeout ``> 0`` on the response time of an attempt.
    policy : int or retry policy, optional
        A whole number ``r`` means :class:`FixedRetries` ``(r)``. Default 3.

    Examples
    --------
    >>> queue = RetryingQueue(servers=10, service_rate=1.0, timeout=2.0, policy=3)
    >>> [e.state for e in queue.equilibria(5.0)]
    ['healthy', 'unstable', 'collapsed']
    >>> queue.recovery_threshold()   # c mu / (r + 1)
    2.5
    """

    servers: int
    service_rate: float
    timeout: float
    policy: Any = 3

    _timed_out = True  # every failure of this model is a client timeout

    def __post_init__(self):
        object.__setattr__(self, "servers", whole("servers", self.servers, minimum=1, maximum=MAX_SERVERS))
        object.__setattr__(self, "service_rate", check_positive("RetryingQueue", "service_rate", self.service_rate))
        object.__setattr__(self, "timeout", check_positive("RetryingQueue", "timeout", self.timeout))
        if not math.isfinite(self.capacity):
            raise ValueError("RetryingQueue.service_rate x servers must be a finite capacity, got "
                             f"service_rate={self.service_rate!r} with servers={self.servers}")
        object.__setattr__(self, "policy", parse_policy(self.policy, name="policy", no_retries=FixedRetries(0),
                                                        require=("amplification", "max_attempts")))

    @property
    def capacity(self) -> float:
        """``c mu``: attempts per unit time the servers can complete."""
        return self.servers * self.service_rate

    @property
    def _x_limit(self) -> float:
        return self.capacity

    @property
    def _x_per_load(self) -> float:
        return self.service_rate

    @property
    def _x_scale(self) -> float:
        return self.capacity

    def _scan_end(self) -> tuple[float, bool]:
        # the queue saturates at c mu: a hard end of the equilibrium curve
        return self.capacity, True

    def _failure(self, attempt_rate):
        load = np.asarray(attempt_rate, dtype=np.float64) / self.service_rate
        # the attempt rates are the search's own (finite, >= 0): the formula without the checks at its door
        return _response_time_sf(float(self.servers), load, float(self.timeout), float(self.service_rate))

    def _x_of(self, arrival_rate, amplification):
        return arrival_rate * np.asarray(amplification, dtype=np.float64)

    def _amplification_of(self, arrival_rate: float, attempt_rate: float) -> float:
        return attempt_rate / arrival_rate if arrival_rate > 0 else 0.0

    def _arrival_rate_for(self, attempt_rate, amplification):
        with np.errstate(divide="ignore"):
            return np.where(amplification > 0, attempt_rate / np.where(amplification > 0, amplification, 1.0), np.inf)

    def _record(self, arrival_rate, p, amplification, attempt_rate, slope, stable, state) -> Equilibrium:
        throughput = min(attempt_rate, self.capacity)
        goodput = 0.0 if p >= 1.0 else attempt_rate * (1.0 - p)
        return Equilibrium(
            arrival_rate=arrival_rate, failure_probability=p, amplification=amplification,
            attempt_rate=attempt_rate, offered_load=attempt_rate / self.service_rate,
            throughput=throughput, goodput=goodput, utilisation=throughput / self.capacity,
            slope=slope, stable=bool(stable), state=state,
        )

    # -- the fluid model of a surge (reliability.retry.fluid) ---------------------------
    def _conditional_failure(self, backlog):
        """P(response > timeout) for an attempt that finds ``backlog`` requests in the system
        (:func:`reliability.retry.fluid.conditional_failure`)."""
        return fluid.conditional_failure(self, backlog)

    def fluid_equilibria(self, arrival_rate) -> tuple[float, ...]:
        """Backlogs at which the fluid model is at rest (``d Q / dt = 0``) for a base rate."""
        return fluid.fluid_equilibria(self, self.checked_rate("arrival_rate", arrival_rate))

    def tipping_trigger(self, arrival_rate, surge_multiple, *, trigger: str = "load", backoff=None,
                        rtol: float = 1e-3) -> TippingPoint:
        """Shortest trigger of a size that leaves the queue collapsed.

        ``trigger="load"`` (a load spike): the request rate is ``surge_multiple`` x ``arrival_rate``
        for a while. ``trigger="capacity"`` (a capacity drop): the servers are divided by
        ``surge_multiple`` (:func:`reliability.retry.fluid.trigger_servers`; every server gone when
        that rounds to 0) while the request rate stays; attempts then time out with the tail of
        the servers left. These are the two trigger kinds of Huang et al. (OSDI 2022).

        Fluid model of the backlog ``Q`` (requests in system, abandoned attempts included):
        ``dQ/dt = (attempts arriving) - mu min(Q, c)``. An attempt sent when the backlog is ``Q``
        times out with the exact probability :meth:`_conditional_failure` ``p(Q)`` (FCFS: its wait
        depends only on who is ahead of it), and its retry arrives ``timeout`` (plus the mean
        backoff of that retry, if ``backoff`` is given) later. Retries are tracked by generation,
        so the model is a delay differential equation, integrated with a step of
        ``timeout / 40`` (the attempts of one step see the mean ``p`` over the backlogs it passes
        through, and a surge may end within a step, so surges shorter than a step, down to an
        impulse, are resolved); queue fluctuations are averaged out (that is the approximation). Its
        rest points are those of the delay-free ODE ``dQ/dt = lambda0 A(p(Q)) - mu min(Q, c)``:
        the healthy backlog ``Q_h`` and, above it, the unstable ``Q_u`` beyond which the
        retry-inflated load exceeds ``c mu``. The smallest surge duration after which the
        backlog runs away (to where every attempt times out) is found by bisection to ``rtol``.

        ``quasi_static_duration`` is the same question for the delay-free ODE (retries sent at
        once): ``integral_{Q_h}^{Q_u} dQ / drift(Q)``. It underestimates the trigger, because a
        surge shorter than a timeout has not yet produced its retries.

        The fluid model's healthy state fails less than the M/M/c equilibrium (no queueing
        variability) and ignores that noise alone can tip a metastable queue; check against
        :func:`reliability.simulate.simulate_retrying_queue`. For a budget or token bucket each
        retry generation is thinned alike to reproduce the policy's steady-state amplification;
        :class:`AdaptiveThrottle` is not supported.
        """
        return fluid.tipping_trigger(self, self.checked_rate("arrival_rate", arrival_rate), surge_multiple,
                                     trigger=trigger, backoff=backoff, rtol=rtol)

    def tipping_load(self, surge_multiple, duration, *, trigger: str = "load", backoff=None,
                     rtol: float = 1e-3) -> float:
        """Lowest base rate at which a trigger of this size and duration tips the queue
        (:func:`reliability.retry.fluid.tipping_load`)."""
        return fluid.tipping_load(self, surge_multiple, duration, trigger=trigger, backoff=backoff, rtol=rtol)

    def fluid_recovery_time(self, arrival_rate, outage, *, level=None, backoff=None) -> float:
        """Time after an outage of ``outage`` seconds until the fluid backlog falls to ``level``
        (:func:`reliability.retry.fluid.fluid_recovery_time`)."""
        return fluid.fluid_recovery_time(self, arrival_rate, outage, level=level, backoff=backoff)


def _verdict(equilibria) -> str:
    stable = [e for e in equilibria if e.stable]
    if len(stable) >= 2:
        return "metastable"
    if not stable:
        if any(e.state == "oscillating" for e in equilibria):
            return "oscillating"
        return "unstable"  # only at an exact tangency
    state = stable[0]
    if state.state in ("collapsed", "throttled"):
        return state.state
    return "overloaded" if state.failure_probability >= 0.5 else "healthy"


def metastability_map(servers, service_rate, timeout, load_shares, max_retries=(0, 1, 2, 3, 5),
                      policy_factory=None) -> pd.DataFrame:
    """Verdict of a retrying M/M/c queue over base load share x retry cap (tidy, one row per point).

    Parameters
    ----------
    servers, service_rate, timeout :
        The queue (see :class:`RetryingQueue`).
    load_shares : array_like
        Base request rate as a share of capacity, ``lambda0 / (c mu)``, each >= 0.
    max_retries : sequence of int
        Retry caps to sweep.
    policy_factory : callable, optional
        ``policy_factory(r)`` gives the policy for cap ``r`` (default :class:`FixedRetries`).

    Returns
    -------
    pandas.DataFrame
        Columns ``max_retries, load_share, arrival_rate, equilibria, stable_equilibria, verdict``
        (``healthy``: one stable state, most attempts succeed; ``overloaded``: one stable state,
        most attempts fail; ``metastable``: a healthy and a failed stable state coexist;
        ``collapsed``: only the saturated state; ``throttled``: only the throttled state;
        ``oscillating``: no stable state, the service flaps (starving token bucket);
        ``unstable``: no stable state at all, only at an exact tangency),
        ``healthy_failure_probability`` and ``healthy_goodput_share`` (NaN where no healthy
        state exists), and the analytic boundary for that cap: ``onset_share`` and
        ``recovery_share`` (thresholds divided by ``c mu``).

    Examples
    --------
    >>> frame = metastability_map(10, 1.0, 2.0, [0.2, 0.5, 0.99], max_retries=[0, 3])
    >>> frame.verdict.tolist()
    ['healthy', 'healthy', 'overloaded', 'healthy', 'metastable', 'collapsed']
    """
    shares = np.atleast_1d(as_array("load_shares", load_shares, minimum=0.0)).ravel()
    caps = [int(r) for r in np.atleast_1d(as_array("max_retries", max_retries, minimum=0.0, integer=True,
                                                   maximum=MAX_RETRIES)).ravel()]
    factory = FixedRetries if policy_factory is None else policy_factory
    rows = []
    for r in caps:
        queue = RetryingQueue(servers, service_rate, timeout, factory(r))
        capacity = queue.capacity
        onset = queue.onset_threshold() / capacity
        recovery = queue.recovery_threshold() / capacity
        rates = []
        for share in map(float, shares):  # Python floats: a product beyond the range is inf, not a warning
            try:
                rates.append(queue.checked_rate("arrival_rate", share * capacity))
            except ValueError as error:  # a share so large that its attempt rate leaves the float range
                raise ValueError(f"load_shares: {describe(share)} x capacity {capacity:g}: {error}") from None
        for share, equilibria in zip(map(float, shares), queue.equilibria_of(rates)):
            healthy = [e for e in equilibria if e.state == "healthy"]
            rows.append({
                "max_retries": r,
                "load_share": float(share),
                "arrival_rate": float(share * capacity),
                "equilibria": len(equilibria),
                "stable_equilibria": sum(e.stable for e in equilibria),
                "verdict": _verdict(equilibria),
                "healthy_failure_probability": healthy[0].failure_probability if healthy else np.nan,
                # goodput / lambda0 = A(p) (1 - p): also its limit at share 0, where the ratio is 0 / 0
                "healthy_goodput_share": (healthy[0].amplification * (1.0 - healthy[0].failure_probability)
                                          if healthy else np.nan),
                "onset_share": onset,
                "recovery_share": recovery,
            })
    return pd.DataFrame(rows)
