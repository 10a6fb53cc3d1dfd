"""``python -m benchmarks``: run every comparison and write the markdown results page.

Usage::

    python -m benchmarks                 # full run (a few minutes), writes benchmarks/results.md
    python -m benchmarks --report        # ... and also times the whole notebook report
    python -m benchmarks --quick         # tiny configuration (seconds), writes benchmarks/_work/results-quick.md

Exit status: 0 on success, 1 if an answer-agreement check failed (nothing is written then).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

from benchmarks import erlang_bench, inference_bench, report_bench, sim_bench
from benchmarks.common import (
    FULL,
    QUICK,
    AgreementError,
    Config,
    Target,
    fmt_error,
    fmt_rate,
    fmt_ratio,
    fmt_seconds,
    machine_description,
    markdown_table,
)

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "results.md"
QUICK_OUTPUT = HERE / "_work" / "results-quick.md"

NOTEBOOK_LIMIT = 20.0  # seconds of execution per notebook with default parameters
REPORT_LIMIT = 120.0  # seconds for the whole report
MEMORY_LIMIT = 1.5 * 2**30  # bytes


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def _find(groups, kind, group):
    for g in groups:
        if g.kind == kind and g.group == group:
            return g
    return None


# ----------------------------------------------------------------------------------------
# Targets
# ----------------------------------------------------------------------------------------

def _speed_target(groups, kind, group, peer, threshold) -> Target:
    title = erlang_bench.GROUP_TITLES[group]
    if kind == "B":
        target = (f"Erlang B ≥ {threshold:g}x pyworkforce at {title} (pyworkforce has no Erlang B: against "
                  f"the plain recursion, the loop inside its Erlang C)")
    else:
        target = f"Erlang C ≥ {threshold:g}x pyworkforce's evaluations/s at {title}"
    g = _find(groups, kind, group)
    if g is None:
        return Target(f"Erlang {kind}", target, "not in this configuration", None)
    other = g.methods[peer]
    if other.rate is None:
        return Target(f"Erlang {kind}", target, f"{other.name}: {other.problems() or 'not timed'}", None)
    ratio = g.methods["reliability"].rate / other.rate
    measured = (f"{fmt_ratio(ratio)} ({fmt_rate(g.methods['reliability'].rate)} vs {fmt_rate(other.rate)}); "
                f"scalar calls: {fmt_ratio(_ratio(g.methods['scalar'].rate, other.rate))}")
    if kind == "B":
        # Getting B out of pyworkforce costs one call of its Erlang C (which computes B on the way).
        c_group = _find(groups, "C", group)
        pwf = c_group.methods["pyworkforce"].rate if c_group is not None else None
        if pwf is not None:
            measured += (f"; against pyworkforce's Erlang C call (B is computed inside it): "
                         f"{fmt_ratio(g.methods['reliability'].rate / pwf)}")
    return Target(f"Erlang {kind}", target, measured, ratio >= threshold)


def _gammaincc_target(groups, group, limit) -> Target:
    """Erlang B's time per point over that of one scipy gammaincc call per point, on one grid."""
    g = _find(groups, "B", group)
    target = f"Erlang B within {limit:g}x the time of one scipy gammaincc per point at {erlang_bench.GROUP_TITLES[group]}"
    ours, gamma = g.methods["reliability"].rate, g.methods["gammaincc"].rate
    ratio = gamma / ours
    return Target("Erlang B", target, f"{fmt_ratio(ratio)} the time ({fmt_rate(ours)} vs {fmt_rate(gamma)})",
                  ratio <= limit)


