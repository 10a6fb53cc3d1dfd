"""The retrying-queue benchmark against ciw runs and checks agreement (never timed here)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import sim_bench  # noqa: E402


@pytest.mark.skipif(importlib.util.find_spec("ciw") is None, reason="ciw (bench extra) not installed")
def test_retrying_bench_agrees_with_ciw_and_reports_every_row():
    rows = sim_bench.bench_retrying(customers=3000, replications=4, log=lambda line: None)
    names = [r.name for r in rows]
    assert names[0].startswith("ciw") and any("escape" in n for n in names)
    assert rows[0].p_wait.overlaps(rows[1].p_wait)
    assert all(r.timing.per_second > 0 for r in rows)
