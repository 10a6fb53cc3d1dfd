"""Where an analytic value meets its simulated value: the evidence that the models are right.

:func:`validation_table` (in :mod:`~reliability.validation.table`) puts every analytic model
of the queueing and retry modules beside an independent estimate of the same quantity -- the
discrete-event simulation of :mod:`reliability.simulate`, or a Monte-Carlo of independent
failures -- and, where the model is exact, beside a 50-digit mpmath evaluation of the textbook
formula (:mod:`~reliability.validation.references`, the one home of those formulas, which the
tests and benchmarks use too). One row per check; the verdict is ``"holds"`` when the analytic
value lies inside the simulated confidence interval *and* (where an mpmath value exists) agrees
with it to ``mpmath_rtol``. ``simulate`` never calls a formula, so agreement is evidence, and a
disagreement is a reason to look.

Confidence intervals are Student-t intervals across independent replications. With some 25
checks in one table, 95 % intervals would flag one good model in most tables; the intervals are
therefore Bonferroni-corrected: each check uses level ``1 - (1 - level) / n`` with ``n`` the
number of simulated checks, so that a whole table of correct models holds with probability at
least ``level``.

What the retrying-queue rows check, and why they use a backoff
--------------------------------------------------------------
:class:`reliability.retry.RetryingQueue` is a *mean-field* model: it treats attempts as a
Poisson stream whose attempts fail independently. A client that retries at once sends its
retry exactly when the queue is long (the long queue is why the first attempt timed out), so
immediate retries see a more congested queue than Poisson arrivals would. Measured with 30 runs
of 2 000 s (20 servers, ``mu = 1``, timeout 3 s, 3 retries, base load 0.7 of capacity; 95 %
intervals), the simulated failure probability is 0.0523 +- 0.0006 without backoff (over the 29
runs that stayed healthy; one collapsed) against the model's 0.05145, and 0.05165 +- 0.00054
with a full-jitter backoff of 5 s to 40 s (no run collapsed), which spreads retries in time as
the model assumes. The table therefore runs the retrying queue with that backoff (the model
says backoff leaves the equilibria unchanged) and checks: the healthy and the collapsed
equilibria at a load where both exist (a run started empty stays near the healthy one, a run
started with a large backlog stays collapsed), that below the recovery threshold a collapsed
start recovers, and that above the onset threshold a healthy start collapses.

Engset (finite sources) is checked against the simulator's finite-source birth-death chain
(call congestion: the share of arrivals that find every server busy) and mpmath.

Examples
--------
>>> table = validation_table("smoke", models=["expected_attempts"], seed=1)
>>> table[["model", "verdict"]].drop_duplicates().values.tolist()
[['expected_attempts', 'holds']]
"""

from __future__ import annotations

from ..series import trace_recovery_time as recovery_time
from . import references
from .metastability import simulated_metastability
from .table import MODELS, SIZES, ValidationSize, validation_table

__all__ = [
    "ValidationSize",
    "SIZES",
    "MODELS",
    "validation_table",
    "recovery_time",
    "simulated_metastability",
    "references",
]
