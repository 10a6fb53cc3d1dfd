"""A time-stepped model of a service through an incident: trigger, retries, capacity, rollback.

Layout: the parts of a model (:mod:`.parts`, :mod:`.platforms`), the mechanisms and events that
happen to it, each a component (:mod:`.mechanisms`, :mod:`.events`), the per-step profile of the
time-only effects (:mod:`.profile`), the kernels (:mod:`.kernels`), the step components and the
engine that calls them in a documented order (:mod:`.steps`, :mod:`.platform_steps`,
:mod:`.engine`), what is recorded (:mod:`.record`, :mod:`.timeline`) and the entry points
(:mod:`.run`: :func:`run`, :func:`simulate_incident`, :func:`simulate_sweep`).

The steady-state models of :mod:`reliability.queues` and :mod:`reliability.retry` say where a
service settles; an incident is the path between states. This module steps a few
infrastructures through time, one step of ``time_step`` seconds at a time:

* **Demand.** Each :class:`Service` sends new requests at a base rate (Poisson counts per step)
  to one :class:`Infrastructure`; load never moves between infrastructures (a split
  mid-migration).
* **Cost of a request.** An attempt holds one database connection slot for
  ``service_time`` seconds, plus ``setup_time`` when it opens a new connection
  (:class:`ConnectionCost`). Normally a share ``new_connection_fraction`` of requests opens one;
  a retry of a refused attempt opens one too.
* **Trigger.** From ``Trigger.start`` the new-connection rate (and optionally the request rate)
  is multiplied by a constant until the rollback begins; the rollback then ramps the multiple
  linearly back to 1 over ``rollback_duration`` (a fleet-wide deployment is not instantaneous).
* **Capacity.** An infrastructure has ``servers`` database servers with
  ``connections_per_server`` slots each; a load balancer spreads attempts evenly over the
  servers it routes to. Within a step each routed server is a loss system in equilibrium, so
  an attempt is refused with the Erlang B probability ``B(slots, load per server)``
  (the quasi-static approximation: a slot turns over many times per step, which is why the
  step must be longer than the holding time). An optional :class:`Autoscaler` adds servers
  after a reaction delay and a provisioning time.
* **Clients.** Refused attempts and attempts slower than the client ``timeout`` fail; a failed
  attempt is retried after a backoff delay (:class:`reliability.retry.Backoff`) if the retry
  policy allows (:class:`reliability.retry.FixedRetries`, ``RetryBudget``, ``TokenBucket``,
  ``AdaptiveThrottle``, driven here as a mean-field limiter for the whole client population).
* **Components** (:func:`run`): surges with staged or partial rollbacks, capacity lost (load
  staying or moving) and added, a connection ceiling, a retry storm with the layer that retries
  (end users' clients, a calling service, internal nodes) whose waiting attempts make the storm
  outlive its trigger, contention, load shedding and failover; the timeline gives every step at
  each observation level: attempts, requests, users.
* **Flapping mechanisms**, each optional: :class:`HealthCheck` (the load balancer ejects a
  server after consecutive failed probes and re-admits it after consecutive passes) and
  :class:`ConnectionLimit` (a server that hits its connection limit refuses everything until its
  connections drain below a low-water mark). Synchronised retries (backoff without jitter) are
  the third candidate.

Randomness: new requests and arriving retries are Poisson counts per step, outcomes binomial,
health probes Bernoulli, all from one seeded numpy Generator. Retries in flight are carried as
expected counts per future step (the Poisson approximation to many independent clients each
retrying at a random time). With nothing varying, the failure fraction settles at the retry
equilibrium of :class:`reliability.retry.RetryingConnectionPool`; the tests check this and
compare a short trigger with the discrete-event simulator of :mod:`reliability.simulate`.

Examples
--------
A ten-minute surge of new connections on a pool with little headroom. With one retry per
request the service recovers when the surge ends; with three retries, each opening a new
connection, the retry storm outlives its trigger (a metastable failure):

>>> from reliability.dynamics import (ConnectionCost, Infrastructure, Service, Trigger,
...                                   Clients, simulate_incident)
>>> from reliability.retry import FixedRetries
>>> cost = ConnectionCost(service_time=0.02, setup_time=0.05, new_connection_fraction=0.05)
>>> def last_minute(retries):
...     timeline = simulate_incident(
...         [Service("api", "db", request_rate=2000.0)],
...         [Infrastructure("db", servers=4, connections_per_server=20)],
...         cost=cost, clients=Clients(policy=FixedRetries(retries)),
...         trigger=Trigger(new_connection_multiple=10.0, rollback_start=600.0),
...         horizon=1200.0, time_step=1.0, seed=1)
...     return round(float(timeline.aggregate(60.0).failure_fraction.iloc[-1]), 2)
>>> last_minute(1), last_minute(3)
(0.01, 0.7)
"""

from ..series import Periodicity, alternation_runs, dominant_period, recovery_time
from ._checks import MAX_STEPS
from .engine import MAX_ENGINE_RETRIES, MAX_RECORDED, PlatformRun, check_time_step, run_platform
from .events import CapacityAdded, Failover, LoadShedding, Rollback
from .kernels import BlockingTable, binomial_counts, delay_kernel, poisson_counts
from .mechanisms import (RETRY_LAYERS, CapacityLoss, ConnectionCeiling, Contention, RetryStorm, Surge, Trigger,
                         trigger_shape)
from .parts import Clients, ConnectionCost, Service, connections_for_headroom, normal_offered_load
from .platforms import Autoscaler, ConnectionLimit, HealthCheck, Infrastructure
from .profile import StepProfile
from .reading import flapping_summary
from .run import run, simulate_incident, simulate_sweep
from .timeline import Sweep, Timeline

__all__ = [
    "ConnectionCost", "Trigger", "Clients", "HealthCheck", "ConnectionLimit", "Autoscaler", "Infrastructure",
    "Service", "Timeline", "Sweep", "Periodicity", "simulate_incident", "simulate_sweep", "normal_offered_load",
    "connections_for_headroom", "dominant_period", "recovery_time", "alternation_runs", "flapping_summary",
    # the component API
    "run", "Surge", "CapacityLoss", "ConnectionCeiling", "RetryStorm", "Contention", "RETRY_LAYERS",
    "Rollback", "LoadShedding", "CapacityAdded", "Failover", "StepProfile", "PlatformRun", "run_platform",
    "check_time_step", "MAX_RECORDED", "MAX_STEPS", "MAX_ENGINE_RETRIES", "BlockingTable", "delay_kernel", "poisson_counts", "binomial_counts",
    "trigger_shape",
]
