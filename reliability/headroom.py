"""Migration headroom: the spare capacity each side of a split (dual-infrastructure) service needs.

During a migration the load is split between the old and the new infrastructure and cannot move
between them: a share ``f`` of the base load ``a`` (Erlangs) runs on the new side, ``1 - f`` on
the old. Each side must absorb a surge on its own. This module answers

* how many servers each side needs, and one pooled system would need, to keep the failure
  probability at most ``target`` under a surge of ``k`` times the base request (or
  new-connection) rate: :func:`split_requirement`, :func:`pooled_requirement`,
  :func:`migration_tax` (split minus pooled), :func:`headroom_sweep`;
* what each side sees at given capacities: :func:`failure_probability`, :func:`side_state`,
  :func:`split_failure`, :func:`failure_sweep`; and the largest surge a side absorbs:
  :func:`largest_absorbed_surge`;
* backwards, from an observed failure fraction to the surges and headrooms consistent with it:
  :func:`surge_for_failure`, :func:`headroom_for_failure`.

The capacity model
------------------
:class:`CapacityModel` says what a server is and what "failure" means:

* ``erlang_b``: connection slots, a loss system; failure = blocking ``B(c, x)``;
* ``engset``: connection slots fed by a finite number of sources (app servers); failure = the
  call congestion seen by a request. The base load is Engset's offered traffic
  ``N beta / (1 + beta)`` (Iversen, *Teletraffic Engineering*, ch. 8), so one source offers
  ``beta = a / (N - a)``; a surge multiplies the request rate of an idle source, so the offered
  traffic saturates at ``N`` however large the surge;
* ``erlang_c``: a request queue (M/M/c); failure = ``P(W > wait_time)`` (``P(wait)`` at 0);
* ``erlang_a``: a request queue whose clients abandon (M/M/c+M); failure = ``P(abandon)``
  (default) or ``P(wait)``.

Surge and retries: the fixed point
----------------------------------
A side with ``c`` servers and base load ``a`` under a surge ``k`` with a retry policy of
amplification ``A(p)`` (attempts per request when each attempt fails with probability ``p``,
:mod:`reliability.retry`) is offered ``x = k a A(p)`` Erlangs (Engset: each source's rate is
multiplied by ``k A(p)``) and fails attempts with probability ``F(c, x)``, so ``p`` solves the
fixed point

    p = F(c, k a A(p)).

It can have several solutions (e.g. a healthy and a collapsed state of a retrying queue). Every
answer here uses the **worst stable** one, the largest ``p`` at which ``F(c, k a A(p)) - p``
changes sign from + to - (the state a large enough disturbance leaves the side in), and says
so: results carry ``metastable`` (a better stable state also exists) and ``state``
(``"stable"``, ``"collapsed"`` -- ``p = 1``, a saturated queue -- ``"throttled"`` -- held at an
adaptive throttle's failure ceiling -- or ``"oscillating"``: the map's slope is below -1 there,
so the round-by-round dynamics flap). The roots are found by scanning the map on a fixed grid
of ``p`` (uniform plus geometric clusters at both ends, about 740 points) and polishing each
sign change (Illinois regula falsi); two roots closer together than the grid spacing can be
missed (tests compare with a scan of 200,000 points).

A side meets the target when its worst stable state fails at most ``target``: that is
``F(c, k a A(target)) <= target`` and ``F(c, k a A(p)) < p`` at every ``p > target``. The first
condition alone is the retry-aware closed form (solved exactly by the inverse functions of
:mod:`reliability.erlang`); the second rules out a worse state. Since ``F`` falls with ``c``
and rises with ``k``, the requirement and the largest absorbed surge are found by bisection
between the closed-form brackets (no retries at ``A(target)`` and at ``max A``).

Headroom and the migration tax
------------------------------
The headroom of a side is ``servers / base load - 1``. The migration tax is the split
requirement minus the pooled one, in servers and as a share of the pooled requirement. For
a delay target in the Halfin-Whitt regime ``c = a + beta sqrt(a)``, an even split needs
``2 beta sqrt(a/2) = sqrt(2) beta sqrt(a)`` of safety margin ``c - a`` against ``beta sqrt(a)``
pooled: the margin ratio tends to ``sqrt(2)`` as the load grows (at realistic sizes it is not
quite that; :func:`migration_tax` reports the exact figure).

Pooling never needs more servers than the split when pooling lowers the failure probability at
every load, as it does for Erlang B and C (Smith and Whitt, "Resource sharing for efficiency in
traffic systems", 1981): then every state the pooled system can be stuck in is one a side can be
stuck in too. The tests check it for every model here except one: Erlang A's ``P(wait)`` with
retries. Its worst state is near saturation (every attempt waits, every wait is retried), and an
overloaded system waits with a probability that tends to 1 *faster* the larger it is, so the
pooled system can keep that state at sizes where the halves have lost it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from reliability._validate import as_array, is_scalar, number, output, probability
from reliability.erlang import _least_whole_between  # the bisection on whole servers, shared
from reliability.erlang import (
    engset,
    erlang_a,
    erlang_b,
    max_load_for_blocking,
    max_load_for_wait,
    servers_for_blocking,
    servers_for_wait,
    wait_sf,
)
from reliability.retry import AdaptiveThrottle, FixedRetries, RetryBudget, TokenBucket

__all__ = [
    "CapacityModel",
    "Autoscaling",
    "SideState",
    "SplitFailure",
    "SideRequirement",
    "AutoscalingOutcome",
    "SplitRequirement",
    "MigrationTax",
    "SurgeRange",
    "HeadroomRange",
    "SplitLoads",
    "parse_retry_policy",
    "split_loads",
    "failure_probability",
    "side_state",
    "split_failure",
    "servers_needed",
    "pooled_requirement",
    "split_requirement",
    "migration_tax",
    "largest_absorbed_surge",
    "surge_for_failure",
    "headroom_for_failure",
    "headroom_sweep",
    "failure_sweep",
]

KINDS = ("erlang_b", "engset", "erlang_c", "erlang_a")
SURGE_SIDES = ("both", "old", "new")
#: Sizing gives up (infeasible) beyond this many servers unless told otherwise.
DEFAULT_MAX_SERVERS = 10_000_000
#: The largest surge multiple the inverse searches consider.
DEFAULT_MAX_SURGE = 1e6

# Grid of attempt-failure probabilities on which the fixed-point map is scanned: uniform, plus
# geometric clusters near 0 (small targets) and near 1 (saturation). 1 itself is left out: a
# policy's amplification may be unbounded there, and the point 1 - 1e-12 stands for it.
_P_GRID = np.unique(np.concatenate([
    np.linspace(0.0, 1.0, 501)[:-1],
    np.geomspace(1e-12, 1e-2, 121),
    1.0 - np.geomspace(1e-12, 1e-2, 121),
]))
# Most root-polishing steps; a grid cell (<= 2e-3 wide) closes in far fewer.
_POLISH_STEPS = 200
# Relative width at which a polished bracket of a fixed point counts as closed.
_ROOT_PRECISION = 1e-13
# |map(p) - p| below this times p is rounding noise (the Erlang functions are good to ~1e-13).
_RESIDUAL = 1e-14
# A drop of the map by more than this across a vanishing interval is a jump (a throttle).
_JUMP = 1e-7
# Step of the numerical slope of the map at its worst fixed point.
_SLOPE_STEP = 1e-7
# Relative precision of bisections on a continuous number of servers or a surge multiple.
_RELATIVE_PRECISION = 1e-11


# ----------------------------------------------------------------------------------------
# Inputs: capacity model, autoscaling, retry policy
# ----------------------------------------------------------------------------------------

def _finite_number(name: str, value: Any, *, minimum: float | None = None, strict: bool = False) -> float:
    return number(name, value, minimum=minimum, strict=strict)


@dataclass(frozen=True)
class CapacityModel:
    """What a server is and what counts as a failure (see the module notes).

    Parameters
    ----------
    kind : {"erlang_b", "engset", "erlang_c", "erlang_a"}
        Connection slots (loss: Erlang B, or Engset with finite sources) or request queues
        (delay: Erlang C, or Erlang A with abandonment).
    sources : int, optional
        Engset only: the number of sources (app servers) of the system asked about. Split
        functions divide them between the sides in proportion to the share (rounded).
    wait_time : float
        Erlang C only: failure is ``P(W > wait_time)``; 0 means ``P(wait)``.
    service_rate : float
        Services (holdings) per unit time per server; the load is in Erlangs, so this only sets
        the time unit of ``wait_time``, abandonment and autoscaling reaction times (default 1:
        time is counted in mean holding times).
    abandonment_rate : float
        Erlang A only: ``theta > 0`` (mean patience ``1 / theta``).
    metric : str, optional
        Erlang A only: ``"abandon"`` (default, the share of requests that give up) or
        ``"wait"`` (``P(wait)``). Set automatically for the other kinds.

    Examples
    --------
    >>> CapacityModel.parse("engset:200")
    CapacityModel(engset, sources=200, failure=blocking)
    >>> round(CapacityModel.erlang_c(wait_time=0.1).failure(12, 10.0), 6)  # C(12, 10) exp(-0.2)
    0.367928
    """

    kind: str = "erlang_b"
    sources: int | None = None
    wait_time: float = 0.0
    service_rate: float = 1.0
    abandonment_rate: float = 0.0
    metric: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"capacity.kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "engset":
            s = self.sources
            if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
                raise ValueError(f"capacity.sources must be a whole number >= 1 for engset, got {s!r}")
            object.__setattr__(self, "sources", int(s))
        elif self.sources is not None:
            raise ValueError(f"capacity.sources is for engset only, got sources={self.sources!r} with {self.kind}")
        wait_time = _finite_number("capacity.wait_time", self.wait_time, minimum=0.0)
        if wait_time > 0 and self.kind != "erlang_c":
            raise ValueError(
                f"capacity.wait_time applies to erlang_c only (P(W > t) of {self.kind} is not modelled), "
                f"got wait_time={self.wait_time!r}"
            )
        service_rate = _finite_number("capacity.service_rate", self.service_rate, minimum=0.0, strict=True)
        theta = _finite_number("capacity.abandonment_rate", self.abandonment_rate, minimum=0.0)
        if self.kind == "erlang_a":
            if theta < 1e-12 * service_rate:
                raise ValueError(
                    "capacity.abandonment_rate must be >= 1e-12 * service_rate for erlang_a "
                    f"(use erlang_c without abandonment), got {self.abandonment_rate!r}"
                )
            metric = "abandon" if self.metric is None else self.metric
            if metric not in ("abandon", "wait"):
                raise ValueError(f"capacity.metric must be 'abandon' or 'wait' for erlang_a, got {self.metric!r}")
        else:
            if theta != 0:
                raise ValueError(f"capacity.abandonment_rate applies to erlang_a only, got {self.abandonment_rate!r}")
            natural = {"erlang_b": "blocking", "engset": "blocking",
                       "erlang_c": "wait_exceeds" if wait_time > 0 else "wait"}[self.kind]
            if self.metric not in (None, natural):
                raise ValueError(f"capacity.metric of {self.kind} is {natural!r}, got {self.metric!r}")
            metric = natural
        object.__setattr__(self, "wait_time", wait_time)
        object.__setattr__(self, "service_rate", service_rate)
        object.__setattr__(self, "abandonment_rate", theta)
        object.__setattr__(self, "metric", metric)

    # -- constructors ----------------------------------------------------------------
    @classmethod
    def erlang_b(cls, service_rate: float = 1.0) -> "CapacityModel":
        """Connection slots, infinite sources: failure = Erlang B blocking."""
        return cls("erlang_b", service_rate=service_rate)

    @classmethod
    def engset(cls, sources: int, service_rate: float = 1.0) -> "CapacityModel":
        """Connection slots fed by ``sources`` app servers: failure = Engset call congestion."""
        return cls("engset", sources=sources, service_rate=service_rate)

    @classmethod
    def erlang_c(cls, wait_time: float = 0.0, service_rate: float = 1.0) -> "CapacityModel":
        """A request queue: failure = ``P(W > wait_time)`` in M/M/c."""
        return cls("erlang_c", wait_time=wait_time, service_rate=service_rate)

    @classmethod
    def erlang_a(cls, abandonment_rate: float, service_rate: float = 1.0, metric: str = "abandon") -> "CapacityModel":
        """A request queue with impatient clients: failure = ``P(abandon)`` (or ``P(wait)``)."""
        return cls("erlang_a", service_rate=service_rate, abandonment_rate=abandonment_rate, metric=metric)

    @classmethod
    def parse(cls, text: str) -> "CapacityModel":
        """Build a model from a short string (for notebook parameters).

        ``"erlang_b"``, ``"engset:<sources>"``, ``"erlang_c"``, ``"erlang_c:<wait_time>"``,
        ``"erlang_a:<abandonment_rate>"`` or ``"erlang_a:<abandonment_rate>:wait"``.

        Examples
        --------
        >>> CapacityModel.parse("erlang_a:0.5:wait")
        CapacityModel(erlang_a, abandonment_rate=0.5, failure=wait)
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"capacity must be a non-empty string such as 'erlang_b', got {text!r}")
        name, *args = [part.strip() for part in text.strip().lower().split(":")]
        try:
            if name == "erlang_b" and not args:
                return cls.erlang_b()
            if name == "engset" and len(args) == 1:
                number = float(args[0])
                if number != math.floor(number):
                    raise ValueError
                return cls.engset(int(number))
            if name == "erlang_c" and len(args) <= 1:
                return cls.erlang_c(float(args[0]) if args else 0.0)
            if name == "erlang_a" and len(args) in (1, 2):
                return cls.erlang_a(float(args[0]), metric=args[1] if len(args) == 2 else "abandon")
        except ValueError as error:
            if str(error).startswith("capacity."):
                raise ValueError(f"capacity {text!r}: {error}") from None
        raise ValueError(
            f"capacity must be 'erlang_b', 'engset:<sources>', 'erlang_c[:<wait_time>]' or "
            f"'erlang_a:<abandonment_rate>[:wait]', got {text!r}"
        )

    # -- descriptions ----------------------------------------------------------------
    @property
    def whole_servers_only(self) -> bool:
        """Engset and Erlang A are defined for whole numbers of servers only."""
        return self.kind in ("engset", "erlang_a")

    @property
    def failure_name(self) -> str:
        """What the failure probability measures, e.g. ``"blocking"`` or ``"P(W > 0.5)"``."""
        return {"blocking": "blocking", "wait": "P(wait)", "abandon": "P(abandon)",
                "wait_exceeds": f"P(W > {self.wait_time:g})"}[self.metric]

    def __repr__(self) -> str:
        parts = [self.kind]
        if self.kind == "engset":
            parts.append(f"sources={self.sources}")
        if self.kind == "erlang_a":
            parts.append(f"abandonment_rate={self.abandonment_rate:g}")
        if self.service_rate != 1.0:
            parts.append(f"service_rate={self.service_rate:g}")
        metric = {"wait_exceeds": f"P(W>{self.wait_time:g})"}.get(self.metric, self.metric)
        parts.append(f"failure={metric}")
        return f"CapacityModel({', '.join(parts)})"

    def with_sources(self, sources: int) -> "CapacityModel":
        """The same Engset model with another number of sources (e.g. one side's)."""
        return replace(self, sources=sources)

    def failure(self, servers, load):
        """Failure probability at ``load`` Erlangs without surge or retries (broadcasts).

        For Engset ``load`` is the offered traffic of ``self.sources`` sources (< sources).
        """
        scalar = is_scalar(servers, load)
        c = as_array("servers", servers, minimum=0.0)
        a = as_array("load", load, minimum=0.0)
        _check_servers(self, c)
        n = _sources_for(self, a)
        c, a = np.broadcast_arrays(c, a)
        return output(_failure(self, c, a, n, np.ones(c.shape)), scalar)


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
        object.__setattr__(self, "max_scale", _finite_number("autoscaling.max_scale", self.max_scale, minimum=1.0))
        object.__setattr__(self, "reaction_time",
                           _finite_number("autoscaling.reaction_time", self.reaction_time, minimum=0.0))

    def scaled(self, servers: float, whole_servers: bool = True) -> float:
        """Servers after scaling: ``floor(max_scale * servers)`` (or the product for fractional servers)."""
        product = self.max_scale * servers
        # the tiny allowance keeps e.g. 3.0 * 7 from flooring to 20 through rounding
        return float(math.floor(product * (1 + 1e-12))) if whole_servers else product


