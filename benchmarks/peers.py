"""The peers :mod:`reliability` is compared with, and the mpmath references every answer is checked against.

Peers
-----
* **Plain recursion** (Python loop, whole servers only): ``B(0) = 1``,
  ``B(k) = a B(k-1) / (k + a B(k-1))`` -- the textbook algorithm; stable, O(c) per value.
* **Closed-form floor** (vectorised scipy): ``B = exp(c log a - a - gammaln(c + 1)) / gammaincc(c + 1, a)``,
  one ``gammaincc`` call per point plus a few cheap ufuncs. No method that evaluates the
  incomplete gamma function once per point can be much faster, so this is the floor; it is
  not exact (the logarithms cancel at large ``c``, and ``gammaincc`` underflows in overload,
  giving 0/0) and the tables say where.
* **pyworkforce** (``pyworkforce.queuing.ErlangC``): Erlang C per scalar, by the recursion on
  ``1/B`` (which overflows silently to ``inf`` when ``B < 1e-308``); no Erlang B, no Erlang A;
  sizing by a linear search upwards from ``load + 1`` that re-runs the O(c) recursion at every
  step.

References (mpmath, 50 significant digits; the expressions are kept beside the code)
------------------------------------------------------------------------------------
* Erlang B: ``B = a^c e^-a / Gamma(c + 1, a)`` with mpmath's upper incomplete gamma.
* Erlang C: ``C = B / (1 - (a/c)(1 - B))`` for ``a < c``, else 1.
* Erlang A: the birth-death chain of M/M/c+M summed directly (``p_n ~ a^n / n!`` up to ``c``,
  then ``p_{n+1} = p_n lambda / (c mu + (n + 1 - c) theta)``), truncated 60 decades down.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
from scipy import special

from benchmarks.common import optional_import

MP_DIGITS = 50

pyworkforce_queuing = optional_import("pyworkforce.queuing")


# ----------------------------------------------------------------------------------------
# Plain recursion (per scalar, Python loop)
# ----------------------------------------------------------------------------------------

def _whole(servers) -> int:
    value = float(servers)
    if not value.is_integer():
        raise TypeError(f"the recursion needs whole servers, got {value!r}")
    return int(value)


def recursion_erlang_b(servers, load) -> float:
    """Erlang B by the forward recursion ``B(k) = a B(k-1) / (k + a B(k-1))``."""
    c = _whole(servers)
    a = float(load)
    b = 1.0
    for k in range(1, c + 1):
        ab = a * b
        b = ab / (k + ab)
    return b


def recursion_erlang_c(servers, load) -> float:
    """Erlang C from the recursion's Erlang B: ``C = B / (1 - rho (1 - B))``, 1 where ``a >= c``."""
    c = _whole(servers)
    a = float(load)
    b = recursion_erlang_b(c, a)
    if a >= c:
        return 1.0
    return b / (1.0 - (a / c) * (1.0 - b))


def recursion_servers_for_blocking(load, target) -> int:
    """Least ``c`` with ``B(c, a) <= target``: run the recursion upwards until it holds (O(answer))."""
    a = float(load)
    b = 1.0
    k = 0
    while b > target:
        k += 1
        ab = a * b
        b = ab / (k + ab)
    return k


# ----------------------------------------------------------------------------------------
# The closed-form floor (vectorised scipy, one gammaincc per point)
# ----------------------------------------------------------------------------------------

def floor_erlang_b(servers: np.ndarray, load: np.ndarray) -> np.ndarray:
    """``a^c e^-a / Gamma(c+1, a)`` as ``exp(c log a - a - gammaln(c+1)) / gammaincc(c+1, a)``."""
    with np.errstate(all="ignore"):  # 0/0 in overload is the point: the table counts the NaNs
        return np.exp(servers * np.log(load) - load - special.gammaln(servers + 1.0)) / special.gammaincc(
            servers + 1.0, load
        )


def floor_erlang_c(servers: np.ndarray, load: np.ndarray) -> np.ndarray:
    b = floor_erlang_b(servers, load)
    with np.errstate(all="ignore"):
        return np.where(load < servers, b / (1.0 - (load / servers) * (1.0 - b)), 1.0)


# ----------------------------------------------------------------------------------------
# pyworkforce
# ----------------------------------------------------------------------------------------

def pyworkforce_available() -> bool:
    return pyworkforce_queuing is not None


def _pyworkforce_servers(servers):
    value = float(servers)
    # pyworkforce loops over range(1, positions + 1): a fractional count is its TypeError.
    return int(value) if value.is_integer() else value


def pyworkforce_erlang_c(servers, load) -> float:
    """pyworkforce's ``ErlangC(...).waiting_probability(positions)`` with ``load`` Erlangs."""
    model = pyworkforce_queuing.ErlangC(transactions=float(load), aht=1.0, asa=1.0, interval=1)
    return model.waiting_probability(_pyworkforce_servers(servers))


