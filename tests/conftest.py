"""Fixtures shared by the notebook tests and the browser test: one smoke report run of every notebook."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from reliability import reports

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class SmokeReports:
    """Every notebook run once with its smoke parameters, rendered as ``make report`` renders it."""

    folder: Path
    runs: dict  # notebook name -> reliability.reports.NotebookRun


@pytest.fixture(scope="session")
def smoke_reports(tmp_path_factory) -> SmokeReports:
    # One run serves the notebook tests and the browser test, so each notebook executes once.
    folder = tmp_path_factory.mktemp("smoke-reports")
    notebooks = reports.find_notebooks(ROOT / "notebooks")
    runs = reports.build_reports(notebooks, folder, smoke=True, log=lambda line: None)
    return SmokeReports(folder=folder, runs={run.name: run for run in runs})
