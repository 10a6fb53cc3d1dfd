"""Engset: call congestion of a loss system fed by a finite number of sources.

An arriving request sees the time congestion of a system with one source fewer (arrival
theorem), so ``E = C(N-1, c) b^c / sum_k<=c C(N-1, k) b^k``: a binomial probability over
its lower tail. The tail is ``scipy.special.betainc``, except where the mean is far above
the servers (the tail would underflow): there the finite sum is taken backwards from ``c``.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from .._validate import as_array, is_scalar, output
from ._kernels import log_binomial_pmf

__all__ = ["engset"]

# The finite series takes over this many standard deviations above the servers.
_SERIES_SIGMAS = 4.0


def _backward_sum_inverse(c: np.ndarray, n: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1 / sum_j pmf(c - j) / pmf(c); the term ratio (c-i)/((n-c+i+1) b) < 1 where it is used."""
    term = np.ones(c.shape)
    total = np.ones(c.shape)
    active = np.ones(c.shape, dtype=bool)
    for i in range(0, int(c.max())):
        idx = np.flatnonzero(active)
        ratio = np.maximum(c[idx] - i, 0.0) / ((n[idx] - c[idx] + i + 1.0) * b[idx])
        term[idx] *= ratio
        total[idx] += term[idx]
        done = term[idx] < 1e-17 * total[idx]
        active[idx[done]] = False
        if not active.any():
            break
    return 1.0 / total


def _pmf_over_cdf(c: np.ndarray, n: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Binomial pmf(c) / P(X <= c), the CDF being I_{1-p}(n - c, c + 1) (1 at c = n)."""
    log_pmf = log_binomial_pmf(c, n, p)
    full = c >= n
    cdf = np.where(full, 1.0, special.betainc(np.where(full, 1.0, n - c), c + 1.0, 1.0 - p))
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
            result[overloaded] = _backward_sum_inverse(ca[overloaded], na[overloaded], ba[overloaded])
        normal = ~overloaded
        if normal.any():
            result[normal] = _pmf_over_cdf(ca[normal], na[normal], p[normal])
        out[active] = result
    return output(out, scalar)
