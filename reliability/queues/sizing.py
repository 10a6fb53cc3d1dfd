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
from .._validate import as_array, broadcast, describe, number, output, probability
from ._kernels import LOG_SQRT_2PI
from .erlang_b import _log_erlang_b, _log_erlang_b_scalar
from .erlang_c import _decay, _log_erlang_c, _log_erlang_c_scalar, erlang_c
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
    "MAX_SIZING_LOAD",
]

# Up to this load servers_for_blocking walks the Erlang B recursion instead of searching.
_RECURSION_LOAD = 200.0
#: Largest load the least-servers searches take: 2**52 Erlangs, so that every answer (at most
#: a few 1e9 above the load) stays below 2**53, where whole numbers are exact in float64.
MAX_SIZING_LOAD = float(2**52)
_FLOAT_MAX = 1.7976931348623157e308
# Beyond this beta the Halfin-Whitt P(wait) ~ phi(beta) / (beta Phi(beta)) underflows to 0.
_BETA_UNDERFLOW = 1e3


def _flat(*arrays):
    """Broadcast, then flatten to 1-d (the searches work on flat arrays); also the common shape."""
    arrays = np.broadcast_arrays(*arrays)
    return arrays[0].shape, [np.atleast_1d(v).ravel() for v in arrays]


def _within_sizing_range(a: np.ndarray) -> None:
    """Refuse loads beyond MAX_SIZING_LOAD (after every argument has been checked on its own)."""
    if a.size and float(a.max()) > MAX_SIZING_LOAD:
        raise ValueError(f"load must be <= 2**52 = {MAX_SIZING_LOAD:.4g} Erlangs for a whole number of servers "
                         f"(beyond, whole numbers are not exact in float64), got {describe(float(a.max()))}")


def _tail_margin(load, log_bound):
    """A ``delta`` with ``P(X >= load + delta) <= exp(-log_bound)`` for X ~ Poisson(load) (Bernstein):
    ``delta^2 / (2 (load + delta / 3)) >= L`` is met by ``delta = L/3 + sqrt(L^2/9 + 2 load L)``."""
    return log_bound / 3.0 + (log_bound * log_bound / 9.0 + 2.0 * load * log_bound) ** 0.5


def _blocking_limit(load, target):
    """Servers at which Erlang B is surely ``<= target``: B(n, a) <= 2 P(X >= n) for n >= a + 1.

    (``P(X <= n) >= 1/2`` there: the Poisson median is below ``a + 1/3``.) Floats or arrays.
    """
    if isinstance(load, float):  # one point: math, no numpy scalars
        return math.ceil(load + _tail_margin(load, math.log(2.0) - math.log(target))) + 1.0
    return np.ceil(load + _tail_margin(load, np.log(2.0) - np.log(target))) + 1.0


def _wait_limit(load, target):
    """Servers at which Erlang C is surely ``<= target``: for n >= a + 1, C = B / (1 - rho (1 - B))
    <= B n / (n - a) <= B (a + 1), with B bounded as in :func:`_blocking_limit`."""
    # not log(2 (a + 1) / target): that overflows at target 1e-308; math for one point (no numpy scalars)
    if isinstance(load, float):
        return math.ceil(load + max(_tail_margin(load, math.log(2.0 * (load + 1.0)) - math.log(target)), 1.0)) + 1.0
    log_bound = np.log(2.0 * (load + 1.0)) - np.log(target)
    return np.ceil(load + np.maximum(_tail_margin(load, log_bound), 1.0)) + 1.0


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
        limit=int(_blocking_limit(load, target)),
    )


