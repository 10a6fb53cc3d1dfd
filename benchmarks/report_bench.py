"""The whole report (``make report``): wall time, each notebook's execution time, peak memory.

``python -m reliability report --output TMP`` runs in a child of a small wrapper process, so
that ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` sees only the report and the kernels it starts:
it is the peak resident memory of the largest single process among them (Linux reports it in
KiB), not a sum over processes running at the same time.

Each notebook's execution time is the sum of its cells' run times as papermill recorded them
in the executed notebook (``metadata.papermill.duration`` per cell); its wall time, from the
report's ``NAME.json``, also counts starting the kernel.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent

_WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run([sys.executable, "-m", "reliability", "report", "--output", sys.argv[1]] + sys.argv[2:],
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "maxrss_kib": usage.ru_maxrss, "returncode": done.returncode,
                  "stderr": done.stderr[-4000:]}))
"""


@dataclass
class NotebookTiming:
    name: str
    status: str
    wall_seconds: float
    execution_seconds: float | None
    slowest_cell: float | None


@dataclass
class ReportResult:
    wall_seconds: float
    peak_memory_bytes: int
    returncode: int
    notebooks: list[NotebookTiming]
    stderr_tail: str
    smoke: bool


def _cell_seconds(executed: Path) -> tuple[float | None, float | None]:
    try:
        nb = json.loads(executed.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    durations = [
        float(cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0)
        for cell in nb.get("cells", [])
        if cell.get("cell_type") == "code"
    ]
    if not durations:
        return None, None
    return sum(durations), max(durations)


def bench_report(*, smoke: bool = False, log: Callable[[str], None] = print) -> ReportResult:
    """Run the whole report once into a temporary folder and measure it."""
    with tempfile.TemporaryDirectory(prefix="reliability-report-") as tmp:
        log(f"report: python -m reliability report --output {tmp}{' --smoke' if smoke else ''}")
        extra = ["--smoke"] if smoke else []
        done = subprocess.run([sys.executable, "-c", _WRAPPER, tmp, *extra], cwd=ROOT,
                              capture_output=True, text=True, check=True)
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        notebooks = []
        for record in sorted(Path(tmp).glob("*.json")):
            data = json.loads(record.read_text(encoding="utf-8"))
            if "notebook" not in data:
                continue
            execution, slowest = _cell_seconds(record.with_suffix(".ipynb"))
            notebooks.append(NotebookTiming(
                name=data["notebook"], status=data.get("status", "?"),
                wall_seconds=float(data.get("duration_seconds", float("nan"))),
                execution_seconds=execution, slowest_cell=slowest,
            ))
    return ReportResult(
        wall_seconds=measured["wall"],
        peak_memory_bytes=int(measured["maxrss_kib"]) * 1024,
        returncode=measured["returncode"],
        notebooks=notebooks,
        stderr_tail=measured["stderr"],
        smoke=smoke,
    )
