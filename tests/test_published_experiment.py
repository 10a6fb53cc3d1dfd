"""A published metastability experiment (data/experiments/) against the delayed fluid model."""

from __future__ import annotations

import copy

import pytest
import yaml

from reliability.paths import data_dir
from reliability.validation.published import experiment_check, load_experiment

NAME = "retry-capacity-drop-osdi22"


def _write(tmp_path, document):
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_the_file_holds_the_artefact_settings_with_sources():
    document = load_experiment(NAME)
    assert document["client"] == {"timeout_seconds": 3, "max_retries": 4, "backoff": "none",
                                  "sources": ["runs", "client"]}
    outcomes = {run["id"]: (run["trigger_seconds"], run["trigger_cpus"], run["rate_interval_us"], run["metastable"])
                for run in document["runs"]}
    assert outcomes == {"baseline": (10, 0.45, 75, False), "metastable": (10, 0.40, 75, True),
                        "shorter": (9, 0.40, 75, False), "reduced_load": (10, 0.40, 100, False)}
    known = {source["id"] for source in document["sources"]}
    assert all(set(run["sources"]) <= known for run in document["runs"])


def test_swapped_outcomes_are_found_inconsistent(tmp_path):
    """The check can fail: with the 9 s cut staying down and the 10 s one recovering, no load fits."""
    document = copy.deepcopy(load_experiment(NAME))
    for run in document["runs"]:
        if run["id"] in ("metastable", "shorter"):
            run["metastable"] = not run["metastable"]
    document["readings"]["reduced_rate_share"] = document["readings"]["reduced_rate_share"][:1]
    frame = experiment_check(_write(tmp_path, document), rtol=1e-2)
    assert not frame.consistent.any() and frame.low.isna().all()
    # the shorter cut of the same size tips above a higher load than the longer one
    assert frame.edge_shorter[0] > frame.edge_metastable[0]


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.update(schema="reliability-experiment/0"), "schema"),
    (lambda d: d["client"].update(backoff="exponential"), "client.backoff"),
    (lambda d: d["client"].update(max_retries=-1), "client.max_retries"),
    (lambda d: d["runs"][0].update(trigger_cpus=3.0), r"runs\[0\].trigger_cpus"),
    (lambda d: d["runs"][1].update(metastable="yes"), r"runs\[1\].metastable"),
    (lambda d: d.update(runs=[]), "runs"),
])
def test_a_malformed_experiment_file_names_its_field(tmp_path, edit, match):
    document = copy.deepcopy(load_experiment(NAME))
    edit(document)
    with pytest.raises((ValueError, TypeError), match=match):
        load_experiment(_write(tmp_path, document))


def test_an_unknown_experiment_is_a_clear_error():
    with pytest.raises(ValueError, match="no experiment file"):
        load_experiment("no-such-experiment")
    with pytest.raises(TypeError, match="name"):
        load_experiment(3)
    assert (data_dir() / "experiments" / f"{NAME}.yaml").is_file()
