"""The local flash-sale lab: its measurements (pure parts), its alarm periods, and one whole `--quick` run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest

from app import alarm_catalogue, aws, contract
from bench.lab import run as lab
from bench.lab.analysis import LevelWindow, measure_level
from bench.lab.watch import Sample
from ops import alarms, cost
from stackconfig import output_names
from stackconfig.files import ROOT
from tests.helpers import System, system  # noqa: F401  (the fixture)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _stamp(t: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _payments(times: list[float]) -> list[dict[str, str]]:
    return [{"event": "payment_completed", "ts": _stamp(t)} for t in times]


def test_one_saturated_worker_is_measured_at_its_payment_rate_and_its_drain_extrapolated() -> None:
    # One worker paying every 0.8 s from t=1000.8; orders keep waiting; the window ends at 1020 with 100 left.
    ends = [1000.8 + 0.8 * i for i in range(24)]
    samples = [Sample(1000 + 0.5 * i, 100 + i, 1, 5.0, 60.0) for i in range(21)]  # sale: 1000..1010
    samples += [Sample(1010.5 + 0.5 * i, 100, 1, 5.0, 60.0) for i in range(19)]  # window until 1019.5
    samples.append(Sample(1021.0, 0, 0, 0.0, 60.0))  # purged after the window
    window = LevelWindow(sale_start=1000, sale_end=1010, payment_seconds=0.75, observe_end=1020, extrapolated=True)
    m = measure_level(1, window, _payments(ends), samples)
    assert m.saturated
    assert m.rate == pytest.approx(1 / 0.8)
    assert m.processed_during_sale == 12  # 1000.8 .. 1009.6
    assert m.drain_seconds == pytest.approx(10 + 101 * 0.8)  # window + what was left / rate (not the purged 0)
    assert m.peak == 121


def test_saturated_workers_paying_in_bursts_are_measured_at_n_over_s() -> None:
    # 20 workers started together pay 20 orders every 1.5 s (a few ms apart): 13.3/s, not (count - 1) / span.
    ends = [1001.5 + 1.5 * burst + 0.002 * i for burst in range(6) for i in range(20)]
    samples = [Sample(1000 + 0.5 * i, 500, 20, 5.0, 60.0) for i in range(21)]
    window = LevelWindow(sale_start=1000, sale_end=1010, payment_seconds=1.5, observe_end=1010, extrapolated=True)
    assert measure_level(20, window, _payments(ends), samples).rate == pytest.approx(20 / 1.5, rel=0.01)


def test_workers_that_keep_up_are_measured_at_the_arrival_rate() -> None:
    # 20 orders/s for 10 s, each paid 1 s after it arrived: 20 of the 40 workers busy, nothing waits.
    ends = [1001 + 0.05 * i for i in range(200)]
    samples = [Sample(1000 + 0.5 * i, 0, 20, 10.0, 70.0) for i in range(21)]
    samples += [Sample(1010.5, 0, 10, 10.0, 70.0), Sample(1011.0, 0, 0, 1.0, 70.0)]
    window = LevelWindow(sale_start=1000, sale_end=1010, payment_seconds=1.0, observe_end=1011.5, extrapolated=False)
    m = measure_level(40, window, _payments(ends), samples)
    assert not m.saturated
    assert m.rate == pytest.approx(20, rel=0.01)
    assert m.drain_seconds == pytest.approx(1.0)  # the last orders' own payment


def test_shortened_alarm_periods_keep_thresholds_and_actions(system: System) -> None:  # noqa: F811
    cloudwatch = aws.client("cloudwatch")
    prefix = system.outputs[output_names.ALARM_PREFIX]
    latency = float(system.outputs[output_names.ACCEPTABLE_LATENCY])
    alarms.apply_profile(cloudwatch, prefix, "flashsale", latency)
    before = alarms.stack_alarms(cloudwatch, prefix)
    periods = alarms.shorten_periods(cloudwatch, prefix, 4)
    after = alarms.stack_alarms(cloudwatch, prefix)
    for key, alarm in after.items():
        spec = next(s for s in alarm_catalogue.ALARMS if s.key == key)
        assert alarm["Threshold"] == before[key]["Threshold"]
        assert alarm["AlarmActions"] == before[key]["AlarmActions"] != []
        if (
            spec.subject is alarm_catalogue.AlarmSubject.EXPECTED_WAIT
        ):  # metric math: the local runtime shortens its queries' periods
            assert alarm["AlarmName"] not in periods
            continue
        assert alarm["Period"] == spec.period_seconds // 4 == periods[alarm["AlarmName"]]


def test_refuses_a_time_scale_the_emulator_cannot_carry(capsys: pytest.CaptureFixture[str]) -> None:
    assert lab.main(["--time-scale", "50"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m bench.lab: error: --time-scale") and "\n" not in err


@pytest.mark.slow
@pytest.mark.serial  # its rates are checked against N/t: other tests' load beside it would skew them
def test_quick_lab_reproduces_the_reports_story(tmp_path: Path) -> None:
    results = tmp_path / "lab"
    done = subprocess.run(
        [sys.executable, "-m", "bench.lab", "--quick", "--json", "--results", str(results)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert "lab: time scale" in done.stderr  # the scale used is printed
    assert "lab: live view at http://127.0.0.1:" in done.stderr  # its URL printed; nothing opened

    # Part I: the sync service collapses under the flash sale; Part III: the async receiver accepts everything.
    assert summary["sync"]["flashsale"]["acceptance_rate"] < 0.10
    assert summary["sync"]["flashsale"]["timeouts"] > 0.8 * summary["sync"]["flashsale"]["requests"]
    (level,) = summary["levels"]  # the stack's own 20 workers
    assert level["acceptance_rate"] >= 0.999, level
    # Part V: saturated workers pay N / S a second.
    assert level["saturated"] and level["extrapolated"]
    assert level["rate_predicted"] == pytest.approx(level["workers"] / contract.SERVICE_DEFAULTS.payment_seconds)
    assert math.isclose(level["rate_measured"], level["rate_predicted"], rel_tol=0.10), level

    # Alarms: the expected-wait warning fired and cleared during that run, as people receive it.
    subjects = [n["subject"] for n in level["notifications"]]
    warning = alarm_catalogue.alarm_name(f"flashsale-{lab.STACK}", "expected_wait_warning")
    assert any(s.startswith("[WARNING] ALARM") and warning in s for s in subjects), subjects
    assert any(s.startswith("[RESOLVED]") and warning in s for s in subjects), subjects

    # Part VI: pre-scaled to the planner's tasks, nobody waits much longer than a payment; with the stack's one
    # task the drain and the waits are the planner's (within the lab's tolerance).
    runs = {run["strategy"]: run for run in summary["strategies"]}
    fixed, prescaled = runs["fixed"], runs["pre-scaled"]
    for run in (fixed, prescaled):
        assert run["accepted"] == run["requests"] > 1000
    for key in ("drain_seconds", "wait_max_seconds", "peak_backlog"):
        assert math.isclose(fixed[key], fixed["predicted"][key], rel_tol=0.15), (key, fixed)
    assert prescaled["sale_tasks"] == 10  # 60/s x 3 s x 1.11 = 200 workers, 20 per task
    assert prescaled["wait_p95_seconds"] < 4 * contract.SERVICE_DEFAULTS.payment_seconds < fixed["wait_p50_seconds"]
    assert prescaled["peak_backlog"] < 0.3 * fixed["peak_backlog"]
    # The bill adds up from its inputs and ops/cost.py's prices.
    for run in (fixed, prescaled):
        usage = run["usage"]
        assert usage["task_seconds"] == pytest.approx(sum(run["task_seconds"].values()))
        assert run["cost_usd"] == pytest.approx(recomputed_cost(usage))

    # After Part VI, ops.report on the pre-scaled sale (--quick runs no scheduled one): its figures agree with the
    # lab's.
    post = summary["post_sale_report"]
    assert post["strategy"] == "pre-scaled" and Path(post["report"]).is_file(), post
    assert {a["figure"] for a in post["agreements"]} >= {"orders accepted", "wait p95 (s)", "worker tasks at the peak"}
    assert post["agrees"], post["agreements"]
    # IAM was enforced on every call (a refused one would have failed the lab); the grants no part used are listed:
    # those only the Lambda service uses for a function (its logs) among them, and none the worker pays orders with.
    unused = summary["iam"]["unused_grants"]
    assert any(g.startswith("alerts-notifier-role: logs:PutLogEvents") for g in unused), unused
    assert not any(g.startswith("worker-svc-task-role: dynamodb:PartiQLUpdate") for g in unused), unused

    report = (results / "report.md").read_text()
    for heading in (
        "## Part I",
        "## Part III",
        "## Part V",
        "## Part VI",
        "## Alarms and notifications",
        "Processing rate /s",
        "(extrapolated)",
        "Little's law",
        "Wait until paid",
        "## The post-sale report of a Part VI sale",
    ):
        assert heading in report
    for png in ("queue-depth.png", "latency.png", "strategies.png"):
        assert (results / png).read_bytes().startswith(PNG_MAGIC)
        assert f"]({png})" in report


def recomputed_cost(usage: dict[str, float]) -> float:
    """A sale's bill by hand: task-seconds at 0.25 vCPU and 0.5 GB, and each order's five requests."""
    price = {f.key: f.value for f in cost.PRICES}
    orders = usage["orders"]
    return (
        usage["task_seconds"] * (0.25 * price["fargate_vcpu_second"] + 0.5 * price["fargate_gb_second"])
        + orders * (price["sns_publish"] + price["sns_sqs_delivery"])
        + (orders * 2 / 10 + usage["idle_polls"]) * price["sqs_request"]
        + orders * 2 * price["dynamodb_write_unit"]
        + orders * price["dynamodb_read_unit"]
    )
