"""The validation table: its rows, that every check holds at smoke size, and that a check can fail."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pandas as pd
import pytest

from reliability import validation
from reliability.retry import FixedRetries
from reliability.simulate import simulate_retrying_queue
from reliability.validation import MODELS, SIZES, ValidationSize, recovery_time, validation_table
from reliability.validation import references
from reliability.validation.table import _mc_layer

SEED = 20250109

EXPECTED_ROWS = {
    # model: number of checks (each a row)
    "erlang_b": 2,
    "erlang_c": 2,
    "wait_sf": 3,
    "mean_wait": 2,
    "erlang_a": 3,
    "mmck": 2,
    "engset": 1,
    "expected_attempts": 3,
    "layered_amplification": 1,
    "retrying_queue": 6,
}
COLUMNS = ["model", "quantity", "case", "parameters", "analytic", "simulated", "ci_low", "ci_high", "mpmath",
           "mpmath_relative_error", "ci_level", "reference", "verdict", "note"]


@pytest.fixture(scope="module")
def smoke_table() -> pd.DataFrame:
    return validation_table("smoke", seed=SEED)


def test_the_table_has_one_row_per_check_of_every_model(smoke_table):
    assert list(smoke_table.columns) == COLUMNS
    assert smoke_table["model"].value_counts().to_dict() == EXPECTED_ROWS
    assert list(dict.fromkeys(smoke_table["model"])) == list(MODELS)  # rows grouped in MODELS order
    erlang_a_rows = smoke_table[smoke_table.model == "erlang_a"]
    assert set(erlang_a_rows.quantity) == {"probability of waiting", "probability of abandoning", "mean wait"}


def test_every_check_holds_at_smoke_size_with_a_fixed_seed(smoke_table):
    failed = smoke_table[smoke_table.verdict != "holds"]
    assert failed.empty, failed[["model", "quantity", "analytic", "simulated", "ci_low", "ci_high", "mpmath"]]
    assert set(smoke_table.verdict) == {"holds"}


def test_exact_models_carry_an_mpmath_value_and_the_mean_field_model_does_not(smoke_table):
    exact = smoke_table[smoke_table.model != "retrying_queue"]
    assert exact["mpmath"].notna().all()
    assert (exact["mpmath_relative_error"] < 1e-10).all()
    assert smoke_table.loc[smoke_table.model == "retrying_queue", "mpmath"].isna().all()


def test_engset_is_checked_against_the_finite_source_simulation(smoke_table):
    (row,) = smoke_table[smoke_table.model == "engset"].itertuples()
    assert row.ci_low <= row.simulated <= row.ci_high
    assert row.ci_low <= row.analytic <= row.ci_high
    assert row.reference == "simulation (Engset) + mpmath"


def test_intervals_bracket_the_estimates_and_use_the_bonferroni_level(smoke_table):
    simulated = smoke_table[smoke_table.simulated.notna()]
    assert (simulated.ci_low <= simulated.simulated).all() and (simulated.simulated <= simulated.ci_high).all()
    levels = simulated.ci_level.unique()
    assert len(levels) == 1
    assert levels[0] == pytest.approx(1 - 0.05 / len(simulated))


def test_the_retrying_queue_rows_see_both_states_and_both_thresholds(smoke_table):
    rows = smoke_table[smoke_table.model == "retrying_queue"].reset_index(drop=True)
    healthy, collapsed = rows.loc[0], rows.loc[2]
    assert healthy.analytic < 0.1 and healthy.simulated < 0.1  # started healthy, stayed healthy
    assert collapsed.analytic == 1.0 and collapsed.simulated == 1.0  # started collapsed, stayed collapsed
    assert rows.loc[3, "analytic"] == 4.0  # every one of the 4 attempts is sent when collapsed
    assert rows.loc[4, "simulated"] < 0.1  # below the recovery threshold: recovers
    assert rows.loc[5, "simulated"] == 1.0  # above the onset threshold: collapses


def test_the_same_seed_gives_the_same_table():
    first = validation_table("smoke", seed=5, models=["erlang_b", "expected_attempts"])
    second = validation_table("smoke", seed=5, models=["erlang_b", "expected_attempts"])
    pd.testing.assert_frame_equal(first, second)
    other = validation_table("smoke", seed=6, models=["erlang_b", "expected_attempts"])
    assert not np.allclose(first.simulated, other.simulated)


@pytest.mark.parametrize("model, factor", [
    ("erlang_b", 1.2),            # caught by the simulation and by mpmath
    ("erlang_a", 0.8),
    ("mmck", 1.000001),           # far inside any interval: caught by mpmath alone
    ("retrying_queue", 1.5),      # no mpmath: caught by the simulation alone
])
def test_a_deliberately_wrong_analytic_value_fails(model, factor, smoke_table):
    table = validation_table("smoke", seed=SEED, models=[model], analytic_factor={model: factor})
    assert (table.verdict == "fails").any(), table
    if model != "retrying_queue":
        assert (table.verdict == "fails").all()
    # the same simulations as in the whole table (each check has its own seed stream)...
    right = smoke_table[smoke_table.model == model].reset_index(drop=True)
    pd.testing.assert_series_equal(table.simulated, right.simulated)
    # ...where the right analytic values hold
    assert (right.verdict == "holds").all()


def test_a_wrong_value_outside_the_interval_fails_even_without_mpmath():
    # 20 % too high: outside the simulated interval of Erlang B at smoke size (mpmath disabled in effect)
    table = validation_table("smoke", seed=SEED, models=["erlang_b"], analytic_factor={"erlang_b": 1.2},
                             mpmath_rtol=1.0)
    assert (table.analytic > table.ci_high).all()
    assert (table.verdict == "fails").all()


def test_bad_arguments_raise_value_errors_naming_them():
    with pytest.raises(ValueError, match="size must be one of"):
        validation_table("huge")
    with pytest.raises(ValueError, match="seed must be"):
        validation_table("smoke", seed=-1)
    with pytest.raises(ValueError, match="level must be in"):
        validation_table("smoke", level=1.0)
    with pytest.raises(ValueError, match="models must be"):
        validation_table("smoke", models=["erlang_z"])
    with pytest.raises(ValueError, match="analytic_factor"):
        validation_table("smoke", models=["engset"], analytic_factor={"engset": math.nan})
    with pytest.raises(ValueError, match="ValidationSize.customers"):
        ValidationSize(1, 10, 10, 10, 3, 100.0, 50.0, 10.0)
    with pytest.raises(ValueError, match="retry_warmup"):
        ValidationSize(100, 10, 10, 10, 3, 100.0, 50.0, 100.0)


def test_sizes_are_ordered():
    smoke, full = SIZES["smoke"], SIZES["full"]
    assert smoke.customers * smoke.replications < full.customers * full.replications
    assert smoke.retry_replications < full.retry_replications


def test_monte_carlo_of_nested_layers_is_independent_of_the_product_formula():
    rng = np.random.default_rng(1)
    cost, ok = _mc_layer(1.0, (3, 3, 3), 50, rng)
    assert (cost == 64).all() and not ok.any()  # a dead backend: 4 x 4 x 4 attempts
    cost, ok = _mc_layer(0.0, (3, 3, 3), 50, rng)
    assert (cost == 1).all() and ok.all()
    cost, _ = _mc_layer(0.5, (2,), 200_000, rng)
    assert cost.mean() == pytest.approx(1.75, abs=0.01)  # 1 + 1/2 + 1/4


def test_recovery_time_reads_a_trace():
    s = pd.DataFrame({"time": [0.0, 10.0, 20.0, 30.0, 40.0], "failure_fraction": [0.05, 1.0, 0.6, 0.1, 0.04]})
    assert recovery_time(s) == 30.0
    assert recovery_time(s, after=20.0) == 10.0
    assert recovery_time(s, after=30.0) == 0.0
    assert recovery_time(s, threshold=0.7) == 20.0
    assert recovery_time(s.iloc[:3]) == math.inf
    with pytest.raises(ValueError, match="threshold"):
        recovery_time(s, threshold=1.5)
    with pytest.raises(ValueError, match="after"):
        recovery_time(s, after=100.0)


def test_recovery_time_of_a_simulated_collapse_that_drains():
    # load 0.2 of capacity with 3 retries: below the recovery threshold 0.25, the backlog drains
    run = simulate_retrying_queue(10, 1.0, 2.0, timeout=3.0, policy=FixedRetries(3), initial_backlog=300,
                                  horizon=600.0, interval=10.0, seed=2)
    t = recovery_time(run.series)
    assert 0.0 < t < 600.0
    assert run.window(t, 600.0).failure_fraction < 0.2


def test_simulated_metastability_marks_the_bistable_point():
    frame = validation.simulated_metastability(20, 1.0, 3.0, [0.1, 0.6], max_retries=[3], horizon=300.0, seed=4)
    assert frame.verdict.tolist() == ["healthy", "metastable"]
    assert frame.simulated_verdict.tolist() == ["healthy", "metastable"]
    assert frame.agrees.all()


def test_simulated_metastability_rejects_bad_arguments():
    with pytest.raises(ValueError, match="servers must be"):
        validation.simulated_metastability(0, 1.0, 3.0, [0.5])
    with pytest.raises(ValueError, match="threshold must be"):
        validation.simulated_metastability(10, 1.0, 3.0, [0.5], threshold=0.0)
    with pytest.raises(ValueError, match="seed must be"):
        validation.simulated_metastability(10, 1.0, 3.0, [0.5], seed=-2)
    with pytest.raises(ValueError, match="load_shares"):
        validation.simulated_metastability(10, 1.0, 3.0, [-0.5])


# --- the mpmath references ------------------------------------------------------------------------------------

def test_references_give_textbook_values():
    assert float(references.erlang_b(4, 2.0)) == 2 / 21
    assert float(references.erlang_b(0, 3.0)) == 1.0
    assert round(float(references.erlang_b(10, 5.0)), 12) == 0.018384570337
    assert abs(float(references.erlang_c(2, 1.0)) - 1 / 3) < 1e-16
    assert references.erlang_c(2, 2.0) == 1 and references.wait_sf(2, 3.0, 1.0) == 1
    assert references.mean_wait(2, 2.0) == mpmath.inf
    erlang_a = references.erlang_a(14, 10 / 3, 1 / 3, 1 / 5)
    assert (round(float(erlang_a.p_wait), 9), round(float(erlang_a.p_abandon), 10)) == (0.145260114, 0.0139837441)
    assert abs(float(references.mmck(5, 12, 2.0)) - 5.869125e-5) < 5e-12
    assert float(references.layered_amplification(0.5, [3, 3, 3])) == 2.0


@pytest.mark.parametrize("c, a", [(1, 0.5), (3, 2.9), (10, 8.0), (30, 25.0), (50, 80.0)])
def test_reference_erlang_b_and_c_equal_their_finite_sums(c, a):
    with mpmath.workdps(50):
        terms = [mpmath.mpf(a) ** k / mpmath.factorial(k) for k in range(c + 1)]
        b = terms[-1] / mpmath.fsum(terms)
        assert abs(references.erlang_b(c, a) - b) < mpmath.mpf(10) ** -45 * b
        if a < c:
            top = terms[-1] * c / (c - mpmath.mpf(a))
            erlang_c = top / (mpmath.fsum(terms[:-1]) + top)
            assert abs(references.erlang_c(c, a) - erlang_c) < mpmath.mpf(10) ** -45 * erlang_c


@pytest.mark.parametrize("c, lam, theta", [(1, 0.5, 1.0), (10, 11.0, 0.5), (5, 8.0, 0.1)])
def test_reference_erlang_a_equals_the_summed_birth_death_chain(c, lam, theta):
    with mpmath.workdps(50):
        terms, n = [mpmath.mpf(1)], 0
        while n <= c or terms[-1] > mpmath.mpf(10) ** -70 * terms[c]:
            n += 1
            terms.append(terms[-1] * lam / (min(n, c) + max(n - c, 0) * mpmath.mpf(theta)))
        total = mpmath.fsum(terms)
        queue = mpmath.fsum((k - c) * terms[k] for k in range(c + 1, len(terms))) / total
        reference = references.erlang_a(c, lam, 1.0, theta)
        for value, chain in [(reference.p_wait, mpmath.fsum(terms[c:]) / total),
                             (reference.mean_wait, queue / lam), (reference.p_abandon, theta * queue / lam)]:
            assert abs(value - chain) < mpmath.mpf(10) ** -40 * chain


def test_references_keep_the_precision_of_mpmath_arguments():
    # inside findroot the load is an mpf: it must not be rounded to a double on the way in
    with mpmath.workdps(50):
        load = mpmath.mpf(2) + mpmath.mpf(10) ** -30
        assert references.erlang_b(4, load) != references.erlang_b(4, 2.0)
        root = mpmath.findroot(lambda x: references.erlang_b(4, x) - mpmath.mpf(2) / 21, mpmath.mpf("2.1"))
        assert abs(root - 2) < mpmath.mpf(10) ** -40


def test_reference_response_time_of_m_m_1_is_exponential():
    # M/M/1: W + S is exponential with rate mu - lambda; theta = mu takes the limiting branch
    assert abs(float(references.response_time_sf(1, 0.5, 2.0)) - math.exp(-1.0)) < 1e-15
    assert abs(float(references.response_time_sf(2, 1.0, 3.0)) - float(references.response_time_sf(2, 1.0 + 1e-12, 3.0))) < 1e-10
