"""The one solver of the retry fixed point ``p = F(x0 · A(p))``: a root scan and a polish.

A service offered load ``x`` fails an attempt with probability ``F(x)``. Clients whose
attempts fail with probability ``p`` make ``A(p)`` attempts per request (their policy's
amplification), so the load is ``x0 · A(p)`` and the failure probability solves
``p = F(x0 · A(p))``. Every model with retry feedback asks this: the retrying queue and pool
want every root (:mod:`.queue`, :mod:`.pool`), split capacity the worst and the healthiest
stable root of many sides at once (:mod:`reliability.headroom`), and the incident sizing the
healthiest (:mod:`reliability.incidents`).

:class:`FixedPointMap` is such a map over rows of independent problems: ``failure(index,
amplification)`` gives ``F`` for the rows ``index`` (``x0`` and whatever ``F`` depends on are
the caller's), ``amplification(p)`` the policy's ``A`` (shared by the rows; None: no retries).
The gap ``F(x0 A(p)) - p`` is evaluated on a fixed grid of ``p`` for all rows at once
(:func:`scan_grid`: uniform points plus geometric clusters at both ends, where the map is
steepest), and each sign change is polished, all brackets together (:func:`polish`: Illinois,
with bisection steps that also close a jump). A bracket that stays a finite drop of the gap
once closed is a *jump* of the map -- an adaptive throttle's failure ceiling -- not a smooth
root. Two roots closer together than the grid spacing can be missed; the tests compare with
brute-force scans of 10^5 to 10^6 points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

__all__ = [
    "scan_grid",
    "with_ceiling",
    "EQUILIBRIUM_GRID",
    "SIZING_GRID",
    "polish",
    "FixedPointMap",
    "Extremes",
    "JUMP",
]


def scan_grid(uniform: int, clustered: int, *, include_one: bool) -> np.ndarray:
    """Points of ``p`` in [0, 1]: ``uniform`` evenly spaced, ``clustered`` geometric near 0 and near 1.

    Without ``include_one`` the point 1 is left out: a policy's amplification may be unbounded
    there, and ``1 - 1e-12`` stands for it.

    Examples
    --------
    >>> grid = scan_grid(5, 3, include_one=False)
    >>> grid.size, float(grid[0]), bool(grid[-1] == 1 - 1e-12)
    (10, 0.0, True)
    """
    points = np.linspace(0.0, 1.0, uniform)
    if not include_one:
        points = points[:-1]
    ends = np.geomspace(1e-12, 1e-2, clustered)
    return np.unique(np.concatenate([points, ends, 1.0 - ends]))


#: Every root of one map (the retrying queue and pool): 2,600 points, 1 included.
EQUILIBRIUM_GRID = scan_grid(2001, 300, include_one=True)
#: The worst and healthiest roots of many rows (split capacity, incident sizing): 740 points.
SIZING_GRID = scan_grid(501, 121, include_one=False)

#: A drop of the gap by more than this across a closed bracket is a jump of the map (a throttle).
JUMP = 1e-7
#: Most polishing steps; a grid cell (<= 2e-3 wide) closes in far fewer.
_POLISH_STEPS = 200


def with_ceiling(grid: np.ndarray, ceiling: float | None) -> np.ndarray:
    """The grid with a policy's failure ceiling and the next double above it, so a jump there is bracketed exactly."""
    if ceiling is None:
        return grid
    grid = np.unique(np.concatenate([grid, [ceiling, np.nextafter(ceiling, 2.0)]]))
    return grid[grid <= 1.0]


def _at_both_ends(function: Callable, index: np.ndarray, low: np.ndarray, high: np.ndarray):
    """``function(index, low), function(index, high)`` in one evaluation (one call costs the same for 2n points)."""
    values = function(np.concatenate([index, index]), np.concatenate([low, high]))
    return values[:index.size], values[index.size:]


