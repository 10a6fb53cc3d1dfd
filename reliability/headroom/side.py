"""One side under a surge with retries: its policy, its retry fixed point, its worst stable state.

A side with ``c`` servers and base load ``a`` under a surge ``k`` is offered ``k a A(p)``
Erlangs and fails attempts with probability ``p = F(c, k a A(p))``. The fixed point is
solved by the one solver of :mod:`reliability.retry.fixed_point` over rows of sides at once;
every answer uses the worst stable state (see :mod:`reliability.headroom`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._records import Record, format_value
from .._validate import as_array, broadcast, describe, is_scalar, number, output
from ..retry import parse_policy
from ..retry.fixed_point import SIZING_GRID, Extremes, FixedPointMap
from .capacity import (
    CapacityModel,
    _capacity,
    _check_servers,
    _failure,
    _max_multiplier_without_retries,
    _one,
    _n1,
    _sources_for,
)

__all__ = ["SideState", "parse_retry_policy", "failure_probability", "side_state"]


# ----------------------------------------------------------------------------------------
# The retry policy of a side
# ----------------------------------------------------------------------------------------

def parse_retry_policy(text):
    """A retry policy from a plain string or number (for notebook parameters).

    ``"none"`` (or ``0`` / ``None``: no retries), ``"fixed:<retries>"`` (or a whole number),
    ``"budget:<ratio>[:<retries>]"``, ``"token_bucket"``, ``"aws"`` and ``"throttle:<k>"``.
    Policy objects from :mod:`reliability.retry` pass through unchanged. The stable name of
    :func:`reliability.retry.parse_policy` with ``name="retry_policy"`` (no retries: None).

    Examples
    --------
    >>> parse_retry_policy("fixed:3")
    FixedRetries(max_retries=3)
    >>> parse_retry_policy("budget:0.1")
    RetryBudget(ratio=0.1, max_retries=3, window=10.0)
    >>> parse_retry_policy("none") is None
    True
    """
    return parse_policy(text, name="retry_policy")


@dataclass(frozen=True)
class _TimeoutRetries:
    """A policy whose every retry follows a timeout: a request queue's failures are slow
    answers the client gave up on, so policies that price timeouts apart (the AWS SDK's
    bucket: 10 tokens, not 5) charge them as such, as ``retry.RetryingQueue`` does."""

    policy: Any

    def amplification(self, p_fail):
        return self.policy.amplification(p_fail, timed_out=True)

    def __repr__(self) -> str:
        return repr(self.policy)


def _policy(retry_policy, model: CapacityModel | None = None):
    policy = parse_retry_policy(retry_policy)
    if policy is not None and model is not None and model.kind in ("erlang_c", "erlang_a"):
        try:
            policy.amplification(0.5, timed_out=True)
        except TypeError:  # a user's policy that does not tell timeouts apart
            return policy
        return _TimeoutRetries(policy)
    return policy


def _policy_label(policy) -> str:
    return "none" if policy is None else repr(policy)


_AMPLIFICATION_CACHE: dict = {}


def _amplification(policy, p) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if policy is None:
        return np.ones(p.shape)
    values = np.asarray(policy.amplification(p), dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        where = np.broadcast_to(p, values.shape)[bad].flat[0]
        raise ValueError(
            f"retry_policy {policy!r}: amplification must be finite and >= 0 below p_fail = 1, "
            f"got {values[bad].flat[0]!r} at p_fail={where!r}"
        )
    return values


def _grid_amplification(policy) -> np.ndarray:
    try:
        return _AMPLIFICATION_CACHE[policy]
    except (KeyError, TypeError):
        pass
    values = _amplification(policy, SIZING_GRID)
    try:
        if len(_AMPLIFICATION_CACHE) > 256:
            _AMPLIFICATION_CACHE.clear()
        _AMPLIFICATION_CACHE[policy] = values
    except TypeError:  # an unhashable user policy: no cache
        pass
    return values


def _amplification_at_one(policy) -> float:
    """A(1), or inf where the policy's amplification is unbounded (or undefined) there."""
    if policy is None:
        return 1.0
    with np.errstate(all="ignore"):
        try:
            value = float(np.asarray(policy.amplification(np.array([1.0])), dtype=np.float64)[0])
        except (ValueError, ZeroDivisionError, OverflowError):
            return math.inf
    return value if math.isfinite(value) and value >= 0 else math.inf


def _amplification_bounds(policy, level: float) -> tuple[float, float, float]:
    """``(A(level), min A on [0, level], max A on [0, 1])``; the max is inf when unbounded at 1."""
    if policy is None:
        return 1.0, 1.0, 1.0
    grid_values = _grid_amplification(policy)
    at_level = float(_amplification(policy, np.array([level]))[0])
    below = grid_values[SIZING_GRID <= level]
    low = min(at_level, float(below.min()) if below.size else at_level)
    high = max(float(grid_values.max()), at_level, _amplification_at_one(policy))
    return at_level, low, high


