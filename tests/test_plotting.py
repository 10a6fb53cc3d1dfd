"""The shared figure theme and helpers: one look for every notebook, units on every axis."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from reliability import plotting  # noqa: E402


@pytest.fixture
def ax():
    plotting.use_theme()
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_theme_is_applied_and_idempotent():
    plotting.use_theme()
    first = dict(plt.rcParams)
    plotting.use_theme()
    assert dict(plt.rcParams) == first
    assert plt.rcParams["axes.spines.top"] is False
    assert plt.rcParams["axes.titlelocation"] == "left"


def test_label_axes_puts_units_in_brackets(ax):
    plotting.label_axes(ax, "offered load", "servers", x_unit="Erlangs", y_unit="count", title="Sizing")
    assert ax.get_xlabel() == "offered load (Erlangs)"
    assert ax.get_ylabel() == "servers (count)"
    assert ax.get_title(loc="left") == "Sizing"


def test_caption_is_written_below_the_axes(ax):
    ax.plot([0, 1], [0, 1])
    plotting.caption(ax, "What to see:   the line rises.")
    (text,) = ax.figure.texts
    assert text.get_text() == "What to see: the line rises."
    assert text.get_position()[1] < 0  # below the drawing area, never over the data


def test_shade_and_reference_line_add_labelled_artists(ax):
    plotting.shade(ax, 0.2, 0.5, label="bistable")
    plotting.reference_line(ax, 0.01, label="target")
    labels = {h.get_label() for h in ax.patches} | {line.get_label() for line in ax.lines}
    assert {"bistable", "target"} <= labels


def test_palette_has_the_requested_number_of_colours():
    assert len(plotting.palette(7)) == 7


def test_legend_outside_never_covers_the_data(ax):
    ax.plot([0, 1], [0, 1], label="healthy")
    ax.plot([0, 1], [1, 0], label="collapsed")
    for where in ("right", "below"):
        legend = plotting.legend_outside(ax, where=where)
        ax.figure.canvas.draw()
        box, data = legend.get_window_extent(), ax.get_window_extent()
        assert box.x0 >= data.x1 or box.y1 <= data.y0
    with pytest.raises(ValueError, match="where"):
        plotting.legend_outside(ax, where="inside")


def test_coinciding_finds_curves_on_top_of_each_other():
    nan = float("nan")
    curves = {"B": [0.5, 0.1, 0.01], "slow": [0.5, 0.1005, 0.01], "C": [0.9, 0.5, nan]}
    assert plotting.coinciding(curves) == [("B", "slow")]
    assert plotting.coinciding({"a": [1.0, 2.0], "b": [1.0, 3.0]}) == []


def test_styled_table_reads_like_prose():
    import pandas as pd

    frame = pd.DataFrame({"requirement": ["blocking"], "servers": [18.0], "load (Erlangs)": [18.6674],
                          "achieved": [0.00714], "met": [True], "ratio": [float("nan")]})
    html = plotting.styled_table(frame, percent=["achieved"]).to_html()
    for shown in (">18<", ">18.7<", ">0.714 %<", ">yes<", ">–<"):
        assert shown in html.replace("</td>", "<").replace("\n", ""), shown
    assert "e+01" not in html and "1.866740" not in html
    with pytest.raises(ValueError, match="percent"):
        plotting.styled_table(frame, percent=["missing"])
