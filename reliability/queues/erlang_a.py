"""Erlang A: the M/M/c+M queue, where waiting customers abandon at rate ``theta``.

With ``x = lambda / theta`` and ``y = c mu / theta`` the queue's weight relative to state
``c`` is ``J = sum_j x^j / (y+1)_j = 1F1(1; y+1; x)``; ``P(wait) = J / (1/B - 1 + J)`` with
Erlang B at ``a = lambda / mu``. ``J`` is a blocked series in the geometric regime, the
continued fraction of DLMF 8.9.2 well below ``x = y``, and a regularised incomplete gamma
function near it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from .._records import Record
from .._validate import as_array, is_scalar, output
from ._kernels import log_poisson_pmf, lower_gamma_cf
from .erlang_b import _log_erlang_b
from .erlang_c import _log_erlang_c

__all__ = ["erlang_a", "ErlangAResult"]

# The finite series and the continued fraction switch at this many deviations.
_SERIES_SIGMAS = 4.0
# Most terms summed for the queue series in its geometric regime.
_SERIES_TERMS = 5000
# Smallest abandonment rate, relative to the service rate, that Erlang A accepts besides 0.
_MIN_ABANDONMENT = 1e-12


@dataclass(frozen=True, repr=False)
class ErlangAResult(Record):
    """Steady state of M/M/c+M (Erlang A); fields are floats, or arrays for array input.

    ``mean_wait`` is the mean time in queue over all arrivals (those who abandon included).

    Examples
    --------
    >>> erlang_a(14, 10 / 3, 1 / 3, 1 / 5)
    ErlangAResult(p_wait=0.14526, p_abandon=0.0139837, mean_wait=0.0699187, mean_queue_length=0.233062, p_served=0.986016, utilisation=0.704297)
    """

    p_wait: float | np.ndarray
    p_abandon: float | np.ndarray
    mean_wait: float | np.ndarray
    mean_queue_length: float | np.ndarray
    p_served: float | np.ndarray
    utilisation: float | np.ndarray


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


def _log_j_outside_geometric(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """log J by the continued fraction well below x = y, else as P(y, x) / pmf(y; x)."""
    log_j = np.empty(x.shape)
    below = x < y - _SERIES_SIGMAS * np.sqrt(y) - 1.0
    if below.any():
        log_j[below] = np.log(lower_gamma_cf(y[below], x[below]))
    near = ~below
    if near.any():
        # J = P(y, x) / pmf(y; x), Poisson pmf for real y (Loader form); P >= 3e-5 here.
        xn, yn = x[near], y[near]
        log_j[near] = np.log(special.gammainc(yn, xn)) - log_poisson_pmf(yn, xn)
    return log_j


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
        log_jr = _log_j_outside_geometric(xr, yr)
        log_j[rest] = log_jr
        inverse_j = np.exp(-log_jr)
        # S1 = x J - y (J - 1)  =>  S1 / J = x / J + (x - y)(1 - 1/J).
        mean_queue_busy[rest] = xr * inverse_j + (xr - yr) * (-np.expm1(-log_jr))
    return log_j, np.maximum(mean_queue_busy, 0.0)


def _erlang_a_inputs(servers, arrival_rate, service_rate, abandonment_rate):
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
    return c, lam, mu, theta


def _without_abandonment(c, load, log_b):
    """P(wait) and mean queue length of M/M/c (theta = 0); the queue is infinite where load >= c."""
    p_wait = np.exp(_log_erlang_c(c, load, log_b))
    stable = load < c
    with np.errstate(divide="ignore"):
        mean_queue = np.where(stable, p_wait * load / np.where(stable, c - load, 1.0), np.inf)
    return p_wait, mean_queue


def _with_abandonment(c, lam, mu, theta, log_b):
    """P(wait) and mean queue length of M/M/c+M for theta > 0."""
    x = lam / theta
    y = c * mu / theta
    positive = x > 0
    p_wait = np.zeros(c.shape)
    mean_queue = np.zeros(c.shape)
    if positive.any():
        log_j, queue_busy = _erlang_a_queue_sums(x[positive], y[positive])
        lb = log_b[positive]
        # P(wait) = J / (1/B - 1 + J) = expit(-z), z = log(1/B - 1) - log J.
        with np.errstate(divide="ignore"):
            log_odds = np.log(-np.expm1(lb)) - lb - log_j
        p_wait[positive] = special.expit(-log_odds)
        mean_queue[positive] = p_wait[positive] * queue_busy
    return p_wait, mean_queue


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
    c, lam, mu, theta = _erlang_a_inputs(servers, arrival_rate, service_rate, abandonment_rate)
    load = lam / mu
    log_b = _log_erlang_b(c, load)
    p_wait = np.empty(c.shape)
    mean_queue = np.empty(c.shape)
    no_abandonment = theta == 0
    if no_abandonment.any():
        m = no_abandonment
        p_wait[m], mean_queue[m] = _without_abandonment(c[m], load[m], log_b[m])
    general = ~no_abandonment
    if general.any():
        m = general
        p_wait[m], mean_queue[m] = _with_abandonment(c[m], lam[m], mu[m], theta[m], log_b[m])

    with np.errstate(divide="ignore", invalid="ignore"):
        mean_wait_all = np.where(lam > 0, mean_queue / np.where(lam > 0, lam, 1.0), 0.0)
        p_abandon = np.where(lam > 0, theta * mean_queue / np.where(lam > 0, lam, 1.0), 0.0)
    p_abandon = np.where(no_abandonment, 0.0, np.minimum(p_abandon, 1.0))
    mean_wait_all = np.where(no_abandonment & (load >= c) & (lam > 0), np.inf, mean_wait_all)
    p_served = 1.0 - p_abandon
    utilisation = np.where(no_abandonment & (load >= c), 1.0, load * p_served / c)
    return ErlangAResult(
        p_wait=output(p_wait, scalar),
        p_abandon=output(p_abandon, scalar),
        mean_wait=output(mean_wait_all, scalar),
        mean_queue_length=output(mean_queue, scalar),
        p_served=output(p_served, scalar),
        utilisation=output(utilisation, scalar),
    )
