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


def _profile(value, shape) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.ndim == 1:
        array = array[:, None]
    return np.broadcast_to(array, shape)


def _amplification(layers, p_attempt, step):
    """Attempts per request and the failure share of requests, innermost layer first."""
    total = np.ones_like(p_attempt)
    p = p_attempt
    for layer in sorted(layers, key=lambda item: LAYER_ORDER.index(item.layer)):
        on = layer.active[:, step] >= 0.5
        if layer.policy is None:
            # validated once when the layer was built: the kernel skips the per-step checks
            retries = np.where(on, layer.max_retries, 0).astype(float)
            attempts = expected_attempts_kernel(p.astype(float), np.broadcast_to(retries, p.shape).copy())
        else:
            attempts = np.where(on, layer.policy.amplification(p, timed_out=True), 1.0)
        total = total * attempts
        p = np.clip(1.0 - (1.0 - p) * attempts, 0.0, 1.0)
    return total, p


@dataclass
class _State:
    backlog: np.ndarray
    p_attempt: np.ndarray
    p_request: np.ndarray
    history: np.ndarray
    busy: np.ndarray


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


def _step_platform(spec, profiles, state, step, time_step, upstream):
    """One step of one infrastructure; returns its attempts and failure shares."""
    demand = profiles["demand"][:, step] * upstream
    amplification, _ = _amplification(spec.layers, state.p_attempt, step)
    offered = demand * amplification
    shed = profiles["shed"][:, step]
    admitted = offered * (1.0 - shed)
    base = (1.0 + spec.headroom) * (1.0 - profiles["lost_moves"][:, step]) + profiles["added"][:, step]
    capacity = _autoscaled_capacity(spec, profiles, state, step, base)
    # contention: a service near saturation spends longer on each request, the full slowdown when saturated
    slowdown = profiles["slowdown"][:, step]
    saturation = np.clip((state.busy - CONTENTION_KNEE) / (1.0 - CONTENTION_KNEE), 0.0, 1.0)
    capacity = capacity / (1.0 + (slowdown - 1.0) * saturation)
    late, refused = _queue(state, admitted, capacity, time_step, spec)
    ceiling = profiles["ceiling"][:, step]
    with np.errstate(divide="ignore", invalid="ignore"):
        over_ceiling = np.where(admitted > ceiling, 1.0 - ceiling / np.maximum(admitted, 1e-12), 0.0)
    own = 1.0 - (1.0 - profiles["lost_stays"][:, step]) * (1.0 - late) * (1.0 - refused) * (1.0 - over_ceiling)
    return offered, admitted, shed, own, capacity, demand


def _autoscaled_capacity(spec, profiles, state, step, base):
    """Capacity an autoscaler adds: the load seen one delay ago at normal utilisation, up to a cap."""
    state.history[:, step] = profiles["offered_seen"]
    lag = np.clip(step - np.round(profiles["delay_steps"]).astype(int), 0, None)
    seen = state.history[np.arange(len(lag)), lag] if step > 0 else np.ones_like(base)
    wanted = np.minimum(seen * (1.0 + spec.headroom), spec.max_scale * (1.0 + spec.headroom))
    return np.where(profiles["autoscaled"], np.maximum(base, wanted), base)


def _queue(state, admitted, capacity, time_step, spec):
    """Advance the backlog; the share of attempts served late and the share refused outright."""
    room = capacity * spec.max_wait
    inflow = (admitted - capacity) * time_step
    backlog = state.backlog + inflow
    overflow = np.clip(backlog - room, 0.0, None)
    state.backlog = np.clip(backlog, 0.0, room)
    with np.errstate(divide="ignore", invalid="ignore"):
        refused = np.where(admitted > 0, overflow / np.maximum(admitted * time_step, 1e-12), 0.0)
    wait = state.backlog / np.maximum(capacity, 1e-12)
    late = np.clip(wait / spec.timeout - 0.5, 0.0, 1.0)
    state.busy = np.where(state.backlog > 0, 1.0, admitted / np.maximum(capacity, 1e-12))
    return late, np.clip(refused, 0.0, 1.0)


@np.errstate(under="ignore")  # a delay of 1e-308 steps is none: underflow to 0 is the limit, not a warning
def run_model(specs: Sequence[PlatformSpec], times: np.ndarray, *, time_step: float) -> Mapping[str, PlatformRun]:
    """Step every infrastructure over ``times`` (seconds after the start); one :class:`PlatformRun` each."""
    order = _order(specs)
    samples = max(np.atleast_1d(s.headroom).shape[0] for s in specs)
    shape = (samples, len(times))
    profiles, states, runs = {}, {}, {}
    for spec in order:
        profiles[spec.id] = {name: _profile(getattr(spec, name), shape)
                             for name in ("demand", "lost_stays", "lost_moves", "shed", "added", "ceiling", "slowdown")}
        profiles[spec.id]["autoscaled"] = np.broadcast_to(np.asarray(spec.autoscaled, dtype=bool), (samples,))
        profiles[spec.id]["delay_steps"] = np.broadcast_to(np.asarray(spec.autoscale_delay, float) / time_step,
                                                           (samples,))
        zeros = np.zeros(samples)
        states[spec.id] = _State(zeros.copy(), zeros.copy(), zeros.copy(), np.ones(shape), zeros.copy())
        runs[spec.id] = PlatformRun(*(np.zeros(shape) for _ in range(8)))
    for step in range(len(times)):
        sent: dict[str, list[np.ndarray]] = {}
        for spec in order:
            _one_step(spec, profiles[spec.id], states, runs[spec.id], step, time_step, sent)
    return runs


def _one_step(spec, profiles, states, run, step, time_step, sent):
    state = states[spec.id]
    upstream = np.mean(sent[spec.id], axis=0) if spec.id in sent else 1.0
    profiles["offered_seen"] = profiles["demand"][:, step] * upstream
    offered, admitted, shed, own, capacity, demand = _step_platform(spec, profiles, state, step, time_step, upstream)
    dependency = np.zeros_like(own)
    for other in spec.depends_on:
        dependency = 1.0 - (1.0 - dependency) * (1.0 - states[other].p_request)
        sent.setdefault(other, []).append(admitted * (1.0 - own))
    p_admitted = 1.0 - (1.0 - own) * (1.0 - dependency)
    p_attempt = 1.0 - (1.0 - shed) * (1.0 - p_admitted)
    state.p_attempt = p_attempt
    attempts_per_request, p_request = _amplification(spec.layers, p_attempt, step)
    state.p_request = p_request
    run.requests[:, step], run.attempts[:, step] = demand, demand * attempts_per_request
    run.attempt_failure[:, step], run.request_failure[:, step] = p_attempt, p_request
    run.capacity[:, step], run.offered_work[:, step] = capacity, offered
    run.lost[:, step] = 1.0 - (1.0 - profiles["lost_stays"][:, step]) * (1.0 - profiles["lost_moves"][:, step])
    run.added[:, step] = profiles["added"][:, step] + np.maximum(capacity - (1.0 + spec.headroom), 0.0) * (
        profiles["autoscaled"])
