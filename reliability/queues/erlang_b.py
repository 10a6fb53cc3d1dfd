"""Erlang B: blocking in the M/M/c/c loss system, for any (also fractional) number of servers.

Erlang B is the ratio of a Poisson probability to a Poisson tail,

    B(c, a) = a^c e^-a / Gamma(c + 1, a) = pmf(c; a) / Q(c + 1, a),

which also defines it for fractional ``c``. The Poisson probability is computed with
Loader's saddle-point form (``bd0`` and ``stirlerr``, as in R's ``dpois``) so no large
logarithms cancel; the tail ``Q`` comes from ``scipy.special.gammaincc``. Where the tail
would underflow (load well above the servers) we never form it: ``1 / B`` is evaluated
directly as ``a`` times Legendre's continued fraction for ``Gamma(c + 1, a) / (a^c e^-a)``,
which converges in a few dozen steps there. Everything downstream works with ``log B``.

At astronomical sizes (``c + 1 > 1e300``) ``gammaincc`` returns NaN away from its mean; there,
for loads more than 8 standard deviations below the servers, ``Q(c + 1, a) = 1`` to within
``Phi(-8) = 6e-16`` and is taken as 1.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from .._validate import as_array, broadcast
from ._kernels import (
    in_blocks,
    log_poisson_pmf_positive,
    log_poisson_pmf_scalar,
    upper_gamma_cf,
    upper_gamma_cf_scalar,
)

__all__ = ["erlang_b"]

# Erlang B's continued fraction takes over this many standard deviations above the servers:
# there it converges in <= 16 steps; below it Q(c + 1, a) >= 6e-16 cannot underflow and
# gammaincc is accurate to ~1e-13 (it degrades to ~1e-12 further out in the tail).
_CF_SIGMAS = 8.0
# Above this many servers gammaincc fails (NaN) below its mean, where Q(c + 1, a) = 1 - Phi(-8) or closer.
_HUGE_SERVERS = 1e300


def _log_b_by_tail(servers: np.ndarray, load: np.ndarray) -> np.ndarray:
    """log pmf(c; a) - log Q(c + 1, a) for servers > 0, load > 0 below the continued fraction's region."""
    s = servers + 1.0
    tail = special.gammaincc(s, load)
    if s.size and s.max() > _HUGE_SERVERS:
        # astronomical sizes, far below the mean: Q = 1 to 6e-16, and gammaincc would say NaN
        tail = np.where((s > _HUGE_SERVERS) & (load < s - _CF_SIGMAS * np.sqrt(s)), 1.0, tail)
    log_b = log_poisson_pmf_positive(servers, load) - np.log(tail)
    # B <= 1 exactly; rounding in the last place must not say otherwise.
    return np.minimum(log_b, 0.0)


def _log_b_by_fraction(servers: np.ndarray, load: np.ndarray) -> np.ndarray:
    """-log(a Gamma(c + 1, a) / (a^c e^-a)) for load well above the servers (where Q underflows)."""
    return np.minimum(-np.log(upper_gamma_cf(servers + 1.0, load)), 0.0)


def _deep_overload(servers: np.ndarray, load: np.ndarray) -> np.ndarray:
    s = servers + 1.0
    return load > s + _CF_SIGMAS * np.sqrt(s)


def _log_erlang_b(servers: np.ndarray, load: np.ndarray) -> np.ndarray:
    """log B(c, a) for servers >= 0, load >= 0 (float64 arrays, broadcast here)."""
    return in_blocks(_log_erlang_b_block, servers, load)


def _log_erlang_b_block(servers: np.ndarray, load: np.ndarray) -> np.ndarray:
    """:func:`_log_erlang_b` on one block of broadcast points."""
    if servers.size and servers.min() > 0 and load.min() > 0:
        deep = _deep_overload(servers, load)
        if not deep.any():
            # The common case of a sweep: no edge values, no continued fraction, no masked copies.
            return _log_b_by_tail(servers, load)
    out = np.zeros(servers.shape)  # B = 1 where servers == 0
    positive = (servers > 0) & (load > 0)
    out[(servers > 0) & (load == 0)] = -np.inf
    if not positive.any():
        return out
    c, a = servers[positive], load[positive]
    result = np.empty(c.shape)
    deep = _deep_overload(c, a)
    if deep.any():
        result[deep] = _log_b_by_fraction(c[deep], a[deep])
    normal = ~deep
    if normal.any():
        result[normal] = _log_b_by_tail(c[normal], a[normal])
    out[positive] = result
    return out


def _log_erlang_b_scalar(servers: float, load: float) -> float:
    """:func:`_log_erlang_b` for one point, in plain floats (the sizing searches' kernel)."""
    if servers == 0:
        return 0.0
    if load == 0:
        return -math.inf
    s = servers + 1.0
    if load > s + _CF_SIGMAS * math.sqrt(s):
        log_b = -math.log(upper_gamma_cf_scalar(s, load))
    elif s > _HUGE_SERVERS and load < s - _CF_SIGMAS * math.sqrt(s):
        log_b = log_poisson_pmf_scalar(servers, load)  # Q(c + 1, a) = 1 to 6e-16 (see the module notes)
    else:
        log_b = log_poisson_pmf_scalar(servers, load) - math.log(float(special.gammaincc(s, load)))
    return min(log_b, 0.0)


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
    c = as_array("servers", servers, minimum=0.0)
    a = as_array("load", load, minimum=0.0)
    if c.ndim == 0 and a.ndim == 0:
        return math.exp(_log_erlang_b_scalar(float(c), float(a)))
    c, a = broadcast(servers=c, load=a)
    with np.errstate(under="ignore"):  # B underflows to 0 far below the load: the right value
        return np.exp(_log_erlang_b(c, a))
