"""Numerical kernels of the time-stepped model: Erlang B by table, retry delay kernels, random counts.

Examples
--------
>>> import numpy as np
>>> table = BlockingTable(np.array([10.0]))
>>> round(float(table(np.array([5.0]))[0]), 4)
0.0184
>>> delay_kernel(None, 1, 1.0, 0.0).tolist()   # an immediate retry lands in the next step
[0.0, 1.0]
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import ArgumentTypeError, as_array, broadcast, describe, probability
from ..queues import erlang_b
from ..retry import Backoff
from ._checks import MAX_SLOTS, MAX_STEPS, check_instance, check_number, check_whole

__all__ = ["BlockingTable", "delay_kernel", "poisson_counts", "binomial_counts", "MAX_TABLE_ROWS"]

_TABLE_POINTS = 16385
#: Most distinct slot counts one table holds (a row of 16 385 points each: 0.5 GB at the limit).
MAX_TABLE_ROWS = 4096


class BlockingTable:
    """``B(k, a)`` for a few slot counts ``k``, tabulated in ``u = a / (a + k)`` on [0, 1].

    The map ``u`` folds loads from 0 to infinity onto [0, 1] (B -> 1 as u -> 1) and is
    nearly uniform in resolution around the knee ``a ~ k``; linear interpolation on 16 385
    points is within 2e-6 of :func:`reliability.erlang.erlang_b` (the tests check it), while
    a step costs a gather instead of an incomplete gamma function.
    """

    def __init__(self, slots: np.ndarray):
        slots = as_array("slots", slots, minimum=0.0, strict_minimum=True, maximum=MAX_SLOTS)
        self.values, self.index = np.unique(slots, return_inverse=True)
        if self.values.size > MAX_TABLE_ROWS or self.values.size == 0:
            raise ValueError(f"slots must hold 1 to {MAX_TABLE_ROWS:,} distinct slot counts, got "
                             f"{self.values.size:,}")
        u = np.linspace(0.0, 1.0, _TABLE_POINTS)
        rows = []
        for k in self.values:
            with np.errstate(divide="ignore", under="ignore"):
                load = np.where(u < 1.0, k * u / np.where(u < 1.0, 1.0 - u, 1.0), 0.0)
            b = np.empty_like(u)
            b[:-1] = erlang_b(k, load[:-1])
            b[-1] = 1.0
            rows.append(b)
        self.table = np.vstack(rows)
        self.slots = self.values[self.index]
        self._grid = u
        self._single = self.values.size == 1

    def __call__(self, load_per_server: np.ndarray) -> np.ndarray:
        """``B(k, load)``: one load per slot value given (or one for all), each finite and >= 0."""
        load = as_array("load_per_server", load_per_server, minimum=0.0)
        if not self._single:
            load = broadcast(load_per_server=load, slots=self.slots)[0]
        with np.errstate(under="ignore"):  # a load of 1e-308 is blocked with probability 0
            return self.lookup(load)

    def lookup(self, load_per_server: np.ndarray) -> np.ndarray:
        """:meth:`__call__` without the checks (the engine's loads are valid by construction)."""
        if self._single:
            k = self.values[0]
            return np.interp(load_per_server / (load_per_server + k), self._grid, self.table[0])
        u = load_per_server / (load_per_server + self.slots)
        x = u * (_TABLE_POINTS - 1)
        i = np.minimum(x.astype(np.int64), _TABLE_POINTS - 2)
        w = x - i
        flat = self.table.ravel()
        base = self.index * _TABLE_POINTS + i
        lo = flat[base]
        return lo + w * (flat[base + 1] - lo)


# ----------------------------------------------------------------------------------------
# Retry delay kernels
# ----------------------------------------------------------------------------------------

def _clip_integral(z):
    """``G(z) = integral_{-inf}^{z} clip(w, 0, 1) dw``."""
    z = np.asarray(z, dtype=np.float64)
    return np.where(z <= 0.0, 0.0, np.where(z <= 1.0, 0.5 * z * z, z - 0.5))


def delay_kernel(backoff: Backoff | None, retry_index: int, time_step: float, extra: float) -> np.ndarray:
    """Probability that a retry sent after a failure in step 0 arrives in step j (j >= 1).

    The failure happens at a uniform time in its step; the retry follows ``extra`` seconds
    (the client timeout, for a timed-out attempt) plus the backoff delay. A retry that would
    land in the failure's own step is moved to the next one (the step's outcome is already
    decided), so delays shorter than a step are rounded up.
    """
    check_instance("", "backoff", backoff, Backoff, optional=True)
    retry_index = check_whole("", "retry_index", retry_index, 1, 10**6)
    time_step = check_number("", "time_step", time_step, strict=True)
    extra = check_number("", "extra", extra)
    longest = extra + (0.0 if backoff is None else backoff.cap)
    if not longest / time_step <= MAX_STEPS:
        raise ValueError(f"extra and the backoff delay ({longest:g} s) span more than {MAX_STEPS:.0e} steps of "
                         f"time_step={time_step:g} s: the kernel would not fit")
    with np.errstate(under="ignore"):  # a set-up time of 1e-308 s is none
        return _kernel(backoff, retry_index, time_step, extra)


def _kernel(backoff, retry_index: int, time_step: float, extra: float) -> np.ndarray:
    if backoff is None:
        low = high = 0.0
        samples = None
    elif backoff.jitter == "decorrelated":
        # no closed form: a fixed, seeded sample of the delay (the kernel must not vary run to run)
        samples = backoff.sample(retry_index, np.random.default_rng(20250109), 20_000)
        low = high = None
    else:
        d = float(backoff.delay(retry_index)) if backoff.jitter == "none" else float(backoff.unjittered(retry_index))
        low, high = {"none": (d, d), "full": (0.0, d), "equal": (d / 2.0, d)}[backoff.jitter]
        samples = None
    if samples is not None:
        y = (extra + samples) / time_step
        top = int(math.floor(y.max())) + 2
        edges = np.arange(top + 1, dtype=np.float64)
        cdf = np.clip(edges[:, None] - y[None, :], 0.0, 1.0).mean(axis=1)
    else:
        a, b = (extra + low) / time_step, (extra + high) / time_step
        top = int(math.floor(b)) + 2
        edges = np.arange(top + 1, dtype=np.float64)
        if b - a > 1e-12:
            cdf = (_clip_integral(edges - a) - _clip_integral(edges - b)) / (b - a)
        else:
            cdf = np.clip(edges - a, 0.0, 1.0)
    mass = np.diff(cdf)            # mass[j] = P(j <= X < j + 1)
    mass = np.maximum(mass, 0.0)
    kernel = mass.copy()
    kernel[1] += kernel[0]          # same-step retries move to the next step
    kernel[0] = 0.0
    kernel /= kernel.sum()
    return kernel


# ----------------------------------------------------------------------------------------
# Counts: exact when small, normal approximation when large
# ----------------------------------------------------------------------------------------

#: Variance above which a binomial or Poisson count is drawn from its normal approximation.
#: Beyond it the approximation's error in any probability is far below the model's own; the
#: exact samplers cost ~20x more per draw at large counts.
_NORMAL_VARIANCE = 25.0
#: Arrays up to this size are drawn exactly in one call (the per-call overhead dominates).
_SMALL_ARRAY = 64
#: Largest Poisson mean drawn by the exact sampler.
_EXACT_POISSON_MAX = 1e15


def _generator(rng):
    if not isinstance(rng, np.random.Generator):
        raise ArgumentTypeError(f"rng must be a numpy Generator (numpy.random.default_rng), got {describe(rng)}")
    return rng


def poisson_counts(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    """Poisson counts (float array): exact below ``_NORMAL_VARIANCE``, rounded normal above.

    Examples
    --------
    >>> poisson_counts(np.random.default_rng(1), np.array([0.0, 1e6])).shape
    (2,)
    """
    return _poisson_counts(_generator(rng), as_array("mean", mean, minimum=0.0))


def _poisson_counts(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    """:func:`poisson_counts` without the checks (the engine's means are valid by construction)."""
    mean = np.asarray(mean, dtype=np.float64)
    # numpy's exact sampler refuses means beyond ~1e18 ("lam value too large"); that far out the
    # rounded normal is indistinguishable from the Poisson law (skewness 1/sqrt(mean) < 1e-7)
    if mean.size <= _SMALL_ARRAY and not (mean > _EXACT_POISSON_MAX).any():
        return np.asarray(rng.poisson(mean), dtype=np.float64)   # a few draws: exact is cheapest
    out = np.maximum(np.rint(mean + np.sqrt(mean) * rng.standard_normal(mean.shape)), 0.0)
    small = (mean < _NORMAL_VARIANCE) & (mean > 0.0)
    if small.any():
        out[small] = rng.poisson(mean[small])
    return out


def binomial_counts(rng: np.random.Generator, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Binomial counts (float array; ``n`` holds whole numbers): exact when the variance is small.

    Examples
    --------
    >>> binomial_counts(np.random.default_rng(1), np.array([0.0, 10.0]), 1.0).tolist()
    [0.0, 10.0]
    """
    n, p = broadcast(n=as_array("n", n, minimum=0.0, integer=True), p=probability("p", p))
    return _binomial_counts(_generator(rng), np.array(n), p)


def _binomial_counts(rng: np.random.Generator, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """:func:`binomial_counts` without the checks (the engine's counts are valid by construction)."""
    if n.size <= _SMALL_ARRAY and not (n > _EXACT_POISSON_MAX).any():   # int64 holds n exactly
        return np.asarray(rng.binomial(n.astype(np.int64), p), dtype=np.float64)   # a few draws: exact is cheapest
    p = np.broadcast_to(np.asarray(p, dtype=np.float64), n.shape)
    mean = n * p
    variance = mean * (1.0 - p)
    out = np.clip(np.rint(mean + np.sqrt(variance) * rng.standard_normal(n.shape)), 0.0, n)
    # zero variance (n = 0, p = 0 or p = 1) is exact already
    small = (variance < _NORMAL_VARIANCE) & (variance > 0.0) & (n <= _EXACT_POISSON_MAX)
    if small.any():
        out[small] = rng.binomial(n[small].astype(np.int64), p[small])
    return out


