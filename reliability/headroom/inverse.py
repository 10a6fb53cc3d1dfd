"""Backwards from an observed failure fraction: the surges and the capacities consistent with it.

"About 50 % failed" is not a point: the observed fraction is an interval, and a retrying side
may have several stable states. :func:`surge_for_failure` gives the surges at which some
stable state fails within the interval at a given capacity, :func:`headroom_for_failure` the
capacities under a given surge, and :func:`largest_absorbed_surge` the largest surge a side
takes while meeting a target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._records import Record
from .._validate import as_array, is_scalar, number, probability
from .capacity import _capacity, _check_servers, _servers_without_retries, _sources_for
from .side import _amplification_bounds, _headroom, _policy, _Side, check_load
from .sizing import DEFAULT_MAX_SERVERS, DEFAULT_MAX_SURGE, _largest_surge, _largest_surge_healthy, _least_servers, \
    _max_servers, _servers_needed, _target, _whole

__all__ = ["SurgeRange", "HeadroomRange", "largest_absorbed_surge", "surge_for_failure", "headroom_for_failure"]


@dataclass(frozen=True, repr=False)
class SurgeRange(Record):
    """Surges consistent with an observed failure fraction at a given capacity.

    ``surge_low`` is the smallest surge whose worst stable state fails at least
    ``observed_low``; ``surge_high`` the largest whose healthiest stable state fails at most
    ``observed_high``. ``offered_load_*`` are the retry-inflated loads in those states (for a
    loss system in overload ``B ~ 1 - c/x``, so 50 % failing means ``x ~ 2c``). ``consistent``
    is False when no stable state fails within the observed interval at any surge (the
    observation then lies between a healthy and a failed state: the side flips between them).
    """

    servers: float
    base_load: float
    headroom: float
    observed_low: float
    observed_high: float
    surge_low: float
    surge_high: float
    offered_load_low: float
    offered_load_high: float
    consistent: bool
    note: str


@dataclass(frozen=True, repr=False)
class HeadroomRange(Record):
    """Capacities (servers, headroom) consistent with an observed failure fraction under a surge.

    ``servers_low``: fewest servers whose healthiest state fails at most ``observed_high`` at
    ``surge_low``; ``servers_high``: most servers whose worst state still fails at least
    ``observed_low`` at ``surge_high``. ``consistent`` is False when the interval is empty (e.g.
    no whole number of servers lands in a narrow observed interval).
    """

    base_load: float
    surge_low: float
    surge_high: float
    observed_low: float
    observed_high: float
    servers_low: float
    servers_high: float
    headroom_low: float
    headroom_high: float
    consistent: bool


def _single_side(servers, base_load, capacity, retry_policy):
    model = _capacity(capacity)
    policy = _policy(retry_policy, model)
    c = number("servers", servers, minimum=0.0)
    a = number("base_load", base_load, minimum=0.0)
    if a <= 0:
        raise ValueError(f"base_load must be > 0, got {base_load!r}")
    _check_servers(model, np.array([c]))
    n = _sources_for(model, np.array([a]))
    return _Side(model, policy, a, None if n is None else float(n[0])), c


def largest_absorbed_surge(servers, base_load, target, *, capacity=None, retry_policy=None,
                           max_surge=DEFAULT_MAX_SURGE) -> float:
    """Largest surge multiple under which the side's worst stable state fails at most ``target``.

    A value below 1 means the side misses the target already at its base load; ``inf`` that it
    meets it under any surge up to ``max_surge`` (Engset with a server per source).

    Examples
    --------
    >>> round(largest_absorbed_surge(10, 5.0, 0.018384570337), 8)   # B(10, 5) = 0.01838...
    1.0
    >>> round(largest_absorbed_surge(130, 100.0, 0.01), 4)
    1.1247
    """
    side, c = _single_side(servers, base_load, capacity, retry_policy)
    eps = _target(target)
    limit = number("max_surge", max_surge, minimum=1.0)
    return _largest_surge(side, c, eps, limit)


def _interval(name: str, value, *, open_unit: bool) -> tuple[float, float]:
    values = [value] if is_scalar(value) else list(as_array(name, value).ravel())
    if len(values) not in (1, 2):
        raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}")
    if open_unit:
        numbers = [float(probability(name, v, open_interval=True)) for v in values]
    else:
        numbers = [number(name, v, minimum=1.0) for v in values]
    low, high = numbers[0], numbers[-1]
    if low > high:
        raise ValueError(f"{name} must be (low, high) with low <= high, got {value!r}")
    return low, high


def surge_for_failure(observed, servers, base_load, *, capacity=None, retry_policy=None,
                      max_surge=DEFAULT_MAX_SURGE) -> SurgeRange:
    """Surges consistent with an observed attempt failure fraction (a number or a (low, high) range).

    "About 50 % failed" is not a point: pass ``(0.4, 0.6)``. The observed fraction is per
    attempt (what a server reports: every retry is a request to it).

    Examples
    --------
    >>> r = surge_for_failure(0.5, servers=100, base_load=100.0)  # loss system: 50 % failing
    >>> round(r.offered_load_low / 100, 3)                       # means about twice capacity
    1.98
    """
    side, c = _single_side(servers, base_load, capacity, retry_policy)
    low, high = _interval("observed", observed, open_unit=True)
    limit = number("max_surge", max_surge, minimum=1.0)
    surge_low = _largest_surge(side, c, low, limit)
    surge_high = _largest_surge_healthy(side, c, high, surge_low if math.isfinite(surge_low) else limit, limit)
    if not math.isfinite(surge_low):
        note = f"the side never fails {low:g} of attempts at any surge up to {limit:g}"
        return SurgeRange(c, side.base_load, _headroom(c, side.base_load), low, high, math.inf, math.inf,
                          math.inf, math.inf, False, note)
    at_low = side.extremes(c, surge_low * (1 + 1e-9))
    at_high = side.extremes(c, surge_high) if math.isfinite(surge_high) else at_low
    worst_low = float(at_low["worst"])
    healthy_high = float(at_high["healthy"])
    consistent = (low - 1e-9 <= worst_low <= high + 1e-9) or (low - 1e-9 <= healthy_high <= high + 1e-9)
    if not consistent:
        note = (f"no stable state fails within {low:g}..{high:g}: between surges {surge_low:.4g} and {surge_high:.4g} "
                f"the side jumps from a state failing {healthy_high:.3g} to one failing {worst_low:.3g}; "
                "an observed fraction in between is a time average of both (flapping)")
    elif bool(at_low["stable_states"] >= 2) or bool(at_high["stable_states"] >= 2):
        note = "metastable: at these surges a healthier and a worse stable state coexist"
    else:
        note = "one stable state at every surge in the range"
    return SurgeRange(
        servers=c, base_load=side.base_load, headroom=_headroom(c, side.base_load), observed_low=low,
        observed_high=high, surge_low=surge_low, surge_high=surge_high,
        offered_load_low=surge_low * side.base_load * float(at_low["amplification"]),
        offered_load_high=(surge_high * side.base_load * float(at_high["amplification"])
                           if math.isfinite(surge_high) else math.inf),
        consistent=bool(consistent), note=note,
    )


def headroom_for_failure(observed, surge, base_load, *, capacity=None, retry_policy=None, whole_servers=True,
                         max_servers=DEFAULT_MAX_SERVERS) -> HeadroomRange:
    """Servers and headroom consistent with an observed failure fraction under a (range of) surge.

    Examples
    --------
    >>> r = headroom_for_failure((0.4, 0.6), 3.0, 100.0, whole_servers=False)
    >>> round(r.headroom_low, 3), round(r.headroom_high, 3)   # c ~ x (1 - B): about 300 x 0.4 .. 300 x 0.6
    (0.207, 0.815)
    """
    model = _capacity(capacity)
    policy = _policy(retry_policy, model)
    a = number("base_load", base_load, minimum=0.0)
    if a <= 0:
        raise ValueError(f"base_load must be > 0, got {base_load!r}")
    low, high = _interval("observed", observed, open_unit=True)
    k_low, k_high = _interval("surge", surge, open_unit=False)
    whole = _whole(model, whole_servers)
    limit = _max_servers(max_servers)
    n = _sources_for(model, np.array([a]))
    side = _Side(model, policy, a, None if n is None else float(n[0]))
    check_load(a, k_high, policy)

    # fewest servers whose healthiest state fails at most `high` under the smallest surge
    at_high, low_amp, _ = _amplification_bounds(policy, high)
    least = k_low * a * low_amp * (1.0 - high)  # servers carry at most their number in Erlangs
    if least > limit:
        raise ValueError(f"base_load={a:g} under surge={k_low:g} fails less than observed (high end {high:g}) "
                         f"only beyond max_servers={limit:g} servers (at least {least:g})")
    upper = _servers_without_retries(model, a, side.sources, k_low * at_high, high, whole)
    lower = _servers_without_retries(model, a, side.sources, k_low * low_amp, high, whole)
    if side.healthy_at_most(lower, k_low, high):
        servers_low = lower
    else:
        servers_low = _least_servers(side, lambda c: side.healthy_at_most(c, k_low, high), lower, upper, whole)
    # most servers whose worst state still fails at least `low` under the largest surge
    try:
        first_below = _servers_needed(side, k_high, low, whole, limit)
    except ValueError as error:  # it speaks of a target: here that is the observed fraction
        raise ValueError(f"observed (low end {low:g}) under surge {k_high:g}: no capacity up to max_servers "
                         f"fails less than that, so none can be ruled out ({error})") from None
    servers_high = first_below - 1.0 if whole else first_below
    consistent = servers_high >= servers_low
    return HeadroomRange(
        base_load=a, surge_low=k_low, surge_high=k_high, observed_low=low, observed_high=high,
        servers_low=servers_low, servers_high=servers_high, headroom_low=servers_low / a - 1.0,
        headroom_high=servers_high / a - 1.0, consistent=bool(consistent),
    )