def _targets(groups, sizing, simulators, report: report_bench.ReportResult | None) -> list[Target]:
    targets: list[Target] = []
    for kind, peer in (("B", "recursion"), ("C", "pyworkforce")):
        targets.append(_speed_target(groups, kind, "1e2", peer, 25))
        targets.append(_speed_target(groups, kind, "1e4", peer, 1000))
    if _find(groups, "C", "mixed") is not None:  # the full run's 200,000-point grid (not in --quick)
        targets.append(_speed_target(groups, "C", "mixed", "pyworkforce", 25))
        targets.append(_gammaincc_target(groups, "mixed", 1.4))
    for kind in ("B", "C"):
        ratios = [(g.methods["reliability"].rate / g.methods["floor"].rate, g) for g in groups if g.kind == kind]
        worst, g = min(ratios, key=lambda item: item[0])
        targets.append(Target(
            f"Erlang {kind}", f"Erlang {kind} within 2x of the scipy closed-form floor (one gammaincc per point), every grid",
            f"slowest: {fmt_ratio(worst)} of the floor's speed at {erlang_bench.GROUP_TITLES[g.group]}", worst >= 0.5,
        ))
    worst_error, where, checked = 0.0, "", 0
    for g in groups:
        m = g.methods["reliability"]
        checked += m.checked
        if m.max_error >= worst_error:
            worst_error, where = m.max_error, f"Erlang {g.kind}, {erlang_bench.GROUP_TITLES[g.group]}"
    targets.append(Target(
        "Erlang B / C", f"exact: relative error ≤ {erlang_bench.RTOL:g} against mpmath (50 digits) everywhere",
        f"max {fmt_error(worst_error)} ({where}) over {checked} checked points, fractional and overload included",
        worst_error <= erlang_bench.RTOL,
    ))
    for prefix in ("servers_for_blocking", "servers_for_wait"):
        rows = [r for r in sizing if r.question.startswith(prefix) and r.load == 1e6]
        target = f"{prefix} at 10^6 Erlangs in under 1 ms"
        if not rows:
            targets.append(Target("inverse sizing", target, "not in this configuration", None))
            continue
        seconds = rows[0].ours.seconds
        targets.append(Target("inverse sizing", target, fmt_seconds(seconds), seconds < 1e-3))
    ours = simulators[0]
    ciw_row = next((r for r in simulators if r.name == "ciw"), None)
    target = "M/M/c simulator ≥ 20x ciw's customers/s, estimates agreeing"
    if ciw_row is None or ciw_row.timing is None:
        targets.append(Target("simulator", target, "ciw not installed", None))
    else:
        ratio = ours.timing.per_second / ciw_row.timing.per_second
        targets.append(Target("simulator", target,
                              f"{fmt_ratio(ratio)} ({fmt_rate(ours.timing.per_second)} vs {fmt_rate(ciw_row.timing.per_second)}); "
                              "P(wait) and mean wait intervals overlap", ratio >= 20))
    if report is None:
        for target in (f"every notebook, default parameters, under {NOTEBOOK_LIMIT:g} s of execution",
                       f"whole report under {REPORT_LIMIT / 60:g} minutes",
                       "peak memory under 1.5 GiB"):
            targets.append(Target("report", target, "not measured: run with --report", None))
    else:
        label = " (smoke parameters: not the target's condition)" if report.smoke else ""
        failed = [n.name for n in report.notebooks if n.status != "ok"]
        times = [(n.execution_seconds, n.name) for n in report.notebooks if n.execution_seconds is not None]
        if times:
            slowest, name = max(times)
            text = f"slowest: {name}, {slowest:.1f} s{label}"
            if failed:
                text += f"; FAILED: {', '.join(failed)}"
            met = None if report.smoke else (slowest < NOTEBOOK_LIMIT and not failed)
        else:
            text, met = "no executed notebooks found", None
        targets.append(Target("report", f"every notebook, default parameters, under {NOTEBOOK_LIMIT:g} s of execution",
                              text, met))
        ok = report.returncode == 0
        targets.append(Target("report", f"whole report under {REPORT_LIMIT / 60:g} minutes",
                              f"{report.wall_seconds:.1f} s for {len(report.notebooks)} notebooks"
                              + ("" if ok else f" (exit status {report.returncode})") + label,
                              None if report.smoke else (ok and report.wall_seconds < REPORT_LIMIT)))
        targets.append(Target("report", "peak memory under 1.5 GiB",
                              f"{report.peak_memory_bytes / 2**20:.0f} MiB (largest single process){label}",
                              None if report.smoke else report.peak_memory_bytes < MEMORY_LIMIT))
    return targets


