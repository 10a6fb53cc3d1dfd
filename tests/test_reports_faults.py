"""The report pipeline under faults: two runs on one folder, and a run killed with SIGKILL.

Each test starts real ``python -m reliability report`` processes on tiny notebooks made on the
fly. A notebook signals that it is running by creating a marker file and then waits for a
release file, so the tests order the processes by files, not by sleeping; every wait is bounded
(a loop with a step limit inside the notebook, ``timeout=`` on every subprocess call) and no
assertion is about time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from reliability.reports.files import LOCK_NAME

ROOT = Path(__file__).resolve().parents[1]
#: Upper bound of any one report run of these notebooks (a kernel start and two tiny cells).
RUN_TIMEOUT = 180


def _notebook(question: str, cells) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_markdown_cell(f"# {question}"), *cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def _write_notebooks(folder: Path, signals: Path) -> Path:
    """``a-count``: records how often it ran; ``b-wait``: marks that it runs, then waits for a release file."""
    folder.mkdir(parents=True, exist_ok=True)
    counter, marker, release = signals / "count", signals / "running", signals / "release"
    count = _notebook("How often did this run?", [new_code_cell(
        "from pathlib import Path\nfrom reliability.reports import record\n"
        f"counter = Path({str(counter)!r})\n"
        "runs = int(counter.read_text()) + 1 if counter.exists() else 1\n"
        "counter.write_text(str(runs))\n"
        "record({'runs': runs})"
    )])
    wait = _notebook("Does it wait for the release?", [new_code_cell(
        "import os, time\nfrom pathlib import Path\nfrom reliability.reports import record\n"
        f"Path({str(marker)!r}).touch()\n"
        "for step in range(12000):  # at most two minutes: bounded even if no test releases it\n"
        f"    if os.path.exists({str(release)!r}):\n"
        "        break\n"
        "    time.sleep(0.01)\n"
        "else:\n"
        "    raise RuntimeError('never released')\n"
        "record({'released_after_steps': step})"
    )])
    nbformat.write(count, folder / "a-count.ipynb")
    nbformat.write(wait, folder / "b-wait.ipynb")
    return folder


@pytest.fixture
def setup(tmp_path):
    signals = tmp_path / "signals"
    signals.mkdir()
    notebooks = _write_notebooks(tmp_path / "notebooks", signals)
    return notebooks, tmp_path / "reports", signals


def _command(notebooks: Path, output: Path) -> list[str]:
    return [sys.executable, "-m", "reliability", "report", "--notebooks", str(notebooks), "--output", str(output)]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _start(notebooks: Path, output: Path) -> subprocess.Popen:
    # its own session, so that the test can end the kernel it started too (and only that)
    return subprocess.Popen(_command(notebooks, output), cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _run(notebooks: Path, output: Path) -> subprocess.CompletedProcess:
    return subprocess.run(_command(notebooks, output), cwd=ROOT, env=_env(), capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)


def _wait_for(path: Path, process: subprocess.Popen) -> None:
    """Until ``path`` exists; fails if the process ends first (bounded: at most RUN_TIMEOUT s of polls)."""
    for _ in range(RUN_TIMEOUT * 20):
        if path.exists():
            return
        if process.poll() is not None:
            pytest.fail(f"the run ended before {path.name} appeared: {process.communicate()}")
        time.sleep(0.05)
    pytest.fail(f"{path.name} never appeared")


def _end_session(process: subprocess.Popen) -> None:
    """SIGKILL what is left of the session the test started (the orphaned kernel)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=RUN_TIMEOUT)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _index_rows(folder: Path) -> set[str]:
    return set(re.findall(r"<tr id='([^']+)'>", (folder / "index.html").read_text()))


def _assert_index_matches_records(folder: Path) -> None:
    """Every JSON record on disk has its row, and each row shows its record's results."""
    records = {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}
    assert _index_rows(folder) == set(records)
    index = (folder / "index.html").read_text()
    for run, data in records.items():
        row = index.split(f"<tr id='{run}'>")[1].split("</tr>")[0]
        for key, value in (data.get("results") or {}).items():
            shown = value["value"] if isinstance(value, dict) else value
            # the index groups thousands (a loaded machine may count past 999 steps)
            forms = {f"<td>{shown}", f"<td>{shown:,}"} if isinstance(shown, int) else {f"<td>{shown}"}
            assert any(form in row for form in forms), (run, key, row)


def test_a_second_run_on_the_same_folder_refuses_and_names_the_first(setup):
    notebooks, output, signals = setup
    first = _start(notebooks, output)
    try:
        _wait_for(signals / "running", first)  # the first run is inside b-wait, holding the folder
        second = _run(notebooks, output)
        assert second.returncode == 2
        assert "is in use by another report run" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        assert (signals / "count").read_text() == "1"  # the second run ran no notebook
        (signals / "release").touch()
        _, err = first.communicate(timeout=RUN_TIMEOUT)
        assert first.returncode == 0, err
    finally:
        _end_session(first)
    assert (signals / "count").read_text() == "1"
    names = sorted(p.name for p in output.iterdir())
    assert names == sorted(["index.html"] + [f"{run}.{suffix}" for run in ("a-count", "b-wait")
                                             for suffix in ("html", "ipynb", "json")])
    _assert_index_matches_records(output)
    # the folder is free again: a third run takes it
    assert _run(notebooks, output).returncode == 0


def test_a_run_killed_mid_notebook_leaves_the_previous_report_and_a_consistent_index(setup):
    notebooks, output, signals = setup
    (signals / "release").touch()
    assert _run(notebooks, output).returncode == 0  # the previous report
    previous = _snapshot(output)
    (signals / "release").unlink()
    (signals / "running").unlink()

    killed = _start(notebooks, output)
    try:
        _wait_for(signals / "running", killed)  # a-count has run again; b-wait is executing
        killed.send_signal(signal.SIGKILL)
        killed.wait(timeout=RUN_TIMEOUT)
    finally:
        _end_session(killed)

    after = _snapshot(output)
    visible = {name for name in after if not name.startswith(".")}
    assert visible == {name for name in previous if not name.startswith(".")}
    for name in ("b-wait.html", "b-wait.ipynb", "b-wait.json"):
        assert after[name] == previous[name], f"{name} of the killed notebook changed"
    # a-count finished in the killed run: its files are the new ones, and so is its index row
    assert json.loads(after["a-count.json"])["results"]["runs"] == 2
    _assert_index_matches_records(output)
    for name in after:
        if name.startswith("."):  # what the kill left: a lock file without a lock, a temporary notebook
            assert name == LOCK_NAME or name.endswith(".tmp.ipynb") or name.endswith(".tmp"), name

    # the next run takes the folder from the dead run, removes its temporary files, rebuilds all
    (signals / "release").touch()
    rerun = _run(notebooks, output)
    assert rerun.returncode == 0, rerun.stderr
    assert not [p.name for p in output.iterdir() if p.name.startswith(".")]
    assert json.loads((output / "a-count.json").read_text())["results"]["runs"] == 3
    _assert_index_matches_records(output)


def test_a_scheduler_that_does_not_answer_stops_the_report_before_any_file(tmp_path, capsys):
    from reliability.reports.cli import main

    output = tmp_path / "reports"
    assert main(["report", "--scheduler", "tcp://127.0.0.1:9", "--output", str(output)]) == 2
    assert "scheduler 'tcp://127.0.0.1:9' did not answer" in capsys.readouterr().err
    assert not output.exists()
