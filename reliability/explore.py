"""The functions behind the notebooks' interactive controls, and the controls themselves.

Each view is a pure computation (:func:`size_pool`, :func:`size_split`) plus a drawing of its
result (:func:`draw_sizing`, :func:`draw_split`) and a sentence about it; :class:`Explorer`
wires ipywidgets controls to a view in JupyterLab. The view with the notebook's parameters is
displayed as an ordinary figure, which is what a rendered report shows; moving a control
recomputes the view and replaces that figure in place. Only public names of ``reliability``
are used, so the views compute exactly what the package computes.

Examples
--------
>>> sizing = size_pool(10.0, blocking_target=0.01, wait_target=0.2, slow_target=0.01,
...                    wait_time_seconds=0.005, service_time_seconds=0.05)
>>> sizing.servers
{'blocking (Erlang B)': 18, 'P(wait) (Erlang C)': 14, 'P(wait > 5 ms)': 18}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

import reliability as _rel
from reliability._records import Record
from reliability.plotting import coinciding, label_axes, legend_outside, palette, reference_line
from reliability.reports import Result, format_number, format_percent, plural

__all__ = [
    "Sizing",
    "requirement_names",
    "size_pool",
    "utilisation_sweep",
    "coinciding_note",
    "draw_sizing",
    "sizing_summary",
    "size_split",
    "draw_split",
    "split_summary",
    "Explorer",
    "sizing_view",
    "split_view",
    "sizing_explorer",
    "split_explorer",
]

# Dashes and markers that keep every requirement visible where curves or dots coincide.
_DASHES = ["-", "--", ":"]
_MARKERS = [("o", 90, "none"), ("s", 38, None), ("D", 16, None)]


def requirement_names(wait_time_seconds: float) -> list[str]:
    """The three sizing requirements, as the notebook's legends and tables name them.

    Examples
    --------
    >>> requirement_names(0.005)
    ['blocking (Erlang B)', 'P(wait) (Erlang C)', 'P(wait > 5 ms)']
    """
    return ["blocking (Erlang B)", "P(wait) (Erlang C)", f"P(wait > {wait_time_seconds * 1000:g} ms)"]


@dataclass(frozen=True, repr=False)
class Sizing(Record):
    """Servers for one offered load under three requirements, with the curves they come from."""

    load: float
    targets: dict[str, float]
    servers: dict[str, int]
    achieved: dict[str, float]
    curves: pd.DataFrame = field(repr=False)  # servers, requirement, probability

    @property
    def utilisation(self) -> dict[str, float]:
        """Busy share of the servers: a loss pool carries only the load it does not refuse."""
        blocking = next(iter(self.servers))
        return {name: self.load * (1.0 - (self.achieved[name] if name == blocking else 0.0)) / n
                for name, n in self.servers.items()}


def size_pool(load: float, *, blocking_target: float, wait_target: float, slow_target: float,
              wait_time_seconds: float, service_time_seconds: float) -> Sizing:
    """Size a pool for one offered load: the least servers meeting each target, and the curves.

    Parameters
    ----------
    load : float
        Offered load in Erlangs.
    blocking_target, wait_target, slow_target : float
        Most acceptable blocking probability, probability of waiting, and probability of
        waiting longer than ``wait_time_seconds``.
    wait_time_seconds, service_time_seconds : float
        The wait that counts as slow, and the mean time a request holds a server.
    """
    names = requirement_names(wait_time_seconds)
    service_rate = 1.0 / service_time_seconds
    servers = {
        names[0]: int(_rel.servers_for_blocking(load, blocking_target)),
        names[1]: int(_rel.servers_for_wait(load, wait_target)),
        names[2]: int(_rel.servers_for_wait(load, slow_target, wait_time=wait_time_seconds, service_rate=service_rate)),
    }

    def probabilities(c):
        return {names[0]: _rel.erlang_b(c, load), names[1]: _rel.erlang_c(c, load),
                names[2]: _rel.wait_sf(c, load, wait_time_seconds, service_rate)}

    spread = np.sqrt(load)
    grid = np.arange(max(1, int(np.floor(load - 2 * spread))), max(servers.values()) + int(np.ceil(2 * spread)) + 3)
    curves = pd.concat([pd.DataFrame({"servers": grid, "requirement": name, "probability": p})
                        for name, p in probabilities(grid).items()], ignore_index=True)
    achieved = {name: float(probabilities(servers[name])[name]) for name in names}
    targets = dict(zip(names, [blocking_target, wait_target, slow_target]))
    return Sizing(load=float(load), targets=targets, servers=servers, achieved=achieved, curves=curves)


def utilisation_sweep(loads, *, blocking_target: float, wait_target: float, slow_target: float,
                      wait_time_seconds: float, service_time_seconds: float) -> pd.DataFrame:
    """Servers and utilisation at each target over a range of loads (the economies of scale).

    Returns a long frame with columns ``offered load``, ``requirement``, ``servers``,
    ``carried load`` and ``utilisation``.

    Examples
    --------
    >>> sweep = utilisation_sweep([1.0, 100.0], blocking_target=0.01, wait_target=0.2, slow_target=0.01,
    ...                           wait_time_seconds=0.005, service_time_seconds=0.05)
    >>> bool(sweep.groupby("requirement")["utilisation"].apply(lambda u: u.is_monotonic_increasing).all())
    True
    """
    names = requirement_names(wait_time_seconds)
    loads = np.asarray(loads, dtype=float)
    service_rate = 1.0 / service_time_seconds
    servers = [
        _rel.servers_for_blocking(loads, blocking_target),
        _rel.servers_for_wait(loads, wait_target),
        _rel.servers_for_wait(loads, slow_target, wait_time=wait_time_seconds, service_rate=service_rate),
    ]
    frames = []
    for name, count in zip(names, servers):
        count = np.asarray(count, dtype=float)
        refused = _rel.erlang_b(count, loads) if name == names[0] else np.zeros_like(loads)
        carried = loads * (1.0 - refused)
        frames.append(pd.DataFrame({"offered load": loads, "requirement": name, "servers": count.astype(int),
                                    "carried load": carried, "utilisation": carried / count}))
    return pd.concat(frames, ignore_index=True)


def coinciding_note(sizing: Sizing) -> str:
    """Which requirements' curves lie on each other, and which need the same servers, in words."""
    wide = sizing.curves.pivot(index="servers", columns="requirement", values="probability")
    pairs = coinciding({name: wide[name].to_numpy() for name in sizing.servers}, rtol=0.15)
    notes = [f"the {b} curve lies on the {a} curve (drawn with other dashes)" for a, b in pairs]
    names = list(sizing.servers)
    equal = [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if sizing.servers[a] == sizing.servers[b]]
    notes += [f"{a} and {b} need the same {plural(sizing.servers[a], 'server')} (nested dots)" for a, b in equal]
    return "; ".join(notes)


