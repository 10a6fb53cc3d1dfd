"""M/M/c/K: blocking of a queue with ``c`` servers and room for at most ``K`` requests in the system.

With ``rho = a / c`` and ``m = K - c`` waiting places,
``P(full) = rho^m / (1/B(c, a) + rho (1 - rho^m)/(1 - rho))``, evaluated in log space on
Erlang B; ``K = c`` is Erlang B and ``K -> inf`` tends to M/M/c.

A large waiting room must not cost digits: ``m log(rho)`` is never formed and then cancelled.
With ``s = |log rho|`` (from ``log1p((a - c)/c)`` near ``rho = 1``, exact there), the geometric
sum is ``(1 - e^-ms) / (1 - e^-s)`` by ``expm1``, and for ``rho > 1`` numerator and
denominator are divided by ``rho^m`` before anything is added:
``P = 1 / (e^-ms / B + (1 - e^-ms) / (1 - e^-s))``, which tends to ``1 - 1/rho`` as ``m`` grows.
Then the only rounding that ``m`` multiplies is that of ``s`` itself (a few ulps).
"""

from __future__ import annotations

import numpy as np

from .._validate import as_array, broadcast, output
from .erlang_b import _log_erlang_b

__all__ = ["mmck"]


def _log_rho(load: np.ndarray, servers: np.ndarray) -> np.ndarray:
    """log(a / c) to a few ulps of itself, also as ``rho -> 1`` (where ``a - c`` is exact)."""
    near = load >= 0.5 * servers
    with np.errstate(divide="ignore"):
        return np.where(near, np.log1p((load - servers) / servers), np.log(load) - np.log(servers))


def _log_geometric(s: np.ndarray, m: np.ndarray) -> np.ndarray:
    """log((1 - e^-ms) / (1 - e^-s)) = log(sum_{i<m} e^-is) for s >= 0 (m at s = 0)."""
    out = np.log(m)
    positive = s > 0
    if positive.any():
        sp, mp = s[positive], m[positive]
        out[positive] = np.log(-np.expm1(-mp * sp)) - np.log(-np.expm1(-sp))
    return out


def _log_blocking(servers, capacity, load, log_b):
    """log P(full) for K > c and a > 0, from log B(c, a)."""
    m = capacity - servers
    log_rho = _log_rho(load, servers)
    s = np.abs(log_rho)
    log_geometric = _log_geometric(s, m)  # log sum_{i<m} e^-is
    # rho > 1: P = 1 / (e^-ms / B + sum_{i<m} rho^-i); rho <= 1: P = rho^m / (1/B + rho sum_{i<m} rho^i)
    above = log_rho > 0
    return np.where(
        above,
        -np.logaddexp(-m * s - log_b, log_geometric),
        -m * s - np.logaddexp(-log_b, log_rho + log_geometric),
    )


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
    evaluated in log space without cancellation at any ``m`` (see the module notes). ``K = c``
    is Erlang B; ``K -> inf`` tends to 0 below ``a = c`` and to ``1 - c/a`` above it.

    Examples
    --------
    >>> round(mmck(5, 12, 8 / 4), 11)  # arrival 8, service 4
    5.869125e-05
    >>> round(mmck(2, 10**8, 3.0), 15)  # a vast waiting room in overload: 1 - c/a
    0.333333333333333
    """
    c = as_array("servers", servers, minimum=1.0, integer=True)
    k = as_array("capacity", capacity, minimum=1.0, integer=True)
    a = as_array("load", load, minimum=0.0)
    scalar = c.ndim == 0 and k.ndim == 0 and a.ndim == 0
    c, k, a = broadcast(servers=c, capacity=k, load=a)
    if (k < c).any():
        bad = k < c
        raise ValueError(
            f"capacity must be >= servers, got capacity={k[bad].flat[0]:g} < servers={c[bad].flat[0]:g}"
        )
    with np.errstate(under="ignore", over="ignore"):  # e^-ms and B underflow to 0: the right values
        log_b = _log_erlang_b(c, a)
        out = np.array(np.exp(log_b), dtype=np.float64)
        extra = (k > c) & (a > 0)
        if extra.any():
            out[extra] = np.exp(_log_blocking(c[extra], k[extra], a[extra], log_b[extra]))
    return output(out, scalar)
