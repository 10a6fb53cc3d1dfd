"""The index page: one row per run of a notebook, with its answer, labelled results and status.

Rows come from the runs' JSON records in the output folder, so a partial run (``--only``)
keeps the other notebooks' last results, and a run with other parameters (or other incidents)
is a row of its own that names what it changed. A notebook never run is listed as "not run".
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable

from .files import write_atomic
from .parameters import notebook_question, read_notebook
from .record import Recorded, format_duration

__all__ = ["read_runs", "write_index", "INDEX_CSS"]

INDEX_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem auto;
       max-width: 76rem; padding: 0 1rem; color: #222; line-height: 1.4; }
table.reports { border-collapse: collapse; width: 100%; table-layout: fixed; }
table.reports > tbody > tr > td, table.reports > thead > tr > th {
       border-bottom: 1px solid #ddd; padding: .6rem .5rem; vertical-align: top; text-align: left;
       overflow-wrap: anywhere; }
table.reports col.notebook { width: 17%; } table.reports col.answer { width: 29%; }
table.reports col.results { width: 35%; } table.reports col.status { width: 19%; }
.ok { color: #0a7a3d; font-weight: bold; } .failed { color: #b00020; font-weight: bold; }
.missing { color: #777; } .error { color: #b00020; font-family: monospace; font-size: .85em; }
table.results { border-collapse: collapse; }
table.results td, table.results th { padding: .1rem .6rem .1rem 0; font-size: .88em; border: none;
       vertical-align: top; }
table.results th { font-weight: normal; color: #444; text-align: left; }
table.results td { white-space: nowrap; font-variant-numeric: tabular-nums; }
.meta { color: #666; font-size: .85em; } .question { font-size: .9em; margin-top: .2rem; }
.changed code { font-size: .85em; background: #f3f3f3; padding: 0 .2em; }
.variant { color: #8a4b00; font-size: .85em; font-weight: bold; }
details.more summary { cursor: pointer; color: #555; font-size: .85em; margin-top: .3rem; }
"""


