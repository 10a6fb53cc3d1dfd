"""Events: what people did during an incident, each a component of the time-stepped model.

A rollback acts on the surge it names (:class:`~reliability.dynamics.mechanisms.Surge`); load
shedding and capacity added shape the per-step profile of the platforms they apply to
(``modify(profile, times)``). Events without an effect on the model (a deploy that changed
nothing, markers such as "recovered") need no component.

Examples
--------
>>> import numpy as np
>>> Rollback("s", start=0.0, duration=30.0, stages=3).removed(np.array([5.0, 15.0, 25.0])).tolist()
[0.3333333333333333, 0.6666666666666666, 1.0]
>>> Rollback("s", start=0.0, duration=20.0).removed(np.array([5.0, 25.0])).tolist()
[0.25, 1.0]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._checks import MAX_MULTIPLE, MAX_SERVERS, check_number as _number, check_platforms, check_text, check_times, check_whole, check_window

__all__ = ["Rollback", "LoadShedding", "CapacityAdded", "Failover"]


@dataclass(frozen=True)
class Rollback:
    """Undo ``share`` of the excess of the surge named ``surge``, from ``start`` over ``duration`` s.

    ``stages=0``: linearly (a fleet-wide deployment is not instantaneous); ``stages=n``: in ``n``
    equal slices, the first at ``start`` and one every ``duration / n`` s after.
    """

    surge: str
    start: float
    duration: float = 0.0
    stages: int = 0
    share: float = 1.0

    def __post_init__(self):
        check_text("Rollback", "surge", self.surge)
        object.__setattr__(self, "start", _number("Rollback", "start", self.start, allow_inf=True))
        object.__setattr__(self, "duration", _number("Rollback", "duration", self.duration))
        object.__setattr__(self, "stages", check_whole("Rollback", "stages", self.stages, 0, 10_000))
        object.__setattr__(self, "share", _number("Rollback", "share", self.share, maximum=1.0))

    @property
    def end(self) -> float:
        return self.start + self.duration

    def removed(self, times):
        """Share of the surge's excess undone at ``times``."""
        with np.errstate(over="ignore", invalid="ignore", under="ignore"):
            # a duration of 1e-308 s is a step: the slope overflows and is clipped
            return self._removed(check_times("times", times) - self.start)

    def _removed(self, elapsed):
        started = elapsed >= 0
        if self.stages:
            slice_time = self.duration / self.stages
            if slice_time > 0:
                done = np.minimum(np.floor(np.where(started, elapsed, 0.0) / slice_time) + 1.0, self.stages)
            else:
                done = np.full(elapsed.shape, float(self.stages))
            progress = done / self.stages
        elif self.duration > 0:
            progress = np.clip(elapsed / self.duration, 0.0, 1.0)
        else:
            progress = np.ones(elapsed.shape)
        return np.where(started, self.share * progress, 0.0)


@dataclass(frozen=True)
class LoadShedding:
    """Refuse ``share`` of the new requests at the front door on [start, until).

    Shed requests never reach the platform; they count as ``shed`` and as failed requests.
    Several sheddings multiply what they let through.

    Examples
    --------
    >>> import numpy as np
    >>> LoadShedding(0.4, start=10.0, until=20.0).kept(np.array([5.0, 15.0])).tolist()
    [1.0, 0.6]
    """

    share: float
    start: float = 0.0
    until: float = math.inf
    platforms: Any = None

    def __post_init__(self):
        object.__setattr__(self, "share", _number("LoadShedding", "share", self.share, maximum=1.0))
        object.__setattr__(self, "start", _number("LoadShedding", "start", self.start))
        object.__setattr__(self, "until", _number("LoadShedding", "until", self.until, allow_inf=True))
        check_window("LoadShedding", self.start, self.until, end_name="until")
        object.__setattr__(self, "platforms", check_platforms("LoadShedding", self.platforms))

    def applies_to(self, platform: str) -> bool:
        return self.platforms is None or platform in self.platforms

    def kept(self, times):
        times = check_times("times", times)
        on = (times >= self.start) & (times < self.until)
        return np.where(on, 1.0 - self.share, 1.0)

    def modify(self, profile, times) -> None:
        profile.scale("kept", self.kept(times))


@dataclass(frozen=True)
class CapacityAdded:
    """More servers in service from ``at``: ``servers`` of them, or ``share`` x the platform's servers.

    A manual scale-out or a new fleet. Added servers are routed to at once and are not probed by
    health checks. Give exactly one of ``servers`` and ``share``.

    Examples
    --------
    >>> CapacityAdded(2, at=60.0).servers, CapacityAdded(share=0.5).share
    (2.0, 0.5)
    """

    servers: float | None = None
    at: float = 0.0
    share: float | None = None
    platforms: Any = None

    def __post_init__(self):
        if self.servers is not None:
            object.__setattr__(self, "servers", _number("CapacityAdded", "servers", self.servers, strict=True,
                                                        maximum=MAX_SERVERS))
        if self.share is not None:
            object.__setattr__(self, "share", _number("CapacityAdded", "share", self.share, strict=True,
                                                      maximum=MAX_MULTIPLE))
        if (self.servers is None) == (self.share is None):
            raise ValueError(f"CapacityAdded needs exactly one of servers and share, got servers={self.servers!r}, "
                             f"share={self.share!r}")
        object.__setattr__(self, "at", _number("CapacityAdded", "at", self.at))
        object.__setattr__(self, "platforms", check_platforms("CapacityAdded", self.platforms))

    def applies_to(self, platform: str) -> bool:
        return self.platforms is None or platform in self.platforms

    def modify(self, profile, times) -> None:
        amount = self.servers if self.servers is not None else self.share * profile.servers
        profile.add("added_servers", np.where(check_times("times", times) >= self.at, amount, 0.0))


@dataclass(frozen=True)
class Failover:
    """From ``at``, ``share`` of the load of platform ``source`` moves to platform ``target``.

    The source's services keep sending the rest; on the target, each moved service appears under
    its own name with ``share`` x its base rate (not multiplied by the source's surges). The
    target's clients' retry budgets count the moved services at their full base rate.

    Examples
    --------
    >>> Failover(0.5, at=60.0, source="a", target="b").moved([30.0, 90.0]).tolist()
    [0.0, 0.5]
    """

    share: float
    at: float
    source: str
    target: str

    def __post_init__(self):
        object.__setattr__(self, "share", _number("Failover", "share", self.share, maximum=1.0))
        object.__setattr__(self, "at", _number("Failover", "at", self.at))
        check_text("Failover", "source", self.source)
        check_text("Failover", "target", self.target)
        if self.source == self.target:
            raise ValueError(f"Failover.target must differ from source, got {self.target!r} for both")

    @property
    def platforms(self) -> tuple[str, str]:
        return (self.source, self.target)

    def applies_to(self, platform: str) -> bool:
        return platform == self.source

    def moved(self, times):
        """Share of the source's load served by the target at ``times``."""
        return np.where(check_times("times", times) >= self.at, self.share, 0.0)

    def modify(self, profile, times) -> None:
        profile.scale("load_share", 1.0 - self.moved(times))
