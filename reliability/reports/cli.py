"""Command line: ``python -m reliability report`` and ``python -m reliability params [NAME]``.

Examples
--------
Run every notebook and write ``reports/index.html``::

    python -m reliability report

One notebook, with a parameter changed (values are YAML, as in papermill); the run gets files
of its own and a row of its own in the index::

    python -m reliability report --only 01-erlang-capacity -p blocking_target 0.001

The same, with the notebooks' simulations sent to an existing Dask cluster (an address that does
not answer stops the run at once, before any report is written)::

    python -m reliability report --scheduler tcp://scheduler.example:8786

The notebooks and their questions, then one notebook's parameters::

    python -m reliability params
    python -m reliability params 01-erlang-capacity
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from reliability.cluster import SCHEDULER_VARIABLE, Cluster
from reliability.paths import notebooks_dir as default_notebooks_dir

from .parameters import (
    ParameterError,
    find_notebooks,
    notebook_parameters,
    notebook_question,
    parse_parameter_value,
    read_notebook,
    read_parameter_file,
    resolve_notebook,
    smoke_parameters,
)
from .run import DEFAULT_CELL_TIMEOUT, build_reports

__all__ = ["main"]


def _add_report_command(commands) -> None:
    report = commands.add_parser(
        "report",
        help="run notebooks with papermill and render HTML reports with an index",
        description=(
            "Run the notebooks (all, or those named with --only) with papermill, render each to "
            "OUTPUT/RUN.html, write its recorded results to OUTPUT/RUN.json, keep the executed "
            "notebook as OUTPUT/RUN.ipynb and write OUTPUT/index.html. RUN is the notebook's name, "
            "followed by the parameters that differ from its defaults. A failing notebook does not "
            "stop the others; the exit status is 1 if any failed, 2 for a usage error."
        ),
    )
    report.add_argument("--notebooks", type=Path, default=None, metavar="DIR",
                        help="folder of notebooks (default: ./notebooks, else the project's)")
    report.add_argument("--output", "-o", type=Path, default=Path("reports"), metavar="DIR",
                        help="where to write the reports (default: reports/)")
    report.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this notebook (name with or without .ipynb, or a unique prefix); "
                             "repeatable. Every given parameter must then exist in every named notebook")
    report.add_argument("--smoke", action="store_true",
                        help="use each notebook's small smoke parameters (metadata reliability.smoke_parameters)")
    report.add_argument("--with-code", action="store_true", help="keep code cells in the HTML")
    report.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="set a parameter; VALUE is read as YAML (3, 0.5, [10, 100], text); repeatable")
    report.add_argument("-f", "--parameters-file", action="append", default=[], type=Path, metavar="FILE",
                        help="YAML file of parameters (applied before -p); repeatable")
    report.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="send the notebooks' batches of simulations to the Dask scheduler at ADDRESS "
                             "(tcp://host:8786); default: each notebook starts a local cluster "
                             f"(or ${SCHEDULER_VARIABLE} names one)")
    report.add_argument("--cell-timeout", type=float, default=DEFAULT_CELL_TIMEOUT, metavar="SECONDS",
                        help=f"fail a notebook whose cell runs longer (default: {DEFAULT_CELL_TIMEOUT})")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reliability",
        description="Run the reliability notebooks as reports, or show the notebooks and their parameters.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_report_command(commands)
    params = commands.add_parser(
        "params",
        help="list the notebooks with their questions, or one notebook's parameters",
        description="Without NAME, list the notebooks and the question each answers; with NAME, list the "
                    "parameters of that notebook's 'parameters' cell with types, defaults and help.",
    )
    params.add_argument("name", metavar="NAME", nargs="?", default=None,
                        help="notebook name, with or without .ipynb, or a unique prefix")
    params.add_argument("--notebooks", type=Path, default=None, metavar="DIR",
                        help="folder of notebooks (default: ./notebooks, else the project's)")
    return parser


def _given_parameters(args) -> dict:
    given: dict = {}
    for path in args.parameters_file:
        given.update(read_parameter_file(path))
    for name, value in args.parameter:
        given[name] = parse_parameter_value(value)
    return given


def _selected(notebooks_dir: Path, names: list[str]) -> list[Path]:
    selected: list[Path] = []
    for name in names:
        nb = resolve_notebook(notebooks_dir, name)
        if nb not in selected:
            selected.append(nb)
    return selected


def _use_scheduler(address: str) -> None:
    """Check that the scheduler answers before any notebook runs (no half-written report), then hand
    its address to the notebooks' kernels through the environment."""
    Cluster(scheduler=address, timeout=5.0).close()
    os.environ[SCHEDULER_VARIABLE] = address


