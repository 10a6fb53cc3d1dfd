"""Running notebooks with papermill, in this very interpreter, and the whole report run.

:func:`run_notebook` runs one notebook and keeps its executed copy (also when a cell fails);
:func:`build_reports` checks every parameter first, runs each notebook, renders its HTML,
writes its JSON record and the index. A run with parameters other than the defaults gets
files of its own (:func:`~reliability.reports.parameters.run_name`), so it never replaces the
default report and the index lists it on its own row.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from reliability._records import Record

from .files import ensure_writable_folder, output_lock, publishable, remove_stale_temporaries, write_atomic
from .parameters import (
    ParameterError,
    check_parameters,
    default_parameters,
    differing_parameters,
    notebook_parameters,
    notebook_question,
    read_notebook,
    run_name,
    smoke_parameters,
)
from .record import Recorded, extract_record

__all__ = [
    "KERNEL_NAME",
    "DEFAULT_CELL_TIMEOUT",
    "CellError",
    "NotebookRun",
    "python_kernel_mismatch",
    "run_notebook",
    "build_reports",
]

#: Every notebook runs in a kernel of this name, started from the running interpreter.
KERNEL_NAME = "python3"

#: Default limit on one cell's run time in a report run (seconds); a hung cell fails its notebook.
DEFAULT_CELL_TIMEOUT = 1800


def _same_environment(executable: str) -> bool:
    # A venv's python is a symlink to the base interpreter, so resolving symlinks would
    # equate two different environments; compare the unresolved bin folders instead.
    return os.path.dirname(os.path.abspath(executable)) == os.path.dirname(os.path.abspath(sys.executable))


def python_kernel_mismatch() -> str | None:
    """Describe a ``python3`` kernelspec that would run another interpreter, or None.

    ``jupyter_client`` replaces an ``argv[0]`` of ``python`` with the running
    interpreter, but a kernelspec with an absolute path (say a user-level
    ``~/.local/share/jupyter/kernels/python3``) would start a different Python,
    where this package may be missing or stale. Reports never use it (see
    :func:`run_notebook`); this only explains the situation.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        return None
    argv0 = spec.argv[0] if spec.argv else ""
    substituted = {"python", f"python{sys.version_info[0]}", "python%i.%i" % sys.version_info[:2]}
    if argv0 in substituted or _same_environment(argv0):
        return None
    return (
        f"the {KERNEL_NAME!r} kernelspec in {spec.resource_dir} starts {argv0}, "
        f"not this Python ({sys.executable}); notebooks are run with {sys.executable} regardless"
    )


def _this_python_kernel_manager():
    """A kernel manager class that always starts ipykernel in the running interpreter."""
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpec
    from traitlets import default
    import zmq

    class ThisPythonKernelManager(AsyncKernelManager):
        @default("transport_encryption")
        def _encrypt_when_possible(self):
            # Encrypting the local connection (CurveZMQ) also silences ipykernel's
            # "running over TCP without encryption" warning in every report run.
            return "auto" if zmq.has("curve") else "disabled"

        @property
        def kernel_spec(self):
            if self._kernel_spec is None:
                self._kernel_spec = KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())
            return self._kernel_spec

        async def _async_interrupt_kernel(self):
            # jupyter_client sends SIGINT before every shutdown; by then the notebook has
            # finished, and the signal only makes ipykernel log a spurious "KeyboardInterrupt
            # caught in kernel" into the report's progress. A busy kernel still gets the
            # shutdown request, then SIGTERM and SIGKILL.
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

    return ThisPythonKernelManager


def _restore_default_sigint(**_: Any) -> None:
    """nbclient hook: give SIGINT back to Python, so Ctrl-C raises KeyboardInterrupt.

    nbclient installs its own SIGINT handler that only shuts the kernel down; the run
    then carries on (or records the notebook as failed) instead of stopping as a user
    pressing Ctrl-C expects. Called from ``on_notebook_start``, after nbclient set it.
    """
    import asyncio
    import signal

    with contextlib.suppress(RuntimeError, NotImplementedError, ValueError):
        asyncio.get_event_loop().remove_signal_handler(signal.SIGINT)