# ----------------------------------------------------------------------------------------
# The fixed point of rows of sides
# ----------------------------------------------------------------------------------------

def _side_map(model, policy, c, a, n, k) -> FixedPointMap:
    """The map ``p -> F(c, k a A(p))`` of rows of sides (arrays ``c, a, n, k``; ``n`` None but for Engset)."""
    c, a, k = (np.asarray(x, dtype=np.float64) for x in (c, a, k))

    def failure(index, amplification):
        column = (-1,) + (1,) * (np.ndim(amplification) - 1)  # rows against a scan's grid

        def pick(x):
            return None if x is None else x[index].reshape(column)

        return _failure(model, pick(c), pick(a), pick(n), pick(k) * amplification)

    if policy is None:
        return FixedPointMap(failure, c.size)
    return FixedPointMap(failure, c.size, lambda p: _amplification(policy, p), grid=SIZING_GRID,
                         grid_amplification=_grid_amplification(policy), at_one=_amplification_at_one(policy))


def _extremes(model, policy, c, a, n, k) -> Extremes:
    """Worst and healthiest stable fixed points on rows; see the module notes."""
    c, a, k = (np.asarray(x, dtype=np.float64) for x in (c, a, k))
    found = _side_map(model, policy, c, a, n, k).extremes()
    amplification = found.amplification.copy()
    for i in np.flatnonzero(found.jump):
        # held at the jump, the policy lets through just the load that fails `worst` of attempts
        m = _max_multiplier_without_retries(model, float(c[i]), float(a[i]), None if n is None else float(n[i]),
                                            float(found.worst[i]))
        amplification[i] = m / k[i] if k[i] > 0 and math.isfinite(m) else amplification[i]
    return dataclasses.replace(found, amplification=amplification)


@dataclass(frozen=True)
class _Side:
    """One side's fixed inputs for the searches."""

    model: CapacityModel
    policy: Any
    base_load: float
    sources: float | None

    def _map(self, servers: float, surge: float) -> FixedPointMap:
        return _side_map(self.model, self.policy, _one(servers), _one(self.base_load), _n1(self.sources), _one(surge))

    def worst_at_most(self, servers: float, surge: float, level: float) -> bool:
        return bool(self._map(servers, surge).worst_at_most(level)[0])

    def healthy_at_most(self, servers: float, surge: float, level: float) -> bool:
        return bool(self._map(servers, surge).healthiest_at_most(level)[0])

    def extremes(self, servers: float, surge: float) -> dict:
        found = _extremes(self.model, self.policy, _one(servers), _one(self.base_load), _n1(self.sources),
                          _one(surge))
        return {"worst": found.worst[0], "healthy": found.healthy[0], "stable_states": found.stable_states[0],
                "state": found.state[0], "amplification": found.amplification[0], "slope": found.slope[0]}


# ----------------------------------------------------------------------------------------
# The state of a side
# ----------------------------------------------------------------------------------------

def _headroom(servers: float, load: float) -> float:
    # NaN by definition where a side carries no load: a ratio to zero load has no meaning.
    return servers / load - 1.0 if load > 0 else math.nan


@dataclass(frozen=True, repr=False)
class SideState(Record):
    """The worst stable state of one side at given capacity under a surge.

    Attributes
    ----------
    servers, base_load, surge : float
        The side's capacity, its base load (Erlangs) and the surge multiple.
    failure : float
        Attempt failure probability in the worst stable state.
    healthy_failure : float
        The same in the healthiest stable state (equal to ``failure`` unless ``metastable``).
    state : str
        ``"stable"``, ``"collapsed"``, ``"throttled"`` or ``"oscillating"`` (module notes).
    metastable : bool
        A better stable state coexists with the worst one: where the side ends up depends on
        its history (a large enough disturbance leaves it in the worst).
    stable_states : int
        Number of stable states found.
    amplification : float
        Attempts per request in the worst state.
    offered_load : float
        Retry-inflated offered load in the worst state, Erlangs (``surge * base_load *
        amplification``; for Engset the nominal product, before finite sources saturate).
    headroom : float
        ``servers / base_load - 1`` (NaN where the base load is 0).
    """

    servers: float
    base_load: float
    surge: float
    failure: float
    healthy_failure: float
    state: str
    metastable: bool
    stable_states: int
    amplification: float
    offered_load: float
    headroom: float

    def __repr__(self) -> str:
        # the shared repr, with a note where the failure shown is the worst of several states
        note = " (worst of several stable states)" if self.metastable else ""
        shown = {"servers": self.servers, "base_load": self.base_load, "surge": self.surge, "failure": self.failure}
        parts = [f"{name}={format_value(value)}" for name, value in shown.items()]
        parts[-1] += note
        parts += [f"state={self.state!r}", f"healthy_failure={format_value(self.healthy_failure)}",
                  f"amplification={format_value(self.amplification)}", f"headroom={format_value(self.headroom)}"]
        return f"SideState({', '.join(parts)})"


