"""Erlang B / C / A and inverse sizing: reliability against pyworkforce, the recursion and the scipy floor.

Besides the closed-form floor, every grid times ``scipy.special.gammaincc`` alone (one
incomplete gamma function per point, the part of Erlang B no exact method avoids), so the
targets can say how close to it Erlang B runs.

Every method is first run on the grid's first ``accuracy_points`` points and compared with
mpmath at 50 digits; reliability must agree to ``RTOL`` there (and raise no RuntimeWarning on
the whole grid) or :class:`~benchmarks.common.AgreementError` is raised and nothing is timed.
A peer that disagrees, refuses or overflows is still timed where it answers, and the table
says what went wrong.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import special

import reliability
from benchmarks import peers
from benchmarks.common import AgreementError, Config, Timing, per_call_seconds, time_call, time_interleaved

RTOL = 1e-10  # reliability's promise against mpmath (the target says "exact": rtol 1e-10)

GROUP_TITLES = {
    "1e2": "~10^2 servers",
    "1e3": "~10^3 servers",
    "1e4": "~10^4 servers",
    "1e5": "~10^5 servers",
    "1e6": "~10^6 servers",
    "fractional": "fractional servers",
    "overload": "overload (a > c)",
    "mixed": "mixed under/overload at c = 100",
}


def erlang_grid(group: str, points: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
    """Servers and loads of one grid, shuffled, and a one-line description for the table.

    Size groups: whole servers log-uniform in [c0/2, 2 c0]; half the loads uniform in
    utilisation 0.5..0.999, half on the Halfin-Whitt scale ``a = c - beta sqrt(c)`` with
    beta in 0.05..3 (where B and C are neither 0 nor 1 at large c). ``fractional``: servers
    uniform in 0.5..2000, loads 0.3..1.5 times the servers. ``overload``: whole servers
    10..10^4, half just overloaded (``a = c + z sqrt(c)``, z in 0..5), half deep (1.5..100 x c).
    ``mixed``: ``c = 100`` and loads uniform in ``[0.5 c, 1.5 c]``, half of them overloaded, as
    users' sweeps are (in the full run 200,000 points, :attr:`Config.mixed_points`).
    """
    if group == "mixed":
        c = np.full(points, 100.0)
        return c, c * rng.uniform(0.5, 1.5, points), "c = 100; a uniform in 0.5 c..1.5 c (half overloaded)"
    half = points // 2
    if group in ("1e2", "1e3", "1e4", "1e5", "1e6"):
        c0 = float(group)
        c = np.round(c0 * 2.0 ** rng.uniform(-1.0, 1.0, points))
        a = np.empty(points)
        a[:half] = c[:half] * rng.uniform(0.5, 0.999, half)
        a[half:] = c[half:] - rng.uniform(0.05, 3.0, points - half) * np.sqrt(c[half:])
        text = f"whole c in [{c.min():.0f}, {c.max():.0f}]; a/c in 0.5..0.999, or a = c - beta sqrt(c), beta 0.05..3"
    elif group == "fractional":
        c = rng.uniform(0.5, 2000.0, points)
        c = np.where(c == np.floor(c), c + 0.5, c)
        a = c * rng.uniform(0.3, 1.5, points)
        text = "c uniform in 0.5..2000 (not whole); a/c in 0.3..1.5"
    elif group == "overload":
        c = np.round(10.0 ** rng.uniform(1.0, 4.0, points))
        a = np.empty(points)
        a[:half] = c[:half] + rng.uniform(0.0, 5.0, half) * np.sqrt(c[:half])
        a[half:] = c[half:] * 10.0 ** rng.uniform(math.log10(1.5), 2.0, points - half)
        text = "whole c in 10..10^4; a = c + z sqrt(c), z 0..5, or a/c in 1.5..100"
    else:
        raise ValueError(f"group must be one of {sorted(GROUP_TITLES)}, got {group!r}")
    # Shuffle each half and interleave them: the grid's first points -- the mpmath subsample and
    # the slow peers' loop -- then take both kinds of load in turn.
    first, second = rng.permutation(half), half + rng.permutation(points - half)
    order = np.empty(points, dtype=int)
    order[0::2] = second  # the Halfin-Whitt / just-overloaded half (the larger one if odd) leads
    order[1::2] = first
    return c[order], a[order], text


@dataclass
class MethodResult:
    """One method on one grid: speed, accuracy on the mpmath subsample, and what went wrong."""

    name: str
    timing: Timing | None = None
    max_error: float | None = None
    checked: int = 0
    failures: Counter = field(default_factory=Counter)  # "TypeError", "NaN", "outside [0, 1]", ...
    note: str = ""

    @property
    def rate(self) -> float | None:
        return None if self.timing is None else self.timing.per_second

    def problems(self) -> str:
        parts = [self.note] if self.note else []
        parts += [f"{what}: {count} pts" for what, count in self.failures.items()]
        if self.max_error is not None and self.max_error > RTOL:
            parts.append(f"wrong (err > {RTOL:g})")
        return "; ".join(parts)


@dataclass
class GroupResult:
    kind: str  # "B" or "C"
    group: str
    description: str
    points: int
    methods: dict[str, MethodResult]


def _check_values(values: np.ndarray, result: MethodResult) -> None:
    values = np.asarray(values, dtype=float)
    nan = int(np.isnan(values).sum())
    inf = int(np.isinf(values).sum())
    outside = int(((values < 0) | (values > 1)).sum() - inf)
    if nan:
        result.failures["NaN"] += nan
    if inf:
        result.failures["inf"] += inf
    if outside:
        result.failures["outside [0, 1]"] += outside


def _errors(values, references) -> list[float]:
    return [peers.relative_error(v, r) for v, r in zip(values, references)]


def _scalar_loop(function, c, a, count):
    """Outputs (float or exception name) of ``function`` on the first ``count`` points."""
    out = []
    for i in range(count):
        try:
            out.append(function(c[i], a[i]))
        except Exception as exc:  # a peer that refuses or overflows: the table says how
            out.append(type(exc).__name__)
    return out


def _prepare_scalar_peer(name, function, c, a, references, config: Config):
    """Check ``function`` per scalar on as many grid points as fit the time budget.

    Returns the result (timing still empty) and the loop to time, or None when it refuses
    every point.
    """
    result = MethodResult(name)
    first = per_call_seconds(lambda: _scalar_loop(function, c, a, 1))
    count = int(min(len(c), max(config.peer_min_points, config.peer_budget / max(first, 1e-9))))
    outputs = _scalar_loop(function, c, a, count)
    numbers = [v for v in outputs if not isinstance(v, str)]
    for v in outputs:
        if isinstance(v, str):
            result.failures[v] += 1
    _check_values(np.array(numbers, dtype=float), result)
    if len(numbers) == 0:
        result.note = "refuses every point"
        return result, None
    checked = [(v, r) for v, r in zip(outputs, references) if not isinstance(v, str)]
    if checked:
        errors = _errors(*zip(*checked))
        result.max_error = max(errors)
        result.checked = len(errors)
    return result, (lambda: _scalar_loop(function, c, a, count), count)


def _reliability_checked(function, c, a, references, label: str) -> tuple[np.ndarray, list[float]]:
    """reliability's values on the subsample, raising AgreementError unless they match mpmath."""
    k = len(references)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            values = np.asarray(function(c[:k], a[:k]), dtype=float)
            whole = np.asarray(function(c, a), dtype=float)
        except RuntimeWarning as exc:
            raise AgreementError(f"{label}: reliability raised a RuntimeWarning: {exc}") from None
    if not np.all(np.isfinite(whole)) or np.any((whole < 0) | (whole > 1)):
        bad = int(np.flatnonzero(~np.isfinite(whole) | (whole < 0) | (whole > 1))[0])
        raise AgreementError(f"{label}: reliability gave {whole[bad]!r} at servers={c[bad]!r}, load={a[bad]!r}")
    errors = _errors(values, references)
    worst = int(np.argmax(errors))
    if errors[worst] > RTOL:
        raise AgreementError(
            f"{label}: reliability disagrees with mpmath at servers={c[worst]!r}, load={a[worst]!r}: "
            f"{values[worst]!r} against {float(references[worst])!r} (relative error {errors[worst]:.2e} > {RTOL:g})"
        )
    # The scalar path must give the same numbers as the vectorised one.
    for i in range(min(k, 3)):
        scalar = function(float(c[i]), float(a[i]))
        if not math.isclose(scalar, values[i], rel_tol=1e-14, abs_tol=1e-300):
            raise AgreementError(f"{label}: scalar call gave {scalar!r}, array call {values[i]!r} at point {i}")
    return values, errors


