"""LOCAL RUNTIME ONLY: publish the queues' AWS/SQS metrics, so the real alarms evaluate locally.

On AWS, SQS publishes these metrics itself. The local emulator (ministack) emits no AWS/SQS metrics, so without this
feeder the queue alarms would never leave INSUFFICIENT_DATA; the local runtime (`bench.localaws.system`) runs it every
FEED_SECONDS for every queue the program deployed.

Each round it reads each queue's ApproximateNumberOfMessagesVisible / NotVisible (exact in the
emulator) and PutMetricData's them, plus ApproximateAgeOfOldestMessage, into AWS/SQS with the QueueName dimension.

The age is an estimate: SQS reports it only as a metric, and reading a message's SentTimestamp would mean receiving
it, which counts towards maxReceiveCount and can dead-letter a good order. So the age published is the time since
this loop last saw no waiting (visible) message: every message waiting now arrived after that moment, so it is an
upper bound of the oldest waiting message's age (in-flight messages, being paid for now, are not counted), and
it is 0 on the first sample. It overestimates when the queue churns without ever being empty at a sample.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

NAMESPACE = "AWS/SQS"
FEED_SECONDS = 10.0  # how often the local runtime publishes (SQS publishes every minute, at 1-minute resolution)
COUNTS = ("ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible")
# GetQueueAttributes names for the metrics of COUNTS
ATTRIBUTES = {
    "ApproximateNumberOfMessagesVisible": "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible": "ApproximateNumberOfMessagesNotVisible",
}
AGE = "ApproximateAgeOfOldestMessage"


@dataclass(frozen=True)
class Sample:
    queue_name: str
    visible: int
    not_visible: int
    oldest_age_seconds: float


def queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class QueueSampler:
    """One queue's sampler; remembers when it last saw the queue without waiting messages."""

    url: str
    last_empty: float | None = None

    def sample(self, sqs: Any, now: float) -> Sample:
        found = sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=list(ATTRIBUTES.values()))["Attributes"]
        visible = int(found[ATTRIBUTES[COUNTS[0]]])
        if visible == 0 or self.last_empty is None:
            self.last_empty = now
        return Sample(
            queue_name=queue_name(self.url),
            visible=visible,
            not_visible=int(found[ATTRIBUTES[COUNTS[1]]]),
            oldest_age_seconds=round(now - self.last_empty, 3),
        )


def metric_data(sample: Sample, timestamp: datetime) -> list[dict[str, Any]]:
    dimensions = [{"Name": "QueueName", "Value": sample.queue_name}]
    values = {
        COUNTS[0]: (sample.visible, "Count"),
        COUNTS[1]: (sample.not_visible, "Count"),
        AGE: (sample.oldest_age_seconds, "Seconds"),
    }
    return [
        {"MetricName": name, "Dimensions": dimensions, "Timestamp": timestamp, "Value": float(value), "Unit": unit}
        for name, (value, unit) in values.items()
    ]


def publish(sqs: Any, cloudwatch: Any, samplers: list[QueueSampler]) -> list[Sample]:
    """Sample every queue and publish the metrics in one PutMetricData call."""
    now = time.monotonic()
    samples = [sampler.sample(sqs, now) for sampler in samplers]
    timestamp = datetime.now(UTC)
    cloudwatch.put_metric_data(
        Namespace=NAMESPACE, MetricData=[d for sample in samples for d in metric_data(sample, timestamp)]
    )
    return samples


CONTAINER_INSIGHTS = "ECS/ContainerInsights"


def publish_task_counts(cloudwatch: Any, running: dict[tuple[str, str], int]) -> None:
    """Container Insights' RunningTaskCount per (cluster name, service name): what the worker scaling and the
    expected-wait alarms divide by. On AWS, Container Insights publishes it (the clusters enable it)."""
    timestamp = datetime.now(UTC)
    cloudwatch.put_metric_data(
        Namespace=CONTAINER_INSIGHTS,
        MetricData=[
            {
                "MetricName": "RunningTaskCount",
                "Timestamp": timestamp,
                "Value": float(count),
                "Unit": "Count",
                "Dimensions": [{"Name": "ClusterName", "Value": cluster}, {"Name": "ServiceName", "Value": service}],
            }
            for (cluster, service), count in running.items()
        ],
    )
