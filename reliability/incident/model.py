"""The time-stepped fluid model an incident file is run on, for many settings of its unknowns at once.

Each infrastructure is a fluid queue in units of its normal load (normal offered work = 1, normal
capacity = 1 + headroom). Per step of ``time_step`` seconds, for every sample at once:

* **demand**: the requests offered (surges multiply it; a platform's load reaches the
  infrastructures it depends on), times the attempts each request costs under the retry layers
  that act there (:func:`reliability.retry.expected_attempts`, or a policy's own ``amplification``
  in a counterfactual), minus the share shed at the door;
* **capacity**: normal capacity, minus a lost share that traffic ``moves`` away from, plus capacity
  added, slowed by contention when saturated, and, where the platform autoscales, raised to the
  load it saw one autoscale delay earlier;
* **queue**: work beyond capacity waits (the backlog); an attempt served after its caller's timeout
  has failed although it used capacity, which is what lets a retry storm outlive its trigger; the
  backlog is bounded by what callers wait for, beyond which attempts are refused;
* **failures**: an attempt fails when it is shed, sent to lost capacity that traffic ``stays`` on,
  refused by a connection ceiling, late, or fails in a dependency; a request fails when its last
  attempt fails (``1 - (1 - p) A(p)``: at most one attempt of a request succeeds).

The retries of a step use the failure share of the step before: retries come back later, which is
the delayed fixed point of :mod:`reliability.retry.fluid`. The model is deterministic (one run per
setting): the noise of the discrete simulation is below the tolerance of published figures.

For a batch of a few hundred samples numpy's fixed cost per call, not the arithmetic, sets the time of
a step, so the loop does as few calls as it can: each profile laid out as steps x samples (one
contiguous row per step), everything that does not depend on the state computed for all steps before
the loop, neutral parts (nothing shed, no ceiling, no retries at a step) skipped where skipping gives
the same numbers exactly.

Examples
--------
A platform with 20 % headroom and a retrying caller (3 retries): a 10-minute surge to twice the
load collapses it, and the retries keep it down after the surge ends (4 attempts x 1 > 1.2).

>>> import numpy as np
>>> steps = np.arange(0.0, 3600.0, 30.0)
>>> surge = np.where((steps >= 600) & (steps < 1200), 2.0, 1.0)[None, :]
>>> spec = PlatformSpec("api", headroom=np.array([0.2]), demand=surge,
...                     layers=(RetryLayer(np.array([3]), np.ones_like(surge)),))
>>> run = run_model([spec], steps, time_step=30.0)
>>> float(run["api"].attempt_failure[0, 10]) < 0.01, float(run["api"].attempt_failure[0, -1]) > 0.9
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..retry.amplification import expected_attempts_kernel


__all__ = ["RetryLayer", "PlatformSpec", "PlatformRun", "run_model", "LAYER_ORDER", "CONTENTION_KNEE"]

#: Utilisation from which contention starts to slow a service (it slows fully at saturation).
CONTENTION_KNEE = 0.8

#: Retrying layers from the innermost (closest to the server) to the outermost (the user).
LAYER_ORDER = ("internal_nodes", "calling_service", "end_user_clients")


@dataclass(frozen=True)
class RetryLayer:
    """Callers that retry: ``max_retries`` per sample, ``active`` (samples x steps, 0/1) when they do.

    ``policy`` (a :mod:`reliability.retry` policy) replaces the fixed retries in a counterfactual.
    """

    max_retries: np.ndarray
    active: np.ndarray
    layer: str = "calling_service"
    policy: Any = None


@dataclass(frozen=True)
class PlatformSpec:
    """One infrastructure: every profile is samples x steps (or broadcastable), every setting per sample."""

    id: str
    headroom: np.ndarray
    demand: Any = 1.0
    lost_stays: Any = 0.0
    lost_moves: Any = 0.0
    shed: Any = 0.0
    added: Any = 0.0
    ceiling: Any = np.inf
    slowdown: Any = 1.0
    layers: tuple[RetryLayer, ...] = ()
    autoscaled: Any = False
    autoscale_delay: Any = 60.0
    depends_on: tuple[str, ...] = ()
    timeout: float = 30.0
    max_wait: float = 60.0
    max_scale: float = 10.0


@dataclass
class PlatformRun:
    """What one infrastructure did, samples x steps: shares are fractions, loads in normal loads."""

    requests: np.ndarray
    attempts: np.ndarray
    attempt_failure: np.ndarray
    request_failure: np.ndarray
    capacity: np.ndarray
    offered_work: np.ndarray
    lost: np.ndarray
    added: np.ndarray
    extra: dict = field(default_factory=dict)


def _order(specs: Sequence[PlatformSpec]) -> list[PlatformSpec]:
    """Dependents before what they depend on, so a dependency sees this step's load."""
    by_id = {s.id: s for s in specs}
    done, order = set(), []

    def visit(spec, trail=()):
        if spec.id in done:
            return
        if spec.id in trail:
            raise ValueError(f"infrastructures depend on each other in a cycle: {' -> '.join((*trail, spec.id))}")
        for other in specs:
            if spec.id in other.depends_on:
                visit(other, (*trail, spec.id))
        done.add(spec.id)
        order.append(spec)

    for spec in specs:
        visit(spec)
    assert set(by_id) == done
    return order


