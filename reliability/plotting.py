"""One figure theme for every notebook, and the few helpers the notebooks share.

Every notebook calls :func:`use_theme` once, so that all reports look alike:
seaborn's "whitegrid" style in the "notebook" context, a colour-blind-safe
palette, one figure size and resolution. The helpers keep figures honest:
axes carry their units, and each figure carries a caption that says what to see.

Only matplotlib and seaborn are imported here; no model logic lives in this module.
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
