"""Erlang B, C and A, Engset, M/M/c/K, M/M/c waiting times, inverse sizing and square-root staffing.

Every function broadcasts like a numpy ufunc (scalars in give a Python float out) and is
exact to about 1e-12 relative at any size: a million servers, a million Erlangs, fractional
servers and deep overload (load 100x the servers, the retry-storm regime).

How: Erlang B is the ratio of a Poisson probability to a Poisson tail,

    B(c, a) = a^c e^-a / Gamma(c + 1, a) = pmf(c; a) / Q(c + 1, a),

which also defines it for fractional ``c``. The Poisson probability is computed with
Loader's saddle-point form (``bd0`` and ``stirlerr``, as in R's ``dpois``) so no large
logarithms cancel; the tail ``Q`` comes from ``scipy.special.gammaincc``. Where the tail
would underflow (load well above the servers) we never form it: ``1 / B`` is evaluated
directly as ``a`` times Legendre's continued fraction for ``Gamma(c + 1, a) / (a^c e^-a)``,
which converges in a few dozen steps there. Everything downstream works with ``log B``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from reliability._validate import as_array, is_scalar, output, probability

__all__ = [
    "erlang_b",
    "erlang_c",
    "erlang_a",
    "ErlangAResult",
    "engset",
    "mmck",
    "wait_sf",
    "response_time_sf",
    "mean_wait",
    "wait_quantile",
    "servers_for_blocking",
    "servers_for_wait",
    "max_load_for_blocking",
    "max_load_for_wait",
    "halfin_whitt_p_wait",
    "halfin_whitt_beta",
    "square_root_staffing",
    "SquareRootStaffing",
]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_TINY = 1e-300
# Erlang B's continued fraction takes over this many standard deviations above the servers:
# there it converges in <= 16 steps; below it Q(c + 1, a) >= 6e-16 cannot underflow and
# gammaincc is accurate to ~1e-13 (it degrades to ~1e-12 further out in the tail).
_CF_SIGMAS = 8.0
# Engset's finite series and Erlang A's continued fraction switch at this many deviations.
_SERIES_SIGMAS = 4.0
# Most terms summed for Erlang A's queue series in its geometric regime.
_SERIES_TERMS = 5000
# Smallest abandonment rate, relative to the service rate, that Erlang A accepts besides 0.
_MIN_ABANDONMENT = 1e-12
# Up to this load servers_for_blocking walks the Erlang B recursion instead of searching.
_RECURSION_LOAD = 200.0


# ----------------------------------------------------------------------------------------
# Numerical kernels (no validation; float64 arrays in, arrays out)
# ----------------------------------------------------------------------------------------

def _stirlerr(n: np.ndarray) -> np.ndarray:
    """log(n!) - log(sqrt(2 pi n) (n/e)^n) for n > 0 (Loader 2000; R's stirlerr)."""
    n = np.asarray(n, dtype=np.float64)
    out = np.empty_like(n)
    small = n <= 15.0
    if small.any():
        ns = n[small]
        out[small] = special.gammaln(ns + 1.0) - (ns + 0.5) * np.log(ns) + ns - _LOG_SQRT_2PI
    large = ~small
    if large.any():
        inv = 1.0 / n[large]
        inv2 = inv * inv
        s0, s1, s2, s3, s4 = 1 / 12, 1 / 360, 1 / 1260, 1 / 1680, 1 / 1188
        # Five terms of the Stirling series are exact to double precision for n > 15; the
        # extra terms cost nothing where they are negligible.
        out[large] = (s0 - (s1 - (s2 - (s3 - s4 * inv2) * inv2) * inv2) * inv2) * inv
    return out


def _bd0(x: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """x log(x / mean) + mean - x without cancellation (Loader 2000; R's bd0); x >= 0, mean > 0."""
    x, mean = np.broadcast_arrays(np.asarray(x, float), np.asarray(mean, float))
    out = np.empty(x.shape)
    close = np.abs(x - mean) < 0.1 * (x + mean)
    if close.any():
        xc, mc = x[close], mean[close]
        v = (xc - mc) / (xc + mc)
        total = (xc - mc) * v
        term = 2.0 * xc * v
        v2 = v * v
        # |v| < 0.1, so each term is at least 100x smaller than the last: the batch's largest
        # |v| says how many terms reach 1e-17 (12 at most; two or three near the mean).
        largest = float(np.sqrt(v2.max())) if v2.size else 0.0
        terms = 12 if largest >= 0.1 else (1 if largest < 1e-9 else min(12, math.ceil(-17.0 / (2 * math.log10(largest)))))
        for j in range(1, terms + 1):
            term = term * v2
            total = total + term / (2 * j + 1)
        out[close] = total
    far = ~close
    if far.any():
        xf, mf = x[far], mean[far]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # log(x / mean) is exact to an ulp where log x - log mean would cancel digits; only
            # for a subnormal mean, where the ratio overflows, is the difference of logs needed.
            ratio = xf / mf
            log_ratio = np.where(np.isfinite(ratio), np.log(ratio), np.log(xf) - np.log(mf))
            out[far] = np.where(xf > 0, xf * log_ratio, 0.0) + mf - xf
    return out


def _log_poisson_pmf(k: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """log(mean^k e^-mean / Gamma(k + 1)) for real k >= 0, mean >= 0."""
    k, mean = np.broadcast_arrays(np.asarray(k, float), np.asarray(mean, float))
    out = np.empty(k.shape)
    zero_k = k == 0
    zero_mean = (mean == 0) & ~zero_k
    regular = ~zero_k & ~zero_mean
    out[zero_k] = -mean[zero_k]
    out[zero_mean] = -np.inf
    if regular.any():
        kr, mr = k[regular], mean[regular]
        out[regular] = -_stirlerr(kr) - _bd0(kr, mr) - _LOG_SQRT_2PI - 0.5 * np.log(kr)
    return out


def _upper_gamma_cf(s: np.ndarray, x: np.ndarray, max_iterations: int = 500) -> np.ndarray:
    """Gamma(s, x) / (x^s e^-x) by Legendre's continued fraction (modified Lentz), for x > s - 1.

    Whole-array steps without compaction: at x >= s + 8 sqrt(s) every point converges within
    ~16 steps, so masking would cost more than it saves.
    """
    b = x + 1.0 - s
    c = np.full_like(x, 1.0 / _TINY)
    d = 1.0 / b
    h = d.copy()
    for i in range(1, max_iterations):
        an = -i * (i - s)
        b = b + 2.0
        d = an * d + b
        d[np.abs(d) < _TINY] = _TINY
        c = b + an / c
        c[np.abs(c) < _TINY] = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        # Converged steps change h by a few ulps: 1e-15 is below the rounding of the result.
        if i % 4 == 0 and np.abs(delta - 1.0).max() < 1e-15:
            return h
    raise RuntimeError("continued fraction for the incomplete gamma function did not converge")


def _log_erlang_b(servers: np.ndarray, load: np.ndarray) -> np.ndarray:
    """log B(c, a) for servers >= 0, load >= 0 (broadcast already)."""
    servers, load = np.broadcast_arrays(servers, load)
    if servers.size and servers.min() > 0 and load.min() > 0:
        # The common case of a sweep: no edge values, and without the continued fraction
        # no masked copies either.
        s = servers + 1.0
        if not (load > s + _CF_SIGMAS * np.sqrt(s)).any():
            return np.minimum(_log_poisson_pmf(servers, load) - np.log(special.gammaincc(s, load)), 0.0)
    out = np.zeros(servers.shape)  # B = 1 where servers == 0
    positive = (servers > 0) & (load > 0)
    out[(servers > 0) & (load == 0)] = -np.inf
    if not positive.any():
        return out
    c = servers[positive]
    a = load[positive]
    s = c + 1.0
    result = np.empty(c.shape)
    overloaded = a > s + _CF_SIGMAS * np.sqrt(s)
    if overloaded.any():
        so, ao = s[overloaded], a[overloaded]
        result[overloaded] = -np.log(ao * _upper_gamma_cf(so, ao))
    normal = ~overloaded
    if normal.any():
        cn, an = c[normal], a[normal]
        result[normal] = _log_poisson_pmf(cn, an) - np.log(special.gammaincc(cn + 1.0, an))
    # B <= 1 exactly; rounding in the last place must not say otherwise.
    out[positive] = np.minimum(result, 0.0)
    return out


def _log_erlang_c(servers: np.ndarray, load: np.ndarray, log_b: np.ndarray | None = None) -> np.ndarray:
    """log C(c, a); 0 where load >= servers."""
    servers, load = np.broadcast_arrays(servers, load)
    if log_b is None:
        log_b = _log_erlang_b(servers, load)
    out = np.zeros(servers.shape)
    stable = load < servers
    if stable.any():
        c, a, lb = servers[stable], load[stable], log_b[stable]
        b = np.exp(lb)
        # C = B / (1 - rho (1 - B)) = B / ((c - a)/c + rho B): no cancellation as rho -> 1.
        rho = a / c
        out[stable] = lb - np.log((c - a) / c + rho * b)
    return out


def _sum_exponential_convolution(rate_1, rate_2, time):
    """P(X + Y > t) for independent exponentials with the given rates, stable when rates are equal."""
    low = np.minimum(rate_1, rate_2)
    high = np.maximum(rate_1, rate_2)
    z = (high - low) * time
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(z > 0, -np.expm1(-z) / np.where(z > 0, z, 1.0), 1.0)
    return np.exp(-low * time) * (1.0 + low * time * ratio)


# ----------------------------------------------------------------------------------------
# Erlang B and C, M/M/c waiting times
# ----------------------------------------------------------------------------------------

def erlang_b(servers, load):
    """Blocking probability of the M/M/c/c (Erlang loss) system.

    Parameters
    ----------
    servers : float or array_like
        Number of servers ``c >= 0``; fractional values use the continuous extension
        ``B = a^c e^-a / Gamma(c + 1, a)``.
    load : float or array_like
        Offered load ``a >= 0`` in Erlangs (arrival rate x mean service time).

    Returns
    -------
    float or ndarray
        ``B(c, a)``, the share of arrivals that find every server busy.

    Examples
    --------
    >>> round(erlang_b(10, 5.0), 12)
    0.018384570337
    >>> round(erlang_b(4, 2.0) * 21, 12)  # B(4, 2) = 2/21
    2.0
    >>> erlang_b([1e6], [1e6])  # a million servers, a million Erlangs
    array([0.00079746])
    """
    scalar = is_scalar(servers, load)
    c = as_array("servers", servers, minimum=0.0)
    a = as_array("load", load, minimum=0.0)
    if scalar:
        return math.exp(_log_erlang_b_scalar(float(c), float(a)))
    return output(np.exp(_log_erlang_b(*np.broadcast_arrays(c, a))), scalar)


def erlang_c(servers, load):
    """Probability that an arrival waits in M/M/c (Erlang C); 1.0 where ``load >= servers``.

    Parameters
    ----------
    servers : float or array_like
        Number of servers ``c >= 0`` (fractional allowed, through Erlang B).
    load : float or array_like
        Offered load ``a >= 0`` in Erlangs.

    Examples
    --------
    >>> round(erlang_c(11, 10.0), 9)
    0.682118205
    >>> erlang_c(5, 7.0)
    1.0
    """
    scalar = is_scalar(servers, load)
    c = as_array("servers", servers, minimum=0.0)
    a = as_array("load", load, minimum=0.0)
    if scalar:
        return math.exp(_log_erlang_c_scalar(float(c), float(a)))
    c, a = np.broadcast_arrays(c, a)
    return output(np.exp(_log_erlang_c(c, a)), scalar)


def _wait_inputs(servers, load, service_rate):
    c = as_array("servers", servers, minimum=0.0)
    a = as_array("load", load, minimum=0.0)
    mu = as_array("service_rate", service_rate, minimum=0.0, strict_minimum=True)
    return c, a, mu


def wait_sf(servers, load, wait_time, service_rate=1.0):
    """P(W > t): probability that an arrival waits longer than ``wait_time`` in M/M/c.

    ``P(W > t) = C(c, a) exp(-(c - a) mu t)``; 1.0 where ``load >= servers`` (no steady state).

    Parameters
    ----------
    servers, load : float or array_like
        Servers and offered load in Erlangs.
    wait_time : float or array_like
        ``t >= 0``, in the time unit of ``1 / service_rate``.
    service_rate : float or array_like, optional
        ``mu > 0``, services per unit time per server (default 1).

    Examples
    --------
    >>> round(wait_sf(11, 10.0, 0.0), 9) == round(erlang_c(11, 10.0), 9)
    True
    >>> round(wait_sf(11, 10.0, 1.0), 6)
    0.250937
    """
    scalar = is_scalar(servers, load, wait_time, service_rate)
    c, a, mu = _wait_inputs(servers, load, service_rate)
    t = as_array("wait_time", wait_time, minimum=0.0)
    if scalar:
        c_, a_ = float(c), float(a)
        decay = (c_ - a_) * float(mu) * float(t) if a_ < c_ else 0.0
        return math.exp(_log_erlang_c_scalar(c_, a_) - decay)
    c, a, mu, t = np.broadcast_arrays(c, a, mu, t)
    log_c = _log_erlang_c(c, a)
    decay = np.where(a < c, (c - a) * mu * t, 0.0)
    return output(np.exp(log_c - decay), scalar)


def response_time_sf(servers, load, time, service_rate=1.0):
    """P(W + S > t): probability that a request's response time (wait plus service) exceeds ``time``.

    In M/M/c the wait is 0 with probability ``1 - C`` and otherwise exponential with rate
    ``(c - a) mu``; the service is exponential with rate ``mu``. 1.0 where ``load >= servers``.

    Examples
    --------
    >>> round(response_time_sf(1, 0.5, 2.0), 12)  # M/M/1: exp(-(mu - lambda) t)
    0.367879441171
    """
    scalar = is_scalar(servers, load, time, service_rate)
    c, a, mu = _wait_inputs(servers, load, service_rate)
    t = as_array("time", time, minimum=0.0)
    c, a, mu, t = np.broadcast_arrays(c, a, mu, t)
    out = np.ones(c.shape)
    stable = a < c
    if stable.any():
        cs, as_, ms, ts = c[stable], a[stable], mu[stable], t[stable]
        p_wait = np.exp(_log_erlang_c(cs, as_))
        wait_rate = (cs - as_) * ms
        out[stable] = (1.0 - p_wait) * np.exp(-ms * ts) + p_wait * _sum_exponential_convolution(
            wait_rate, ms, ts
        )
    return output(out, scalar)


def mean_wait(servers, load, service_rate=1.0):
    """Mean time in queue over all arrivals in M/M/c: ``C(c, a) / ((c - a) mu)``; inf where ``load >= servers``.

    Examples
    --------
    >>> round(mean_wait(2, 1.0), 12)  # M/M/2 at a = 1: C = 1/3, E[W] = 1/3
    0.333333333333
    """
    scalar = is_scalar(servers, load, service_rate)
    c, a, mu = _wait_inputs(servers, load, service_rate)
    if scalar:
        c_, a_ = float(c), float(a)
        return math.exp(_log_erlang_c_scalar(c_, a_)) / ((c_ - a_) * float(mu)) if a_ < c_ else math.inf
    c, a, mu = np.broadcast_arrays(c, a, mu)
    out = np.full(c.shape, np.inf)
    stable = a < c
    if stable.any():
        cs, as_, ms = c[stable], a[stable], mu[stable]
        out[stable] = np.exp(_log_erlang_c(cs, as_)) / ((cs - as_) * ms)
    return output(out, scalar)


def wait_quantile(servers, load, quantile, service_rate=1.0):
    """The ``quantile`` of the waiting time in M/M/c (0 where ``P(wait) <= 1 - quantile``).

    inf where ``load >= servers``.

    Examples
    --------
    >>> t = wait_quantile(11, 10.0, 0.9)
    >>> round(wait_sf(11, 10.0, t), 12)
    0.1
    """
    scalar = is_scalar(servers, load, quantile, service_rate)
    c, a, mu = _wait_inputs(servers, load, service_rate)
    q = as_array("quantile", quantile, minimum=0.0, maximum=1.0, strict_maximum=True)
    c, a, mu, q = np.broadcast_arrays(c, a, mu, q)
    out = np.full(c.shape, np.inf)
    stable = a < c
    if stable.any():
        cs, as_, ms, qs = c[stable], a[stable], mu[stable], q[stable]
        log_c = _log_erlang_c(cs, as_)
        log_tail = np.log1p(-qs)
        out[stable] = np.maximum(log_c - log_tail, 0.0) / ((cs - as_) * ms)
    return output(out, scalar)


# ----------------------------------------------------------------------------------------
# Erlang A (M/M/c+M)
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ErlangAResult:
    """Steady state of M/M/c+M (Erlang A); fields are floats, or arrays for array input.

    ``mean_wait`` is the mean time in queue over all arrivals (those who abandon included).
    """

    p_wait: float | np.ndarray
    p_abandon: float | np.ndarray
    mean_wait: float | np.ndarray
    mean_queue_length: float | np.ndarray
    p_served: float | np.ndarray
    utilisation: float | np.ndarray

    def __repr__(self) -> str:
        def fmt(v):
            return f"{v:.6g}" if np.ndim(v) == 0 else f"array(shape={np.shape(v)})"

        return (
            f"ErlangAResult(p_wait={fmt(self.p_wait)}, p_abandon={fmt(self.p_abandon)}, "
            f"mean_wait={fmt(self.mean_wait)}, mean_queue_length={fmt(self.mean_queue_length)})"
        )


def _lower_gamma_cf(y: np.ndarray, x: np.ndarray, max_iterations: int = 500) -> np.ndarray:
    """J = y gamma(y, x) e^x x^-y = sum_j x^j / (y+1)_j by the continued fraction of DLMF 8.9.2.

    Converges in a few dozen steps for x < y - 4 sqrt(y) at any size (where the series needs
    about sqrt(y) terms and P(y, x) underflows).
    """
    f = y.copy()
    c = y.copy()
    d = np.zeros_like(y)
    active = np.ones(y.shape, dtype=bool)
    for n in range(1, max_iterations):
        idx = np.flatnonzero(active)
        ya, xa = y[idx], x[idx]
        if n % 2:
            an = -(ya + (n - 1) // 2) * xa
        else:
            an = (n // 2) * xa
        bn = ya + n
        da = bn + an * d[idx]
        da = np.where(da == 0, _TINY, da)
        ca = bn + an / c[idx]
        ca = np.where(ca == 0, _TINY, ca)
        da = 1.0 / da
        delta = ca * da
        d[idx], c[idx] = da, ca
        f[idx] *= delta
        # 1e-15, not 1e-16: converged steps jitter by a few ulps and must still count as done.
        active[idx[np.abs(delta - 1.0) < 1e-15]] = False
        if not active.any():
            return y / f
    raise RuntimeError("continued fraction for the lower incomplete gamma function did not converge")


def _queue_series(x: np.ndarray, y: np.ndarray, block: int = 256):
    """sum_j t_j and sum_j j t_j for t_j = prod_{i<=j} x/(y+i), t_0 = 1, summed in blocks.

    Each block of terms is one cumulative product over a (points x block) array, so a
    series of a few hundred terms costs a few numpy calls rather than hundreds; rows are
    taken in chunks to bound memory. The term ratio is below exp(-40/_SERIES_TERMS) here,
    so at most _SERIES_TERMS terms are needed.
    """
    total = np.ones(x.shape)
    first_moment = np.zeros(x.shape)
    rows = max(1, (1 << 20) // block)
    for start in range(0, x.size, rows):
        xs, ys = x[start:start + rows], y[start:start + rows]
        last = np.ones(xs.shape)
        tot = np.ones(xs.shape)
        first = np.zeros(xs.shape)
        for offset in range(0, _SERIES_TERMS + block, block):
            j = np.arange(offset + 1, offset + block + 1, dtype=np.float64)
            terms = last[:, None] * np.cumprod(xs[:, None] / (ys[:, None] + j), axis=1)
            tot += terms.sum(axis=1)
            first += terms @ j
            last = terms[:, -1]
            if (last * (offset + block) < 1e-17 * tot).all():
                break
        total[start:start + rows] = tot
        first_moment[start:start + rows] = first
    return total, first_moment


def _erlang_a_queue_sums(x: np.ndarray, y: np.ndarray):
    """log J and S1/J for J = sum_j x^j / (y+1)_j, S1 = sum_j j x^j / (y+1)_j.

    x = lambda / theta, y = c mu / theta. J is the queue's weight relative to state c; S1/J
    is the mean queue length given that all servers are busy. S1 = x J - y (J - 1) cancels
    when the queue is nearly geometric (theta small against c mu - lambda), so there S1 is
    summed directly; elsewhere the identity loses at most a few digits.
    """
    log_j = np.empty(x.shape)
    mean_queue_busy = np.empty(x.shape)
    geometric = x < y * math.exp(-40.0 / _SERIES_TERMS)
    if geometric.any():
        total, first_moment = _queue_series(x[geometric], y[geometric])
        log_j[geometric] = np.log(total)
        mean_queue_busy[geometric] = first_moment / total
    rest = ~geometric
    if rest.any():
        xr, yr = x[rest], y[rest]
        log_jr = np.empty(xr.shape)
        below = xr < yr - _SERIES_SIGMAS * np.sqrt(yr) - 1.0
        if below.any():
            log_jr[below] = np.log(_lower_gamma_cf(yr[below], xr[below]))
        near = ~below
        if near.any():
            # J = P(y, x) / pmf(y; x), Poisson pmf for real y (Loader form); P >= 3e-5 here.
            xn, yn = xr[near], yr[near]
            log_jr[near] = np.log(special.gammainc(yn, xn)) - _log_poisson_pmf(yn, xn)
        log_j[rest] = log_jr
        inverse_j = np.exp(-log_jr)
        # S1 = x J - y (J - 1)  =>  S1 / J = x / J + (x - y)(1 - 1/J).
        mean_queue_busy[rest] = xr * inverse_j + (xr - yr) * (-np.expm1(-log_jr))
    return log_j, np.maximum(mean_queue_busy, 0.0)


def erlang_a(servers, arrival_rate, service_rate, abandonment_rate):
    """Steady state of the M/M/c+M queue (Erlang A: exponential patience).

    Parameters
    ----------
    servers : int or array_like
        Number of servers ``c >= 1`` (whole numbers).
    arrival_rate, service_rate : float or array_like
        ``lambda >= 0`` and ``mu > 0`` per unit time.
    abandonment_rate : float or array_like
        ``theta >= 0``: waiting customers abandon at this rate (mean patience ``1/theta``);
        ``theta = 0`` is Erlang C (then ``arrival_rate < servers * service_rate`` for finite waits).

    Returns
    -------
    ErlangAResult
        ``p_wait``, ``p_abandon``, ``mean_wait`` (over all arrivals), ``mean_queue_length``,
        ``p_served`` and server ``utilisation``.

    Examples
    --------
    >>> r = erlang_a(14, 10 / 3, 1 / 3, 1 / 5)
    >>> round(r.p_wait, 9), round(r.p_abandon, 10)
    (0.145260114, 0.0139837441)
    """
    scalar = is_scalar(servers, arrival_rate, service_rate, abandonment_rate)
    c = as_array("servers", servers, minimum=1.0, integer=True)
    lam = as_array("arrival_rate", arrival_rate, minimum=0.0)
    mu = as_array("service_rate", service_rate, minimum=0.0, strict_minimum=True)
    theta = as_array("abandonment_rate", abandonment_rate, minimum=0.0)
    c, lam, mu, theta = np.broadcast_arrays(c, lam, mu, theta)
    # Patience beyond 1e12 service times is Erlang C to 12 digits in a stable queue, and in an
    # unstable one the queue's size (~ lambda/theta) leaves double range: refuse rather than guess.
    too_patient = (theta > 0) & (theta < _MIN_ABANDONMENT * mu)
    if too_patient.any():
        raise ValueError(
            "abandonment_rate must be 0 or at least 1e-12 * service_rate (mean patience at most "
            f"1e12 service times), got {theta[too_patient].flat[0]!r}"
        )
    load = lam / mu
    log_b = _log_erlang_b(c, load)

    p_wait = np.empty(c.shape)
    mean_queue = np.empty(c.shape)
    erlang_c_case = theta == 0
    if erlang_c_case.any():
        cc, ac = c[erlang_c_case], load[erlang_c_case]
        pw = np.exp(_log_erlang_c(cc, ac, log_b[erlang_c_case]))
        stable = ac < cc
        with np.errstate(divide="ignore"):
            mq = np.where(stable, pw * ac / np.where(stable, cc - ac, 1.0), np.inf)
        p_wait[erlang_c_case] = pw
        mean_queue[erlang_c_case] = mq
    general = ~erlang_c_case
    if general.any():
        cg, lg, mg, tg, lbg = c[general], lam[general], mu[general], theta[general], log_b[general]
        x = lg / tg
        y = cg * mg / tg
        positive = x > 0
        pw = np.zeros(cg.shape)
        mq = np.zeros(cg.shape)
        if positive.any():
            log_j, queue_busy = _erlang_a_queue_sums(x[positive], y[positive])
            lb = lbg[positive]
            # P(wait) = J / (1/B - 1 + J) = expit(-z), z = log(1/B - 1) - log J.
            with np.errstate(divide="ignore"):
                log_odds = np.log(-np.expm1(lb)) - lb - log_j
            pw[positive] = special.expit(-log_odds)
            mq[positive] = pw[positive] * queue_busy
        p_wait[general] = pw
        mean_queue[general] = mq

    with np.errstate(divide="ignore", invalid="ignore"):
        mean_wait_all = np.where(lam > 0, mean_queue / np.where(lam > 0, lam, 1.0), 0.0)
        p_abandon = np.where(lam > 0, theta * mean_queue / np.where(lam > 0, lam, 1.0), 0.0)
    p_abandon = np.where(erlang_c_case, 0.0, np.minimum(p_abandon, 1.0))
    mean_wait_all = np.where(erlang_c_case & (load >= c) & (lam > 0), np.inf, mean_wait_all)
    p_served = 1.0 - p_abandon
    utilisation = np.where(erlang_c_case & (load >= c), 1.0, load * p_served / c)
    return ErlangAResult(
        p_wait=output(p_wait, scalar),
        p_abandon=output(p_abandon, scalar),
        mean_wait=output(mean_wait_all, scalar),
        mean_queue_length=output(mean_queue, scalar),
        p_served=output(p_served, scalar),
        utilisation=output(utilisation, scalar),
    )


# ----------------------------------------------------------------------------------------
# Engset and M/M/c/K
# ----------------------------------------------------------------------------------------

def _log_binomial_pmf(k, n, p):
    """log of the binomial probability for whole k in [0, n] (Loader's saddle-point form)."""
    q = 1.0 - p
    out = np.empty(k.shape)
    at_zero = k == 0
    at_n = (k == n) & ~at_zero
    inner = ~at_zero & ~at_n
    out[at_zero] = n[at_zero] * np.log1p(-p[at_zero])
    out[at_n] = n[at_n] * np.log(p[at_n])
    if inner.any():
        ki, ni, pi, qi = k[inner], n[inner], p[inner], q[inner]
        log_c = (
            _stirlerr(ni) - _stirlerr(ki) - _stirlerr(ni - ki)
            - _bd0(ki, ni * pi) - _bd0(ni - ki, ni * qi)
        )
        out[inner] = log_c - 0.5 * np.log(2.0 * np.pi * ki * (ni - ki) / ni)
    return out


def engset(servers, sources, source_load):
    """Call congestion of the Engset loss system: the share of requests that find all servers busy.

    ``sources`` finite sources each send requests at rate ``gamma`` while idle; ``source_load``
    is ``gamma / mu``. An arriving request sees the time-congestion of a system with one source
    fewer (arrival theorem), so ``E = C(N-1, c) b^c / sum_k<=c C(N-1, k) b^k``. As ``sources``
    grows with ``sources * source_load`` fixed, this tends to Erlang B.

    Parameters
    ----------
    servers : int or array_like
        Whole number of servers ``c >= 0``.
    sources : int or array_like
        Whole number of sources ``N >= 1``.
    source_load : float or array_like
        ``b >= 0``: request rate of an idle source divided by the service rate.

    Examples
    --------
    >>> round(engset(2, 3, 1.0), 12)  # C(2,2) / (1 + 2 + 1) = 1/4
    0.25
    >>> engset(5, 5, 3.0)  # never more requests than servers
    0.0
    """
    scalar = is_scalar(servers, sources, source_load)
    c = as_array("servers", servers, minimum=0.0, integer=True)
    n_sources = as_array("sources", sources, minimum=1.0, integer=True)
    b = as_array("source_load", source_load, minimum=0.0)
    c, n_sources, b = np.broadcast_arrays(c, n_sources, b)
    n = n_sources - 1.0
    out = np.zeros(c.shape)
    out[(c == 0) & (n_sources >= 1)] = 1.0
    active = (c > 0) & (c <= n) & (b > 0)
    if active.any():
        ca, na, ba = c[active], n[active], b[active]
        p = ba / (1.0 + ba)
        mean = na * p
        sd = np.sqrt(mean * (1.0 - p))
        result = np.empty(ca.shape)
        overloaded = mean > ca + _SERIES_SIGMAS * sd + 1.0
        if overloaded.any():
            # Sum of pmf(c - j) / pmf(c) backwards; the ratio (c-i)/((n-c+i+1) b) < 1 here.
            co, no, bo = ca[overloaded], na[overloaded], ba[overloaded]
            term = np.ones(co.shape)
            total = np.ones(co.shape)
            act = np.ones(co.shape, dtype=bool)
            for i in range(0, int(co.max())):
                idx = np.flatnonzero(act)
                ratio = np.maximum(co[idx] - i, 0.0) / ((no[idx] - co[idx] + i + 1.0) * bo[idx])
                term[idx] *= ratio
                total[idx] += term[idx]
                done = term[idx] < 1e-17 * total[idx]
                act[idx[done]] = False
                if not act.any():
                    break
            result[overloaded] = 1.0 / total
        normal = ~overloaded
        if normal.any():
            cn, nn, pn = ca[normal], na[normal], p[normal]
            log_pmf = _log_binomial_pmf(cn, nn, pn)
            # Binomial CDF P(X <= c) = I_{1-p}(n - c, c + 1); it is 1 at c = n.
            full = cn >= nn
            cdf = np.where(full, 1.0, special.betainc(np.where(full, 1.0, nn - cn), cn + 1.0, 1.0 - pn))
            result[normal] = np.exp(log_pmf - np.log(cdf))
        out[active] = result
    return output(out, scalar)


def _log_geometric_sum(log_ratio, count):
    """log(sum_{i=0}^{count-1} exp(i * log_ratio)) for count >= 1, stable for any ratio."""
    out = np.log(count.astype(float))
    nonzero = log_ratio != 0
    if nonzero.any():
        lr, m = log_ratio[nonzero], count[nonzero]
        # (r^m - 1)/(r - 1) = r^(m-1) (1 - r^-m)/(1 - r^-1) for r > 1 and (1 - r^m)/(1 - r) for
        # r < 1: with s = |log r| both are (1 - e^-ms)/(1 - e^-s), times r^(m-1) when r > 1,
        # which never overflows and has no cancellation near r = 1.
        s = np.abs(lr)
        out[nonzero] = (
            np.log(-np.expm1(-m * s)) - np.log(-np.expm1(-s)) + np.where(lr > 0, (m - 1) * lr, 0.0)
        )
    return out


def mmck(servers, capacity, load):
    """Blocking probability of M/M/c/K: the share of arrivals that find ``capacity`` requests present.

    Parameters
    ----------
    servers : int or array_like
        Whole number of servers ``c >= 1``.
    capacity : int or array_like
        ``K >= c``: most requests in the system (in service plus waiting).
    load : float or array_like
        Offered load ``a >= 0`` in Erlangs.

    Notes
    -----
    With ``rho = a / c`` and ``m = K - c``: ``P(full) = rho^m / (1/B(c, a) + rho (1 - rho^m)/(1 - rho))``,
    evaluated in log space. ``K = c`` is Erlang B; ``K -> inf`` tends to M/M/c.

    Examples
    --------
    >>> round(mmck(5, 12, 8 / 4), 11)  # arrival 8, service 4
    5.869125e-05
    """
    scalar = is_scalar(servers, capacity, load)
    c = as_array("servers", servers, minimum=1.0, integer=True)
    k = as_array("capacity", capacity, minimum=1.0, integer=True)
    a = as_array("load", load, minimum=0.0)
    c, k, a = np.broadcast_arrays(c, k, a)
    if (k < c).any():
        bad = (k < c)
        raise ValueError(
            f"capacity must be >= servers, got capacity={k[bad].flat[0]:g} < servers={c[bad].flat[0]:g}"
        )
    log_b = _log_erlang_b(c, a)
    out = np.array(np.exp(log_b), dtype=np.float64)
    extra = (k > c) & (a > 0)
    if extra.any():
        ce, ke, ae, lbe = c[extra], k[extra], a[extra], log_b[extra]
        m = ke - ce
        log_rho = np.log(ae / ce)
        log_g = log_rho + _log_geometric_sum(log_rho, m)
        out[extra] = np.exp(m * log_rho - np.logaddexp(-lbe, log_g))
    return output(out, scalar)


# ----------------------------------------------------------------------------------------
# Scalar kernels: the same formulas in plain Python floats. A sizing search evaluates one
# point at a time, where numpy's fixed cost per operation (~1 us x ~100 operations) would
# dominate; these run in ~5 us. Tests hold them equal to the vectorised kernels.
# ----------------------------------------------------------------------------------------

def _stirlerr_scalar(n: float) -> float:
    if n <= 15.0:
        return math.lgamma(n + 1.0) - (n + 0.5) * math.log(n) + n - _LOG_SQRT_2PI
    inv = 1.0 / n
    inv2 = inv * inv
    return (1 / 12 - (1 / 360 - (1 / 1260 - (1 / 1680 - inv2 / 1188) * inv2) * inv2) * inv2) * inv


def _bd0_scalar(x: float, mean: float) -> float:
    if abs(x - mean) < 0.1 * (x + mean):
        v = (x - mean) / (x + mean)
        total = (x - mean) * v
        term = 2.0 * x * v
        v2 = v * v
        for j in range(1, 13):
            term *= v2
            total += term / (2 * j + 1)
            if abs(term) <= 1e-17 * abs(total):
                break
        return total
    if x == 0:
        return mean
    ratio = x / mean
    log_ratio = math.log(ratio) if ratio != math.inf else math.log(x) - math.log(mean)
    return x * log_ratio + mean - x


def _log_poisson_pmf_scalar(k: float, mean: float) -> float:
    if k == 0:
        return -mean
    if mean == 0:
        return -math.inf
    return -_stirlerr_scalar(k) - _bd0_scalar(k, mean) - _LOG_SQRT_2PI - 0.5 * math.log(k)


def _upper_gamma_cf_scalar(s: float, x: float) -> float:
    b = x + 1.0 - s
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, 500):
        an = -i * (i - s)
        b += 2.0
        d = an * d + b
        if abs(d) < _TINY:
            d = _TINY
        c = b + an / c
        if abs(c) < _TINY:
            c = _TINY
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            return h
    raise RuntimeError("continued fraction for the incomplete gamma function did not converge")


def _log_erlang_b_scalar(servers: float, load: float) -> float:
    if servers == 0:
        return 0.0
    if load == 0:
        return -math.inf
    s = servers + 1.0
    if load > s + _CF_SIGMAS * math.sqrt(s):
        log_b = -math.log(load * _upper_gamma_cf_scalar(s, load))
    else:
        log_b = _log_poisson_pmf_scalar(servers, load) - math.log(float(special.gammaincc(s, load)))
    return min(log_b, 0.0)


def _log_erlang_c_scalar(servers: float, load: float) -> float:
    if load >= servers:
        return 0.0
    log_b = _log_erlang_b_scalar(servers, load)
    return log_b - math.log((servers - load) / servers + load / servers * math.exp(log_b))


def _least_whole_between(predicate, low: int, high: int) -> int:
    """Least whole n in (low, high] with predicate(n), given predicate(high) and monotone."""
    while high - low > 1:
        mid = (low + high) // 2
        if predicate(mid):
            high = mid
        else:
            low = mid
    return high


def _least_whole_scalar(predicate, low: int, start: int) -> int:
    """Least whole n > low with predicate(n), for a monotone predicate false at low."""
    high = max(start, low + 1)
    while not predicate(high):
        low, high = high, low + 2 * (high - low) + 1
    return _least_whole_between(predicate, low, high)


# ----------------------------------------------------------------------------------------
# Inverse sizing
# ----------------------------------------------------------------------------------------

def _integer_search(predicate, low, high):
    """Least whole n in (low, high] with predicate(n) True, given predicate(low) False and
    predicate(high) True and predicate monotone; vectorised bisection."""
    low = low.copy()
    high = high.copy()
    while True:
        open_ = high - low > 1
        if not open_.any():
            return high
        mid = np.floor((low + high) / 2)
        ok = np.zeros(low.shape, dtype=bool)
        ok[open_] = predicate(mid[open_], open_)
        high = np.where(open_ & ok, mid, high)
        low = np.where(open_ & ~ok, mid, low)


def _grow_upper_bound(predicate, low, start):
    """Double the margin above ``low`` until the predicate holds."""
    high = np.maximum(start, low + 1)
    for _ in range(200):
        ok = predicate(high, np.ones(high.shape, bool))
        if ok.all():
            return high
        high = np.where(ok, high, low + 2 * (high - low) + 1)
    raise RuntimeError("no upper bound found for the search")  # unreachable for valid input


def servers_for_blocking(load, target):
    """Least whole number of servers with Erlang B blocking ``<= target``.

    A logarithmic search on the closed form: at 10^6 Erlangs it takes about 20 evaluations.
    Since the carried load ``a (1 - B)`` cannot exceed ``c``, ``c >= a (1 - target)``, which
    brackets the answer from below.

    Examples
    --------
    >>> servers_for_blocking(5.0, 0.02)
    10
    >>> servers_for_blocking(1e6, 0.01)  # at this scale B ~ 1 - c/a: fewer servers than Erlangs
    990099
    """
    scalar = is_scalar(load, target)
    a = as_array("load", load, minimum=0.0)
    eps = probability("target", target, open_interval=True)
    if scalar:
        a_, log_eps_ = float(a), math.log(float(eps))
        if a_ == 0:
            return 0
        if a_ <= _RECURSION_LOAD:
            # Small loads: walking the exact recursion 1/B(n) = 1 + (n/a)/B(n-1) upwards takes
            # ~a steps and beats a search on the closed form.
            inverse_b, servers, inverse_target = 1.0, 0, 1.0 / float(eps)
            while inverse_b < inverse_target:
                servers += 1
                inverse_b = 1.0 + inverse_b * servers / a_
            return servers
        return _least_whole_scalar(
            lambda n: _log_erlang_b_scalar(float(n), a_) <= log_eps_,
            max(math.floor(a_ * (1.0 - float(eps))) - 1, 0),
            math.ceil(a_ + 3.0 * math.sqrt(a_) + 1.0),
        )
    a, eps = np.broadcast_arrays(a, eps)
    shape = a.shape
    a, eps = np.atleast_1d(a).ravel(), np.atleast_1d(eps).ravel()
    log_eps = np.log(eps)

    def predicate(n, mask):
        return _log_erlang_b(n, a[mask]) <= log_eps[mask]

    low = np.maximum(np.floor(a * (1.0 - eps)) - 1.0, -1.0)
    # B(0, a) = 1 > target, so -1 stands for "below zero": the predicate is never asked there.
    guess = np.ceil(a + 3.0 * np.sqrt(a) + 1.0)
    zero_load = a == 0
    high = _grow_upper_bound(predicate, low, guess)
    result = _integer_search(lambda n, m: predicate(np.maximum(n, 0.0), m), low, high)
    result = np.where(zero_load, 0.0, result).reshape(shape)
    if scalar:
        return int(result)
    return result.astype(np.int64)


def servers_for_wait(load, target, wait_time=0.0, service_rate=1.0):
    """Least whole number of servers with ``P(W > wait_time) <= target`` in M/M/c.

    ``wait_time = 0`` sizes for ``P(wait) <= target``; a service level "``P(W <= t) >= x``"
    is ``target = 1 - x`` with ``wait_time = t``.

    Examples
    --------
    >>> servers_for_wait(10.0, 0.2)
    14
    >>> servers_for_wait(10.0, 0.5, wait_time=0.1)  # half answered within 0.1 service times
    12
    """
    scalar = is_scalar(load, target, wait_time, service_rate)
    a = as_array("load", load, minimum=0.0)
    eps = probability("target", target, open_interval=True)
    t = as_array("wait_time", wait_time, minimum=0.0)
    mu = as_array("service_rate", service_rate, minimum=0.0, strict_minimum=True)
    if scalar:
        a_, t_, mu_ = float(a), float(t), float(mu)
        log_eps_ = math.log(float(eps))
        if a_ == 0:
            return 0

        def meets(n):
            return _log_erlang_c_scalar(float(n), a_) - ((n - a_) * mu_ * t_ if n > a_ else 0.0) <= log_eps_

        return _least_whole_scalar(meets, math.floor(a_), math.ceil(a_ + 3.0 * math.sqrt(a_) + 2.0))
    a, eps, t, mu = np.broadcast_arrays(a, eps, t, mu)
    shape = a.shape
    a, eps, t, mu = (np.atleast_1d(v).ravel() for v in (a, eps, t, mu))
    log_eps = np.log(eps)

    def predicate(n, mask):
        am = a[mask]
        log_p = _log_erlang_c(n, am) - np.where(am < n, (n - am) * mu[mask] * t[mask], 0.0)
        return log_p <= log_eps[mask]

    low = np.floor(a)  # P(W > t) = 1 at c <= a
    guess = np.ceil(a + 3.0 * np.sqrt(a) + 2.0)
    high = _grow_upper_bound(predicate, low, guess)
    result = _integer_search(predicate, low, high)
    result = np.where(a == 0, 0.0, result).reshape(shape)
    if scalar:
        return int(result)
    return result.astype(np.int64)


def _continuous_search(function_minus_target, low, high, iterations=200):
    """Vectorised bisection for an increasing function, to full double precision."""
    low = low.copy()
    high = high.copy()
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        done = (mid <= low) | (mid >= high)
        if done.all():
            break
        above = function_minus_target(mid) > 0
        high = np.where(above & ~done, mid, high)
        low = np.where(~above & ~done, mid, low)
    return 0.5 * (low + high)


def max_load_for_blocking(servers, target):
    """Largest offered load (Erlangs) that ``servers`` carry with Erlang B blocking ``<= target``.

    Examples
    --------
    >>> a = max_load_for_blocking(10, 0.018384570337)
    >>> round(a, 8)
    5.0
    """
    scalar = is_scalar(servers, target)
    c = as_array("servers", servers, minimum=0.0, strict_minimum=True)
    eps = probability("target", target, open_interval=True)
    c, eps = np.broadcast_arrays(c, eps)
    log_eps = np.log(eps)
    # B(c, a) >= 1 - c/a, so the answer lies below c / (1 - target).
    result = _continuous_search(
        lambda x: _log_erlang_b(c, x) - log_eps, np.zeros(c.shape), c / (1.0 - eps)
    )
    return output(result, scalar)


def max_load_for_wait(servers, target, wait_time=0.0, service_rate=1.0):
    """Largest offered load (Erlangs) with ``P(W > wait_time) <= target`` on ``servers`` in M/M/c.

    Examples
    --------
    >>> a = max_load_for_wait(15, 0.102042367)
    >>> round(a, 6)
    10.0
    """
    scalar = is_scalar(servers, target, wait_time, service_rate)
    c = as_array("servers", servers, minimum=0.0, strict_minimum=True)
    eps = probability("target", target, open_interval=True)
    t = as_array("wait_time", wait_time, minimum=0.0)
    mu = as_array("service_rate", service_rate, minimum=0.0, strict_minimum=True)
    c, eps, t, mu = np.broadcast_arrays(c, eps, t, mu)
    log_eps = np.log(eps)

    def excess(x):
        return _log_erlang_c(c, x) - np.where(x < c, (c - x) * mu * t, 0.0) - log_eps

    result = _continuous_search(excess, np.zeros(c.shape), c.copy())
    return output(result, scalar)


# ----------------------------------------------------------------------------------------
# Halfin-Whitt square-root staffing
# ----------------------------------------------------------------------------------------

def _log_hw_ratio(beta):
    """log(beta Phi(beta) / phi(beta)) for beta > 0."""
    return np.log(beta) + special.log_ndtr(beta) + 0.5 * beta * beta + _LOG_SQRT_2PI


def halfin_whitt_p_wait(beta):
    """Halfin–Whitt limit of P(wait) for ``c = a + beta sqrt(a)``: ``(1 + beta Phi(beta)/phi(beta))^-1``.

    Examples
    --------
    >>> round(halfin_whitt_p_wait(1.0), 6)
    0.223361
    """
    scalar = is_scalar(beta)
    b = as_array("beta", beta, minimum=0.0)
    out = np.ones(b.shape)
    positive = b > 0
    if positive.any():
        out[positive] = special.expit(-_log_hw_ratio(b[positive]))
    return output(out, scalar)


def halfin_whitt_beta(target):
    """The ``beta`` whose Halfin–Whitt delay probability equals ``target`` (inverse of ``halfin_whitt_p_wait``).

    Examples
    --------
    >>> round(halfin_whitt_beta(0.223361), 4)
    1.0
    """
    scalar = is_scalar(target)
    eps = probability("target", target, open_interval=True)
    log_odds = np.log(1.0 - eps) - np.log(eps)  # solve log(beta Phi/phi) = log((1 - eps)/eps)
    # log ratio grows like beta^2/2, so beta <= sqrt(2 |log odds|) + 2 brackets the root.
    high = np.sqrt(2.0 * np.abs(log_odds)) + 2.0
    result = _continuous_search(
        lambda b: _log_hw_ratio(np.maximum(b, 1e-300)) - log_odds, np.zeros(eps.shape), high
    )
    return output(result, scalar)


@dataclass(frozen=True)
class SquareRootStaffing:
    """Square-root staffing ``c = ceil(a + beta sqrt(a))`` against the exact least ``c``."""

    load: float
    target: float
    beta: float
    servers: int
    exact_servers: int
    p_wait_at_servers: float

    @property
    def error(self) -> int:
        """Servers the rule adds over the exact answer (negative: it under-staffs)."""
        return self.servers - self.exact_servers

    def __repr__(self) -> str:
        return (
            f"SquareRootStaffing(load={self.load:g}, target={self.target:g}, beta={self.beta:.4f}, "
            f"servers={self.servers}, exact_servers={self.exact_servers}, error={self.error:+d}, "
            f"p_wait_at_servers={self.p_wait_at_servers:.4g})"
        )


def square_root_staffing(load, target):
    """Halfin–Whitt square-root staffing for a delay-probability target, with its exact check.

    Examples
    --------
    >>> s = square_root_staffing(100.0, 0.2)
    >>> s.servers, s.exact_servers
    (111, 111)
    """
    a = float(as_array("load", load, minimum=0.0, strict_minimum=True))
    eps = float(probability("target", target, open_interval=True))
    beta = halfin_whitt_beta(eps)
    servers = int(math.ceil(a + beta * math.sqrt(a)))
    exact = servers_for_wait(a, eps)
    return SquareRootStaffing(
        load=a, target=eps, beta=beta, servers=servers, exact_servers=exact,
        p_wait_at_servers=erlang_c(servers, a),
    )