def parse_retry_policy(text):
    """A retry policy from a plain string or number (for notebook parameters).

    ``"none"`` (or ``0`` / ``None``: no retries), ``"fixed:<retries>"`` (or a whole number),
    ``"budget:<ratio>[:<retries>]"``, ``"token_bucket"``, ``"aws"`` and ``"throttle:<k>"``.
    Policy objects from :mod:`reliability.retry` pass through unchanged.

    Examples
    --------
    >>> parse_retry_policy("fixed:3")
    FixedRetries(max_retries=3)
    >>> parse_retry_policy("budget:0.1")
    RetryBudget(ratio=0.1, max_retries=3, window=10.0)
    >>> parse_retry_policy("none") is None
    True
    """
    if text is None:
        return None
    if hasattr(text, "amplification"):
        return text
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"retry_policy (a number of retries) must be >= 0, got {text!r}")
        return FixedRetries(int(text)) if text > 0 else None
    if not isinstance(text, str):
        raise ValueError(f"retry_policy must be a string, a whole number or a retry policy, got {text!r}")
    name, *args = [part.strip() for part in text.strip().lower().split(":")]
    try:
        if name in ("none", "no", "") and not args:
            return None
        if name == "fixed" and len(args) == 1:
            retries = int(args[0])
            return FixedRetries(retries) if retries > 0 else None
        if name == "budget" and len(args) in (1, 2):
            return RetryBudget(ratio=float(args[0]), max_retries=int(args[1]) if len(args) == 2 else 3)
        if name == "token_bucket" and not args:
            return TokenBucket.simple()
        if name == "aws" and not args:
            return TokenBucket.aws_standard()
        if name == "throttle" and len(args) == 1:
            return AdaptiveThrottle(k=float(args[0]))
    except ValueError as error:
        raise ValueError(f"retry_policy {text!r}: {error}") from None
    raise ValueError(
        "retry_policy must be 'none', 'fixed:<retries>', 'budget:<ratio>[:<retries>]', "
        f"'token_bucket', 'aws' or 'throttle:<k>', got {text!r}"
    )


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
    if policy is not None and not callable(getattr(policy, "amplification", None)):
        raise ValueError(f"retry_policy must have an amplification(p_fail) method, got {policy!r}")
    if policy is not None and model is not None and model.kind in ("erlang_c", "erlang_a"):
        try:
            policy.amplification(0.5, timed_out=True)
        except TypeError:  # a user's policy that does not tell timeouts apart
            return policy
        return _TimeoutRetries(policy)
    return policy