def pyworkforce_servers_for_wait(load, target, wait_time) -> int:
    """pyworkforce's ``required_positions``: least positions with service level ``>= 1 - target``.

    Its service level is ``1 - C exp(-(c - a) asa / aht)``, i.e. ``P(W <= asa)``; with
    ``aht = 1`` and ``interval = 1`` the intensity is ``load`` and ``asa`` is ``wait_time`` in
    service times -- the same question as ``servers_for_wait(load, target, wait_time)``.
    """
    model = pyworkforce_queuing.ErlangC(transactions=float(load), aht=1.0, asa=float(wait_time), interval=1)
    return int(model.required_positions(service_level=1.0 - float(target))["raw_positions"])


# ----------------------------------------------------------------------------------------
# mpmath references
# ----------------------------------------------------------------------------------------

def mp_erlang_b(servers, load) -> mpmath.mpf:
    # B = a^c e^-a / Gamma(c + 1, a)   [mpmath.gammainc(z, a) is the upper incomplete gamma]
    with mpmath.workdps(MP_DIGITS):
        c = mpmath.mpf(float(servers))
        a = mpmath.mpf(float(load))
        if c == 0:
            return mpmath.mpf(1)
        return mpmath.exp(c * mpmath.log(a) - a) / mpmath.gammainc(c + 1, a)


def mp_erlang_c(servers, load, b: mpmath.mpf | None = None) -> mpmath.mpf:
    # C = B / (1 - (a/c)(1 - B)) for a < c, else 1
    with mpmath.workdps(MP_DIGITS):
        c = mpmath.mpf(float(servers))
        a = mpmath.mpf(float(load))
        if a >= c:
            return mpmath.mpf(1)
        if b is None:
            b = mp_erlang_b(servers, load)
        return b / (1 - (a / c) * (1 - b))


def mp_wait_sf(servers, load, wait_time) -> mpmath.mpf:
    # P(W > t) = C(c, a) exp(-(c - a) t) for a < c, else 1 (service rate 1)
    with mpmath.workdps(MP_DIGITS):
        c = mpmath.mpf(float(servers))
        a = mpmath.mpf(float(load))
        if a >= c:
            return mpmath.mpf(1)
        return mp_erlang_c(servers, load) * mpmath.exp(-(c - a) * mpmath.mpf(float(wait_time)))


def mp_erlang_a(servers: int, arrival_rate, service_rate, abandonment_rate) -> dict[str, float]:
    """p_wait, p_abandon, mean_wait of M/M/c+M from its birth-death chain at 50 digits."""
    with mpmath.workdps(MP_DIGITS):
        c = int(servers)
        lam = mpmath.mpf(float(arrival_rate))
        mu = mpmath.mpf(float(service_rate))
        theta = mpmath.mpf(float(abandonment_rate))
        a = lam / mu
        # p_n / p_0 = a^n / n! for n <= c
        term = mpmath.mpf(1)
        below = term  # sum over n < c
        for n in range(1, c):
            term = term * a / n
            below += term
        term = term * a / c  # p_c / p_0
        busy = mpmath.mpf(0)  # sum over n >= c
        queue = mpmath.mpf(0)  # sum of (n - c) p_n
        j = 0
        eps = mpmath.mpf(10) ** -60
        while True:
            busy += term
            queue += j * term
            j += 1
            ratio = lam / (c * mu + j * theta)  # p_{c+j} = p_{c+j-1} lambda / (c mu + j theta)
            term = term * ratio
            # The ratios fall with j, so the rest of the tail is below term / (1 - ratio).
            if ratio < 1 and term * (1 + j) / (1 - ratio) < eps * busy:
                break
        total = below + busy
        p_wait = busy / total
        mean_queue = queue / total
        return {
            "p_wait": float(p_wait),
            "p_abandon": float(theta * mean_queue / lam),
            "mean_wait": float(mean_queue / lam),
        }


def relative_error(value, reference: mpmath.mpf) -> float:
    """``|value - reference| / |reference|`` computed in mpmath (so no rounding of its own).

    A reference below the smallest normal double cannot be represented: there the value
    only has to be below 1e-300 too (it may be 0 or subnormal), and the error counts as 0.
    """
    with mpmath.workdps(MP_DIGITS):
        x = float(value)
        if math.isnan(x) or math.isinf(x):
            return math.inf
        ref = mpmath.mpf(reference)
        if abs(ref) < mpmath.mpf("2.2250738585072014e-308"):
            return 0.0 if abs(x) < 1e-300 else math.inf
        return float(abs(mpmath.mpf(x) - ref) / abs(ref))
