"""LOCAL RUNTIME ONLY: publish the order queue's and DLQ's AWS/SQS metrics, so the real alarms evaluate locally.

On AWS, SQS publishes these metrics itself: do NOT run this against AWS. The local emulator (ministack) emits no
AWS/SQS metrics, so without this loop the queue alarms would never leave INSUFFICIENT_DATA.

Every --interval seconds it reads each queue's ApproximateNumberOfMessagesVisible / NotVisible (exact in the
emulator) and PutMetricData's them, plus ApproximateAgeOfOldestMessage, into AWS/SQS with the QueueName dimension.

The age is an estimate: SQS reports it only as a metric, and reading a message's SentTimestamp would mean receiving
it, which counts towards maxReceiveCount and can dead-letter a good order. So the age published is the time since
this loop last saw no waiting (visible) message: every message waiting now arrived after that moment, so it is an
upper bound of the oldest waiting message's age (in-flight messages, being paid for now, are not counted), and
it is 0 on the first sample. It overestimates when the queue churns without ever being empty at a sample.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from app import aws, contract
from ops import stack

NAMESPACE = "AWS/SQS"
COUNTS = ("ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible")
# GetQueueAttributes names for the metrics of COUNTS
ATTRIBUTES = {"ApproximateNumberOfMessagesVisible": "ApproximateNumberOfMessages",
              "ApproximateNumberOfMessagesNotVisible": "ApproximateNumberOfMessagesNotVisible"}
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
        return Sample(queue_name=queue_name(self.url), visible=visible, not_visible=int(found[ATTRIBUTES[COUNTS[1]]]),
                      oldest_age_seconds=round(now - self.last_empty, 3))


def metric_data(sample: Sample, timestamp: datetime) -> list[dict[str, Any]]:
    dimensions = [{"Name": "QueueName", "Value": sample.queue_name}]
    values = {COUNTS[0]: (sample.visible, "Count"), COUNTS[1]: (sample.not_visible, "Count"),
              AGE: (sample.oldest_age_seconds, "Seconds")}
    return [{"MetricName": name, "Dimensions": dimensions, "Timestamp": timestamp, "Value": float(value),
             "Unit": unit} for name, (value, unit) in values.items()]


def publish(sqs: Any, cloudwatch: Any, samplers: list[QueueSampler]) -> list[Sample]:
    """Sample every queue and publish the metrics in one PutMetricData call."""
    now = time.monotonic()
    samples = [sampler.sample(sqs, now) for sampler in samplers]
    timestamp = datetime.now(timezone.utc)
    cloudwatch.put_metric_data(Namespace=NAMESPACE,
                               MetricData=[d for sample in samples for d in metric_data(sample, timestamp)])
    return samples


def describe(samples: list[Sample]) -> str:
    at = datetime.now().strftime("%H:%M:%S")
    return "\n".join(f"{at} {s.queue_name}: {s.visible} waiting, {s.not_visible} in flight, "
                     f"oldest waiting ~{s.oldest_age_seconds:.0f} s" for s in samples)


def command(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise stack.OpsError("--interval must be positive")
    outputs = stack.resolve_outputs(args, (contract.OUTPUT_QUEUE_URL, contract.OUTPUT_DLQ_URL))
    samplers = [QueueSampler(outputs[contract.OUTPUT_QUEUE_URL]), QueueSampler(outputs[contract.OUTPUT_DLQ_URL])]
    sqs, cloudwatch = aws.client("sqs"), aws.client("cloudwatch")
    while True:
        samples = publish(sqs, cloudwatch, samplers)
        stack.emit(args, [asdict(s) for s in samples], describe(samples))
        if args.once:
            return 0
        sys.stdout.flush()
        time.sleep(args.interval)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ops.queue_metrics", description=__doc__.split("\n\n")[0],
                                epilog="On AWS, SQS publishes these metrics itself: this is for the local emulator. "
                                       "ApproximateAgeOfOldestMessage is an upper-bound estimate (see the module "
                                       "docstring).")
    p.add_argument("--interval", type=float, default=10, help="seconds between samples (%(default)s)")
    p.add_argument("--once", action="store_true", help="publish one sample and exit")
    stack.add_output_arguments(p, (contract.OUTPUT_QUEUE_URL, contract.OUTPUT_DLQ_URL))
    stack.add_json_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    return stack.run(parser(), command, argv)


if __name__ == "__main__":
    sys.exit(main())