def servers_for_blocking(load, target):
    """Least whole number of servers with Erlang B blocking ``<= target``.

    A logarithmic search on the closed form: at 10^6 Erlangs it takes about 20 evaluations.
    Since the carried load ``a (1 - B)`` cannot exceed ``c``, ``c >= a (1 - target)``, which
    brackets the answer from below; Bernstein's bound on the Poisson tail brackets it from
    above. Loads up to :data:`MAX_SIZING_LOAD` (2**52 Erlangs).

    Examples
    --------
    >>> servers_for_blocking(5.0, 0.02)
    10
    >>> servers_for_blocking(1e6, 0.01)  # at this scale B ~ 1 - c/a: fewer servers than Erlangs
    990099
    """
    a = as_array("load", load, minimum=0.0)
    eps = probability("target", target, open_interval=True)
    _within_sizing_range(a)
    if a.ndim == 0 and eps.ndim == 0:
        return _servers_for_blocking_scalar(float(a), float(eps))
    shape, (a, eps) = _flat(*broadcast(load=a, target=eps))
    log_eps = np.log(eps)

    def meets(n, mask):
        return _log_erlang_b(n, a[mask]) <= log_eps[mask]

    with np.errstate(under="ignore"):  # subnormal loads: their products are 0, rightly
        # B(0, a) = 1 > target, so -1 stands for "below zero": the predicate is never asked there.
        low = np.maximum(np.floor(a * (1.0 - eps)) - 1.0, -1.0)
        result = least_whole_array(meets, low, np.ceil(a + 3.0 * np.sqrt(a) + 1.0), _blocking_limit(a, eps))
    return np.where(a == 0, 0.0, result).reshape(shape).astype(np.int64)


def servers_for_wait(load, target, wait_time=0.0, service_rate=1.0):
    """Least whole number of servers with ``P(W > wait_time) <= target`` in M/M/c.

    ``wait_time = 0`` sizes for ``P(wait) <= target``; a service level "``P(W <= t) >= x``"
    is ``target = 1 - x`` with ``wait_time = t``. The answer lies above ``floor(load)``
    (``P(wait) = 1`` there) and, by Bernstein's bound on the Poisson tail, at most
    ``load + L/3 + sqrt(L^2/9 + 2 load L) + 2`` with ``L = log(2 (load + 1) / target)``.

    Examples
    --------
    >>> servers_for_wait(10.0, 0.2)
    14
    >>> servers_for_wait(10.0, 0.5, wait_time=0.1)  # half answered within 0.1 service times
    12
    """
    a = as_array("load", load, minimum=0.0)
    eps = probability("target", target, open_interval=True)
    t = as_array("wait_time", wait_time, minimum=0.0)
    mu = as_array("service_rate", service_rate, minimum=0.0, strict_minimum=True)
    _within_sizing_range(a)
    if a.ndim == 0 and eps.ndim == 0 and t.ndim == 0 and mu.ndim == 0:
        return _servers_for_wait_scalar(float(a), float(eps), float(t), float(mu))
    shape, (a, eps, t, mu) = _flat(*broadcast(load=a, target=eps, wait_time=t, service_rate=mu))
    log_eps = np.log(eps)
    with np.errstate(over="ignore", under="ignore"):
        rate_time = mu * t  # (c - a) (mu t), never inf * 0; inf beyond the float range, 0 below it

    def meets(n, mask):
        am = a[mask]
        log_p = _log_erlang_c(n, am) - _decay(n, am, rate_time[mask])
        return log_p <= log_eps[mask]

    low = np.floor(a)  # P(W > t) = 1 at c <= a
    with np.errstate(under="ignore", over="ignore"):
        result = least_whole_array(meets, low, np.ceil(a + 3.0 * np.sqrt(a) + 2.0), _wait_limit(a, eps))
    return np.where(a == 0, 0.0, result).reshape(shape).astype(np.int64)


def _servers_for_wait_scalar(a: float, eps: float, t: float, mu: float) -> int:
    if a == 0:
        return 0
    log_eps, rate_time = math.log(eps), mu * t

    def meets_one(n):
        decay = (n - a) * rate_time if n > a and t > 0 else 0.0  # never inf * 0
        return _log_erlang_c_scalar(float(n), a) - decay <= log_eps

    return least_whole(meets_one, math.floor(a), math.ceil(a + 3.0 * math.sqrt(a) + 2.0),
                       limit=int(_wait_limit(a, eps)))


# ----------------------------------------------------------------------------------------
# Largest load
# ----------------------------------------------------------------------------------------

