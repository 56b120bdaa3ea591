"""One structured line per event: JSON that machines parse and whose `msg` reads like the report's logs.

A line may also carry a metric in CloudWatch's Embedded Metric Format (`EmbeddedMetric`): CloudWatch Logs extracts
the value from the line as it ingests it (the awslogs driver ships every line of a task to its log group), so a metric
costs a few bytes of log instead of a PutMetricData call on the hot path.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from typing import Any

EMF_ROOT = "_aws"  # the member that makes a JSON log event an EMF document


def event(name: str, message: str, *, level: str = "info", **fields: Any) -> None:
    """Write one event line to stdout, e.g. msg="[WORKER-7] Processing order <id>" with event="processing"."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    record = {"ts": stamp, "level": level, "msg": message, "event": name, **fields}
    sys.stdout.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
    sys.stdout.flush()


class EmbeddedMetric:
    """One metric with fixed dimensions, written into event lines in the Embedded Metric Format (EMF).

    `members(value, at)` are the members to add to an event line (`logs.event(..., **metric.members(v, t))`): the
    `_aws` metadata (the timestamp in epoch milliseconds, and one metric directive naming the namespace, the one
    dimension set and the metric with its unit), the dimensions' values and the metric's value as top-level members,
    as the EMF specification lays a document out. The directive is built once; a line costs one small dict.
    """

    def __init__(self, *, namespace: str, name: str, unit: str, dimensions: Mapping[str, str]) -> None:
        empty = [key for key, value in dimensions.items() if not value]
        if empty:
            raise ValueError(f"metric {namespace}/{name}: dimension {', '.join(empty)} has no value")
        self.namespace = namespace
        self.name = name
        self.unit = unit
        self.dimensions = dict(dimensions)
        self._directives = [
            {"Namespace": namespace, "Dimensions": [list(self.dimensions)], "Metrics": [{"Name": name, "Unit": unit}]}
        ]

    def members(self, value: float, at: float) -> dict[str, Any]:
        """The EMF members for `value` observed at `at` (epoch seconds)."""
        return {
            EMF_ROOT: {"Timestamp": int(at * 1000), "CloudWatchMetrics": self._directives},
            **self.dimensions,
            self.name: value,
        }
