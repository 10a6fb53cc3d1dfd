"""Twin experiment: incidents synthesised from the model itself with known values of the unknowns, one
per mechanism kind, written as incident files, loaded and reconstructed.

Each twin offers the generating mechanism and a rival as hypotheses. The reconstruction must put every
known value inside its reported 5-95 % range and pick the generating mechanism as the structure that
explains the figures best."""

import copy

import numpy as np
import pytest
import yaml

from reliability.incident import build_scenario, infer, load, measure

from twin_documents import START, SOURCE, at as _at, published as _published, unknown as _unknown  # noqa: E402


def _mechanism(ident, kind, hypothesis=True, **parameters):
    item = {"id": ident, "kind": kind, "statement": f"{kind} (synthetic).", "infrastructures": ["api"], **parameters}
    if hypothesis:
        item.update(hypothesis=True, reason="A candidate of the twin experiment.")
    else:
        item["sources"] = ["model"]
    return item


SURGE = dict(multiple=_unknown(1.1, 4.0, "multiple", "log"))
LOSS = dict(share=_unknown(10, 90, "percent"), routing="stays")

# kind: (mechanisms, truth {unknown path: value in SI}, events after the trigger)
TWINS = {
    "surge_requests": ([_mechanism("candidate", "surge_requests", **SURGE), _mechanism("rival", "capacity_loss", **LOSS)],
                       {"mechanisms.candidate.multiple": 1.6}),
    "surge_new_connections": (
        [_mechanism("candidate", "surge_new_connections", multiple=_unknown(2, 100, "multiple", "log")),
         _mechanism("rival", "capacity_loss", **LOSS)], {"mechanisms.candidate.multiple": 20.0}),
    "capacity_loss": ([_mechanism("candidate", "capacity_loss", **LOSS), _mechanism("rival", "surge_requests", **SURGE)],
                      {"mechanisms.candidate.share": 0.4}),
    "connection_ceiling": (
        [_mechanism("candidate", "connection_ceiling", size=_unknown(0.3, 1.5, "multiple")),
         _mechanism("rival", "surge_requests", **SURGE)], {"mechanisms.candidate.size": 0.8}),
    "retry_storm": (
        [_mechanism("trigger", "surge_requests", hypothesis=False, multiple=_published(2.0, "multiple")),
         _mechanism("candidate", "retry_storm", layer="end_user_clients",
                    policy={"max_retries": {"unknown": {"range": [0, 5], "unit": "count", "reason": "Synthetic."}},
                            "backoff": "exponential"}),
         _mechanism("rival", "capacity_loss", **LOSS)], {"mechanisms.candidate.max_retries": 3}),
    "contention": (
        [_mechanism("trigger", "surge_requests", hypothesis=False, multiple=_published(1.5, "multiple")),
         _mechanism("candidate", "contention", slowdown=_unknown(1.5, 10, "multiple", "log")),
         _mechanism("rival", "capacity_loss", **LOSS)], {"mechanisms.candidate.slowdown": 3.0}),
}
#: Twins whose trigger ends by itself: what follows is kept up by the candidate, and ended by added capacity.
SUSTAINED = ("retry_storm", "contention")


def _events(kind, mechanisms):
    switched = [m["id"] for m in mechanisms if kind not in SUSTAINED or m["id"] != "candidate"]
    events = [{"id": "begins", "kind": "trigger_start", "time": _at(10), "statement": "It began.",
               "starts": switched, "infrastructures": ["api"], "sources": ["model"]}]
    if kind in SUSTAINED:
        events += [{"id": "trigger_over", "kind": "trigger_end", "time": _at(20), "statement": "The trigger ended.",
                    "ends": switched, "sources": ["model"]},
                   {"id": "scaled_out", "kind": "capacity_added", "time": _at(60), "statement": "Capacity was added.",
                    "amount": _published(300, "percent"), "infrastructures": ["api"], "sources": ["model"]}]
    else:
        events.append({"id": "fixed", "kind": "hotfix", "time": _at(50), "statement": "It was fixed.",
                       "ends": switched, "infrastructures": ["api"], "sources": ["model"]})
    return events


FIGURES = [
    ("peak", "peak_failure_rate", "percent", {"averaging_interval": _published(60, "s")}),
    ("first_hour", "failure_over_window", "percent", {"window": {"from": _at(0), "to": _at(60)}}),
    ("impact", "total_impact_time", "min", {}),
    ("recovery", "time_to_recovery", "min", {}),
]


def _document(kind, figure_values=None):
    mechanisms, _ = TWINS[kind]
    figures = []
    for ident, quantity, unit, extra in FIGURES:
        value = 0.0 if figure_values is None else float(figure_values[ident])
        tolerance = max(2.0, 0.05 * value) if unit == "percent" else max(4.0, 0.1 * value)
        figures.append({"id": ident, "statement": f"Synthetic {quantity}.", "quantity": quantity,
                        "value": round(value, 2), "unit": unit, "qualifier": "about", "tolerance": round(tolerance, 2),
                        "observation_level": "requests", "scope": {"services": ["web"]}, "sources": ["model"],
                        **copy.deepcopy(extra)})
    return {"schema": "reliability-incident/2", "id": f"twin-{kind.replace('_', '-')}", "title": f"Twin of {kind}",
            "organisation": "Twin Ltd", "time_zone": "UTC", "start": START, "summary": "A synthetic incident.",
            "sources": SOURCE,
            "infrastructures": [{"id": "api", "name": "API", "autoscaled": False,
                                 "headroom": _published(0.3, "fraction")}],
            "services": [{"id": "web", "name": "Web", "infrastructure": "api"}],
            "mechanisms": copy.deepcopy(mechanisms), "events": _events(kind, mechanisms), "figures": figures}


def _write(folder, document):
    path = folder / f"{document['id']}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _synthesise(tmp_path, kind):
    """The twin's figures, measured from the model at the known values, written into its file."""
    _, truth = TWINS[kind]
    draft = load(_write(tmp_path, _document(kind)))
    scenario = build_scenario(draft, time_step=30.0)
    values = {k: np.asarray(v[:1], dtype=float) for k, v in scenario.midpoints().items()}
    values.update({path: np.array([float(value)]) for path, value in truth.items()})
    variant = next(i for i, v in enumerate(scenario.variants) if v.hypotheses == ("candidate",))
    timeline = scenario.run(values, np.array([variant]))
    measured = {f.id: float(measure(timeline, f, "requests")[0]) for f in draft.figures}
    return load(_write(tmp_path, _document(kind, measured))), truth


@pytest.mark.parametrize("kind", list(TWINS))
def test_twin_is_reconstructed(tmp_path, kind):
    incident, truth = _synthesise(tmp_path, kind)
    result = infer(build_scenario(incident, time_step=60.0), particles=300, workers=0)
    reading = result.readings[0]
    assert result.exact[reading], (result.unmet(reading), result.generation_table(reading))
    ranges = result.ranges(reading).set_index("unknown")
    for path, value in truth.items():
        unit = ranges.loc[path, "unit"]
        shown = value * (100.0 if unit == "percent" else 1.0)
        assert ranges.loc[path, "low"] - 1e-9 <= shown <= ranges.loc[path, "high"] + 1e-9, (path, shown, ranges.loc[path])
    assert result.picked_variant(reading) == "with candidate", result.variant_table(reading)
    assert result.runs[reading].converged, result.generation_table(reading)
