"""The retrying connection pool: a loss system whose retries open new connections (Erlang B)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validate import ArgumentTypeError, as_array, describe, number, whole
from ..queues import erlang_b
from .equilibria import Equilibrium, RetryFixedPoint, check_positive
from .policies import FixedRetries, parse_policy
from .queue import MAX_SERVERS

__all__ = ["RetryingConnectionPool"]


@dataclass(frozen=True)
class RetryingConnectionPool(RetryFixedPoint):
    """A database with at most ``connections`` connections, hit by retried connection attempts.

    A loss system (M/G/c/c): an attempt that finds every connection slot taken is refused at
    once and retried under ``policy``; an accepted attempt holds its slot for its service
    (mean ``1 / service_rate``) plus ``setup_time`` if it opens a new connection. A share
    ``new_connection_fraction`` of first attempts opens a new connection; a retry of a refused
    attempt has no connection yet, so it opens one too (``retries_need_new_connection=True``)
    or, if False, reuses with the same share as first attempts. The mean holding time therefore
    grows with the share of retries -- a trigger seen in practice: a sharp rise in new database
    connections. Blocking is Erlang B (insensitive to the holding-time distribution) at offered
    load ``a = lambda0 * (A / mu + setup_time * new(A))`` with
    ``new(A) = f + (A - 1) * (1 or f)`` new connections per request, so the fixed point is
    ``p = B(connections, a(A(p)))``.

    The mean field treats every retry as an independent Poisson arrival, which needs retries
    spread out by a backoff comparable to the holding time. Retries sent at once into a full
    pool meet the same busy slots and are refused together: in simulation (20 connections,
    set-up 10x the service time) a 4x surge then leaves no storm behind, while with a
    ``Backoff(2, 20, "full")`` the pool settles in the degraded state this model predicts
    (failures 0.873 simulated against 0.876, goodput 2.53 against 2.47 per second).

    Unlike a saturating queue, Erlang B is smooth and below 1, so there is no ``p = 1``
    state: bistability needs the feedback slope ``dB/da * da/dp`` to exceed 1 somewhere,
    which takes a steep B (many connections) and a strong feedback (set-up time large
    against the service time). Far above capacity ``B ~ 1 - c/a`` and the slope tends to
    ``(1 - p) A'(p) / A(p) < 1``: a pure retry loop on a loss system is *not* bistable there.

    Examples
    --------
    >>> pool = RetryingConnectionPool(100, service_rate=1.0, setup_time=0.0, new_connection_fraction=0.0, policy=3)
    >>> len(pool.equilibria(80.0))   # without set-up cost: a single, healthy state
    1
    """

    connections: int
    service_rate: float
    setup_time: float
    new_connection_fraction: float
    policy: Any = 3
    retries_need_new_connection: bool = True

    def __post_init__(self):
        owner = "RetryingConnectionPool"
        object.__setattr__(self, "connections", whole("connections", self.connections, minimum=1,
                                                      maximum=MAX_SERVERS))
        object.__setattr__(self, "service_rate", check_positive(owner, "service_rate", self.service_rate))
        object.__setattr__(self, "setup_time", check_positive(owner, "setup_time", self.setup_time, strict=False))
        object.__setattr__(self, "new_connection_fraction",
                           number(f"{owner}.new_connection_fraction", self.new_connection_fraction,
                                  minimum=0.0, maximum=1.0))
        if not isinstance(self.retries_need_new_connection, (bool, np.bool_)):
            raise ArgumentTypeError(f"{owner}.retries_need_new_connection must be True or False, "
                                    f"got {describe(self.retries_need_new_connection)}")
        object.__setattr__(self, "retries_need_new_connection", bool(self.retries_need_new_connection))
        object.__setattr__(self, "policy", parse_policy(self.policy, name="policy", no_retries=FixedRetries(0),
                                                        require=("amplification", "max_attempts")))
        # the scans run to 50 c A (1 + s mu) Erlangs and form A / mu + s A per request: all must be floats
        attempts = float(self.policy.max_attempts)
        per_request = attempts / self.service_rate + self.setup_time * attempts
        if not (math.isfinite(per_request) and math.isfinite(self._scan_end()[0])):
            raise ValueError(f"{owner}: connections x attempts x (1 + setup_time x service_rate) and "
                             f"1 / service_rate must stay within the float range, got service_rate="
                             f"{self.service_rate!r}, setup_time={self.setup_time!r}, connections={self.connections}")

    _x_limit = math.inf

    @property
    def _retry_new_share(self) -> float:
        return 1.0 if self.retries_need_new_connection else self.new_connection_fraction

    def _new_connections(self, amplification):
        """New connections per request when it makes ``amplification`` attempts on average.

        ``f + (A - 1) g`` for ``A >= 1``; below 1 (an adaptive throttle turning away first
        attempts locally) only the share ``A`` of first attempts is sent: ``A f``.
        """
        a = np.asarray(amplification, dtype=np.float64)
        return self.new_connection_fraction * np.minimum(a, 1.0) + np.maximum(a - 1.0, 0.0) * self._retry_new_share

    def mean_holding_time(self, amplification) -> float:
        """Mean slot holding time of an attempt when requests make ``amplification`` attempts."""
        a = as_array("amplification", amplification, minimum=0.0)
        # at A = 0 nothing is sent; the limit A -> 0 is the holding time of a first attempt
        per_attempt = np.where(a >= 1.0, self._new_connections(a) / np.where(a > 0, a, 1.0),
                               self.new_connection_fraction)
        out = 1.0 / self.service_rate + self.setup_time * per_attempt
        return float(out) if out.ndim == 0 else out

    def _load_per_request(self, amplification):
        a = np.asarray(amplification, dtype=np.float64)
        return a / self.service_rate + self.setup_time * self._new_connections(a)

    def _failure(self, offered_load):
        return np.asarray(erlang_b(self.connections, np.asarray(offered_load, dtype=np.float64)), dtype=np.float64)

    def _x_of(self, arrival_rate, amplification):
        return arrival_rate * self._load_per_request(amplification)

    def _amplification_of(self, arrival_rate: float, offered_load: float) -> float:
        g, f, s = self._retry_new_share, self.new_connection_fraction, self.setup_time
        per_request = offered_load / arrival_rate if arrival_rate > 0 else 0.0
        first = 1.0 / self.service_rate + s * f  # load of a request that makes exactly one attempt
        if per_request <= first:
            return per_request / first
        return (per_request - s * (f - g)) / (1.0 / self.service_rate + s * g)

    def _arrival_rate_for(self, offered_load, amplification):
        return offered_load / self._load_per_request(amplification)

    @property
    def _x_scale(self) -> float:
        return float(self.connections)

    def _scan_end(self) -> tuple[float, bool]:
        # No saturation (a loss system): scan far enough that B is within a few % of 1 - c/a,
        # where the map's slope is below 1 (see the class notes). A soft end.
        attempts = float(self.policy.max_attempts)
        return 50.0 * self.connections * attempts * (1.0 + self.setup_time * self.service_rate) + 100.0, False

    def _record(self, arrival_rate, p, amplification, offered_load, slope, stable, state) -> Equilibrium:
        attempt_rate = arrival_rate * amplification
        carried = attempt_rate * (1.0 - p)
        return Equilibrium(
            arrival_rate=arrival_rate, failure_probability=p, amplification=amplification,
            attempt_rate=attempt_rate, offered_load=offered_load, throughput=carried, goodput=carried,
            utilisation=offered_load * (1.0 - p) / self.connections,
            slope=slope, stable=bool(stable), state=state,
        )