def read_runs(output_dir: str | os.PathLike) -> dict[str, list[dict[str, Any]]]:
    """The JSON records of every run in ``output_dir``, by notebook, the default run first."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(Path(output_dir).glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if not isinstance(data, dict) or "notebook" not in data:
            continue
        data.setdefault("run", path.stem)
        runs.setdefault(str(data["notebook"]), []).append(data)
    for records in runs.values():
        records.sort(key=lambda d: (d["run"] != d["notebook"], d["run"]))
    return runs


def _inline_markdown(text: str) -> str:
    """A sentence of markdown as HTML: emphasis, code and formulas (as MathML)."""
    from .render import latex_to_mathml

    parts = re.split(r"(\$\$.+?\$\$|\$[^$]+?\$)", text, flags=re.S)
    out = []
    for part in parts:
        if part.startswith("$") and part.endswith("$") and len(part) > 1:
            out.append(latex_to_mathml(part))
            continue
        escaped = html.escape(part)
        escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
        escaped = re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)
        out.append(escaped)
    return "".join(out)


def _recorded(data: dict[str, Any]) -> Recorded:
    return Recorded(results=dict(data.get("results") or {}), schema=dict(data.get("schema") or {}),
                    answer=str(data.get("answer") or ""), details=tuple(data.get("details") or ()),
                    headline=tuple(data.get("headline") or ()))


#: Results shown beside the answer when a notebook names no headline; the rest are folded.
SHOWN_RESULTS = 8


def _results_cell(data: dict[str, Any]) -> str:
    recorded = _recorded(data)
    if not recorded.results:
        return "<span class='missing'>none recorded</span>"
    def rows(keys):
        shown = (recorded.result(k) for k in keys)
        return "".join(f"<tr><th>{html.escape(r.label or k)}</th><td>{html.escape(r.text)}</td></tr>"
                       for k, r in zip(keys, shown))

    first = [k for k in recorded.headline if k in recorded.results] or list(recorded.results)[:SHOWN_RESULTS]
    rest = [k for k in recorded.results if k not in first]
    cell = f"<table class='results'>{rows(first)}</table>"
    if rest:
        cell += (f"<details class='more'><summary>{len(rest)} more results</summary>"
                 f"<table class='results'>{rows(rest)}</table></details>")
    return cell


def _status_cell(data: dict[str, Any]) -> str:
    if data.get("status") == "ok":
        status = "<span class='ok'>ok</span>"
    else:
        error = data.get("error") or {}
        detail = error.get("description") or data.get("message") or ""
        status = f"<span class='failed'>failed</span><div class='error'>{html.escape(detail)}</div>"
    changed = data.get("changed") or {}
    if changed:
        listed = ", ".join(f"<code>{html.escape(k)} = {html.escape(repr(v))}</code>" for k, v in changed.items())
        kind = "smoke parameters" if data.get("smoke") else "parameters"
        params = f"<div class='changed'>{kind} that differ from the defaults: {listed}</div>"
    else:
        params = "<div class='meta'>default parameters</div>"
    duration = format_duration(float(data.get("duration_seconds", 0.0)))
    when = html.escape(str(data.get("finished", "")))
    return f"{status}{params}<div class='meta'>ran in {html.escape(duration)} · {when}</div>"


def _links(run: str, output_dir: Path) -> tuple[str, str]:
    name = html.escape(run)
    title = f"<a href='{name}.html'>{name}</a>" if (output_dir / f"{run}.html").exists() else name
    extra = [f"<a href='{name}.{suffix}'>{label}</a>"
             for suffix, label in (("json", "results"), ("ipynb", "executed notebook"))
             if (output_dir / f"{run}.{suffix}").exists()]
    return title, " · ".join(extra)


def _run_row(data: dict[str, Any], question: str, output_dir: Path) -> str:
    run = str(data["run"])
    title, extra = _links(run, output_dir)
    kind = "smoke run" if data.get("smoke") else "run with other parameters"
    variant = "" if run == data["notebook"] else f"<div class='variant'>{kind}</div>"
    answer = _recorded(data).answer
    answer_cell = _inline_markdown(answer) if answer else "<span class='missing'>no answer recorded</span>"
    return (
        f"<tr id='{html.escape(run)}'><td>{title}{variant}"
        f"<div class='question'>{html.escape(data.get('question') or question)}</div>"
        f"<div class='meta'>{extra}</div></td>"
        f"<td>{answer_cell}</td><td>{_results_cell(data)}</td><td>{_status_cell(data)}</td></tr>"
    )


def _not_run_row(stem: str, question: str) -> str:
    return (
        f"<tr id='{html.escape(stem)}'><td>{html.escape(stem)}<div class='question'>{html.escape(question)}</div></td>"
        "<td class='missing'>not run</td><td></td><td></td></tr>"
    )


def write_index(output_dir: str | os.PathLike, notebooks: Iterable[str | os.PathLike]) -> Path:
    """Write ``index.html``: every run of every notebook with its answer, results and status.

    Parameters
    ----------
    output_dir : path-like
        The folder of the runs' ``RUN.json`` records; the index is written there.
    notebooks : iterable of path-like
        The notebooks to list, in order; each gets one row per run found, or a "not run" row.
    """
    output_dir = Path(output_dir)
    runs = read_runs(output_dir)
    rows = []
    for notebook in notebooks:
        notebook = Path(notebook)
        question = notebook_question(read_notebook(notebook), notebook.stem)
        records = runs.get(notebook.stem, [])
        rows += [_run_row(d, question, output_dir) for d in records] or [_not_run_row(notebook.stem, question)]
    generated = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>reliability reports</title><style>{INDEX_CSS}</style></head>
<body><h1>reliability reports</h1>
<p class="meta">Generated {html.escape(generated)}. Each row is one run of a notebook (papermill): the answer
it computed, the headline results it recorded, the parameters that differ from its defaults, and its status.
Open a notebook's name for its full report.</p>
<table class="reports"><colgroup><col class="notebook"><col class="answer"><col class="results"><col class="status">
</colgroup><thead><tr><th>notebook</th><th>answer</th><th>headline results</th><th>status</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
    return write_atomic(output_dir / "index.html", page)