def max_load_for_blocking(servers, target):
    """Largest offered load (Erlangs) that ``servers`` carry with Erlang B blocking ``<= target``.

    ``B(c, a) >= 1 - c/a``, so the answer lies below ``c / (1 - target)`` (capped at the largest
    float; an answer beyond it is ``inf``).

    Examples
    --------
    >>> a = max_load_for_blocking(10, 0.018384570337)
    >>> round(a, 8)
    5.0
    """
    c = as_array("servers", servers, minimum=0.0, strict_minimum=True)
    eps = probability("target", target, open_interval=True)
    if c.ndim == 0 and eps.ndim == 0:
        c_, log_eps_ = float(c), math.log(float(eps))
        high = min(c_ / (1.0 - float(eps)), _FLOAT_MAX)  # Python floats overflow to inf silently

        def excess_one(x):
            return _log_erlang_b_scalar(c_, x) - log_eps_

        return math.inf if excess_one(high) <= 0 else crossing(excess_one, 0.0, high)
    c, eps = broadcast(servers=c, target=eps)
    log_eps = np.log(eps)

    def excess(x):
        return _log_erlang_b(c, x) - log_eps

    with np.errstate(under="ignore", over="ignore"):
        high = np.minimum(c / (1.0 - eps), _FLOAT_MAX)
        result = crossing(excess, np.zeros(c.shape), high)
        return np.where(excess(high) <= 0, np.inf, result)


def max_load_for_wait(servers, target, wait_time=0.0, service_rate=1.0):
    """Largest offered load (Erlangs) with ``P(W > wait_time) <= target`` on ``servers`` in M/M/c.

    The answer lies below ``servers`` (``P(W > t) = 1`` from there on).

    Examples
    --------
    >>> a = max_load_for_wait(15, 0.102042367)
    >>> round(a, 6)
    10.0
    """
    c = as_array("servers", servers, minimum=0.0, strict_minimum=True)
    eps = probability("target", target, open_interval=True)
    t = as_array("wait_time", wait_time, minimum=0.0)
    mu = as_array("service_rate", service_rate, minimum=0.0, strict_minimum=True)
    if c.ndim == 0 and eps.ndim == 0 and t.ndim == 0 and mu.ndim == 0:
        c_, rate_time, t_ = float(c), float(mu) * float(t), float(t)
        log_eps_ = math.log(float(eps))

        def excess_one(x):
            decay = (c_ - x) * rate_time if x < c_ and t_ > 0 else 0.0  # never inf * 0
            return _log_erlang_c_scalar(c_, x) - decay - log_eps_

        return crossing(excess_one, 0.0, c_)
    c, eps, t, mu = broadcast(servers=c, target=eps, wait_time=t, service_rate=mu)
    log_eps = np.log(eps)
    with np.errstate(over="ignore", under="ignore"):
        rate_time = mu * t  # inf beyond the float range: the decay is then inf, P(W > t) = 0

    def excess(x):
        return _log_erlang_c(c, x) - _decay(c, x, rate_time) - log_eps

    with np.errstate(under="ignore", over="ignore"):
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
    b = as_array("beta", beta, minimum=0.0)
    out = np.ones(b.shape)
    positive = b > 0
    if positive.any():
        # beyond beta = 38.6 the value underflows to 0: capping beta at 1e3 keeps beta^2 finite
        with np.errstate(under="ignore"):
            out[positive] = special.expit(-_log_hw_ratio(np.minimum(b[positive], _BETA_UNDERFLOW)))
    return output(out, b.ndim == 0)


def halfin_whitt_beta(target):
    """The ``beta`` whose Halfin–Whitt delay probability equals ``target`` (inverse of ``halfin_whitt_p_wait``).

    Examples
    --------
    >>> round(halfin_whitt_beta(0.223361), 4)
    1.0
    """
    eps = probability("target", target, open_interval=True)
    scalar = eps.ndim == 0
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
    a = number("load", load, minimum=0.0, strict=True)
    eps = number("target", target, minimum=0.0, maximum=1.0, strict=True)
    if eps == 1.0:
        raise ValueError(f"target must be < 1, got {describe(target)}")
    _within_sizing_range(np.asarray(a))
    beta = halfin_whitt_beta(eps)
    servers = int(math.ceil(a + beta * math.sqrt(a)))
    exact = servers_for_wait(a, eps)
    return SquareRootStaffing(
        load=a, target=eps, beta=beta, servers=servers, exact_servers=exact,
        p_wait_at_servers=erlang_c(servers, a),
    )
