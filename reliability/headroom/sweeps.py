"""Sweeps for the notebooks: requirements and failures over grids of parameters, as tidy DataFrames."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from .._validate import as_array, describe, is_scalar, number
from .capacity import _capacity, _sources_for
from .side import _extremes, _policy, check_load
from .sizing import DEFAULT_MAX_SERVERS, _target, _whole
from .split import split_requirement

__all__ = ["headroom_sweep", "failure_sweep"]


def _sequence(name: str, value) -> list:
    if isinstance(value, (str, bytes)) or is_scalar(value):
        return [value]
    if isinstance(value, (list, tuple)):
        values = list(value)  # each element is checked by the call it goes to (a number, or a surge side)
    else:
        values = list(as_array(name, value).ravel())
    if not values:
        raise ValueError(f"{name} must not be empty")
    return values


def _numbers(name: str, value) -> list:
    """A number or a sequence of numbers, checked as numbers (each value's range by the call it goes to)."""
    return [value] if is_scalar(value) else _sequence(name, list(as_array(name, value).ravel()))


def headroom_sweep(offered_load, new_share, target, surge=1.0, *, surge_on="both", capacity=None, retry_policy=None,
                   autoscaling=None, whole_servers=True, max_servers=DEFAULT_MAX_SERVERS):
    """Split and pooled requirements over a grid of parameters: one row per point.

    ``offered_load``, ``new_share``, ``target``, ``surge``, ``surge_on`` and ``retry_policy``
    may each be one value or a sequence (every combination is computed; give policies as a
    list, e.g. ``[None, "fixed:3", "budget:0.1"]``). Columns: the inputs, then for each of
    ``old``, ``new``, ``pooled``: ``_load``, ``_servers``, ``_headroom``, ``_failure``,
    ``_state``, ``_metastable``; then ``split_servers``, ``split_headroom``, ``tax_servers``,
    ``tax_share`` (and ``autoscaling_*`` with autoscaling). A point whose target cannot be met
    raises ``ValueError``.

    Examples
    --------
    >>> frame = headroom_sweep(100.0, [0.0, 0.5], 0.01, [1.0, 2.0])
    >>> frame[["new_share", "surge", "tax_servers"]].to_string(index=False)
    ' new_share  surge  tax_servers\\n       0.0    1.0          0.0\\n       0.0    2.0          0.0\\n       0.5    1.0         11.0\\n       0.5    2.0         13.0'
    """
    policies = [None] if retry_policy is None else (
        list(retry_policy) if isinstance(retry_policy, (list, tuple)) else [retry_policy])
    grid = itertools.product(_numbers("offered_load", offered_load), _numbers("new_share", new_share),
                             _numbers("target", target), _numbers("surge", surge),
                             _sequence("surge_on", surge_on), policies)
    rows = [
        split_requirement(load, share, eps, k, surge_on=side, capacity=capacity, retry_policy=policy,
                          autoscaling=autoscaling, whole_servers=whole_servers, max_servers=max_servers).as_row()
        for load, share, eps, k, side, policy in grid
    ]
    return pd.DataFrame(rows)


def failure_sweep(base_load, headroom, surge, *, capacity=None, retry_policy=None, target=None, whole_servers=True):
    """Worst-state failure of one side over headroom x surge: one row per point (for heatmaps).

    Servers are ``base_load * (1 + headroom)``, rounded to the nearest whole number when
    ``whole_servers`` (the ``servers`` and ``headroom`` columns give the values used). Columns:
    ``base_load, headroom_asked, servers, headroom, surge, failure, healthy_failure, state,
    metastable`` and, with a ``target``, ``meets_target``.

    Examples
    --------
    >>> f = failure_sweep(100.0, [0.0, 0.5], [1.0, 2.0])
    >>> f.shape
    (4, 9)
    """
    model = _capacity(capacity)
    policy = _policy(retry_policy, model)
    a = number("base_load", base_load, minimum=0.0)
    if a <= 0:
        raise ValueError(f"base_load must be > 0, got {base_load!r}")
    h = np.atleast_1d(as_array("headroom", headroom, minimum=-1.0)).ravel()
    k = np.atleast_1d(as_array("surge", surge, minimum=0.0)).ravel()
    whole = _whole(model, whole_servers)
    eps = None if target is None else _target(target)
    check_load(a, k, policy)
    with np.errstate(over="ignore"):
        servers = a * (1.0 + h)
    if not np.isfinite(servers).all():
        raise ValueError(f"base_load x (1 + headroom) must be a finite number of servers, got base_load="
                         f"{describe(base_load)} with headroom={describe(headroom)}")
    if whole:
        servers = np.floor(servers + 0.5)
    c_grid, k_grid = np.meshgrid(servers, k, indexing="ij")
    h_grid = np.broadcast_to(h[:, None], c_grid.shape)
    c_flat, k_flat = c_grid.ravel(), k_grid.ravel()
    a_flat = np.full(c_flat.shape, a)
    n = _sources_for(model, a_flat)
    e = _extremes(model, policy, c_flat, a_flat, n, k_flat)
    frame = pd.DataFrame({
        "base_load": a_flat, "headroom_asked": h_grid.ravel(), "servers": c_flat, "headroom": c_flat / a - 1.0,
        "surge": k_flat, "failure": e.worst, "healthy_failure": e.healthy,
        "state": e.state.astype(str), "metastable": e.stable_states >= 2,
    })
    if eps is not None:
        frame["meets_target"] = frame["failure"] <= eps
    return frame
