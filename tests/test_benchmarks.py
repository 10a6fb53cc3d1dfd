"""The benchmark code runs end to end on its tiny configuration, and its agreement checks catch wrong answers.

No timing is asserted: only that the page is written with every section, that the verdicts
are computed, and that a wrong model (an answer off by 1e-8, a sizing one server too many, a
simulator of another queue) stops the benchmark with AgreementError before anything is timed.
The peers (pyworkforce, ciw, simpy: the ``bench`` extra) are optional: without them the page
says "not installed" and the tests that need them are skipped.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

import reliability  # noqa: E402
from benchmarks import erlang_bench, inference_bench, peers, run, sim_bench  # noqa: E402
from benchmarks.common import QUICK, AgreementError, markdown_table  # noqa: E402

HAVE_PYWORKFORCE = importlib.util.find_spec("pyworkforce") is not None
HAVE_SIM_PEERS = importlib.util.find_spec("ciw") is not None or importlib.util.find_spec("simpy") is not None


def _quiet(_line: str) -> None:
    pass


@pytest.fixture(scope="module")
def quick_page(tmp_path_factory) -> str:
    output = tmp_path_factory.mktemp("bench") / "results.md"
    assert run.main(["--quick", "--output", str(output)]) == 0
    return output.read_text(encoding="utf-8")


def test_quick_run_writes_every_section(quick_page):
    for heading in ("## Targets", "## Erlang B", "## Erlang C", "## Fixed cost per call", "## Erlang A", "## Inverse sizing",
                    "## Simulator (M/M/c)", "## Whole report"):
        assert heading in quick_page
    assert "Machine:" in quick_page and "numpy" in quick_page and "OPENBLAS_CORETYPE" in quick_page
    targets = quick_page.split("## Targets", 1)[1].split("## Erlang B", 1)[0]
    verdicts = [line.rsplit("|", 2)[-2].strip() for line in targets.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(verdicts) == 13
    assert set(verdicts) <= {"met", "**missed**", "not measured"}
    # reliability's exactness is measured on every run (and must hold, or the run would have stopped).
    assert "| Erlang B / C | exact:" in targets and targets.split("| Erlang B / C | exact:", 1)[1].split("\n")[0].endswith("| met |")


@pytest.mark.skipif(not HAVE_PYWORKFORCE, reason="pyworkforce (bench extra) not installed")
def test_quick_page_reports_where_a_peer_goes_wrong(quick_page):
    # pyworkforce's Erlang C leaves [0, 1] when load > servers, and refuses fractional servers.
    erlang_c_section = quick_page.split("## Erlang C", 1)[1].split("## Erlang A", 1)[0]
    assert "outside [0, 1]" in erlang_c_section
    assert "refuses fractional servers" in erlang_c_section
    # the scipy floor gives 0/0 in deep overload
    erlang_b_section = quick_page.split("## Erlang B", 1)[1].split("## Erlang C", 1)[0]
    assert "NaN" in erlang_b_section


def test_erlang_check_catches_a_wrong_erlang_b():
    wrong = lambda c, a: reliability.erlang_b(c, a) * (1.0 + 1e-8)  # noqa: E731
    with pytest.raises(AgreementError, match="disagrees with mpmath"):
        erlang_bench.bench_erlang_bc(QUICK, erlang_b=wrong, log=_quiet)


def test_erlang_check_catches_a_wrong_erlang_c():
    # Erlang B passed off as Erlang C: right at the edges, wrong in between.
    with pytest.raises(AgreementError, match="Erlang C"):
        erlang_bench.bench_erlang_bc(QUICK, erlang_c=reliability.erlang_b, log=_quiet)


def test_erlang_check_catches_a_runtime_warning():
    def noisy(c, a):
        np.log(np.zeros(1))  # divide-by-zero RuntimeWarning, result unused
        return reliability.erlang_b(c, a)

    with pytest.raises(AgreementError, match="RuntimeWarning"):
        erlang_bench.bench_erlang_bc(QUICK, erlang_b=noisy, log=_quiet)


def test_erlang_a_check_catches_a_wrong_answer():
    def wrong(*args):
        r = reliability.erlang_a(*args)
        return type(r)(**{**r.__dict__, "p_abandon": np.asarray(r.p_abandon) * (1 + 1e-7)})

    with pytest.raises(AgreementError, match="p_abandon"):
        erlang_bench.bench_erlang_a(QUICK, erlang_a=wrong, log=_quiet)


def test_sizing_check_catches_one_server_too_many_or_too_few():
    too_many = lambda load, target: reliability.servers_for_blocking(load, target) + 1  # noqa: E731
    with pytest.raises(AgreementError, match="not the least"):
        erlang_bench.bench_sizing(QUICK, servers_for_blocking=too_many, log=_quiet)
    too_few = lambda load, target, wait_time=0.0: reliability.servers_for_wait(load, target, wait_time) - 1  # noqa: E731
    with pytest.raises(AgreementError, match="misses the target"):
        erlang_bench.bench_sizing(QUICK, servers_for_wait=too_few, log=_quiet)


@pytest.mark.skipif(not HAVE_SIM_PEERS, reason="ciw and simpy (bench extra) not installed")
def test_simulator_check_catches_another_queue():
    def one_server_short(servers, *args, **kwargs):
        return sim_bench.simulate_mmc(servers - 1, *args, **kwargs)

    with pytest.raises(AgreementError, match="do not overlap"):
        sim_bench.bench_simulators(QUICK, simulate=one_server_short, log=_quiet)


def test_mpmath_references_are_right_where_known():
    # B(4, 2) = 2/21 exactly; C(2, 1) = 1/3; a reference below double range counts only a tiny value as right.
    assert abs(float(peers.mp_erlang_b(4, 2.0)) - 2 / 21) < 1e-16
    assert abs(float(peers.mp_erlang_c(2, 1.0)) - 1 / 3) < 1e-16
    assert peers.relative_error(0.0, peers.mp_erlang_b(1e6, 2e5)) == 0.0
    assert peers.relative_error(1e-10, peers.mp_erlang_b(1e6, 2e5)) == float("inf")
    # Erlang A's birth-death chain tends to Erlang C as patience grows.
    a = peers.mp_erlang_a(5, 4.0, 1.0, 1e-9)
    assert abs(a["p_wait"] - reliability.erlang_c(5, 4.0)) < 1e-6
    # the peers themselves, on a textbook value
    assert abs(peers.recursion_erlang_b(4, 2.0) - 2 / 21) < 1e-15
    assert peers.recursion_servers_for_blocking(5.0, 0.02) == reliability.servers_for_blocking(5.0, 0.02)


def test_markdown_table_escapes_pipes():
    assert markdown_table(["a|b"], [["x|y"]]).splitlines() == ["| a\\|b |", "| --- |", "| x\\|y |"]


def test_quick_page_has_the_inference_section(quick_page):
    section = quick_page.split(inference_bench.HEADING, 1)[1]
    for heading in ("### One model call against a batch", "### Toy problems", "### Incident inference"):
        assert heading in section
    assert "| normal mean | reliability abc_smc |" in section and "| model choice | reliability abc_smc |" in section


def test_inference_check_catches_a_biased_sampler():
    def biased(*args):
        row, schedule = inference_bench.abc_smc_toy(*args)
        return type(row)(**{**row.__dict__, "mean": row.mean + 1.0}), schedule

    with pytest.raises(AgreementError, match="posterior mean"):
        inference_bench.bench_toys(inference_bench.QUICK, _quiet, sampler=biased)


def test_inference_sections_replace_only_their_own():
    page = "# t\n\n## Simulator\n\nold\n\n" + inference_bench.HEADING + "\n\nstale\n\n## Whole report\n\nkept\n"
    new = inference_bench.replace_section(page, inference_bench.HEADING + "\n\nfresh\n")
    assert "stale" not in new and "fresh" in new and new.endswith("## Whole report\n\nkept\n") and "old" in new