def polish(gap: Callable, low: np.ndarray, high: np.ndarray, *, rtol: float = 1e-13,
           residual: float = 1e-14) -> tuple[np.ndarray, np.ndarray]:
    """Shrink brackets ``[low, high]`` of sign changes (gap >= 0 at low, < 0 at high), all at once.

    ``gap(index, p)`` evaluates the gap of the brackets ``index`` at the points ``p``. Illinois
    (modified regula falsi), superlinear on a smooth map; when one end has been kept three times
    running the step is a bisection instead, so a jump is closed at least at bisection's pace. A
    bracket stops when closed to relative width ``rtol`` or when its residual is below
    ``residual`` times ``p`` (rounding noise: it is a root). Only open brackets are evaluated.

    Examples
    --------
    >>> low, high = polish(lambda i, p: 0.5 - p, np.array([0.0]), np.array([1.0]))
    >>> float(low[0]), float(high[0])
    (0.5, 0.5)
    """
    low, high = np.array(low, dtype=float), np.array(high, dtype=float)
    g_low, g_high = _at_both_ends(gap, np.arange(low.size), low, high)
    # an end that is already a root (p = 0 when the map is exactly 0 there): bisecting towards it
    # would never meet the relative width and would stop at 2^-200 of the cell instead
    exact = np.abs(g_low) <= residual * np.maximum(low, 1e-300)
    high[exact] = low[exact]
    kept = np.zeros(low.shape, dtype=int)  # signed run length: > 0 low end moved, < 0 high end moved
    for _ in range(_POLISH_STEPS):
        idx = np.flatnonzero((high - low) > rtol * np.maximum(high, 1e-300))
        if not idx.size:
            break
        lo, hi, glo, ghi, run = low[idx], high[idx], g_low[idx], g_high[idx], kept[idx]
        with np.errstate(all="ignore"):
            x = (lo * ghi - hi * glo) / (ghi - glo)
        bisect = np.abs(run) >= 3
        x = np.where(bisect | ~np.isfinite(x) | (x <= lo) | (x >= hi), 0.5 * (lo + hi), x)
        gx = gap(idx, x)
        up = gx >= 0
        run = np.where(bisect, 0, np.where(up, np.maximum(run, 0) + 1, np.minimum(run, 0) - 1))
        # Illinois: when the same end moves again, halve the other end's value
        low[idx] = np.where(up, x, lo)
        g_low[idx] = np.where(up, gx, np.where(run <= -2, 0.5 * glo, glo))
        high[idx] = np.where(up, hi, x)
        g_high[idx] = np.where(up, np.where(run >= 2, 0.5 * ghi, ghi), gx)
        kept[idx] = run
        # a residual at rounding level is a root: close the bracket on it
        exact = np.abs(gx) <= residual * np.maximum(x, 1e-300)
        low[idx[exact]] = x[exact]
        high[idx[exact]] = x[exact]
    return low, high


@dataclass(frozen=True)
class Extremes:
    """The worst and the healthiest stable fixed point of each row (arrays over rows).

    ``worst`` is the largest ``p`` where the gap changes sign from + to - (1 when the map stays
    above the diagonal up to the end of the grid, or is exactly 1 at ``p = 1``: ``collapsed``);
    ``healthy`` the smallest. ``jump`` marks a worst state held at a jump of the map (a throttle's
    ceiling), ``stable_states`` counts the downward crossings (collapsed included), ``slope`` is
    the map's slope at the worst state (0 where collapsed or at a jump) and ``amplification``
    ``A`` there (for a jump the caller knows better: the load it lets through).
    """

    worst: np.ndarray
    healthy: np.ndarray
    collapsed: np.ndarray
    jump: np.ndarray
    stable_states: np.ndarray
    slope: np.ndarray
    amplification: np.ndarray

    @property
    def state(self) -> np.ndarray:
        """``"stable"``, ``"oscillating"`` (slope below -1: each retry round overshoots),
        ``"throttled"`` (at a jump) or ``"collapsed"``, per row."""
        state = np.full(self.worst.shape, "stable", dtype=object)
        state[self.slope < -1.0] = "oscillating"
        state[self.jump] = "throttled"
        state[self.collapsed] = "collapsed"
        return state