def _profile(value, shape) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.ndim == 1:
        array = array[:, None]
    return np.broadcast_to(array, shape)


def _rows(value, shape) -> np.ndarray:
    """A profile as steps x samples, each step's row contiguous (the loop reads one row per step); one
    that does not change in time is a view of its one row."""
    array = np.asarray(value, dtype=float)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim <= 1:
        return np.broadcast_to(array, shape[::-1])
    return np.ascontiguousarray(np.broadcast_to(array, shape).T)


def _neutral(value, neutral: float) -> bool:
    """Whether a profile is ``neutral`` everywhere (then the loop need not read it)."""
    return bool(np.all(np.asarray(value, dtype=float) == neutral))


def _clip(x, low, high):
    """``np.clip`` as its two ufuncs (the same values, without its wrapper's cost on every step)."""
    return np.minimum(np.maximum(x, low), high)


class _Layer:
    """A retry layer, read per step: the retries allowed (0 where the layer is off) or a policy and its mask."""

    def __init__(self, layer: RetryLayer, shape):
        self.policy = layer.policy
        on = _rows(layer.active, shape) >= 0.5
        if self.policy is None:
            # validated once when the layer was built: the loop skips the per-step checks
            retries = np.broadcast_to(np.asarray(layer.max_retries, dtype=float), (shape[0],))
            self.retries = np.where(on, retries[None, :], 0.0)
            self.retrying = self.retries.any(axis=1)  # steps where any sample retries
            acting = self.retries
        else:
            self.on = acting = on
        # steps at which the layer acts as at the step before (then last step's attempts still hold)
        self.unchanged = np.concatenate([[False], np.all(acting[1:] == acting[:-1], axis=1)])

    def attempts(self, p, step):
        if self.policy is None:
            # no retries: one attempt each (exactly what the expression gives at r = 0)
            return expected_attempts_kernel(p, self.retries[step]) if self.retrying[step] else np.ones_like(p)
        return np.where(self.on[step], self.policy.amplification(p, timed_out=True), 1.0)


def _amplification(layers, p_attempt, step):
    """Attempts per request and the failure share of requests, ``layers`` innermost first."""
    total, p = None, p_attempt
    for layer in layers:
        attempts = layer.attempts(p, step)
        total = attempts if total is None else total * attempts
        p = _clip(1.0 - (1.0 - p) * attempts, 0.0, 1.0)
    return (np.ones_like(p_attempt) if total is None else total), p


