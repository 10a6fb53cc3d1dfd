"""Rendering an executed notebook to one self-contained HTML page.

The page needs nothing from the network: formulas are converted from LaTeX to MathML when
the page is built (browsers render MathML natively), figures are embedded as data, and the
template's CDN scripts (require.js, MathJax, mermaid, the widget manager) are left out.
Interactive widgets are dropped: the page shows the default view each notebook draws as a
normal output, and the controls live only in JupyterLab.
"""

from __future__ import annotations

import copy
import html
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from .run import NotebookRun

__all__ = ["latex_to_mathml", "render_html", "REPORT_CSS"]

#: Output mimetype of an ipywidgets view: the page shows the default view drawn beside it instead.
WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"

# Code (fenced or inline) is copied as it is; maths is $$...$$ (display) or $...$ (inline).
_MATH_OR_CODE = re.compile(
    r"(?P<fence>^```.*?^```[ \t]*$)"
    r"|(?P<code>`+)(?P<code_body>.+?)(?P=code)"
    r"|(?<!\\)\$\$(?P<display>.+?)(?<!\\)\$\$"
    r"|(?<![\\$])\$(?P<inline>[^$]+?)(?<!\\)\$(?!\$)",
    re.S | re.M,
)


def latex_to_mathml(markdown: str) -> str:
    """Replace the ``$...$`` and ``$$...$$`` formulas of a markdown text by MathML.

    Code spans and fenced code blocks are left alone, and so is an escaped ``\\$``.

    Examples
    --------
    >>> latex_to_mathml("load $a$ and `$HOME`")[:46]
    'load <math xmlns="http://www.w3.org/1998/Math/'
    >>> "<mfrac>" in latex_to_mathml(r"$$B = \\frac{1}{2}$$"), "$$" in latex_to_mathml(r"$$x$$")
    (True, False)
    """
    from latex2mathml.converter import convert

    def replace(match: re.Match) -> str:
        if match.group("fence") is not None or match.group("code") is not None:
            return match.group(0)
        if match.group("display") is not None:
            return "\n\n" + convert(match.group("display").strip(), display="block") + "\n\n"
        return convert(match.group("inline").strip())

    return _MATH_OR_CODE.sub(replace, markdown)


REPORT_CSS = """
/* reliability reports: readable at 1,280 px, nothing loaded from elsewhere */
body.jp-Notebook { max-width: 1180px; margin: 0 auto; padding: 1rem 1.5rem 3rem; }
.jp-RenderedImage img, .jp-OutputArea-output img { max-width: 100%; height: auto; }
.jp-RenderedHTMLCommon table { max-width: 100%; font-size: 12px; table-layout: auto; }
.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { white-space: normal; overflow-wrap: break-word;
    hyphens: manual; max-width: 22rem; }
.jp-RenderedHTMLCommon thead th { vertical-align: bottom; }
.jp-OutputArea-output { overflow-x: auto; }
math[display="block"] { display: block math; margin: 0.8em 0; font-size: 1.1em; }
math { font-family: "STIX Two Math", "Latin Modern Math", "Cambria Math", "DejaVu Serif", serif; }
details.reliability-parameters summary { cursor: pointer; font-weight: bold; }
table.reliability-results caption { font-weight: bold; text-align: left; }
"""

_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}<style type="text/css">{{ resources.reliability_css }}</style>{%- endblock extra_css -%}
"""


def _shown(value: Any) -> str:
    return html.escape(repr(value))


def parameters_html(run: "NotebookRun") -> str:
    """The parameters a run used, the changed ones first and marked, folded under a summary line."""
    kind = "smoke parameters" if run.smoke else "parameters"
    changed = [k for k in run.parameters if k in run.changed]
    if changed:
        listed = ", ".join(f"<code>{html.escape(k)} = {_shown(run.parameters[k])}</code>" for k in changed)
        summary = f"Run with these {kind}: {len(changed)} differ from the defaults ({listed})"
    else:
        summary = f"Run with these {kind}: all defaults"
    rows = "".join(
        f"<tr><td><code>{html.escape(k)}</code></td><td><code>{_shown(v)}</code></td>"
        f"<td>{'changed' if k in run.changed else ''}{' (given)' if k in run.overrides else ''}</td></tr>"
        for k, v in sorted(run.parameters.items(), key=lambda kv: kv[0] not in run.changed)
    )
    return (
        f"<details class='reliability-parameters'><summary>{summary}</summary>"
        f"<table><thead><tr><th>parameter</th><th>value</th><th></th></tr></thead><tbody>{rows}</tbody></table>"
        "</details>"
    )


def _without_widgets(outputs: list) -> list:
    """Outputs with widget views removed (their default view is drawn as a normal output)."""
    return [o for o in outputs if WIDGET_MIMETYPE not in o.get("data", {})]


def _convert_maths(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = latex_to_mathml(cell.source)
        for output in cell.get("outputs", []) or []:
            data = output.get("data", {})
            if "text/markdown" in data:
                data["text/markdown"] = latex_to_mathml(data["text/markdown"])


def prepare_for_html(nb, run: "NotebookRun | None" = None):
    """A copy of an executed notebook ready to render offline: maths as MathML, no widgets."""
    import nbformat

    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = _without_widgets(cell.outputs)
    _convert_maths(nb)
    if run is not None and run.parameters:
        position = 1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0
        nb.cells.insert(position, nbformat.v4.new_markdown_cell(parameters_html(run)))
    return nb


def _notebook_title(nb, fallback: str) -> str:
    from .parameters import notebook_question

    return notebook_question(nb, fallback)


def render_html(nb, *, with_code: bool = False, title: str | None = None,
                run: "NotebookRun | None" = None) -> str:
    """Render an executed notebook to a standalone, self-contained HTML page.

    Code cells' inputs are hidden unless ``with_code``; markdown, figures, tables and
    errors are kept. With ``run`` given, the parameters used are inserted after the first
    cell (the hidden parameters cell no longer shows them), the changed ones named.
    """
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    prepared = prepare_for_html(nb, run)
    exporter = HTMLExporter(
        extra_loaders=[DictLoader({"reliability_report.html.j2": _TEMPLATE})],
        template_file="reliability_report.html.j2",
        exclude_input=not with_code,
        exclude_input_prompt=not with_code,
        exclude_output_prompt=not with_code,
    )
    name = title or (run.question if run is not None and run.question else _notebook_title(prepared, "report"))
    body, _ = exporter.from_notebook_node(
        prepared, resources={"metadata": {"name": name}, "reliability_css": REPORT_CSS}
    )
    return body
