"""The step components of one platform's run, in the order the engine calls them.

Each component owns its state and has one step method reading and writing a shared
:class:`StepState` (what the step has computed so far):

1. :class:`Demand` ``.step``: new requests of the step (Poisson), less what load shedding refuses.
2. :class:`RetryLayer` ``.arrive``: the retries scheduled for this step (Poisson);
   ``.throttle``: the share the client policy rejects locally.
3. :class:`Servers` ``.route``: offered load, routing over the servers in service, the refusal
   probability (connection ceiling, full or closed servers) and, for waiting attempts, the
   response-time failure; ``.serve``: refused, timed-out and successful attempts (binomial).
4. :class:`RetryLayer` ``.settle``: the retries the policy grants, spread over the steps their
   backoff delays land in; requests given up.
5. the platform parts ``.update`` (:mod:`.platform_steps`): health checks, connection limit,
   autoscaler, which change the servers in service for the next step.

Random draws happen in that order, each only when its component is present, so a run without
the new components draws exactly what the original single-loop engine drew.
"""

from __future__ import annotations

import numpy as np

from ..queues import erlang_c, response_time_sf
from ..retry import step_gate
from .kernels import BlockingTable, _binomial_counts as binomial_counts, _poisson_counts as poisson_counts, delay_kernel

__all__ = ["StepState", "Demand", "RetryLayer", "Servers", "wait_refusal"]


class StepState:
    """What the current step has computed so far (arrays over points G, services S, attempt index R)."""

    def __init__(self, points: int, services: int, attempts: int):
        self.arrivals = np.zeros((points, services, attempts))
        self.shed = None
        self.scheduled = None
        self.first_intensity = None
        self.retry_intensity = 0.0
        self.throttled = None
        self.sent = None


