"""The report pipeline and the command line, end to end on tiny notebooks made on the fly."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from reliability import reports
from reliability.__main__ import main

GOOD_PARAMETERS = 'scale: float = 2.0  # multiplier\nlabel: str = "x"  # a label'
BAD_FAILING_SOURCE = "y = 2\n1 / divisor"
# A run with parameters other than the defaults has files (and an index row) of its own.
GOOD_RUN = "good--scale=3.0--label=hello"


def _notebook(cells, smoke=None):
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if smoke is not None:
        nb.metadata["reliability"] = {"smoke_parameters": smoke}
    return nb


def _parameters_cell(source):
    cell = new_code_cell(source)
    cell.metadata["tags"] = ["parameters"]
    return cell


def _write_notebooks(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    good = _notebook(
        [
            new_markdown_cell("# Does doubling work?"),
            _parameters_cell(GOOD_PARAMETERS),
            new_code_cell(
                "import numpy as np\nfrom reliability.reports import record\n"
                "record({'label': label, 'doubled': np.float64(scale * 2)})"
            ),
        ],
        smoke={"scale": 0.5},
    )
    bad = _notebook(
        [
            new_markdown_cell("# Fails on purpose"),
            _parameters_cell("divisor: int = 0  # what to divide by"),
            new_code_cell("x = 1"),
            new_code_cell(BAD_FAILING_SOURCE),  # cell 4 of 5, In [3] (the injected cell is In [2])
            new_code_cell("print('never reached')"),
        ],
    )
    nbformat.write(good, folder / "good.ipynb")
    nbformat.write(bad, folder / "bad.ipynb")
    return folder


def _run_cli(argv):
    err = io.StringIO()
    out = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def notebooks_dir(tmp_path_factory):
    return _write_notebooks(tmp_path_factory.mktemp("notebooks"))


@pytest.fixture(scope="module")
def full_run(notebooks_dir, tmp_path_factory):
    """One report run over both notebooks, with a parameter file and a -p override."""
    work = tmp_path_factory.mktemp("run")
    params_file = work / "params.yaml"
    params_file.write_text("scale: 3\nlabel: from-file\n")
    output = work / "reports"
    code, out, err = _run_cli(
        ["report", "--notebooks", notebooks_dir, "--output", output, "-f", params_file, "-p", "label", "hello"]
    )
    return code, err, output


def test_failed_notebook_makes_exit_code_nonzero_and_is_named(full_run):
    code, err, _ = full_run
    assert code == 1
    summary = err.split("notebooks failed:")[1]
    assert "bad" in summary
    assert "cell 4 of 5, line 2 (In [3])" in summary
    assert "ZeroDivisionError" in summary
    assert "good" not in summary


def test_progress_names_each_notebook_and_its_time(full_run):
    _, err, _ = full_run
    assert "[1/2] bad: running" in err
    assert "[1/2] bad: FAILED in" in err
    assert "[2/2] good: ok in" in err


def test_json_of_successful_notebook(full_run):
    _, _, output = full_run
    data = json.loads((output / f"{GOOD_RUN}.json").read_text())
    assert data["status"] == "ok"
    assert data["error"] is None
    # -f gave scale 3 (an int, made a float for a float parameter); -p overrode the file's label.
    assert data["parameters"] == {"scale": 3.0, "label": "hello"}
    assert data["results"] == {"label": "hello", "doubled": 6.0}
    assert list(data["results"]) == ["label", "doubled"]  # recorded order, not sorted
    assert data["duration_seconds"] > 0
    assert data["smoke"] is False


def test_json_of_failed_notebook_names_the_cell(full_run):
    _, _, output = full_run
    data = json.loads((output / "bad.json").read_text())
    assert data["status"] == "failed"
    assert data["results"] == {}
    assert data["parameters"] == {"divisor": 0}
    error = data["error"]
    assert error["cell_index"] == 3
    assert error["execution_count"] == 3
    assert error["ename"] == "ZeroDivisionError"
    assert error["source"] == BAD_FAILING_SOURCE
    assert error["line"] == 2
    assert error["description"].endswith("-- 1 / divisor")


def test_executed_notebooks_are_kept(full_run):
    _, _, output = full_run
    bad = nbformat.read(output / "bad.ipynb", as_version=4)
    errors = [o for c in bad.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert [e.ename for e in errors] == ["ZeroDivisionError"]
    assert bad.cells[-1].source == "print('never reached')"
    assert bad.cells[-1].outputs == []  # the cell after the failure did not run
    good = nbformat.read(output / f"{GOOD_RUN}.ipynb", as_version=4)
    bundles = [o.data for c in good.cells for o in c.get("outputs", []) if o.output_type == "display_data"]
    assert any(reports.RESULTS_MIMETYPE in b and "text/html" in b for b in bundles)


def test_index_lists_every_notebook_with_status_and_results(full_run):
    _, _, output = full_run
    index = (output / "index.html").read_text()
    assert f"href='{GOOD_RUN}.html'" in index and "href='bad.html'" in index
    assert "Does doubling work?" in index and "Fails on purpose" in index
    good_row = index.split(f"<tr id='{GOOD_RUN}'>")[1].split("</tbody>")[0]
    bad_row = index.split("<tr id='bad'>")[1].split(f"<tr id='{GOOD_RUN}'>")[0]
    assert "class='ok'>ok<" in good_row
    assert "<tr><th>label</th><td>hello</td></tr><tr><th>doubled</th><td>6</td></tr>" in good_row
    assert "class='failed'>failed<" in bad_row
    assert "cell 4 of 5, line 2 (In [3]): ZeroDivisionError" in bad_row


def test_html_hides_code_by_default(full_run):
    _, _, output = full_run
    page = (output / f"{GOOD_RUN}.html").read_text()
    assert "Recorded results" in page  # the output of the cell is there...
    assert '<span class="n">record</span>' not in page  # ...but not its code
    assert "Run with these parameters" in page
    with_code = reports.render_html(nbformat.read(output / f"{GOOD_RUN}.ipynb", as_version=4), with_code=True)
    assert '<span class="n">record</span>' in with_code


def test_no_temporary_files_left(full_run):
    _, _, output = full_run
    names = sorted(p.name for p in output.iterdir())
    expected = ["index.html"] + [f"{stem}.{suffix}" for stem in (GOOD_RUN, "bad") for suffix in ("html", "ipynb", "json")]
    assert names == sorted(expected)


def test_smoke_only_run_ignores_a_shadowing_kernelspec(notebooks_dir, tmp_path, monkeypatch):
    # A kernelspec named python3 that points at a missing interpreter, ahead of all others.
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": ["/nonexistent/bin/python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "elsewhere", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    assert "/nonexistent/bin/python" in reports.python_kernel_mismatch()

    output = tmp_path / "reports"
    code, _, err = _run_cli(["report", "--notebooks", notebooks_dir, "--output", output,
                             "--only", "good.ipynb", "--smoke"])
    assert code == 0, err
    assert "note: the 'python3' kernelspec" in err
    data = json.loads((output / "good--smoke.json").read_text())
    assert data["smoke"] is True
    assert data["results"]["doubled"] == 1.0  # smoke scale 0.5
    index = (output / "index.html").read_text()
    assert "not run" in index.split("<tr id='bad'>")[1].split("</tr>")[0]


def test_python_kernel_mismatch_accepts_a_plain_python_argv(tmp_path, monkeypatch):
    spec_dir = tmp_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": ["python", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    assert reports.python_kernel_mismatch() is None


def test_unknown_parameter_with_only_is_an_error_naming_it(notebooks_dir, tmp_path):
    output = tmp_path / "reports"
    code, _, err = _run_cli(["report", "--notebooks", notebooks_dir, "--output", output,
                             "--only", "good", "-p", "scael", "2"])
    assert code == 2
    assert "'scael'" in err and "good" in err and "scale" in err
    assert not output.exists()  # nothing ran


def test_parameter_missing_from_one_selected_notebook_is_an_error(notebooks_dir, tmp_path):
    code, _, err = _run_cli(["report", "--notebooks", notebooks_dir, "--output", tmp_path / "r",
                             "--only", "good", "--only", "bad", "-p", "scale", "2"])
    assert code == 2
    assert "notebook bad has no parameter 'scale'" in err


def test_parameter_no_notebook_has_is_an_error_in_a_full_run(notebooks_dir, tmp_path):
    code, _, err = _run_cli(["report", "--notebooks", notebooks_dir, "--output", tmp_path / "r",
                             "-p", "nonsense", "2"])
    assert code == 2
    assert "no notebook has a parameter named 'nonsense'" in err


def test_parameter_of_the_wrong_type_is_an_error(notebooks_dir, tmp_path):
    code, _, err = _run_cli(["report", "--notebooks", notebooks_dir, "--output", tmp_path / "r",
                             "--only", "good", "-p", "scale", "lots"])
    assert code == 2
    assert "parameter 'scale' of notebook good is float, got str 'lots'" in err


def test_unknown_notebook_is_an_error(notebooks_dir):
    code, _, err = _run_cli(["params", "--notebooks", notebooks_dir, "nope"])
    assert code == 2
    assert "no notebook named 'nope'" in err and "good" in err


def test_params_lists_types_defaults_help_and_smoke(notebooks_dir):
    code, out, _ = _run_cli(["params", "--notebooks", notebooks_dir, "good.ipynb"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Parameters of good.ipynb:"
    assert lines[2].split() == ["scale", "float", "2.0", "multiplier"]
    assert lines[3].split(None, 3) == ["label", "str", '"x"', "a label"]
    assert "Smoke parameters (--smoke): scale=0.5" in out


def test_resolve_notebook_by_prefix(tmp_path):
    for name in ("01-alpha", "02-beta", "02-gamma"):
        nbformat.write(_notebook([new_markdown_cell("# q")]), tmp_path / f"{name}.ipynb")
    assert reports.resolve_notebook(tmp_path, "01").name == "01-alpha.ipynb"
    assert reports.resolve_notebook(tmp_path, "02-beta.ipynb").name == "02-beta.ipynb"
    with pytest.raises(reports.ParameterError, match="ambiguous"):
        reports.resolve_notebook(tmp_path, "02")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3", 3), ("0.5", 0.5), ("1e3", 1000.0), ("[10, 100.0]", [10, 100.0]), ("True", True),
        ("false", False), ("None", None), ("null", None), ("hello world", "hello world"),
        ("off", "off"), ("yes", "yes"), ("{a: 1}", {"a": 1}), ("'3'", "3"),
    ],
)
def test_parse_parameter_value(text, expected):
    value = reports.parse_parameter_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_read_parameter_file_rejects_non_mappings(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(reports.ParameterError, match="mapping"):
        reports.read_parameter_file(path)
    with pytest.raises(reports.ParameterError, match="not found"):
        reports.read_parameter_file(tmp_path / "missing.yaml")


def test_unreadable_parameter_file_is_a_usage_error(notebooks_dir, tmp_path):
    (tmp_path / "folder.yaml").mkdir()
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00 not text")
    for path in (tmp_path / "folder.yaml", binary):
        with pytest.raises(reports.ParameterError, match="cannot be read"):
            reports.read_parameter_file(path)
    code, _, err = _run_cli(["report", "--notebooks", notebooks_dir, "--output", tmp_path / "r",
                             "--only", "good", "-f", tmp_path / "folder.yaml"])
    assert code == 2
    assert f"error: parameter file '{tmp_path / 'folder.yaml'}' cannot be read" in err


def test_output_folder_that_cannot_be_written_is_a_usage_error(notebooks_dir, tmp_path):
    # A file where the folder should be fails for every user, root included (unlike permissions).
    blocker = tmp_path / "taken"
    blocker.write_text("not a folder")
    for output in (blocker, blocker / "reports"):
        code, _, err = _run_cli(["report", "--notebooks", notebooks_dir, "--output", output, "--only", "good"])
        assert code == 2, err
        assert f"error: output folder '{output}' cannot be written" in err
        assert "running" not in err  # refused before any notebook ran
    assert blocker.read_text() == "not a folder"


def test_validate_results_converts_numpy_scalars():
    clean = reports.validate_results(
        {"servers": np.int64(12), "utilisation": np.float32(0.5), "ok": np.bool_(True), "verdict": "fine"}
    )
    assert clean == {"servers": 12, "utilisation": 0.5, "ok": True, "verdict": "fine"}
    assert [type(v) for v in clean.values()] == [int, float, bool, str]
    assert json.loads(json.dumps(clean)) == clean


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ({"nested": {"a": 1}}, "result 'nested' must be a number, string or bool"),
        ({"listed": [1, 2]}, "result 'listed' must be a number, string or bool"),
        ({"missing": None}, "result 'missing'"),
        ({"bad": float("nan")}, "result 'bad' must be a finite number"),
        ({"huge": np.float64("inf")}, "result 'huge' must be a finite number"),
        ({3: 1.0}, "non-empty strings"),
        ({}, "must not be empty"),
    ],
)
def test_validate_results_rejects(results, message):
    with pytest.raises(ValueError, match=message):
        reports.validate_results(results)


def test_record_outside_ipython_validates():
    assert reports.record({"n": np.int32(3)}) is None
    with pytest.raises(ValueError, match="result 'n'"):
        reports.record({"n": [3]})


def test_extract_results_merges_calls_in_order():
    def bundle(results):
        data = {reports.RESULTS_MIMETYPE: {"order": list(results), "results": results}}
        return nbformat.v4.new_output("display_data", data=data)

    nb = _notebook([new_code_cell("a"), new_code_cell("b")])
    nb.cells[0].outputs = [bundle({"y": 1, "x": 2})]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="hi"), bundle({"y": 3})]
    # Round trip through the file format, which sorts JSON keys.
    nb = nbformat.reads(nbformat.writes(nb), as_version=4)
    merged = reports.extract_results(nb)
    assert merged == {"x": 2, "y": 3}
    assert list(merged) == ["x", "y"]


def test_atomic_open_replaces_and_never_half_writes(tmp_path):
    target = tmp_path / "report.json"
    reports.write_atomic(target, "old")
    for interruption in (RuntimeError("disk full"), KeyboardInterrupt()):
        with pytest.raises(type(interruption)):
            with reports.atomic_open(target) as handle:
                handle.write("half a rep")
                raise interruption
        assert target.read_text() == "old"
        assert [p.name for p in tmp_path.iterdir()] == ["report.json"]
    reports.write_atomic(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_atomic_files_get_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = reports.write_atomic(tmp_path / "index.html", "<html></html>")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def test_importing_reports_does_not_import_papermill_or_nbconvert():
    code = (
        "import sys, reliability.reports\n"
        "heavy = [m for m in ('papermill', 'nbconvert', 'nbclient') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_interrupted_notebook_stops_the_run_and_leaves_no_files(tmp_path):
    # What Ctrl-C in a terminal does: the kernel (same process group) raises KeyboardInterrupt.
    nb = _notebook([new_markdown_cell("# interrupted"), new_code_cell("raise KeyboardInterrupt")])
    nbformat.write(nb, tmp_path / "stop.ipynb")
    output = tmp_path / "reports"
    output.mkdir()
    with pytest.raises(KeyboardInterrupt):
        reports.build_reports([tmp_path / "stop.ipynb"], output, log=lambda line: None)
    assert list(output.iterdir()) == []


def test_params_without_a_name_lists_the_notebooks_with_their_questions(notebooks_dir):
    code, out, _ = _run_cli(["params", "--notebooks", notebooks_dir])
    assert code == 0
    assert "good" in out and "Does doubling work?" in out
    assert "bad" in out and "Fails on purpose" in out


def test_a_scalar_for_a_list_parameter_gets_the_hint_to_write_a_list(tmp_path):
    nb = _notebook([new_markdown_cell("# Lists"), _parameters_cell("loads: list = [1.0, 2.0]  # loads to size")])
    nbformat.write(nb, tmp_path / "lists.ipynb")
    code, _, err = _run_cli(["report", "--notebooks", tmp_path, "--output", tmp_path / "r", "--only", "lists",
                             "-p", "loads", "10"])
    assert code == 2
    assert "parameter 'loads' of notebook lists is list, got int 10" in err and "write [10]" in err


def test_a_run_with_other_parameters_gets_its_own_files_and_index_row(notebooks_dir, tmp_path):
    output = tmp_path / "reports"
    assert _run_cli(["report", "--notebooks", notebooks_dir, "--output", output, "--only", "good"])[0] == 0
    assert _run_cli(["report", "--notebooks", notebooks_dir, "--output", output, "--only", "good",
                     "-p", "scale", "5"])[0] == 0
    assert json.loads((output / "good.json").read_text())["results"]["doubled"] == 4.0  # the default run is kept
    assert json.loads((output / "good--scale=5.0.json").read_text())["changed"] == {"scale": 5.0}
    index = (output / "index.html").read_text()
    default_row = index.split("<tr id='good'>")[1].split("<tr id=")[0]
    other_row = index.split("<tr id='good--scale=5.0'>")[1].split("</tbody>")[0]
    assert "default parameters" in default_row
    assert "differ from the defaults" in other_row and "scale = 5.0" in other_row


def test_results_with_units_read_as_people_read_them():
    results = reports.normalise_results({
        "share": reports.Result(0.0005, "%", "Requests refused"),
        "headroom": reports.Result(2.17, "%", "Old side headroom"),
        "cycle": reports.Result(192.0, "s", "Flapping cycle"),
        "full_service": reports.Result(0.03333, "h", "Back to full service"),
        "servers": reports.Result(1.866740e+01, "servers", "Servers"),
        "plain": 0.25,
    })
    assert [r.text for r in results.values()] == ["0.05 %", "217 %", "3.2 min", "2 min", "18.7 servers", "0.25"]
    with pytest.raises(ValueError, match="finite"):
        reports.Result(float("inf"), "s", "never")


def test_record_answer_is_extracted_with_the_results():
    def bundle(payload):
        return nbformat.v4.new_output("display_data", data={reports.RESULTS_MIMETYPE: payload})

    nb = _notebook([new_code_cell("a"), new_code_cell("b")])
    nb.cells[0].outputs = [bundle({"order": ["n"], "results": {"n": 12},
                                   "schema": {"n": {"unit": "servers", "label": "Servers", "digits": 3}}})]
    nb.cells[1].outputs = [bundle({"answer": "Twelve servers.", "details": ["At 10 Erlangs."]})]
    recorded = reports.extract_record(nbformat.reads(nbformat.writes(nb), as_version=4))
    assert recorded.answer == "Twelve servers." and recorded.details == ("At 10 Erlangs.",)
    assert recorded.result("n").text == "12 servers"


def test_html_is_self_contained_with_formulas_as_mathml():
    nb = _notebook([new_markdown_cell("# Maths\n\n$$B = \\frac{a^c / c!}{\\sum_k a^k / k!}$$ with `$HOME` and $a$.")])
    page = reports.render_html(nb)
    assert "<math" in page and "$$" not in page and "\\frac" not in page
    assert "$HOME" in page  # code is left alone
    assert not re.findall(r"""(?:src|href)=["']https?://""", page), "the page loads something from the network"
