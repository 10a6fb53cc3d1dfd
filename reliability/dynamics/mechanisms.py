"""Mechanisms: what goes wrong, each a component of the time-stepped model.

A mechanism either shapes the per-step :class:`~reliability.dynamics.profile.StepProfile` of the
platforms it applies to (``modify(profile, times)``: surges, capacity loss, contention) or sets how
a platform serves and who retries (read once when the platform's run is built: connection
ceiling, retry storm). ``platforms=None`` applies a component to every platform.

Examples
--------
>>> import numpy as np
>>> surge = Surge("deploy", target="requests", multiple=3.0, start=10.0, end=20.0)
>>> surge.shape(np.array([5.0, 15.0, 25.0])).tolist()
[0.0, 1.0, 0.0]
>>> CapacityLoss(share=0.5, start=0.0, ramp=10.0).lost(np.array([5.0, 20.0])).tolist()
[0.25, 0.5]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validate import as_array, broadcast
from ._checks import (MAX_MULTIPLE, MAX_SLOTS, check_choice, check_flag, check_instance, check_number as _number, check_platforms,
                      check_text, check_times, check_window)
from ..retry import Backoff, FixedRetries, parse_policy
from .parts import Clients

__all__ = ["Trigger", "trigger_shape", "Surge", "CapacityLoss", "ConnectionCeiling", "RetryStorm",
           "Contention", "RETRY_LAYERS"]

#: Who retries. ``end_user_clients``: users' apps retry whole requests after a client timeout
#: (users see each failed attempt); ``calling_service``: a service retries its calls to a backend
#: per request (users see only requests that fail after every retry); ``internal_nodes``: nodes
#: of a system retry calls to a shared internal service (users see failed requests).
RETRY_LAYERS = ("end_user_clients", "calling_service", "internal_nodes")


class _Applies:
    """``applies_to(name)``: True when the component acts on that platform."""

    def applies_to(self, platform: str) -> bool:
        return self.platforms is None or platform in self.platforms


@dataclass(frozen=True)
class Trigger:
    """What changed, from when, and how it was rolled back.

    From ``start`` until ``rollback_start`` the new-connection rate is
    ``new_connection_multiple`` times normal and the request rate ``request_multiple`` times
    normal. The rollback then returns both multiples linearly to 1 over ``rollback_duration``
    seconds (0: at once). ``rollback_start = inf`` means never.

    Examples
    --------
    >>> trigger = Trigger(new_connection_multiple=5.0, start=0.0, rollback_start=100.0, rollback_duration=100.0)
    >>> trigger.multiples([50.0, 150.0, 250.0])[1]
    array([5., 3., 1.])
    """

    new_connection_multiple: float = 1.0
    request_multiple: float = 1.0
    start: float = 0.0
    rollback_start: float = math.inf
    rollback_duration: float = 0.0

    def __post_init__(self):
        _number("Trigger", "new_connection_multiple", self.new_connection_multiple, maximum=MAX_MULTIPLE)
        _number("Trigger", "request_multiple", self.request_multiple, maximum=MAX_MULTIPLE)
        _number("Trigger", "start", self.start)
        _number("Trigger", "rollback_start", self.rollback_start, allow_inf=True)
        _number("Trigger", "rollback_duration", self.rollback_duration)
        if self.rollback_start < self.start:
            raise ValueError(
                f"Trigger.rollback_start must be >= start ({self.start!r}), got {self.rollback_start!r}")
        for name in ("new_connection_multiple", "request_multiple", "start", "rollback_start", "rollback_duration"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def end(self) -> float:
        """When the rollback is complete (inf if never)."""
        return self.rollback_start + self.rollback_duration

    def multiples(self, t):
        """``(request multiple, new-connection multiple)`` at times ``t`` (arrays)."""
        shape = trigger_shape(t, self.start, self.rollback_start, self.rollback_duration)
        return (1.0 + (self.request_multiple - 1.0) * shape,
                1.0 + (self.new_connection_multiple - 1.0) * shape)


def trigger_shape(t, start, rollback_start, rollback_duration):
    """1 while the trigger is on, falling linearly to 0 over the rollback, 0 outside.

    Every argument may be an array (they broadcast); ``rollback_start`` may be inf (never).

    Examples
    --------
    >>> trigger_shape([5.0, 15.0, 25.0], 0.0, 10.0, 10.0).tolist()
    [1.0, 0.5, 0.0]
    """
    t, start, rollback_start, duration = broadcast(
        t=check_times("t", t), start=check_times("start", start),
        rollback_start=as_array("rollback_start", rollback_start, allow_inf=True),
        rollback_duration=as_array("rollback_duration", rollback_duration, minimum=0.0))
    on = (t >= start) & (t < rollback_start)
    # a rollback of 1e-308 s is a step: the ramp's slope overflows to inf and is clipped
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        ramp = np.where(duration > 0, 1.0 - (t - rollback_start) / np.where(duration > 0, duration, 1.0), 0.0)
        ramping = (t >= rollback_start) & (t < rollback_start + duration)
    return np.where(on, 1.0, np.where(ramping, np.clip(ramp, 0.0, 1.0), 0.0))


def _window(times, start, end):
    return ((times >= start) & (times < end)).astype(np.float64)


@dataclass(frozen=True)
class Surge(_Applies):
    """A trigger: the request rate or the new-connection rate times ``multiple`` on [start, end).

    Several surges multiply (a second trigger is a second ``Surge`` with its own window and
    multiple). A :class:`~reliability.dynamics.events.Rollback` naming the surge lowers its excess
    ``multiple - 1`` from the rollback's start; ``end`` is when the trigger stops by itself
    (``inf``: never). ``rollbacks`` is filled by :func:`reliability.dynamics.run`.

    Examples
    --------
    >>> import numpy as np
    >>> Surge("s", "new_connections", 5.0).multiple_at(np.array([0.0, 1.0])).tolist()
    [5.0, 5.0]
    """

    name: str
    target: str = "new_connections"
    multiple: float = 1.0
    start: float = 0.0
    end: float = math.inf
    platforms: Any = None
    rollbacks: tuple = field(default=(), repr=False)

    def __post_init__(self):
        check_text("Surge", "name", self.name)
        check_choice("Surge", "target", self.target, ("new_connections", "requests"))
        object.__setattr__(self, "multiple", _number("Surge", "multiple", self.multiple, maximum=MAX_MULTIPLE))
        object.__setattr__(self, "start", _number("Surge", "start", self.start))
        object.__setattr__(self, "end", _number("Surge", "end", self.end, allow_inf=True))
        check_window("Surge", self.start, self.end)
        object.__setattr__(self, "platforms", check_platforms("Surge", self.platforms))
        object.__setattr__(self, "rollbacks", tuple(self.rollbacks))

    def shape(self, times):
        """1 while the trigger is on, less what its rollbacks have removed, 0 outside the window."""
        times = check_times("times", times)
        remaining = np.ones_like(times)
        for rollback in self.rollbacks:
            remaining = remaining * (1.0 - rollback.removed(times))
        return _window(times, self.start, self.end) * np.clip(remaining, 0.0, 1.0)

    def multiple_at(self, times):
        return 1.0 + (self.multiple - 1.0) * self.shape(times)

    @property
    def peak_multiple(self) -> float:
        return max(self.multiple, 1.0)

    def modify(self, profile, times) -> None:
        column = "request_multiple" if self.target == "requests" else "new_connection_multiple"
        profile.scale(column, self.multiple_at(times))


@dataclass(frozen=True)
class CapacityLoss(_Applies):
    """A ``share`` of a platform's servers lost on [start, end), reached linearly over ``ramp`` s.

    ``routing="stays"``: the load stays on the surviving servers (each carries more);
    ``"moves"``: the lost servers' share of the load leaves the platform (it is served elsewhere,
    so the survivors' load per server is unchanged). Several losses multiply their survivors.
    """

    share: float
    start: float = 0.0
    end: float = math.inf
    ramp: float = 0.0
    routing: str = "stays"
    platforms: Any = None

    def __post_init__(self):
        object.__setattr__(self, "share", _number("CapacityLoss", "share", self.share, maximum=1.0))
        object.__setattr__(self, "start", _number("CapacityLoss", "start", self.start))
        object.__setattr__(self, "end", _number("CapacityLoss", "end", self.end, allow_inf=True))
        object.__setattr__(self, "ramp", _number("CapacityLoss", "ramp", self.ramp))
        check_window("CapacityLoss", self.start, self.end)
        check_choice("CapacityLoss", "routing", self.routing, ("stays", "moves"))
        object.__setattr__(self, "platforms", check_platforms("CapacityLoss", self.platforms))

    def lost(self, times):
        """Share of the servers out of service at ``times``."""
        times = check_times("times", times)
        with np.errstate(over="ignore", under="ignore"):  # a ramp of 1e-308 s is a step
            if self.ramp > 0:
                progress = np.clip((times - self.start) / self.ramp, 0.0, 1.0)
            else:
                progress = np.ones_like(times)
            return self.share * progress * _window(times, self.start, self.end)

    def modify(self, profile, times) -> None:
        surviving = 1.0 - self.lost(times)
        profile.scale("server_share", surviving)
        if self.routing == "moves":
            profile.scale("load_share", surviving)


@dataclass(frozen=True)
class Contention(_Applies):
    """Service time x ``slowdown`` on [start, end) (lock or resource contention, a slow dependency).

    Examples
    --------
    >>> Contention(2.0).slowdown
    2.0
    """

    slowdown: float
    start: float = 0.0
    end: float = math.inf
    platforms: Any = None

    def __post_init__(self):
        object.__setattr__(self, "slowdown", _number("Contention", "slowdown", self.slowdown, strict=True,
                                                       maximum=MAX_MULTIPLE))
        object.__setattr__(self, "start", _number("Contention", "start", self.start))
        object.__setattr__(self, "end", _number("Contention", "end", self.end, allow_inf=True))
        check_window("Contention", self.start, self.end)
        object.__setattr__(self, "platforms", check_platforms("Contention", self.platforms))

    @property
    def peak_multiple(self) -> float:
        return max(self.slowdown, 1.0)

    def modify(self, profile, times) -> None:
        profile.scale("slowdown", 1.0 + (self.slowdown - 1.0) * _window(times, self.start, self.end))


@dataclass(frozen=True)
class ConnectionCeiling(_Applies):
    """A pool or proxy that refuses beyond ``size`` concurrent connections.

    ``level="platform"``: one ceiling in front of the whole platform (a shared proxy);
    ``"server"``: each server refuses beyond ``size`` (lowering its ``connections_per_server``).
    With ``wait_timeout > 0`` an attempt that finds the ceiling reached waits up to that long
    for a connection (M/M/size queue, Erlang C wait) and is refused only after; with 0 it is
    refused at once (Erlang B).

    Examples
    --------
    >>> ConnectionCeiling(100).level
    'platform'
    """

    size: float
    level: str = "platform"
    wait_timeout: float = 0.0
    platforms: Any = None

    def __post_init__(self):
        object.__setattr__(self, "size", _number("ConnectionCeiling", "size", self.size, strict=True,
                                                   maximum=MAX_SLOTS))
        check_choice("ConnectionCeiling", "level", self.level, ("platform", "server"))
        object.__setattr__(self, "wait_timeout", _number("ConnectionCeiling", "wait_timeout", self.wait_timeout))
        object.__setattr__(self, "platforms", check_platforms("ConnectionCeiling", self.platforms))


@dataclass(frozen=True)
class RetryStorm(_Applies):
    """Who retries, how, and whether attempts wait for a slot: the retry layer of a platform.

    ``layer`` is one of :data:`RETRY_LAYERS`; ``policy``, ``backoff`` and ``timeout`` are those of
    :class:`~reliability.dynamics.parts.Clients` (which this replaces on its platforms).
    ``waits=True``: an attempt that finds every slot busy waits in a FIFO queue (each server an
    M/M/k queue, quasi-static within a step) and fails when its wait plus service exceeds
    ``timeout``; the abandoned attempt is still served (wasted work), so once the retries have
    pushed the load past capacity the storm sustains itself after its trigger ends -- the
    collapsed state of :class:`reliability.retry.RetryingQueue`, which exists while
    ``base rate x (r + 1) >= capacity``. ``waits=False``: the loss model (refused at once).

    Examples
    --------
    >>> RetryStorm("calling_service", policy=FixedRetries(2)).max_retries
    2
    """

    layer: str = "calling_service"
    policy: Any = field(default_factory=lambda: FixedRetries(3))
    backoff: Backoff | None = field(default_factory=lambda: Backoff(1.0, 30.0, "full"))
    timeout: float = 10.0
    waits: bool = True
    population: float = 100_000.0
    platforms: Any = None

    def __post_init__(self):
        check_choice("RetryStorm", "layer", self.layer, RETRY_LAYERS)
        object.__setattr__(self, "policy", parse_policy(self.policy, name="RetryStorm.policy",
                                                        require=("step_gate", "time_scales", "max_attempts")))
        check_instance("RetryStorm", "backoff", self.backoff, Backoff, optional=True)
        object.__setattr__(self, "timeout", _number("RetryStorm", "timeout", self.timeout, strict=True,
                                                    allow_inf=True))
        object.__setattr__(self, "waits", check_flag("RetryStorm", "waits", self.waits))
        object.__setattr__(self, "population", _number("RetryStorm", "population", self.population,
                                                       minimum=1.0, maximum=1e15))
        object.__setattr__(self, "platforms", check_platforms("RetryStorm", self.platforms))

    @property
    def max_retries(self) -> int:
        return 0 if self.policy is None else int(self.policy.max_attempts) - 1

    def clients(self):
        """The :class:`~reliability.dynamics.parts.Clients` this layer's retrying amounts to."""
        return Clients(policy=self.policy, backoff=self.backoff, timeout=self.timeout, population=self.population)
