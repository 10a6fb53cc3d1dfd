"""Retries: how much load they add, the policies that bound them, and the retry storms they sustain.

Most severe overload outages are kept going not by their trigger but by retries: clients retry
failed or slow requests, the extra load makes more requests fail, and the service can stay down
after the trigger is gone -- a *metastable* failure (Bronson et al., HotOS 2021; Huang et al.,
OSDI 2022). The subpackage holds, one file per idea:

* :mod:`.amplification`: :func:`expected_attempts`, :func:`layered_amplification`;
* :mod:`.policies`: the retry policies a client can run (:class:`FixedRetries`,
  :class:`RetryBudget`, :class:`TokenBucket`, :class:`AdaptiveThrottle`), :class:`Backoff` and
  the one parser :func:`parse_policy`; a policy answers every question through its methods:
  its amplification, its per-step gate (:mod:`.gates`) and its per-event limiter
  (:mod:`.limiters`);
* :mod:`.fixed_point`: the one solver of ``p = F(x0 A(p))`` (a root scan and a polish), used by
  the models below, by :mod:`reliability.headroom` and by the incident code;
* :mod:`.equilibria`, :mod:`.queue`, :mod:`.pool`: the mean-field equilibria of a retrying
  M/M/c queue (:class:`RetryingQueue`) and of a retrying connection pool
  (:class:`RetryingConnectionPool`), their metastable region and recovery threshold, and
  :func:`metastability_map` for the notebooks;
* :mod:`.fluid` (integrated by :mod:`.delayed`): the delayed fluid model of a trigger (a load
  spike or a capacity drop), the tipping trigger and load, and the recovery after an outage.
"""

from .amplification import expected_attempts, layered_amplification
from .equilibria import Equilibrium, equilibria_frame
from .fixed_point import FixedPointMap
from .fluid import TippingPoint
from .policies import AdaptiveThrottle, Backoff, FixedRetries, RetryBudget, TokenBucket, parse_policy, step_gate
from .pool import RetryingConnectionPool
from .queue import RetryingQueue, metastability_map

__all__ = [
    "expected_attempts",
    "layered_amplification",
    "FixedRetries",
    "RetryBudget",
    "TokenBucket",
    "AdaptiveThrottle",
    "Backoff",
    "parse_policy",
    "step_gate",
    "FixedPointMap",
    "Equilibrium",
    "TippingPoint",
    "RetryingQueue",
    "RetryingConnectionPool",
    "equilibria_frame",
    "metastability_map",
]