def bench_erlang_bc(
    config: Config,
    *,
    erlang_b: Callable = reliability.erlang_b,
    erlang_c: Callable = reliability.erlang_c,
    log: Callable[[str], None] = print,
) -> list[GroupResult]:
    """Erlang B and C on every grid of ``config``: reliability, scalar calls, floor, recursion, pyworkforce."""
    results: list[GroupResult] = []
    for g, group in enumerate(config.erlang_groups):
        rng = np.random.default_rng([config.seed, g])
        points = config.mixed_points if group == "mixed" else config.erlang_points
        c, a, description = erlang_grid(group, points, rng)
        k = config.accuracy_points
        log(f"erlang {group}: mpmath references on {k} points")
        ref_b = [peers.mp_erlang_b(ci, ai) for ci, ai in zip(c[:k], a[:k])]
        ref_c = [peers.mp_erlang_c(ci, ai, b) for ci, ai, b in zip(c[:k], a[:k], ref_b)]
        for kind, ours, refs, floor, recursion in (
            ("B", erlang_b, ref_b, peers.floor_erlang_b, peers.recursion_erlang_b),
            ("C", erlang_c, ref_c, peers.floor_erlang_c, peers.recursion_erlang_c),
        ):
            label = f"Erlang {kind}, {GROUP_TITLES[group]}"
            log(f"  {label}")
            methods: dict[str, MethodResult] = {}

            mine = MethodResult("reliability")
            _, errors = _reliability_checked(ours, c, a, refs, label)
            mine.max_error, mine.checked = max(errors), len(errors)
            methods["reliability"] = mine

            low = MethodResult("scipy closed form (floor)")
            _check_values(floor(c, a), low)
            low.max_error = max(_errors(floor(c[:k], a[:k]), refs))
            low.checked = k
            methods["floor"] = low
            methods["gammaincc"] = MethodResult("scipy gammaincc alone", note="not Erlang B: its one gamma function")

            loops = {}
            # The same function called once per point, as pyworkforce is used.
            methods["scalar"], loops["scalar"] = _prepare_scalar_peer(
                "reliability, scalar calls", lambda ci, ai: ours(float(ci), float(ai)), c, a, refs, config
            )
            if group == "fractional":
                methods["recursion"] = MethodResult("plain recursion", note="refuses: needs whole servers")
            else:
                methods["recursion"], loops["recursion"] = _prepare_scalar_peer(
                    "plain recursion", recursion, c, a, refs, config)
            if kind == "B":
                methods["pyworkforce"] = MethodResult("pyworkforce", note="no Erlang B API")
            elif not peers.pyworkforce_available():
                methods["pyworkforce"] = MethodResult("pyworkforce", note="not installed")
            else:
                methods["pyworkforce"], loops["pyworkforce"] = _prepare_scalar_peer(
                    "pyworkforce", peers.pyworkforce_erlang_c, c, a, refs, config)
                if group == "fractional":
                    methods["pyworkforce"].note = "refuses fractional servers"

            # Time everything in turns, so that the ratios see the same machine load.
            timers = [
                ("reliability", lambda: ours(c, a), len(c), config.repetitions),
                ("floor", lambda: floor(c, a), len(c), config.repetitions),
                ("gammaincc", lambda: special.gammaincc(c + 1.0, a), len(c), config.repetitions),
            ]
            timers += [(key, loop, count, config.peer_repetitions)
                       for key, entry in loops.items() if entry is not None for loop, count in [entry]]
            for key, timing in time_interleaved(timers).items():
                methods[key].timing = timing
            results.append(GroupResult(kind, group, description, len(c), methods))
    return results


