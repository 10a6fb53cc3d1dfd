"""Erlang C and the M/M/c waiting-time distribution: P(wait), P(W > t), P(W + S > t), E[W], quantiles.

``C(c, a) = B / (1 - rho (1 - B))`` with ``rho = a / c`` for ``a < c``, built on Erlang B in log
space; ``C = 1`` where ``load >= servers`` (no steady state), where Erlang B is not even formed.
Given a wait, it is exponential with rate ``(c - a) mu``.
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import as_array, is_scalar, output
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


def _sum_exponential_convolution(rate_1, rate_2, time):
    """P(X + Y > t) for independent exponentials with the given rates, stable when rates are equal."""
    low = np.minimum(rate_1, rate_2)
    high = np.maximum(rate_1, rate_2)
    z = (high - low) * time
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(z > 0, -np.expm1(-z) / np.where(z > 0, z, 1.0), 1.0)
    return np.exp(-low * time) * (1.0 + low * time * ratio)


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
    return np.exp(_log_erlang_c(c, a))


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
    return np.exp(log_c - decay)


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
