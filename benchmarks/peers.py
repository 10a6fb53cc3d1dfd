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

References (mpmath, 50 significant digits, from :mod:`reliability.validation.references`)
--------------------------------------------------------------------------------------
* Erlang B: ``B = a^c e^-a / Gamma(c + 1, a)`` with mpmath's upper incomplete gamma.
* Erlang C: ``C = B / (1 - (a/c)(1 - B))`` for ``a < c``, else 1.
* Erlang A: the birth-death chain of M/M/c+M in closed form, through ``1F1(1; y + 1; x)``
  with ``x = lambda / theta``, ``y = c mu / theta``.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
from scipy import special

from benchmarks.common import optional_import
from reliability.validation import references
from reliability.validation.references import erlang_b as mp_erlang_b
from reliability.validation.references import erlang_c as mp_erlang_c
from reliability.validation.references import wait_sf as mp_wait_sf

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

# mp_erlang_b, mp_erlang_c, mp_wait_sf: reliability.validation.references, imported above.

def mp_erlang_a(servers: int, arrival_rate, service_rate, abandonment_rate) -> dict[str, float]:
    """p_wait, p_abandon, mean_wait of M/M/c+M at 50 digits (reliability.validation.references.erlang_a)."""
    reference = references.erlang_a(int(servers), float(arrival_rate), float(service_rate), float(abandonment_rate))
    return {name: float(getattr(reference, name)) for name in ("p_wait", "p_abandon", "mean_wait")}


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
