"""ops.queue_metrics on ministack: the queue's numbers land in AWS/SQS and the real alarms evaluate on them."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

from app import aws, contract
from ops.alarms import create_alarms
from ops.queue_metrics import QueueSampler
from tests.conftest import ROOT


def make_queue(name: str) -> str:
    return str(aws.client("sqs").create_queue(QueueName=name)["QueueUrl"])


def test_age_is_the_time_since_the_queue_last_had_nothing_waiting(aws_env: dict[str, str]) -> None:
    sqs = aws.client("sqs")
    url = make_queue("orders")
    sampler = QueueSampler(url)
    assert sampler.sample(sqs, now=100).oldest_age_seconds == 0
    sqs.send_message(QueueUrl=url, MessageBody="a")
    assert sampler.sample(sqs, now=130).oldest_age_seconds == 30
    second = sampler.sample(sqs, now=160)
    assert (second.visible, second.oldest_age_seconds) == (1, 60)
    [message] = sqs.receive_message(QueueUrl=url, VisibilityTimeout=60)["Messages"]
    in_flight = sampler.sample(sqs, now=170)  # being processed is not waiting
    assert (in_flight.visible, in_flight.not_visible, in_flight.oldest_age_seconds) == (0, 1, 0)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_cli_publishes_queue_metrics_that_drive_the_real_alarms(aws_env: dict[str, str]) -> None:
    queue_url, dlq_url = make_queue("orders"), make_queue("orders-dlq")
    sqs = aws.client("sqs")
    for n in range(3):
        sqs.send_message(QueueUrl=queue_url, MessageBody=str(n))
    low = dataclasses.replace(contract.ALARM_PROFILES["normal"], queue_depth_warning=2)
    topic = aws.client("sns").create_topic(Name="alarms")["TopicArn"]
    create_alarms(aws.client("cloudwatch"), prefix="t", thresholds=low, action_arns=[topic],
                  dimensions={"queue": [{"Name": "QueueName", "Value": "orders"}]})

    done = subprocess.run([sys.executable, "-m", "ops.queue_metrics", "--once", "--json", "--queue-url", queue_url,
                           "--dlq-url", dlq_url], cwd=ROOT, env=aws_env, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert [(s["queue_name"], s["visible"]) for s in json.loads(done.stdout)] == [("orders", 3), ("orders-dlq", 0)]

    cloudwatch = aws.client("cloudwatch")
    now = datetime.now(timezone.utc)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS", MetricName="ApproximateNumberOfMessagesVisible", Statistics=["Maximum"], Period=60,
        Dimensions=[{"Name": "QueueName", "Value": "orders"}], StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1))["Datapoints"]
    assert max(p["Maximum"] for p in points) == 3
    alarm = cloudwatch.describe_alarms(AlarmNames=[contract.alarm_name("t", "queue_depth_warning")])["MetricAlarms"][0]
    assert alarm["StateValue"] == "ALARM"


def test_cli_needs_both_queues(aws_env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "ops.queue_metrics", "--once", "--queue-url", "x"], cwd=ROOT,
                          env=aws_env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1
    assert "stack output `dlqUrl` is missing" in done.stderr