def _policy_label(policy) -> str:
    return "none" if policy is None else repr(policy)


def _capacity(capacity) -> CapacityModel:
    if capacity is None:
        return CapacityModel()
    if isinstance(capacity, CapacityModel):
        return capacity
    if isinstance(capacity, str):
        return CapacityModel.parse(capacity)
    raise ValueError(f"capacity must be a CapacityModel or a string such as 'erlang_b', got {capacity!r}")


# ----------------------------------------------------------------------------------------
# The failure function and the retry amplification
# ----------------------------------------------------------------------------------------

def _check_servers(model: CapacityModel, servers: np.ndarray) -> None:
    if model.whole_servers_only:
        bad = servers != np.floor(servers)
        if bad.any():
            raise ValueError(f"servers must be whole numbers for {model.kind}, got {servers[bad].flat[0]!r}")


def _sources_for(model: CapacityModel, base_load: np.ndarray):
    """Sources of a single side (Engset), after checking the load fits them."""
    if model.kind != "engset":
        return None
    n = float(model.sources)
    if (base_load >= n).any():
        raise ValueError(
            f"offered load must be < capacity.sources for engset (N sources offer less than N Erlangs), "
            f"got load={base_load[base_load >= n].flat[0]!r} with sources={model.sources}"
        )
    return np.full(base_load.shape, n)


def _failure(model: CapacityModel, c, a, n, multiplier) -> np.ndarray:
    """Failure probability of a side with ``c`` servers, base load ``a`` (sources ``n``) when the
    request rate is multiplied by ``multiplier`` (surge x amplification). Arrays broadcast."""
    c = np.asarray(c, dtype=np.float64)
    a = np.asarray(a, dtype=np.float64)
    m = np.asarray(multiplier, dtype=np.float64)
    if model.kind == "erlang_b":
        return np.asarray(erlang_b(c, m * a), dtype=np.float64)
    if model.kind == "erlang_c":
        return np.asarray(wait_sf(c, m * a, model.wait_time, model.service_rate), dtype=np.float64)
    if model.kind == "engset":
        n = np.asarray(n, dtype=np.float64)
        per_source = a / (n - a)  # offered traffic N b / (1 + b) = a  <=>  b = a / (N - a)
        return np.asarray(engset(c, n, m * per_source), dtype=np.float64)
    mu = model.service_rate
    c, load = np.broadcast_arrays(c, m * a)
    result = erlang_a(np.maximum(c, 1.0), load * mu, mu, model.abandonment_rate)
    value = np.asarray(result.p_abandon if model.metric == "abandon" else result.p_wait, dtype=np.float64)
    # no servers: every request waits, and waits until it abandons
    return np.where((c == 0) & (load > 0), 1.0, value)


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
    values = _amplification(policy, _P_GRID)
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
    below = grid_values[_P_GRID <= level]
    low = min(at_level, float(below.min()) if below.size else at_level)
    high = max(float(grid_values.max()), at_level, _amplification_at_one(policy))
    return at_level, low, high


# ----------------------------------------------------------------------------------------
# The fixed point: worst and healthiest stable states, and the target predicates
# ----------------------------------------------------------------------------------------

def _rows(*arrays):
    """Column vectors for a (rows x grid) evaluation; None passes through."""
    return [None if x is None else np.asarray(x, dtype=np.float64)[:, None] for x in arrays]


def _saturated_at_one(model, policy, c, a, n, k) -> np.ndarray:
    """True where the map is exactly 1 at p = 1: a queue offered at least its capacity when every
    attempt fails. At the boundary k a A(1) = c the saturated queue is null-recurrent (it never
    settles), so it counts as collapsed: sizing must go strictly beyond it."""
    at_one = _amplification_at_one(policy)
    if not math.isfinite(at_one):
        return np.zeros(np.shape(c), dtype=bool)
    return _failure(model, c, a, n, k * at_one) >= 1.0


