"""Steady-state queueing models: Erlang B, C and A, Engset, M/M/c/K, M/M/c waiting times,
inverse sizing and square-root staffing.

Every function broadcasts like a numpy ufunc (scalars in give a Python float out) and is
exact to about 1e-12 relative at any size: a million servers, a million Erlangs, fractional
servers, deep overload (load 100x the servers, the retry-storm regime) and waiting rooms of
10^8. Extreme but valid values reach their limits without overflow or warning (1e308 servers
never wait; a time beyond the float range is ``inf``). Two limits are refused by name: the
least-servers searches take loads up to 2**52 Erlangs (whole numbers stay exact), and Erlang A
does not resolve its heavy-traffic limit beyond 1e300 (``x = y`` there). Arguments go through
:mod:`reliability._validate`: a wrong type is a ``TypeError``, a wrong value a ``ValueError``,
each naming the argument; every search has a proven bracket and a step limit.

One file per model: ``erlang_b``, ``erlang_c`` (with the waiting-time distribution),
``erlang_a``, ``engset``, ``mmck``; ``sizing`` holds every inverse (least servers, largest
load, Halfin–Whitt staffing), ``search`` the package's one whole-number and one real
bisection, and ``_kernels`` the log-space numerics they share.
"""

from .engset import engset
from .erlang_a import ErlangAResult, erlang_a
from .erlang_b import erlang_b
from .erlang_c import erlang_c, mean_wait, response_time_sf, wait_quantile, wait_sf
from .mmck import mmck
from .sizing import (
    SquareRootStaffing,
    halfin_whitt_beta,
    halfin_whitt_p_wait,
    max_load_for_blocking,
    max_load_for_wait,
    servers_for_blocking,
    servers_for_wait,
    square_root_staffing,
)

__all__ = [
    "erlang_b",
    "erlang_c",
    "erlang_a",
    "ErlangAResult",
    "engset",
    "mmck",
    "wait_sf",
    "response_time_sf",
    "mean_wait",
    "wait_quantile",
    "servers_for_blocking",
    "servers_for_wait",
    "max_load_for_blocking",
    "max_load_for_wait",
    "halfin_whitt_p_wait",
    "halfin_whitt_beta",
    "square_root_staffing",
    "SquareRootStaffing",
]
