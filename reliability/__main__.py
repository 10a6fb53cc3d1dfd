"""Command line: ``python -m reliability report`` and ``python -m reliability params NAME``.

Examples
--------
Run every notebook and write ``reports/index.html``::

    python -m reliability report

One notebook, with a parameter changed (values are YAML, as in papermill)::

    python -m reliability report --only 01-erlang-capacity -p blocking_target 0.001

What a notebook's parameters are::

    python -m reliability params 01-erlang-capacity
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import reports

_PACKAGE_NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _default_notebooks_dir() -> Path:
    local = Path("notebooks")
    if local.is_dir():
        return local
    return _PACKAGE_NOTEBOOKS


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m reliability",
        description="Run the reliability notebooks as reports, or show a notebook's parameters.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    report = commands.add_parser(
        "report",
        help="run notebooks with papermill and render HTML reports with an index",
        description=(
            "Run the notebooks (all, or those named with --only) with papermill, render each to "
            "OUTPUT/NAME.html, write its recorded results to OUTPUT/NAME.json, keep the executed "
            "notebook as OUTPUT/NAME.ipynb and write OUTPUT/index.html. A failing notebook does not "
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
    report.add_argument("--cell-timeout", type=float, default=reports.DEFAULT_CELL_TIMEOUT, metavar="SECONDS",
                        help=f"fail a notebook whose cell runs longer (default: {reports.DEFAULT_CELL_TIMEOUT})")

    params = commands.add_parser(
        "params",
        help="list a notebook's parameters with types, defaults and help",
        description="List the parameters of a notebook's 'parameters' cell.",
    )
    params.add_argument("name", metavar="NAME", help="notebook name, with or without .ipynb")
    params.add_argument("--notebooks", type=Path, default=None, metavar="DIR",
                        help="folder of notebooks (default: ./notebooks, else the project's)")
    return parser


def _given_parameters(args) -> dict:
    given: dict = {}
    for path in args.parameters_file:
        given.update(reports.read_parameter_file(path))
    for name, value in args.parameter:
        given[name] = reports.parse_parameter_value(value)
    return given


def _report(args) -> int:
    notebooks_dir = args.notebooks or _default_notebooks_dir()
    every = reports.find_notebooks(notebooks_dir)
    if args.only:
        selected = []
        for name in args.only:
            nb = reports.resolve_notebook(notebooks_dir, name)
            if nb not in selected:
                selected.append(nb)
    else:
        selected = every
    if not selected:
        raise reports.ParameterError(f"no notebooks in {notebooks_dir}")

    runs = reports.build_reports(
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
            kept = Path(args.output) / f"{run.name}.ipynb"
            where = f" (executed notebook: {kept})" if run.executed is not None else ""
            print(f"  {run.name}: {run.describe_failure()}{where}", file=sys.stderr)
        print(f"index: {index}", file=sys.stderr)
        return 1
    print(f"{len(runs)} notebook{'' if len(runs) == 1 else 's'} ok; index: {index}", file=sys.stderr)
    return 0


def _params(args) -> int:
    notebooks_dir = args.notebooks or _default_notebooks_dir()
    nb = reports.resolve_notebook(notebooks_dir, args.name)
    declared = reports.notebook_parameters(nb)
    print(f"Parameters of {nb.name}:")
    if not declared:
        print("  (no cell tagged 'parameters')")
        return 0
    rows = [
        (p["name"], "?" if p["inferred_type_name"] == "None" else p["inferred_type_name"], p["default"], p["help"])
        for p in declared.values()
    ]
    widths = [max(len(str(row[i])) for row in rows + [("name", "type", "default", "")]) for i in range(3)]
    print(f"  {'name':<{widths[0]}}  {'type':<{widths[1]}}  {'default':<{widths[2]}}  help")
    for name, type_name, default, help_text in rows:
        print(f"  {name:<{widths[0]}}  {type_name:<{widths[1]}}  {default:<{widths[2]}}  {help_text}")
    smoke = reports.smoke_parameters(nb)
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
    except (reports.ParameterError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; reports already written are complete, none is half-written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
