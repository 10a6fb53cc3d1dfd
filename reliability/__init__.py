"""reliability: capacity headroom and retry storms, as exact queueing models and notebooks.

The public API is re-exported here; see ``../shared/DESIGN.md`` (in the repository: the
README) for the model behind each name.
"""

from reliability.erlang import (
    ErlangAResult,
    SquareRootStaffing,
    engset,
    erlang_a,
    erlang_b,
    erlang_c,
    halfin_whitt_beta,
    halfin_whitt_p_wait,
    max_load_for_blocking,
    max_load_for_wait,
    mean_wait,
    mmck,
    response_time_sf,
    servers_for_blocking,
    servers_for_wait,
    square_root_staffing,
    wait_quantile,
    wait_sf,
)

__version__ = "0.1.0"

__all__ = [
    "ErlangAResult",
    "SquareRootStaffing",
    "engset",
    "erlang_a",
    "erlang_b",
    "erlang_c",
    "halfin_whitt_beta",
    "halfin_whitt_p_wait",
    "max_load_for_blocking",
    "max_load_for_wait",
    "mean_wait",
    "mmck",
    "response_time_sf",
    "servers_for_blocking",
    "servers_for_wait",
    "square_root_staffing",
    "wait_quantile",
    "wait_sf",
]