# ----------------------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------------------

def _erlang_section(groups, kind: str) -> str:
    rows, accuracy = [], []
    for g in groups:
        if g.kind != kind:
            continue
        m = g.methods
        title = erlang_bench.GROUP_TITLES[g.group]

        def rate(key):
            r = m[key]
            if r.rate is None:
                return r.problems() or "—"
            return fmt_rate(r.rate) + (f" ({r.timing.items} pts)" if key in ("scalar", "recursion", "pyworkforce") else "")

        mine = m["reliability"].rate
        rows.append([
            title, f"{g.points:,}", rate("reliability"), rate("scalar"), rate("floor"), rate("recursion"),
            rate("pyworkforce"),
            fmt_ratio(_ratio(mine, m["floor"].rate)),
            fmt_ratio(_ratio(mine, m["recursion"].rate)),
            fmt_ratio(_ratio(mine, m["pyworkforce"].rate)),
        ])

        def err(key):
            r = m[key]
            text = fmt_error(r.max_error) + (f" ({r.checked})" if r.checked else "")
            problems = r.problems()
            return f"{text}; {problems}" if problems and r.max_error is not None else (problems or text)

        accuracy.append([title, g.description, err("reliability"), err("scalar"), err("floor"), err("recursion"),
                         err("pyworkforce")])
    speed = markdown_table(
        ["grid", "points", "reliability (array call)", "reliability (scalar calls)", "scipy floor",
         "plain recursion", "pyworkforce", "vs floor", "vs recursion", "vs pyworkforce"], rows)
    errors = markdown_table(
        ["grid", "inputs", "reliability", "reliability (scalar)", "scipy floor", "plain recursion", "pyworkforce"],
        accuracy)
    return (f"Evaluations per second (median of repetitions; per-scalar methods loop over the grid's first "
            f"points, count in brackets). Ratios are reliability's array call over the other method.\n\n{speed}\n\n"
            f"Largest relative error against mpmath at 50 digits (points checked in brackets), and what went wrong:"
            f"\n\n{errors}\n")


def _array_size_section(rows) -> str:
    table = [[f"{r.size:,}", fmt_seconds(r.ours.seconds / (r.ours.items / r.size)), fmt_rate(r.ours.per_second),
              fmt_seconds(r.floor.seconds / (r.floor.items / r.size)), fmt_rate(r.floor.per_second),
              fmt_ratio(_ratio(r.ours.per_second, r.floor.per_second))] for r in rows]
    return ("`erlang_c` on arrays of growing length (~10^2 servers), against the scipy floor on the same "
            "arrays: the time of one call, and evaluations per second. Below a few thousand points the fixed "
            "cost of a call (validation, masks, the series and continued-fraction loops on tiny arrays) "
            "dominates.\n\n"
            + markdown_table(["points per call", "reliability: time per call", "reliability: evaluations/s",
                              "floor: time per call", "floor: evaluations/s", "reliability vs floor"], table)
            + "\n")


def _erlang_a_section(result: erlang_bench.ErlangAResult) -> str:
    table = markdown_table(
        ["method", "evaluations/s", "max rel. error vs mpmath: p_wait / p_abandon / mean_wait", "note"],
        [
            ["reliability.erlang_a (array call)", fmt_rate(result.timing.per_second),
             " / ".join(fmt_error(result.max_errors[k]) for k in ("p_wait", "p_abandon", "mean_wait"))
             + f" ({result.checked} pts)", result.description],
            ["reliability.erlang_a (scalar calls)", fmt_rate(result.scalar_timing.per_second), "—", ""],
            ["pyworkforce", "—", "—", result.pyworkforce],
        ],
    )
    return ("The mpmath reference sums the birth-death chain of M/M/c+M directly (independent of the "
            f"incomplete-gamma form reliability uses).\n\n{table}\n")