# ----------------------------------------------------------------------------------------
# Erlang A
# ----------------------------------------------------------------------------------------

@dataclass
class ErlangAResult:
    points: int
    description: str
    timing: Timing
    scalar_timing: Timing
    max_errors: dict[str, float]
    checked: int
    pyworkforce: str


def bench_erlang_a(config: Config, *, erlang_a: Callable = reliability.erlang_a,
                   log: Callable[[str], None] = print) -> ErlangAResult:
    """reliability.erlang_a on an M/M/c+M grid, checked against the birth-death chain in mpmath."""
    rng = np.random.default_rng([config.seed, 100])
    n = config.erlang_a_points
    c = rng.integers(1, 201, n).astype(float)
    mu = np.ones(n)
    lam = c * rng.uniform(0.5, 1.5, n)
    theta = 10.0 ** rng.uniform(-1.3, 1.0, n)
    description = "whole c in 1..200, lambda/(c mu) in 0.5..1.5, theta/mu in 0.05..10"
    k = config.erlang_a_accuracy_points
    log(f"erlang A: mpmath birth-death chain on {k} points")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            ours = erlang_a(c[:k], lam[:k], mu[:k], theta[:k])
            erlang_a(c, lam, mu, theta)
        except RuntimeWarning as exc:
            raise AgreementError(f"Erlang A: reliability raised a RuntimeWarning: {exc}") from None
    max_errors = {"p_wait": 0.0, "p_abandon": 0.0, "mean_wait": 0.0}
    for i in range(k):
        ref = peers.mp_erlang_a(int(c[i]), lam[i], mu[i], theta[i])
        for name in max_errors:
            value = float(np.asarray(getattr(ours, name))[i])
            error = abs(value - ref[name]) / abs(ref[name])
            if not error <= RTOL:
                raise AgreementError(
                    f"Erlang A: reliability's {name} disagrees with mpmath at servers={c[i]!r}, "
                    f"arrival_rate={lam[i]!r}, abandonment_rate={theta[i]!r}: {value!r} against {ref[name]!r} "
                    f"(relative error {error:.2e} > {RTOL:g})"
                )
            max_errors[name] = max(max_errors[name], error)
    timing = time_call(lambda: erlang_a(c, lam, mu, theta), items=n, repetitions=config.repetitions)
    count = min(n, max(config.peer_min_points, 50))
    args = [(float(c[i]), float(lam[i]), 1.0, float(theta[i])) for i in range(count)]

    def scalar_loop():
        for arg in args:
            erlang_a(*arg)

    scalar_timing = time_call(scalar_loop, items=count, repetitions=config.repetitions)
    if peers.pyworkforce_available():
        has = [name for name in dir(peers.pyworkforce_queuing) if "erlang" in name.lower()]
        note = f"no Erlang A (pyworkforce.queuing has only {', '.join(sorted(has))})"
    else:
        note = "not installed"
    return ErlangAResult(n, description, timing, scalar_timing, max_errors, k, note)