@dataclass(frozen=True, repr=False)
class CellError(Record):
    """Where and how a notebook failed.

    ``cell_index`` counts cells of the source notebook from 0 (papermill's injected
    parameters cell is not counted); ``execution_count`` is the ``In [n]`` number.
    """

    cell_index: int
    cell_count: int
    execution_count: int | None
    ename: str
    evalue: str
    source: str
    line: int | None = None  # 1-based line of the cell the traceback points at, if known

    def failing_line(self) -> str:
        lines = self.source.splitlines()
        if self.line is not None and 1 <= self.line <= len(lines):
            return lines[self.line - 1].strip()
        return next((text for text in lines if text.strip()), "").strip()

    def describe(self) -> str:
        first_line = self.failing_line()
        where = f"cell {self.cell_index + 1} of {self.cell_count}"
        if self.line is not None:
            where += f", line {self.line}"
        if self.execution_count is not None:
            where += f" (In [{self.execution_count}])"
        what = f"{self.ename}: {self.evalue}" if self.evalue else self.ename
        return f"{where}: {what}" + (f" -- {first_line[:80]}" if first_line else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "cell_index": self.cell_index,
            "cell_count": self.cell_count,
            "execution_count": self.execution_count,
            "ename": self.ename,
            "evalue": self.evalue,
            "source": self.source,
            "line": self.line,
            "description": self.describe(),
        }


@dataclass(frozen=True, repr=False)
class NotebookRun(Record):
    """The outcome of running one notebook.

    ``run`` names the run's files (the notebook's name, plus the parameters it changed);
    ``changed`` holds the parameters whose value differs from the notebook's defaults.
    """

    name: str
    status: str  # "ok" or "failed"
    duration_seconds: float
    parameters: dict[str, Any]
    overrides: dict[str, Any]
    results: dict[str, Any]
    error: CellError | None = None
    message: str = ""
    smoke: bool = False
    executed: Any = field(default=None, repr=False, compare=False)
    changed: dict[str, Any] = field(default_factory=dict)
    run: str = ""
    question: str = ""
    recorded: Recorded = field(default_factory=Recorded, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def describe_failure(self) -> str:
        if self.error is not None:
            return self.error.describe()
        return self.message

    def as_dict(self) -> dict[str, Any]:
        return {
            "notebook": self.name,
            "run": self.run or self.name,
            "question": self.question,
            "status": self.status,
            "duration_seconds": round(self.duration_seconds, 3),
            "smoke": self.smoke,
            "parameters": self.parameters,
            "overrides": self.overrides,
            "changed": self.changed,
            "results": self.results,
            "schema": self.recorded.schema,
            "answer": self.recorded.answer,
            "details": list(self.recorded.details),
            "headline": list(self.recorded.headline),
            "error": None if self.error is None else self.error.as_dict(),
            "message": self.message,
        }


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _tagged(cells, tag: str) -> list[int]:
    return [i for i, cell in enumerate(cells) if tag in cell.get("metadata", {}).get("tags", [])]


def _source_cell_error(nb, exc) -> CellError:
    cells = nb.cells if nb is not None else []
    injected = _tagged(cells, "injected-parameters")
    markers = _tagged(cells, "papermill-error-cell-tag")
    source_index = exc.cell_index - sum(1 for i in injected if i < exc.cell_index)
    line = None
    traceback_text = _ANSI_ESCAPE.sub("", "\n".join(exc.traceback or []))
    for match in re.finditer(r"Cell In\[(\d+)\], line (\d+)", traceback_text):
        if exc.exec_count is None or int(match.group(1)) == exc.exec_count:
            line = int(match.group(2))
            break
    return CellError(
        cell_index=source_index,
        cell_count=len(cells) - len(injected) - len(markers),
        execution_count=exc.exec_count,
        ename=str(exc.ename),
        evalue=str(exc.evalue),
        source=str(exc.source),
        line=line,
    )


def _read_if_written(path: str):
    import nbformat

    try:
        if os.path.getsize(path) == 0:
            return None
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return None


def _execute(notebook: Path, tmp_name: str, overrides: dict, cell_timeout: float | None):
    """Run papermill; returns (executed notebook or None, CellError or None, message)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    try:
        papermill.execute_notebook(
            str(notebook),
            tmp_name,
            parameters=overrides,
            kernel_name=KERNEL_NAME,
            progress_bar=False,
            request_save_on_cell_execute=True,
            cwd=str(notebook.parent),
            execution_timeout=cell_timeout,
            kernel_manager_class=_this_python_kernel_manager(),
            on_notebook_start=_restore_default_sigint,
        )
    except PapermillExecutionError as exc:
        if exc.ename == "KeyboardInterrupt":  # Ctrl-C reached the kernel first
            raise KeyboardInterrupt from None
        executed = _read_if_written(tmp_name)
        return executed, _source_cell_error(executed, exc), ""
    except Exception as exc:  # kernel death, timeouts, invalid notebooks: fail this notebook only
        return _read_if_written(tmp_name), None, f"{type(exc).__name__}: {exc}".strip()
    return _read_if_written(tmp_name), None, ""


def run_notebook(
    notebook: str | os.PathLike,
    executed_path: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    *,
    smoke: bool = False,
    cell_timeout: float | None = DEFAULT_CELL_TIMEOUT,
    declared: Mapping[str, Mapping[str, Any]] | None = None,
    run: str = "",
) -> NotebookRun:
    """Run one notebook with papermill and keep the executed copy at ``executed_path``.

    The kernel is always ipykernel in the running interpreter (never a kernelspec that
    might point at another Python), the working directory is the notebook's folder
    (as in JupyterLab), and the executed notebook is written atomically, also when a
    cell fails. A failure is reported in the returned :class:`NotebookRun`, not raised;
    ``KeyboardInterrupt`` propagates (after removing the temporary file).

    Parameters
    ----------
    notebook : path-like
    executed_path : path-like
        Where to keep the executed notebook.
    parameters : mapping, optional
        Values for the parameters cell, already checked (see :func:`check_parameters`).
    smoke : bool
        Only recorded in the result (the caller chooses the parameters).
    cell_timeout : float or None
        Seconds one cell may run before the notebook is failed.
    declared : mapping, optional
        The notebook's declared parameters, if already read.
    run : str, optional
        The run's name (default: the notebook's name).
    """
    notebook = Path(notebook)
    executed_path = Path(executed_path)
    overrides = dict(parameters or {})
    if declared is None:
        declared = notebook_parameters(notebook)
    defaults = default_parameters(declared)
    effective = {**defaults, **overrides}

    # papermill wants an .ipynb name; the leading dot keeps the temporary file out of listings.
    fd, tmp_name = tempfile.mkstemp(dir=executed_path.parent, prefix=f".{executed_path.stem}.", suffix=".tmp.ipynb")
    os.close(fd)
    start = time.perf_counter()
    try:
        executed, error, message = _execute(notebook, tmp_name, overrides, cell_timeout)
        duration = time.perf_counter() - start
        if executed is not None:
            publishable(tmp_name)
            os.replace(tmp_name, executed_path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)

    recorded = extract_record(executed) if executed is not None else Recorded()
    return NotebookRun(
        name=notebook.stem,
        status="failed" if error is not None or message else "ok",
        duration_seconds=duration,
        parameters=effective,
        overrides=overrides,
        results=recorded.results,
        error=error,
        message=message,
        smoke=smoke,
        executed=executed,
        changed=differing_parameters(defaults, effective),
        run=run or notebook.stem,
        # The source's question: papermill puts an error banner above the first cell of a failed run.
        question=notebook_question(read_notebook(notebook), notebook.stem),
        recorded=recorded,
    )


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _json_safe(value):
    """Non-finite floats (e.g. a parameter given as .inf) become strings: JSON has no inf/NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


