"""What a server is and what counts as a failure: the capacity models, without retries.

:class:`CapacityModel` names the queueing model of a side (Erlang B, Engset, Erlang C or
Erlang A) and its failure measure; :func:`_failure` is its failure probability ``F(c, x)``
under a multiplier of the request rate (surge x retry amplification), and the closed-form
inverses of :mod:`reliability.queues` size it without retry feedback.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from .._validate import ArgumentTypeError, as_array, broadcast, describe, is_scalar, number, output, whole
from ..queues import (
    engset,
    erlang_a,
    erlang_b,
    max_load_for_blocking,
    max_load_for_wait,
    servers_for_blocking,
    servers_for_wait,
    wait_sf,
)
from ..queues.search import greatest_real, least_real, least_whole_between

__all__ = ["KINDS", "CapacityModel"]

KINDS = ("erlang_b", "engset", "erlang_c", "erlang_a")
#: Relative precision of bisections on a continuous number of servers or a surge multiple.
RELATIVE_PRECISION = 1e-11


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
        if not isinstance(self.kind, str):
            raise ArgumentTypeError(f"capacity.kind must be one of {KINDS}, got {describe(self.kind)}")
        if self.kind not in KINDS:
            raise ValueError(f"capacity.kind must be one of {KINDS}, got {self.kind!r}")
        if self.metric is not None and not isinstance(self.metric, str):
            raise ArgumentTypeError(f"capacity.metric must be a string or None, got {describe(self.metric)}")
        if self.kind == "engset":
            object.__setattr__(self, "sources", whole("capacity.sources", self.sources, minimum=1))
        elif self.sources is not None:
            raise ValueError(f"capacity.sources is for engset only, got sources={self.sources!r} with {self.kind}")
        wait_time = number("capacity.wait_time", self.wait_time, minimum=0.0)
        if wait_time > 0 and self.kind != "erlang_c":
            raise ValueError(
                f"capacity.wait_time applies to erlang_c only (P(W > t) of {self.kind} is not modelled), "
                f"got wait_time={self.wait_time!r}"
            )
        service_rate = number("capacity.service_rate", self.service_rate, minimum=0.0, strict=True)
        theta = number("capacity.abandonment_rate", self.abandonment_rate, minimum=0.0)
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
        if not isinstance(text, str):
            raise ArgumentTypeError(f"capacity must be a string such as 'erlang_b', got {describe(text)}")
        if not text.strip():
            raise ValueError(f"capacity must be a non-empty string such as 'erlang_b', got {text!r}")
        name, *args = [part.strip() for part in text.strip().lower().split(":")]
        try:
            if name == "erlang_b" and not args:
                return cls.erlang_b()
            if name == "engset" and len(args) == 1:
                sources = float(args[0])
                if sources != math.floor(sources):
                    raise ValueError
                return cls.engset(int(sources))
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
        c, a = broadcast(servers=c, load=a)
        if n is not None:
            n = np.broadcast_to(n, a.shape)
        return output(_failure(self, c, a, n, np.ones(c.shape)), scalar)


def _capacity(capacity) -> CapacityModel:
    if capacity is None:
        return CapacityModel()
    if isinstance(capacity, CapacityModel):
        return capacity
    if isinstance(capacity, str):
        return CapacityModel.parse(capacity)
    raise ArgumentTypeError(f"capacity must be a CapacityModel or a string such as 'erlang_b', got {describe(capacity)}")



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


# ----------------------------------------------------------------------------------------
# Sizing without retry feedback (the closed-form inverses)
# ----------------------------------------------------------------------------------------

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
        return float(least_whole_between(meets, -1, int(n)))
    else:
        # abandonment only shortens the queue: the Erlang C answer for P(wait) is an upper bound
        high = int(servers_for_wait(x, level))
        for _ in range(64):  # pragma: no cover - guarded, not expected: the Erlang C bound holds
            if meets(high):
                return float(least_whole_between(meets, -1, high))
            high = 2 * high + 1
        raise ValueError(f"no servers up to {high} meet target={level:g} at load {x:g} for {model!r}")
    if whole or whole_answer == 0:
        return whole_answer
    return least_real(meets, max(whole_answer - 1.0, 0.0), whole_answer, relative_precision=RELATIVE_PRECISION)


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
    return greatest_real(meets, 0.0, high, relative_precision=RELATIVE_PRECISION)
