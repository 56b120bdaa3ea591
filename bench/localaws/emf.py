"""LOCAL ONLY: CloudWatch Logs' extraction of Embedded Metric Format (EMF) lines into metrics, which ministack does not
do (measured: PutLogEvents with an EMF document, then ListMetrics on its namespace: empty).

On AWS a task's awslogs driver ships its stdout to its log group, and CloudWatch Logs turns each EMF document in it
(a JSON log event with an `_aws` member: the worker's payment lines carry the buyers' wait, `app.worker`) into metric
datapoints. This module stands in for that extraction: the local runtime (`bench.localaws.system`) follows every task
log of the local ECS each round, parses the EMF documents as the specification lays them out, and sends their values
to ministack with PutMetricData at the documents' own timestamps, batched: one call per namespace and round (up to
MAX_DATUMS datums), one datum per metric, dimensions, unit and second, carrying `Values` and `Counts` arrays (up to
MAX_VALUES distinct values). Arrays keep every value, so percentiles (the buyers' wait p95 alarm) come from the real
distribution: a `StatisticValues` set keeps only count, sum, minimum and maximum, from which neither CloudWatch nor
ministack gives a percentile. A line that is no valid EMF document is not extracted (CloudWatch Logs keeps it as a
log event only): `rejected` counts them.

Specification: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html

Also LOCAL ONLY, for the alarms on the metrics extracted here: CloudWatch's missing-data rule. ministack evaluates a
single-metric alarm, percentiles included, on every PutMetricData, but a window without datapoints leaves the alarm
in whatever state it was, whatever its TreatMissingData says: the buyers' wait alarm would stay in ALARM forever after
a sale's drain. `apply_missing_data` does what CloudWatch does when an alarm's window holds no datapoint.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeGuard

from app.logs import EMF_ROOT
from bench.localaws.logtail import LogTail

MAX_DATUMS = 1_000  # PutMetricData: metric datums per call
MAX_VALUES = 150  # PutMetricData: distinct values in one datum's Values
MAX_METRIC_VALUES = 100  # EMF: values in one metric member's array
MAX_DIMENSIONS = 30  # EMF: dimension keys in one DimensionSet
UNITS = frozenset(
    (
        "Seconds Microseconds Milliseconds Bytes Kilobytes Megabytes Gigabytes Terabytes Bits Kilobits Megabits "
        "Gigabits Terabits Percent Count Bytes/Second Kilobytes/Second Megabytes/Second Gigabytes/Second "
        "Terabytes/Second Bits/Second Kilobits/Second Megabits/Second Gigabits/Second Terabits/Second Count/Second "
        "None"
    ).split()
)
# What CloudWatch does with an alarm whose window holds no datapoint; None: the alarm keeps its state.
MISSING_DATA_STATE: Mapping[str, str | None] = {
    "notBreaching": "OK",
    "breaching": "ALARM",
    "missing": "INSUFFICIENT_DATA",
    "ignore": None,
}


class InvalidEmf(ValueError):
    """A log line that claims to be an EMF document (it has `_aws`) and breaks the specification."""


@dataclass(frozen=True)
class Point:
    """The values of one metric in one EMF document, for one of its dimension sets."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]
    unit: str
    timestamp: float  # epoch seconds
    values: tuple[float, ...]


def _number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def points(document: Mapping[str, Any]) -> list[Point]:
    """The metric values of one EMF document (a parsed log line), one Point per metric and dimension set; [] for a
    plain log line (no `_aws`); InvalidEmf for a document against the specification."""
    metadata = document.get(EMF_ROOT)
    if metadata is None:
        return []
    if not isinstance(metadata, dict):
        raise InvalidEmf(f"{EMF_ROOT} must be an object")
    timestamp = metadata.get("Timestamp")
    if not _number(timestamp) or timestamp < 0:
        raise InvalidEmf("_aws.Timestamp must be a number of milliseconds since the epoch")
    directives = metadata.get("CloudWatchMetrics")
    if not isinstance(directives, list):
        raise InvalidEmf("_aws.CloudWatchMetrics must be an array of metric directives")
    found: list[Point] = []
    for directive in directives:
        found += _directive(document, directive, timestamp / 1000)
    return found


