"""What a model of an incident did, per infrastructure and sample, read at an observation level.

A :class:`Timeline` holds, for every infrastructure, samples x steps of requests, attempts and their
failure shares (see :mod:`reliability.incident.model`). :meth:`Timeline.failures` reads a scope
(one or several infrastructures, weighted by their share of normal traffic) at a level:

* ``attempts``: every try at the server, retries included;
* ``requests``: what the originating callers asked for, after every retry layer;
* ``users``: in this mean-field model a user fails when their request does, so the same as
  ``requests`` (what one user meets is not modelled separately).

Examples
--------
>>> from reliability.incident import available_incidents, build_scenario, load
>>> scenario = build_scenario(load(available_incidents()[0]), time_step=60.0)
>>> timeline = scenario.run(scenario.midpoints(), np.zeros(1, dtype=int))
>>> failed, total = timeline.failures([scenario.incident.infrastructures[0].id], "requests")
>>> failed.shape == total.shape == (1, len(timeline.times))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Iterable
from typing import Mapping, Sequence

import numpy as np

from .._validate import ArgumentTypeError, describe, whole
from .schema import Scope

__all__ = ["Timeline", "LEVELS"]

LEVELS = ("attempts", "requests", "users")


def _check_level(level) -> None:
    if not isinstance(level, str):
        raise ArgumentTypeError(f"level must be one of {', '.join(LEVELS)}, got {describe(level)}")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")


def _counts(run, level: str):
    """(count, failure share) of one infrastructure's run at ``level``."""
    if level == "attempts":
        return run.attempts, run.attempt_failure
    return run.requests, run.request_failure


