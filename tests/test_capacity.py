"""The capacity planner reproduces the lab report's numbers (Part V, table 5.7) and refuses nonsense inputs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from planning.capacity import PlanInputs, level, plan
from stackconfig.files import ROOT


def test_report_minimum_and_recommended_workers() -> None:
    result = plan(PlanInputs())
    assert result.busy_workers == pytest.approx(180)
    assert result.minimum_workers == 181
    assert result.recommended_workers == 200
    assert result.recommended_tasks == 10  # 20 workers per task, the stack's default workerCount


@pytest.mark.parametrize(
    ("workers", "report_seconds", "tolerance"),
    [(1, 2.99 * 3600, 0.01), (5, 35.2 * 60, 0.01), (20, 8.0 * 60, 0.01), (100, 48, 0.01)],
)
def test_report_drain_times(workers: int, report_seconds: float, tolerance: float) -> None:
    row = level(PlanInputs(), workers)
    assert row.drain_seconds == pytest.approx(report_seconds, rel=tolerance)


def test_enough_workers_leave_no_backlog() -> None:
    row = level(PlanInputs(), 200)
    assert row.queue_peak == 0
    assert row.drain_seconds == 0
    assert row.utilisation == pytest.approx(0.9)


def test_queue_peak_is_arrivals_minus_processed() -> None:
    row = level(PlanInputs(), 1)
    assert row.arrivals == pytest.approx(3600)
    assert row.processed_during_sale == pytest.approx(20)
    assert row.queue_peak == pytest.approx(3580)


def test_fractional_load_rounds_up() -> None:
    result = plan(PlanInputs(arrival_rate=10, payment_seconds=0.25, safety_margin=0.5, workers_per_task=2))
    assert result.minimum_workers == 3  # 2.5 busy
    assert result.recommended_workers == 4  # 3.75
    assert result.recommended_tasks == 2


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.capacity", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def test_cli_prints_plan_and_report_notes() -> None:
    done = run_cli()
    assert done.returncode == 0, done.stderr
    assert "Minimum:      181 workers" in done.stdout
    assert "Recommended:  200 workers" in done.stdout
    assert "2.98 h" in done.stdout and "35.0 min" in done.stdout and "48 s" in done.stdout
    assert "Notes on the lab report" in done.stdout


def test_cli_json_with_own_inputs_has_no_report_notes() -> None:
    done = run_cli("--rate", "100", "--payment-seconds", "0.5", "--levels", "10", "60", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["minimum_workers"] == 51
    assert [row["queue_peak"] for row in data["levels"]] == pytest.approx([4800, 0])
    assert data["notes"] == []


@pytest.mark.parametrize("rate", ["0", "inf", "nan"])
def test_cli_refuses_a_rate_that_is_not_a_positive_number(rate: str) -> None:
    done = run_cli("--rate", rate)
    assert done.returncode == 1
    assert (
        done.stderr.strip() == "python -m ops.capacity: error: rate, payment seconds and sale seconds must be positive"
    )
    assert "Traceback" not in done.stderr