class _Platform:
    """One infrastructure's profiles as rows per step, what does not depend on the state computed for
    every step at once, its state (backlog, failure shares, utilisation) and its records."""

    def __init__(self, spec: PlatformSpec, shape, time_step: float):
        samples, steps = shape
        self.spec = spec
        self.one_plus = np.broadcast_to(1.0 + np.asarray(spec.headroom, dtype=float), (samples,))
        self.demand = _rows(spec.demand, shape)
        # A profile that is neutral everywhere (nothing shed, lost or added, no slowdown, no ceiling) is
        # not laid out at all: its factor is exactly 1 (1 - 0, x * (1 - 0) + 0, x / (1 + 0 * s)) and an
        # infinite ceiling refuses nothing, so the loop skips it with the same numbers.
        ones = np.broadcast_to(1.0, shape[::-1])
        self.keep_shed = ones if _neutral(spec.shed, 0.0) else 1.0 - _rows(spec.shed, shape)
        self.keep_stays = ones if _neutral(spec.lost_stays, 0.0) else 1.0 - _rows(spec.lost_stays, shape)
        if _neutral(spec.lost_moves, 0.0) and _neutral(spec.added, 0.0):
            self.base = np.broadcast_to(self.one_plus, shape[::-1])
        else:
            self.base = self.one_plus[None, :] * (1.0 - _rows(spec.lost_moves, shape)) + _rows(spec.added, shape)
        self.slowdown = None if _neutral(spec.slowdown, 1.0) else _rows(spec.slowdown, shape)
        self.ceiling = None if _neutral(spec.ceiling, np.inf) else _rows(spec.ceiling, shape)
        self.autoscaled = np.broadcast_to(np.asarray(spec.autoscaled, dtype=bool), (samples,))
        self.scales = bool(np.any(self.autoscaled))
        if self.scales:
            delay = np.broadcast_to(np.asarray(spec.autoscale_delay, float) / time_step, (samples,))
            self.delay_steps = np.round(delay).astype(int)
            self.history = np.ones((steps, samples))
            self.columns = np.arange(samples)
            self.top = spec.max_scale * self.one_plus  # the autoscaler's cap
        self.layers = [_Layer(layer, shape) for layer in
                       sorted(spec.layers, key=lambda item: LAYER_ORDER.index(item.layer))]
        zeros = np.zeros(samples)
        self.backlog, self.p_attempt, self.p_request, self.busy = zeros, zeros, zeros, zeros
        self.amplification = None  # attempts per request at the end of the last step
        self.records = {name: np.zeros((steps, samples)) for name in
                        ("requests", "attempts", "attempt_failure", "request_failure", "capacity", "offered_work")}

    def capacity(self, step, offered_seen):
        """Capacity this step: the base, raised by an autoscaler to the load seen one delay ago (up to a
        cap), divided by the slowdown of contention near saturation."""
        capacity = self.base[step]
        if self.scales:
            self.history[step] = offered_seen
            if step > 0:
                # each sample's load one delay ago, read from the flat history (row = step)
                lag = np.maximum(step - self.delay_steps, 0)
                seen = self.history.ravel().take(lag * len(lag) + self.columns)
            else:
                seen = np.ones_like(capacity)
            wanted = np.minimum(seen * self.one_plus, self.top)
            capacity = np.where(self.autoscaled, np.maximum(capacity, wanted), capacity)
        if self.slowdown is not None:
            # contention: a service near saturation spends longer on each request, the full slowdown when saturated
            saturation = _clip((self.busy - CONTENTION_KNEE) / (1.0 - CONTENTION_KNEE), 0.0, 1.0)
            capacity = capacity / (1.0 + (self.slowdown[step] - 1.0) * saturation)
        return capacity

    def queue(self, admitted, capacity, time_step):
        """Advance the backlog; the share of attempts served late and the share refused outright."""
        spec = self.spec
        room = capacity * spec.max_wait
        backlog = self.backlog + (admitted - capacity) * time_step
        overflow = np.maximum(backlog - room, 0.0)
        self.backlog = _clip(backlog, 0.0, room)
        if overflow.any():
            refused = np.where(admitted > 0, overflow / np.maximum(admitted * time_step, 1e-12), 0.0)
            refused = _clip(refused, 0.0, 1.0)
        else:  # nothing overflowed: nothing refused (what the expression gives, 0 / x)
            refused = overflow
        safe_capacity = np.maximum(capacity, 1e-12)
        if self.backlog.any():
            late = _clip(self.backlog / safe_capacity / spec.timeout - 0.5, 0.0, 1.0)
            self.busy = np.where(self.backlog > 0, 1.0, admitted / safe_capacity)
        else:  # no backlog: nothing late (0 / c - 0.5 clips to 0), utilisation the admitted share
            late = np.zeros_like(admitted)
            self.busy = admitted / safe_capacity
        return late, refused

    def own_failure(self, step, admitted, late, refused):
        """The share of admitted attempts that fail here: lost capacity traffic stays on, late, refused,
        over the connection ceiling."""
        kept = self.keep_stays[step] * (1.0 - late) * (1.0 - refused)
        if self.ceiling is not None:
            ceiling = self.ceiling[step]
            over_ceiling = np.where(admitted > ceiling, 1.0 - ceiling / np.maximum(admitted, 1e-12), 0.0)
            kept = kept * (1.0 - over_ceiling)
        return 1.0 - kept

    def run(self, shape) -> PlatformRun:
        """The records as samples x steps, with the lost and added capacity."""
        records = {name: values.T for name, values in self.records.items()}
        lost_stays, lost_moves = _profile(self.spec.lost_stays, shape), _profile(self.spec.lost_moves, shape)
        added = _profile(self.spec.added, shape)
        lost = 1.0 - (1.0 - lost_stays) * (1.0 - lost_moves)
        extra = np.maximum(records["capacity"] - self.one_plus[:, None], 0.0) * self.autoscaled[:, None]
        return PlatformRun(lost=np.array(lost), added=added + extra, **records)