def _worst_at_most(model, policy, c, a, n, k, level: float) -> np.ndarray:
    """True where the worst stable state fails at most ``level`` (rows of c, a, n, k)."""
    at_level = float(_amplification(policy, np.array([level]))[0]) if policy is not None else 1.0
    ok = _failure(model, c, a, n, k * at_level) <= level
    if policy is None or not ok.any():
        return ok
    saturated = _saturated_at_one(model, policy, c, a, n, k)
    ok &= ~saturated
    above = _P_GRID > level
    if not above.any() or not ok.any():
        return ok
    idx = np.flatnonzero(ok)
    cr, ar, nr, kr = _rows(c[idx], a[idx], None if n is None else n[idx], k[idx])
    gap = _failure(model, cr, ar, nr, kr * _grid_amplification(policy)[above][None, :]) - _P_GRID[above][None, :]
    ok[idx] = (gap < 0).all(axis=1)
    return ok


def _healthy_at_most(model, policy, c, a, n, k, level: float) -> np.ndarray:
    """True where the healthiest stable state fails at most ``level``: the map dips to or below
    the diagonal somewhere in [0, level] (it starts above it, at p = 0)."""
    at_level = float(_amplification(policy, np.array([level]))[0]) if policy is not None else 1.0
    ok = _failure(model, c, a, n, k * at_level) <= level
    if policy is None or ok.all():
        return ok
    below = _P_GRID < level
    idx = np.flatnonzero(~ok)
    cr, ar, nr, kr = _rows(c[idx], a[idx], None if n is None else n[idx], k[idx])
    gap = _failure(model, cr, ar, nr, kr * _grid_amplification(policy)[below][None, :]) - _P_GRID[below][None, :]
    ok[idx] = (gap <= 0).any(axis=1)
    return ok


def _gap(model, policy, c, a, n, k, p):
    return _failure(model, c, a, n, k * _amplification(policy, p)) - p


def _polish(model, policy, c, a, n, k, low, high):
    """Shrink brackets [low, high] of a sign change (gap >= 0 at low, < 0 at high) on rows.

    Illinois (modified regula falsi), superlinear on a smooth map; when one end has been kept
    three times running the step is a bisection instead, so a jump (a throttle's ceiling) is
    closed at least at bisection's pace. A row stops when its bracket is closed to relative
    ``_ROOT_PRECISION`` or its residual is rounding noise. Only open rows are evaluated.
    """
    low, high = low.astype(float).copy(), high.astype(float).copy()
    g_low = _gap(model, policy, c, a, n, k, low)
    g_high = _gap(model, policy, c, a, n, k, high)
    # an end that is already a root (p = 0 when the map is exactly 0 there): bisecting towards it
    # would never meet the relative width and would stop at 2^-200 of the cell instead
    exact = np.abs(g_low) <= _RESIDUAL * np.maximum(low, 1e-300)
    high[exact] = low[exact]
    kept = np.zeros(low.shape, dtype=int)  # signed run length: > 0 low end moved, < 0 high end moved
    for _ in range(_POLISH_STEPS):
        open_ = (high - low) > _ROOT_PRECISION * np.maximum(high, 1e-300)
        if not open_.any():
            break
        idx = np.flatnonzero(open_)
        lo, hi, glo, ghi, run = low[idx], high[idx], g_low[idx], g_high[idx], kept[idx]
        with np.errstate(all="ignore"):
            x = (lo * ghi - hi * glo) / (ghi - glo)
        bisect = np.abs(run) >= 3
        x = np.where(bisect | ~np.isfinite(x) | (x <= lo) | (x >= hi), 0.5 * (lo + hi), x)
        gx = _gap(model, policy, c[idx], a[idx], None if n is None else n[idx], k[idx], x)
        up = gx >= 0
        run = np.where(up, np.maximum(run, 0) + 1, np.minimum(run, 0) - 1)
        run = np.where(bisect, 0, run)
        # Illinois: when the same end moves again, halve the other end's value
        low[idx] = np.where(up, x, lo)
        g_low[idx] = np.where(up, gx, np.where(run <= -2, 0.5 * glo, glo))
        high[idx] = np.where(up, hi, x)
        g_high[idx] = np.where(up, np.where(run >= 2, 0.5 * ghi, ghi), gx)
        kept[idx] = run
        # a residual at rounding level is a root: close the bracket on it
        exact = np.abs(gx) <= _RESIDUAL * np.maximum(x, 1e-300)
        if exact.any():
            low[idx[exact]] = x[exact]
            high[idx[exact]] = x[exact]
    return low, high


def _extremes(model, policy, c, a, n, k) -> dict:
    """Worst and healthiest stable fixed points on rows; see the module notes."""
    c, a, k = (np.asarray(x, dtype=np.float64) for x in (c, a, k))
    rows = c.shape[0]
    if policy is None:
        p = _failure(model, c, a, n, k)
        collapsed = p >= 1.0
        return {
            "worst": p, "healthy": p.copy(), "stable_states": np.ones(rows, dtype=int),
            "state": np.where(collapsed, "collapsed", "stable").astype(object),
            "amplification": np.ones(rows), "slope": np.zeros(rows),
        }
    grid_amplification = _grid_amplification(policy)
    cr, ar, nr, kr = _rows(c, a, n, k)
    gap = _failure(model, cr, ar, nr, kr * grid_amplification[None, :]) - _P_GRID[None, :]
    above = gap >= 0  # column 0 is p = 0, where the map is >= 0: always True
    size = _P_GRID.size
    last = size - 1 - np.argmax(above[:, ::-1], axis=1)
    # the map stays above the diagonal up to p = 1 - 1e-12, or a queue saturates exactly at p = 1
    collapsed = (last == size - 1) | _saturated_at_one(model, policy, c, a, n, k)
    nxt = np.minimum(last + 1, size - 1)
    below_any = ~above
    has_crossing = below_any.any(axis=1)
    first = np.where(has_crossing, np.argmax(below_any, axis=1), size - 1)
    # one polish for both brackets; they coincide when there is a single crossing
    twice = lambda x: np.concatenate([x, x])  # noqa: E731
    low, high = _polish(model, policy, twice(c), twice(a), None if n is None else twice(n), twice(k),
                        np.concatenate([_P_GRID[last], _P_GRID[np.maximum(first - 1, 0)]]),
                        np.concatenate([_P_GRID[nxt], _P_GRID[first]]))
    low, low_h = low[:rows], low[rows:]
    high, high_h = high[:rows], high[rows:]
    worst = np.where(collapsed, 1.0, 0.5 * (low + high))
    healthy = np.where(has_crossing, 0.5 * (low_h + high_h), 1.0)
    # a jump (throttle ceiling): the map drops by a finite amount across the polished interval
    gap_low = _gap(model, policy, c, a, n, k, low)
    gap_high = _gap(model, policy, c, a, n, k, high)
    jump = ~collapsed & (gap_low - gap_high > _JUMP)

    downward = (above[:, :-1] & ~above[:, 1:]).sum(axis=1)
    stable_states = downward + collapsed.astype(int)

    # slope of the map at the worst state: below -1 each retry round overshoots (flapping)
    h = _SLOPE_STEP
    p_minus = np.clip(worst - h, 0.0, 1.0 - 1e-12)
    p_plus = np.clip(worst + h, 0.0, 1.0 - 1e-12)
    slope = np.zeros(rows)
    interior = ~collapsed & ~jump & (p_plus > p_minus)
    if interior.any():
        f_plus = _failure(model, c, a, n, k * _amplification(policy, p_plus))
        f_minus = _failure(model, c, a, n, k * _amplification(policy, p_minus))
        slope = np.where(interior, (f_plus - f_minus) / np.where(interior, p_plus - p_minus, 1.0), 0.0)
    state = np.full(rows, "stable", dtype=object)
    state[slope < -1.0] = "oscillating"
    state[jump] = "throttled"
    state[collapsed] = "collapsed"
    amp_worst = _amplification(policy, np.minimum(worst, 1.0 - 1e-12))
    if collapsed.any():
        amp_worst = np.where(collapsed, _amplification_at_one(policy), amp_worst)
    for i in np.flatnonzero(jump):
        # held at the jump, the policy lets through just the load that fails `worst` of attempts
        m = _max_multiplier_without_retries(model, float(c[i]), float(a[i]), None if n is None else float(n[i]),
                                            float(worst[i]))
        amp_worst[i] = m / k[i] if k[i] > 0 and math.isfinite(m) else amp_worst[i]
    return {"worst": worst, "healthy": healthy, "stable_states": stable_states, "state": state,
            "amplification": amp_worst, "slope": slope}