def _sizing_section(rows) -> str:
    table = []
    for r in rows:
        peer_time = fmt_seconds(r.peer.seconds) if r.peer is not None else "—"
        table.append([
            r.question, f"{r.load:,.0f}", f"{r.answer:,}", fmt_seconds(r.ours.seconds), r.peer_name,
            f"{r.peer_answer:,}" if isinstance(r.peer_answer, int) else (r.peer_answer or "—"), peer_time,
            fmt_ratio(_ratio(r.peer.seconds, r.ours.seconds)) if r.peer is not None else "—", r.note or "agrees",
        ])
    return (
        "One scalar call each (median of repetitions). reliability's answer is checked in mpmath first: "
        "the target is met at the answer and missed one server below.\n\n"
        + markdown_table(["question", "load (Erlangs)", "servers", "reliability", "peer", "peer's answer",
                          "peer's time", "speed-up", "agreement"], table)
        + "\n"
    )


def _simulator_section(rows, exact, config: Config) -> str:
    ours = rows[0]
    table = []
    for r in rows:
        if r.timing is None:
            table.append([r.name, r.version, r.setup, "—", "—", "—", "—", r.note])
            continue
        table.append([
            r.name, r.version, r.setup, fmt_rate(r.timing.per_second),
            fmt_ratio(ours.timing.per_second / r.timing.per_second) if r is not ours else "1x",
            str(r.p_wait), str(r.mean_wait), "agrees" if r is not ours else "",
        ])
    model = (f"M/M/{config.sim_servers}, arrival rate {config.sim_arrival_rate:g}, service rate "
             f"{config.sim_service_rate:g} (utilisation {config.sim_arrival_rate / (config.sim_servers * config.sim_service_rate):.2f})")
    return (
        f"{model}; each replication starts empty and drops its first 10 % of customers. Estimates are "
        "means over replications with 95 % t-intervals; the run stops unless every peer's interval overlaps "
        f"reliability's. Exact (Erlang C): P(wait) = {exact['p_wait']:.4f}, mean wait = {exact['mean_wait']:.4f}.\n\n"
        + markdown_table(["simulator", "version", "setup", "customers/s", "reliability is", "P(wait)", "mean wait",
                          ""], table)
        + "\n"
    )


def _report_section(report: report_bench.ReportResult | None) -> str:
    if report is None:
        return "Not measured in this run (`python -m benchmarks --report` runs the whole report).\n"
    rows = [[n.name, n.status, f"{n.wall_seconds:.1f} s",
             "—" if n.execution_seconds is None else f"{n.execution_seconds:.1f} s",
             "—" if n.slowest_cell is None else f"{n.slowest_cell:.1f} s"] for n in report.notebooks]
    head = (f"`python -m reliability report` ({'smoke' if report.smoke else 'default'} parameters): "
            f"{report.wall_seconds:.1f} s wall, exit status {report.returncode}, peak memory "
            f"{report.peak_memory_bytes / 2**20:.0f} MiB (largest single process: the report or one kernel).\n\n")
    return head + markdown_table(["notebook", "status", "wall (with kernel start)", "execution (cells)",
                                  "slowest cell"], rows) + "\n"


