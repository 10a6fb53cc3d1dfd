"""Every notebook in notebooks/: its conventions, and a run with its smoke parameters.

The runs go through ``reliability.reports.run_notebook``, exactly as ``python -m reliability
report`` does: kernel ipykernel in this interpreter, working directory = the notebooks folder,
executed copy written to a temporary folder (the committed notebook is never touched).
"""

from __future__ import annotations

import ast
import html
import io
import json
import re
import tokenize
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from reliability import reports

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = reports.find_notebooks(ROOT / "notebooks")

by_notebook = pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])


def _read(path):
    return nbformat.read(path, as_version=4)


def _parameter_cells(nb):
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def _parse_parameter_line(line: str) -> tuple[str, str, object, str]:
    """Split ``name: type = literal  # help`` into its parts, or raise AssertionError."""
    tree = ast.parse(line)
    assert len(tree.body) == 1 and isinstance(tree.body[0], ast.AnnAssign), f"not `name: type = value`: {line!r}"
    node = tree.body[0]
    assert isinstance(node.target, ast.Name) and node.simple, f"target must be a plain name: {line!r}"
    assert node.value is not None, f"parameter without a value: {line!r}"
    try:
        value = ast.literal_eval(node.value)
    except ValueError:
        raise AssertionError(f"value must be a plain literal: {line!r}") from None
    comments = [t.string for t in tokenize.generate_tokens(io.StringIO(line).readline) if t.type == tokenize.COMMENT]
    assert comments, f"parameter without a '# help' comment: {line!r}"
    help_text = comments[0].lstrip("#").strip()
    assert help_text, f"empty help comment: {line!r}"
    return node.target.id, ast.unparse(node.annotation), value, help_text


@pytest.fixture(scope="session")
def kernel_line_magics(tmp_path_factory):
    """Line magics of a real kernel started the way reports start one (ipykernel adds some)."""
    folder = tmp_path_factory.mktemp("magics")
    nb = new_notebook(cells=[
        new_markdown_cell("# Which line magics does the kernel know?"),
        new_code_cell(
            "import json\nfrom reliability.reports import record\n"
            "record({'line_magics': json.dumps(sorted(get_ipython().magics_manager.magics['line']))})"
        ),
    ])
    nbformat.write(nb, folder / "magics.ipynb")
    run = reports.run_notebook(folder / "magics.ipynb", folder / "executed.ipynb", declared={})
    assert run.ok, run.describe_failure()
    magics = set(json.loads(run.results["line_magics"]))
    assert {"load", "time", "run", "env"} <= magics  # the ones DESIGN.md warns about
    return magics


def test_parameter_line_parser_rejects_what_the_convention_forbids():
    assert _parse_parameter_line("servers: int = 10  # how many") == ("servers", "int", 10, "how many")
    for bad in ("servers = 10  # no type", "servers: int = 10", "servers: int = 2 * 5  # not literal",
                "servers: int = 10  #", "import os  # no"):
        with pytest.raises(AssertionError):
            _parse_parameter_line(bad)


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebooks"


@by_notebook
def test_committed_without_outputs(path):
    for index, cell in enumerate(_read(path).cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {index} has outputs"
            assert cell.execution_count is None, f"cell {index} has an execution count"


@by_notebook
def test_first_cell_states_the_question_in_markdown(path):
    first = _read(path).cells[0]
    assert first.cell_type == "markdown"
    assert first.source.strip()


@by_notebook
def test_kernel_is_python3(path):
    assert _read(path).metadata["kernelspec"]["name"] == reports.KERNEL_NAME


@by_notebook
def test_one_parameters_cell_of_annotated_literals_with_help(path):
    cells = _parameter_cells(_read(path))
    assert len(cells) == 1, f"{len(cells)} cells tagged 'parameters'"
    parsed = [_parse_parameter_line(line) for line in cells[0].source.splitlines() if line.strip()]
    assert parsed, "empty parameters cell"
    names = [p[0] for p in parsed]
    assert len(names) == len(set(names)), f"duplicate parameter names: {names}"
    # What `python -m reliability params` shows must be what the cell says.
    inspected = reports.notebook_parameters(path)
    assert list(inspected) == names
    for name, annotation, _, help_text in parsed:
        assert inspected[name]["inferred_type_name"] == annotation
        assert inspected[name]["help"] == help_text


@by_notebook
def test_smoke_parameters_are_declared_and_well_typed(path):
    smoke = reports.smoke_parameters(path)
    assert smoke, "metadata['reliability']['smoke_parameters'] is missing or empty"
    reports.check_parameters(path, smoke, strict=True)  # raises ParameterError naming the problem


@pytest.mark.notebooks
@by_notebook
def test_parameter_names_are_not_line_magics(path, kernel_line_magics):
    clashes = sorted(set(reports.notebook_parameters(path)) & kernel_line_magics)
    assert not clashes, f"parameters named like IPython line magics (automagic would run them): {clashes}"


@pytest.mark.notebooks
@by_notebook
def test_runs_with_smoke_parameters_and_records_results(path, smoke_reports):
    run = smoke_reports.runs[path.stem]  # run once for every test, as `python -m reliability report --smoke` runs it
    assert run.ok, f"{path.name} failed: {run.describe_failure()} (executed copy: {smoke_reports.folder / run.run}.ipynb)"
    assert run.results, "the notebook recorded no results (call reliability.reports.record)"
    assert json.loads(json.dumps(run.results)) == run.results
    # The answer comes last, computed: the final cell shows markdown that states it.
    last = run.executed.cells[-1]
    shown = [o.get("data", {}).get("text/markdown", "") for o in last.get("outputs", [])]
    text = last.source if last.cell_type == "markdown" else "\n".join(shown)
    assert "Answer" in text, f"the last cell of {path.name} does not state the answer"
    assert not [o for c in run.executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]


# The incident notebook follows these conventions in its own issue; until then it records no answer.
ANSWER_PENDING = {"04-incident-proton-2025-01-09"}
answered = pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.stem not in ANSWER_PENDING],
                                   ids=[p.stem for p in NOTEBOOKS if p.stem not in ANSWER_PENDING])