def _report(args) -> int:
    if args.scheduler is not None:
        _use_scheduler(args.scheduler)
    notebooks_dir = args.notebooks or default_notebooks_dir()
    every = find_notebooks(notebooks_dir)
    selected = _selected(notebooks_dir, args.only) if args.only else every
    if not selected:
        raise ParameterError(f"no notebooks in {notebooks_dir}")

    runs = build_reports(
        selected,
        args.output,
        parameters=_given_parameters(args),
        strict_parameters=bool(args.only),
        smoke=args.smoke,
        with_code=args.with_code,
        cell_timeout=args.cell_timeout if args.cell_timeout > 0 else None,
        index_notebooks=every,
    )
    failed = [run for run in runs if not run.ok]
    index = Path(args.output) / "index.html"
    if failed:
        print(f"{len(failed)} of {len(runs)} notebooks failed:", file=sys.stderr)
        for run in failed:
            kept = Path(args.output) / f"{run.run}.ipynb"
            where = f" (executed notebook: {kept})" if run.executed is not None else ""
            print(f"  {run.run}: {run.describe_failure()}{where}", file=sys.stderr)
        print(f"index: {index}", file=sys.stderr)
        return 1
    print(f"{len(runs)} notebook{'' if len(runs) == 1 else 's'} ok; index: {index}", file=sys.stderr)
    return 0


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    """Rows in aligned columns (the last column is not padded)."""
    widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header) - 1)]
    lines = []
    for row in [header] + rows:
        cells = [f"{str(cell):<{widths[i]}}" for i, cell in enumerate(row[:-1])] + [str(row[-1])]
        lines.append("  " + "  ".join(cells))
    return lines


def _list_notebooks(notebooks_dir: Path) -> int:
    notebooks = find_notebooks(notebooks_dir)
    print(f"Notebooks in {notebooks_dir} (python -m reliability params NAME lists one's parameters):")
    rows = [(nb.stem, notebook_question(read_notebook(nb), "")) for nb in notebooks]
    for line in _table(rows, ("name", "question")) if rows else ["  (none)"]:
        print(line)
    return 0


def _params(args) -> int:
    notebooks_dir = args.notebooks or default_notebooks_dir()
    if args.name is None:
        return _list_notebooks(notebooks_dir)
    nb = resolve_notebook(notebooks_dir, args.name)
    declared = notebook_parameters(nb)
    print(f"Parameters of {nb.name}:")
    if not declared:
        print("  (no cell tagged 'parameters')")
        return 0
    rows = [
        (p["name"], "?" if p["inferred_type_name"] == "None" else p["inferred_type_name"], p["default"], p["help"])
        for p in declared.values()
    ]
    for line in _table(rows, ("name", "type", "default", "help")):
        print(line)
    smoke = smoke_parameters(nb)
    if smoke:
        print("Smoke parameters (--smoke): " + ", ".join(f"{k}={v!r}" for k, v in smoke.items()))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m reliability``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "report":
            return _report(args)
        return _params(args)
    except (ParameterError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; reports already written are complete, none is half-written", file=sys.stderr)
        return 130
