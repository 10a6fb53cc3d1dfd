"""Run the notebooks, render them to HTML, and collect their headline results.

Two halves live here:

* :func:`record`, called from inside a notebook, validates the notebook's headline
  results, shows them as a small table and emits them as display data with the
  mimetype :data:`RESULTS_MIMETYPE`. It is cheap: papermill and nbconvert are only
  imported by the other half.
* The report pipeline (:func:`build_reports`, used by ``python -m reliability report``)
  runs each notebook with papermill in this very Python interpreter, keeps the
  executed notebook, renders it to HTML, writes its recorded results as JSON and
  writes an index page. Every file is written atomically (a temporary file in the
  same folder, then :func:`os.replace`), so an interrupted run never leaves a
  half-written report behind.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as _dt
import html
import json
import math
import numbers
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

__all__ = [
    "RESULTS_MIMETYPE",
    "KERNEL_NAME",
    "ParameterError",
    "CellError",
    "NotebookRun",
    "record",
    "validate_results",
    "extract_results",
    "atomic_open",
    "write_atomic",
    "find_notebooks",
    "resolve_notebook",
    "notebook_parameters",
    "smoke_parameters",
    "parse_parameter_value",
    "read_parameter_file",
    "check_parameters",
    "python_kernel_mismatch",
    "run_notebook",
    "render_html",
    "write_index",
    "build_reports",
]

#: Mimetype of the display data that carries a notebook's recorded results.
RESULTS_MIMETYPE = "application/vnd.reliability.results+json"

#: Every notebook runs in a kernel of this name, started from the running interpreter.
KERNEL_NAME = "python3"

#: Default limit on one cell's run time in a report run (seconds); a hung cell fails its notebook.
DEFAULT_CELL_TIMEOUT = 1800


class ParameterError(ValueError):
    """Parameters that do not fit the notebooks they are meant for (a usage error)."""


# --------------------------------------------------------------------------------------
# Recording results from inside a notebook
# --------------------------------------------------------------------------------------

def _plain_value(key: str, value: Any) -> bool | int | float | str:
    """Convert one result value to a JSON-safe Python scalar, or raise ValueError."""
    # numpy scalars and 0-d arrays expose .item(); converting them avoids importing numpy here.
    if hasattr(value, "item") and callable(value.item) and getattr(value, "shape", ()) == ():
        value = value.item()
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(
                f"result {key!r} must be a finite number, got {value!r} "
                "(record a string such as 'unbounded' if that is the answer)"
            )
        return value
    raise ValueError(
        f"result {key!r} must be a number, string or bool, got {type(value).__name__} {value!r}"
    )


def validate_results(results: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """Check a flat results dict and convert its values to plain JSON scalars.

    Parameters
    ----------
    results : mapping of str to number, str or bool
        Numpy scalars are converted to Python scalars. Nested containers, ``None``,
        NaN and infinities are rejected.

    Returns
    -------
    dict
        A new dict with the same keys, in the same order.

    Raises
    ------
    ValueError
        Naming the offending key and value.

    Examples
    --------
    >>> import numpy as np
    >>> validate_results({"servers": np.int64(12), "meets_target": np.bool_(True)})
    {'servers': 12, 'meets_target': True}
    """
    if not isinstance(results, Mapping):
        raise ValueError(f"results must be a dict, got {type(results).__name__} {results!r}")
    if not results:
        raise ValueError("results must not be empty")
    clean: dict[str, bool | int | float | str] = {}
    for key, value in results.items():
        if not isinstance(key, str) or not key.strip():
            raise ValueError(f"result names must be non-empty strings, got {key!r}")
        clean[key] = _plain_value(key, value)
    return clean


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _results_table_html(results: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
        f"<td style='text-align:right'>{html.escape(_format_value(v))}</td></tr>"
        for k, v in results.items()
    )
    return f"<table class='reliability-results'><caption>Recorded results</caption>{rows}</table>"


def record(results: Mapping[str, Any]) -> None:
    """Record a notebook's headline results for the report run.

    Call it from a notebook cell with a flat dict of numbers, strings and bools.
    The results are shown as a small table and emitted as display data with the
    mimetype :data:`RESULTS_MIMETYPE`, from which ``python -m reliability report``
    writes ``reports/NAME.json`` and the index page. Several calls are merged, later
    values winning. Outside IPython the results are only validated.

    Raises
    ------
    ValueError
        If the results are not a flat dict of finite numbers, strings and bools
        (see :func:`validate_results`).

    Examples
    --------
    >>> record({"servers_needed": 12, "utilisation": 0.71})
    """
    clean = validate_results(results)
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency, but record() need not require it
        return
    if get_ipython() is None:
        return
    from IPython.display import display

    width = max(len(k) for k in clean)
    text = "\n".join(f"{k:<{width}}  {_format_value(v)}" for k, v in clean.items())
    display(
        # Notebook files store JSON with sorted keys, so the order is carried separately.
        {RESULTS_MIMETYPE: {"order": list(clean), "results": clean}, "text/html": _results_table_html(clean), "text/plain": text},
        raw=True,
    )


def extract_results(nb) -> dict[str, Any]:
    """Collect the results recorded (with :func:`record`) in an executed notebook.

    Parameters
    ----------
    nb : nbformat.NotebookNode or dict
        An executed notebook.

    Returns
    -------
    dict
        All recorded results merged in cell order; empty if nothing was recorded.
    """
    results: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) or []:
            if output.get("output_type") not in ("display_data", "execute_result"):
                continue
            data = output.get("data", {}).get(RESULTS_MIMETYPE)
            if data is None:
                continue
            if isinstance(data, str):  # some writers store JSON mimetypes as text
                data = json.loads(data)
            recorded = data.get("results", {})
            for key in data.get("order", sorted(recorded)):
                results.pop(key, None)  # a later record() of the same name moves it to the end
                results[key] = recorded[key]
    return results


# --------------------------------------------------------------------------------------
# Atomic files
# --------------------------------------------------------------------------------------

def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically.

    If the ``with`` body raises (including ``KeyboardInterrupt``), the temporary file
    is removed and ``path`` keeps its previous content (or stays absent).

    Parameters
    ----------
    path : path-like
        Final file name; its folder must exist.
    mode : {"w", "wb"}
    encoding : str, optional
        Text encoding (ignored in binary mode).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "report.json"
    >>> with atomic_open(target) as f:
    ...     _ = f.write("{}")
    >>> target.read_text()
    '{}'
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); reports are meant to be published.
        os.chmod(tmp_name, 0o666 & ~_umask())
        with open(fd, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`); returns the path."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)
    return Path(path)


# --------------------------------------------------------------------------------------
# Notebooks and their parameters
# --------------------------------------------------------------------------------------

def find_notebooks(notebooks_dir: str | os.PathLike) -> list[Path]:
    """The notebooks in a folder, sorted by name (checkpoints and hidden files skipped)."""
    folder = Path(notebooks_dir)
    if not folder.is_dir():
        raise ValueError(f"notebooks_dir must be an existing folder, got {str(folder)!r}")
    return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith((".", "_")))


def resolve_notebook(notebooks_dir: str | os.PathLike, name: str) -> Path:
    """Find a notebook by name, with or without ``.ipynb``, or by a unique prefix (``"01"``)."""
    notebooks = find_notebooks(notebooks_dir)
    stem = name[:-len(".ipynb")] if name.endswith(".ipynb") else name
    stem = Path(stem).name
    exact = [p for p in notebooks if p.stem == stem]
    if exact:
        return exact[0]
    prefixed = [p for p in notebooks if p.stem.startswith(stem)]
    if len(prefixed) == 1:
        return prefixed[0]
    available = ", ".join(p.stem for p in notebooks) or "none"
    if prefixed:
        raise ParameterError(
            f"notebook name {name!r} is ambiguous: matches {', '.join(p.stem for p in prefixed)}"
        )
    raise ParameterError(f"no notebook named {name!r} in {notebooks_dir} (available: {available})")


def _read_notebook(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def notebook_parameters(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """A notebook's parameters as papermill infers them from its ``parameters`` cell.

    Returns
    -------
    dict
        ``{name: {"name", "inferred_type_name", "default", "help"}}`` in cell order;
        ``default`` is the literal's source text, as papermill gives it.
    """
    import papermill

    return papermill.inspect_notebook(str(path))


def smoke_parameters(path: str | os.PathLike) -> dict[str, Any]:
    """The small, fast parameter set in ``metadata["reliability"]["smoke_parameters"]``."""
    nb = _read_notebook(Path(path))
    return dict(nb.metadata.get("reliability", {}).get("smoke_parameters", {}))


# YAML 1.1 reads these as booleans; on a command line they are almost always meant as words.
_YAML_WORD_BOOLEANS = {"y", "n", "yes", "no", "on", "off"}


def parse_parameter_value(text: str) -> Any:
    """Parse one ``-p NAME VALUE`` value as YAML, the way papermill's ``-y`` does.

    ``"3"`` gives 3, ``"0.5"`` and ``"1e3"`` give floats, ``"[10, 100]"`` a list,
    ``"True"``/``"False"``/``"None"`` the Python constants, anything else a string.
    (YAML 1.1's ``yes``/``no``/``on``/``off`` stay strings.)

    Examples
    --------
    >>> parse_parameter_value("[10, 100.0]")
    [10, 100.0]
    >>> parse_parameter_value("1e3")
    1000.0
    >>> parse_parameter_value("off")
    'off'
    """
    import yaml

    stripped = text.strip()
    if stripped.lower() in _YAML_WORD_BOOLEANS:
        return text
    if stripped == "None":
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and value == stripped:
        # PyYAML (YAML 1.1) reads an unquoted 1e3 as a string; a command line means a number.
        with contextlib.suppress(ValueError):
            number = float(value)
            if math.isfinite(number):
                return number
    return value


def read_parameter_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML file of parameters (a mapping of name to value)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ParameterError(f"parameter file not found: {str(path)!r}") from None
    except (OSError, UnicodeDecodeError) as exc:  # a folder, no permission, not UTF-8 text
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ParameterError(f"parameter file {str(path)!r} cannot be read: {reason}") from None
    except yaml.YAMLError as exc:
        raise ParameterError(f"parameter file {str(path)!r} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ParameterError(f"parameter file {str(path)!r} must hold a mapping of names to values")
    return data


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "list": lambda v: isinstance(v, list),
    "dict": lambda v: isinstance(v, dict),
}


def check_parameters(
    notebook: str | os.PathLike,
    given: Mapping[str, Any],
    declared: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    strict: bool = True,
) -> dict[str, Any]:
    """Match given parameters to a notebook's parameters cell, checking names and simple types.

    Parameters
    ----------
    notebook : path-like
        The notebook (used for its declared parameters and in messages).
    given : mapping
        Parameter values to pass.
    declared : mapping, optional
        The notebook's parameters as from :func:`notebook_parameters` (read if omitted).
    strict : bool
        If True a parameter the notebook does not declare is an error; if False it is
        dropped (a full report run passes each notebook only the parameters it has).

    Returns
    -------
    dict
        The parameters to pass; integers given for ``float`` parameters become floats.

    Raises
    ------
    ParameterError
        Naming the notebook, the parameter and the problem.
    """
    name = Path(notebook).stem
    if declared is None:
        declared = notebook_parameters(notebook)
    accepted: dict[str, Any] = {}
    for key, value in given.items():
        if key not in declared:
            if strict:
                known = ", ".join(declared) or "none"
                raise ParameterError(
                    f"notebook {name} has no parameter {key!r} (its parameters: {known})"
                )
            continue
        type_name = str(declared[key].get("inferred_type_name", "None"))
        check = _TYPE_CHECKS.get(type_name)
        if check is not None and not check(value):
            raise ParameterError(
                f"parameter {key!r} of notebook {name} is {type_name}, "
                f"got {type(value).__name__} {value!r}"
            )
        accepted[key] = float(value) if type_name == "float" else value
    return accepted


# --------------------------------------------------------------------------------------
# Running one notebook
# --------------------------------------------------------------------------------------

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


@dataclass(frozen=True)
class CellError:
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


@dataclass(frozen=True)
class NotebookRun:
    """The outcome of running one notebook."""

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
            "status": self.status,
            "duration_seconds": round(self.duration_seconds, 3),
            "smoke": self.smoke,
            "parameters": self.parameters,
            "overrides": self.overrides,
            "results": self.results,
            "error": None if self.error is None else self.error.as_dict(),
            "message": self.message,
        }


_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _source_cell_error(nb, exc) -> CellError:
    cells = nb.cells if nb is not None else []
    injected = [
        i for i, cell in enumerate(cells)
        if "injected-parameters" in cell.get("metadata", {}).get("tags", [])
    ]
    markers = [
        i for i, cell in enumerate(cells)
        if "papermill-error-cell-tag" in cell.get("metadata", {}).get("tags", [])
    ]
    source_index = exc.cell_index - sum(1 for i in injected if i < exc.cell_index)
    line = None
    traceback_text = _ANSI_ESCAPE.sub("", "\n".join(exc.traceback or []))
    for match in re.finditer(r"Cell In\[(\d+)\], line (\d+)", traceback_text):
        if exc.exec_count is None or int(match.group(1)) == exc.exec_count:
            line = int(match.group(2))
            break
    cell_count = len(cells) - len(injected) - len(markers)
    return CellError(
        cell_index=source_index,
        cell_count=cell_count,
        execution_count=exc.exec_count,
        ename=str(exc.ename),
        evalue=str(exc.evalue),
        source=str(exc.source),
        line=line,
    )


def _effective_parameters(declared: Mapping[str, Mapping[str, Any]], overrides: Mapping[str, Any]) -> dict:
    params = {name: _literal(str(info.get("default", ""))) for name, info in declared.items()}
    params.update(overrides)
    return params


def run_notebook(
    notebook: str | os.PathLike,
    executed_path: str | os.PathLike,
    parameters: Mapping[str, Any] | None = None,
    *,
    smoke: bool = False,
    cell_timeout: float | None = DEFAULT_CELL_TIMEOUT,
    declared: Mapping[str, Mapping[str, Any]] | None = None,
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
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    notebook = Path(notebook)
    executed_path = Path(executed_path)
    overrides = dict(parameters or {})
    if declared is None:
        declared = notebook_parameters(notebook)
    effective = _effective_parameters(declared, overrides)

    # papermill wants an .ipynb name; the leading dot keeps the temporary file out of listings.
    fd, tmp_name = tempfile.mkstemp(dir=executed_path.parent, prefix=f".{executed_path.stem}.", suffix=".tmp.ipynb")
    os.close(fd)
    error: CellError | None = None
    message = ""
    executed = None
    start = time.perf_counter()
    try:
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
            error = _source_cell_error(executed, exc)
        except Exception as exc:  # kernel death, timeouts, invalid notebooks: fail this notebook only
            message = f"{type(exc).__name__}: {exc}".strip()
        duration = time.perf_counter() - start
        if executed is None:
            executed = _read_if_written(tmp_name)
        if executed is not None:
            os.chmod(tmp_name, 0o666 & ~_umask())
            os.replace(tmp_name, executed_path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)

    failed = error is not None or bool(message)
    results = extract_results(executed) if executed is not None else {}
    return NotebookRun(
        name=notebook.stem,
        status="failed" if failed else "ok",
        duration_seconds=duration,
        parameters=effective,
        overrides=overrides,
        results=results,
        error=error,
        message=message,
        smoke=smoke,
        executed=executed,
    )


def _read_if_written(path: str):
    import nbformat

    try:
        if os.path.getsize(path) == 0:
            return None
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------

def _notebook_title(nb, fallback: str) -> str:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.strip():
                    return line.lstrip("#").strip()
            break
    return fallback


def _parameters_markdown(run: NotebookRun) -> str:
    kind = "smoke parameters" if run.smoke else "parameters"
    lines = [f"**Run with these {kind}**", "", "| parameter | value |", "|---|---|"]
    for key, value in run.parameters.items():
        marker = " (given)" if key in run.overrides else ""
        shown = repr(value).replace("|", "\\|")
        lines.append(f"| `{key}` | `{shown}`{marker} |")
    return "\n".join(lines)


def render_html(nb, *, with_code: bool = False, title: str | None = None,
                run: NotebookRun | None = None) -> str:
    """Render an executed notebook to a standalone HTML page.

    Code cells' inputs are hidden unless ``with_code``; markdown, figures, tables and
    errors are kept. With ``run`` given, a table of the parameters used is inserted
    after the first cell (the hidden parameters cell no longer shows them).
    """
    import copy

    import nbformat
    from nbconvert import HTMLExporter

    nb = copy.deepcopy(nb)
    if run is not None and run.parameters:
        position = 1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0
        nb.cells.insert(position, nbformat.v4.new_markdown_cell(_parameters_markdown(run)))
    exporter = HTMLExporter(
        exclude_input=not with_code,
        exclude_input_prompt=not with_code,
        exclude_output_prompt=not with_code,
    )
    name = title or _notebook_title(nb, "report")
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": name}})
    return body


_INDEX_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 70rem; color: #222; line-height: 1.4; }
table.reports { border-collapse: collapse; width: 100%; }
table.reports > tbody > tr > td, table.reports > thead > tr > th {
       border-bottom: 1px solid #ddd; padding: .6rem .5rem; vertical-align: top; text-align: left; }
.ok { color: #0a7a3d; font-weight: bold; } .failed { color: #b00020; font-weight: bold; }
.missing { color: #777; } .error { color: #b00020; font-family: monospace; font-size: .85em; }
table.results td, table.results th { padding: 0 .6rem 0 0; font-size: .9em; border: none; }
table.results th { font-weight: normal; color: #555; text-align: left; }
.meta { color: #666; font-size: .85em; }
"""


def _index_row(notebook: Path, output_dir: Path) -> str:
    stem = notebook.stem
    json_path = output_dir / f"{stem}.json"
    question = html.escape(_notebook_title(_read_notebook(notebook), stem))
    if not json_path.exists():
        return (
            f"<tr id='{html.escape(stem)}'><td>{html.escape(stem)}<div class='meta'>{question}</div></td>"
            "<td class='missing'>not run</td><td></td><td></td></tr>"
        )
    data = json.loads(json_path.read_text(encoding="utf-8"))
    status = data.get("status", "unknown")
    links = []
    for suffix, label in (("html", None), ("json", "results"), ("ipynb", "executed notebook")):
        if (output_dir / f"{stem}.{suffix}").exists():
            links.append((suffix, label))
    name_cell = html.escape(stem)
    if any(s == "html" for s, _ in links):
        name_cell = f"<a href='{html.escape(stem)}.html'>{name_cell}</a>"
    extra = " · ".join(
        f"<a href='{html.escape(stem)}.{s}'>{label}</a>" for s, label in links if label is not None
    )
    if status == "ok":
        status_cell = "<span class='ok'>ok</span>"
    else:
        error = data.get("error") or {}
        detail = error.get("description") or data.get("message") or ""
        status_cell = f"<span class='failed'>failed</span><div class='error'>{html.escape(detail)}</div>"
    results = data.get("results") or {}
    results_cell = (
        "<table class='results'>"
        + "".join(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_format_value(v))}</td></tr>"
            for k, v in results.items()
        )
        + "</table>"
        if results else "<span class='missing'>none recorded</span>"
    )
    when = html.escape(str(data.get("finished", "")))
    smoke = " · smoke parameters" if data.get("smoke") else ""
    duration = float(data.get("duration_seconds", 0.0))
    return (
        f"<tr id='{html.escape(stem)}'><td>{name_cell}<div class='meta'>{question}</div>"
        f"<div class='meta'>{extra}</div></td>"
        f"<td>{status_cell}</td>"
        f"<td>{duration:.1f} s<div class='meta'>{when}{smoke}</div></td>"
        f"<td>{results_cell}</td></tr>"
    )