def render(config: Config, machine, targets, groups, sizes, erlang_a, sizing, simulators, exact, report,
           elapsed, inference=None) -> str:
    lines = [
        "# Benchmarks: reliability against its peers",
        "",
        f"Generated by `python -m benchmarks{' --quick' if config is QUICK else ''}"
        f"{' --report' if report is not None else ''}` on {machine['date']} in {elapsed:.0f} s. "
        "All numbers come from one run on a shared 2-core machine with other jobs beside it, so absolute rates "
        "are noisy (tens of percent); ratios compare methods timed in the same run on the same inputs. "
        "Every method's answers were checked before it was timed.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores; Python {machine['python']}, numpy {machine['numpy']}, "
        f"scipy {machine['scipy']}, mpmath {machine['mpmath']}; peers: pyworkforce {machine['pyworkforce']}, "
        f"ciw {machine['ciw']}, simpy {machine['simpy']}. OPENBLAS_CORETYPE: {machine['OPENBLAS_CORETYPE']} "
        "(when set it slows numpy's BLAS, which these benchmarks barely use). "
        f"Load average at start: {machine['load_average']}.",
        "",
        "## Targets",
        "",
        markdown_table(["area", "target", "measured", "verdict"],
                       [[t.area, t.target, t.measured, t.verdict] for t in targets]),
        "",
        "## Erlang B",
        "",
        "Methods: **reliability** `erlang_b(servers, load)` on the whole grid in one call, and once per point; "
        "**scipy floor** `exp(c log a - a - gammaln(c+1)) / gammaincc(c+1, a)` vectorised (one incomplete-gamma "
        "call per point: no exact method can be much faster); **plain recursion** `B(k) = a B(k-1) / (k + a B(k-1))` "
        "in a Python loop; **pyworkforce** has no Erlang B.",
        "",
        _erlang_section(groups, "B"),
        "## Erlang C",
        "",
        "Methods as for Erlang B, with `C = B / (1 - (a/c)(1 - B))` (1 where a ≥ c) on top; **pyworkforce** is "
        "`ErlangC(transactions=load, aht=1, asa=1, interval=1).waiting_probability(servers)`, one object per point.",
        "",
        _erlang_section(groups, "C"),
        "## Fixed cost per call",
        "",
        _array_size_section(sizes),
        "## Erlang A (M/M/c+M)",
        "",
        _erlang_a_section(erlang_a),
        "## Inverse sizing",
        "",
        _sizing_section(sizing),
        "## Simulator (M/M/c)",
        "",
        _simulator_section(simulators, exact, config),
        "## Whole report",
        "",
        _report_section(report),
        inference_bench.render_section(inference) if inference is not None else "",
    ]
    return "\n".join(lines)


def run(config: Config, *, output: Path, with_report: bool = False, smoke_report: bool = False,
        log: Callable[[str], None] | None = None) -> str:
    """Run every section of ``config`` and write the markdown page to ``output``; returns it."""
    if log is None:
        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

    start = time.perf_counter()
    machine = machine_description()
    groups = erlang_bench.bench_erlang_bc(config, log=log)
    sizes = erlang_bench.bench_array_sizes(config, log=log)
    erlang_a = erlang_bench.bench_erlang_a(config, log=log)
    sizing = erlang_bench.bench_sizing(config, log=log)
    simulators, exact = sim_bench.bench_simulators(config, log=log)
    inference = inference_bench.bench_inference(inference_bench.QUICK if config is QUICK else inference_bench.FULL, log=log)
    report = report_bench.bench_report(smoke=smoke_report, log=log) if with_report else None
    targets = _targets(groups, sizing, simulators, report)
    text = render(config, machine, targets, groups, sizes, erlang_a, sizing, simulators, exact, report,
                  time.perf_counter() - start, inference)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    log(f"wrote {output}")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny configuration (seconds): checks that it all runs")
    parser.add_argument("--report", action="store_true",
                        help="also run the whole notebook report and measure its time and memory")
    parser.add_argument("--smoke-report", action="store_true",
                        help="with --report: use the notebooks' smoke parameters (fast; not the targets' condition)")
    parser.add_argument("--output", "-o", type=Path, default=None,
                        help=f"markdown file to write (default: {DEFAULT_OUTPUT.relative_to(HERE.parent)}, "
                             f"or {QUICK_OUTPUT.relative_to(HERE.parent)} with --quick)")
    args = parser.parse_args(argv)
    config = QUICK if args.quick else FULL
    output = args.output or (QUICK_OUTPUT if args.quick else DEFAULT_OUTPUT)
    try:
        text = run(config, output=output, with_report=args.report, smoke_report=args.smoke_report)
    except AgreementError as exc:
        print(f"answer-agreement check failed, nothing written: {exc}", file=sys.stderr)
        return 1
    targets = text.split("## Targets", 1)[1].split("## Erlang B", 1)[0]
    print(targets.strip())
    return 0