def check_load(base_load, surge, policy, *, surge_name: str = "surge") -> None:
    """Refuse a surge x base load whose retry-inflated load (up to max_attempts x) leaves the float range.

    Below that bound every model answers (a failure probability tends to its limit 1, a sizing
    to "infeasible"); beyond it the offered load itself is not a number.
    """
    inner = getattr(policy, "policy", policy)  # a _TimeoutRetries wraps the user's policy
    attempts = float(getattr(inner, "max_attempts", 1) or 1)
    with np.errstate(over="ignore", invalid="ignore"):
        top = float(np.max(np.asarray(base_load, dtype=np.float64) * np.asarray(surge, dtype=np.float64),
                           initial=0.0)) * attempts
    if not math.isfinite(top):
        raise ValueError(f"{surge_name} x base_load x {attempts:g} attempts per request must be a finite load "
                         f"(Erlangs), got {surge_name}={describe(surge)} with base_load={describe(base_load)}")


def _state_from(side: _Side, servers: float, surge: float) -> SideState:
    check_load(side.base_load, surge, side.policy)
    if side.base_load == 0:
        return SideState(servers, 0.0, surge, 0.0, 0.0, "stable", False, 1, 1.0, 0.0, math.nan)
    e = side.extremes(servers, surge)
    amplification = float(e["amplification"])
    return SideState(
        servers=float(servers), base_load=side.base_load, surge=float(surge),
        failure=float(e["worst"]), healthy_failure=float(e["healthy"]), state=str(e["state"]),
        metastable=bool(e["stable_states"] >= 2), stable_states=int(e["stable_states"]),
        amplification=amplification, offered_load=surge * side.base_load * amplification,
        headroom=_headroom(servers, side.base_load),
    )


def _side_inputs(servers, base_load, surge, model):
    c = as_array("servers", servers, minimum=0.0)
    a = as_array("base_load", base_load, minimum=0.0)
    k = as_array("surge", surge, minimum=0.0)
    _check_servers(model, c)
    return c, a, k


def failure_probability(servers, base_load, surge=1.0, *, capacity=None, retry_policy=None):
    """Attempt failure probability in the worst stable state of one side (broadcasts).

    Solves ``p = F(servers, surge * base_load * A(p))`` (module notes) and returns the worst
    stable solution. Use :func:`side_state` for the whole picture at one point.

    Parameters
    ----------
    servers : float or array_like
        Servers (connection slots or queue servers) of the side.
    base_load : float or array_like
        Base offered load of the side, Erlangs (Engset: the traffic of ``capacity.sources``).
    surge : float or array_like
        Multiple of the base request rate (>= 0; 1 = no surge).
    capacity : CapacityModel or str, optional
        Default Erlang B.
    retry_policy : retry policy, str or int, optional
        Default none (see :func:`parse_retry_policy`).

    Examples
    --------
    >>> from reliability import erlang_b
    >>> round(failure_probability(10, 5.0), 12) == round(erlang_b(10, 5.0), 12)
    True
    >>> p = failure_probability(100, 80.0, 2.0, retry_policy="fixed:3")
    >>> round(p, 6), round(erlang_b(100, 160.0 * (1 + p + p**2 + p**3)), 6)  # a fixed point
    (0.783439, 0.783439)
    """
    model = _capacity(capacity)
    policy = _policy(retry_policy, model)
    scalar = is_scalar(servers, base_load, surge)
    c, a, k = _side_inputs(servers, base_load, surge, model)
    c, a, k = broadcast(servers=c, base_load=a, surge=k)
    check_load(a, k, policy)
    shape = c.shape
    c, a, k = (np.atleast_1d(x).ravel().astype(float) for x in (c, a, k))
    n = _sources_for(model, a)
    out = np.zeros(c.shape)
    active = a * k > 0
    if active.any():
        e = _extremes(model, policy, c[active], a[active], None if n is None else n[active], k[active])
        out[active] = e.worst
    return output(out.reshape(shape), scalar)


def side_state(servers, base_load, surge=1.0, *, capacity=None, retry_policy=None) -> SideState:
    """The worst stable state of one side, with the healthiest, the count and the labels.

    Examples
    --------
    >>> s = side_state(30, 10.0, 1.6, capacity="erlang_c:0.5", retry_policy="fixed:3")
    >>> s.state, s.metastable, s.healthy_failure < 1e-5   # a retrying queue can collapse
    ('collapsed', True, True)
    """
    model = _capacity(capacity)
    policy = _policy(retry_policy, model)
    c = number("servers", servers, minimum=0.0)
    a = number("base_load", base_load, minimum=0.0)
    k = number("surge", surge, minimum=0.0)
    _check_servers(model, np.array([c]))
    n = _sources_for(model, np.array([a]))
    return _state_from(_Side(model, policy, a, None if n is None else float(n[0])), c, k)


