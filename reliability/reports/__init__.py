"""Run the notebooks, render them to self-contained HTML, and collect their answers and results.

Two halves live here:

* :func:`record` and :func:`record_answer`, called from inside a notebook, record its headline
  results (each a value with a unit and a label, :class:`Result`) and its one-sentence answer
  as display data with the mimetype :data:`RESULTS_MIMETYPE`. They are cheap: papermill and
  nbconvert are only imported by the other half.
* The report pipeline (:func:`build_reports`, used by ``python -m reliability report``) runs
  each notebook with papermill in this very Python interpreter, keeps the executed notebook,
  renders it to HTML that needs no network, writes its recorded results as JSON and writes an
  index page with one row per run. Every file is written atomically.

One file per step: ``record`` (results, answers, number formatting), ``parameters`` (finding
notebooks, reading and checking parameters, naming runs), ``run`` (papermill, the whole run),
``render`` (HTML), ``index`` (the index page), ``files`` (atomic writes), ``cli`` (the command
line). Nothing here imports model code.
"""

from .record import (  # noqa: F401  (the submodule ``record`` is shadowed by the function on purpose)
    RESULTS_MIMETYPE,
    Recorded,
    Result,
    extract_record,
    extract_results,
    format_duration,
    format_number,
    format_percent,
    format_quantity,
    normalise_results,
    numbers_in,
    plural,
    record,
    record_answer,
    validate_results,
)
from .parameters import (
    ParameterError,
    check_parameters,
    default_parameters,
    differing_parameters,
    find_notebooks,
    notebook_parameters,
    notebook_question,
    parse_parameter_value,
    read_notebook,
    read_parameter_file,
    require_choice,
    require_list,
    resolve_notebook,
    run_name,
    smoke_parameters,
)
from .files import atomic_open, ensure_writable_folder, write_atomic
from .run import (
    DEFAULT_CELL_TIMEOUT,
    KERNEL_NAME,
    CellError,
    NotebookRun,
    build_reports,
    python_kernel_mismatch,
    run_notebook,
)
from .render import latex_to_mathml, render_html
from .index import read_runs, write_index

__all__ = [
    "RESULTS_MIMETYPE",
    "KERNEL_NAME",
    "DEFAULT_CELL_TIMEOUT",
    "ParameterError",
    "CellError",
    "NotebookRun",
    "Result",
    "Recorded",
    "record",
    "record_answer",
    "validate_results",
    "normalise_results",
    "extract_results",
    "extract_record",
    "format_number",
    "format_percent",
    "format_duration",
    "format_quantity",
    "numbers_in",
    "plural",
    "atomic_open",
    "write_atomic",
    "ensure_writable_folder",
    "find_notebooks",
    "resolve_notebook",
    "read_notebook",
    "notebook_question",
    "notebook_parameters",
    "smoke_parameters",
    "default_parameters",
    "differing_parameters",
    "parse_parameter_value",
    "read_parameter_file",
    "check_parameters",
    "require_list",
    "require_choice",
    "run_name",
    "python_kernel_mismatch",
    "run_notebook",
    "render_html",
    "latex_to_mathml",
    "read_runs",
    "write_index",
    "build_reports",
]
