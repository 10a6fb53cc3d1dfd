"""Argument checks and size limits shared by the simulators.

Every check goes through :mod:`reliability._validate`; the few here add what a simulator
needs beyond it (a rate small enough to overflow the clock, a run too large to finish).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import ArgumentTypeError, describe, number, whole

#: Most customers (all replications together) one M/M/c-family call may simulate: about half
#: an hour at full speed. Beyond it a typo (1e12 for 1e6) would look like a hang.
MAX_CUSTOMERS = 10**10
#: Most floats held at once in the M/M/c-family state (replications x servers, or x capacity).
MAX_STATE = 20_000_000
#: Default bound on the attempts a retrying-queue run may make (about 1 GB of records, minutes).
ATTEMPT_LIMIT = 20_000_000
#: Most intervals in a retrying-queue time series.
MAX_INTERVALS = 10_000_000
#: Smallest rate (arrival, service, abandonment) accepted: times are drawn as ``Exp(1) / rate``, and
#: below this the simulated clock would overflow to inf (an overflow warning, then NaN estimates).
MIN_RATE = 1e-250
#: Largest rate accepted: above it ``Exp(1) / rate`` underflows to subnormal times.
MAX_RATE = 1e250
#: Longest simulated time (s), horizon and durations alike: about 30,000 years, where the float64
#: clock still resolves 0.1 ms (and server-seconds over the horizon stay finite).
MAX_HORIZON = 1e12
#: Most servers (or connections) a retrying-queue run takes: more is no longer a queue.
MAX_SERVERS = 10**9
#: Most client populations of a retrying-queue run (each holds its own limiter, made up front).
MAX_CLIENTS = 100_000
#: Highest attempt_limit a retrying-queue run may be given (~10 GB of records, hours).
MAX_ATTEMPT_LIMIT = 200_000_000
#: Most sources (and servers) of the Engset simulator: whole numbers stay exact far below 2**53.
MAX_POPULATION = 10**15
#: Most waiting-time thresholds one M/M/c-family run tallies (a count per replication each).
MAX_WAIT_TIMES = 10_000


def positive(name: str, value: Any, *, allow_inf: bool = False) -> float:
    """A finite number ``> 0`` (or ``inf`` with ``allow_inf``)."""
    return number(name, value, minimum=0.0, strict=True, allow_inf=allow_inf)


def non_negative(name: str, value: Any) -> float:
    """A finite number ``>= 0``."""
    return number(name, value, minimum=0.0)


def duration(name: str, value: Any, *, positive_only: bool = False) -> float:
    """A length of simulated time in ``[0, MAX_HORIZON]`` (``(0, MAX_HORIZON]`` with ``positive_only``)."""
    checked = positive(name, value) if positive_only else non_negative(name, value)
    if checked > MAX_HORIZON:
        raise ValueError(f"{name} must be <= {MAX_HORIZON:g} s (the simulated clock's range), got {describe(value)}")
    return checked


def rate(name: str, value: Any) -> float:
    """A rate in ``[MIN_RATE, MAX_RATE]``."""
    checked = positive(name, value)
    if checked < MIN_RATE:
        raise ValueError(f"{name} must be >= {MIN_RATE:g} (smaller rates overflow the simulated clock), "
                         f"got {describe(value)}")
    if checked > MAX_RATE:
        raise ValueError(f"{name} must be <= {MAX_RATE:g} (larger rates underflow the simulated times), "
                         f"got {describe(value)}")
    return checked


def level(value: Any) -> float:
    """A confidence level in (0, 1)."""
    checked = positive("level", value)
    if checked >= 1.0:
        raise ValueError(f"level must be in (0, 1), got {describe(value)}")
    return checked


def seed(value: Any):
    """A seed for ``numpy.random.default_rng``: None, a SeedSequence, a Generator or a whole number."""
    if isinstance(value, (np.random.SeedSequence, np.random.Generator)) or value is None:
        return value
    return whole("seed", value, 0)


def seed_label(value: Any):
    """The seed as a result records it: a Generator has no readable value."""
    return "Generator" if isinstance(value, np.random.Generator) else value


def wait_times(values: Any) -> tuple[float, ...]:
    """Thresholds ``t >= 0`` of ``P(W > t)``: one number or a sequence of at most MAX_WAIT_TIMES."""
    if isinstance(values, (str, bytes, dict, set)) or values is None:
        raise ArgumentTypeError(f"wait_times must be a number or a sequence of numbers >= 0, got {describe(values)}")
    try:
        items = [values] if np.ndim(values) == 0 else list(np.asarray(values, dtype=object).ravel())
    except (TypeError, ValueError):
        raise ArgumentTypeError(f"wait_times must be a sequence of numbers >= 0, got {describe(values)}") from None
    if len(items) > MAX_WAIT_TIMES:
        raise ValueError(f"wait_times must hold at most {MAX_WAIT_TIMES:,} thresholds, got {len(items):,}")
    return tuple(non_negative(f"wait_times[{i}]", v) for i, v in enumerate(items))


def warmup(value: Any, total: int, what: str) -> int:
    """Warm-up length: ``total // 10`` by default, always below ``total``."""
    checked = total // 10 if value is None else whole("warmup", value, 0)
    if checked >= total:
        raise ValueError(f"warmup must be < {what} ({total}), got {describe(value)}")
    return checked


def check_size(what: str, per_replication: int, replications: int) -> None:
    """Refuse, before anything runs, a simulation larger than MAX_CUSTOMERS in all."""
    total = per_replication * replications
    if total > MAX_CUSTOMERS:
        raise ValueError(
            f"{what} x replications = {total:,} exceeds the limit of {MAX_CUSTOMERS:,} {what} for one "
            f"simulation ({what}={per_replication}, replications={replications})"
        )


def block_size(replications: int) -> int:
    """Customers per block: the per-block arrays stay near 1M numbers whatever R is."""
    return int(min(4096, max(64, 2**20 // replications)))


def count_text(value: float) -> str:
    """Whole-number text while it stays readable; a 300-digit integer is not."""
    return f"{value:,.0f}" if value < 1e15 else f"{value:.3g}"
