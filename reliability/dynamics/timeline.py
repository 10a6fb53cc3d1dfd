"""Results of a run: :class:`Timeline` (per step and service) and :class:`Sweep` (per step and point).

Observation levels of a timeline (each per step and service, and after :meth:`Timeline.aggregate`):

* attempts: ``attempts`` (new and retried, at the platform), ``failed_attempts`` (refused,
  timed out or throttled; also ``failures``), ``failure_fraction`` (what an error-rate dashboard
  of the platform shows);
* requests: ``requests`` (new requests of the retrying layer, shed ones included),
  ``failed_requests`` (given up after the layer's retries, or shed), ``request_failure_fraction``;
* users: ``users_failing``, a documented proxy (there is no user model): the share of attempts
  failing where end users' clients retry (a user sees every failed attempt), the share of
  requests failing where a service or internal nodes retry (users see only what is given up).
  On a sharded platform ``user_failure_probability`` is what a user of the first shard meets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ._checks import check_choice, check_number as _number, check_text, check_whole
from .record import COUNTS as _COUNTS, LEVELS as _LEVELS

__all__ = ["Timeline", "Sweep", "finish_counts", "SERIES_COLUMNS"]

SERIES_COLUMNS = ["time", "infrastructure", "service", "offered", "attempts", "retries", "throttled", "sent",
                  "blocked", "timeouts", "successes", "failures", "failure_fraction", "failed_requests",
                  *_LEVELS, "shed", "requests", "failed_attempts", "request_failure_fraction", "users_failing"]


def _ratio(num: pd.Series, den: pd.Series) -> np.ndarray:
    num, den = num.to_numpy(dtype=np.float64), den.to_numpy(dtype=np.float64)
    return np.divide(num, den, out=np.zeros(len(num)), where=den > 0)


def finish_counts(frame: pd.DataFrame, layers: dict | None = None) -> pd.DataFrame:
    """Derived columns of a frame of counts, at each observation level.

    ``layers`` maps an infrastructure to ``(retry layer, sharded)``; without it the request level
    stands for the users (and for totals over platforms unless end users retry on all of them).
    """
    frame["sent"] = frame["attempts"] - frame["throttled"]
    frame["failures"] = frame["blocked"] + frame["timeouts"] + frame["throttled"]
    outcomes = frame["failures"] + frame["successes"]
    frame["failure_fraction"] = _ratio(frame["failures"], outcomes)
    frame["requests"] = frame["offered"] + frame["shed"]
    frame["failed_attempts"] = frame["failures"]
    frame["request_failure_fraction"] = np.minimum(_ratio(frame["failed_requests"], frame["requests"]), 1.0)
    users = frame["request_failure_fraction"].to_numpy(copy=True)
    if layers and "infrastructure" in frame:
        infra = frame["infrastructure"].to_numpy()
        for name, (layer, _) in layers.items():
            mine = infra == name
            if layer == "end_user_clients":
                users[mine] = frame["failure_fraction"].to_numpy()[mine]
    elif layers and all(layer == "end_user_clients" for layer, _ in layers.values()):
        users = frame["failure_fraction"].to_numpy(copy=True)
    frame["users_failing"] = users
    return frame


@dataclass(frozen=True)
class Timeline:
    """The result of :func:`simulate_incident`: a tidy time series per service.

    ``series`` has one row per step and service: ``time`` (start of the step, s since the
    model's origin), ``infrastructure``, ``service``, counts of ``offered`` new requests,
    ``attempts`` (new and retried), ``retries``, ``throttled`` (refused locally by the client's
    policy), ``sent``, outcomes ``blocked`` (refused by a full or closed server, or no server
    routed), ``timeouts``, ``successes``, ``failures`` (the three failure kinds),
    ``failure_fraction`` (failures over outcomes: what an error-rate dashboard shows),
    ``failed_requests`` (requests given up for good), and the infrastructure's levels in that
    step: ``offered_load`` and ``carried_load`` (Erlangs), ``capacity`` (connection slots on
    the servers that accept traffic), ``servers_serving``, ``servers_provisioned``, and the
    trigger's ``request_multiple`` and ``new_connection_multiple``. The observation levels
    (module notes): ``shed``, ``requests``, ``failed_attempts``, ``request_failure_fraction`` and
    ``users_failing``.
    """

    series: pd.DataFrame = field(repr=False)
    servers: pd.DataFrame = field(repr=False)
    time_step: float
    horizon: float
    parameters: dict = field(repr=False)

    def server_view(self, infrastructure: str, server: int = 0, interval: float | None = None) -> pd.DataFrame:
        """What a request sent to one server meets, per step or averaged over ``interval``.

        Columns ``time``, ``serving`` (share of the interval the server was in service) and
        ``failure_probability`` (1 while it is out of service, else its blocking). With
        ``routing="sharded"`` this is what the users whose data lives on that server see.
        """
        check_text("", "infrastructure", infrastructure)
        server = check_whole("", "server", server, 0)
        frame = self.servers[(self.servers["infrastructure"] == infrastructure) & (self.servers["server"] == server)]
        if frame.empty:
            raise ValueError(f"no server {server!r} on infrastructure {infrastructure!r}")
        frame = frame[["time", "serving", "failure_probability"]].astype({"serving": float})
        if interval is None:
            return frame.reset_index(drop=True)
        interval = _number("", "interval", interval, strict=True)
        frame = frame.assign(time=np.floor(frame["time"] / interval + 1e-9) * interval)
        return frame.groupby("time", as_index=False).mean()

    def aggregate(self, interval: float = 60.0, by: str = "service") -> pd.DataFrame:
        """Sum counts (and average levels) over ``interval`` seconds, per service or per infrastructure.

        ``by="service"`` keeps one row per interval and service; ``by="infrastructure"`` sums
        the services of each infrastructure; ``by="all"`` sums everything. Failure fractions
        are recomputed from the summed counts.
        """
        interval = _number("", "interval", interval, strict=True)
        ratio = interval / self.time_step
        if ratio < 1 - 1e-9 or abs(ratio - round(ratio)) > 1e-6:
            raise ValueError(f"interval must be a whole multiple of time_step={self.time_step:g}, got {interval!r}")
        keys = {"service": ["infrastructure", "service"], "infrastructure": ["infrastructure"], "all": []}
        if not isinstance(by, str) or by not in keys:
            if not isinstance(by, str):
                check_choice("", "by", by, tuple(keys))  # the type error
            raise ValueError(f"by must be 'service', 'infrastructure' or 'all', got {by!r}")
        frame = self.series.copy()
        # levels belong to the infrastructure: one value per step, then averaged over the interval
        steps = frame.drop_duplicates(["time", "infrastructure"])[["time", "infrastructure", *_LEVELS]].copy()
        frame["time"] = np.floor(frame["time"] / interval + 1e-9) * interval
        steps["time"] = np.floor(steps["time"] / interval + 1e-9) * interval
        level = steps.groupby(["time", "infrastructure"], sort=True)[list(_LEVELS)].mean()
        summed = frame.groupby(["time"] + keys[by], sort=True)[list(_COUNTS)].sum()
        if by == "service":
            result = summed.reset_index().merge(level.reset_index(), on=["time", "infrastructure"])
        elif by == "infrastructure":
            result = summed.join(level).reset_index()
        else:
            additive = ["offered_load", "carried_load", "capacity", "servers_serving", "servers_provisioned"]
            level_all = level.groupby("time")[additive].sum()
            multiples = level.groupby("time")[["request_multiple", "new_connection_multiple"]].max()
            result = summed.join(level_all).join(multiples).reset_index()
        return finish_counts(result, self.parameters.get("layers"))

    def __repr__(self) -> str:
        p = self.parameters
        trigger = f"trigger={p['trigger']!r}, " if p.get("trigger") is not None else ""
        return (f"Timeline(services={[s.name for s in p['services']]}, horizon={self.horizon:g} s, "
                f"time_step={self.time_step:g} s, {trigger}seed={p['seed']!r})")


@dataclass(frozen=True)
class Sweep:
    """Per-step totals of one infrastructure for many parameter points (see :func:`simulate_sweep`).

    ``attempts``, ``failures``, ``offered_load`` and ``user_failure_probability`` (see
    :class:`Timeline`) are (steps, points) arrays; ``points`` is a
    DataFrame of the per-point parameters, one row per point.
    """

    attempts: np.ndarray = field(repr=False)
    failures: np.ndarray = field(repr=False)
    offered_load: np.ndarray = field(repr=False)
    user_failure_probability: np.ndarray = field(repr=False)
    points: pd.DataFrame = field(repr=False)
    time_step: float
    horizon: float

    @property
    def times(self) -> np.ndarray:
        return np.arange(self.attempts.shape[0]) * self.time_step

    def failure_fraction(self, interval: float) -> np.ndarray:
        """Failure fraction per ``interval`` (rows) and point (columns); 0 where nothing was attempted."""
        interval = _number("", "interval", interval, strict=True)
        steps = self.attempts.shape[0]
        if interval > (steps + 1) * self.time_step:  # longer than the run: no whole interval in it
            return np.zeros((0, self.attempts.shape[1]))
        n = int(round(interval / self.time_step))
        if n < 1 or abs(n * self.time_step - interval) > 1e-6 * interval:
            raise ValueError(f"interval must be a whole multiple of time_step={self.time_step:g}, got {interval!r}")
        usable = (self.attempts.shape[0] // n) * n
        att = self.attempts[:usable].astype(np.float64).reshape(-1, n, self.attempts.shape[1]).sum(axis=1)
        fail = self.failures[:usable].astype(np.float64).reshape(-1, n, self.attempts.shape[1]).sum(axis=1)
        return np.divide(fail, att, out=np.zeros_like(att), where=att > 0)

    def __repr__(self) -> str:
        return f"Sweep(points={len(self.points)}, horizon={self.horizon:g} s, time_step={self.time_step:g} s)"


