"""Log-space numerical kernels of the queueing models (no validation: floats or float64 arrays in).

Poisson and binomial probabilities use Loader's saddle-point form (``stirlerr`` and ``bd0``,
as in R's ``dpois``/``dbinom``), so no large logarithms cancel; the incomplete gamma
ratios that would underflow are continued fractions (modified Lentz). Each kernel that a
one-point search needs has a plain-float twin (``*_scalar``) right below its array version:
numpy's fixed cost per operation (~1 us x ~100 operations) would dominate one point, and
the twins run in ~5 us. Tests hold each twin equal to its array version.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
TINY = 1e-300
# Closer than this to the mean, x log1p((x - mean)/mean) - (x - mean) is exact to about
# 2 eps |x - mean| < 1.5e-14 absolute, which is all a probability's relative error sees; further
# out but within 10 % of the mean (|v| < 0.1) that bound grows with the scale, so Loader's
# series, exact to a few ulps of bd0 itself, takes over there.
_SERIES_DISTANCE = 32.0
_SERIES_BAND = 0.1
_STIRLING_FROM = 15.0  # above it five terms of the Stirling series are exact to double precision
# Large arrays are evaluated in blocks of this many points, so that a kernel's dozen
# temporaries stay in a core's cache instead of streaming through memory, which on a grid of
# 10^5 points costs more than their arithmetic (Erlang B: ~1.15x the time of gammaincc alone
# instead of ~1.3x).
BLOCK = 16384


def in_blocks(kernel, *arrays):
    """``kernel(*arrays)`` on the broadcast arrays, evaluated block by block: same values, less memory traffic."""
    arrays = np.broadcast_arrays(*arrays)
    shape, size = arrays[0].shape, arrays[0].size
    if size <= BLOCK:
        return kernel(*arrays)
    flat = [np.ravel(a) for a in arrays]
    out = np.empty(size)
    for start in range(0, size, BLOCK):
        out[start:start + BLOCK] = kernel(*(f[start:start + BLOCK] for f in flat))
    return out.reshape(shape)


# ----------------------------------------------------------------------------------------
# stirlerr: log(n!) - log(sqrt(2 pi n) (n/e)^n)
# ----------------------------------------------------------------------------------------

def _stirling_series(n):
    inv = 1.0 / n
    inv2 = inv * inv
    # The extra terms cost nothing where they are negligible.
    return (1 / 12 - (1 / 360 - (1 / 1260 - (1 / 1680 - inv2 / 1188) * inv2) * inv2) * inv2) * inv


def stirlerr(n: np.ndarray) -> np.ndarray:
    """log(n!) - log(sqrt(2 pi n) (n/e)^n) for n > 0 (Loader 2000; R's stirlerr)."""
    n = np.asarray(n, dtype=np.float64)
    if n.size == 0 or n.min() > _STIRLING_FROM:
        return _stirling_series(n)  # the usual case: no masked copies
    out = np.empty_like(n)
    small = n <= _STIRLING_FROM
    ns = n[small]
    out[small] = special.gammaln(ns + 1.0) - (ns + 0.5) * np.log(ns) + ns - LOG_SQRT_2PI
    large = ~small
    out[large] = _stirling_series(n[large])
    return out


def stirlerr_scalar(n: float) -> float:
    if n <= _STIRLING_FROM:
        return math.lgamma(n + 1.0) - (n + 0.5) * math.log(n) + n - LOG_SQRT_2PI
    return _stirling_series(n)


# ----------------------------------------------------------------------------------------
# bd0: x log(x / mean) + mean - x without cancellation
# ----------------------------------------------------------------------------------------

def _series_terms(largest_v: float) -> int:
    """Terms of Loader's series that reach 1e-17 relative when every |v| <= largest_v < 0.1."""
    if largest_v >= _SERIES_BAND:
        return 12
    if largest_v < 1e-9:
        return 1
    return min(12, math.ceil(-17.0 / (2 * math.log10(largest_v))))


def _bd0_series(x, d, half_total):
    """(x - mean) v + 2 x sum_j v^(2j+1)/(2j+1), v = (x - mean)/(x + mean): Loader's bd0 near the mean.

    ``half_total`` is ``(x + mean) / 2`` (halved so that it cannot overflow at 1e308).
    """
    two_v = d / half_total
    v = 0.5 * two_v
    w = v * v
    terms = _series_terms(float(np.sqrt(w.max())))
    # 2 x v^3 (1/3 + w/5 + w^2/7 + ...) by Horner's rule; |v| < 0.1 so each term is 100x smaller.
    poly = 1.0 / (2 * terms + 1)
    for j in range(terms - 1, 0, -1):
        poly = poly * w + 1.0 / (2 * j + 1)
    return d * v + x * two_v * w * poly


def bd0(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """x log(x / mean) + mean - x without cancellation (Loader 2000; R's bd0); x >= 0, mean > 0.

    ``log1p((x - mean)/mean)`` where ``x >= mean/2`` (exact there: ``x - mean`` is exact and the
    ratio carries one rounding), ``log(x/mean)`` below; Loader's series in a band near the mean
    at scale; and the difference of logarithms only where a ratio over- or underflows.
    """
    x, mean = np.broadcast_arrays(np.asarray(x, float), np.asarray(mean, float))
    d = x - mean
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        below = x < 0.5 * mean
        if below.any():
            log_ratio = np.where(below, np.log(x / mean), np.log1p(d / mean))
        else:
            log_ratio = np.log1p(d / mean)
        out = np.asarray(x * log_ratio - d)  # an array even for 0-d input: edited in place below
        bad = ~np.isfinite(out)
        if bad.any():
            out[bad] = _bd0_edges(x[bad], mean[bad])
        distance = np.abs(d)
        if distance.size and distance.max() > _SERIES_DISTANCE:
            # x + mean may overflow to inf at 1e308 (inside this errstate): the series halves it
            band = (distance > _SERIES_DISTANCE) & (distance < _SERIES_BAND * (x + mean))
            if band.any():
                xb, mb = x[band], mean[band]
                out[band] = _bd0_series(xb, d[band], 0.5 * xb + 0.5 * mb)
    return out


def _bd0_edges(x, mean):
    """bd0 where x is 0 or the ratio x / mean leaves double range (subnormal or huge values)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        regular = x * (np.log(np.where(x > 0, x, 1.0)) - np.log(mean)) + mean - x
    return np.where(x > 0, regular, mean)


def bd0_scalar(x: float, mean: float) -> float:
    d = x - mean
    half_total = 0.5 * x + 0.5 * mean  # (x + mean) / 2 cannot overflow
    if _SERIES_DISTANCE < abs(d) < 2.0 * _SERIES_BAND * half_total:
        two_v = d / half_total
        v = 0.5 * two_v
        total = d * v
        term = x * two_v
        v2 = v * v
        for j in range(1, 13):
            term *= v2
            total += term / (2 * j + 1)
            if abs(term) <= 1e-17 * abs(total):
                break
        return total
    if x == 0:
        return mean
    if x < 0.5 * mean:
        ratio = x / mean
        log_ratio = math.log(ratio) if ratio > 0 else math.log(x) - math.log(mean)
    else:
        t = d / mean
        log_ratio = math.log1p(t) if t != math.inf else math.log(x) - math.log(mean)
    return x * log_ratio - d


# ----------------------------------------------------------------------------------------
# Poisson and binomial probabilities
# ----------------------------------------------------------------------------------------

def log_poisson_pmf(k: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """log(mean^k e^-mean / Gamma(k + 1)) for real k >= 0, mean >= 0."""
    k, mean = np.broadcast_arrays(np.asarray(k, float), np.asarray(mean, float))
    if k.size and k.min() > 0 and mean.min() > 0:
        return log_poisson_pmf_positive(k, mean)
    out = np.empty(k.shape)
    zero_k = k == 0
    zero_mean = (mean == 0) & ~zero_k
    regular = ~zero_k & ~zero_mean
    out[zero_k] = -mean[zero_k]
    out[zero_mean] = -np.inf
    if regular.any():
        out[regular] = log_poisson_pmf_positive(k[regular], mean[regular])
    return out


def log_poisson_pmf_positive(k: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """:func:`log_poisson_pmf` for k > 0 and mean > 0 (no edge values: no masks)."""
    return -(stirlerr(k) + bd0(k, mean) + LOG_SQRT_2PI) - 0.5 * np.log(k)


def log_poisson_pmf_scalar(k: float, mean: float) -> float:
    if k == 0:
        return -mean
    if mean == 0:
        return -math.inf
    return -(stirlerr_scalar(k) + bd0_scalar(k, mean) + LOG_SQRT_2PI) - 0.5 * math.log(k)


def log_binomial_pmf(k: np.ndarray, n: np.ndarray, p: np.ndarray, q: np.ndarray | None = None) -> np.ndarray:
    """log of the binomial probability for whole k in [0, n] (Loader's saddle-point form).

    ``q`` is ``1 - p``, when the caller has it to full precision (``1 - p`` loses the digits of a small ``p``).
    """
    q = 1.0 - p if q is None else q
    out = np.empty(k.shape)
    at_zero = k == 0
    at_n = (k == n) & ~at_zero
    inner = ~at_zero & ~at_n
    out[at_zero] = n[at_zero] * np.log1p(-p[at_zero])
    out[at_n] = n[at_n] * np.log(p[at_n])
    if inner.any():
        ki, ni, pi, qi = k[inner], n[inner], p[inner], q[inner]
        log_c = (
            stirlerr(ni) - stirlerr(ki) - stirlerr(ni - ki)
            - bd0(ki, ni * pi) - bd0(ni - ki, ni * qi)
        )
        # log(2 pi k (n - k) / n) term by term: the product overflows at astronomical sizes
        out[inner] = log_c - 0.5 * (np.log(2.0 * np.pi) + np.log(ki) + np.log(ni - ki) - np.log(ni))
    return out


# ----------------------------------------------------------------------------------------
# Continued fractions for the incomplete gamma function
# ----------------------------------------------------------------------------------------

def upper_gamma_cf(s: np.ndarray, x: np.ndarray, max_iterations: int = 500) -> np.ndarray:
    """x Gamma(s, x) / (x^s e^-x) by Legendre's continued fraction (modified Lentz), for x > s - 1.

    The fraction ``1/(x + 1 - s - 1(1 - s)/(x + 3 - s - ...))`` is evaluated with every partial
    denominator divided by ``x`` and every numerator by ``x^2`` (an equivalence transformation,
    which multiplies its value by ``x``): ``i (s - i)`` would overflow at 1e308 otherwise.
    Whole-array steps without compaction: at x >= s + 8 sqrt(s) every point converges within
    ~16 steps, so masking would cost more than it saves.
    """
    b = (x + 1.0 - s) / x
    c = np.full_like(x, 1.0 / TINY)
    d = 1.0 / b
    h = d.copy()
    for i in range(1, max_iterations):
        an = (i / x) * ((s - i) / x)
        b = b + 2.0 / x
        d = an * d + b
        d[np.abs(d) < TINY] = TINY
        c = b + an / c
        c[np.abs(c) < TINY] = TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        # Converged steps change h by a few ulps: 1e-15 is below the rounding of the result.
        if i % 4 == 0 and np.abs(delta - 1.0).max() < 1e-15:
            return h
    raise RuntimeError("continued fraction for the incomplete gamma function did not converge")


def upper_gamma_cf_scalar(s: float, x: float) -> float:
    b = (x + 1.0 - s) / x
    c = 1.0 / TINY
    d = 1.0 / b
    h = d
    step = 2.0 / x
    for i in range(1, 500):
        an = (i / x) * ((s - i) / x)
        b += step
        d = an * d + b
        if abs(d) < TINY:
            d = TINY
        c = b + an / c
        if abs(c) < TINY:
            c = TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            return h
    raise RuntimeError("continued fraction for the incomplete gamma function did not converge")


def lower_gamma_cf(y: np.ndarray, x: np.ndarray, max_iterations: int = 500) -> np.ndarray:
    """J = y gamma(y, x) e^x x^-y = sum_j x^j / (y+1)_j by the continued fraction of DLMF 8.9.2.

    Converges in a few dozen steps for x < y - 4 sqrt(y) at any size (where the series needs
    about sqrt(y) terms and P(y, x) underflows). The fraction ``y + a_1/(y + 1 + a_2/(y + 2 + ...))``
    is evaluated divided by ``y`` (denominators by ``y``, numerators by ``y^2``), so that its
    numerators ``(y + k) x`` cannot overflow at 1e308; its value is then ``y / J``.
    """
    f = np.ones_like(y)
    c = np.ones_like(y)
    d = np.zeros_like(y)
    ratio = x / y
    active = np.ones(y.shape, dtype=bool)
    for n in range(1, max_iterations):
        idx = np.flatnonzero(active)
        ya, ra = y[idx], ratio[idx]
        if n % 2:
            an = -(1.0 + ((n - 1) // 2) / ya) * ra
        else:
            an = ((n // 2) / ya) * ra
        bn = 1.0 + n / ya
        da = bn + an * d[idx]
        da = np.where(da == 0, TINY, da)
        ca = bn + an / c[idx]
        ca = np.where(ca == 0, TINY, ca)
        da = 1.0 / da
        delta = ca * da
        d[idx], c[idx] = da, ca
        f[idx] *= delta
        # 1e-15, not 1e-16: converged steps jitter by a few ulps and must still count as done.
        active[idx[np.abs(delta - 1.0) < 1e-15]] = False
        if not active.any():
            return 1.0 / f
    raise RuntimeError("continued fraction for the lower incomplete gamma function did not converge")


def log_sum_exp(values: np.ndarray, axis: int | None = None, keepdims: bool = False) -> np.ndarray | float:
    """``log(sum(exp(values)))`` along ``axis``, shifted by the largest term so nothing overflows.

    ``scipy.special.logsumexp`` gives the same to a few ulps, but its array-API layer costs about
    0.5 ms a call, which the mean-field equilibrium searches (thousands of small calls) paid in full.
    A slice of only ``-inf`` sums to ``-inf``; one holding ``+inf`` to ``+inf``.
    """
    values = np.asarray(values, dtype=np.float64)
    largest = np.max(values, axis=axis, keepdims=True)
    shift = np.where(np.isfinite(largest), largest, 0.0)
    with np.errstate(divide="ignore"):  # the log of an all -inf slice's zero sum is -inf, rightly
        out = np.log(np.sum(np.exp(values - shift), axis=axis, keepdims=True)) + shift
    if not keepdims:
        out = np.squeeze(out, axis=axis) if axis is not None else out.reshape(())
    return out[()] if out.ndim == 0 else out