@pytest.mark.notebooks
@answered
def test_answer_is_one_sentence_recorded_with_labelled_results(path, smoke_reports):
    recorded = smoke_reports.runs[path.stem].recorded
    assert recorded.answer, "no answer recorded (call reliability.record_answer)"
    assert recorded.answer.count(". ") == 0 and recorded.answer.endswith("."), f"not one sentence: {recorded.answer!r}"
    unlabelled = [k for k in recorded.results if not recorded.schema.get(k, {}).get("label")]
    assert not unlabelled, f"results without a label (record reliability.Result(value, unit, label)): {unlabelled}"


@pytest.mark.notebooks
@answered
def test_every_number_in_the_answer_is_a_recorded_result(path, smoke_reports):
    """Prose and results come from the same recorded values, so a number in the answer is one of them."""
    recorded = smoke_reports.runs[path.stem].recorded
    allowed = set()
    for key in recorded.results:
        result = recorded.result(key)
        allowed |= set(reports.numbers_in(result.text)) | set(reports.numbers_in(result.label))
    for text in (recorded.answer, *recorded.details):
        stray = [n for n in reports.numbers_in(text) if n not in allowed]
        assert not stray, f"numbers {stray} in {text!r} are not recorded results (nor in their labels)"


@pytest.mark.notebooks
def test_index_shows_each_answer_and_labelled_results(smoke_reports):
    index = (smoke_reports.folder / "index.html").read_text(encoding="utf-8")
    for name, run in smoke_reports.runs.items():
        assert f"<tr id='{run.run}'>" in index, f"no row for {name}"
        if name not in ANSWER_PENDING:
            assert html.escape(run.recorded.answer[:40]) in index, f"the index does not show the answer of {name}"
            first = run.recorded.result(next(iter(run.results)))
            assert html.escape(first.label) in index and html.escape(first.text) in index


# One bad value per notebook parameter kind: the validation cell must refuse it and name the parameter.
BAD_PARAMETERS = {
    "01-erlang-capacity": [("blocking_target", 2.0, "blocking_target"), ("offered_loads", 10, "write [10]"),
                           ("scale_points", 1, "scale_points"), ("slow_target", 0.0, "slow_target")],
    "02-retry-amplification": [("max_retries", -1, "max_retries"), ("recovery_fractions", 0.5, "write [0.5]"),
                               ("surge_multiple", 0.5, "surge_multiple"), ("timeout_seconds", 0.0, "timeout_seconds"),
                               ("workers", -2, "workers")],
    "03-migration-headroom": [("target", 1.5, "target"), ("surge_multiples", 2.0, "write [2.0]"),
                              ("capacity_model", "nonsense", "capacity_model"), ("heatmap_points", 2, "heatmap_points")],
    "05-model-validation": [("table_size", "huge", "table_size"), ("family_level", 1.0, "family_level"),
                            ("workers", 1.5, "workers")],
}


def _run_until_validated(path, overrides):
    """Execute a notebook's cells up to and including the one after its parameters cell, in this process."""
    cells = [c for c in _read(path).cells if c.cell_type == "code"]
    parameters_at = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    namespace: dict = {}
    for index, code in enumerate(cells[: parameters_at + 2]):
        exec(compile(code.source, f"{path.stem} cell {index}", "exec"), namespace)
        if index == parameters_at:
            namespace.update(overrides)


@pytest.mark.parametrize(("stem", "name", "value", "message"),
                         [(stem, *case) for stem, cases in BAD_PARAMETERS.items() for case in cases],
                         ids=[f"{stem[:2]}-{case[0]}" for stem, cases in BAD_PARAMETERS.items() for case in cases])
def test_validation_cell_names_a_bad_parameter(stem, name, value, message):
    import matplotlib

    matplotlib.use("Agg")
    path = ROOT / "notebooks" / f"{stem}.ipynb"
    with pytest.raises(ValueError, match=re.escape(message)):
        _run_until_validated(path, {name: value})


@answered
def test_validation_cell_checks_with_check_parameter(path):
    cells = _read(path).cells
    at = next(i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", []))
    following = next(c for c in cells[at + 1:] if c.cell_type == "code")
    assert "check_parameter(" in following.source, "the cell after the parameters does not call check_parameter"
