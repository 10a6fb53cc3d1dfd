"""The validation tables' simulations on Dask workers: the same frames as run here, started or run to the end."""

import pandas as pd
import pytest

from reliability import Backoff, Cluster
from reliability.cluster import run_batches, start_batches, startable
from reliability.validation.defences import defence_table
from reliability.validation.escape import escape_comparison, outage_recovery
from reliability.validation.metastability import simulated_metastability
from reliability.validation.table import validation_table
from reliability.validation.tipping import tipping_surface

BACKOFF = Backoff(0.5, 10.0, "full")

# small versions of what notebooks 02 and 05 simulate (each a few tenths of a second here)
TABLES = {
    "metastability": lambda cluster: simulated_metastability(10, 1.0, 3.0, [0.3, 0.9], [1, 3], backoff=BACKOFF,
                                                             horizon=120.0, seed=4, cluster=cluster),
    "escape": lambda cluster: escape_comparison(20, 1.0, 3.0, 3, [0.83, 0.86], backoff=BACKOFF, replications=3,
                                                horizon=600.0, seed=4, cluster=cluster),
    "outage": lambda cluster: outage_recovery(20, 1.0, 3.0, 3, [0.1], [60.0, 120.0], backoff=BACKOFF, seed=4,
                                              cluster=cluster),
    "defences": lambda cluster: defence_table(20, 1.0, 3.0, 3, replications=1, horizon=120.0, warmup=60.0, seed=4,
                                              defences=("none", "bounded queue", "CoDel"), cluster=cluster),
    "tipping": lambda cluster: tipping_surface(20, 1.0, 3.0, 3, 0.45, [3.0], [5.0, 40.0], settle=120.0, seed=4,
                                               cluster=cluster),
    "table": lambda cluster: validation_table("smoke", seed=4, models=["retrying_queue", "erlang_b"],
                                              cluster=cluster),
}


@pytest.fixture(scope="module")
def forked():
    with Cluster(workers=2, start_method="fork") as cluster:
        yield cluster


@pytest.mark.parametrize("name", sorted(TABLES))
def test_a_table_is_the_same_on_two_forked_workers_as_here(name, forked):
    assert forked.workers == 2
    pd.testing.assert_frame_equal(TABLES[name](None), TABLES[name](forked), check_exact=True)


def test_started_functions_return_the_frame_they_return_when_run_to_the_end(forked):
    options = dict(backoff=BACKOFF, horizon=120.0, seed=4)
    finish = simulated_metastability.start(10, 1.0, 3.0, [0.3, 0.9], [1, 3], cluster=forked, **options)
    frame = finish()
    assert finish() is frame  # asked twice, the same result
    pd.testing.assert_frame_equal(frame, simulated_metastability(10, 1.0, 3.0, [0.3, 0.9], [1, 3], **options))
    # bad arguments are refused when the function starts, not when its result is asked for
    with pytest.raises(ValueError, match="horizon"):
        simulated_metastability.start(10, 1.0, 3.0, [0.3], [1], horizon=-1.0, cluster=forked)


def test_a_submitted_call_and_started_batches_come_back_in_order(forked):
    assert forked.submit(pow, 2, 10)() == 1024
    assert start_batches(forked, pow, [2, 3, 4], [3, 2, 1])() == [8, 9, 4]
    assert run_batches(forked, pow, [2, 3], [10, 2]) == run_batches(None, pow, [2, 3], [10, 2]) == [1024, 9]


def test_a_function_that_yields_twice_is_named():
    @startable
    def twice(cluster=None):
        yield
        yield

    with pytest.raises(RuntimeError, match="twice must yield once"):
        twice()


@pytest.mark.parametrize("call", [
    lambda: simulated_metastability(10, 1.0, 3.0, [0.3], [1], horizon=60.0, cluster="local"),
    lambda: escape_comparison(20, 1.0, 3.0, 3, [0.83], replications=1, horizon=60.0, cluster=2),
    lambda: outage_recovery(20, 1.0, 3.0, 3, [0.1], [60.0], cluster=object()),
    lambda: defence_table(20, 1.0, 3.0, 3, horizon=60.0, warmup=30.0, defences=("none",), cluster="tcp://x:1"),
    lambda: tipping_surface(20, 1.0, 3.0, 3, 0.45, [3.0], [5.0], cluster=[]),
    lambda: validation_table("smoke", models=["erlang_b"], cluster=1.5),
    lambda: run_batches("here", pow, [2], [3]),
])
def test_a_cluster_that_is_not_one_is_refused_by_name(call):
    with pytest.raises(TypeError, match="cluster must be a reliability.Cluster or None"):
        call()


@pytest.mark.parametrize("method", ["forkserver", "", None, 1])
def test_an_unknown_start_method_is_refused(method):
    with pytest.raises(ValueError, match="start_method must be one of"):
        Cluster(workers=0, start_method=method)
