"""Engset: call congestion of a loss system fed by a finite number of sources.

An arriving request sees the time congestion of a system with one source fewer (arrival
theorem), so ``E = C(N-1, c) b^c / sum_k<=c C(N-1, k) b^k``: a binomial probability over
its lower tail, with ``p = b / (1 + b)``. The tail is ``scipy.special.betaincc`` (on ``p``
itself: ``1 - p`` would lose the digits of a small ``p``), except where the mean is far above
the servers (the tail would underflow): there ``1/E = sum_j C(n, c-j) b^-j / C(n, c)``, the
hypergeometric series ``2F1(1, -c; n - c + 1; -1/b)``, is Gauss's continued fraction, which
converges in a few dozen steps at any size and is built from ``b`` directly.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from .._validate import as_array, broadcast, output
from ._kernels import TINY, log_binomial_pmf

__all__ = ["engset"]

# The continued fraction takes over this many standard deviations above the servers.
_SERIES_SIGMAS = 4.0
# Steps of the continued fraction: beyond 4 sd above the servers it converges within ~60
# steps at any size tried (1e12 and 9e15 sources, b from 1e-8 to 1e6).
_MAX_STEPS = 2000


def _gauss_fraction(c: np.ndarray, n: np.ndarray, b: np.ndarray) -> np.ndarray:
    """E = 1 / 2F1(1, -c; n - c + 1; -1/b) by Gauss's continued fraction (modified Lentz).

    ``2F1 = 1 / (1 - u_0 / (1 + v_1 / (1 - u_1 / (1 + v_2 / ...))))`` with
    ``u_m = (c - m)(n - c + m) / ((n - c + 2m)(n - c + 2m + 1) b)`` and
    ``v_m = m (n + m) / ((n - c + 2m - 1)(n - c + 2m) b)``; so ``E`` is the fraction itself.
    """
    f = np.ones(c.shape)
    big = np.full(c.shape, 1.0)   # Lentz's C
    small = np.zeros(c.shape)     # Lentz's D
    active = np.ones(c.shape, dtype=bool)
    free = n - c
    for j in range(1, _MAX_STEPS):
        idx = np.flatnonzero(active)
        ci, fi, bi = c[idx], free[idx], b[idx]
        # ratios first, then / b: products of two sizes near 1e308 would overflow
        if j % 2:
            m = (j - 1) // 2
            a = -(np.maximum(ci - m, 0.0) / (fi + 2 * m + 1)) * ((fi + m) / (fi + 2 * m)) / bi
        else:
            m = j // 2
            a = (m / (fi + 2 * m - 1)) * ((n[idx] + m) / (fi + 2 * m)) / bi
        d = 1.0 + a * small[idx]
        d = 1.0 / np.where(d == 0, TINY, d)
        cc = 1.0 + a / big[idx]
        cc = np.where(cc == 0, TINY, cc)
        delta = cc * d
        small[idx], big[idx] = d, cc
        f[idx] *= delta
        # a zero numerator (m = c, or one below 1e-308) ends the fraction: its tail adds nothing
        active[idx[(np.abs(delta - 1.0) < 1e-16) | (a == 0)]] = False
        if not active.any():
            return f
    raise RuntimeError("Engset's continued fraction did not converge")  # not reached beyond 4 sd


def _pmf_over_cdf(c: np.ndarray, n: np.ndarray, p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Binomial pmf(c) / P(X <= c), the CDF being ``1 - I_p(c + 1, n - c)`` (1 at c = n)."""
    log_pmf = log_binomial_pmf(c, n, p, q)
    full = c >= n
    cdf = np.where(full, 1.0, special.betaincc(c + 1.0, np.where(full, 1.0, n - c), p))
    return np.exp(log_pmf - np.log(cdf))


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
    c = as_array("servers", servers, minimum=0.0, integer=True)
    n_sources = as_array("sources", sources, minimum=1.0, integer=True)
    b = as_array("source_load", source_load, minimum=0.0)
    scalar = c.ndim == 0 and n_sources.ndim == 0 and b.ndim == 0
    c, n_sources, b = broadcast(servers=c, sources=n_sources, source_load=b)
    n = n_sources - 1.0
    out = np.zeros(c.shape)
    out[c == 0] = 1.0
    active = (c > 0) & (c <= n) & (b > 0)
    if active.any():
        with np.errstate(under="ignore", over="ignore"):  # vanishing terms and b (1 + b) at 1e308
            out[active] = _congestion(c[active], n[active], b[active])
    return output(out, scalar)


def _congestion(c: np.ndarray, n: np.ndarray, b: np.ndarray) -> np.ndarray:
    """E for 0 < c <= n and b > 0: the continued fraction far in overload, the binomial tail elsewhere."""
    p = b / (1.0 + b)
    q = 1.0 / (1.0 + b)
    mean = n * p
    overloaded = mean > c + _SERIES_SIGMAS * np.sqrt(mean * q) + 1.0
    result = np.empty(c.shape)
    if overloaded.any():
        result[overloaded] = _gauss_fraction(c[overloaded], n[overloaded], b[overloaded])
    normal = ~overloaded
    if normal.any():
        result[normal] = _pmf_over_cdf(c[normal], n[normal], p[normal], q[normal])
    return np.minimum(result, 1.0)
