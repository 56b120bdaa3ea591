"""`python -m ops.report`: a small real sale on the local system, reported beside the planner's forecast and checked
against the orders table; the buyers' wait metric read when it is there; and the one-line refusals (an empty window,
a missing or unreachable stack, bad windows)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from app import aws, contract
from bench.localaws.emulators import Emulator, free_port
from bench.localaws.system import LocalArgs, LocalSystem
from ops.report import read
from ops.report.run import REQUIRED_OUTPUTS
from planning.strategies import percentile
from stackconfig import files, output_names
from stackconfig.files import ROOT
from tests.helpers import ORDER, wait_for

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ORDERS = 60
DECLINE_RATE = 0.25


def report(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command as an operator runs it: the emulators' endpoints from the outputs file, not the environment."""
    return subprocess.run(
        [sys.executable, "-m", "ops.report", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env or {k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    (line,) = [line for line in done.stderr.splitlines() if not line.startswith("report: ")]
    assert line.startswith("python -m ops.report: error: ")
    return line


# --- refusals before anything is read -----------------------------------------------------------------------------


def fake_outputs(tmp_path: Path, endpoint: str | None = None) -> Path:
    outputs: dict[str, Any] = {key: "x" for key in REQUIRED_OUTPUTS}
    outputs |= {
        output_names.ALARM_PREFIX: "flashsale-normal",
        output_names.WORKER_COUNT: 20,
        output_names.PAYMENT_SECONDS: 3,
        output_names.ACCEPTABLE_LATENCY: 30,
        output_names.ORDERS_TABLE: "orders",
    }
    if endpoint:
        outputs[output_names.LOCAL_ENDPOINT] = endpoint
        outputs[output_names.LOCAL_CREDENTIALS] = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return path


def test_a_missing_stack_is_one_line(tmp_path: Path) -> None:
    line = one_line_error(
        report("--from", "2026-01-01T10:00", "--to", "2026-01-01T11:00", "--outputs", str(tmp_path / "none.json"))
    )
    assert "cannot read outputs file" in line


def test_an_unreachable_stack_is_one_line(tmp_path: Path) -> None:
    outputs = fake_outputs(tmp_path, endpoint=f"http://127.0.0.1:{free_port()}")
    line = one_line_error(report("--from", "2026-01-01T10:00", "--to", "2026-01-01T11:00", "--outputs", str(outputs)))
    assert "the stack is not reachable" in line


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--from", "2026-01-01T11:00", "--to", "2026-01-01T10:00"), "is not before --to"),
        (("--from", "yesterday", "--to", "2026-01-01T10:00"), "is not an ISO 8601 time"),
        (("--from", iso(time.time() + 3600), "--to", iso(time.time() + 7200)), "in the future"),
        (("--sale", "black-friday"), "no sale 'black-friday' in the calendar of Pulumi.normal.yaml"),
        (("--sale", "x", "--from", "2026-01-01T10:00"), "not both"),
        (("--from", "2026-01-01T10:00"), "--from T and --to T"),
        (("--from", "2026-01-01T10:00", "--to", "2026-01-01T11:00", "--period", "45"), "--period must be"),
    ],
)
def test_bad_windows_are_refused_with_one_line(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    line = one_line_error(report(*args, "--outputs", str(fake_outputs(tmp_path))))
    assert says in line, line


def test_one_period_holds_the_whole_window() -> None:
    assert read.one_period(1000.0, 1100.0, 60) == 240  # 960..1200: the first multiple of 60 not cut at 1020 or 1080
    assert read.one_period(0.0, 30.0, 1) == 60
    length = read.one_period(86_399.0, 86_401.0, 60)
    assert length is not None and 86_399 // length == 86_401 // length


# --- a small real sale on the local system ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_system(
    tmp_path_factory: pytest.TempPathFactory, emulators: tuple[Emulator, Emulator]
) -> Iterator[LocalSystem]:
    args = LocalArgs(
        config={
            "paymentSeconds": 0.3,
            "paymentDeclineRate": DECLINE_RATE,
            "alarmProfile": "flashsale",
            "acceptableLatencySeconds": 5,
        },
        directory=tmp_path_factory.mktemp("local"),
        feed_seconds=0.2,
        console_port=None,
    )
    with pytest.MonkeyPatch.context() as monkeypatch, LocalSystem(args, emulators=emulators) as system:
        for key, value in system.env().items():
            monkeypatch.setenv(key, value)
        yield system


@pytest.fixture(scope="module")
def sale(local_system: LocalSystem, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """60 orders through the receiver at once, drained; and one accepted order whose message was dead-lettered."""
    outputs = local_system.outputs
    started = time.time()
    url = outputs[output_names.ASYNC_URL]
    with ThreadPoolExecutor(8) as pool, httpx.Client(base_url=url, timeout=10) as client:
        answers = list(pool.map(lambda _: client.post(contract.ASYNC_ORDERS_PATH, json=ORDER), range(ORDERS)))
    assert all(a.status_code == 202 for a in answers)
    poison = f"dead-{uuid.uuid4()}"  # accepted (its record pending), then its message dead-lettered
    aws.client("dynamodb").put_item(
        TableName=outputs[output_names.ORDERS_TABLE],
        Item={
            contract.ORDER_KEY: {"S": poison},
            "status": {"S": contract.OrderStatus.PENDING},
            "customer_id": {"N": "1"},
            "items": {"S": "[]"},
            "total": {"N": "1"},
            "created_at": {"N": repr(time.time())},
        },
    )
    aws.client("sqs").send_message(
        QueueUrl=outputs[output_names.DLQ_URL], MessageBody=json.dumps({contract.ORDER_KEY: poison})
    )

    def table() -> list[read.Order]:
        return read.scan_orders(aws.client("dynamodb"), outputs[output_names.ORDERS_TABLE], started - 1, time.time())

    wait_for(
        lambda: sum(o.status != contract.OrderStatus.PENDING for o in table()) == ORDERS,
        30,
        "every order paid or declined",
    )
    orders = table()
    last = max(o.finished_at or 0.0 for o in orders)
    queue = read.Query(
        "waiting",
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": outputs[output_names.QUEUE_URL].rsplit("/", 1)[-1]},
        "Maximum",
    )
    wait_for(  # the local feed has published the queue after the last payment
        lambda: any(
            t > last
            for t in read.get_series(aws.client("cloudwatch"), [queue], last - 5, time.time() + 1, 1)["waiting"].times
        ),
        10,
        "the queue metric after the drain",
    )
    finished = sum(o.status != contract.OrderStatus.PENDING for o in orders)
    wait_for(  # the local extractor has put every finished order's wait from the worker's log
        lambda: buyer_wait_samples(started - 60, time.time() + 1) >= finished, 15, "the buyers' wait metric"
    )
    stack_file = tmp_path_factory.mktemp("stack") / "Pulumi.normal.yaml"
    config = yaml.safe_load(files.stack_file("normal").read_text())
    config["config"]["flashsale:paymentDeclineRate"] = DECLINE_RATE
    stack_file.write_text(yaml.safe_dump(config))
    return {"from": started - 1, "to": time.time(), "orders": orders, "poison": poison, "stack_file": stack_file}


def buyer_wait_samples(start: float, end: float) -> int:
    points = aws.client("cloudwatch").get_metric_statistics(
        Namespace=contract.WAIT_METRIC_NAMESPACE,
        MetricName=contract.WAIT_METRIC_NAME,
        Dimensions=[
            {"Name": contract.WAIT_DIMENSION_STACK, "Value": "normal"},
            {"Name": contract.WAIT_DIMENSION_REGION, "Value": aws.region()},
        ],
        StartTime=datetime.fromtimestamp(start, UTC),
        EndTime=datetime.fromtimestamp(end, UTC),
        Period=60,
        Statistics=["SampleCount"],
    )["Datapoints"]
    return int(sum(point["SampleCount"] for point in points))


def run_report(local_system: LocalSystem, sale: dict[str, Any], out: Path, *more: str) -> dict[str, Any]:
    done = report(
        "--from",
        iso(sale["from"]),
        "--to",
        iso(sale["to"]),
        "--period",
        "1",
        "--out",
        str(out),
        "--stack-file",
        str(sale["stack_file"]),
        "--outputs",
        str(local_system.outputs_file),
        "--json",
        *more,
    )
    assert done.returncode == 0, done.stderr
    assert "report: reading the orders accepted in the window" in done.stderr  # progress on stderr, JSON on stdout
    return dict(json.loads(done.stdout))


def test_a_small_sale_is_reported_beside_the_forecast(
    local_system: LocalSystem, sale: dict[str, Any], tmp_path: Path
) -> None:
    data = run_report(local_system, sale, tmp_path / "report")
    f = data["figures"]
    orders: list[read.Order] = sale["orders"]
    statuses = [o.status for o in orders]
    assert f["accepted"]["measured"] == len(orders) == ORDERS + 1
    assert f["paid"]["measured"] == statuses.count(contract.OrderStatus.COMPLETED)
    assert f["failed"]["measured"] == statuses.count(contract.OrderStatus.FAILED)
    assert f["paid"]["measured"] + f["failed"]["measured"] == ORDERS
    assert f["paid"]["forecast"] == pytest.approx((ORDERS + 1) * (1 - DECLINE_RATE))
    assert f["dead_lettered"]["measured"] == 1 and f["pending"]["measured"] == 0
    waits = sorted(o.wait for o in orders if o.wait is not None)
    for p in (50, 95, 99):
        assert f[f"wait_p{p}"]["measured"] == pytest.approx(percentile(waits, p))
        assert f[f"wait_p{p}"]["forecast"] > 0 and f[f"wait_p{p}"]["ratio"] is not None
    assert f["wait_max"]["measured"] == pytest.approx(waits[-1])
    # The stack's one worker task of 20 workers, seen by the task metric; the forecast holds the tasks at the start.
    assert f["tasks_peak"]["measured"] == 1 == f["tasks_peak"]["forecast"] == data["planned_tasks"]
    assert f["peak_backlog"]["measured"] >= 1 and f["peak_backlog"]["forecast"] > 0
    assert f["drain"]["measured"] is not None and f["drain"]["measured"] >= 0
    assert f["expected_wait_peak"]["measured"] is not None
    assert f["task_seconds"]["measured"] > 0 and f["cost"]["measured"] > 0 and f["cost"]["forecast"] > 0
    for key, figure in f.items():  # every figure has a source, and a measurement or the reason it has none
        assert figure["source"], key
        assert figure["measured"] is not None or figure["note"], key
    # The worker's buyers' wait metric (extracted from its log) agrees with the orders table's waits: CloudWatch's
    # percentiles over one period interpolate between samples, so within a tenth of a second or 10 %.
    for p in (50, 95, 99):
        measured = f[f"metric_wait_p{p}"]["measured"]
        assert measured == pytest.approx(percentile(waits, p), rel=0.10, abs=0.1), p
    assert data["wait_timeline_source"].startswith(f"CloudWatch {contract.WAIT_METRIC_NAMESPACE}/")
    assert data["service_events"] == {"available": False, "reason": "moto keeps no ECS service events"}
    assert isinstance(data["alarms"], list)
    assert "Met the target" in data["verdict"] or "Missed the target" in data["verdict"]
    assert "1 dead-lettered" in data["verdict"]

    text = (tmp_path / "report" / "report.md").read_text()
    for heading in ("## Verdict", "## Figures beside the forecast", "## The buyers' wait over time", "## Alarms"):
        assert heading in text
    assert "not available from this stack" in text  # the metric's figures
    for png in data["files"].values():
        if png.endswith(".png"):
            assert Path(png).read_bytes().startswith(PNG_MAGIC)
            assert f"]({Path(png).name})" in text
    assert json.loads((tmp_path / "report" / "report.json").read_text()) == data


def test_the_buyers_wait_metric_is_read_when_it_is_there(
    local_system: LocalSystem, sale: dict[str, Any], tmp_path: Path
) -> None:
    orders: list[read.Order] = sale["orders"]
    dimensions = [
        {"Name": contract.WAIT_DIMENSION_STACK, "Value": local_system.args.stack},
        {"Name": contract.WAIT_DIMENSION_REGION, "Value": aws.region()},
    ]
    finished = [o for o in orders if o.finished_at is not None and o.wait is not None]
    at = datetime.fromtimestamp(max(o.finished_at or 0 for o in finished), tz=UTC)
    aws.client("cloudwatch").put_metric_data(  # as the metric filter would store them: each value once
        Namespace=contract.WAIT_METRIC_NAMESPACE,
        MetricData=[
            {
                "MetricName": contract.WAIT_METRIC_NAME,
                "Dimensions": dimensions,
                "Timestamp": at,
                "Values": [o.wait for o in finished if o.wait is not None],
                "Counts": [1.0] * len(finished),
                "Unit": contract.WAIT_METRIC_UNIT,
            }
        ],
    )
    data = run_report(local_system, sale, tmp_path / "report")
    f = data["figures"]
    waits = sorted(o.wait for o in finished if o.wait is not None)
    assert data["wait_timeline_source"].startswith("CloudWatch Flashsale/BuyerWait")
    for p in (50, 95):
        measured = f[f"metric_wait_p{p}"]["measured"]
        assert waits[0] <= measured <= waits[-1]
        assert measured == pytest.approx(f[f"wait_p{p}"]["measured"], rel=0.25)  # CloudWatch interpolates


def test_an_empty_window_is_refused(local_system: LocalSystem, sale: dict[str, Any]) -> None:
    before = sale["from"] - 3600
    line = one_line_error(
        report("--from", iso(before), "--to", iso(before + 600), "--outputs", str(local_system.outputs_file))
    )
    assert "no orders were accepted from" in line and "nothing to report" in line