# ----------------------------------------------------------------------------------------
# Searches on servers and surges (scalar)
# ----------------------------------------------------------------------------------------

def _bisect_real(upper_side, low: float, high: float) -> tuple[float, float]:
    """Shrink [low, high] around where the monotone ``upper_side`` turns true, to relative precision."""
    while high - low > _RELATIVE_PRECISION * max(1.0, abs(high)):
        mid = 0.5 * (low + high)
        if mid <= low or mid >= high:
            break
        if upper_side(mid):
            high = mid
        else:
            low = mid
    return low, high


def _least_real(predicate, low: float, high: float) -> float:
    """Least real x in [low, high] with predicate(x) (monotone), to relative precision; returns a
    point where the predicate holds."""
    return _bisect_real(predicate, low, high)[1]


def _greatest_real(predicate, low: float, high: float) -> float:
    """Greatest real x in [low, high] with predicate(x), given predicate(low) and monotone."""
    return _bisect_real(lambda x: not predicate(x), low, high)[0]


def _one(x) -> np.ndarray:
    return np.array([float(x)])


def _n1(n):
    return None if n is None else _one(n)


def _servers_without_retries(model, a: float, n, multiplier: float, level: float, whole: bool) -> float:
    """Least servers with F(c, a, multiplier) <= level (no retry feedback)."""
    if a == 0 or multiplier == 0:
        return 0.0
    x = multiplier * a

    def meets(c):
        return bool(_failure(model, _one(c), _one(a), _n1(n), _one(multiplier))[0] <= level)

    if model.kind == "erlang_b":
        whole_answer = float(servers_for_blocking(x, level))
    elif model.kind == "erlang_c":
        whole_answer = float(servers_for_wait(x, level, model.wait_time, model.service_rate))
    elif model.kind == "engset":
        # engset(N, N, b) = 0: N servers always suffice
        return float(_least_whole_between(meets, -1, int(n)))
    else:
        # abandonment only shortens the queue: the Erlang C answer for P(wait) is an upper bound
        high = int(servers_for_wait(x, level))
        while not meets(high):  # pragma: no cover - guarded, not expected
            high = 2 * high + 1
        return float(_least_whole_between(meets, -1, high))
    if whole or whole_answer == 0:
        return whole_answer
    return _least_real(meets, max(whole_answer - 1.0, 0.0), whole_answer)


def _max_multiplier_without_retries(model, c: float, a: float, n, level: float) -> float:
    """Largest multiplier m with F(c, a, m) <= level (inf if every surge meets it)."""
    if c == 0:
        return 0.0
    if model.kind == "erlang_b":
        return float(max_load_for_blocking(c, level)) / a
    if model.kind == "erlang_c":
        return float(max_load_for_wait(c, level, model.wait_time, model.service_rate)) / a
    if model.kind == "engset" and c >= n:
        return math.inf

    def meets(m):
        return bool(_failure(model, _one(c), _one(a), _n1(n), _one(m))[0] <= level)

    high = 1.0
    while meets(high):
        high *= 2.0
        if high > 1e300:  # pragma: no cover - F tends to 1 with the load in every model
            return math.inf
    return _greatest_real(meets, 0.0, high)


@dataclass(frozen=True)
class _Side:
    """One side's fixed inputs for the searches."""

    model: CapacityModel
    policy: Any
    base_load: float
    sources: float | None

    def worst_at_most(self, servers: float, surge: float, level: float) -> bool:
        return bool(_worst_at_most(self.model, self.policy, _one(servers), _one(self.base_load),
                                   _n1(self.sources), _one(surge), level)[0])

    def healthy_at_most(self, servers: float, surge: float, level: float) -> bool:
        return bool(_healthy_at_most(self.model, self.policy, _one(servers), _one(self.base_load),
                                     _n1(self.sources), _one(surge), level)[0])

    def extremes(self, servers: float, surge: float) -> dict:
        out = _extremes(self.model, self.policy, _one(servers), _one(self.base_load), _n1(self.sources), _one(surge))
        return {key: value[0] for key, value in out.items()}


def _least_servers(side: _Side, predicate, lower: float, upper: float, whole: bool) -> float:
    """Least servers in (lower, upper] with predicate; predicate(upper) holds."""
    if whole:
        return float(_least_whole_between(lambda c: predicate(float(c)), int(lower), int(upper)))
    return _least_real(predicate, lower, upper)


def _servers_needed(side: _Side, surge: float, level: float, whole: bool, max_servers: float) -> float:
    """Least servers whose worst stable state fails at most ``level`` under ``surge``."""
    if side.base_load == 0:
        return 0.0
    at_level, _, high_amp = _amplification_bounds(side.policy, level)
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
        f"infeasible: target={level:g} needs more than max_servers={max_servers:g} servers{need} ({what})"
    )


def _largest_surge(side: _Side, servers: float, level: float, max_surge: float) -> float:
    """Sup of surges k with the worst stable state at most ``level`` (inf: every surge)."""
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
    return _greatest_real(lambda k: side.worst_at_most(servers, k, level), lower, upper)


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
    return _greatest_real(lambda k: side.healthy_at_most(servers, k, level), min(start, upper), upper)


# ----------------------------------------------------------------------------------------
# Splitting the load
# ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SplitLoads:
    """Base load (Erlangs) and, for Engset, sources of each side and of the pooled system."""

    offered_load: float
    new_share: float
    old_load: float
    new_load: float
    old_sources: int | None = None
    new_sources: int | None = None
    sources: int | None = None


def split_loads(offered_load, new_share, capacity=None) -> SplitLoads:
    """Divide the base load (and Engset's sources) between the old and the new side.

    For Engset the share divides the sources, ``round(new_share * N)`` to the new side, and
    each side's load is its sources' traffic ``a * N_side / N`` (so it follows the rounding).

    Examples
    --------
    >>> split_loads(100.0, 0.25)
    SplitLoads(offered_load=100.0, new_share=0.25, old_load=75.0, new_load=25.0, old_sources=None, new_sources=None, sources=None)
    """
    model = _capacity(capacity)
    a = _finite_number("offered_load", offered_load, minimum=0.0)
    f = _finite_number("new_share", new_share)
    if not 0.0 <= f <= 1.0:
        raise ValueError(f"new_share must be in [0, 1], got {new_share!r}")
    if model.kind != "engset":
        return SplitLoads(a, f, a * (1.0 - f), a * f)
    total = model.sources
    if a >= total:
        raise ValueError(
            f"offered_load must be < capacity.sources for engset (N sources offer less than N Erlangs), "
            f"got offered_load={offered_load!r} with sources={total}"
        )
    new_sources = int(math.floor(f * total + 0.5))
    old_sources = total - new_sources
    return SplitLoads(a, f, a * old_sources / total, a * new_sources / total, old_sources, new_sources, total)