@dataclass
class Timeline:
    incident: object
    times: np.ndarray
    time_step: float
    runs: Mapping[str, object]
    traffic_shares: Mapping[str, np.ndarray | None]
    event_times: Mapping[str, np.ndarray] = None
    normal_capacity: Mapping[str, np.ndarray] = None
    values: Mapping[str, np.ndarray] = None
    services: Mapping[str, tuple] = None  # id -> (infrastructure, traffic share there, exposure); None: not given

    def event_time(self, event_id: str) -> np.ndarray:
        """When an event happened in each sample, seconds after the start."""
        if not isinstance(event_id, str):
            raise ArgumentTypeError(f"event_id must be an event id (a string), got {describe(event_id)}")
        if event_id not in self.event_times:
            raise ValueError(f"event_id must be one of {', '.join(self.event_times) or 'no events'}, got {event_id!r}")
        return self.event_times[event_id]

    @property
    def samples(self) -> int:
        return next(iter(self.runs.values())).requests.shape[0]

    def weights(self, infrastructures: Sequence[str]) -> dict[str, np.ndarray]:
        """Each infrastructure's share of the normal traffic of ``infrastructures`` (given shares, the rest split)."""
        infrastructures = self._check_scope(infrastructures)
        given = {i: self.traffic_shares.get(i) for i in infrastructures}
        known = [v for v in given.values() if v is not None]
        free = [i for i, v in given.items() if v is None]
        rest = np.clip(1.0 - (np.sum(known, axis=0) if known else 0.0), 1e-9, None)
        return {i: np.broadcast_to(v if v is not None else rest / max(len(free), 1), (self.samples,))[:, None]
                for i, v in given.items()}

    def failures(self, infrastructures: Sequence[str], level: str) -> tuple[np.ndarray, np.ndarray]:
        """Failed and total counts per step (in normal loads x weight) of a scope, at ``level``."""
        _check_level(level)
        failed = total = 0.0
        for infrastructure, weight in self.weights(infrastructures).items():
            count, share = _counts(self.runs[infrastructure], level)
            failed = failed + weight * count * share
            total = total + weight * count
        return np.asarray(failed), np.asarray(total)

    def scope_failures(self, scope, level: str) -> tuple[np.ndarray, np.ndarray]:
        """Failed and total counts per step of a figure's ``scope`` (a :class:`~reliability.incident.schema.Scope`).

        A scope of infrastructures, or of services on infrastructures where no service declares an
        ``exposure``, reads its infrastructures (every service there fails alike). Where services
        declare exposures, only the named services' requests count, and each service gets the part
        of its infrastructure's failure share that its exposure e_s claims against the traffic-weighted
        mean exposure there: ``f_s = min(1, f e_s / sum_k w_k e_k)`` (so that the services' failures
        add up to the infrastructure's, ``sum_s w_s f_s = f``, short of the cap).
        """
        if not isinstance(scope, Scope):
            raise ArgumentTypeError(f"scope must be a figure's Scope (figure.scope), got {describe(scope)}")
        infrastructures = list(scope.infrastructures)
        tables = {i: self._service_table(i) for i in self._check_scope(infrastructures)} \
            if scope.given == "services" else {}
        if not any(exposed for _, _, exposed in tables.values()):
            return self.failures(infrastructures, level)
        _check_level(level)
        failed = total = 0.0
        named = set(scope.services)
        for infrastructure, weight in self.weights(infrastructures).items():
            count, share = _counts(self.runs[infrastructure], level)
            shares, exposures, _ = tables[infrastructure]
            mean = np.maximum(sum(shares[s] * exposures[s] for s in shares), 1e-12)
            for service in named & set(shares):
                part = weight * count * shares[service]
                failed = failed + part * np.minimum(1.0, share * (exposures[service] / mean))
                total = total + part
        return np.asarray(failed), np.asarray(total)

    def scope_failure_share(self, scope, level: str) -> np.ndarray:
        """The failure share per step of a figure's scope (:meth:`scope_failures`)."""
        failed, total = self.scope_failures(scope, level)
        return failed / np.maximum(total, 1e-12)

    def _service_table(self, infrastructure: str) -> tuple[dict, dict, bool]:
        """The services on ``infrastructure``: traffic shares (given ones, the rest split among the
        others), exposures (1 where not given) per sample, and whether any exposure was given."""
        on = {s: v for s, v in (self.services or {}).items() if v[0] == infrastructure}
        known = [v[1] for v in on.values() if v[1] is not None]
        free = [s for s, v in on.items() if v[1] is None]
        rest = np.clip(1.0 - (np.sum(known, axis=0) if known else 0.0), 1e-9, None) / max(len(free), 1)
        column = lambda value: np.broadcast_to(value, (self.samples,))[:, None]  # noqa: E731
        shares = {s: column(v[1] if v[1] is not None else rest) for s, v in on.items()}
        exposures = {s: column(v[2] if v[2] is not None else 1.0) for s, v in on.items()}
        return shares, exposures, any(v[2] is not None for v in on.values())

    def _check_scope(self, infrastructures) -> list:
        """A list of infrastructure ids among the runs (what every reading of a scope takes)."""
        if isinstance(infrastructures, (str, bytes, Mapping)) or not isinstance(infrastructures, Iterable) or (
                isinstance(infrastructures, np.ndarray) and infrastructures.ndim == 0):
            raise ArgumentTypeError(f"infrastructures must be a list of infrastructure ids, got "
                                    f"{describe(infrastructures)}")
        infrastructures = list(infrastructures)
        if not infrastructures:
            raise ValueError("infrastructures must name at least one infrastructure, got none")
        for item in infrastructures:
            if not isinstance(item, str) or item not in self.runs:
                error = ValueError if isinstance(item, str) else ArgumentTypeError
                raise error(f"infrastructures must be ids among {', '.join(self.runs)}, got {describe(item)}")
        return infrastructures

    def failure_share(self, infrastructures: Sequence[str], level: str) -> np.ndarray:
        failed, total = self.failures(infrastructures, level)
        return failed / np.maximum(total, 1e-12)

    def load(self, infrastructures: Sequence[str]) -> np.ndarray:
        """Offered work relative to normal (attempts included), traffic-weighted."""
        return sum(w * self.runs[i].offered_work for i, w in self.weights(infrastructures).items())

    def frame(self, infrastructures: Sequence[str], level: str, sample: int = 0):
        """One sample's failure share and load per step, as a DataFrame (time in seconds after the start)."""
        import pandas as pd

        sample = whole("sample", sample, 0, self.samples - 1)
        return pd.DataFrame({"time": self.times, "failure_share": self.failure_share(infrastructures, level)[sample],
                             "load": self.load(infrastructures)[sample]})
