"""Timing, agreement checks, number formatting and markdown tables shared by the benchmarks."""

from __future__ import annotations

import datetime as _dt
import importlib
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence


class AgreementError(AssertionError):
    """A method under test gave an answer that disagrees with its reference: nothing is timed."""


@dataclass(frozen=True)
class Timing:
    """Median wall time of one repetition over ``items`` evaluations (or customers)."""

    seconds: float
    items: int
    repetitions: int

    @property
    def per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else math.inf


def time_call(function: Callable[[], Any], *, items: int, repetitions: int, warmup: bool = True) -> Timing:
    """Run ``function`` ``repetitions`` times (after one untimed warm-up) and keep the median.

    ``warmup=False`` when the caller has just run the same work (slow peers: no need to pay twice).
    """
    if warmup:
        function()  # warm caches, lazy imports and numpy's first-call costs out of the measurement
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return Timing(seconds=statistics.median(times), items=items, repetitions=repetitions)


def time_interleaved(timers: Sequence[tuple[str, Callable[[], Any], int, int]]) -> dict[str, Timing]:
    """Time several methods in turns -- one repetition of each, then the next round -- keeping medians.

    ``timers`` holds ``(key, function, items, repetitions)``. On a shared machine the load
    drifts over seconds; taking turns exposes every method to the same drift, so their
    ratios stay meaningful even when the absolute rates do not. No warm-up is done here.
    """
    times: dict[str, list[float]] = {key: [] for key, *_ in timers}
    rounds = max((reps for *_, reps in timers), default=0)
    for r in range(rounds):
        for key, function, _, reps in timers:
            if r < reps:
                start = time.perf_counter()
                function()
                times[key].append(time.perf_counter() - start)
    return {
        key: Timing(seconds=statistics.median(times[key]), items=items, repetitions=reps)
        for key, _, items, reps in timers
    }


def per_call_seconds(function: Callable[[], Any]) -> float:
    """Wall time of one call (the first, so lazy costs are included: used only to size loops)."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def optional_import(name: str):
    """The module, or None when the peer is not installed (the table then says so)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def version_of(name: str) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # not installed
        return "not installed"


def machine_description() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "numpy": version_of("numpy"),
        "scipy": version_of("scipy"),
        "mpmath": version_of("mpmath"),
        "pyworkforce": version_of("pyworkforce"),
        "ciw": version_of("ciw"),
        "simpy": version_of("simpy"),
        "reliability": version_of("reliability"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(not set)"),
        "load_average": load,
    }


# ----------------------------------------------------------------------------------------
# Formatting
# ----------------------------------------------------------------------------------------

def fmt_rate(per_second: float | None) -> str:
    """Evaluations (or customers) per second, three significant figures, with k / M suffixes."""
    if per_second is None or not math.isfinite(per_second):
        return "—"
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if per_second >= scale:
            return f"{per_second / scale:.3g} {suffix}/s"
    return f"{per_second:.3g} /s"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None or not math.isfinite(ratio):
        return "—"
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    return f"{ratio:.3g}x"


def fmt_error(error: float | None) -> str:
    if error is None or (isinstance(error, float) and math.isnan(error)):
        return "—"
    if error == 0:
        return "0"
    if math.isinf(error):
        return "inf"
    return f"{error:.1e}"


def fmt_seconds(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; ``|`` inside cells is escaped."""
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |",
             "| " + " | ".join("---" for _ in headers) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


@dataclass(frozen=True)
class Target:
    """One line of the targets table: what was promised, what was measured, and the verdict.

    ``met`` is None when the target could not be measured in this run (the reason is in
    ``measured``).
    """

    area: str
    target: str
    measured: str
    met: bool | None

    @property
    def verdict(self) -> str:
        return {True: "met", False: "**missed**", None: "not measured"}[self.met]


@dataclass(frozen=True)
class Config:
    """How big the benchmark is. ``FULL`` writes results.md; ``QUICK`` only checks that it all runs."""

    name: str
    erlang_groups: tuple[str, ...]
    erlang_points: int  # grid points evaluated by the vectorised methods
    accuracy_points: int  # grid points checked against mpmath
    repetitions: int  # repetitions of each vectorised timing (median kept)
    peer_budget: float  # seconds one repetition of a per-scalar loop may take
    peer_repetitions: int
    peer_min_points: int
    sizing_loads: tuple[float, ...]
    sizing_repetitions: int
    erlang_a_points: int
    erlang_a_accuracy_points: int
    sim_servers: int
    sim_arrival_rate: float
    sim_service_rate: float
    sim_customers: int  # per replication, ours
    sim_replications: int
    peer_sim_customers: int  # per replication, ciw and simpy
    peer_sim_replications: int
    array_sizes: tuple[int, ...] = (1, 10, 100, 1_000, 10_000, 100_000)
    seed: int = 20250109
    mixed_points: int = 200_000  # the "mixed" Erlang grid (under- and overload at c = 100)


FULL = Config(
    name="full",
    erlang_groups=("1e2", "1e3", "1e4", "1e5", "1e6", "fractional", "overload", "mixed"),
    erlang_points=20_000,
    accuracy_points=24,
    repetitions=15,
    peer_budget=0.5,
    peer_repetitions=3,
    peer_min_points=3,
    sizing_loads=(1e2, 1e3, 1e4, 1e5, 1e6),
    sizing_repetitions=21,
    erlang_a_points=20_000,
    erlang_a_accuracy_points=12,
    sim_servers=10,
    sim_arrival_rate=8.0,
    sim_service_rate=1.0,
    sim_customers=40_000,
    sim_replications=50,
    peer_sim_customers=4_000,
    peer_sim_replications=10,
)

QUICK = Config(
    name="quick",
    erlang_groups=("1e2", "1e4", "fractional", "overload"),
    erlang_points=400,
    accuracy_points=4,
    repetitions=2,
    peer_budget=0.02,
    peer_repetitions=1,
    peer_min_points=2,
    sizing_loads=(1e2, 1e4),
    sizing_repetitions=2,
    erlang_a_points=200,
    erlang_a_accuracy_points=3,
    sim_servers=3,
    sim_arrival_rate=1.5,
    sim_service_rate=1.0,
    sim_customers=2_000,
    sim_replications=10,
    peer_sim_customers=600,
    peer_sim_replications=4,
    array_sizes=(1, 100),
)
