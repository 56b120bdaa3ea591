"""What a sale window left in the live stack, read through the AWS APIs: the orders table, the DLQ, CloudWatch's
metrics and alarm history, the worker service's ECS events.

Each reader returns what it found; a source the stack cannot give is `Missing` with the reason, never a guess. Times
are epoch seconds (UTC).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app import contract, expected_wait
from ops import dlq, stack

# The fields of contract.OrderRecord the report reads (`status` is a DynamoDB reserved word: hence the #names).
CREATED, FINISHED, STATUS = "created_at", "finished_at", "status"
PROGRESS_EVERY = 5  # scan pages between progress lines
DLQ_PEEK_MAX = 10_000  # dead letters read to match them to the window's orders


@dataclass(frozen=True)
class Missing:
    """A figure the stack cannot give, and why."""

    reason: str


@dataclass(frozen=True)
class Order:
    order_id: str
    status: str
    created_at: float
    finished_at: float | None

    @property
    def wait(self) -> float | None:
        """From acceptance to its final status: what the BuyerWait metric measures, from the record itself."""
        return None if self.finished_at is None else self.finished_at - self.created_at


def scan_orders(dynamodb: Any, table: str, start: float, end: float) -> list[Order]:
    """The orders accepted in [start, end] (a Scan with a filter: every item of the table is read once)."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "FilterExpression": f"{CREATED} BETWEEN :start AND :end",
        "ExpressionAttributeValues": {":start": {"N": repr(start)}, ":end": {"N": repr(end)}},
        "ProjectionExpression": f"{contract.ORDER_KEY}, #status, {CREATED}, {FINISHED}",
        "ExpressionAttributeNames": {"#status": STATUS},
    }
    found: list[Order] = []
    pages = 0
    while True:
        page = dynamodb.scan(**kwargs)
        pages += 1
        for item in page.get("Items", []):
            finished = item.get(FINISHED, {}).get("N")
            found.append(
                Order(
                    order_id=item[contract.ORDER_KEY]["S"],
                    status=item.get(STATUS, {}).get("S", ""),
                    created_at=float(item[CREATED]["N"]),
                    finished_at=float(finished) if finished else None,
                )
            )
        if "LastEvaluatedKey" not in page:
            return sorted(found, key=lambda o: o.created_at)
        if pages % PROGRESS_EVERY == 0:
            stack.progress(f"report: orders table {table}: {pages} pages read, {len(found):,} orders in the window")
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@dataclass(frozen=True)
class DeadLetters:
    in_window: frozenset[str]  # order ids of the window's orders found in the DLQ
    total: int  # messages in the DLQ
    unattributed: int  # read, but no order id or not one of the window's
    read_all: bool


def dead_letters(sqs: Any, dlq_url: str, window_ids: set[str]) -> DeadLetters:
    """The DLQ's messages matched to the window's orders (peeked as `ops.dlq list` does: nothing consumed; not at all
    when the queue's counts say it is empty, which spares the peek's one-second poll)."""
    counts = sqs.get_queue_attributes(
        QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    empty = not any(int(value) for value in counts.values())
    letters = [] if empty else dlq.peek(sqs, dlq_url, DLQ_PEEK_MAX)
    ids = {d.order_id for d in letters if d.order_id is not None}
    found = frozenset(ids & window_ids)
    return DeadLetters(
        in_window=found,
        total=len(letters),
        unattributed=len(letters) - sum(1 for d in letters if d.order_id in found),
        read_all=len(letters) < DLQ_PEEK_MAX,
    )


@dataclass(frozen=True)
class Series:
    """One metric over time: a value per period, at the period's start."""

    times: tuple[float, ...]
    values: tuple[float, ...]

    def __bool__(self) -> bool:
        return bool(self.times)

    def at(self, t: float) -> float | None:
        """The value of the period holding t (None when there is none)."""
        before = [v for when, v in zip(self.times, self.values, strict=True) if when <= t]
        return before[-1] if before else None


@dataclass(frozen=True)
class Query:
    id: str
    namespace: str
    metric: str
    dimensions: Mapping[str, str]
    stat: str

    def request(self, period: int) -> dict[str, Any]:
        metric = {
            "Namespace": self.namespace,
            "MetricName": self.metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions.items()],
        }
        return {
            "Id": self.id,
            "MetricStat": {"Metric": metric, "Period": period, "Stat": self.stat},
            "ReturnData": True,
        }


def aligned(t: float, period: int, up: bool = False) -> datetime:
    """t on a period boundary: AWS starts the periods at StartTime, ministack at multiples of the period since the
    epoch; aligned, both read the same periods."""
    step = (math.ceil if up else math.floor)(t / period) * period
    return datetime.fromtimestamp(step, tz=UTC)


