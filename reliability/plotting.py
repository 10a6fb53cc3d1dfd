"""One figure theme for every notebook, and the few helpers the notebooks share.

Every notebook calls :func:`use_theme` once, so that all reports look alike:
seaborn's "whitegrid" style in the "notebook" context, a colour-blind-safe
palette, one figure size and resolution. The helpers keep figures honest:
axes carry their units, and each figure carries a caption that says what to see.

Legends go outside the data (:func:`legend_outside`), curves that lie on each other are found
(:func:`coinciding`) so a caption can say so, and tables are formatted for reading
(:func:`styled_table`: whole numbers whole, no scientific notation for ordinary numbers, no
reprs, fitting a 1,280 px page). Only matplotlib, seaborn and (for tables) pandas are imported
here; no model logic lives in this module.
"""

from __future__ import annotations

import textwrap

import seaborn as sns
from matplotlib.figure import FigureBase

__all__ = [
    "PALETTE",
    "FIGSIZE",
    "use_theme",
    "palette",
    "caption",
    "label_axes",
    "shade",
    "reference_line",
    "legend_outside",
    "coinciding",
    "styled_table",
]

#: Colour-blind-safe qualitative palette (seaborn's "colorblind", after Okabe & Ito).
PALETTE = "colorblind"

#: Default figure size in inches (width, height): fits an HTML report column.
FIGSIZE = (7.5, 4.5)

_RC = {
    "figure.figsize": FIGSIZE,
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
    "axes.titlesize": "medium",
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def use_theme() -> None:
    """Apply the project's single figure theme (idempotent).

    Examples
    --------
    >>> from reliability.plotting import use_theme
    >>> use_theme()
    """
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE, rc=_RC)


def palette(n_colors: int | None = None) -> list:
    """The theme's colours as a list of RGB tuples (``n_colors`` of them, cycling).

    Examples
    --------
    >>> len(palette(3))
    3
    """
    return sns.color_palette(PALETTE, n_colors=n_colors)


def _figure_of(fig_or_ax):
    if isinstance(fig_or_ax, FigureBase):
        return fig_or_ax
    return fig_or_ax.figure


def caption(fig_or_ax, text: str) -> None:
    """Write a caption under a figure, wrapped to the figure's width.

    The caption should say what the reader is meant to see, not restate the axes.
    With ``savefig.bbox = "tight"`` (the theme's setting, also used by the
    inline backend) the caption is kept inside the saved image.

    Parameters
    ----------
    fig_or_ax : matplotlib Figure or Axes
        The figure (or any of its axes) to caption.
    text : str
        The caption; whitespace is normalised and the text is wrapped.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> caption(ax, "Blocking falls steeply once servers exceed the load.")
    >>> plt.close(fig)
    """
    fig = _figure_of(fig_or_ax)
    width_inches = fig.get_figwidth()
    # Start just below everything already drawn (tick labels, axis labels, legends), so the
    # caption never overlaps them; call caption() last.
    try:
        bottom = fig.get_tightbbox(fig.canvas.get_renderer()).y0 / fig.get_figheight()
    except (AttributeError, TypeError, ValueError):  # a canvas without a renderer
        bottom = 0.0
    # About 13 characters per inch at the "small" font size of the notebook context.
    wrapped = textwrap.fill(" ".join(str(text).split()), width=max(30, int(width_inches * 13)))
    fig.text(0.01, min(bottom, 0.0) - 0.02, wrapped, ha="left", va="top", fontsize="small", style="italic", transform=fig.transFigure)


def label_axes(ax, x: str | None = None, y: str | None = None, *, x_unit: str | None = None,
               y_unit: str | None = None, title: str | None = None) -> None:
    """Label the axes as "quantity (unit)"; units are required for dimensional quantities.

    Parameters
    ----------
    ax : matplotlib Axes
    x, y : str, optional
        Quantity names, e.g. ``"offered load"``.
    x_unit, y_unit : str, optional
        Units, e.g. ``"Erlangs"``; a dimensionless probability may omit it.
    title : str, optional

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> label_axes(ax, "servers", "blocking probability", x_unit="count")
    >>> ax.get_xlabel()
    'servers (count)'
    >>> plt.close(fig)
    """
    if x is not None:
        ax.set_xlabel(f"{x} ({x_unit})" if x_unit else x)
    if y is not None:
        ax.set_ylabel(f"{y} ({y_unit})" if y_unit else y)
    if title is not None:
        ax.set_title(title)


def shade(ax, start: float, stop: float, label: str | None = None, *, axis: str = "x",
          color=None, alpha: float = 0.12) -> None:
    """Shade a band of the plot, e.g. the region where a target is met.

    Parameters
    ----------
    ax : matplotlib Axes
    start, stop : float
        Band limits in data coordinates.
    label : str, optional
        Legend label for the band.
    axis : {"x", "y"}
        ``"x"`` shades a vertical band between two x values, ``"y"`` a horizontal one.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> shade(ax, 0.0, 0.01, "meets target", axis="y")
    >>> plt.close(fig)
    """
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    color = "0.5" if color is None else color
    span = ax.axvspan if axis == "x" else ax.axhspan
    span(start, stop, color=color, alpha=alpha, label=label, linewidth=0)


def reference_line(ax, value: float, label: str | None = None, *, axis: str = "y", color=None) -> None:
    """Draw a dashed reference line (a target, a limit) across the plot.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> reference_line(ax, 0.01, "1 % blocking target")
    >>> plt.close(fig)
    """
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    color = "0.3" if color is None else color
    line = ax.axhline if axis == "y" else ax.axvline
    line(value, color=color, linestyle="--", linewidth=1.0, label=label)