# ----------------------------------------------------------------------------------------
# Inverse sizing
# ----------------------------------------------------------------------------------------

BLOCKING_TARGET = 0.01
WAIT_TARGET = 0.2  # P(W > t) <= 0.2, i.e. 80 % answered within t ...
WAIT_TIME = 1.0 / 9.0  # ... t = 20 s with a 3 min mean service time (the call-centre 80/20 rule)


@dataclass
class SizingRow:
    question: str
    load: float
    answer: int
    ours: Timing
    peer_name: str
    peer_answer: int | str | None
    peer: Timing | None
    note: str = ""


def _check_sizing(label: str, n: int, below, at) -> None:
    """``at(n)`` must meet the target and ``below(n - 1)`` must not, in mpmath."""
    if not at(n):
        raise AgreementError(f"{label}: reliability's answer {n} misses the target (mpmath)")
    if n > 0 and below(n - 1):
        raise AgreementError(f"{label}: reliability's answer {n} is not the least: {n - 1} meets the target (mpmath)")


def bench_sizing(
    config: Config,
    *,
    servers_for_blocking: Callable = reliability.servers_for_blocking,
    servers_for_wait: Callable = reliability.servers_for_wait,
    log: Callable[[str], None] = print,
) -> list[SizingRow]:
    rows: list[SizingRow] = []
    for load in config.sizing_loads:
        log(f"sizing at {load:g} Erlangs")
        # Blocking: least c with B(c, a) <= 1 %, against the recursion run upwards.
        n = servers_for_blocking(load, BLOCKING_TARGET)
        ok_b = lambda m: peers.mp_erlang_b(m, load) <= BLOCKING_TARGET  # noqa: E731
        _check_sizing(f"servers_for_blocking({load:g}, {BLOCKING_TARGET})", n, ok_b, ok_b)
        peer_answer = peers.recursion_servers_for_blocking(load, BLOCKING_TARGET)
        timed = time_interleaved([
            ("ours", lambda: servers_for_blocking(load, BLOCKING_TARGET), 1, config.sizing_repetitions),
            ("peer", lambda: peers.recursion_servers_for_blocking(load, BLOCKING_TARGET), 1,
             config.peer_repetitions),
        ])
        ours, peer = timed["ours"], timed["peer"]
        rows.append(SizingRow(f"servers_for_blocking, B <= {BLOCKING_TARGET:g}", load, n, ours,
                              "plain recursion, run upwards", peer_answer, peer,
                              "" if peer_answer == n else "disagrees"))

        # Delay: least c with P(W > t) <= 20 %, against pyworkforce's required_positions.
        n = servers_for_wait(load, WAIT_TARGET, wait_time=WAIT_TIME)
        ok_w = lambda m: peers.mp_wait_sf(m, load, WAIT_TIME) <= WAIT_TARGET  # noqa: E731
        _check_sizing(f"servers_for_wait({load:g}, {WAIT_TARGET}, wait_time={WAIT_TIME:.4g})", n, ok_w, ok_w)
        mine = ("ours", lambda: servers_for_wait(load, WAIT_TARGET, wait_time=WAIT_TIME), 1,
                config.sizing_repetitions)
        question = f"servers_for_wait, P(W > {WAIT_TIME:.3g}) <= {WAIT_TARGET:g}"
        if not peers.pyworkforce_available():
            ours = time_interleaved([mine])["ours"]
            rows.append(SizingRow(question, load, n, ours, "pyworkforce required_positions", None, None,
                                  "not installed"))
            continue
        try:
            peer_answer = peers.pyworkforce_servers_for_wait(load, WAIT_TARGET, WAIT_TIME)
            note = "" if peer_answer == n else "disagrees"
            timed = time_interleaved([
                mine,
                ("peer", lambda: peers.pyworkforce_servers_for_wait(load, WAIT_TARGET, WAIT_TIME), 1,
                 config.peer_repetitions),
            ])
            ours, peer = timed["ours"], timed["peer"]
        except Exception as exc:  # overflow or refusal: the table says so
            peer_answer, peer, note = type(exc).__name__, None, f"{type(exc).__name__}: {exc}"
            ours = time_interleaved([mine])["ours"]
        rows.append(SizingRow(question, load, n, ours, "pyworkforce required_positions", peer_answer, peer, note))
    return rows