def draw_sizing(sizing: Sizing, ax=None, *, legend: bool = True):
    """Probability against servers for each requirement, dots at the servers each target needs.

    Curves that coincide get different dashes and dots that coincide are nested (a ring, a
    square, a diamond), so every requirement stays visible. Returns the figure.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4.2))
    colours = dict(zip(sizing.servers, palette(3)))
    for (name, group), dashes, (marker, size, face) in zip(sizing.curves.groupby("requirement", sort=False),
                                                           _DASHES, _MARKERS):
        ax.plot(group["servers"], group["probability"], color=colours[name], linestyle=dashes, lw=1.8, label=name)
        ax.scatter([sizing.servers[name]], [sizing.achieved[name]], marker=marker, s=size, zorder=3,
                   facecolors=face or colours[name], edgecolors=colours[name], linewidths=1.5)
        reference_line(ax, sizing.targets[name], color=colours[name])
    ax.set_yscale("log")
    ax.set_ylim(1e-5, 1.5)
    label_axes(ax, "servers", "probability", x_unit="count", title=f"offered load {format_number(sizing.load)} Erlangs")
    if legend:
        legend_outside(ax, title="requirement\n(thin dashed line: its target)")
    return ax.figure


def sizing_summary(sizing: Sizing) -> str:
    """One sentence: the servers each requirement needs at this load (and what coincides)."""
    parts = [f"{plural(n, 'server')} for {name} ≤ {sizing.targets[name]:g}" for name, n in sizing.servers.items()]
    note = coinciding_note(sizing)
    return f"At {format_number(sizing.load)} Erlangs: " + "; ".join(parts) + "." + (f" ({note}.)" if note else "")


def size_split(offered_load: float, new_share: float, surge: float, target: float, *,
               capacity_model: str = "erlang_b", retry_policy: str = "fixed:3",
               autoscale_factor: float = 3.0, reaction_time: float = 10.0):
    """The servers each side of a split needs for a surge, against one pooled system.

    A thin, named entry to :func:`reliability.split_requirement` taking the notebook's
    parameter spellings (``"erlang_b"``, ``"fixed:3"``), so that a control can pass them.
    """
    return _rel.split_requirement(
        offered_load, new_share, target, surge,
        capacity=_rel.CapacityModel.parse(capacity_model),
        retry_policy=_rel.parse_retry_policy(retry_policy),
        autoscaling=_rel.Autoscaling(max_scale=autoscale_factor, reaction_time=reaction_time),
    )


def _split_bars(requirement) -> pd.DataFrame:
    rows = [("old side", requirement.old), ("new side, fixed", requirement.new), ("pooled", requirement.pooled)]
    frame = pd.DataFrame({"system": [name for name, _ in rows],
                          "headroom": [side.headroom for _, side in rows],
                          "servers": [side.servers for _, side in rows]})
    if requirement.new.base_load > 0:
        scaling = requirement.autoscaling
        base = pd.DataFrame({"system": ["new side, base before autoscaling"],
                             "headroom": [scaling.base_servers / requirement.new.base_load - 1.0],
                             "servers": [scaling.base_servers]})
        frame = pd.concat([frame.iloc[:2], base, frame.iloc[2:]], ignore_index=True)
    return frame[np.isfinite(frame["headroom"].astype(float))]


def draw_split(requirement, ax=None):
    """Headroom each side needs, the new side with and without autoscaling, and the pooled system."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 3.4))
    bars = _split_bars(requirement)
    colours = palette(len(bars))
    y = np.arange(len(bars))[::-1]
    ax.barh(y, bars["headroom"], color=colours, height=0.6)
    for yi, (headroom, servers) in zip(y, zip(bars["headroom"], bars["servers"])):
        ax.text(headroom, yi, f"  {format_percent(headroom)} ({plural(servers, 'server')})", va="center",
                fontsize="small")
    ax.set_yticks(y)
    ax.set_yticklabels(bars["system"])
    ax.set_xlim(0, 1.45 * max(float(bars["headroom"].max()), 0.05))
    ax.xaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    label_axes(ax, "headroom over base load", None, x_unit="%",
               title=f"{requirement.surge:g}x surge on {requirement.offered_load:g} Erlangs, "
                     f"{format_percent(requirement.new_share)} migrated")
    return ax.figure


