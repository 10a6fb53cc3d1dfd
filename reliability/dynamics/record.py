"""What a run keeps of each step: per-service counts and per-platform levels.

Examples
--------
>>> COUNTS[:3]
('offered', 'attempts', 'retries')
"""

from __future__ import annotations

import numpy as np

__all__ = ["Recorder", "COUNTS", "LEVELS"]

#: Counts per step and service (``shed``: refused by load shedding at the front door).
COUNTS = ("offered", "attempts", "retries", "throttled", "blocked", "timeouts", "successes", "failed_requests",
          "shed")
#: Levels per step and platform.
LEVELS = ("offered_load", "carried_load", "capacity", "servers_serving", "servers_provisioned",
          "request_multiple", "new_connection_multiple", "user_failure_probability")


class Recorder:
    """Keep every step's counts (``mode="full"``) or only per-point totals (``"summary"``, float32)."""

    def __init__(self, mode: str, steps: int, points: int, services: int, max_retries: int, servers,
                 throttles: bool, with_timeouts: bool):
        self.full = mode == "full"
        self.servers, self.throttles, self.with_timeouts = servers, throttles, with_timeouts
        shape = (steps, points, services, max_retries + 1)
        if self.full:
            self.arrivals = np.zeros(shape)
            self.blocked = np.zeros(shape)
            self.timeouts = np.zeros(shape) if with_timeouts else None
            self.throttled = np.zeros(shape) if throttles else None
            self.abandoned = np.zeros(shape[:3])
            self.shed = np.zeros(shape[:3])
            self.levels = np.zeros((steps, 6, points))
            self.serving = np.zeros((steps, points, servers.n_max), dtype=bool)
        else:
            self.out = {name: np.zeros((steps, points), dtype=np.float32)
                        for name in ("attempts", "failures", "offered_load", "user_failure_probability")}

    def record(self, s, t: int) -> None:
        if not self.full:
            total = s.arrivals.sum(axis=(1, 2))
            self.out["attempts"][t] = total
            self.out["failures"][t] = total - s.successes.sum(axis=(1, 2))
            self.out["offered_load"][t] = s.offered_load
            self.out["user_failure_probability"][t] = s.user_p
            return
        self.arrivals[t] = s.arrivals
        self.blocked[t] = s.blocked
        if self.with_timeouts:
            self.timeouts[t] = s.timeouts
        if self.throttles:
            self.throttled[t] = s.throttled
        self.abandoned[t] = s.abandoned
        if s.shed is not None:
            self.shed[t] = s.shed
        self.levels[t] = (s.offered_load, s.carried_load, s.n_open, self.servers.provisioned_count, s.b, s.user_p)
        self.serving[t] = self.servers.serving

    def result(self, profile, k_slots) -> dict:
        if not self.full:
            return self.out
        zeros = np.zeros(self.abandoned.shape)
        out = {
            "offered": self.arrivals[..., 0],
            "attempts": self.arrivals.sum(axis=-1),
            "retries": self.arrivals[..., 1:].sum(axis=-1),
            "throttled": self.throttled.sum(axis=-1) if self.throttles else zeros,
            "blocked": self.blocked.sum(axis=-1),
            "timeouts": self.timeouts.sum(axis=-1) if self.with_timeouts else zeros,
            "failed_requests": self.abandoned,
            "shed": self.shed,
            "offered_load": self.levels[:, 0],
            "carried_load": self.levels[:, 1],
            "capacity": self.levels[:, 2] * k_slots[None, :],
            "servers_serving": self.levels[:, 2],
            "servers_provisioned": self.levels[:, 3],
            "request_multiple": profile.request_multiple,
            "new_connection_multiple": profile.new_connection_multiple,
            "server_blocking": self.levels[:, 4],
            "user_failure_probability": self.levels[:, 5],
            "serving": self.serving,
        }
        out["successes"] = out["attempts"] - out["throttled"] - out["blocked"] - out["timeouts"]
        return out