# ----------------------------------------------------------------------------------------
# Fixed cost per call: array size sweep
# ----------------------------------------------------------------------------------------

@dataclass
class ArraySizeRow:
    size: int
    ours: Timing
    floor: Timing


def bench_array_sizes(config: Config, *, erlang_c: Callable = reliability.erlang_c,
                      log: Callable[[str], None] = print) -> list[ArraySizeRow]:
    """Erlang C on arrays of 1 .. N points (~10^2 servers): where the per-call cost stops mattering."""
    rng = np.random.default_rng([config.seed, 200])
    c_all, a_all, _ = erlang_grid("1e2", max(config.array_sizes), rng)
    rows = []
    for size in config.array_sizes:
        log(f"array size {size}")
        c, a = c_all[:size], a_all[:size]
        # enough calls per repetition that each repetition lasts a few milliseconds at least
        calls = max(1, int(2000 // size))

        def ours_loop():
            for _ in range(calls):
                erlang_c(c, a)

        def floor_loop():
            for _ in range(calls):
                peers.floor_erlang_c(c, a)

        ours_loop()
        floor_loop()
        timed = time_interleaved([("ours", ours_loop, calls * size, config.repetitions),
                                  ("floor", floor_loop, calls * size, config.repetitions)])
        rows.append(ArraySizeRow(size, timed["ours"], timed["floor"]))
    return rows
