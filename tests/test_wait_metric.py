"""The buyers' wait as a metric: the worker's Embedded Metric Format members in its payment lines, the local
extraction of EMF lines into CloudWatch metrics (as CloudWatch Logs does), and the missing-data rule the local
runtime applies to the alarms on them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from app import alarm_catalogue, aws, contract, logs
from app.worker import buyer_wait, wait_metric
from bench.localaws import emf
from ops import alarms
from stackconfig import output_names
from tests.helpers import System, post, system, wait_for  # noqa: F401

DIRECTIVE = {
    "Namespace": contract.WAIT_METRIC_NAMESPACE,
    "Dimensions": [[contract.WAIT_DIMENSION_STACK, contract.WAIT_DIMENSION_REGION]],
    "Metrics": [{"Name": contract.WAIT_METRIC_NAME, "Unit": contract.WAIT_METRIC_UNIT}],
}


def _emf(**members: Any) -> dict[str, Any]:
    """An EMF document of the wait metric, with `members` replacing or adding top-level members."""
    document: dict[str, Any] = {
        "_aws": {"Timestamp": 1_790_000_000_250, "CloudWatchMetrics": [DIRECTIVE]},
        contract.WAIT_DIMENSION_STACK: "normal",
        contract.WAIT_DIMENSION_REGION: "us-west-2",
        contract.WAIT_METRIC_NAME: 12.5,
    }
    return document | members


def _payment_lines(task: Any) -> list[dict[str, Any]]:
    return [e for e in task.events() if str(e.get("event", "")).startswith("payment_")]


# --- The worker's line -------------------------------------------------------------------------------------------


def test_a_payment_line_is_an_emf_document_of_the_wait(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    metric = wait_metric("flashsale")
    assert metric is not None
    finished_at = 1_790_000_100.123
    logs.event("payment_completed", "[WORKER-1] ...", order_id="o-1", **metric.members(33.25, finished_at))
    (line,) = capsys.readouterr().out.splitlines()
    document = json.loads(line)
    # The specification's layout: `_aws` with the timestamp (epoch ms, an integer) and the directives; each
    # dimension and metric named there is a top-level member, a string for a dimension, a number for the metric.
    assert document["_aws"] == {"Timestamp": 1_790_000_100_123, "CloudWatchMetrics": [DIRECTIVE]}
    assert document[contract.WAIT_DIMENSION_STACK] == "flashsale"
    assert document[contract.WAIT_DIMENSION_REGION] == "eu-west-1"  # the task's AWS_REGION
    assert document[contract.WAIT_METRIC_NAME] == 33.25
    assert document["event"] == "payment_completed" and document["order_id"] == "o-1"  # still the event line
    assert "\n" not in line.strip() and line.startswith("{")  # one JSON log event
    (point,) = emf.points(document)  # what CloudWatch Logs (here, the local extractor) takes from it
    assert point == emf.Point(
        contract.WAIT_METRIC_NAMESPACE,
        contract.WAIT_METRIC_NAME,
        ((contract.WAIT_DIMENSION_STACK, "flashsale"), (contract.WAIT_DIMENSION_REGION, "eu-west-1")),
        contract.WAIT_METRIC_UNIT,
        finished_at,
        (33.25,),
    )


def test_no_stack_no_metric_and_never_a_negative_wait() -> None:
    assert wait_metric(None) is None and wait_metric("") is None
    with pytest.raises(ValueError, match="Region has no value"):
        logs.EmbeddedMetric(namespace="N", name="M", unit="Seconds", dimensions={"Stack": "s", "Region": ""})
    assert buyer_wait(100.0, 103.5) == 3.5
    assert buyer_wait(100.0, 99.99) == 0.0  # two tasks' clocks: a skew never makes a negative wait


@pytest.mark.parametrize(("decline_rate", "status"), [("0", "completed"), ("1", "failed")])
def test_the_worker_measures_each_finished_orders_wait_from_its_record(
    system: System,  # noqa: F811
    decline_rate: str,
    status: str,
) -> None:
    receiver = system.start("receiver")
    worker = system.start("worker", PAYMENT_DECLINE_RATE=decline_rate)
    order_id = post(receiver, contract.ASYNC_ORDERS_PATH).json()["order_id"]
    record = system.wait_status(order_id, status)
    (line,) = wait_for(lambda: _payment_lines(worker), 5, "the payment line")
    assert line["event"] == f"payment_{status}" and line["order_id"] == order_id
    wait = float(record["finished_at"]) - float(record["created_at"])  # acceptance to final status, as the lab's
    assert line[contract.WAIT_METRIC_NAME] == pytest.approx(wait, abs=0.002), line
    assert line["_aws"]["Timestamp"] == round(float(record["finished_at"]) * 1000), line  # when it became final
    assert line[contract.WAIT_DIMENSION_STACK] == system.deployment.stack  # as the program told the task
    assert line[contract.WAIT_DIMENSION_REGION] == system.deployment.endpoints.region  # as ECS told it


def test_a_worker_outside_a_stack_writes_no_metric(system: System) -> None:  # noqa: F811
    receiver = system.start("receiver")
    worker = system.start("worker", **{contract.ENV_STACK_NAME: ""})
    system.wait_status(post(receiver, contract.ASYNC_ORDERS_PATH).json()["order_id"], "completed")
    (line,) = wait_for(lambda: _payment_lines(worker), 5, "the payment line")
    assert "_aws" not in line and contract.WAIT_METRIC_NAME not in line
    (starting,) = [e for e in worker.events() if e.get("event") == "starting"]
    assert starting["wait_metric"] is None and f"off (no {contract.ENV_STACK_NAME})" in starting["msg"]


# --- The local extractor -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "why"),
    [
        (_emf(_aws=[]), "must be an object"),
        (_emf(_aws={"CloudWatchMetrics": [DIRECTIVE]}), "Timestamp"),
        (_emf(_aws={"Timestamp": "now", "CloudWatchMetrics": [DIRECTIVE]}), "Timestamp"),
        (_emf(_aws={"Timestamp": 1, "CloudWatchMetrics": DIRECTIVE}), "array of metric directives"),
        (_emf(_aws={"Timestamp": 1, "CloudWatchMetrics": [DIRECTIVE | {"Namespace": ""}]}), "Namespace"),
        (_emf(_aws={"Timestamp": 1, "CloudWatchMetrics": [DIRECTIVE | {"Dimensions": ["Stack"]}]}), "Dimensions"),
        (_emf(Region=None), "dimensions"),
        (_emf(Stack=7), "dimensions"),
        (_emf(BuyerWait="12"), "number or an array"),
        (_emf(BuyerWait=[]), "number or an array"),
        (_emf(BuyerWait=True), "number or an array"),
        (
            _emf(
                _aws={
                    "Timestamp": 1,
                    "CloudWatchMetrics": [DIRECTIVE | {"Metrics": [{"Name": "BuyerWait", "Unit": "s"}]}],
                }
            ),
            "unit",
        ),
    ],
)
def test_a_document_against_the_specification_is_not_extracted(document: dict[str, Any], why: str) -> None:
    with pytest.raises(emf.InvalidEmf, match=why):
        emf.points(document)


def test_values_arrays_dimension_sets_and_plain_lines() -> None:
    assert emf.points({"msg": "no metric here"}) == []
    both = DIRECTIVE | {"Dimensions": [["Stack"], []]}
    found = emf.points(_emf(_aws={"Timestamp": 2_000, "CloudWatchMetrics": [both]}, BuyerWait=[1, 2.5]))
    assert [(p.dimensions, p.values, p.timestamp) for p in found] == [
        ((("Stack", "normal"),), (1.0, 2.5), 2.0),
        ((), (1.0, 2.5), 2.0),
    ]


def test_values_are_batched_per_second_as_values_and_counts() -> None:
    dims = (("Stack", "normal"),)
    points = [emf.Point("N", "M", dims, "Seconds", 1000.2 + n / 1000, (float(n % 200),)) for n in range(400)]
    points.append(emf.Point("N", "M", dims, "Seconds", 1001.0, (5.0,)))  # the next second: a datum of its own
    first, rest, later = emf.metric_data(points)["N"]
    assert (len(first["Values"]), len(rest["Values"]), later["Values"]) == (emf.MAX_VALUES, 50, [5.0])
    assert set(first["Counts"] + rest["Counts"]) == {2.0}  # each of the 200 values seen twice: sent once, counted 2
    assert first["Timestamp"] == rest["Timestamp"] == datetime.fromtimestamp(1000, UTC)
    assert later["Timestamp"] == datetime.fromtimestamp(1001, UTC)
    assert first["Dimensions"] == [{"Name": "Stack", "Value": "normal"}] and first["Unit"] == "Seconds"


def _wait_alarm(system: System) -> dict[str, Any]:
    name = alarm_catalogue.alarm_name(system.outputs[output_names.ALARM_PREFIX], "buyer_wait_p95")
    (alarm,) = aws.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return dict(alarm)


def test_extracted_waits_are_the_metric_the_deployed_alarm_watches_with_their_percentiles(
    system: System,  # noqa: F811
) -> None:
    receiver = system.start("receiver")
    worker = system.start("worker", WORKER_COUNT="10")
    order_ids = [post(receiver, contract.ASYNC_ORDERS_PATH).json()["order_id"] for _ in range(30)]
    for order_id in order_ids:
        system.wait_status(order_id, "completed")
    lines = wait_for(lambda: len(found := _payment_lines(worker)) == 30 and found, 5, "30 payment lines")
    extractor = emf.EmfExtractor()
    cloudwatch = aws.client("cloudwatch")
    assert extractor.publish(cloudwatch, [worker.log_path]) == 30 and extractor.rejected == 0
    assert extractor.publish(cloudwatch, [worker.log_path]) == 0  # each line once
    alarm = _wait_alarm(system)
    assert alarm["ExtendedStatistic"] == "p95" and alarm["Namespace"] in extractor.namespaces
    waits = sorted(line[contract.WAIT_METRIC_NAME] for line in lines)
    stamps = [line["_aws"]["Timestamp"] / 1000 for line in lines]
    (point,) = cloudwatch.get_metric_statistics(
        Namespace=alarm["Namespace"],
        MetricName=alarm["MetricName"],
        Dimensions=alarm["Dimensions"],  # the alarm's dimensions: the metric the worker wrote is the one it watches
        StartTime=datetime.fromtimestamp(min(stamps) - 1, UTC),
        EndTime=datetime.fromtimestamp(max(stamps) + 1, UTC),
        Period=3600,  # one datapoint for the lot
        Statistics=["SampleCount", "Maximum"],
        ExtendedStatistics=["p50", "p95"],
    )["Datapoints"]
    assert point["SampleCount"] == 30 and point["Maximum"] == waits[-1]
    assert waits[14] <= point["ExtendedStatistics"]["p50"] <= waits[15]  # percentiles of the values themselves
    assert waits[27] <= point["ExtendedStatistics"]["p95"] <= waits[28]


def test_the_wait_alarm_fires_on_slow_waits_and_clears_when_no_order_finishes(system: System) -> None:  # noqa: F811
    """ministack evaluates the p95 alarm when data comes; the missing-data rule (notBreaching) clears it once its
    window holds no datapoint, as CloudWatch does."""
    cloudwatch = aws.client("cloudwatch")
    alarms.reput(cloudwatch, _wait_alarm(system), Period=2)  # the lab's time scale shortens periods the same way
    alarm = _wait_alarm(system)
    slow = alarm["Threshold"] * 3
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    stamp = int(datetime.now(UTC).timestamp() * 1000)
    metadata = {"Timestamp": stamp, "CloudWatchMetrics": [DIRECTIVE]}
    lines = [json.dumps(_emf(_aws=metadata, BuyerWait=slow, **dimensions))] * 20
    log = system.logs / "worker-emf.log"
    log.write_text("\n".join([*lines, '{"_aws": "broken"}', "not json"]) + "\n")
    extractor = emf.EmfExtractor()
    assert extractor.publish(cloudwatch, [log]) == 20 and extractor.rejected == 1
    assert wait_for(lambda: _wait_alarm(system)["StateValue"] == "ALARM", 5, "the p95 alarm")
    # At the datapoints' time the window holds them: ministack's call, no missing-data transition. (Asked at the wall
    # clock's time instead, a loaded machine may already be past the 2 s window.)
    written = datetime.fromtimestamp(stamp / 1000, UTC)
    assert emf.apply_missing_data(cloudwatch, extractor.namespaces, now=written) == []
    name = alarm["AlarmName"]
    wait_for(lambda: emf.apply_missing_data(cloudwatch, extractor.namespaces) == [name], 5, "the window to empty")
    cleared = _wait_alarm(system)
    assert cleared["StateValue"] == "OK" and "treated as notBreaching" in cleared["StateReason"]
    assert emf.apply_missing_data(cloudwatch, extractor.namespaces) == []  # OK already: no second transition