def _surge_value(name: str, value) -> float:
    return _finite_number(name, value, minimum=1.0)


def _target(value) -> float:
    return float(probability("target", value, open_interval=True))


def _side_surges(loads: SplitLoads, surge: float, surge_on: str, model: CapacityModel) -> tuple[float, float, float]:
    """Surge multiple of the old side, the new side and the pooled system."""
    if surge_on not in SURGE_SIDES:
        raise ValueError(f"surge_on must be one of {SURGE_SIDES}, got {surge_on!r}")
    if surge_on == "both":
        return surge, surge, surge
    if model.kind == "engset" and surge != 1.0:
        raise ValueError(
            f"surge_on={surge_on!r} with engset: the pooled system would have two source classes "
            "(surged and not), which this module does not model; use surge_on='both'"
        )
    old = surge if surge_on == "old" else 1.0
    new = surge if surge_on == "new" else 1.0
    a = loads.offered_load
    pooled = (old * loads.old_load + new * loads.new_load) / a if a > 0 else 1.0
    return old, new, pooled


def _side(model, policy, load, sources) -> _Side:
    model_side = model if sources is None else model.with_sources(max(int(sources), 1))
    return _Side(model_side, policy, float(load), None if sources is None else float(sources))


def _max_servers(value) -> float:
    number = _finite_number("max_servers", value, minimum=1.0)
    return float(number)


# ----------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------

def _fmt(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.6g}"
    return repr(value)


def _headroom(servers: float, load: float) -> float:
    # NaN by definition where a side carries no load: a ratio to zero load has no meaning.
    return servers / load - 1.0 if load > 0 else math.nan


@dataclass(frozen=True)
class SideState:
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
        note = " (worst of several stable states)" if self.metastable else ""
        return (f"SideState(servers={_fmt(self.servers)}, base_load={_fmt(self.base_load)}, surge={_fmt(self.surge)}, "
                f"failure={self.failure:.6g}{note}, state={self.state!r}, healthy_failure={self.healthy_failure:.6g}, "
                f"amplification={self.amplification:.6g}, headroom={_fmt(self.headroom)})")


def _state_from(side: _Side, servers: float, surge: float) -> SideState:
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


@dataclass(frozen=True)
class SplitFailure:
    """What each side (and the same capacity pooled) sees under a surge."""

    old: SideState
    new: SideState
    pooled: SideState

    def __repr__(self) -> str:
        return f"SplitFailure(\n  old={self.old!r},\n  new={self.new!r},\n  pooled={self.pooled!r})"


@dataclass(frozen=True)
class SideRequirement:
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

    def __repr__(self) -> str:
        extra = f", sources={self.sources}" if self.sources is not None else ""
        meta = ", metastable" if self.metastable else ""
        return (f"SideRequirement({self.side}: servers={_fmt(self.servers)}, base_load={_fmt(self.base_load)}, "
                f"surge={_fmt(self.surge)}, headroom={_fmt(self.headroom)}, failure={self.failure:.4g}, "
                f"state={self.state!r}{meta}{extra})")


@dataclass(frozen=True)
class AutoscalingOutcome:
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

    def __repr__(self) -> str:
        return (f"AutoscalingOutcome(max_scale={self.max_scale:g}, reaction_time={self.reaction_time:g}, "
                f"base_servers={_fmt(self.base_servers)}, scaled_servers={_fmt(self.scaled_servers)}, "
                f"servers_without_autoscaling={_fmt(self.servers_without_autoscaling)}, "
                f"transient_failure={self.transient_failure:.4g} ({self.transient_state}), "
                f"scaled_failure={self.scaled_failure:.4g}, "
                f"failed_attempts_during_reaction={self.failed_attempts_during_reaction:.6g})")


@dataclass(frozen=True)
class SplitRequirement:
    """Servers each side and the pooled system need, and the migration tax.

    ``old``, ``new`` and ``pooled`` are :class:`SideRequirement`; ``autoscaling`` the new side's
    :class:`AutoscalingOutcome` when it autoscales (the tax compares fixed capacities).
    """

    offered_load: float
    new_share: float
    surge: float
    surge_on: str
    target: float
    capacity: CapacityModel
    retry_policy: str
    old: SideRequirement
    new: SideRequirement
    pooled: SideRequirement
    autoscaling: AutoscalingOutcome | None = None

    @property
    def split_servers(self) -> float:
        return self.old.servers + self.new.servers

    @property
    def tax_servers(self) -> float:
        """Migration tax: split minus pooled servers."""
        return self.split_servers - self.pooled.servers

    @property
    def tax_share(self) -> float:
        """Migration tax as a share of the pooled requirement."""
        return self.tax_servers / self.pooled.servers if self.pooled.servers > 0 else 0.0

    @property
    def split_headroom(self) -> float:
        return _headroom(self.split_servers, self.offered_load)

    def as_row(self) -> dict:
        """One flat dict (a DataFrame row)."""
        row = {
            "offered_load": self.offered_load, "new_share": self.new_share, "surge": self.surge,
            "surge_on": self.surge_on, "target": self.target, "capacity": repr(self.capacity),
            "retry_policy": self.retry_policy,
        }
        for side in (self.old, self.new, self.pooled):
            name = side.side
            row.update({
                f"{name}_load": side.base_load, f"{name}_servers": side.servers,
                f"{name}_headroom": side.headroom, f"{name}_failure": side.failure,
                f"{name}_state": side.state, f"{name}_metastable": side.metastable,
            })
        row.update({
            "split_servers": self.split_servers, "split_headroom": self.split_headroom,
            "tax_servers": self.tax_servers, "tax_share": self.tax_share,
        })
        if self.autoscaling is not None:
            row.update({f"autoscaling_{key}": value for key, value in asdict(self.autoscaling).items()})
        return row

    def __repr__(self) -> str:
        lines = [
            f"SplitRequirement(offered_load={self.offered_load:g}, new_share={self.new_share:g}, surge={self.surge:g} "
            f"on {self.surge_on}, target={self.target:g}, {self.capacity!r}, retry_policy={self.retry_policy}",
            f"  old={self.old!r}", f"  new={self.new!r}", f"  pooled={self.pooled!r}",
            f"  split_servers={_fmt(self.split_servers)}, tax_servers={_fmt(self.tax_servers)}, "
            f"tax_share={self.tax_share:.4g}",
        ]
        if self.autoscaling is not None:
            lines.append(f"  autoscaling={self.autoscaling!r}")
        return "\n".join(lines) + ")"


@dataclass(frozen=True)
class MigrationTax:
    """Split against pooled capacity, in servers, as a share, and as safety margins.

    The safety margin of a system is its servers minus its surged base load (``surge x load``
    before retries). ``margin_ratio`` = split margin / pooled margin (about ``sqrt(2)`` for an
    even split in the Halfin-Whitt regime); NaN where the pooled margin is not positive (a loss
    system far above its load sizes below it, and a ratio of margins means nothing there).
    """

    offered_load: float
    new_share: float
    surge: float
    split_servers: float
    pooled_servers: float
    tax_servers: float
    tax_share: float
    split_margin: float
    pooled_margin: float
    margin_ratio: float

    def __repr__(self) -> str:
        return (f"MigrationTax(offered_load={self.offered_load:g}, new_share={self.new_share:g}, surge={self.surge:g}, "
                f"split_servers={_fmt(self.split_servers)}, pooled_servers={_fmt(self.pooled_servers)}, "
                f"tax_servers={_fmt(self.tax_servers)}, tax_share={self.tax_share:.4g}, "
                f"margin_ratio={_fmt(self.margin_ratio)})")