def legend_outside(ax, *, where: str = "right", title: str | None = None, handles=None, labels=None,
                   ncol: int | None = None, **kwargs):
    """Put the legend outside the axes, so that it never covers the data it labels.

    Parameters
    ----------
    ax : matplotlib Axes
    where : {"right", "below"}
        Beside the axes (top-aligned) or under them (centred, in columns).
    title : str, optional
    handles, labels : optional
        As for :meth:`matplotlib.axes.Axes.legend` (default: the axes' labelled artists).
    ncol : int, optional
        Columns (default: 1 on the right, up to 3 below).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.plot([0, 1], [0, 1], label="healthy")
    >>> legend = legend_outside(ax)
    >>> bool(legend.get_bbox_to_anchor().x0 > ax.get_window_extent().x1)
    True
    >>> plt.close(fig)
    """
    if where not in ("right", "below"):
        raise ValueError(f"where must be 'right' or 'below', got {where!r}")
    if handles is None:
        handles, found = ax.get_legend_handles_labels()
        labels = found if labels is None else labels
    elif labels is None:
        labels = [h.get_label() for h in handles]
    if where == "right":
        placement = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "ncol": ncol or 1}
    else:
        placement = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.16), "ncol": ncol or min(3, max(1, len(labels)))}
    return ax.legend(handles, labels, title=title, borderaxespad=0.0, **placement, **kwargs)


def coinciding(curves, *, rtol: float = 0.03, atol: float = 0.0) -> list[tuple[str, str]]:
    """Pairs of curves that lie on top of each other (within ``rtol``) wherever both are drawn.

    A caption names these pairs, and the figure draws them with different dashes, so a
    reader never counts fewer lines than the legend lists.

    Parameters
    ----------
    curves : mapping of label to sequence of float
        The curves' y values on one common x grid (NaN where a curve is not drawn).
    rtol, atol : float
        Relative and absolute tolerance.

    Examples
    --------
    >>> coinciding({"B": [0.5, 0.1, 0.01], "slow": [0.5, 0.101, 0.0101], "C": [0.9, 0.4, 0.1]})
    [('B', 'slow')]
    """
    import numpy as np

    names = list(curves)
    values = {k: np.asarray(v, dtype=float) for k, v in curves.items()}
    pairs = []
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            a, b = values[first], values[second]
            both = np.isfinite(a) & np.isfinite(b)
            if both.any() and np.all(np.abs(a[both] - b[both]) <= atol + rtol * np.maximum(np.abs(a[both]), np.abs(b[both]))):
                pairs.append((first, second))
    return pairs


def _cell_text(value, digits: int, percent: bool) -> str:
    from reliability.reports import format_number, format_percent

    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, str):
        return value
    if percent and not isinstance(value, bool):
        return format_percent(value, digits)
    return format_number(value, digits)


def styled_table(frame, *, percent=(), digits: int | dict = 3, index: bool = False, caption: str | None = None):
    """A table formatted for reading: integers whole, numbers to ``digits`` significant digits.

    No scientific notation for ordinary numbers, ``yes``/``no`` for bools, ``–`` for missing
    values, percentages with their ``%``; headers wrap so that the table fits a 1,280 px page.
    Put units in the column names (``"servers"``, ``"recovery (min)"``).

    Parameters
    ----------
    frame : pandas.DataFrame
    percent : sequence of str
        Columns holding fractions to show as percentages.
    digits : int or dict
        Significant digits, for every column or per column (others get 3).
    index : bool
        Show the index (e.g. a meaningful row label).
    caption : str, optional

    Returns
    -------
    pandas.io.formats.style.Styler

    Examples
    --------
    >>> import pandas as pd
    >>> table = styled_table(pd.DataFrame({"servers": [18.0, 221.0], "blocking": [0.00714, 0.0099]}),
    ...                      percent=["blocking"])
    >>> html = table.to_html()
    >>> "18" in html and "0.714 %" in html and "1.8e" not in html
    True
    """
    percent = set(percent)
    unknown = percent - set(frame.columns)
    if unknown:
        raise ValueError(f"percent names columns the table does not have: {sorted(unknown)}")

    def formatter(column):
        n = digits.get(column, 3) if isinstance(digits, dict) else digits
        return lambda value: _cell_text(value, n, column in percent)

    styler = frame.style.format({column: formatter(column) for column in frame.columns})
    styler = styler.format_index(lambda v: _cell_text(v, 3, False), axis=0)
    if not index:
        styler = styler.hide(axis="index")
    styler = styler.set_table_styles([
        {"selector": "th", "props": "white-space: normal; max-width: 14rem; text-align: right;"},
        {"selector": "td", "props": "white-space: normal; font-variant-numeric: tabular-nums;"},
    ], overwrite=False)
    text_columns = [c for c in frame.columns if frame[c].dtype == object or str(frame[c].dtype).startswith(("str", "string"))]
    number_columns = [c for c in frame.columns if c not in text_columns]
    # Words read from the left, numbers line up on the right.
    if text_columns:
        styler = styler.set_properties(subset=text_columns, **{"text-align": "left"})
    if number_columns:
        styler = styler.set_properties(subset=number_columns, **{"text-align": "right"})
    if caption:
        styler = styler.set_caption(caption)
    return styler
