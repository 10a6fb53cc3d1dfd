"""Erlang C and the M/M/c waiting-time distribution: P(wait), P(W > t), P(W + S > t), E[W], quantiles.

``C(c, a) = B / (1 - rho (1 - B))`` with ``rho = a / c`` for ``a < c``, built on Erlang B in log
space; ``C = 1`` where ``load >= servers`` (no steady state), where Erlang B is not even formed.
Given a wait, it is exponential with rate ``(c - a) mu``.
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import as_array, broadcast, output
from ._kernels import in_blocks
from .erlang_b import _log_erlang_b, _log_erlang_b_scalar

__all__ = ["erlang_c", "wait_sf", "response_time_sf", "mean_wait", "wait_quantile"]


def _log_c_given_b(servers: np.ndarray, load: np.ndarray, log_b: np.ndarray) -> np.ndarray:
    b = np.exp(log_b)
    # C = B / (1 - rho (1 - B)) = B / ((c - a)/c + rho B): no cancellation as rho -> 1.
    rho = load / servers
    return log_b - np.log((servers - load) / servers + rho * b)


def _log_erlang_c(servers: np.ndarray, load: np.ndarray, log_b: np.ndarray | None = None) -> np.ndarray:
    """log C(c, a); 0 where load >= servers. ``log_b``, if given, is log B at the same points."""
    if log_b is None:
        return in_blocks(_log_erlang_c_block, servers, load)
    return in_blocks(_log_erlang_c_block, servers, load, log_b)


def _log_erlang_c_block(servers: np.ndarray, load: np.ndarray, log_b: np.ndarray | None = None) -> np.ndarray:
    """:func:`_log_erlang_c` on one block of broadcast points."""
    stable = load < servers
    if stable.all():
        return _log_c_given_b(servers, load, _log_erlang_b(servers, load) if log_b is None else log_b)
    out = np.zeros(servers.shape)
    if stable.any():
        # Overloaded points need no Erlang B (C = 1 there): on a grid that mixes under- and
        # overload, the incomplete gamma function is computed only where it is used.
        c, a = servers[stable], load[stable]
        out[stable] = _log_c_given_b(c, a, _log_erlang_b(c, a) if log_b is None else log_b[stable])
    return out


def _log_erlang_c_scalar(servers: float, load: float) -> float:
    """:func:`_log_erlang_c` for one point, in plain floats (the sizing searches' kernel)."""
    if load >= servers:
        return 0.0
    log_b = _log_erlang_b_scalar(servers, load)
    return log_b - math.log((servers - load) / servers + load / servers * math.exp(log_b))


def _sum_exponential_convolution(rate_1_time, rate_2_time):
    """P(X + Y > t) for independent exponentials, from their rates times ``t``; stable when rates are equal.

    With ``u <= v`` the two products, ``P = e^-u (1 + u (1 - e^-(v-u)) / (v - u))``. Beyond
    ``u = 1e4`` it is 0 in double precision, so ``u`` is capped there and ``v`` at 1e300: no
    ``inf * 0`` when a product overflows.
    """
    low = np.minimum(np.minimum(rate_1_time, rate_2_time), 1e4)
    high = np.minimum(np.maximum(rate_1_time, rate_2_time), 1e300)
    z = high - low
    ratio = np.where(z > 0, -np.expm1(-z) / np.where(z > 0, z, 1.0), 1.0)
    return np.exp(-low) * (1.0 + low * ratio)


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
    c = as_array("servers", servers, minimum=0.0)
    a = as_array("load", load, minimum=0.0)
    if c.ndim == 0 and a.ndim == 0:
        return math.exp(_log_erlang_c_scalar(float(c), float(a)))
    c, a = broadcast(servers=c, load=a)
    with np.errstate(under="ignore"):  # C underflows to 0 with servers far above the load
        return np.exp(_log_erlang_c(c, a))


def _wait_inputs(servers, load, service_rate, name=None, value=None):
    """Whether all are scalars, and the checked servers, load, service rate (and ``name=value``, if given).

    Scalars come back as Python floats, arrays broadcast (a mismatch names the arguments).
    """
    c = as_array("servers", servers, minimum=0.0)
    a = as_array("load", load, minimum=0.0)
    mu = as_array("service_rate", service_rate, minimum=0.0, strict_minimum=True)
    named = {"servers": c, "load": a, "service_rate": mu}
    if name == "quantile":
        named[name] = as_array(name, value, minimum=0.0, maximum=1.0, strict_maximum=True)
    elif name is not None:
        named[name] = as_array(name, value, minimum=0.0)
    if all(v.ndim == 0 for v in named.values()):
        return True, [float(v) for v in named.values()]
    return False, broadcast(**named)


def _over_rate(numerator, rate):
    """``numerator / rate`` for a time (``rate`` = (c - a) mu): 0 when nothing waits, inf when the
    rate underflows to 0 or the quotient overflows (a time beyond the float range)."""
    if isinstance(numerator, float):
        return 0.0 if numerator == 0 else (numerator / rate if rate > 0 else math.inf)
    out = np.where(numerator == 0, 0.0, np.inf)
    with np.errstate(over="ignore"):
        return np.divide(numerator, rate, out=out, where=(numerator != 0) & (rate > 0))


def _decay(servers, load, rate_time):
    """(c - a) mu t where the queue is stable (0 elsewhere), as (c - a) (mu t): never inf * 0."""
    stable = load < servers
    return np.where(stable, (servers - load) * np.where(stable, rate_time, 0.0), 0.0)


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
    scalar, (c, a, mu, t) = _wait_inputs(servers, load, service_rate, "wait_time", wait_time)
    if scalar:
        # Python floats overflow to inf without a warning, and (c - a) (mu t) is never inf * 0
        decay = (c - a) * (mu * t) if a < c and t > 0 else 0.0
        return math.exp(_log_erlang_c_scalar(c, a) - decay)
    with np.errstate(under="ignore", over="ignore"):  # a decay beyond the float range is inf: P = 0
        return np.exp(_log_erlang_c(c, a) - _decay(c, a, mu * t))


def response_time_sf(servers, load, time, service_rate=1.0):
    """P(W + S > t): probability that a request's response time (wait plus service) exceeds ``time``.

    In M/M/c the wait is 0 with probability ``1 - C`` and otherwise exponential with rate
    ``(c - a) mu``; the service is exponential with rate ``mu``. 1.0 where ``load >= servers``.

    Examples
    --------
    >>> round(response_time_sf(1, 0.5, 2.0), 12)  # M/M/1: exp(-(mu - lambda) t)
    0.367879441171
    """
    scalar, (c, a, mu, t) = _wait_inputs(servers, load, service_rate, "time", time)
    return output(_response_time_sf(c, a, mu, t), scalar)


def _response_time_sf(servers, load, service_rate, time) -> np.ndarray:
    """:func:`response_time_sf` on checked inputs (floats or float64 arrays that broadcast), as an array.

    The retrying queue's equilibrium search calls it thousands of times on inputs it made itself:
    there the checks at the door cost more than the formula.
    """
    c, a, mu, t = np.broadcast_arrays(servers, load, service_rate, time)  # 0-d arrays for scalars
    out = np.ones(c.shape)
    stable = a < c
    if stable.any():
        cs, as_, ms, ts = c[stable], a[stable], mu[stable], t[stable]
        with np.errstate(under="ignore", over="ignore"):  # products beyond the float range: P = 0
            p_wait = np.exp(_log_erlang_c(cs, as_))
            service_time = ms * ts
            out[stable] = (1.0 - p_wait) * np.exp(-service_time) + p_wait * _sum_exponential_convolution(
                (cs - as_) * service_time, service_time
            )
    return out


def mean_wait(servers, load, service_rate=1.0):
    """Mean time in queue over all arrivals in M/M/c: ``C(c, a) / ((c - a) mu)``; inf where ``load >= servers``.

    Examples
    --------
    >>> round(mean_wait(2, 1.0), 12)  # M/M/2 at a = 1: C = 1/3, E[W] = 1/3
    0.333333333333
    """
    scalar, (c, a, mu) = _wait_inputs(servers, load, service_rate)
    if scalar:
        # a mean beyond the float range (a tiny service rate) is inf, as Python floats round it
        return _over_rate(math.exp(_log_erlang_c_scalar(c, a)), (c - a) * mu) if a < c else math.inf
    out = np.full(c.shape, np.inf)
    stable = a < c
    if stable.any():
        cs, as_, ms = c[stable], a[stable], mu[stable]
        with np.errstate(under="ignore", over="ignore"):
            out[stable] = _over_rate(np.exp(_log_erlang_c(cs, as_)), (cs - as_) * ms)
    return out


def wait_quantile(servers, load, quantile, service_rate=1.0):
    """The ``quantile`` of the waiting time in M/M/c (0 where ``P(wait) <= 1 - quantile``).

    inf where ``load >= servers``.

    Examples
    --------
    >>> t = wait_quantile(11, 10.0, 0.9)
    >>> round(wait_sf(11, 10.0, t), 12)
    0.1
    """
    scalar, (c, a, mu, q) = _wait_inputs(servers, load, service_rate, "quantile", quantile)
    if scalar:
        if a >= c:
            return math.inf
        # a quantile beyond the float range (a tiny service rate) is inf, as Python floats round it
        return _over_rate(max(_log_erlang_c_scalar(c, a) - math.log1p(-q), 0.0), (c - a) * mu)
    out = np.full(c.shape, np.inf)
    stable = a < c
    if stable.any():
        cs, as_, ms, qs = c[stable], a[stable], mu[stable], q[stable]
        with np.errstate(under="ignore", over="ignore"):
            log_c = _log_erlang_c(cs, as_)
            out[stable] = _over_rate(np.maximum(log_c - np.log1p(-qs), 0.0), (cs - as_) * ms)
    return out