@np.errstate(under="ignore", divide="ignore", invalid="ignore")
def run_model(specs: Sequence[PlatformSpec], times: np.ndarray, *, time_step: float) -> Mapping[str, PlatformRun]:
    """Step every infrastructure over ``times`` (seconds after the start); one :class:`PlatformRun` each.

    Warnings are off inside: a delay of 1e-308 steps underflows to none (the limit), ``log 0`` is the
    -inf that makes one attempt at p = 0, and the guarded divisions only divide where they mean to.
    """
    order = _order(specs)
    samples = max(np.atleast_1d(s.headroom).shape[0] for s in specs)
    shape = (samples, len(times))
    platforms = {spec.id: _Platform(spec, shape, time_step) for spec in order}
    for step in range(len(times)):
        sent: dict[str, list[np.ndarray]] = {}
        for spec in order:
            _one_step(platforms[spec.id], platforms, step, time_step, sent)
    return {spec.id: platforms[spec.id].run(shape) for spec in order}


def _one_step(platform, platforms, step, time_step, sent):
    spec = platform.spec
    upstream = (sent[spec.id][0] if len(sent[spec.id]) == 1 else np.mean(sent[spec.id], axis=0)) \
        if spec.id in sent else 1.0
    demand = platform.demand[step] * upstream
    if platform.amplification is not None and all(layer.unchanged[step] for layer in platform.layers):
        # the same layers at the same failure share as at the end of the last step: the same attempts
        amplification = platform.amplification
    else:
        amplification, _ = _amplification(platform.layers, platform.p_attempt, step)
    offered = demand * amplification
    admitted = offered * platform.keep_shed[step]
    capacity = platform.capacity(step, demand)
    late, refused = platform.queue(admitted, capacity, time_step)
    own = platform.own_failure(step, admitted, late, refused)
    dependency = 0.0
    for other in spec.depends_on:
        dependency = 1.0 - (1.0 - dependency) * (1.0 - platforms[other].p_request)
        sent.setdefault(other, []).append(admitted * (1.0 - own))
    p_admitted = 1.0 - (1.0 - own) * (1.0 - dependency)
    p_attempt = 1.0 - platform.keep_shed[step] * (1.0 - p_admitted)
    attempts_per_request, p_request = _amplification(platform.layers, p_attempt, step)
    platform.p_attempt, platform.p_request, platform.amplification = p_attempt, p_request, attempts_per_request
    records = platform.records
    records["requests"][step], records["attempts"][step] = demand, demand * attempts_per_request
    records["attempt_failure"][step], records["request_failure"][step] = p_attempt, p_request
    records["capacity"][step], records["offered_work"][step] = capacity, offered