def split_summary(requirement) -> str:
    """One sentence: servers each side needs, the pooled system, and the migration tax."""
    tax = Result(requirement.tax_servers, "servers")
    return (f"Old side {plural(requirement.old.servers, 'server')}, new side {plural(requirement.new.servers, 'server')} "
            f"(or {plural(requirement.autoscaling.base_servers, 'server')} before autoscaling), against "
            f"{plural(requirement.pooled.servers, 'server')} pooled: a migration tax of {tax} "
            f"({format_percent(requirement.tax_share)} of the pooled capacity).")


class Explorer:
    """ipywidgets controls that recompute a view and redraw it in place (JupyterLab).

    Parameters
    ----------
    view : callable
        Called with the controls' values as keyword arguments; returns ``(figure, text)``.
    controls : mapping of str to ipywidgets widget
        One control per keyword of ``view``.
    display : callable, optional
        ``IPython.display.display`` by default (a test passes its own).

    The first view is displayed as an ordinary figure and markdown text (what a rendered
    report shows); :meth:`update` replaces both in place with a new view.
    """

    def __init__(self, view: Callable[..., tuple[Any, str]], controls: Mapping[str, Any], *, display=None):
        self.view = view
        self.controls = dict(controls)
        self._display = display
        self._figure = self._text = None

    def values(self) -> dict[str, Any]:
        """The controls' current values, by keyword."""
        return {name: control.value for name, control in self.controls.items()}

    def _render(self):
        try:
            return self.view(**self.values())
        except ValueError as exc:  # a combination the models refuse: say why instead of a traceback
            return None, f"**Cannot compute this view:** {exc}"

    def show(self) -> "Explorer":
        """Display the controls, then the view for their current values."""
        import ipywidgets
        import matplotlib.pyplot as plt
        from IPython.display import Markdown, display

        show = self._display or display
        widgets = list(self.controls.values())
        show(ipywidgets.VBox([ipywidgets.HBox(widgets[i:i + 3]) for i in range(0, len(widgets), 3)]))
        figure, text = self._render()
        self._figure = show(figure, display_id=True) if figure is not None else None
        self._text = show(Markdown(text), display_id=True)
        if figure is not None:
            plt.close(figure)
        for control in widgets:
            control.observe(self.update, names="value")
        return self

    def update(self, change=None) -> None:
        """Recompute the view for the controls' values and replace the shown figure and text."""
        import matplotlib.pyplot as plt
        from IPython.display import Markdown

        figure, text = self._render()
        if figure is not None and self._figure is not None:
            self._figure.update(figure)
            plt.close(figure)
        if self._text is not None:
            self._text.update(Markdown(text))