class FixedPointMap:
    """The map ``p -> F_i(x0_i A(p))`` over ``rows`` independent problems ``i`` (module notes).

    Parameters
    ----------
    failure : callable
        ``failure(index, amplification)``: the failure probability of rows ``index`` (an int
        array) when requests make ``amplification`` attempts. ``amplification`` has the shape
        of ``index`` or, for a scan, ``(1, grid size)``, to broadcast against the rows.
    rows : int
    amplification : callable, optional
        ``A(p)`` for an array ``p``; None means no retries (``A = 1``).
    grid : ndarray
        Points of the scan (:data:`SIZING_GRID` by default).
    grid_amplification : ndarray, optional
        ``A`` on the grid, when the caller keeps it.
    at_one : float
        ``A(1)`` (inf where the amplification is unbounded there); used to tell a queue
        saturated at ``p = 1`` when the grid stops short of 1.

    Examples
    --------
    A failure ``F(x) = x / (1 + x)`` at ``x = 0.5 (1 + p)`` (one retry) has its fixed point at
    ``p^2 + 2p - 1 = 0``, ``p = sqrt(2) - 1``:

    >>> fmap = FixedPointMap(lambda i, amp: 0.5 * amp / (1.0 + 0.5 * amp), rows=1,
    ...                      amplification=lambda p: 1.0 + p)
    >>> round(float(fmap.extremes().worst[0]), 12), round(2 ** 0.5 - 1, 12)
    (0.414213562373, 0.414213562373)
    """

    def __init__(self, failure: Callable, rows: int, amplification: Callable | None = None, *,
                 grid: np.ndarray = SIZING_GRID, grid_amplification: np.ndarray | None = None, at_one: float = 1.0):
        self.failure = failure
        self.rows = int(rows)
        self.amplification = amplification
        self.grid = grid
        self.grid_amplification = grid_amplification
        self.at_one = float(at_one)

    # -- evaluations -----------------------------------------------------------------
    def amplification_at(self, p) -> np.ndarray:
        p = np.asarray(p, dtype=np.float64)
        if self.amplification is None:
            return np.ones(p.shape)
        return np.asarray(self.amplification(p), dtype=np.float64)

    @cached_property
    def _grid_amplification(self) -> np.ndarray:
        if self.grid_amplification is not None:
            return self.grid_amplification
        return self.amplification_at(self.grid)

    def value(self, index, p) -> np.ndarray:
        """The map ``F(x0 A(p))`` of rows ``index`` at points ``p`` (same shape)."""
        return np.asarray(self.failure(index, self.amplification_at(p)), dtype=np.float64)

    def gap(self, index, p) -> np.ndarray:
        """``F(x0 A(p)) - p`` of rows ``index`` at points ``p`` (same shape)."""
        p = np.asarray(p, dtype=np.float64)
        return self.value(index, p) - p

    def scan(self, index=None, columns=None) -> np.ndarray:
        """The gap of rows ``index`` (all by default) on the grid (or the grid points ``columns``): (rows, points)."""
        index = np.arange(self.rows) if index is None else index
        grid, amplification = self.grid, self._grid_amplification
        if columns is not None:
            grid, amplification = grid[columns], amplification[columns]
        return np.asarray(self.failure(index, amplification[None, :]), dtype=np.float64) - grid[None, :]

    def saturated(self, index=None) -> np.ndarray:
        """True where the map is exactly 1 at ``p = 1``: a queue offered at least its capacity when
        every attempt fails. At the boundary the saturated queue is null-recurrent (it never
        settles), so it counts as collapsed."""
        index = np.arange(self.rows) if index is None else index
        if not math.isfinite(self.at_one):
            return np.zeros(index.shape, dtype=bool)
        return np.asarray(self.failure(index, np.full(index.shape, self.at_one)), dtype=np.float64) >= 1.0

    def slope(self, index, p, *, step: float, top: float = 1.0) -> np.ndarray:
        """Central difference of the map at ``p`` (clipped to [0, top]) with half-width ``step``."""
        p = np.asarray(p, dtype=np.float64)
        minus, plus = np.clip(p - step, 0.0, top), np.clip(p + step, 0.0, top)
        at_minus, at_plus = _at_both_ends(self.value, index, minus, plus)
        return (at_plus - at_minus) / np.where(plus > minus, plus - minus, 1.0)

    # -- every root of one row -------------------------------------------------------
    def roots(self, row: int = 0, *, rtol: float = 1e-13, residual: float = 1e-14) -> list[tuple[float, bool]]:
        """Every fixed point of one row, sorted: ``(p, at_jump)``.

        Exact zeros of the gap on the grid are roots; each sign change is polished, and one that
        closes on a downward jump is a root held at the jump (its lower end: the ceiling). An
        upward jump is no root.
        """
        return self.roots_of_rows(np.array([row]), rtol=rtol, residual=residual)[0]

    def roots_of_rows(self, index=None, *, rtol: float = 1e-13,
                      residual: float = 1e-14) -> list[list[tuple[float, bool]]]:
        """:meth:`roots` of the rows ``index`` (all by default), found together.

        One scan of every row and one polish of every bracket: each bracket closes on its own
        values, so the roots are those row by row, without a few hundred small evaluations each.

        Examples
        --------
        Two rows of ``F(x) = x`` at ``x = x0 (1 + p)``: ``p = x0 / (1 - x0)``.

        >>> fmap = FixedPointMap(lambda i, amp: np.array([0.2, 0.4])[i if np.ndim(amp) == 1 else i[:, None]]
        ...                      * amp, rows=2, amplification=lambda p: 1.0 + p)
        >>> [[round(p, 12) for p, _ in roots] for roots in fmap.roots_of_rows()]
        [[0.25], [0.666666666667]]
        """
        index = np.arange(self.rows) if index is None else np.asarray(index)
        sign = np.sign(self.scan(index))
        found: list[list[tuple[float, bool]]] = [[] for _ in range(index.size)]
        for k, column in zip(*np.nonzero(sign == 0)):
            found[k].append((float(self.grid[column]), False))
        which, cell = np.nonzero(sign[:, :-1] * sign[:, 1:] < 0)
        if which.size:
            rows = index[which]
            # the polish wants the gap >= 0 at the low end: turn upward crossings over
            down = sign[which, cell]
            low, high = polish(lambda i, p: down[i] * self.gap(rows[i], p), self.grid[cell], self.grid[cell + 1],
                               rtol=rtol, residual=residual)
            at_low, at_high = _at_both_ends(self.gap, rows, low, high)
            drop = down * (at_low - at_high)
            for k, a, b, d, s in zip(which, low, high, drop, down):
                if d <= JUMP:
                    found[k].append((float(0.5 * (a + b)), False))
                elif s > 0:  # a downward jump is a root held at it; an upward one is none
                    found[k].append((float(a), True))
        return [sorted(set(roots)) for roots in found]

    # -- the worst and the healthiest stable state of every row ---------------------
    def healthiest(self) -> np.ndarray:
        """The smallest fixed point of each row (1 where the map never dips below the diagonal)."""
        above = self.scan() >= 0
        crossing = (~above).any(axis=1)
        first = np.where(crossing, np.argmax(~above, axis=1), self.grid.size - 1)
        rows = np.arange(self.rows)
        low, high = polish(lambda i, p: self.gap(rows[i], p), self.grid[np.maximum(first - 1, 0)], self.grid[first])
        return np.where(crossing, 0.5 * (low + high), 1.0)

    def extremes(self, *, slope_step: float = 1e-7) -> Extremes:
        """Worst and healthiest stable fixed points of every row (:class:`Extremes`)."""
        rows = np.arange(self.rows)
        if self.amplification is None:  # no retries: no feedback, the failure at the base load
            p = self.value(rows, np.zeros(self.rows))
            nothing = np.zeros(self.rows)
            return Extremes(p, p.copy(), p >= 1.0, nothing > 0, np.ones(self.rows, dtype=int), nothing,
                            np.ones(self.rows))
        size = self.grid.size
        above = self.scan() >= 0  # column 0 is p = 0, where the map is >= 0: always True
        last = size - 1 - np.argmax(above[:, ::-1], axis=1)
        # the map stays above the diagonal to the end of the grid, or a queue saturates exactly at p = 1
        collapsed = (last == size - 1) | self.saturated()
        crossing = (~above).any(axis=1)
        first = np.where(crossing, np.argmax(~above, axis=1), size - 1)
        # one polish for both brackets; they coincide when there is a single crossing
        both = np.concatenate([rows, rows])
        low, high = polish(lambda i, p: self.gap(both[i], p),
                           self.grid[np.concatenate([last, np.maximum(first - 1, 0)])],
                           self.grid[np.concatenate([np.minimum(last + 1, size - 1), first])])
        worst = np.where(collapsed, 1.0, 0.5 * (low[:self.rows] + high[:self.rows]))
        healthy = np.where(crossing, 0.5 * (low[self.rows:] + high[self.rows:]), 1.0)
        low, high = low[:self.rows], high[:self.rows]
        # a jump (throttle ceiling): the map drops by a finite amount across the polished interval
        at_low, at_high = _at_both_ends(self.gap, rows, low, high)
        jump = ~collapsed & (at_low - at_high > JUMP)
        stable_states = (above[:, :-1] & ~above[:, 1:]).sum(axis=1) + collapsed.astype(int)
        # slope of the map at the worst state: below -1 each retry round overshoots (flapping)
        top = 1.0 - 1e-12
        interior = ~collapsed & ~jump & (np.clip(worst + slope_step, 0.0, top) > np.clip(worst - slope_step, 0.0, top))
        slope = np.zeros(self.rows)
        if interior.any():
            slope = np.where(interior, self.slope(rows, worst, step=slope_step, top=top), 0.0)
        amplification = self.amplification_at(np.minimum(worst, top))
        if collapsed.any():
            amplification = np.where(collapsed, self.at_one, amplification)
        return Extremes(worst, healthy, collapsed, jump, stable_states, slope, amplification)

    # -- predicates for the sizing searches ------------------------------------------
    def worst_at_most(self, level: float) -> np.ndarray:
        """True where the worst stable state fails at most ``level``: ``F(x0 A(level)) <= level``
        and the gap is negative at every grid point above ``level`` (and no saturation at 1)."""
        rows = np.arange(self.rows)
        ok = self.value(rows, np.full(self.rows, level)) <= level
        if self.amplification is None or not ok.any():
            return ok
        ok &= ~self.saturated()
        columns = self.grid > level
        if not columns.any() or not ok.any():
            return ok
        idx = np.flatnonzero(ok)
        ok[idx] = (self.scan(idx, columns) < 0).all(axis=1)
        return ok

    def healthiest_at_most(self, level: float) -> np.ndarray:
        """True where the healthiest stable state fails at most ``level``: the map dips to or below
        the diagonal somewhere in [0, level] (it starts above it, at p = 0)."""
        rows = np.arange(self.rows)
        ok = self.value(rows, np.full(self.rows, level)) <= level
        if self.amplification is None or ok.all():
            return ok
        idx = np.flatnonzero(~ok)
        ok[idx] = (self.scan(idx, self.grid < level) <= 0).any(axis=1)
        return ok
