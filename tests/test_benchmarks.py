"""`python -m benchmarks`: the quick run produces every figure, sane; the table judges goals from the figures."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest

from benchmarks.__main__ import QUICK, WORKER_LEVELS
from benchmarks.table import render, rows
from tests.conftest import ROOT

LOAD_FIELDS = ("offered_rate", "accepted_rate", "accepted", "requests", "cpu_ms_per_accepted", "p50_ms", "p95_ms",
               "p99_ms", "shed_share", "failures", "alive")


def _load(**overrides: Any) -> dict[str, Any]:
    return {"offered_rate": 60.0, "accepted_rate": 60.0, "accepted": 600, "requests": 600, "cpu_ms_per_accepted": 2.0,
            "p50_ms": 5.0, "p95_ms": 9.0, "p99_ms": 12.0, "shed_share": 0.0, "failures": 0, "alive": True} | overrides


def _result(**worker_overrides: Any) -> dict[str, Any]:
    levels = [{"workers": n, "payment_seconds": 3.0, "orders": 2 * n, "drain_seconds": 6.1, "efficiency": 0.98,
               "cpu_ms_per_order": 1.5, "peak_rss_mb": 60.0, "emulator_cpu_share": 0.3} | worker_overrides
              for n in WORKER_LEVELS]
    return {"worker": levels, "backend": {"orders": 1000, "seconds": 3.0, "threads": 8, "rate": 333.0},
            "receiver_to_backend": 0.6,
            "receiver": {"report_rate": _load(), "capacity": _load(offered_rate=666.0, accepted_rate=200.0),
                         "overload": _load(offered_rate=600.0, accepted_rate=190.0, shed_share=0.6, p99_ms=120.0),
                         "retry_after": True}}


def test_the_table_marks_each_missed_goal_and_only_those() -> None:
    assert all(row.met in (True, None) for row in rows(_result()))
    slow = {row.figure for row in rows(_result(cpu_ms_per_order=2.5, efficiency=0.9)) if row.met is False}
    assert slow == {f"worker {n}: CPU per processed order" for n in WORKER_LEVELS} | {
        "worker 200: processed rate / (workers / payment time)", "worker 1000: processed rate / (workers / payment time)"}


def test_a_receiver_that_crashes_or_sheds_without_retry_after_fails_the_overload_rows() -> None:
    result = _result()
    result["receiver"]["overload"] = _load(offered_rate=600.0, accepted_rate=190.0, shed_share=0.6, alive=False)
    result["receiver"]["retry_after"] = False
    missed = {row.figure for row in rows(result) if row.met is False}
    assert missed == {"overload: shed with 503 (+ Retry-After)", "overload: timeouts, 500s, crash"}
    assert "DEAD" in render(rows(result)) and "MISSING" in render(rows(result))


def _sane_load(load: dict[str, Any]) -> None:
    assert set(LOAD_FIELDS) <= set(load)
    assert load["requests"] > 0 and 0 < load["accepted"] <= load["requests"]
    assert 0 < load["p50_ms"] <= load["p95_ms"] <= load["p99_ms"] < 60_000
    assert 0 < load["cpu_ms_per_accepted"] < 1_000
    assert 0 <= load["shed_share"] <= 1 and load["failures"] >= 0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_quick_run_reports_every_figure(tmp_path: Any) -> None:
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--json", "--logs", str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert result["quick"] is True and result["machine"]["cpus"] >= 1

    assert result["backend"]["rate"] > 0 and result["backend"]["orders"] > 0
    assert [level["workers"] for level in result["worker"]] == list(WORKER_LEVELS)
    for level in result["worker"]:
        assert level["orders"] == QUICK.worker_rounds * level["workers"]
        # Each slot pays `rounds` times in a row, so the drain cannot beat the ideal (log stamps are to the ms).
        assert level["drain_seconds"] >= QUICK.worker_rounds * QUICK.payment_seconds - 0.01
        assert 0 < level["efficiency"] <= 1.01
        assert 0 < level["cpu_ms_per_order"] < 1_000
        assert 20 < level["peak_rss_mb"] < 2_000
        assert 0 <= level["emulator_cpu_share"] <= 2  # of one core; ministack is one process

    receiver = result["receiver"]
    for name in ("report_rate", "capacity", "overload"):
        _sane_load(receiver[name])
    assert receiver["report_rate"]["offered_rate"] == 60
    assert math.isclose(receiver["overload"]["offered_rate"], 3 * receiver["capacity"]["accepted_rate"], rel_tol=0.01)
    assert receiver["overload"]["alive"] is True and isinstance(receiver["retry_after"], bool)
    assert result["receiver_to_backend"] > 0

    table = result["table"]
    assert len(table) == len(rows(result))
    assert all(row["ours"] and row["met"] in (True, False, None) for row in table)
    assert any(row["report"] == "3.6 ms" for row in table)  # the report's Go worker, beside ours
