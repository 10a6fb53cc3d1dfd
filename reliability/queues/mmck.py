"""M/M/c/K: blocking of a queue with ``c`` servers and room for at most ``K`` requests in the system.

With ``rho = a / c`` and ``m = K - c`` waiting places,
``P(full) = rho^m / (1/B(c, a) + rho (1 - rho^m)/(1 - rho))``, evaluated in log space on
Erlang B; ``K = c`` is Erlang B and ``K -> inf`` tends to M/M/c.
"""

from __future__ import annotations

import numpy as np

from .._validate import as_array, is_scalar, output
from .erlang_b import _log_erlang_b

__all__ = ["mmck"]


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