@dataclass(frozen=True, repr=False)
class _Plan(Record):
    notebook: Path
    declared: dict
    values: dict
    run: str


def _plan(notebooks: list[Path], given: dict, *, strict: bool, smoke: bool) -> list[_Plan]:
    """Check every parameter against every notebook before anything runs."""
    plans = []
    used: set[str] = set()
    for nb in notebooks:
        declared = notebook_parameters(nb)
        values = check_parameters(nb, given, declared, strict=strict)
        used.update(values)
        # The run is named by what the user changed; smoke values only add the word "smoke".
        name = run_name(nb.stem, differing_parameters(default_parameters(declared), values), smoke=smoke)
        if smoke:
            values = {**check_parameters(nb, smoke_parameters(nb), declared, strict=True), **values}
        plans += _one_run_per_file(nb, declared, values, name, given, smoke)
    unused = [k for k in given if k not in used]
    if unused:
        raise ParameterError(f"no notebook has a parameter named {', '.join(repr(k) for k in unused)}")
    return plans


def _one_run_per_file(nb: Path, declared: dict, values: dict, name: str, given: dict, smoke: bool) -> list[_Plan]:
    """The runs of one notebook: one, or, when its metadata says ``reliability.run_per_file`` (``parameter``,
    ``folder`` inside the data folder, ``prefix``), one per ``.yaml`` file there, named ``prefix + file name``.

    A smoke run, or a run that sets the parameter, stays one run.
    """
    from reliability.paths import data_dir

    spec = read_notebook(nb).metadata.get("reliability", {}).get("run_per_file")
    if not spec or smoke or spec["parameter"] in given:
        return [_Plan(notebook=nb, declared=dict(declared), values=values, run=name)]
    folder = data_dir() / spec["folder"]
    stems = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    if not stems:
        raise ParameterError(f"{nb.name} runs once per file in {folder}, which holds no .yaml files")
    suffix = name[len(nb.stem):]
    return [_Plan(notebook=nb, declared=dict(declared), values={**values, spec["parameter"]: stem},
                  run=f"{spec.get('prefix', '')}{stem}{suffix}") for stem in stems]