@dataclass(frozen=True)
class SurgeRange:
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

    def __repr__(self) -> str:
        return (f"SurgeRange(observed {self.observed_low:g}..{self.observed_high:g} at servers={_fmt(self.servers)}, "
                f"base_load={_fmt(self.base_load)}: surge {self.surge_low:.6g}..{self.surge_high:.6g}, offered load "
                f"{self.offered_load_low:.6g}..{self.offered_load_high:.6g} Erlangs, consistent={self.consistent})")


@dataclass(frozen=True)
class HeadroomRange:
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

    def __repr__(self) -> str:
        return (f"HeadroomRange(observed {self.observed_low:g}..{self.observed_high:g} under surge "
                f"{self.surge_low:g}..{self.surge_high:g}: servers {_fmt(self.servers_low)}..{_fmt(self.servers_high)}, "
                f"headroom {self.headroom_low:.4g}..{self.headroom_high:.4g}, consistent={self.consistent})")


# ----------------------------------------------------------------------------------------
# Public functions: failure at given capacity
# ----------------------------------------------------------------------------------------

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
    c, a, k = np.broadcast_arrays(c, a, k)
    shape = c.shape
    c, a, k = (np.atleast_1d(x).ravel().astype(float) for x in (c, a, k))
    n = _sources_for(model, a)
    out = np.zeros(c.shape)
    active = a * k > 0
    if active.any():
        e = _extremes(model, policy, c[active], a[active], None if n is None else n[active], k[active])
        out[active] = e["worst"]
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
    c = float(as_array("servers", servers, minimum=0.0))
    a = float(as_array("base_load", base_load, minimum=0.0))
    k = _finite_number("surge", surge, minimum=0.0)
    _check_servers(model, np.array([c]))
    n = _sources_for(model, np.array([a]))
    return _state_from(_Side(model, policy, a, None if n is None else float(n[0])), c, k)


def split_failure(old_servers, new_servers, offered_load, new_share, surge=1.0, *, surge_on="both",
                  capacity=None, retry_policy=None) -> SplitFailure:
    """What each side sees at given capacities under a surge, and what the same servers pooled see.

    Examples
    --------
    >>> r = split_failure(60, 60, 100.0, 0.5, 1.5)
    >>> r.old.failure > r.pooled.failure
    True
    """
    model = _capacity(capacity)
    policy = _policy(retry_policy, model)
    loads = split_loads(offered_load, new_share, model)
    k = _surge_value("surge", surge)
    k_old, k_new, k_pool = _side_surges(loads, k, surge_on, model)
    c_old = float(as_array("old_servers", old_servers, minimum=0.0))
    c_new = float(as_array("new_servers", new_servers, minimum=0.0))
    _check_servers(model, np.array([c_old, c_new]))
    old = _side(model, policy, loads.old_load, loads.old_sources)
    new = _side(model, policy, loads.new_load, loads.new_sources)
    pooled = _side(model, policy, loads.offered_load, loads.sources)
    return SplitFailure(_state_from(old, c_old, k_old), _state_from(new, c_new, k_new),
                        _state_from(pooled, c_old + c_new, k_pool))


# ----------------------------------------------------------------------------------------
# Public functions: requirements and the migration tax
# ----------------------------------------------------------------------------------------

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
    a = _finite_number("base_load", base_load, minimum=0.0)
    eps = _target(target)
    k = _surge_value("surge", surge)
    n = _sources_for(model, np.array([a]))
    side = _Side(model, policy, a, None if n is None else float(n[0]))
    return _servers_needed(side, k, eps, _whole(model, whole_servers), _max_servers(max_servers))


def pooled_requirement(offered_load, target, surge=1.0, *, capacity=None, retry_policy=None, whole_servers=True,
                       max_servers=DEFAULT_MAX_SERVERS) -> SideRequirement:
    """Servers one pooled system needs for the whole load under the surge.

    Examples
    --------
    >>> pooled_requirement(100.0, 0.01, 1.5).servers
    170.0
    """
    model = _capacity(capacity)
    policy = _policy(retry_policy, model)
    loads = split_loads(offered_load, 0.0, model)
    eps = _target(target)
    k = _surge_value("surge", surge)
    side = _side(model, policy, loads.offered_load, loads.sources)
    return _requirement("pooled", side, k, eps, _whole(model, whole_servers), _max_servers(max_servers), loads.sources)


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


def split_requirement(offered_load, new_share, target, surge=1.0, *, surge_on="both", capacity=None,
                      retry_policy=None, autoscaling=None, whole_servers=True,
                      max_servers=DEFAULT_MAX_SERVERS) -> SplitRequirement:
    """Servers the old side, the new side and one pooled system need to absorb a surge.

    Parameters
    ----------
    offered_load : float
        Total base load, Erlangs (> 0).
    new_share : float
        Share of the load already on the new infrastructure, in [0, 1].
    target : float
        Most failure probability allowed in the worst stable state, in (0, 1).
    surge : float
        Multiple of the base request (new-connection) rate to absorb, >= 1.
    surge_on : {"both", "old", "new"}
        Which side the surge hits (the pooled system gets the sum).
    capacity : CapacityModel or str, optional
        Default Erlang B.
    retry_policy : retry policy, str or int, optional
        Default none.
    autoscaling : Autoscaling, optional
        The new side's autoscaler; the old side and the pooled system are fixed.
    whole_servers : bool
        False sizes with a continuous number of servers (Erlang B and C only), which removes
        the rounding from comparisons.
    max_servers : float
        Sizing beyond this is reported as infeasible (ValueError).

    Examples
    --------
    >>> r = split_requirement(200.0, 0.5, 0.01, surge=1.5)
    >>> r.old.servers, r.new.servers, r.pooled.servers, r.tax_servers
    (170.0, 170.0, 324.0, 16.0)
    """
    model = _capacity(capacity)
    policy = _policy(retry_policy, model)
    loads = split_loads(offered_load, new_share, model)
    if loads.offered_load <= 0:
        raise ValueError(f"offered_load must be > 0, got {offered_load!r}")
    eps = _target(target)
    k = _surge_value("surge", surge)
    whole = _whole(model, whole_servers)
    limit = _max_servers(max_servers)
    if autoscaling is not None and not isinstance(autoscaling, Autoscaling):
        raise ValueError(f"autoscaling must be an Autoscaling or None, got {autoscaling!r}")
    k_old, k_new, k_pool = _side_surges(loads, k, surge_on, model)
    old_side = _side(model, policy, loads.old_load, loads.old_sources)
    new_side = _side(model, policy, loads.new_load, loads.new_sources)
    pooled_side = _side(model, policy, loads.offered_load, loads.sources)
    old = _requirement("old", old_side, k_old, eps, whole, limit, loads.old_sources)
    new = _requirement("new", new_side, k_new, eps, whole, limit, loads.new_sources)
    pooled = _requirement("pooled", pooled_side, k_pool, eps, whole, limit, loads.sources)
    outcome = None
    if autoscaling is not None:
        outcome = _autoscaling_outcome(new_side, autoscaling, k_new, eps, new.servers, whole, limit)
    return SplitRequirement(
        offered_load=loads.offered_load, new_share=loads.new_share, surge=k, surge_on=surge_on, target=eps,
        capacity=model, retry_policy=_policy_label(policy), old=old, new=new, pooled=pooled, autoscaling=outcome,
    )