def _directive(document: Mapping[str, Any], directive: Any, timestamp: float) -> list[Point]:
    if not isinstance(directive, dict):
        raise InvalidEmf("a metric directive must be an object")
    namespace, sets, metrics = directive.get("Namespace"), directive.get("Dimensions"), directive.get("Metrics")
    if not isinstance(namespace, str) or not 1 <= len(namespace) <= 255:
        raise InvalidEmf("Namespace must be a string of 1..255 characters")
    if not isinstance(sets, list) or not all(isinstance(s, list) and len(s) <= MAX_DIMENSIONS for s in sets):
        raise InvalidEmf(f"Dimensions must be an array of arrays of at most {MAX_DIMENSIONS} keys")
    if not isinstance(metrics, list) or len(metrics) > 100:
        raise InvalidEmf("Metrics must be an array of at most 100 metric definitions")
    dimension_sets: list[tuple[tuple[str, str], ...]] = []
    for keys in sets or [[]]:
        pairs = [(key, document.get(key)) for key in keys]
        dimensions = tuple((k, v) for k, v in pairs if isinstance(k, str) and isinstance(v, str) and v)
        if len(dimensions) != len(pairs):
            raise InvalidEmf(f"dimensions {keys} must each name a member of the document holding a string")
        dimension_sets.append(dimensions)
    found = []
    for metric in metrics:
        name = metric.get("Name") if isinstance(metric, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidEmf("a metric definition must have a Name")
        unit = metric.get("Unit", "None")
        if unit not in UNITS:
            raise InvalidEmf(f"metric {name}: {unit!r} is no CloudWatch unit")
        value = document.get(name)
        given = value if isinstance(value, list) else [value]
        values = tuple(float(v) for v in given if _number(v))
        if not values or len(values) != len(given) or len(values) > MAX_METRIC_VALUES:
            raise InvalidEmf(f"metric {name} must name a member holding a number or an array of 1..100 numbers")
        found += [Point(namespace, name, dims, unit, timestamp, values) for dims in dimension_sets]
    return found


def metric_data(found: Iterable[Point]) -> dict[str, list[dict[str, Any]]]:
    """PutMetricData's MetricData per namespace: one datum per metric, dimensions, unit and whole second, with each
    distinct value once and how often it was seen (`Values`, `Counts`), split at MAX_VALUES values."""
    grouped: dict[tuple[str, str, tuple[tuple[str, str], ...], str, int], Counter[float]] = {}
    for point in found:
        key = (point.namespace, point.name, point.dimensions, point.unit, int(point.timestamp))
        grouped.setdefault(key, Counter()).update(point.values)
    data: dict[str, list[dict[str, Any]]] = {}
    for (namespace, name, dims, unit, second), counts in grouped.items():
        items = sorted(counts.items())
        for start in range(0, len(items), MAX_VALUES):
            chunk = items[start : start + MAX_VALUES]
            data.setdefault(namespace, []).append(
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": key, "Value": value} for key, value in dims],
                    "Timestamp": datetime.fromtimestamp(second, UTC),
                    "Unit": unit,
                    "Values": [value for value, _ in chunk],
                    "Counts": [float(count) for _, count in chunk],
                }
            )
    return data


@dataclass
class EmfExtractor:
    """Follows log files and extracts what their EMF lines say, as CloudWatch Logs does on ingestion."""

    tails: dict[Path, LogTail] = field(default_factory=dict)
    namespaces: set[str] = field(default_factory=set)  # every namespace extracted into so far
    extracted: int = 0  # values sent
    rejected: int = 0  # lines with `_aws` that are no valid EMF document

    def read(self, paths: Iterable[Path]) -> list[Point]:
        """The EMF values appended to `paths` since the last read."""
        found: list[Point] = []
        for path in paths:
            tail = self.tails.setdefault(path, LogTail(path))
            for line in tail.lines():
                if f'"{EMF_ROOT}"' not in line:  # most lines: no parse
                    continue
                try:
                    document = json.loads(line)
                    found += points(document) if isinstance(document, dict) else []
                except (ValueError, InvalidEmf):  # InvalidEmf is a ValueError; JSON errors too
                    self.rejected += 1
        return found

    def publish(self, cloudwatch: Any, paths: Iterable[Path]) -> int:
        """Read `paths` and PutMetricData what their EMF lines hold; returns the number of values sent."""
        sent = 0
        for namespace, data in metric_data(self.read(paths)).items():
            for start in range(0, len(data), MAX_DATUMS):
                cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start : start + MAX_DATUMS])
            self.namespaces.add(namespace)
            sent += sum(int(sum(d["Counts"])) for d in data)
        self.extracted += sent
        return sent


def apply_missing_data(cloudwatch: Any, namespaces: Iterable[str], now: datetime | None = None) -> list[str]:
    """CloudWatch's missing-data rule for the single-metric alarms on `namespaces`: an alarm whose last
    Period x EvaluationPeriods holds no datapoint takes the state its TreatMissingData gives (notBreaching: OK).
    ministack evaluates these alarms whenever data comes and leaves them alone without data. Returns the alarms
    whose state it changed (SetAlarmState, which runs their actions as an evaluation would)."""
    wanted = set(namespaces)
    if not wanted:
        return []
    now = now or datetime.now(UTC)
    changed = []
    for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmTypes=["MetricAlarm"]):
        for alarm in page["MetricAlarms"]:
            if alarm.get("Namespace") not in wanted or alarm.get("Metrics"):
                continue
            window = int(alarm["Period"]) * int(alarm["EvaluationPeriods"])
            datapoints = cloudwatch.get_metric_statistics(
                Namespace=alarm["Namespace"],
                MetricName=alarm["MetricName"],
                Dimensions=alarm.get("Dimensions", []),
                StartTime=now - timedelta(seconds=window),
                EndTime=now + timedelta(seconds=1),
                Period=window,
                Statistics=["SampleCount"],
            )["Datapoints"]
            treatment = alarm.get("TreatMissingData", "missing")
            state = MISSING_DATA_STATE.get(treatment)
            if datapoints or state is None or state == alarm["StateValue"]:
                continue
            cloudwatch.set_alarm_state(
                AlarmName=alarm["AlarmName"],
                StateValue=state,
                StateReason=f"no datapoint in the last {window} s (missing data treated as {treatment})",
            )
            changed.append(alarm["AlarmName"])
    return changed
