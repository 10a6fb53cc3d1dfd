"""Erlang A: the M/M/c+M queue, where waiting customers abandon at rate ``theta``.

With ``x = lambda / theta`` and ``y = c mu / theta`` the queue's weight relative to state
``c`` is ``J = sum_j x^j / (y+1)_j = 1F1(1; y+1; x)``; ``P(wait) = J / (1/B - 1 + J)`` with
Erlang B at ``a = lambda / mu``. ``J`` is a blocked series in the geometric regime, the
continued fraction of DLMF 8.9.2 well below ``x = y``, and a regularised incomplete gamma
function near it.

At astronomical sizes (``x`` or ``y`` beyond 1e300, where ``gammainc`` fails) every pair ``x != y``
is millions of standard deviations apart, and the queue takes one of its limits: far above
``x = y`` every server is busy for ever (``P(wait) = 1``, the servers carry ``c mu`` and the rest
abandons), below it ``J`` is the continued fraction or ``1 / (1 - x/y)``. Only ``x = y`` exactly
at that scale is refused: it is the heavy-traffic limit, which the float inputs do not resolve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from .._records import Record
from .._validate import as_array, broadcast, describe, output
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
# Beyond this x or y the incomplete gamma function fails and the queue takes its limits.
_HUGE = 1e300
# How far from x = y (in standard deviations sqrt(y)) P(y, x) = 1 to double precision.
_FAR_SIGMAS = 40.0


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
        # J = P(y, x) / pmf(y; x), Poisson pmf for real y (Loader form); P >= 3e-5 here, and
        # P = 1 (to e^-800) far above x = y, where gammainc fails at astronomical sizes.
        xn, yn = x[near], y[near]
        far_above = xn > yn + _FAR_SIGMAS * np.sqrt(yn)
        lower = np.where(far_above, 1.0, special.gammainc(yn, np.where(far_above, 0.0, xn)))
        log_j[near] = np.log(lower) - log_poisson_pmf(yn, xn)
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
    scalar = c.ndim == 0 and lam.ndim == 0 and mu.ndim == 0 and theta.ndim == 0
    c, lam, mu, theta = broadcast(servers=c, arrival_rate=lam, service_rate=mu, abandonment_rate=theta)
    # Patience beyond 1e12 service times is Erlang C to 12 digits in a stable queue, and in an
    # unstable one the queue's size (~ lambda/theta) leaves double range: refuse rather than guess.
    with np.errstate(under="ignore"):
        too_patient = (theta > 0) & (theta < _MIN_ABANDONMENT * mu)
    if too_patient.any():
        raise ValueError(
            "abandonment_rate must be 0 or at least 1e-12 * service_rate (mean patience at most "
            f"1e12 service times), got {describe(theta[too_patient].flat[0])} with service_rate="
            f"{describe(mu[too_patient].flat[0])}"
        )
    return scalar, c, lam, mu, theta


def _without_abandonment(c, load, log_b):
    """P(wait) and mean queue length of M/M/c (theta = 0); the queue is infinite where load >= c."""
    p_wait = np.exp(_log_erlang_c(c, load, log_b))
    stable = load < c
    with np.errstate(divide="ignore"):
        mean_queue = np.where(stable, p_wait * load / np.where(stable, c - load, 1.0), np.inf)
    return p_wait, mean_queue


def _queue_weights(x, y, ratio):
    """log J and S1/J (see :func:`_erlang_a_queue_sums`), also where y overflowed (``ratio = x / y``).

    Beyond double range ``y`` is above 1.8e308, so ``1/y`` is 0 to double precision and the
    series is the geometric ``J = 1 / (1 - x/y)``, with mean ``(x/y) / (1 - x/y)``.
    """
    log_j = np.empty(x.shape)
    queue_busy = np.empty(x.shape)
    finite = np.isfinite(y)
    if finite.any():
        log_j[finite], queue_busy[finite] = _erlang_a_queue_sums(x[finite], y[finite])
    if not finite.all():
        r = ratio[~finite]
        log_j[~finite] = -np.log1p(-r)
        queue_busy[~finite] = r / (1.0 - r)
    return log_j, queue_busy


def _with_abandonment(c, lam, mu, theta, log_b, ratio):
    """P(wait) and mean queue length of M/M/c+M for theta > 0 (below the astronomical overload)."""
    x = lam / theta
    y = c * mu / theta
    positive = x > 0
    p_wait = np.zeros(c.shape)
    mean_queue = np.zeros(c.shape)
    if positive.any():
        log_j, queue_busy = _queue_weights(x[positive], y[positive], ratio[positive])
        lb = log_b[positive]
        # P(wait) = J / (1/B - 1 + J) = expit(-z), z = log(1/B - 1) - log J.
        with np.errstate(divide="ignore"):
            log_odds = np.log(-np.expm1(lb)) - lb - log_j
        p_wait[positive] = special.expit(-log_odds)
        mean_queue[positive] = p_wait[positive] * queue_busy
    return p_wait, mean_queue


def _regimes(c, lam, mu, theta):
    """The load, the share ``c mu / lambda`` the servers could carry, and where the queue is flooded.

    *Flooded*: every server busy for ever, to double precision: a load beyond ``1e16 c`` (then
    ``P(not all busy) <= 1/B - 1 < c/a``), or ``x`` or ``y`` beyond 1e300 with ``x > y``, which at
    that scale is ``x > y + 40 sqrt(y)`` or more. Raises ``ValueError`` where ``x`` and ``y``
    beyond 1e300 are within 40 standard deviations (the heavy-traffic limit, which floats do
    not resolve there).
    """
    load = lam / mu
    capacity = c * mu
    arrivals = np.where(lam > 0, lam, 1.0)
    # c mu / lambda, as c (mu / lambda) where c mu overflows; inf without arrivals
    share = np.where(lam > 0, np.where(np.isfinite(capacity), capacity / arrivals, c * (mu / arrivals)), np.inf)
    patience = np.where(theta > 0, theta, 1.0)  # x and y matter only where theta > 0
    x = lam / patience
    y = capacity / patience
    astronomical = (theta > 0) & (lam > 0) & (np.maximum(x, y) > _HUGE)
    both_finite = np.isfinite(x) & np.isfinite(y)
    close = np.abs(np.where(both_finite, x - y, np.inf)) <= _FAR_SIGMAS * np.sqrt(np.where(both_finite, y, 0.0))
    balanced = astronomical & ((share == 1.0) | close)
    if balanced.any():
        i = np.flatnonzero(balanced.ravel())[0]
        raise ValueError(
            f"servers x service_rate and arrival_rate must not be within 40 standard deviations of each other "
            f"when their ratio to abandonment_rate is beyond {_HUGE:g} (the heavy-traffic limit, which floating "
            f"point does not resolve there), got servers={describe(c.flat[i])}, arrival_rate="
            f"{describe(lam.flat[i])}, service_rate={describe(mu.flat[i])}, abandonment_rate={describe(theta.flat[i])}"
        )
    flooded = (theta > 0) & (lam > 0) & ((share < 1e-16) | (astronomical & (share < 1.0)))
    return load, share, flooded


def _flooded(lam, theta, share) -> dict:
    """Every server busy for ever: they carry ``c mu``, a share ``c mu / lambda``; the rest abandons."""
    p_abandon = 1.0 - share
    return dict(p_wait=1.0, p_abandon=p_abandon, mean_wait=p_abandon / theta,
                mean_queue=(lam / theta) * p_abandon, p_served=share, utilisation=1.0)


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
    scalar, c, lam, mu, theta = _erlang_a_inputs(servers, arrival_rate, service_rate, abandonment_rate)
    with np.errstate(under="ignore", over="ignore", divide="ignore"):  # overflow to inf is handled
        fields = _steady_state(c, lam, mu, theta)
    return ErlangAResult(**{name: output(value, scalar) for name, value in fields.items()})


def _steady_state(c, lam, mu, theta) -> dict:
    """The fields of :class:`ErlangAResult` as arrays (broadcast inputs, checked)."""
    load, share, flooded = _regimes(c, lam, mu, theta)
    # B(c, inf) = 1: a load beyond double range is overload however many servers there are
    log_b = np.zeros(c.shape)
    finite = np.isfinite(load)
    log_b[finite] = _log_erlang_b(c[finite], load[finite])
    p_wait = np.empty(c.shape)
    mean_queue = np.empty(c.shape)
    no_abandonment = theta == 0
    if no_abandonment.any():
        m = no_abandonment
        p_wait[m], mean_queue[m] = _without_abandonment(c[m], load[m], log_b[m])
    general = ~no_abandonment & ~flooded
    if general.any():
        m = general
        p_wait[m], mean_queue[m] = _with_abandonment(c[m], lam[m], mu[m], theta[m], log_b[m], 1.0 / share[m])

    arrivals = np.where(lam > 0, lam, 1.0)
    mean_wait_all = np.where(lam > 0, mean_queue / arrivals, 0.0)
    p_abandon = np.where(lam > 0, theta * np.where(no_abandonment, 0.0, mean_queue) / arrivals, 0.0)
    p_abandon = np.where(no_abandonment, 0.0, np.minimum(p_abandon, 1.0))
    mean_wait_all = np.where(no_abandonment & (load >= c) & (lam > 0), np.inf, mean_wait_all)
    p_served = 1.0 - p_abandon
    # busy servers over servers: (lambda / mu) p_served / c, i.e. p_served / share
    busy = np.divide(p_served, share, out=np.ones(c.shape), where=share > 0)  # share 0: flooded, set below
    utilisation = np.where(no_abandonment & (load >= c), 1.0, np.minimum(busy, 1.0))
    fields = dict(p_wait=p_wait, p_abandon=p_abandon, mean_wait=mean_wait_all, mean_queue=mean_queue,
                  p_served=p_served, utilisation=utilisation)
    fields = {name: np.array(value, dtype=np.float64) for name, value in fields.items()}
    if flooded.any():
        limit = _flooded(lam[flooded], theta[flooded], share[flooded])
        for name, value in limit.items():
            fields[name][flooded] = value
    fields["mean_queue_length"] = fields.pop("mean_queue")
    return {name: fields[name] for name in ErlangAResult.__dataclass_fields__}
