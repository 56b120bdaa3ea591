"""The cost model and the quota check: a plan's bill recomputed by hand from its inputs, the first quota a growing
sale meets, and overrides refused with one line when they name nothing or are not numbers."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest

from ops import cost
from stackconfig.files import ROOT


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.capacity", *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


def capacity_json(*args: str) -> dict[str, Any]:
    done = run_cli("--json", *args)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_the_report_sale_costs_what_its_inputs_say() -> None:
    """60 orders/s for 60 s at 3 s payments: 10 worker tasks (200 workers of 20), 2 receiver tasks (60/s x 4.85 ms
    of CPU at most 80 % of 0.25 vCPU: 1.46 -> 2), 2 sync tasks; no backlog, so each task is billed its minimum 60 s."""
    p = {f.key: f.value for f in cost.PRICES}
    tasks, seconds, orders = 10 + 2 + 2, 60, 60 * 60
    idle_polls = 10 * 2 * seconds / 20  # 2 receive loops per 20-worker task, one 20 s long poll each
    expected = (
        tasks * seconds * (0.25 * p["fargate_vcpu_second"] + 0.5 * p["fargate_gb_second"])
        + orders * p["sns_publish"]
        + orders * p["sns_sqs_delivery"]
        + (orders * 2 / 10 + idle_polls) * p["sqs_request"]
        + orders * 2 * p["dynamodb_write_unit"]
        + orders * 1 * p["dynamodb_read_unit"]
    )
    data = capacity_json()
    assert data["cost"]["worker_tasks"] == 10 and data["cost"]["receiver_tasks"] == 2
    assert data["cost"]["billed_seconds_per_task"] == 60
    assert data["cost"]["cost"]["total_usd"] == pytest.approx(expected, rel=1e-12)
    assert data["cost"]["cost"]["usd_per_1000_orders"] == pytest.approx(1000 * expected / orders, rel=1e-12)


def test_prices_are_overridable_and_a_slow_drain_is_billed() -> None:
    """One worker of 3 s payments at 1 order/s for 100 s: 33.3 orders paid during the sale, 66.7 waiting, drained in
    200 s; every price 0 but the vCPU-second at 1: the bill is the task-seconds x 0.25 vCPU."""
    overrides = [f"--price={f.key}=0" for f in cost.PRICES if f.key != "fargate_minimum_seconds"]
    data = capacity_json(
        "--rate",
        "1",
        "--sale-seconds",
        "100",
        "--levels",
        "1",
        "--other-tasks",
        "0",
        *overrides,
        "--price",
        "fargate_vcpu_second=1",
    )
    [level_cost] = data["level_costs_usd"]
    drain = (100 - 100 / 3) / (1 / 3)
    assert level_cost == pytest.approx((1 + 1) * math.ceil(100 + drain) * 0.25)  # 1 worker task + 1 receiver task


def test_the_first_quota_a_growing_sale_meets_is_named_with_its_rate() -> None:
    sizing = cost.Sizing(payment_seconds=3, workers_per_task=20, safety_margin=0.11, other_tasks=2)
    checks = cost.check_quotas(60, sizing, cost.quotas())
    # 6 vCPUs = 24 tasks of 0.25: past 380 workers (19 tasks) the 20th worker task, 3 receivers and 2 others make 25.
    assert checks[0].key == "fargate_vcpu"
    assert checks[0].hit_at_rate == pytest.approx(380 / (3 * 1.11), rel=1e-5)
    assert checks[0].demand == pytest.approx(0.25 * (10 + 2 + 2))
    writes = next(c for c in checks if c.key == "dynamodb_new_table_writes")
    assert writes.hit_at_rate == pytest.approx(4000 / 2, rel=1e-5)  # two write units per order
    raised = cost.check_quotas(60, sizing, cost.quotas({"fargate_vcpu": 4000, "fargate_launch_burst": 10_000}))
    assert raised[0].key == "dynamodb_new_table_writes"


def test_the_cli_names_the_first_quota_and_every_source() -> None:
    done = run_cli("--rate", "6000")  # a 100x sale
    assert done.returncode == 0, done.stderr
    assert (
        "First quota the sale meets: fargate_vcpu" in done.stdout and "(already exceeded at this rate)" in done.stdout
    )
    assert all(f.source in done.stdout for f in cost.QUOTAS)
    # 999 worker tasks: 287 vCPUs of 6, 1,145 launches at once of 100, 12,000 write units/s of a new table's 4,000.
    assert (
        "to raise or plan for before the day: fargate_vcpu (needs 287, default 6); fargate_launch_burst (needs "
        "1,145, default 100); dynamodb_new_table_writes (needs 12,000, default 4,000)"
    ) in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--price", "fargate_cpu=1"), "unknown price fargate_cpu (known: fargate_vcpu_second, "),
        (("--quota", "fargate_vcpu=lots"), "--quota takes KEY=VALUE with a number, got 'fargate_vcpu=lots'"),
        (("--quota", "fargate_vcpu=-1"), "quota fargate_vcpu must be a number of at least 0"),
    ],
)
def test_bad_overrides_are_refused_with_one_line(args: tuple[str, ...], message: str) -> None:
    done = run_cli(*args)
    assert done.returncode == 1
    assert done.stderr.startswith(f"python -m ops.capacity: error: {message}") and "Traceback" not in done.stderr


def test_a_short_sale_is_billed_fargates_minute() -> None:
    data = capacity_json("--sale-seconds", "10")
    assert data["cost"]["billed_seconds_per_task"] == 60  # not 10: Fargate's one-minute minimum per task