def _slider(kind: str, description: str, value: float, low: float, high: float, **extra):
    import ipywidgets

    style = {"description_width": "initial"}
    layout = ipywidgets.Layout(width="30%")
    if kind == "log":
        return ipywidgets.FloatLogSlider(value=value, base=10, min=np.log10(low), max=np.log10(high), step=0.05,
                                         description=description, style=style, layout=layout,
                                         continuous_update=False, **extra)
    return ipywidgets.FloatSlider(value=value, min=low, max=high, description=description, style=style,
                                  layout=layout, continuous_update=False, **extra)


def sizing_explorer(load: float, *, blocking_target: float, wait_target: float, slow_target: float,
                    wait_time_seconds: float, service_time_seconds: float, display=None) -> Explorer:
    """Notebook 01's controls: servers for a load and targets, starting from the notebook's values."""
    from functools import partial

    controls = {
        "load": _slider("log", "offered load (Erlangs)", load, 1.0, 1e5),
        "blocking_target": _slider("log", "blocking target", blocking_target, 1e-5, 0.5),
        "wait_target": _slider("log", "P(wait) target", wait_target, 1e-3, 0.9),
        "slow_target": _slider("log", "P(slow) target", slow_target, 1e-5, 0.5),
        "wait_time_seconds": _slider("lin", "slow wait (s)", wait_time_seconds, 0.0, max(0.1, 4 * wait_time_seconds),
                                     step=0.001, readout_format=".3f"),
    }
    return Explorer(partial(sizing_view, service_time_seconds=service_time_seconds), controls, display=display)


def split_explorer(offered_load: float, new_share: float, surge: float, target: float, *,
                   capacity_model: str, retry_policy: str, autoscale_factor: float, reaction_time: float,
                   display=None) -> Explorer:
    """Notebook 03's controls: each side's headroom for a split, starting from the notebook's values."""
    import ipywidgets
    from functools import partial

    policies = ["none", "fixed:1", "fixed:3", "budget:0.1", "token_bucket", "aws", "throttle:2"]
    if retry_policy not in policies:
        policies.insert(0, retry_policy)
    controls = {
        "offered_load": _slider("log", "base load (Erlangs)", offered_load, 1.0, 1e5),
        "new_share": _slider("lin", "share migrated", new_share, 0.0, 1.0, step=0.05),
        "surge": _slider("lin", "surge (x)", surge, 1.0, max(6.0, surge), step=0.1),
        "target": _slider("log", "failure target", target, 1e-4, 0.2),
        "retry_policy": ipywidgets.Dropdown(options=policies, value=retry_policy, description="retries"),
        "autoscale_factor": _slider("lin", "autoscale (x)", autoscale_factor, 1.0, max(6.0, autoscale_factor), step=0.5),
        "reaction_time": _slider("lin", "reaction (holding times)", reaction_time, 0.0, max(60.0, reaction_time), step=1.0),
    }
    return Explorer(partial(split_view, capacity_model=capacity_model), controls, display=display)


def sizing_view(**values) -> tuple[Any, str]:
    """The view behind notebook 01's controls: one load's sizing, drawn, and its sentence."""
    sizing = size_pool(**values)
    return draw_sizing(sizing), sizing_summary(sizing)


def split_view(**values) -> tuple[Any, str]:
    """The view behind notebook 03's controls: the split's requirement, drawn, and its sentence."""
    requirement = size_split(**values)
    return draw_split(requirement), split_summary(requirement)
