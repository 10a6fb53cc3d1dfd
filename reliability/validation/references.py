"""The textbook formulas in mpmath at 50 digits: the one reference every exact model is checked against.

Each function evaluates the defining expression of a quantity (written beside it) with mpmath
at :data:`DIGITS` significant digits, independently of the float kernels of
:mod:`reliability`, and returns an ``mpmath.mpf``. The validation table, the test suite and
the benchmarks all import them from here, so a reference is written once.

Arguments may be Python or numpy numbers or ``mpmath.mpf`` values (kept at their full
precision, so the references can sit inside ``mpmath.findroot``). Whole-number arguments
(servers of M/M/c/K, sources, retries) must be whole; servers of Erlang B and C may be
fractional (the incomplete-gamma form is defined for real ``c``). Nothing is checked here:
these are oracles for tests, called with the arguments the tests choose.

Examples
--------
>>> float(erlang_b(4, 2.0)) == 2 / 21
True
>>> round(float(erlang_c(2, 1.0)), 15)
0.333333333333333
>>> float(expected_attempts(0.5, 3))
1.875
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import mpmath

from .._records import Record

__all__ = [
    "DIGITS",
    "erlang_b",
    "erlang_c",
    "wait_sf",
    "mean_wait",
    "response_time_sf",
    "ErlangAReference",
    "erlang_a",
    "mmck",
    "engset",
    "expected_attempts",
    "layered_amplification",
]

#: Significant digits of every reference.
DIGITS = 50


def _mp(value: Any) -> mpmath.mpf:
    return value if isinstance(value, mpmath.mpf) else mpmath.mpf(value)


def erlang_b(servers, load) -> mpmath.mpf:
    """Erlang B blocking probability, computed with mpmath at 50 digits.

    ``B(c, a) = a^c e^-a / Gamma(c + 1, a)`` (upper incomplete gamma), which for whole ``c``
    is ``(a^c / c!) / sum_{k<=c} a^k / k!``; ``B(0, a) = 1``.

    Examples
    --------
    >>> float(erlang_b(10, 5.0))
    0.01838457033...
    """
    with mpmath.workdps(DIGITS):
        c, a = _mp(servers), _mp(load)
        if c == 0:
            return mpmath.mpf(1)
        return mpmath.exp(c * mpmath.log(a) - a) / mpmath.gammainc(c + 1, a)


def erlang_c(servers, load, blocking: mpmath.mpf | None = None) -> mpmath.mpf:
    """Erlang C probability of waiting, computed with mpmath at 50 digits.

    ``C(c, a) = B / (1 - (a / c)(1 - B))`` with ``B = B(c, a)`` for ``a < c``, else 1.
    ``blocking`` is ``B(c, a)`` when the caller has it already.

    Examples
    --------
    >>> float(erlang_c(10, 8.0))
    0.40918015...
    """
    with mpmath.workdps(DIGITS):
        c, a = _mp(servers), _mp(load)
        if a >= c:
            return mpmath.mpf(1)
        b = erlang_b(c, a) if blocking is None else blocking
        return b / (1 - (a / c) * (1 - b))


def wait_sf(servers, load, wait_time, service_rate=1) -> mpmath.mpf:
    """M/M/c waiting-time survival function ``P(W > t)``, computed with mpmath at 50 digits.

    ``P(W > t) = C(c, a) exp(-(c - a) mu t)`` for ``a < c``, else 1.

    Examples
    --------
    >>> float(wait_sf(1, 0.5, 1.0))   # 0.5 e^-0.5
    0.30326532...
    """
    with mpmath.workdps(DIGITS):
        c, a, t, mu = _mp(servers), _mp(load), _mp(wait_time), _mp(service_rate)
        if a >= c:
            return mpmath.mpf(1)
        return erlang_c(c, a) * mpmath.exp(-(c - a) * mu * t)


def mean_wait(servers, load, service_rate=1) -> mpmath.mpf:
    """M/M/c mean wait in queue, computed with mpmath at 50 digits.

    ``E[W] = C(c, a) / ((c - a) mu)`` for ``a < c``, else infinite.

    Examples
    --------
    >>> float(mean_wait(1, 0.5))   # rho / (mu - lambda) = 0.5 / 0.5
    1.0
    """
    with mpmath.workdps(DIGITS):
        c, a, mu = _mp(servers), _mp(load), _mp(service_rate)
        if a >= c:
            return mpmath.inf
        return erlang_c(c, a) / ((c - a) * mu)


def response_time_sf(servers, load, time, service_rate=1) -> mpmath.mpf:
    """M/M/c response-time survival function ``P(W + S > t)``, computed with mpmath at 50 digits.

    The wait is 0 with probability ``1 - C`` and else exponential with rate
    ``theta = (c - a) mu``; the service is exponential with rate ``mu``:
    ``P = (1 - C) e^{-mu t} + C (theta e^{-mu t} - mu e^{-theta t}) / (theta - mu)``, whose last
    factor is ``(1 + mu t) e^{-mu t}`` when ``theta = mu``; 1 for ``a >= c``.

    Examples
    --------
    >>> float(response_time_sf(1, 0.5, 2.0))   # M/M/1: e^{-(mu - lambda) t} = e^-1
    0.36787944...
    """
    with mpmath.workdps(DIGITS):
        c, a, t, mu = _mp(servers), _mp(load), _mp(time), _mp(service_rate)
        if a >= c:
            return mpmath.mpf(1)
        p_wait = erlang_c(c, a)
        theta = (c - a) * mu
        if abs(theta - mu) < mpmath.mpf(10) ** -30:
            tail = (1 + mu * t) * mpmath.exp(-mu * t)
        else:
            tail = (theta * mpmath.exp(-mu * t) - mu * mpmath.exp(-theta * t)) / (theta - mu)
        return (1 - p_wait) * mpmath.exp(-mu * t) + p_wait * tail


@dataclass(frozen=True, repr=False)
class ErlangAReference(Record):
    """Erlang A (M/M/c+M) at 50 digits: probability of waiting, of abandoning, and mean wait."""

    p_wait: mpmath.mpf
    p_abandon: mpmath.mpf
    mean_wait: mpmath.mpf


def erlang_a(servers, arrival_rate, service_rate, abandonment_rate) -> ErlangAReference:
    """Erlang A (M/M/c+M), computed with mpmath at 50 digits from its birth-death chain.

    With ``x = lambda / theta``, ``y = c mu / theta`` and ``J = 1F1(1; y + 1; x)`` (the sum of
    the chain's states ``n >= c`` relative to state ``c``), ``p_c = 1 / (1/B(c, a) - 1 + J)``;
    then ``P(wait) = p_c J``, ``E[Q] = p_c (x J - y (J - 1))``, ``E[W] = E[Q] / lambda`` (Little)
    and ``P(abandon) = theta E[Q] / lambda``.

    Examples
    --------
    >>> reference = erlang_a(14, 10 / 3, 1 / 3, 1 / 5)
    >>> round(float(reference.p_wait), 9), round(float(reference.p_abandon), 10)
    (0.145260114, 0.0139837441)
    """
    with mpmath.workdps(DIGITS):
        lam, mu, theta = _mp(arrival_rate), _mp(service_rate), _mp(abandonment_rate)
        x, y = lam / theta, servers * mu / theta
        # maxterms: at small theta the series needs about x terms before it falls
        j = mpmath.hyp1f1(1, y + 1, x, maxterms=10**6)
        p_c = 1 / (1 / erlang_b(servers, lam / mu) - 1 + j)
        mean_queue = p_c * (x * j - y * (j - 1))
        return ErlangAReference(p_wait=p_c * j, p_abandon=theta * mean_queue / lam, mean_wait=mean_queue / lam)


def mmck(servers: int, capacity: int, load) -> mpmath.mpf:
    """M/M/c/K blocking probability, computed with mpmath at 50 digits.

    ``pi_n ~ a^n / n!`` for ``n <= c`` and ``a^c / c! (a / c)^(n - c)`` for ``c < n <= K``;
    an arrival is blocked in state ``K`` (PASTA): ``P = pi_K / sum_n pi_n``. The ``K - c`` states
    of the queue are summed in closed form, ``sum_{j=1}^{m} rho^j = rho (1 - rho^m) / (1 - rho)``
    (``m`` at ``rho = 1``), so a waiting room of 10^8 costs no more than one of 10: at 50 digits
    the cancellation in ``1 - rho^m`` near ``rho = 1`` still leaves some 35 digits.

    Examples
    --------
    >>> float(mmck(1, 1, 1.0))   # M/M/1/1 is Erlang B(1, a) = a / (1 + a)
    0.5
    >>> round(float(mmck(2, 10**8, 3.0)), 15)  # a vast room in overload: 1 - c/a
    0.333333333333333
    """
    with mpmath.workdps(DIGITS):
        a, c, m = _mp(load), int(servers), int(capacity) - int(servers)
        lower = mpmath.fsum(a**n / mpmath.factorial(n) for n in range(c + 1))  # sum_{n<=c} pi_n
        at_c = a**c / mpmath.factorial(c)
        rho = a / c
        queue = m if rho == 1 else rho * (1 - rho**m) / (1 - rho)  # sum_{j=1}^{m} rho^j
        return at_c * rho**m / (lower + at_c * queue)


def engset(servers: int, sources: int, source_load) -> mpmath.mpf:
    """Engset call congestion, computed with mpmath at 50 digits.

    ``E = C(N - 1, c) b^c / sum_{k<=c} C(N - 1, k) b^k``: an arriving source sees the other
    ``N - 1`` sources in equilibrium (arrival theorem).

    Examples
    --------
    >>> float(engset(1, 2, 1.0))   # one other source, busy half the time
    0.5
    """
    with mpmath.workdps(DIGITS):
        b, n = _mp(source_load), sources - 1
        terms = [mpmath.binomial(n, k) * b**k for k in range(servers + 1)]
        return terms[-1] / mpmath.fsum(terms)


def expected_attempts(p_fail, max_retries: int) -> mpmath.mpf:
    """Expected attempts per request with independent failures, computed with mpmath at 50 digits.

    ``E = sum_{k=0}^{r} p^k`` (an attempt ``k + 1`` is made when the first ``k`` failed).

    Examples
    --------
    >>> float(expected_attempts(0.3, 3))
    1.417
    """
    with mpmath.workdps(DIGITS):
        p = _mp(p_fail)
        return mpmath.fsum(p**k for k in range(int(max_retries) + 1))


def layered_amplification(p_fail, retries: Sequence[int]) -> mpmath.mpf:
    """Bottom-layer attempts per top-level request through stacked retrying layers, at 50 digits.

    ``prod_i E(p_i, r_i)``, bottom layer first, where each layer above sees the failure
    probability of the layer below, ``p_{i+1} = p_i^(r_i + 1)``.

    Examples
    --------
    >>> float(layered_amplification(0.5, [3, 3, 3]))   # 1.875 x (1 + 1/16 + ...) x ...
    2.0
    """
    with mpmath.workdps(DIGITS):
        failing, total = _mp(p_fail), mpmath.mpf(1)
        for r in reversed(list(retries)):
            total *= expected_attempts(failing, r)
            failing = failing ** (r + 1)
        return total
