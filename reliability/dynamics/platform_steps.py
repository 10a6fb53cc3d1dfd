"""The platform parts that move servers in and out of service, each a step component.

Each part is built from its settings (:mod:`.platforms`) and the platform's
:class:`~reliability.dynamics.steps.Servers`, and has ``update(state, t)``, called after the
step's outcomes are known; it changes the server masks the next step routes over. The engine
calls them in the order health check, connection limit, autoscaler (the autoscaler resets the
health-check counters of the servers it adds).
"""

from __future__ import annotations

import numpy as np

__all__ = ["HealthCheckStep", "ConnectionLimitStep", "AutoscalerStep", "platform_parts"]


class HealthCheckStep:
    """Probe the provisioned servers whose phase falls in this step; eject and re-admit them."""

    def __init__(self, settings, servers, time_step: float, rng):
        self.settings, self.servers, self.rng = settings, servers, rng
        points, n_max = servers.admitted.shape
        self.steps_per_interval = int(round(settings.interval / time_step))
        phase = rng.integers(0, self.steps_per_interval, n_max)
        self.probe_masks = [phase == s for s in range(self.steps_per_interval)]
        self.probes_any = [bool(m.any()) for m in self.probe_masks]
        self.fails = np.zeros((points, n_max), dtype=np.int64)
        self.passes = np.zeros((points, n_max), dtype=np.int64)

    def update(self, s, t: int) -> None:
        k = t % self.steps_per_interval
        if not self.probes_any[k]:
            return
        sv, hc = self.servers, self.settings
        probing = sv.provisioned & self.probe_masks[k]
        if not sv.has_limit:
            fail_p = np.where(sv.routed, s.b[:, None], 0.0)
        else:
            # a closed server refuses the probe too; an ejected open one is idle and passes
            fail_p = np.where(sv.routed & sv.open, s.b[:, None], np.where(sv.open, 0.0, 1.0))
        fail = probing & (self.rng.random(sv.admitted.shape) < fail_p)
        ok = probing & ~fail
        self.fails = np.where(ok, 0, self.fails + fail)
        self.passes = np.where(fail, 0, self.passes + ok)
        # eject after enough consecutive failures, re-admit after enough consecutive passes
        sv.admitted = np.where(sv.admitted, self.fails < hc.unhealthy_threshold, self.passes >= hc.healthy_threshold)

    def reset(self, new_servers) -> None:
        """A new server is routed to only after passing its readiness checks."""
        sv = self.servers
        sv.admitted = np.where(new_servers, False, sv.admitted)
        self.fails = np.where(new_servers, 0, self.fails)
        self.passes = np.where(new_servers, 0, self.passes)


class ConnectionLimitStep:
    """Saturated open servers close until their connections have drained (hysteresis)."""

    def __init__(self, settings, servers, time_step: float):
        self.settings, self.servers = settings, servers
        self.drain_steps = max(1, int(round(settings.drain_time / time_step)))
        self.reopen_at = np.zeros(servers.open.shape, dtype=np.int64)

    def update(self, s, t: int) -> None:
        sv = self.servers
        hit = sv.routed & sv.open & (s.b >= self.settings.saturation_blocking)[:, None]
        self.reopen_at = np.where(hit, t + 1 + self.drain_steps, self.reopen_at)
        sv.open = ~hit & (sv.open | (t + 1 >= self.reopen_at))


class AutoscalerStep:
    """Order servers from the delayed utilisation; they arrive after provisioning."""

    def __init__(self, settings, servers, time_step: float, health_check: HealthCheckStep | None):
        self.settings, self.servers, self.health_check = settings, servers, health_check
        points = servers.provisioned_count.shape[0]
        self.delay_steps = int(round(settings.reaction_delay / time_step))
        self.prov_steps = int(round(settings.provisioning_time / time_step))
        self.util_ring = np.zeros((self.delay_steps + 1, points))
        self.ready_ring = np.zeros((self.prov_steps + 1, points), dtype=np.int64)
        self.ordered = servers.provisioned_count.copy()

    def update(self, s, t: int) -> None:
        sv, auto = self.servers, self.settings
        d, p = self.delay_steps, self.prov_steps
        self.util_ring[t % (d + 1)] = np.minimum(s.carried_load / (sv.provisioned_count * sv.k_slots), 1.0)
        if t >= d:
            seen = self.util_ring[(t - d) % (d + 1)]
            desired = np.minimum(np.ceil(sv.provisioned_count * seen / auto.target_utilisation - 1e-9),
                                 auto.max_servers).astype(np.int64)
            order = np.maximum(desired - self.ordered, 0)
            self.ordered += order
            self.ready_ring[(t + p) % (p + 1)] += order
        arriving = self.ready_ring[(t + 1) % (p + 1)].copy()
        self.ready_ring[(t + 1) % (p + 1)] = 0
        if arriving.any():
            new = (sv.index[None, :] >= sv.provisioned_count[:, None]) & \
                  (sv.index[None, :] < (sv.provisioned_count + arriving)[:, None])
            if self.health_check is not None:
                self.health_check.reset(new)
            sv.provisioned_count = sv.provisioned_count + arriving
            sv.provisioned = sv.index[None, :] < sv.provisioned_count[:, None]


def platform_parts(infrastructure, servers, time_step: float, rng) -> list:
    """The update components of a platform, in the order the engine calls them."""
    parts = []
    hc = None
    if infrastructure.health_check is not None:
        hc = HealthCheckStep(infrastructure.health_check, servers, time_step, rng)
        parts.append(hc)
    if infrastructure.connection_limit is not None:
        parts.append(ConnectionLimitStep(infrastructure.connection_limit, servers, time_step))
    if infrastructure.autoscaler is not None:
        parts.append(AutoscalerStep(infrastructure.autoscaler, servers, time_step, hc))
    return parts
