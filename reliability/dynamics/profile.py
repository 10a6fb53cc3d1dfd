"""The per-step profile of one platform: every time-only effect of the mechanisms and events.

Surges, rollbacks, load shedding, capacity lost or added and contention depend on time alone, so
they are evaluated for all steps at once (arrays of shape ``(steps, points)``) before the loop
runs; the engine then reads row ``t``. Components write through two operations, ``scale``
(multiply a column) and ``add``, so that several of them combine in any order and a column
nobody touched stays exactly at its neutral value (the model's numbers do not change when a
component is absent).

Examples
--------
>>> import numpy as np
>>> times = np.array([0.5, 1.5])
>>> profile = StepProfile.neutral(times, points=1)
>>> profile.scale("request_multiple", np.array([2.0, 1.0]))
>>> profile.request_multiple[:, 0].tolist(), profile.touched
([2.0, 1.0], {'request_multiple'})
"""

from __future__ import annotations

import numpy as np

from .._validate import MAX_POINTS, as_array, broadcast
from ._checks import check_choice, check_times, check_whole
from .mechanisms import trigger_shape

__all__ = ["StepProfile", "COLUMNS"]

#: Column -> neutral value. ``kept``: share of new requests not shed; ``server_share``: share of
#: the servers in service (capacity loss); ``load_share``: share of the load that stays on the
#: platform; ``added_servers``: servers added; ``slowdown``: service-time multiple.
COLUMNS = {"request_multiple": 1.0, "new_connection_multiple": 1.0, "kept": 1.0, "server_share": 1.0,
           "load_share": 1.0, "added_servers": 0.0, "slowdown": 1.0}


class StepProfile:
    """Arrays ``(steps, points)``, one per column of :data:`COLUMNS`; ``touched`` names the changed ones."""

    def __init__(self, columns: dict, times: np.ndarray, servers: int = 1):
        self.times = times
        self.servers = servers
        #: (steps, services) multiples of single services (moved in by a failover), or None
        self.service_multiple = None
        self.touched: set[str] = set()
        for name, values in columns.items():
            setattr(self, name, values)

    @classmethod
    def neutral(cls, times, points: int, servers: int = 1) -> "StepProfile":
        """Every column at its neutral value; ``servers`` is the platform's count (for relative amounts)."""
        times = check_times("times", times).reshape(-1)
        points = check_whole("", "points", points, 1, MAX_POINTS)
        servers = check_whole("", "servers", servers, 1)
        if times.size * points > MAX_POINTS:
            raise ValueError(f"times ({times.size:,} steps) x points ({points:,}) is more than the {MAX_POINTS:.0e} "
                             "values one profile column holds")
        return cls({name: np.full((times.size, points), value) for name, value in COLUMNS.items()}, times, servers)

    @classmethod
    def from_trigger(cls, times, new_connection_multiple, request_multiple, start, rollback_start,
                     rollback_duration) -> "StepProfile":
        """The profile of the original single :class:`~reliability.dynamics.mechanisms.Trigger` (per-point arrays)."""
        times = check_times("times", times).reshape(-1)
        request_multiple = as_array("request_multiple", request_multiple, minimum=0.0)
        new_connection_multiple = as_array("new_connection_multiple", new_connection_multiple, minimum=0.0)
        shape = trigger_shape(times[:, None], start, rollback_start, rollback_duration)   # (T, G)
        if shape.shape[1] == 0:
            raise ValueError("start, rollback_start and rollback_duration must hold at least one point, got none")
        request_multiple, new_connection_multiple, _ = broadcast(
            request_multiple=request_multiple, new_connection_multiple=new_connection_multiple,
            start=np.ones(shape.shape[1]))
        profile = cls.neutral(times, shape.shape[1])
        profile.request_multiple = 1.0 + (request_multiple - 1.0) * shape
        profile.new_connection_multiple = 1.0 + (new_connection_multiple - 1.0) * shape
        return profile

    def scale(self, name: str, factor) -> None:
        """Multiply column ``name`` by ``factor`` (one number, or one per step)."""
        factor = self._per_step(name, "factor", factor)
        setattr(self, name, getattr(self, name) * factor)
        self.touched.add(name)

    def add(self, name: str, amount) -> None:
        """Add ``amount`` (one number, or one per step) to column ``name``."""
        amount = self._per_step(name, "amount", amount)
        setattr(self, name, getattr(self, name) + amount)
        self.touched.add(name)

    def _per_step(self, name: str, label: str, value) -> np.ndarray:
        check_choice("", "name", name, tuple(COLUMNS))
        values = as_array(label, value, minimum=0.0)
        if values.size not in (1, self.times.size):
            raise ValueError(f"{label} must be one number or one per step ({self.times.size}), got shape "
                             f"{values.shape}")
        return values.reshape(-1, 1)

    def apply(self, components, platform: str) -> "StepProfile":
        """Let every component that applies to ``platform`` and shapes the profile modify it."""
        for component in components:
            if hasattr(component, "modify") and component.applies_to(platform):
                component.modify(self, self.times)
        return self

    @property
    def sheds(self) -> bool:
        return "kept" in self.touched

    @property
    def capacity_changes(self) -> bool:
        return bool({"server_share", "added_servers"} & self.touched)

    @property
    def arrival_multiple(self) -> np.ndarray:
        """Request multiple arriving at the platform's front door: surged, less what moved away."""
        if "load_share" in self.touched:
            return self.request_multiple * self.load_share
        return self.request_multiple

    @property
    def admitted_multiple(self) -> np.ndarray:
        """Request multiple passing the front door: arriving, less what was shed."""
        return self.arrival_multiple * self.kept if self.sheds else self.arrival_multiple
