"""Every rendered report, opened in headless Chromium as a reader would, with no network.

The reports are the smoke run of every notebook (``conftest.smoke_reports``) and their index.
A page fails on a console error, a failed request, a request that leaves the report's folder,
raw ``$$`` or ``\\frac`` in the rendered text (a formula that did not render), an image that did
not load, or anything wider than a 1,280 px window. A screenshot of each page goes to
``reports/screenshots/`` for the reader of a CI log.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from headless_chromium import Chromium, find_chromium
from reliability import reports

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "reports" / "screenshots"
NOTEBOOKS = reports.find_notebooks(ROOT / "notebooks")

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def browser():
    executable = find_chromium()
    assert executable, "chromium is not installed: `make test` installs Debian's chromium package (apt-get)"
    chromium = Chromium(executable)
    yield chromium
    chromium.close()


def _check(browser, page: Path, name: str):
    report = browser.inspect(page, SCREENSHOTS / f"{name}.png")
    problems = report.problems()
    assert not problems, f"{page.name} ({report.screenshot}):\n  " + "\n  ".join(problems)
    return report


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_report_renders_offline(notebook, smoke_reports, browser):
    run = smoke_reports.runs[notebook.stem]
    page = smoke_reports.folder / f"{run.run}.html"
    assert page.exists(), f"no report for {notebook.stem}: {run.describe_failure()}"
    report = _check(browser, page, notebook.stem)
    assert report.checks["images"] > 0, "a report without figures: did the notebook draw nothing?"
    source = page.read_text(encoding="utf-8")
    if "<math" in source:
        assert report.checks["mathElements"] > 0, "formulas were written but none became MathML in the page"


def test_index_renders_offline(smoke_reports, browser):
    report = _check(browser, smoke_reports.folder / "index.html", "index")
    assert report.checks["title"] == "reliability reports"
