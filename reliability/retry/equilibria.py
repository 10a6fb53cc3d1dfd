"""Mean-field equilibria of a retrying service: the states, their stability, the thresholds.

:class:`RetryFixedPoint` is what the retrying queue (:mod:`.queue`) and connection pool
(:mod:`.pool`) share: their equilibria are the fixed points ``p = F(x)``,
``x = lambda0 * load_per_request(A(p))``, found by the one solver of :mod:`.fixed_point`,
classified (healthy, degraded, collapsed, throttled, unstable, oscillating) into
:class:`Equilibrium` records, and their onset and recovery thresholds read off the
equilibrium curve.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from .._records import Record
from .._validate import ArgumentTypeError, as_array, describe, number
from .fixed_point import EQUILIBRIUM_GRID, FixedPointMap, with_ceiling

__all__ = ["Equilibrium", "equilibria_frame", "RetryFixedPoint"]

# Points of the load variable x (attempt rate or offered load) on which Psi(x) is scanned.
_X_UNIFORM = np.linspace(0.0, 1.0, 4001)
_X_END = np.geomspace(1e-12, 1e-3, 400)
_DERIVATIVE_STEP = 1e-6
# The roots of the map, polished to a few units in the last place (the scan brackets them).
_ROOT_RTOL = 4 * np.finfo(float).eps


@dataclass(frozen=True, repr=False)
class Equilibrium(Record):
    """One fixed point of the retry feedback loop ``p = F(arrival_rate * A(p))``.

    Attributes
    ----------
    arrival_rate : float
        Base rate of *requests* (``lambda0``), per unit time.
    failure_probability : float
        ``p``: probability that one attempt fails (times out, or is blocked).
    amplification : float
        Attempts per request, ``A(p)``.
    attempt_rate : float
        Attempts per unit time offered to the service, ``lambda0 * A(p)``.
    offered_load : float
        Offered load in Erlangs (queue: ``attempt_rate / service_rate``; pool: attempts times
        their mean holding time, connection set-up included).
    throughput : float
        Attempts the servers complete per unit time, timed-out ones included.
    goodput : float
        Requests that succeed per unit time: ``attempt_rate * (1 - p)`` (0 when collapsed).
    utilisation : float
        Share of server capacity in use (``throughput / (servers * service_rate)`` for the queue).
    slope : float
        ``d F(lambda0 A(p)) / dp`` at the fixed point; ``|slope| < 1`` means stable. Below -1
        the round-by-round dynamics oscillate (flapping).
    stable : bool
    state : str
        ``"healthy"`` (the stable state with the fewest failures), ``"degraded"`` (another
        interior stable state), ``"collapsed"`` (queue saturated, ``p = 1``), ``"throttled"``
        (held on an adaptive throttle's failure ceiling), ``"unstable"`` (slope > 1: the
        boundary between two basins) or ``"oscillating"`` (slope < -1, possible only when the
        amplification falls with p, as for a starving token bucket: each retry round
        overshoots the last, so the service flaps between better and worse).
    """

    arrival_rate: float
    failure_probability: float
    amplification: float
    attempt_rate: float
    offered_load: float
    throughput: float
    goodput: float
    utilisation: float
    slope: float
    stable: bool
    state: str


def equilibria_frame(equilibria) -> pd.DataFrame:
    """A tidy DataFrame (one row per equilibrium) from records of :class:`Equilibrium`."""
    columns = list(Equilibrium.__dataclass_fields__)
    try:
        if isinstance(equilibria, (str, bytes, dict)):
            raise TypeError
        records = list(equilibria)
    except TypeError:
        raise ArgumentTypeError(f"equilibria must be a sequence of Equilibrium records, got {describe(equilibria)}") from None
    for record in records:
        if not isinstance(record, Equilibrium):
            raise ArgumentTypeError(f"equilibria must be a sequence of Equilibrium records, got {describe(equilibria)} "
                                    f"(holding {describe(record)})")
    return pd.DataFrame([asdict(e) for e in records], columns=columns)


def rate(name: str, value) -> float:
    """One base rate >= 0 (a single number), checked."""
    value_array = as_array(name, value, minimum=0.0)
    if value_array.ndim != 0:
        raise ValueError(f"{name} must be a single number, got {value!r}")
    return float(value_array)


def check_positive(owner: str, name: str, value, *, strict: bool = True) -> float:
    """A finite number > 0 (>= 0 unless ``strict``), named ``owner.name`` in the error."""
    return number(f"{owner}.{name}", value, minimum=0.0, strict=strict)


def _state_names(records) -> list[str]:
    """Label each root: the first stable interior state is healthy, later ones degraded."""
    states, first_stable = [], True
    for p, kind, _, _, slope, stable in records:
        if kind == "throttled":
            state = "throttled"
        elif not stable:
            # slope > 1: a saddle between two basins; slope < -1: overshoots every round (flapping)
            state = "unstable" if slope > 0 else "oscillating"
        elif p >= 1.0:
            state = "collapsed"
        elif first_stable:
            state = "healthy"
        else:
            state = "degraded"
        if stable:
            first_stable = False
        states.append(state)
    return states


class RetryFixedPoint:
    """Shared machinery: the fixed point ``p = F(x)``, ``x = lambda0 * load_per_request(A(p))``.

    ``x`` is the load variable of the service (attempt rate for the queue, offered Erlangs for
    the pool) and ``F`` its failure probability. Subclasses provide ``_failure(x)`` (vectorised),
    ``_x_of(arrival_rate, amplification)``, its inverse ``_amplification_of(arrival_rate, x)``,
    ``_arrival_rate_for(x, amplification)``, ``_x_limit`` (``x`` at which ``F`` reaches 1 for
    good, or inf), ``_x_scale`` (the natural scale of ``x``: where a geometric scan starts, at
    a thousandth of it), ``_scan_end()`` (the right end of the ``x`` range of the threshold
    scan and whether it is a hard end) and ``_record``.

    The same equilibria are described by the curve ``Psi(x) = x / load_per_request(A(F(x)))``:
    ``x`` is an equilibrium for base rate ``lambda0`` exactly when ``Psi(x) = lambda0``, and the
    map's slope is ``1 - load_per_request * Psi'(x)``: tangency (slope 1) is an extremum of
    ``Psi``. The thresholds are read off that curve.
    """

    policy: Any
    _timed_out = False
    #: Units of the load variable x per Erlang of load (the failure function forms x / this).
    _x_per_load = 1.0

    def checked_rate(self, name: str, value) -> float:
        """A base request rate: one number >= 0 whose attempts (up to ``max_attempts`` per request) stay finite."""
        lam0 = rate(name, value)
        attempts = float(self.policy.max_attempts)
        with np.errstate(over="ignore"):
            top = float(self._x_of(lam0, np.array([attempts]))[0]) / self._x_per_load
        if not math.isfinite(top):
            raise ValueError(f"{name} must keep the offered load of up to {attempts:g} attempts per request "
                             f"within the float range, got {name}={describe(value)}")
        return lam0

    # -- the map ---------------------------------------------------------------------
    def _amplification(self, p):
        return np.asarray(self.policy.amplification(p, timed_out=self._timed_out), dtype=np.float64)

    def _ceiling(self) -> float | None:
        ceiling = getattr(self.policy, "failure_ceiling", None)
        return None if ceiling is None else float(ceiling)

    def _fixed_point_map(self, arrival_rates: np.ndarray) -> FixedPointMap:
        """The maps ``p -> F(lambda0 load(A(p)))``, one row per base rate, on the grid that brackets a ceiling."""

        def failure(index, amplification):
            lam0 = arrival_rates[index]
            if np.ndim(amplification) > lam0.ndim:  # a scan: rows x grid points
                lam0 = lam0[:, None]
            return self._failure(self._x_of(lam0, amplification))

        return FixedPointMap(failure, rows=arrival_rates.size, amplification=self._amplification,
                             grid=with_ceiling(EQUILIBRIUM_GRID, self._ceiling()))

    @staticmethod
    def _failure_probability_roots(fmap: FixedPointMap) -> list[list[tuple[float, str]]]:
        """For each row of ``fmap``, all p in [0, 1] with F(lambda0 A(p)) = p, each tagged "root" or "throttled"."""
        roots = fmap.roots_of_rows(rtol=_ROOT_RTOL, residual=0.0)
        return [[(p, "throttled" if at_jump else "root") for p, at_jump in row] for row in roots]

    def _solve_failure(self, target_p: float) -> float:
        """x with F(x) = target_p (F increasing in x)."""
        low, high = 0.0, self._x_limit
        if not math.isfinite(high):
            high = 1.0
            for _ in range(2100):  # doublings from 1 to beyond the float range: a bracket or an error
                if float(self._failure(np.array([high]))[0]) >= target_p or not math.isfinite(high):
                    break
                high *= 2.0
            if not math.isfinite(high):
                raise ValueError(f"no load within the float range fails {target_p:g} of attempts")
        return float(optimize.brentq(lambda x: float(self._failure(np.array([x]))[0]) - target_p,
                                     low, high, xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=300))

    def _describe_roots(self, fmap: FixedPointMap, arrival_rates: np.ndarray, roots: list) -> list[list[tuple]]:
        """(p, kind, amplification, x, slope, stable) of each root of each base rate, the slopes of all at once."""
        flat = [(row, p) for row, found in enumerate(roots) for p, kind in found if kind == "root"]
        described = iter(())
        if flat:
            rows = np.array([row for row, _ in flat], dtype=int)
            p = np.array([p for _, p in flat], dtype=float)
            amplification = self._amplification(p)
            x = self._x_of(arrival_rates[rows], amplification)
            # saturated: F = 1 on a neighbourhood of p = 1 (however narrow), so the map is flat;
            # at x = c mu exactly the queue is critically loaded and its backlog does not drain
            flat_map = (p >= 1.0) & (x >= self._x_limit)
            slope = np.zeros(p.shape)
            if (~flat_map).any():
                slope[~flat_map] = fmap.slope(rows[~flat_map], p[~flat_map], step=_DERIVATIVE_STEP)
            described = iter(zip(p.tolist(), amplification.tolist(), x.tolist(), slope.tolist()))
        records = []
        for lam0, found in zip(arrival_rates.tolist(), roots):
            row = []
            for root, kind in found:
                if kind == "throttled":
                    # held on the ceiling: the policy lets through just the load that fails p of attempts
                    x_root = self._solve_failure(root)
                    row.append((root, kind, self._amplification_of(lam0, x_root), x_root, 0.0, True))
                else:
                    p_root, amp_root, x_root, slope_root = next(described)
                    row.append((p_root, kind, amp_root, x_root, slope_root, abs(slope_root) < 1.0))
            records.append(row)
        return records

    def equilibria(self, arrival_rate) -> tuple:
        """Every equilibrium at base request rate ``arrival_rate``, sorted by failure probability.

        The fixed-point map is scanned on a fixed grid of p (uniform, plus geometric clusters
        near 0 and 1), each sign change of ``F(lambda0 A(p)) - p`` is polished
        (:mod:`.fixed_point`) and exact zeros on the grid (the collapsed state p = 1 of a
        saturated queue) are kept. A double root exactly at a tangency (one parameter value)
        can be missed; tests compare the result with a brute-force scan of a million points.
        """
        return self.equilibria_of([self.checked_rate("arrival_rate", arrival_rate)])[0]

    def equilibria_of(self, arrival_rates) -> list[tuple]:
        """:meth:`equilibria` at each base rate of ``arrival_rates``, found together (the same records).

        One scan of every rate's map, one polish of every bracket and one evaluation of every slope,
        instead of a few dozen small evaluations per rate: a sweep of a few hundred rates in a
        tenth of the time.

        Examples
        --------
        >>> from reliability import RetryingQueue
        >>> queue = RetryingQueue(10, 1.0, 2.0, 3)
        >>> [[e.state for e in states] for states in queue.equilibria_of([2.0, 5.0])]
        [['healthy'], ['healthy', 'unstable', 'collapsed']]
        """
        if isinstance(arrival_rates, (str, bytes)) or np.ndim(arrival_rates) > 1:
            raise ArgumentTypeError(f"arrival_rates must be a sequence of numbers, got {describe(arrival_rates)}")
        # a list is read item by item: numpy would turn [1, "a"] into two strings
        items = list(arrival_rates) if isinstance(arrival_rates, (list, tuple)) else np.atleast_1d(arrival_rates).tolist()
        rates = np.array([self.checked_rate("arrival_rates", r) for r in items], dtype=float)
        if not rates.size:
            return []
        fmap = self._fixed_point_map(rates)
        records = self._describe_roots(fmap, rates, self._failure_probability_roots(fmap))
        return [tuple(self._record(lam0, p, amplification, x, slope, stable, state)
                      for (p, _, amplification, x, slope, stable), state in zip(found, _state_names(found)))
                for lam0, found in zip(rates.tolist(), records)]

    def equilibria_table(self, arrival_rates) -> pd.DataFrame:
        """Tidy DataFrame of the equilibria for each base rate (one row per equilibrium)."""
        rates = np.atleast_1d(as_array("arrival_rates", arrival_rates, minimum=0.0)).ravel()
        try:
            found = self.equilibria_of(rates)
        except ValueError as error:
            raise ValueError(f"arrival_rates: {error}") from None
        return equilibria_frame([e for states in found for e in states])

    def is_metastable(self, arrival_rate) -> bool:
        """True where two or more stable states coexist (a healthy one and a collapsed/degraded one)."""
        stable = [e for e in self.equilibria(arrival_rate) if e.stable]
        return len(stable) >= 2

    # -- thresholds from the Psi curve -------------------------------------------------
    def _x_end(self) -> tuple[float, bool]:
        """Right end of the x range scanned for Psi and whether it is a hard end (saturation/ceiling)."""
        ceiling = self._ceiling()
        if ceiling is not None and self._failure(np.array([0.0]))[0] < ceiling < 1.0:
            return self._solve_failure(ceiling), True
        return self._scan_end()

    def _psi(self, x) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, dtype=np.float64))
        p = self._failure(x)
        amplification = self._amplification(p)
        ceiling = self._ceiling()
        if ceiling is not None:
            # beyond the ceiling the curve follows the throttle's left limit, A(ceiling)
            amplification = np.where(p <= ceiling, amplification, self._amplification(np.array([ceiling]))[0])
        return self._arrival_rate_for(x, amplification)

    def _psi_derivative(self, x: float) -> float:
        h = _DERIVATIVE_STEP * max(1.0, abs(x))
        values = self._psi(np.array([x - h, x + h]))
        return float((values[1] - values[0]) / (2 * h))

    def _psi_extrema(self) -> tuple[tuple[float, ...], tuple[float, ...], float]:
        """Values of Psi at its local maxima and minima (tangencies), and its value at the right end."""
        # both thresholds (and every safe load between them) read this one curve: trace it once per
        # model (a frozen dataclass: its fields never change, so neither does the curve)
        memo = self.__dict__.get("_psi_extrema_memo")
        if memo is None:
            maxima, minima, end_value = self._trace_psi_extrema()
            memo = self.__dict__["_psi_extrema_memo"] = (tuple(maxima), tuple(minima), end_value)
        return memo

    def _trace_psi_extrema(self) -> tuple[list[float], list[float], float]:
        x_end, hard = self._x_end()
        if hard:
            x = np.unique(np.concatenate([x_end * _X_UNIFORM, x_end * (1.0 - _X_END)]))
            x = x[x < x_end]
        else:
            x = np.geomspace(1e-3 * self._x_scale, x_end, 8001)
        psi = self._psi(x)
        step = np.sign(np.diff(psi))
        maxima, minima = [], []
        for i in np.nonzero(step[:-1] * step[1:] < 0)[0]:
            a, b = float(x[i]), float(x[i + 2])
            try:
                # the tangency condition: d Psi / dx = 0, i.e. the map's slope equals 1
                root = optimize.brentq(self._psi_derivative, a, b, xtol=1e-13 * max(1.0, b))
                value = float(self._psi(np.array([root]))[0])
            except ValueError:  # derivative sign not resolved by differences: take the grid extreme
                value = float(psi[i + 1])
            (maxima if step[i] > 0 else minima).append(value)
        end_value = float(self._psi(np.array([x_end]))[0]) if hard else math.inf
        return maxima, minima, end_value

    def onset_threshold(self) -> float:
        """Base request rate above which the healthy state no longer exists (saddle-node).

        It is the first local maximum of ``Psi`` (where the healthy branch folds over), found by
        root finding on the tangency condition; without a fold, the rate at which the healthy
        branch reaches saturation.

        Both thresholds mark folds (map slope +1). Where the amplification falls with ``p`` (a
        starving :class:`TokenBucket`) a state can also turn ``"oscillating"`` (slope below -1)
        without a fold: e.g. ``TokenBucket.simple()`` on ``c = 10, mu = 1, timeout = 2``
        oscillates from ``lambda0 ~ 9.54`` while this threshold is ``c mu = 10``. Check the
        states of :meth:`equilibria` (or the verdicts of :func:`metastability_map`) for that.
        """
        maxima, _, end_value = self._psi_extrema()
        return maxima[0] if maxima else end_value

    def recovery_threshold(self) -> float:
        """Base request rate below which only the healthy state exists.

        The lowest base rate at which a second stable state (collapsed, degraded or throttled)
        exists: the minimum of ``Psi`` beyond its first fold and its value at saturation. Load
        must be shed below this to leave a collapsed state. For a saturating queue with a fixed
        cap of ``r`` retries the collapsed state ``p = 1`` needs ``lambda0 (r + 1) >= c mu``, so
        the threshold is ``c mu / (r + 1)`` whenever no interior degraded state reaches lower.
        Read off the folds of the equilibrium curve, so for a token bucket the second state that
        appears there may be an ``"oscillating"`` one rather than a stable one (see
        :meth:`onset_threshold`).
        """
        maxima, minima, end_value = self._psi_extrema()
        if not maxima:
            return end_value
        return min([end_value, *minima])