class Demand:
    """New requests: Poisson counts per step, drawn in chunks of steps; then load shedding."""

    def __init__(self, rates, profile, time_step: float, steps: int, rng):
        self.rates, self.dt, self.steps, self.rng = rates, time_step, steps, rng
        self.rate_sum = rates.sum(axis=1) * time_step
        self.arriving = profile.arrival_multiple
        self.admitted = profile.admitted_multiple
        self.kept = profile.kept if profile.sheds else None
        self.per_service = profile.service_multiple      # (T, S) or None
        points, services = rates.shape
        self.chunk = max(1, min(steps, 4_000_000 // max(points * services, 1)))
        self.first_chunk = None

    def step(self, s: StepState, t: int) -> None:
        c = t % self.chunk
        if c == 0:
            upto = min(self.steps, t + self.chunk)
            mean = self.rates[None] * (self.arriving[t:upto] * self.dt)[:, :, None]
            if self.per_service is not None:
                mean = mean * self.per_service[t:upto, None, :]
            self.first_chunk = poisson_counts(self.rng, mean)
        s.arrivals[..., 0] = self.first_chunk[c]
        if self.kept is not None:
            s.shed = binomial_counts(self.rng, s.arrivals[..., 0].copy(), 1.0 - self.kept[t][:, None])
            s.arrivals[..., 0] -= s.shed
        # Erlang B is the blocking of a Poisson stream of a given *intensity*: the offered load is
        # the expected one (new requests at their rate, retries as scheduled), not the realised
        # count, whose Poisson scatter B already accounts for.
        if self.per_service is None:
            s.first_intensity = self.rate_sum * self.admitted[t]
        else:
            s.first_intensity = (self.rates * self.per_service[t]).sum(axis=1) * self.dt * self.admitted[t]

    def intensity_kept(self, t: int, keep) -> np.ndarray:
        """Expected new requests per step that pass a client throttle keeping ``keep`` (G, S)."""
        rates = self.rates if self.per_service is None else self.rates * self.per_service[t]
        return (rates * self.admitted[t][:, None] * self.dt * keep).sum(axis=1)


class RetryLayer:
    """The clients' retries: delay kernels, retries in flight, and the policy's per-step gate.

    Retries in flight are expected counts per future step (the Poisson approximation to many
    independent clients each retrying at a random time), in a ring of ``J`` steps.
    """

    def __init__(self, clients, max_retries: int, caps, rates, time_step: float, with_timeouts: bool, rng):
        self.r, self.rng = max_retries, rng
        points, services = rates.shape
        r = max_retries
        refused = [delay_kernel(clients.backoff, k, time_step, 0.0) for k in range(1, r + 1)]
        timed_out = ([delay_kernel(clients.backoff, k, time_step, clients.timeout) for k in range(1, r + 1)]
                     if with_timeouts else refused)
        self.J = max([len(x) for x in refused + timed_out], default=2)
        self.K_ref = np.zeros((self.J, max(r, 1)))
        self.K_to = np.zeros((self.J, max(r, 1)))
        for k in range(r):
            self.K_ref[:len(refused[k]), k] = refused[k]
            self.K_to[:len(timed_out[k]), k] = timed_out[k]
        self.ref_offsets = [j for j in range(self.J) if self.K_ref[j].any()]
        self.to_offsets = [j for j in range(self.J) if self.K_to[j].any()]
        self.pending = np.zeros((self.J, points, services, max(r, 1)))
        self.with_timeouts = with_timeouts
        # policy state (mean field over the client population): the policy's per-step gate
        self.gate = step_gate(clients.policy, rates, time_step, clients.population)
        self.cap_mask = None
        if caps is not None:
            self.cap_mask = (np.arange(max(r, 1))[None, :] < caps[:, None]).astype(np.float64)[:, None, :]

    def arrive(self, s: StepState, t: int) -> None:
        if not self.r:
            s.retry_intensity = 0.0
            return
        slot = t % self.J
        s.scheduled = self.pending[slot].copy()
        s.retry_intensity = s.scheduled.sum(axis=(1, 2))
        s.arrivals[..., 1:] = poisson_counts(self.rng, s.scheduled)
        self.pending[slot] = 0.0

    def throttle(self, s: StepState, t: int, demand: Demand) -> None:
        reject = self.gate.rejection()
        if reject is None:
            s.throttled, s.sent = None, s.arrivals
            return
        s.throttled = binomial_counts(self.rng, s.arrivals, reject[..., None])
        s.sent = s.arrivals - s.throttled
        # expected attempts that pass the throttle (one client population per service)
        keep = 1.0 - reject
        s.first_intensity = demand.intensity_kept(t, keep)
        if self.r:
            s.retry_intensity = (s.scheduled * keep[..., None]).sum(axis=(1, 2))

    def settle(self, s: StepState, t: int) -> None:
        """Grant the retries wanted after attempts 0..r-1 and schedule them; count requests given up."""
        refused = s.blocked if s.throttled is None else s.blocked + s.throttled
        timeouts = s.timeouts
        if not self.r:
            s.abandoned = refused[..., 0] + (timeouts[..., 0] if self.with_timeouts else 0.0)
        else:
            r = self.r
            want_ref = refused[..., :r]
            want_to = timeouts[..., :r] if self.with_timeouts else None
            if self.cap_mask is not None:
                # points with a lower cap give up after their last allowed retry
                want_ref = want_ref * self.cap_mask
                if self.with_timeouts:
                    want_to = want_to * self.cap_mask
            grant_ref, grant_to = self.gate.grant(t, s.arrivals[..., 0], want_ref, want_to, s.successes)
            # spread the granted retries over the steps their backoff delays land in
            for j in self.ref_offsets:
                self.pending[(t + j) % self.J] += grant_ref * self.K_ref[j]
            if self.with_timeouts:
                for j in self.to_offsets:
                    self.pending[(t + j) % self.J] += grant_to * self.K_to[j]
            s.abandoned = refused.sum(axis=-1) - grant_ref.sum(axis=-1)
            if self.with_timeouts:
                s.abandoned += timeouts.sum(axis=-1) - grant_to.sum(axis=-1)
        if s.shed is not None:
            s.abandoned = s.abandoned + s.shed
        self.gate.observe(t, s.arrivals, s.successes)


def wait_refusal(slots, load, wait, holding_time):
    """P(an attempt waits longer than ``wait`` for one of ``slots``) in M/M/slots: ``C e^{-(k-a) w / h}``.

    Examples
    --------
    >>> round(float(wait_refusal(10.0, 5.0, 0.0, 1.0)), 6)   # no wait allowed: Erlang C
    0.036105
    """
    slots, load = np.broadcast_arrays(np.asarray(slots, dtype=np.float64), np.asarray(load, dtype=np.float64))
    c = np.asarray(erlang_c(slots, load), dtype=np.float64)
    decay = np.exp(-np.maximum(slots - load, 0.0) * wait / holding_time)
    return np.where(load >= slots, 1.0, c * decay)


class Servers:
    """The platform's servers: which are in service, what they refuse, and the attempts' outcomes.

    ``queueing=False``: each routed server is a loss system in equilibrium within a step
    (Erlang B, quasi-static). ``queueing=True``: each is an M/M/k queue; an attempt fails when
    its wait plus service exceeds the client timeout (the abandoned attempt is still served).
    A platform-level ceiling refuses first; the servers see what it lets through.
    """

    def __init__(self, infrastructure, k_slots, costs, profile, *, ceiling, queueing: bool, timeout: float,
                 max_retries: int, with_timeouts: bool, time_step: float, rng):
        self.rng, self.dt, self.r, self.with_timeouts = rng, time_step, max_retries, with_timeouts
        self.hold_first, self.hold_retry, self.p_to_first, self.p_to_retry = costs
        self.profile, self.queueing, self.timeout = profile, queueing, timeout
        points = k_slots.shape[0]
        self.n0, self.n_max = infrastructure.servers, infrastructure.max_servers
        self.sharded = infrastructure.routing == "sharded"
        self.has_limit = infrastructure.connection_limit is not None
        self.static = (infrastructure.health_check is None and not self.has_limit
                       and infrastructure.autoscaler is None)
        self.server_wait = 0.0
        self.front = None
        if ceiling is not None and ceiling.level == "server":
            k_slots = np.minimum(k_slots, ceiling.size)
            self.server_wait = ceiling.wait_timeout
        elif ceiling is not None:
            self.front = ceiling
            self.front_table = BlockingTable(np.array([ceiling.size])) if ceiling.wait_timeout == 0 else None
        self.k_slots = k_slots
        self.table = BlockingTable(k_slots)
        # servers: provisioned (autoscaler), admitted (health check), open (connection limit)
        self.index = np.arange(self.n_max)
        self.provisioned_count = np.full(points, self.n0, dtype=np.int64)
        self.provisioned = self.index[None, :] < self.provisioned_count[:, None]
        self.admitted = np.ones((points, self.n_max), dtype=bool)
        self.open = np.ones((points, self.n_max), dtype=bool)
        self.routed = self.provisioned & self.admitted
        self.n_routed = np.full(points, float(self.n0))
        self.n_open = self.n_routed

    def _holding_time(self, s: StepState) -> np.ndarray:
        """Mean slot time of this step's attempts (s)."""
        total = s.first_intensity + s.retry_intensity
        return np.divide(s.offered_load * self.dt, total, out=np.array(self.hold_first[0], dtype=np.float64),
                         where=total > 0)

    def _server_failure(self, per_server, s: StepState) -> np.ndarray:
        if self.queueing:
            hold = self._holding_time(s)
            return np.asarray(response_time_sf(self.k_slots, per_server, self.timeout, 1.0 / hold), dtype=np.float64)
        if self.server_wait > 0:
            return wait_refusal(self.k_slots, per_server, self.server_wait, self._holding_time(s))
        return self.table.lookup(per_server)

    def _front_refusal(self, s: StepState) -> np.ndarray:
        if self.front_table is not None:
            return self.front_table.lookup(s.offered_load)
        return wait_refusal(self.front.size, s.offered_load, self.front.wait_timeout, self._holding_time(s))

    def route(self, s: StepState, t: int) -> None:
        """Offered load, the servers in service, and the refusal probability ``p_block`` (G,)."""
        s.offered_load = (s.first_intensity * self.hold_first[t] + s.retry_intensity * self.hold_retry[t]) / self.dt
        if not self.static:
            self.routed = self.provisioned & self.admitted
            self.n_routed = self.routed.sum(axis=1)
            self.n_open = (self.routed & self.open).sum(axis=1) if self.has_limit else self.n_routed
        n_routed, n_open = self.n_routed, self.n_open
        if self.profile.capacity_changes:
            share, added = self.profile.server_share[t], self.profile.added_servers[t]
            n_routed, n_open = n_routed * share + added, n_open * share + added
        s.n_open = n_open
        load, front = s.offered_load, None
        if self.front is not None:
            front = self._front_refusal(s)
            load = load * (1.0 - front)
        if self.sharded:
            # every shard keeps its share; the shares of ejected or closed shards fail
            s.b = self._server_failure(load / self.n0, s)
            refused = 0.0 if self.queueing else s.b
            s.p_block = 1.0 - (n_open / self.n0) * (1.0 - refused)
        else:
            s.b = self._server_failure(load / np.where(n_routed > 0, n_routed, 1), s)
            refused = np.zeros_like(s.b) if self.queueing else s.b
            if self.static and not self.profile.capacity_changes:
                s.p_block = refused
            else:
                s.p_block = np.where(n_routed > 0, 1.0 - (n_open / np.where(n_routed > 0, n_routed, 1)) * (1.0 - refused),
                                     1.0)
        if front is not None:
            s.p_block = 1.0 - (1.0 - front) * (1.0 - s.p_block)

    def serve(self, s: StepState, t: int) -> None:
        """Refused, timed-out and successful attempts; what one user meets; carried load."""
        s.blocked = binomial_counts(self.rng, s.sent, s.p_block[:, None, None])
        accepted = s.sent - s.blocked
        if self.with_timeouts:
            p_to = np.empty((accepted.shape[0], 1, accepted.shape[2]))
            if self.queueing:
                p_to[:] = s.b[:, None, None]
            else:
                p_to[:, 0, 0] = self.p_to_first[t]
                p_to[:, 0, 1:] = self.p_to_retry[t][:, None]
            s.timeouts = binomial_counts(self.rng, accepted, p_to)
            s.successes = accepted - s.timeouts
        else:
            s.timeouts = None
            s.successes = accepted
        # what one user meets: with sharded data, their server's state; otherwise the service's
        if self.sharded:
            s.user_p = np.where(self.routed[:, 0] & self.open[:, 0], s.b, 1.0)
        elif self.queueing:
            s.user_p = 1.0 - (1.0 - s.p_block) * (1.0 - s.b)
        else:
            s.user_p = s.p_block
        by_index = accepted.sum(axis=1)
        s.carried_load = (by_index[:, 0] * self.hold_first[t]
                          + (by_index[:, 1:].sum(axis=1) * self.hold_retry[t] if self.r else 0.0)) / self.dt

    @property
    def serving(self) -> np.ndarray:
        return self.provisioned if self.static else (self.provisioned & self.admitted & self.open)
