"""How many servers one side needs, and the largest surge it absorbs, with retry feedback.

A side meets a target when its worst stable state fails at most ``target``: that is
``F(c, k a A(target)) <= target`` and ``F(c, k a A(p)) < p`` at every ``p > target``
(:meth:`reliability.retry.FixedPointMap.worst_at_most`). The first condition alone is the
retry-aware closed form (solved exactly by the inverses of :mod:`reliability.queues`); the
second rules out a worse state. Since ``F`` falls with ``c`` and rises with ``k``, the
requirement and the largest absorbed surge are found by bisection
(:mod:`reliability.queues.search`) between the closed-form brackets (no retries at
``A(target)`` and at ``max A``). The new side may autoscale (:class:`Autoscaling`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._records import Record
from .._validate import describe, number, probability
from ..queues.search import greatest_real, least_real, least_whole_between
from .capacity import (
    RELATIVE_PRECISION,
    CapacityModel,
    _capacity,
    _max_multiplier_without_retries,
    _servers_without_retries,
    _sources_for,
)
from .side import SideState, _amplification_bounds, _headroom, _policy, _policy_label, _Side, _state_from, check_load

__all__ = ["DEFAULT_MAX_SERVERS", "DEFAULT_MAX_SURGE", "Autoscaling", "AutoscalingOutcome", "SideRequirement",
           "servers_needed"]

#: Sizing gives up (infeasible) beyond this many servers unless told otherwise.
DEFAULT_MAX_SERVERS = 10_000_000
#: The largest surge multiple the inverse searches consider.
DEFAULT_MAX_SURGE = 1e6


# ----------------------------------------------------------------------------------------
# Searches on servers and surges (scalar)
# ----------------------------------------------------------------------------------------

def _least_servers(side: _Side, predicate, lower: float, upper: float, whole: bool) -> float:
    """Least servers in (lower, upper] with predicate; predicate(upper) holds."""
    if whole:
        return float(least_whole_between(lambda c: predicate(float(c)), int(lower), int(upper)))
    return least_real(predicate, lower, upper, relative_precision=RELATIVE_PRECISION)


def _servers_needed(side: _Side, surge: float, level: float, whole: bool, max_servers: float) -> float:
    """Least servers whose worst stable state fails at most ``level`` under ``surge``."""
    check_load(side.base_load, surge, side.policy)
    if side.base_load == 0:
        return 0.0
    at_level, _, high_amp = _amplification_bounds(side.policy, level)
    # servers carry at most their number in Erlangs, so failing at most `level` of a load x takes
    # c >= x (1 - level) in every model: beyond max_servers the sizing is infeasible at once
    least = surge * side.base_load * at_level * (1.0 - level)
    if least > max_servers:
        raise _infeasible(side, surge, level, max_servers, least)
    # F(c, k a A(level)) <= level is necessary: the least c meeting it bounds the answer below
    lower = _servers_without_retries(side.model, side.base_load, side.sources, surge * at_level, level, whole)
    if lower > max_servers:
        raise _infeasible(side, surge, level, max_servers, lower)
    if side.policy is None or side.worst_at_most(lower, surge, level):
        return lower
    # no retry multiplier exceeds max A: sizing for it rules out every worse state
    if math.isfinite(high_amp):
        upper = _servers_without_retries(side.model, side.base_load, side.sources, surge * high_amp, level, whole)
    else:
        upper = float(max_servers)
    upper = min(upper, float(max_servers))
    if not side.worst_at_most(upper, surge, level):
        raise _infeasible(side, surge, level, max_servers, None)
    # the predicate fails at `lower`: it is the exclusive lower end of the search
    return _least_servers(side, lambda c: side.worst_at_most(c, surge, level), lower, upper, whole)


def _infeasible(side: _Side, surge: float, level: float, max_servers: float, estimate) -> ValueError:
    _, _, high_amp = _amplification_bounds(side.policy, level)
    what = (f"base load {side.base_load:g} Erlangs, surge {surge:g}, {side.model!r}, "
            f"retry_policy {_policy_label(side.policy)}")
    if not math.isfinite(high_amp):
        return ValueError(
            f"retry_policy {side.policy!r}: its amplification is unbounded as p_fail -> 1, so the offered "
            f"load is unbounded in the failed state and a collapsed state exists at every size up to "
            f"max_servers={max_servers:g}; target={level:g} cannot be met ({what})"
        )
    need = f" (about {estimate:g} would be needed)" if estimate is not None else ""
    return ValueError(
        f"infeasible: base_load={side.base_load:g} under surge={surge:g} needs more than max_servers="
        f"{max_servers:g} servers{need} for target={level:g} ({what})"
    )


def _largest_surge(side: _Side, servers: float, level: float, max_surge: float) -> float:
    """Sup of surges k with the worst stable state at most ``level`` (inf: every surge)."""
    check_load(side.base_load, max_surge, side.policy, surge_name="max_surge")
    if side.base_load == 0:
        return math.inf
    at_level, _, high_amp = _amplification_bounds(side.policy, level)
    m_level = _max_multiplier_without_retries(side.model, servers, side.base_load, side.sources, level)
    if m_level == 0:
        return 0.0
    upper = m_level / at_level if at_level > 0 else math.inf
    if side.policy is None:
        return upper
    if math.isfinite(upper) and side.worst_at_most(servers, upper, level):
        return upper
    lower = m_level / high_amp if math.isfinite(high_amp) else 0.0
    if not math.isfinite(upper) or upper > max_surge:
        if side.worst_at_most(servers, max_surge, level):
            return math.inf
        upper = max_surge
    if not math.isfinite(lower):  # pragma: no cover - m_level finite here
        lower = 0.0
    return greatest_real(lambda k: side.worst_at_most(servers, k, level), lower, upper,
                         relative_precision=RELATIVE_PRECISION)


def _largest_surge_healthy(side: _Side, servers: float, level: float, start: float, max_surge: float) -> float:
    """Sup of surges k at which the healthiest stable state fails at most ``level``."""
    at_level, low_amp, _ = _amplification_bounds(side.policy, level)
    m_level = _max_multiplier_without_retries(side.model, servers, side.base_load, side.sources, level)
    if not math.isfinite(m_level):
        return math.inf
    if side.policy is None:
        return m_level
    candidate = m_level / at_level if at_level > 0 else math.inf
    # the healthy state reaches `level` exactly at the candidate when no fold intervenes
    if math.isfinite(candidate) and side.healthy_at_most(servers, candidate, level) and \
            not side.healthy_at_most(servers, candidate * (1 + 1e-9), level):
        return candidate
    upper = m_level / low_amp if low_amp > 0 else max_surge
    upper = min(upper, max_surge)
    if side.healthy_at_most(servers, upper, level):
        return upper if upper < max_surge else math.inf
    return greatest_real(lambda k: side.healthy_at_most(servers, k, level), min(start, upper), upper,
                         relative_precision=RELATIVE_PRECISION)


# ----------------------------------------------------------------------------------------
# Requirements
# ----------------------------------------------------------------------------------------

def _surge_value(name: str, value) -> float:
    return number(name, value, minimum=1.0)


def _target(value) -> float:
    return float(probability("target", number("target", value, minimum=0.0, maximum=1.0), open_interval=True))


#: Largest max_servers: beyond 2**53 whole numbers of servers are not exact in float64.
MAX_SERVERS_LIMIT = 2.0**53


def _max_servers(value) -> float:
    return number("max_servers", value, minimum=1.0, maximum=MAX_SERVERS_LIMIT)


@dataclass(frozen=True, repr=False)
class SideRequirement(Record):
    """Servers one side (or the pooled system) needs to meet the target under the surge.

    ``failure``/``state``/``metastable`` describe the worst stable state at those servers;
    ``headroom`` is ``servers / base_load - 1`` (NaN where the base load is 0).
    """

    side: str
    base_load: float
    surge: float
    servers: float
    headroom: float
    failure: float
    state: str
    metastable: bool
    sources: int | None = None


def _whole(model: CapacityModel, whole_servers) -> bool:
    if not isinstance(whole_servers, (bool, np.bool_)):
        raise ValueError(f"whole_servers must be True or False, got {whole_servers!r}")
    if not whole_servers and model.whole_servers_only:
        raise ValueError(f"whole_servers=False needs erlang_b or erlang_c, got {model.kind}")
    return bool(whole_servers)


_REQUIREMENT_CACHE: dict = {}


def _sized_state(side: _Side, surge: float, target: float, whole: bool, max_servers: float) -> tuple[float, SideState]:
    """Servers needed and the state there; memoised, since sweeps ask for the same side many
    times (the pooled system at every share, the old side at f as the new side at 1 - f)."""
    key = (side, surge, target, whole, max_servers)
    try:
        return _REQUIREMENT_CACHE[key]
    except KeyError:
        pass
    except TypeError:  # an unhashable user policy
        key = None
    servers = _servers_needed(side, surge, target, whole, max_servers)
    answer = (servers, _state_from(side, servers, surge))
    if key is not None:
        if len(_REQUIREMENT_CACHE) > 4096:
            _REQUIREMENT_CACHE.clear()
        _REQUIREMENT_CACHE[key] = answer
    return answer


def _requirement(name: str, side: _Side, surge: float, target: float, whole: bool, max_servers: float,
                 sources) -> SideRequirement:
    servers, state = _sized_state(side, surge, target, whole, max_servers)
    return SideRequirement(
        side=name, base_load=side.base_load, surge=surge, servers=servers,
        headroom=_headroom(servers, side.base_load), failure=state.failure, state=state.state,
        metastable=state.metastable, sources=sources,
    )


def servers_needed(base_load, target, surge=1.0, *, capacity=None, retry_policy=None, whole_servers=True,
                   max_servers=DEFAULT_MAX_SERVERS) -> float:
    """Least servers of one side whose worst stable state fails at most ``target`` under ``surge``.

    Raises ``ValueError`` when the target cannot be met within ``max_servers``.

    Examples
    --------
    >>> servers_needed(5.0, 0.02)       # Erlang B, as servers_for_blocking(5, 0.02)
    10.0
    >>> servers_needed(5.0, 0.02, retry_policy="fixed:3")   # B(10, 5 A(0.02)) > 0.02
    11.0
    >>> servers_needed(50.0, 0.02, 2.0, retry_policy="fixed:3")
    115.0
    """
    model = _capacity(capacity)
    policy = _policy(retry_policy, model)
    a = number("base_load", base_load, minimum=0.0)
    eps = _target(target)
    k = _surge_value("surge", surge)
    n = _sources_for(model, np.array([a]))
    side = _Side(model, policy, a, None if n is None else float(n[0]))
    return _servers_needed(side, k, eps, _whole(model, whole_servers), _max_servers(max_servers))


# ----------------------------------------------------------------------------------------
# Autoscaling of the new side
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Autoscaling:
    """Autoscaling of the new side: up to ``max_scale`` x its base servers, after ``reaction_time``.

    During the reaction time the side has only its base servers (the *transient*); then it runs
    ``floor(max_scale * base servers)`` (the *scaled* state). ``reaction_time`` is in the time
    unit of the capacity model (mean holding times by default).

    Examples
    --------
    >>> Autoscaling(max_scale=3.0, reaction_time=5.0)
    Autoscaling(max_scale=3.0, reaction_time=5.0)
    """

    max_scale: float = 2.0
    reaction_time: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "max_scale", number("autoscaling.max_scale", self.max_scale, minimum=1.0))
        object.__setattr__(self, "reaction_time",
                           number("autoscaling.reaction_time", self.reaction_time, minimum=0.0))

    def scaled(self, servers: float, whole_servers: bool = True) -> float:
        """Servers after scaling: ``floor(max_scale * servers)`` (or the product for fractional servers)."""
        product = self.max_scale * number("servers", servers, minimum=0.0)
        if not math.isfinite(product):
            raise ValueError(f"autoscaling.max_scale x servers must be a finite number of servers, got "
                             f"servers={describe(servers)} with max_scale={self.max_scale:g}")
        # the tiny allowance keeps e.g. 3.0 * 7 from flooring to 20 through rounding
        return float(math.floor(product * (1 + 1e-12))) if whole_servers else product


@dataclass(frozen=True, repr=False)
class AutoscalingOutcome(Record):
    """The new side with autoscaling: base servers, the transient before scaling and the scaled state.

    Attributes
    ----------
    base_servers : float
        Least base servers with which the new side meets the target at its base load and, once
        scaled to ``scaled_servers``, under the surge.
    scaled_servers : float
        ``floor(max_scale * base_servers)``.
    servers_without_autoscaling : float
        What the side needs to meet the target through the surge from its first moment.
    transient_failure, transient_state : float, str
        The worst stable state at ``base_servers`` under the surge, during the reaction time.
    scaled_failure : float
        The worst stable state after scaling. The transient leaves the side at most in its own
        worst state, which lies above every state of the scaled side; from there the scaled side
        settles in its worst stable state, so this is what it reaches.
    failed_attempts_during_reaction : float
        ``transient_failure`` x attempt rate x ``reaction_time``: attempts failed before scaling.
    """

    max_scale: float
    reaction_time: float
    base_servers: float
    scaled_servers: float
    base_headroom: float
    servers_without_autoscaling: float
    transient_failure: float
    transient_state: str
    scaled_failure: float
    failed_attempts_during_reaction: float


def _autoscaling_outcome(side: _Side, autoscaling: Autoscaling, surge: float, target: float, fixed: float,
                         whole: bool, max_servers: float) -> AutoscalingOutcome:
    if side.base_load == 0:
        return AutoscalingOutcome(autoscaling.max_scale, autoscaling.reaction_time, 0.0, 0.0, math.nan, 0.0,
                                  0.0, "stable", 0.0, 0.0)
    at_base = _servers_needed(side, 1.0, target, whole, max_servers)

    def enough(c: float) -> bool:
        # meets the target at base load, and under the surge once scaled (monotone in c)
        return side.worst_at_most(c, 1.0, target) and \
            side.worst_at_most(autoscaling.scaled(c, whole), surge, target)

    if at_base >= fixed or enough(at_base):
        base = min(at_base, fixed)
    else:
        base = _least_servers(side, enough, at_base, fixed, whole)
    scaled = autoscaling.scaled(base, whole)
    transient = side.extremes(base, surge)
    after = side.extremes(scaled, surge)
    p = float(transient["worst"])
    attempt_rate = surge * side.base_load * side.model.service_rate * float(transient["amplification"])
    return AutoscalingOutcome(
        max_scale=autoscaling.max_scale, reaction_time=autoscaling.reaction_time, base_servers=base,
        scaled_servers=scaled, base_headroom=_headroom(base, side.base_load), servers_without_autoscaling=fixed,
        transient_failure=p, transient_state=str(transient["state"]), scaled_failure=float(after["worst"]),
        failed_attempts_during_reaction=p * attempt_rate * autoscaling.reaction_time,
    )
