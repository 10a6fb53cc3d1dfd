"""Stochastic discrete-event simulation: the independent check on every analytic model.

Nothing here calls an analytic formula. The simulators only draw exponential inter-arrival,
service and patience times from a seeded numpy ``Generator`` and follow each customer through
the queue, so their agreement with the formulas of :mod:`reliability` (within a confidence
interval) is evidence that the formulas are right, and their disagreement a reason to look.
The same seed and parameters always give the same numbers.

* ``mmc.py`` -- the M/M/c family: :func:`simulate_mmc` (FCFS, infinite queue),
  :func:`simulate_mmcc` (loss, Erlang B), :func:`simulate_mmc_abandonment` (M/M/c+M,
  Erlang A) and :func:`simulate_mmck` (at most ``K`` in the system). They exploit the
  structure of FCFS queues instead of a general event heap (``kernels.py``: Kiefer-Wolfowitz
  on an ``R x c`` array of server free times, all replications at once; the Lindley recursion
  vectorised over customers for one server).
* ``engset.py`` -- :func:`simulate_engset`, the finite-source loss system.
* ``estimate.py`` -- :class:`Estimate` (mean over replications, Student-t interval) and
  :class:`QueueSimulation`, the summary of the four above.
* ``retrying.py`` -- :func:`simulate_retrying_queue` and its loss variant
  :func:`simulate_connection_pool`: clients time out and retry after a backoff under a policy
  from :mod:`reliability.retry` (driven through ``policy.limiter()``), while capacity and the
  request rate change in time (``schedule.py``: :class:`Schedule`). The event loop is in
  ``events.py``, the results (:class:`RetrySimulation`, :class:`RetrySummary`) in ``results.py``.
* ``_checks.py`` -- argument checks on top of :mod:`reliability._validate`, and the size limits:
  every simulator refuses, before it starts, a run it could not hold in memory or finish
  (customers, state, attempts, intervals, clients, servers), and rates or durations at which
  its float64 clock would overflow or underflow; each message names the limit.

Examples
--------
>>> from reliability.simulate import simulate_mmc
>>> sim = simulate_mmc(2, 1.0, 1.0, customers=20_000, replications=20, seed=1)
>>> sim.p_wait.contains(1 / 3)   # Erlang C for 2 servers at 1 Erlang is 1/3
True
"""

from ._checks import (
    ATTEMPT_LIMIT,
    MAX_ATTEMPT_LIMIT,
    MAX_CLIENTS,
    MAX_CUSTOMERS,
    MAX_HORIZON,
    MAX_INTERVALS,
    MAX_POPULATION,
    MAX_RATE,
    MAX_SERVERS,
    MAX_STATE,
    MAX_WAIT_TIMES,
    MIN_RATE,
)
from .engset import simulate_engset
from .estimate import Estimate, QueueSimulation, estimate
from .kernels import kernel_abandon, kernel_fcfs, kernel_finite, kernel_loss, lindley_waits
from .mmc import simulate_mmc, simulate_mmc_abandonment, simulate_mmcc, simulate_mmck
from .results import RetrySimulation, RetrySummary
from .retrying import simulate_connection_pool, simulate_retrying_queue
from .schedule import Schedule

__all__ = [
    "Estimate",
    "QueueSimulation",
    "simulate_mmc",
    "simulate_mmcc",
    "simulate_mmc_abandonment",
    "simulate_mmck",
    "simulate_engset",
    "Schedule",
    "RetrySummary",
    "RetrySimulation",
    "simulate_retrying_queue",
    "simulate_connection_pool",
    # building blocks, for tests that check them against a reference
    "estimate",
    "kernel_fcfs",
    "kernel_loss",
    "kernel_abandon",
    "kernel_finite",
    "lindley_waits",
    # size limits
    "MAX_CUSTOMERS",
    "MAX_STATE",
    "ATTEMPT_LIMIT",
    "MAX_INTERVALS",
    "MIN_RATE",
    "MAX_RATE",
    "MAX_HORIZON",
    "MAX_SERVERS",
    "MAX_CLIENTS",
    "MAX_ATTEMPT_LIMIT",
    "MAX_POPULATION",
    "MAX_WAIT_TIMES",
]