def get_series(cloudwatch: Any, queries: list[Query], start: float, end: float, period: int) -> dict[str, Series]:
    """GetMetricData for `queries` over [start, end], each as a Series (empty when the metric has no data)."""
    kwargs: dict[str, Any] = {
        "MetricDataQueries": [q.request(period) for q in queries],
        "StartTime": aligned(start, period),
        "EndTime": aligned(end, period, up=True),
        "ScanBy": "TimestampAscending",
    }
    points: dict[str, dict[float, float]] = {q.id: {} for q in queries}
    while True:
        answer = cloudwatch.get_metric_data(**kwargs)
        for result in answer.get("MetricDataResults", []):
            for when, value in zip(result.get("Timestamps", []), result.get("Values", []), strict=True):
                points[result["Id"]][when.timestamp()] = float(value)
        if not answer.get("NextToken"):
            break
        kwargs["NextToken"] = answer["NextToken"]
    return {key: Series(tuple(sorted(found)), tuple(found[t] for t in sorted(found))) for key, found in points.items()}


def one_period(start: float, end: float, period: int, limit: float = 7 * 86_400) -> int | None:
    """The shortest period (a multiple of `period` and of 60 s) whose one aligned period holds [start, end]: for the
    percentiles of the whole window, which no sum of shorter periods gives."""
    step = max(60, period)
    candidate = max(step, math.ceil((end - start + 1) / step) * step)
    while candidate <= limit:
        if math.floor(start / candidate) == math.floor(end / candidate):
            return candidate
        candidate += step
    return None


@dataclass(frozen=True)
class AlarmSpan:
    name: str
    fired: float | None  # None: already in ALARM when the window began
    cleared: float | None  # None: still in ALARM at its end
    reason: str


def alarm_spans(cloudwatch: Any, prefix: str, start: float, end: float) -> list[AlarmSpan]:
    """When each of the stack's alarms went into ALARM and out of it within [start, end] (DescribeAlarmHistory)."""
    kwargs: dict[str, Any] = {
        "HistoryItemType": "StateUpdate",
        "StartDate": datetime.fromtimestamp(start, tz=UTC),
        "EndDate": datetime.fromtimestamp(end, tz=UTC),
        "MaxRecords": 100,
    }
    changes: list[tuple[float, str, str, str, str]] = []  # (t, name, old, new, reason)
    while True:
        answer = cloudwatch.describe_alarm_history(**kwargs)
        for item in answer.get("AlarmHistoryItems", []):
            name, when = item.get("AlarmName", ""), item["Timestamp"].timestamp()
            if not name.startswith(f"{prefix}-") or not start <= when <= end:
                continue
            data = json.loads(item.get("HistoryData") or "{}")
            old = data.get("oldState", {}).get("stateValue", "")
            new = data.get("newState", {})
            changes.append((when, name, old, new.get("stateValue", ""), new.get("stateReason", "")))
        if not answer.get("NextToken"):
            break
        kwargs["NextToken"] = answer["NextToken"]
    spans: list[AlarmSpan] = []
    firing: dict[str, tuple[float | None, str]] = {}
    for when, name, old, new, reason in sorted(changes):
        if new == "ALARM" and old != "ALARM":
            firing[name] = (when, reason)
        elif old == "ALARM" and new != "ALARM":
            fired, why = firing.pop(name, (None, ""))
            spans.append(AlarmSpan(name, fired, when, why))
    spans += [AlarmSpan(name, fired, None, why) for name, (fired, why) in firing.items()]
    return sorted(spans, key=lambda s: (s.fired if s.fired is not None else -math.inf, s.name))


@dataclass(frozen=True)
class ServiceEvent:
    at: float
    message: str


def service_events(ecs: Any, cluster: str, service: str, start: float, end: float) -> list[ServiceEvent]:
    """The worker service's ECS events in [start, end] (ECS keeps the latest 100)."""
    found = ecs.describe_services(cluster=cluster, services=[service]).get("services", [])
    if not found:
        raise stack.OpsError(f"ECS service {service!r} not found in cluster {cluster!r}")
    events = [ServiceEvent(e["createdAt"].timestamp(), str(e.get("message", ""))) for e in found[0].get("events", [])]
    return sorted((e for e in events if start <= e.at <= end), key=lambda e: e.at)


def expected_waits(
    waiting: Series, tasks: Series, workers_per_task: int, payment_seconds: float
) -> Iterator[tuple[float, float]]:
    """The expected wait of a new order per period, as the expected-wait alarms compute it (`app.expected_wait`)."""
    for t, backlog in zip(waiting.times, waiting.values, strict=True):
        running = tasks.at(t)
        wait = None if running is None else expected_wait.seconds(backlog, running, workers_per_task, payment_seconds)
        if wait is not None:
            yield t, wait