def write_index(output_dir: str | os.PathLike, notebooks: Iterable[str | os.PathLike]) -> Path:
    """Write ``index.html``: every notebook with its status, run time and headline results.

    The rows come from the ``NAME.json`` files in ``output_dir``, so a partial run
    (``--only``) keeps the other notebooks' last results; a notebook never run is
    listed as "not run".
    """
    output_dir = Path(output_dir)
    rows = "\n".join(_index_row(Path(nb), output_dir) for nb in notebooks)
    generated = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>reliability reports</title><style>{_INDEX_CSS}</style></head>
<body><h1>reliability reports</h1>
<p class="meta">Generated {html.escape(generated)}. Each report is a notebook run with papermill;
its headline results are those the notebook recorded.</p>
<table class="reports"><thead><tr><th>notebook</th><th>status</th><th>run time</th><th>headline results</th></tr></thead>
<tbody>
{rows}
</tbody></table></body></html>
"""
    return write_atomic(output_dir / "index.html", page)


# --------------------------------------------------------------------------------------
# The report run
# --------------------------------------------------------------------------------------

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


def _writable_folder(output_dir: Path) -> None:
    """Create ``output_dir`` and make sure files can be written there, before any notebook runs."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=output_dir):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ParameterError(f"output folder {str(output_dir)!r} cannot be written: {reason}") from None


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
    """Run notebooks and write ``NAME.ipynb``, ``NAME.html``, ``NAME.json`` and ``index.html``.

    Parameters are checked against every notebook before anything runs: with
    ``strict_parameters`` every notebook must declare every given parameter;
    otherwise each notebook gets the ones it declares and each parameter must be
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
        output folder cannot be created or written.
    """
    if log is None:
        def log(line: str) -> None:
            print(line, file=sys.stderr, flush=True)

    notebooks = [Path(nb) for nb in notebooks]
    output_dir = Path(output_dir)
    given = dict(parameters or {})

    plans = []
    used: set[str] = set()
    for nb in notebooks:
        declared = notebook_parameters(nb)
        values = check_parameters(nb, given, declared, strict=strict_parameters)
        used.update(values)
        if smoke:
            values = {**check_parameters(nb, smoke_parameters(nb), declared, strict=True), **values}
        plans.append((nb, declared, values))
    unused = [k for k in given if k not in used]
    if unused:
        raise ParameterError(
            f"no notebook has a parameter named {', '.join(repr(k) for k in unused)}"
        )

    _writable_folder(output_dir)
    mismatch = python_kernel_mismatch()
    if mismatch:
        log(f"note: {mismatch}")

    runs: list[NotebookRun] = []
    total = len(plans)
    for number, (nb, declared, values) in enumerate(plans, start=1):
        log(f"[{number}/{total}] {nb.stem}: running")
        run = run_notebook(
            nb, output_dir / f"{nb.stem}.ipynb", values,
            smoke=smoke, cell_timeout=cell_timeout, declared=declared,
        )
        if run.executed is not None:
            write_atomic(output_dir / f"{nb.stem}.html", render_html(run.executed, with_code=with_code, run=run))
        else:
            # Nothing was executed (e.g. the kernel would not start): drop stale pages.
            for suffix in ("html", "ipynb"):
                with contextlib.suppress(FileNotFoundError):
                    (output_dir / f"{nb.stem}.{suffix}").unlink()
        record_data = run.as_dict()
        record_data["finished"] = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        write_atomic(
            output_dir / f"{nb.stem}.json",
            json.dumps(_json_safe(record_data), indent=2, default=_json_default, allow_nan=False) + "\n",
        )
        if run.ok:
            note = "" if run.results else " (no results recorded)"
            log(f"[{number}/{total}] {nb.stem}: ok in {run.duration_seconds:.1f} s{note}")
        else:
            log(f"[{number}/{total}] {nb.stem}: FAILED in {run.duration_seconds:.1f} s: {run.describe_failure()}")
        runs.append(run)

    write_index(output_dir, notebooks if index_notebooks is None else index_notebooks)
    return runs
