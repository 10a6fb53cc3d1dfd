"""Migration headroom: the spare capacity each side of a split (dual-infrastructure) service needs.

Files: :mod:`.capacity` (the capacity models, without retries), :mod:`.side` (one side's
retry fixed point and worst stable state), :mod:`.sizing` (servers needed, largest surge,
autoscaling), :mod:`.split` (split against pooled, the migration tax), :mod:`.inverse` (from
an observed failure back to surges and capacities) and :mod:`.sweeps` (tidy DataFrames).

During a migration the load is split between the old and the new infrastructure and cannot move
between them: a share ``f`` of the base load ``a`` (Erlangs) runs on the new side, ``1 - f`` on
the old. Each side must absorb a surge on its own. This module answers

* how many servers each side needs, and one pooled system would need, to keep the failure
  probability at most ``target`` under a surge of ``k`` times the base request (or
  new-connection) rate: :func:`split_requirement`, :func:`pooled_requirement`,
  :func:`migration_tax` (split minus pooled), :func:`headroom_sweep`;
* what each side sees at given capacities: :func:`failure_probability`, :func:`side_state`,
  :func:`split_failure`, :func:`failure_sweep`; and the largest surge a side absorbs:
  :func:`largest_absorbed_surge`;
* backwards, from an observed failure fraction to the surges and headrooms consistent with it:
  :func:`surge_for_failure`, :func:`headroom_for_failure`.

The capacity model
------------------
:class:`CapacityModel` says what a server is and what "failure" means:

* ``erlang_b``: connection slots, a loss system; failure = blocking ``B(c, x)``;
* ``engset``: connection slots fed by a finite number of sources (app servers); failure = the
  call congestion seen by a request. The base load is Engset's offered traffic
  ``N beta / (1 + beta)`` (Iversen, *Teletraffic Engineering*, ch. 8), so one source offers
  ``beta = a / (N - a)``; a surge multiplies the request rate of an idle source, so the offered
  traffic saturates at ``N`` however large the surge;
* ``erlang_c``: a request queue (M/M/c); failure = ``P(W > wait_time)`` (``P(wait)`` at 0);
* ``erlang_a``: a request queue whose clients abandon (M/M/c+M); failure = ``P(abandon)``
  (default) or ``P(wait)``.

Surge and retries: the fixed point
----------------------------------
A side with ``c`` servers and base load ``a`` under a surge ``k`` with a retry policy of
amplification ``A(p)`` (attempts per request when each attempt fails with probability ``p``,
:mod:`reliability.retry`) is offered ``x = k a A(p)`` Erlangs (Engset: each source's rate is
multiplied by ``k A(p)``) and fails attempts with probability ``F(c, x)``, so ``p`` solves the
fixed point

    p = F(c, k a A(p)).

It can have several solutions (e.g. a healthy and a collapsed state of a retrying queue). Every
answer here uses the **worst stable** one, the largest ``p`` at which ``F(c, k a A(p)) - p``
changes sign from + to - (the state a large enough disturbance leaves the side in), and says
so: results carry ``metastable`` (a better stable state also exists) and ``state``
(``"stable"``, ``"collapsed"`` -- ``p = 1``, a saturated queue -- ``"throttled"`` -- held at an
adaptive throttle's failure ceiling -- or ``"oscillating"``: the map's slope is below -1 there,
so the round-by-round dynamics flap). The roots are found by the one fixed-point solver of
:mod:`reliability.retry.fixed_point`: a scan of the map on a fixed grid of ``p`` (uniform plus
geometric clusters at both ends, about 740 points) and a polish of each sign change (Illinois
regula falsi); two roots closer together than the grid spacing can be missed (tests compare
with a scan of 200,000 points).

A side meets the target when its worst stable state fails at most ``target``: that is
``F(c, k a A(target)) <= target`` and ``F(c, k a A(p)) < p`` at every ``p > target``. The first
condition alone is the retry-aware closed form (solved exactly by the inverse functions of
:mod:`reliability.queues`); the second rules out a worse state. Since ``F`` falls with ``c``
and rises with ``k``, the requirement and the largest absorbed surge are found by bisection
between the closed-form brackets (no retries at ``A(target)`` and at ``max A``).

Headroom and the migration tax
------------------------------
The headroom of a side is ``servers / base load - 1``. The migration tax is the split
requirement minus the pooled one, in servers and as a share of the pooled requirement. For
a delay target in the Halfin-Whitt regime ``c = a + beta sqrt(a)``, an even split needs
``2 beta sqrt(a/2) = sqrt(2) beta sqrt(a)`` of safety margin ``c - a`` against ``beta sqrt(a)``
pooled: the margin ratio tends to ``sqrt(2)`` as the load grows (at realistic sizes it is not
quite that; :func:`migration_tax` reports the exact figure).

Pooling never needs more servers than the split when pooling lowers the failure probability at
every load, as it does for Erlang B and C (Smith and Whitt, "Resource sharing for efficiency in
traffic systems", 1981): then every state the pooled system can be stuck in is one a side can be
stuck in too. The tests check it for every model here except one: Erlang A's ``P(wait)`` with
retries. Its worst state is near saturation (every attempt waits, every wait is retried), and an
overloaded system waits with a probability that tends to 1 *faster* the larger it is, so the
pooled system can keep that state at sizes where the halves have lost it.
"""

from .capacity import KINDS, CapacityModel
from .inverse import HeadroomRange, SurgeRange, headroom_for_failure, largest_absorbed_surge, surge_for_failure
from .side import SideState, failure_probability, parse_retry_policy, side_state
from .sizing import (
    DEFAULT_MAX_SERVERS,
    DEFAULT_MAX_SURGE,
    Autoscaling,
    AutoscalingOutcome,
    SideRequirement,
    servers_needed,
)
from .split import (
    SURGE_SIDES,
    MigrationTax,
    SplitFailure,
    SplitLoads,
    SplitRequirement,
    migration_tax,
    pooled_requirement,
    split_failure,
    split_loads,
    split_requirement,
)
from .sweeps import failure_sweep, headroom_sweep

__all__ = [
    "CapacityModel",
    "Autoscaling",
    "SideState",
    "SplitFailure",
    "SideRequirement",
    "AutoscalingOutcome",
    "SplitRequirement",
    "MigrationTax",
    "SurgeRange",
    "HeadroomRange",
    "SplitLoads",
    "parse_retry_policy",
    "split_loads",
    "failure_probability",
    "side_state",
    "split_failure",
    "servers_needed",
    "pooled_requirement",
    "split_requirement",
    "migration_tax",
    "largest_absorbed_surge",
    "surge_for_failure",
    "headroom_for_failure",
    "headroom_sweep",
    "failure_sweep",
    "KINDS",
    "SURGE_SIDES",
    "DEFAULT_MAX_SERVERS",
    "DEFAULT_MAX_SURGE",
]
