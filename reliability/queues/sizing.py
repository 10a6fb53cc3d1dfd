"""Inverse questions: the least servers for a target, the largest load for given servers, and
Halfin–Whitt square-root staffing with its exact check.

Every answer is a monotone search (:mod:`reliability.queues.search`) on the closed forms in
log space. One-point questions run on the plain-float kernels; arrays of questions are
searched together, one vectorised bisection for all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from .._records import Record
from .._validate import as_array, is_scalar, output, probability
from ._kernels import LOG_SQRT_2PI
from .erlang_b import _log_erlang_b, _log_erlang_b_scalar
from .erlang_c import _log_erlang_c, _log_erlang_c_scalar, erlang_c
from .search import crossing, least_whole, least_whole_array

__all__ = [
    "servers_for_blocking",
    "servers_for_wait",
    "max_load_for_blocking",
    "max_load_for_wait",
    "halfin_whitt_p_wait",
    "halfin_whitt_beta",
    "square_root_staffing",
    "SquareRootStaffing",
]

# Up to this load servers_for_blocking walks the Erlang B recursion instead of searching.
_RECURSION_LOAD = 200.0


def _flat(*arrays):
    """Broadcast, then flatten to 1-d (the searches work on flat arrays); also the common shape."""
    arrays = np.broadcast_arrays(*arrays)
    return arrays[0].shape, [np.atleast_1d(v).ravel() for v in arrays]


# ----------------------------------------------------------------------------------------
# Least servers
# ----------------------------------------------------------------------------------------

def _servers_for_blocking_scalar(load: float, target: float) -> int:
    if load == 0:
        return 0
    if load <= _RECURSION_LOAD:
        # Small loads: walking the exact recursion 1/B(n) = 1 + (n/a)/B(n-1) upwards takes
        # ~a steps and beats a search on the closed form.
        inverse_b, servers, inverse_target = 1.0, 0, 1.0 / target
        while inverse_b < inverse_target:
            servers += 1
            inverse_b = 1.0 + inverse_b * servers / load
        return servers
    log_target = math.log(target)
    return least_whole(
        lambda n: _log_erlang_b_scalar(float(n), load) <= log_target,
        max(math.floor(load * (1.0 - target)) - 1, 0),
        math.ceil(load + 3.0 * math.sqrt(load) + 1.0),
    )


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
        return _servers_for_blocking_scalar(float(a), float(eps))
    shape, (a, eps) = _flat(a, eps)
    log_eps = np.log(eps)

    def meets(n, mask):
        return _log_erlang_b(n, a[mask]) <= log_eps[mask]

    # B(0, a) = 1 > target, so -1 stands for "below zero": the predicate is never asked there.
    low = np.maximum(np.floor(a * (1.0 - eps)) - 1.0, -1.0)
    result = least_whole_array(meets, low, np.ceil(a + 3.0 * np.sqrt(a) + 1.0))
    return np.where(a == 0, 0.0, result).reshape(shape).astype(np.int64)


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

        def meets_one(n):
            return _log_erlang_c_scalar(float(n), a_) - ((n - a_) * mu_ * t_ if n > a_ else 0.0) <= log_eps_

        return least_whole(meets_one, math.floor(a_), math.ceil(a_ + 3.0 * math.sqrt(a_) + 2.0))
    shape, (a, eps, t, mu) = _flat(a, eps, t, mu)
    log_eps = np.log(eps)

    def meets(n, mask):
        am = a[mask]
        log_p = _log_erlang_c(n, am) - np.where(am < n, (n - am) * mu[mask] * t[mask], 0.0)
        return log_p <= log_eps[mask]

    low = np.floor(a)  # P(W > t) = 1 at c <= a
    result = least_whole_array(meets, low, np.ceil(a + 3.0 * np.sqrt(a) + 2.0))
    return np.where(a == 0, 0.0, result).reshape(shape).astype(np.int64)


# ----------------------------------------------------------------------------------------
# Largest load
# ----------------------------------------------------------------------------------------

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
    # B(c, a) >= 1 - c/a, so the answer lies below c / (1 - target).
    if scalar:
        c_, log_eps_ = float(c), math.log(float(eps))
        return crossing(lambda x: _log_erlang_b_scalar(c_, x) - log_eps_, 0.0, c_ / (1.0 - float(eps)))
    c, eps = np.broadcast_arrays(c, eps)
    log_eps = np.log(eps)
    return crossing(lambda x: _log_erlang_b(c, x) - log_eps, np.zeros(c.shape), c / (1.0 - eps))


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
    if scalar:
        c_, rate_ = float(c), float(mu) * float(t)
        log_eps_ = math.log(float(eps))

        def excess_one(x):
            return _log_erlang_c_scalar(c_, x) - ((c_ - x) * rate_ if x < c_ else 0.0) - log_eps_

        return crossing(excess_one, 0.0, c_)
    c, eps, t, mu = np.broadcast_arrays(c, eps, t, mu)
    log_eps = np.log(eps)

    def excess(x):
        return _log_erlang_c(c, x) - np.where(x < c, (c - x) * mu * t, 0.0) - log_eps

    return crossing(excess, np.zeros(c.shape), c.copy())


# ----------------------------------------------------------------------------------------
# Halfin-Whitt square-root staffing
# ----------------------------------------------------------------------------------------

def _log_hw_ratio(beta):
    """log(beta Phi(beta) / phi(beta)) for beta > 0."""
    return np.log(beta) + special.log_ndtr(beta) + 0.5 * beta * beta + LOG_SQRT_2PI


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
    result = crossing(lambda b: _log_hw_ratio(np.maximum(b, 1e-300)) - log_odds, np.zeros(eps.shape), high)
    return output(result, scalar)


@dataclass(frozen=True, repr=False)
class SquareRootStaffing(Record):
    """Square-root staffing ``c = ceil(a + beta sqrt(a))`` against the exact least ``c``.

    ``error`` is the servers the rule adds over the exact answer (negative: it under-staffs).

    Examples
    --------
    >>> square_root_staffing(100.0, 0.2)
    SquareRootStaffing(load=100, target=0.2, beta=1.06152, servers=111, exact_servers=111, p_wait_at_servers=0.199787, error=0)
    """

    load: float
    target: float
    beta: float
    servers: int
    exact_servers: int
    p_wait_at_servers: float
    error: int = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "error", self.servers - self.exact_servers)


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
