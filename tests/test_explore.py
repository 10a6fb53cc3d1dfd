"""The functions behind the notebooks' interactive controls compute what the package computes, and redraw."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

import reliability as rel  # noqa: E402
from reliability import explore  # noqa: E402

TARGETS = dict(blocking_target=0.01, wait_target=0.2, slow_target=0.01, wait_time_seconds=0.005,
               service_time_seconds=0.05)


def test_size_pool_matches_the_sizing_functions():
    sizing = explore.size_pool(100.0, **TARGETS)
    blocking, wait, slow = explore.requirement_names(0.005)
    assert sizing.servers[blocking] == rel.servers_for_blocking(100.0, 0.01)
    assert sizing.servers[wait] == rel.servers_for_wait(100.0, 0.2)
    assert sizing.servers[slow] == rel.servers_for_wait(100.0, 0.01, wait_time=0.005, service_rate=20.0)
    assert sizing.achieved[blocking] == pytest.approx(rel.erlang_b(sizing.servers[blocking], 100.0))
    assert all(sizing.achieved[name] <= sizing.targets[name] for name in sizing.servers)
    assert sizing.utilisation[wait] == pytest.approx(100.0 / sizing.servers[wait])


def test_utilisation_sweep_agrees_with_size_pool():
    sweep = explore.utilisation_sweep([10.0, 1000.0], **TARGETS)
    for load in (10.0, 1000.0):
        sizing = explore.size_pool(load, **TARGETS)
        rows = sweep[sweep["offered load"] == load].set_index("requirement")
        for name, servers in sizing.servers.items():
            assert rows.loc[name, "servers"] == servers
            assert rows.loc[name, "utilisation"] == pytest.approx(sizing.utilisation[name])


def test_coinciding_requirements_are_named():
    # At 10 Erlangs blocking and P(wait > 5 ms) need the same 18 servers.
    note = explore.coinciding_note(explore.size_pool(10.0, **TARGETS))
    assert "need the same 18 servers" in note


def test_draw_sizing_keeps_the_legend_outside_and_draws_every_requirement():
    figure = explore.draw_sizing(explore.size_pool(10.0, **TARGETS))
    ax = figure.axes[0]
    labels = [line.get_label() for line in ax.lines if not line.get_label().startswith("_")]
    assert labels == explore.requirement_names(0.005)
    curves = [line for line in ax.get_lines() if line.get_label() in labels]
    assert len({line.get_linestyle() for line in curves}) == 3  # coinciding curves stay distinguishable
    figure.canvas.draw()
    legend, axes_box = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= axes_box.x1  # never over the data
    plt.close(figure)


def test_size_split_is_split_requirement():
    mine = explore.size_split(400.0, 0.5, 2.0, 0.01, capacity_model="erlang_b", retry_policy="fixed:3")
    theirs = rel.split_requirement(400.0, 0.5, 0.01, 2.0, capacity=rel.CapacityModel.parse("erlang_b"),
                                   retry_policy=rel.parse_retry_policy("fixed:3"),
                                   autoscaling=rel.Autoscaling(max_scale=3.0, reaction_time=10.0))
    assert mine.as_row() == theirs.as_row()
    text = explore.split_summary(mine)
    assert f"{int(mine.old.servers)} servers" in text and f"{int(mine.pooled.servers)} servers pooled" in text
    plt.close(explore.draw_split(mine))


class _Handle:
    def __init__(self, shown):
        self.shown = [shown]

    def update(self, obj):
        self.shown.append(obj)


class _Display:
    """Stands in for IPython's display: keeps what was shown, and handles that record updates."""

    def __init__(self):
        self.calls, self.handles = [], []

    def __call__(self, obj, display_id=False):
        self.calls.append(obj)
        if display_id:
            self.handles.append(_Handle(obj))
            return self.handles[-1]
        return None


def test_sizing_explorer_recomputes_when_a_control_moves():
    shown = _Display()
    explorer = explore.sizing_explorer(10.0, display=shown, **TARGETS).show()
    figure_handle, text_handle = shown.handles
    assert "At 10 Erlangs: 18 servers" in text_handle.shown[0].data
    explorer.controls["load"].value = 100.0  # what moving the slider does
    assert len(figure_handle.shown) == 2 and len(text_handle.shown) == 2
    assert "At 100 Erlangs" in text_handle.shown[-1].data
    assert f"{rel.servers_for_blocking(100.0, 0.01)} servers for blocking" in text_handle.shown[-1].data


def test_split_explorer_recomputes_and_explains_a_refused_view():
    shown = _Display()
    explorer = explore.split_explorer(400.0, 0.5, 2.0, 0.01, capacity_model="erlang_b", retry_policy="fixed:3",
                                      autoscale_factor=3.0, reaction_time=10.0, display=shown).show()
    _, text_handle = shown.handles
    explorer.controls["retry_policy"].value = "budget:0.1"
    assert "migration tax" in text_handle.shown[-1].data
    explorer.view = lambda **values: (_ for _ in ()).throw(ValueError("target must be < 1"))
    explorer.update()
    assert "Cannot compute this view" in text_handle.shown[-1].data and "target must be < 1" in text_handle.shown[-1].data