def migration_tax(offered_load, new_share, target, surge=1.0, *, surge_on="both", capacity=None, retry_policy=None,
                  whole_servers=True, max_servers=DEFAULT_MAX_SERVERS) -> MigrationTax:
    """The extra capacity a split needs over one pooled system, and the ratio of safety margins.

    Examples
    --------
    >>> t = migration_tax(1e4, 0.5, 0.2, capacity="erlang_c", whole_servers=False)
    >>> round(t.margin_ratio, 3)    # sqrt(2) = 1.414 in the Halfin-Whitt limit
    1.416
    """
    r = split_requirement(offered_load, new_share, target, surge, surge_on=surge_on, capacity=capacity,
                          retry_policy=retry_policy, whole_servers=whole_servers, max_servers=max_servers)
    surged = r.old.surge * r.old.base_load + r.new.surge * r.new.base_load
    split_margin = r.split_servers - surged
    pooled_margin = r.pooled.servers - r.pooled.surge * r.pooled.base_load
    ratio = split_margin / pooled_margin if pooled_margin > 0 else math.nan
    return MigrationTax(
        offered_load=r.offered_load, new_share=r.new_share, surge=r.surge, split_servers=r.split_servers,
        pooled_servers=r.pooled.servers, tax_servers=r.tax_servers, tax_share=r.tax_share,
        split_margin=split_margin, pooled_margin=pooled_margin, margin_ratio=ratio,
    )


# ----------------------------------------------------------------------------------------
# Public functions: inverse questions
# ----------------------------------------------------------------------------------------

def _single_side(servers, base_load, capacity, retry_policy):
    model = _capacity(capacity)
    policy = _policy(retry_policy, model)
    c = float(as_array("servers", servers, minimum=0.0))
    a = _finite_number("base_load", base_load, minimum=0.0)
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
    limit = _finite_number("max_surge", max_surge, minimum=1.0)
    return _largest_surge(side, c, eps, limit)


def _interval(name: str, value, *, open_unit: bool) -> tuple[float, float]:
    values = [value] if np.ndim(value) == 0 else list(value)
    if len(values) not in (1, 2):
        raise ValueError(f"{name} must be a number or a (low, high) pair, got {value!r}")
    if open_unit:
        numbers = [float(probability(name, v, open_interval=True)) for v in values]
    else:
        numbers = [_finite_number(name, v, minimum=1.0) for v in values]
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
    limit = _finite_number("max_surge", max_surge, minimum=1.0)
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
    a = _finite_number("base_load", base_load, minimum=0.0)
    if a <= 0:
        raise ValueError(f"base_load must be > 0, got {base_load!r}")
    low, high = _interval("observed", observed, open_unit=True)
    k_low, k_high = _interval("surge", surge, open_unit=False)
    whole = _whole(model, whole_servers)
    limit = _max_servers(max_servers)
    n = _sources_for(model, np.array([a]))
    side = _Side(model, policy, a, None if n is None else float(n[0]))

    # fewest servers whose healthiest state fails at most `high` under the smallest surge
    at_high, low_amp, _ = _amplification_bounds(policy, high)
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


# ----------------------------------------------------------------------------------------
# Sweeps (tidy DataFrames)
# ----------------------------------------------------------------------------------------

def _sequence(name: str, value) -> list:
    if isinstance(value, (str, bytes)) or np.ndim(value) == 0:
        return [value]
    values = list(value) if isinstance(value, (list, tuple)) else list(np.asarray(value).ravel())
    if not values:
        raise ValueError(f"{name} must not be empty")
    return values


def headroom_sweep(offered_load, new_share, target, surge=1.0, *, surge_on="both", capacity=None, retry_policy=None,
                   autoscaling=None, whole_servers=True, max_servers=DEFAULT_MAX_SERVERS):
    """Split and pooled requirements over a grid of parameters: one row per point.

    ``offered_load``, ``new_share``, ``target``, ``surge``, ``surge_on`` and ``retry_policy``
    may each be one value or a sequence (every combination is computed; give policies as a
    list, e.g. ``[None, "fixed:3", "budget:0.1"]``). Columns: the inputs, then for each of
    ``old``, ``new``, ``pooled``: ``_load``, ``_servers``, ``_headroom``, ``_failure``,
    ``_state``, ``_metastable``; then ``split_servers``, ``split_headroom``, ``tax_servers``,
    ``tax_share`` (and ``autoscaling_*`` with autoscaling). A point whose target cannot be met
    raises ``ValueError``.

    Examples
    --------
    >>> frame = headroom_sweep(100.0, [0.0, 0.5], 0.01, [1.0, 2.0])
    >>> frame[["new_share", "surge", "tax_servers"]].to_string(index=False)
    ' new_share  surge  tax_servers\\n       0.0    1.0          0.0\\n       0.0    2.0          0.0\\n       0.5    1.0         11.0\\n       0.5    2.0         13.0'
    """
    import pandas as pd

    policies = [None] if retry_policy is None else (
        list(retry_policy) if isinstance(retry_policy, (list, tuple)) else [retry_policy])
    rows = []
    for load in _sequence("offered_load", offered_load):
        for share in _sequence("new_share", new_share):
            for eps in _sequence("target", target):
                for k in _sequence("surge", surge):
                    for side in _sequence("surge_on", surge_on):
                        for policy in policies:
                            r = split_requirement(load, share, eps, k, surge_on=side, capacity=capacity,
                                                  retry_policy=policy, autoscaling=autoscaling,
                                                  whole_servers=whole_servers, max_servers=max_servers)
                            rows.append(r.as_row())
    return pd.DataFrame(rows)


def failure_sweep(base_load, headroom, surge, *, capacity=None, retry_policy=None, target=None, whole_servers=True):
    """Worst-state failure of one side over headroom x surge: one row per point (for heatmaps).

    Servers are ``base_load * (1 + headroom)``, rounded to the nearest whole number when
    ``whole_servers`` (the ``servers`` and ``headroom`` columns give the values used). Columns:
    ``base_load, headroom_asked, servers, headroom, surge, failure, healthy_failure, state,
    metastable`` and, with a ``target``, ``meets_target``.

    Examples
    --------
    >>> f = failure_sweep(100.0, [0.0, 0.5], [1.0, 2.0])
    >>> f.shape
    (4, 9)
    """
    import pandas as pd

    model = _capacity(capacity)
    policy = _policy(retry_policy, model)
    a = _finite_number("base_load", base_load, minimum=0.0)
    if a <= 0:
        raise ValueError(f"base_load must be > 0, got {base_load!r}")
    h = np.atleast_1d(as_array("headroom", headroom, minimum=-1.0)).ravel()
    k = np.atleast_1d(as_array("surge", surge, minimum=0.0)).ravel()
    whole = _whole(model, whole_servers)
    eps = None if target is None else _target(target)
    servers = a * (1.0 + h)
    if whole:
        servers = np.floor(servers + 0.5)
    c_grid, k_grid = np.meshgrid(servers, k, indexing="ij")
    h_grid = np.broadcast_to(h[:, None], c_grid.shape)
    c_flat, k_flat = c_grid.ravel(), k_grid.ravel()
    a_flat = np.full(c_flat.shape, a)
    n = _sources_for(model, a_flat)
    e = _extremes(model, policy, c_flat, a_flat, n, k_flat)
    frame = pd.DataFrame({
        "base_load": a_flat, "headroom_asked": h_grid.ravel(), "servers": c_flat, "headroom": c_flat / a - 1.0,
        "surge": k_flat, "failure": e["worst"], "healthy_failure": e["healthy"],
        "state": e["state"].astype(str), "metastable": e["stable_states"] >= 2,
    })
    if eps is not None:
        frame["meets_target"] = frame["failure"] <= eps
    return frame