def _write_outputs(run: NotebookRun, output_dir: Path, *, with_code: bool) -> None:
    """The run's HTML page and JSON record (the executed notebook is already in place)."""
    from .render import render_html

    if run.executed is not None:
        write_atomic(output_dir / f"{run.run}.html", render_html(run.executed, with_code=with_code, run=run))
    else:
        # Nothing was executed (e.g. the kernel would not start): drop stale pages.
        for suffix in ("html", "ipynb"):
            with contextlib.suppress(FileNotFoundError):
                (output_dir / f"{run.run}.{suffix}").unlink()
    record_data = run.as_dict()
    record_data["finished"] = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    write_atomic(
        output_dir / f"{run.run}.json",
        json.dumps(_json_safe(record_data), indent=2, default=_json_default, allow_nan=False) + "\n",
    )


def build_reports(
    notebooks: Iterable[str | os.PathLike],
    output_dir: str | os.PathLike,
    *,
    parameters: Mapping[str, Any] | None = None,
    strict_parameters: bool = True,
    smoke: bool = False,
    with_code: bool = False,
    cell_timeout: float | None = DEFAULT_CELL_TIMEOUT,
    index_notebooks: Iterable[str | os.PathLike] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[NotebookRun]:
    """Run notebooks and write ``RUN.ipynb``, ``RUN.html``, ``RUN.json`` and ``index.html``.

    ``RUN`` is the notebook's name for a run with its defaults, and the name plus the
    changed parameters otherwise. Parameters are checked against every notebook before
    anything runs: with ``strict_parameters`` every notebook must declare every given
    parameter; otherwise each notebook gets the ones it declares and each parameter must be
    declared by at least one notebook. A failing notebook does not stop the others.

    Parameters
    ----------
    notebooks : iterable of path-like
        The notebooks to run, in order.
    output_dir : path-like
        Created if missing.
    parameters : mapping, optional
        Values given by the user (they override smoke parameters).
    strict_parameters : bool
    smoke : bool
        Start from each notebook's ``smoke_parameters``.
    with_code : bool
        Keep code cells' inputs in the HTML.
    cell_timeout : float or None
        Seconds one cell may run.
    index_notebooks : iterable of path-like, optional
        Notebooks the index lists (default: ``notebooks``).
    log : callable, optional
        Receives progress lines (default: print to stderr).

    Returns
    -------
    list of NotebookRun

    Raises
    ------
    ParameterError
        Before running anything, if the parameters do not fit the notebooks or the
        output folder cannot be created or written; :class:`~reliability.reports.files.FolderInUse`
        (a ParameterError) if another run is writing to the output folder.
    """
    if log is None:
        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

    notebooks = [Path(nb) for nb in notebooks]
    output_dir = Path(output_dir)
    plans = _plan(notebooks, dict(parameters or {}), strict=strict_parameters, smoke=smoke)
    ensure_writable_folder(output_dir)
    mismatch = python_kernel_mismatch()
    if mismatch:
        log(f"note: {mismatch}")
    listed = notebooks if index_notebooks is None else list(index_notebooks)
    # One run per folder at a time (a second one refuses, naming the holder); within it every
    # file is replaced atomically and the index is rebuilt from the records on disk after each
    # notebook, so a run killed at any moment leaves whole files and an index that matches them.
    with output_lock(output_dir):
        remove_stale_temporaries(output_dir)
        return _run_plans(plans, output_dir, listed, smoke=smoke, with_code=with_code,
                          cell_timeout=cell_timeout, log=log)


def _run_plans(plans, output_dir: Path, listed, *, smoke, with_code, cell_timeout, log) -> list[NotebookRun]:
    """Run the checked plans in order, writing each run's files and the index after each."""
    from .index import write_index

    runs: list[NotebookRun] = []
    for number, plan in enumerate(plans, start=1):
        prefix = f"[{number}/{len(plans)}] {plan.notebook.stem}"
        variant = plan.run[len(plan.notebook.stem) + 2:] if plan.run.startswith(plan.notebook.stem) else plan.run
        log(f"{prefix}: running" + (f" ({variant.replace('--', ', ')})" if variant else ""))
        run = run_notebook(plan.notebook, output_dir / f"{plan.run}.ipynb", plan.values, smoke=smoke,
                           cell_timeout=cell_timeout, declared=plan.declared, run=plan.run)
        _write_outputs(run, output_dir, with_code=with_code)
        if run.ok:
            note = "" if run.results else " (no results recorded)"
            log(f"{prefix}: ok in {run.duration_seconds:.1f} s{note}")
        else:
            log(f"{prefix}: FAILED in {run.duration_seconds:.1f} s: {run.describe_failure()}")
        runs.append(run)
        write_index(output_dir, listed)
    if not plans:
        write_index(output_dir, listed)
    return runs
