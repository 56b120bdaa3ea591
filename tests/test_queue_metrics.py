"""local.queue_metrics on ministack: the queue's numbers land in AWS/SQS (tests/test_local.py: and the alarms fire)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app import aws
from bench.localaws.queue_metrics import QueueSampler, publish


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


def test_publish_lands_each_queues_numbers_in_aws_sqs(aws_env: dict[str, str]) -> None:
    queue_url, dlq_url = make_queue("orders"), make_queue("orders-dlq")
    sqs = aws.client("sqs")
    for n in range(3):
        sqs.send_message(QueueUrl=queue_url, MessageBody=str(n))
    cloudwatch = aws.client("cloudwatch")
    samples = publish(sqs, cloudwatch, [QueueSampler(queue_url), QueueSampler(dlq_url)])
    assert [(s.queue_name, s.visible) for s in samples] == [("orders", 3), ("orders-dlq", 0)]
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Statistics=["Maximum"],
        Period=60,
        Dimensions=[{"Name": "QueueName", "Value": "orders"}],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=1),
    )["Datapoints"]
    assert max(p["Maximum"] for p in points) == 3
