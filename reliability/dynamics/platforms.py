"""Platforms: an infrastructure of database servers and the optional parts that move its servers
in and out of service (health checks, a connection limit with hysteresis, an autoscaler).

Examples
--------
>>> Infrastructure("db", servers=8, connections_per_server=100).connections
800.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._checks import (MAX_SERVERS, MAX_SLOTS, check_choice, check_instance, check_number as _number, check_text as _text,
                      check_whole as _whole)

__all__ = ["HealthCheck", "ConnectionLimit", "Autoscaler", "Infrastructure"]

@dataclass(frozen=True)
class HealthCheck:
    """Load-balancer health checks that eject and re-admit servers.

    Every ``interval`` seconds (each server at its own phase) the balancer probes each server
    with a connection attempt. A routed server's probe is refused with the same probability as
    a request (its Erlang B blocking); an ejected server is idle and passes. After
    ``unhealthy_threshold`` consecutive failures the server is ejected (its load moves to the
    others); after ``healthy_threshold`` consecutive passes it is routed to again. Defaults are
    common load-balancer settings (10 s, 3 failures, 2 passes).

    Examples
    --------
    >>> HealthCheck().cycle_time   # shortest eject + re-admit cycle of one server
    50.0
    """

    interval: float = 10.0
    unhealthy_threshold: int = 3
    healthy_threshold: int = 2

    def __post_init__(self):
        _number("HealthCheck", "interval", self.interval, strict=True)
        _whole("HealthCheck", "unhealthy_threshold", self.unhealthy_threshold, 1)
        _whole("HealthCheck", "healthy_threshold", self.healthy_threshold, 1)
        object.__setattr__(self, "interval", float(self.interval))

    @property
    def cycle_time(self) -> float:
        return self.interval * (self.unhealthy_threshold + self.healthy_threshold)


@dataclass(frozen=True)
class ConnectionLimit:
    """A connection limit that, once hit, refuses until connections drain (hysteresis).

    A server whose blocking probability in a step reaches ``saturation_blocking`` has hit its
    limit: it then refuses every new connection (its share of attempts fails; the balancer
    still routes to it) until its open connections, which close with mean lifetime
    ``connection_lifetime``, have drained to ``low_water`` x the limit. That takes
    ``drain_time = connection_lifetime * ln(1 / low_water)`` seconds.

    Examples
    --------
    >>> round(ConnectionLimit(connection_lifetime=60.0, low_water=0.5).drain_time, 3)
    41.589
    """

    connection_lifetime: float = 60.0
    saturation_blocking: float = 0.05
    low_water: float = 0.5

    def __post_init__(self):
        _number("ConnectionLimit", "connection_lifetime", self.connection_lifetime, strict=True)
        _number("ConnectionLimit", "saturation_blocking", self.saturation_blocking, strict=True, maximum=1.0)
        _number("ConnectionLimit", "low_water", self.low_water, strict=True)
        if self.low_water >= 1.0:
            raise ValueError(f"ConnectionLimit.low_water must be < 1, got {self.low_water!r}")
        for name in ("connection_lifetime", "saturation_blocking", "low_water"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def drain_time(self) -> float:
        return self.connection_lifetime * math.log(1.0 / self.low_water)


@dataclass(frozen=True)
class Autoscaler:
    """Add servers when utilisation runs above target (Kubernetes-HPA-like, scale-up only).

    Each step the autoscaler reads the utilisation (carried load over provisioned slots) as it
    was ``reaction_delay`` seconds ago (metrics window and decision interval) and orders
    ``ceil(servers * utilisation / target_utilisation)`` servers; an ordered server is routed to
    ``provisioning_time`` seconds later (start-up and readiness), after passing the health
    check if there is one. Utilisation cannot exceed 1, so a large surge needs several rounds.
    Scale-down is not modelled (capacity only grows during a run).

    Examples
    --------
    >>> Autoscaler(max_servers=40).reaction_time
    120.0
    """

    target_utilisation: float = 0.6
    reaction_delay: float = 60.0
    provisioning_time: float = 60.0
    max_servers: int = 64

    def __post_init__(self):
        _number("Autoscaler", "target_utilisation", self.target_utilisation, strict=True, maximum=1.0)
        _number("Autoscaler", "reaction_delay", self.reaction_delay)
        _number("Autoscaler", "provisioning_time", self.provisioning_time)
        _whole("Autoscaler", "max_servers", self.max_servers, 1, MAX_SERVERS)
        for name in ("target_utilisation", "reaction_delay", "provisioning_time"):
            object.__setattr__(self, name, float(getattr(self, name)))

    @property
    def reaction_time(self) -> float:
        return self.reaction_delay + self.provisioning_time


@dataclass(frozen=True)
class Infrastructure:
    """A set of database servers; load never leaves it for another infrastructure.

    ``routing="balanced"``: servers are interchangeable replicas behind a load balancer that
    spreads attempts evenly over the servers it routes to, so ejecting one moves its load to
    the others. ``routing="sharded"``: each user's data lives on one server (a shard), so each
    server always receives ``1/servers`` of the attempts, and the share of a server that is
    ejected or closed fails; a user sees *their* shard's state.

    Examples
    --------
    >>> Infrastructure("db", servers=8, connections_per_server=100).connections
    800.0
    """

    name: str
    servers: int
    connections_per_server: float
    health_check: HealthCheck | None = None
    connection_limit: ConnectionLimit | None = None
    autoscaler: Autoscaler | None = None
    routing: str = "balanced"

    def __post_init__(self):
        _text("Infrastructure", "name", self.name)
        if not isinstance(self.routing, str):
            check_choice("Infrastructure", "routing", self.routing, ("balanced", "sharded"))  # the type error
        if self.routing not in ("balanced", "sharded"):
            raise ValueError(f"Infrastructure.routing must be 'balanced' or 'sharded', got {self.routing!r}")
        for name, kind in (("health_check", HealthCheck), ("connection_limit", ConnectionLimit),
                           ("autoscaler", Autoscaler)):
            check_instance("Infrastructure", name, getattr(self, name), kind, optional=True)
        if self.routing == "sharded" and self.autoscaler is not None:
            raise ValueError("Infrastructure.autoscaler needs routing='balanced': a sharded database cannot "
                             "move users to a new server at once, got routing='sharded' with an autoscaler")
        _whole("Infrastructure", "servers", self.servers, 1, MAX_SERVERS)
        _number("Infrastructure", "connections_per_server", self.connections_per_server, strict=True,
                maximum=MAX_SLOTS)
        if self.autoscaler is not None and self.autoscaler.max_servers < self.servers:
            raise ValueError(f"Autoscaler.max_servers must be >= Infrastructure.servers ({self.servers}), "
                             f"got {self.autoscaler.max_servers!r}")
        object.__setattr__(self, "servers", int(self.servers))
        object.__setattr__(self, "connections_per_server", float(self.connections_per_server))

    @property
    def connections(self) -> float:
        return self.servers * self.connections_per_server

    @property
    def max_servers(self) -> int:
        return self.servers if self.autoscaler is None else self.autoscaler.max_servers

