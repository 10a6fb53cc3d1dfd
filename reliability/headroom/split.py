"""Split against pooled capacity: the loads of each side, what each sees, what each needs.

During a migration a share ``f`` of the base load runs on the new side and ``1 - f`` on the
old, and load cannot move between them; each side must absorb a surge on its own.
:func:`split_failure` says what each side (and the same servers pooled) sees at given
capacities, :func:`split_requirement` and :func:`pooled_requirement` what each needs, and
:func:`migration_tax` the difference.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .._records import Record, format_value
from .._validate import ArgumentTypeError, describe, number
from .capacity import CapacityModel, _capacity, _check_servers
from .side import SideState, _headroom, _policy, _policy_label, _Side, _state_from
from .sizing import (
    DEFAULT_MAX_SERVERS,
    Autoscaling,
    AutoscalingOutcome,
    SideRequirement,
    _autoscaling_outcome,
    _max_servers,
    _requirement,
    _surge_value,
    _target,
    _whole,
)

__all__ = ["SURGE_SIDES", "SplitLoads", "SplitFailure", "SplitRequirement", "MigrationTax", "split_loads",
           "split_failure", "pooled_requirement", "split_requirement", "migration_tax"]

SURGE_SIDES = ("both", "old", "new")


@dataclass(frozen=True, repr=False)
class SplitLoads(Record):
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
    SplitLoads(offered_load=100, new_share=0.25, old_load=75, new_load=25, old_sources=None, new_sources=None, sources=None)
    """
    model = _capacity(capacity)
    a = number("offered_load", offered_load, minimum=0.0)
    f = number("new_share", new_share)
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


def _side_surges(loads: SplitLoads, surge: float, surge_on: str, model: CapacityModel) -> tuple[float, float, float]:
    """Surge multiple of the old side, the new side and the pooled system."""
    if not isinstance(surge_on, str):
        raise ArgumentTypeError(f"surge_on must be one of {SURGE_SIDES}, got {describe(surge_on)}")
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


@dataclass(frozen=True)
class SplitFailure:
    """What each side (and the same capacity pooled) sees under a surge (one side per line)."""

    old: SideState
    new: SideState
    pooled: SideState

    def __repr__(self) -> str:
        return f"SplitFailure(\n  old={self.old!r},\n  new={self.new!r},\n  pooled={self.pooled!r})"


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
    c_old = number("old_servers", old_servers, minimum=0.0)
    c_new = number("new_servers", new_servers, minimum=0.0)
    _check_servers(model, np.array([c_old, c_new]))
    old = _side(model, policy, loads.old_load, loads.old_sources)
    new = _side(model, policy, loads.new_load, loads.new_sources)
    pooled = _side(model, policy, loads.offered_load, loads.sources)
    return SplitFailure(_state_from(old, c_old, k_old), _state_from(new, c_new, k_new),
                        _state_from(pooled, c_old + c_new, k_pool))


@dataclass(frozen=True, repr=False)
class SplitRequirement(Record):
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
        # the totals (split servers, tax) are properties: shown after the three requirements
        lines = [
            f"SplitRequirement(offered_load={format_value(self.offered_load)}, new_share={format_value(self.new_share)}, "
            f"surge={format_value(self.surge)} on {self.surge_on}, target={format_value(self.target)}, "
            f"{self.capacity!r}, retry_policy={self.retry_policy}",
            f"  old={self.old!r}", f"  new={self.new!r}", f"  pooled={self.pooled!r}",
            f"  split_servers={format_value(self.split_servers)}, tax_servers={format_value(self.tax_servers)}, "
            f"tax_share={format_value(self.tax_share)}",
        ]
        if self.autoscaling is not None:
            lines.append(f"  autoscaling={self.autoscaling!r}")
        return "\n".join(lines) + ")"


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
    try:
        return _requirement("pooled", side, k, eps, _whole(model, whole_servers), _max_servers(max_servers),
                            loads.sources)
    except ValueError as error:
        raise ValueError(f"offered_load={loads.offered_load:g}: {error}") from None


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
        raise ArgumentTypeError(f"autoscaling must be an Autoscaling or None, got {describe(autoscaling)}")
    k_old, k_new, k_pool = _side_surges(loads, k, surge_on, model)
    old_side = _side(model, policy, loads.old_load, loads.old_sources)
    new_side = _side(model, policy, loads.new_load, loads.new_sources)
    pooled_side = _side(model, policy, loads.offered_load, loads.sources)
    try:
        old = _requirement("old", old_side, k_old, eps, whole, limit, loads.old_sources)
        new = _requirement("new", new_side, k_new, eps, whole, limit, loads.new_sources)
        pooled = _requirement("pooled", pooled_side, k_pool, eps, whole, limit, loads.sources)
    except ValueError as error:  # a side's sizing names its own base load: say which input it came from
        raise ValueError(f"offered_load={loads.offered_load:g} with new_share={loads.new_share:g}: {error}") from None
    outcome = None
    if autoscaling is not None:
        outcome = _autoscaling_outcome(new_side, autoscaling, k_new, eps, new.servers, whole, limit)
    return SplitRequirement(
        offered_load=loads.offered_load, new_share=loads.new_share, surge=k, surge_on=surge_on, target=eps,
        capacity=model, retry_policy=_policy_label(policy), old=old, new=new, pooled=pooled, autoscaling=outcome,
    )


@dataclass(frozen=True, repr=False)
class MigrationTax(Record):
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
