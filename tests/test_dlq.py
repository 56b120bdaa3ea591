"""ops.dlq on ministack: list peeks without consuming; redrive moves messages back and loses none."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from dataclasses import dataclass

import pytest

from app import aws, contract
from stackconfig import output_names
from stackconfig.files import ROOT
from tests.helpers import System, system  # noqa: F401  (the fixture)


@dataclass(frozen=True)
class Queues:
    env: dict[str, str]
    queue_url: str
    dlq_url: str

    def count(self, url: str) -> int:
        attributes = aws.client("sqs").get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )
        return sum(int(v) for v in attributes["Attributes"].values())

    def dlq(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ops.dlq", *args, "--dlq-url", self.dlq_url],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def queues(system: System) -> Queues:  # noqa: F811
    """The order queue and its DLQ as the program deploys them (redrive after maxReceiveCount)."""
    return Queues(system.aws_env, system.outputs[output_names.QUEUE_URL], system.outputs[output_names.DLQ_URL])


def dead_letter(queues: Queues, body: str) -> None:
    """Fail a message maxReceiveCount times, as a crashing worker would, so SQS moves it to the DLQ."""
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=queues.queue_url, MessageBody=body)
    for _ in range(contract.ORDER_QUEUE.max_receive_count + 1):
        sqs.receive_message(QueueUrl=queues.queue_url, VisibilityTimeout=0, MaxNumberOfMessages=10, WaitTimeSeconds=0)


def test_list_shows_dead_letters_without_consuming_them(queues: Queues) -> None:
    dead_letter(queues, json.dumps({contract.ORDER_KEY: "order-1", "items": []}))
    dead_letter(queues, "not json at all")
    assert queues.count(queues.dlq_url) == 2
    done = queues.dlq("list")
    assert done.returncode == 0, done.stderr
    assert "2 message(s) in the DLQ" in done.stdout
    assert "order order-1" in done.stdout
    assert "not JSON or no order id" in done.stdout and "not json at all" in done.stdout
    again = json.loads(queues.dlq("list", "--json").stdout)  # still all there, and visible at once
    assert sorted(str(d["order_id"]) for d in again) == ["None", "order-1"]
    assert all(d["receive_count"] >= 1 for d in again)


def test_redrive_moves_every_message_back_to_the_order_queue(queues: Queues) -> None:
    sqs = aws.client("sqs")
    bodies = {json.dumps({contract.ORDER_KEY: f"order-{n}"}) for n in range(13)}
    for body in bodies:
        sqs.send_message(QueueUrl=queues.dlq_url, MessageBody=body)
    done = queues.dlq("redrive", "--queue-url", queues.queue_url)
    assert done.returncode == 0, done.stderr
    assert "Moved 13 message(s)" in done.stdout
    assert queues.count(queues.dlq_url) == 0
    received: set[str] = set()
    while len(received) < 13:
        batch = sqs.receive_message(QueueUrl=queues.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        assert batch, f"only {len(received)} of 13 redriven messages arrived"
        received |= {m["Body"] for m in batch}
    assert received == bodies


def test_redrive_respects_max(queues: Queues) -> None:
    for n in range(3):
        aws.client("sqs").send_message(QueueUrl=queues.dlq_url, MessageBody=f"m{n}")
    done = queues.dlq("redrive", "--queue-url", queues.queue_url, "--max", "2", "--json")
    assert json.loads(done.stdout) == {"moved": 2, "returned": 0, "failures": []}
    assert queues.count(queues.dlq_url) == 1


def test_redrive_needs_the_order_queue(queues: Queues) -> None:
    done = queues.dlq("redrive")
    assert done.returncode == 1
    assert "stack output `queueUrl` is missing: pass --queue-url" in done.stderr


def test_a_failed_send_leaves_the_message_in_the_dlq(queues: Queues) -> None:
    aws.client("sqs").send_message(QueueUrl=queues.dlq_url, MessageBody="m")
    done = queues.dlq("redrive", "--queue-url", queues.queue_url.rsplit("/", 1)[0] + "/missing")
    assert done.returncode == 1
    assert "1 failed and stay in the DLQ" in done.stdout
    assert queues.count(queues.dlq_url) == 1


def test_stack_outputs_need_the_pulumi_cli(aws_env: dict[str, str]) -> None:
    env = aws_env | {"PATH": "/nonexistent"}
    done = subprocess.run(
        [sys.executable, "-m", "ops.dlq", "list", "--stack", "dev"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "the pulumi CLI is not installed" in done.stderr


def test_redrive_does_not_loop_on_messages_that_come_straight_back(queues: Queues) -> None:
    """A queue whose consumer fails every message at once sends the redriven poison straight back to the DLQ."""
    sqs = aws.client("sqs")
    dlq_arn = sqs.get_queue_attributes(QueueUrl=queues.dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bounce_url = sqs.create_queue(
        QueueName="bounce",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})},
    )["QueueUrl"]
    stop = threading.Event()

    def failing_consumer() -> None:
        while not stop.is_set():
            sqs.receive_message(QueueUrl=bounce_url, VisibilityTimeout=0, WaitTimeSeconds=0)

    consumer = threading.Thread(target=failing_consumer)
    consumer.start()
    try:
        sqs.send_message(QueueUrl=queues.dlq_url, MessageBody="poison")
        done = queues.dlq("redrive", "--queue-url", bounce_url, "--json")
    finally:
        stop.set()
        consumer.join()
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["moved"] == 1, result  # not once per round trip
