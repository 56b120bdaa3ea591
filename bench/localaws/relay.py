"""LOCAL ONLY: the alarm notifier Lambda, invoked on one machine: poll a queue subscribed (raw delivery) to the alarm
topic and hand each message to the notifier's own `forward`, as Lambda would hand it to `handler`.

The emulators invoke no Lambda, so the local system runs this module as a process with the function's environment as
deployed (`python -m bench.localaws.relay --queue-url URL`). Each alert it published is one log line starting with
`RELAYED`, which the local system reads back as an `Alert`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app import aws, contract
from app.notifier import forward, webhook_url_of
from bench.localaws.emulators import emulator_client

RELAYED = "relayed: "  # the log line for an alert the relay published


@dataclass(frozen=True)
class Alert:
    """A readable alert the notifier published, as the local system saw it in the relay's log."""

    seen_at: float  # time.time() when read
    subject: str


def relay(sqs: Any, sns: Any, queue_url: str, topic_arn: str, wait_seconds: int, webhook_url: str | None = None) -> int:
    """One receive from the alarm-events queue; each message is deleted only after its alert was published."""
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds).get(
        "Messages", []
    )
    for message in messages:
        subject = forward(sns, topic_arn, message["Body"], webhook_url=webhook_url)
        print(f"{RELAYED}{subject}" if subject else "dropped: first OK after INSUFFICIENT_DATA", flush=True)
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return len(messages)


def stand_in_queue(endpoint: str | None, read_timeout: int) -> Any:
    """The SQS client that reads the stand-in queue: at `endpoint` with the emulators' keys, else from the
    environment."""
    if endpoint is None:
        return aws.client("sqs", read_timeout=read_timeout)
    region = os.environ.get("AWS_REGION", contract.AWS_REGION_DEFAULT)
    return emulator_client("sqs", endpoint, region, Config(read_timeout=read_timeout))


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.localaws.relay",
        description="Local system: relay alarm messages from "
        "a queue subscribed (raw delivery) to the alarm topic to the alerts topic, readable.",
    )
    p.add_argument(
        "--queue-url",
        default=os.environ.get(contract.ENV_ALARM_EVENTS_QUEUE_URL),
        help=f"alarm-events queue (default: ${contract.ENV_ALARM_EVENTS_QUEUE_URL})",
    )
    p.add_argument(
        "--alerts-topic-arn",
        default=os.environ.get(contract.ENV_ALERTS_TOPIC_ARN),
        help=f"where readable alerts go (default: ${contract.ENV_ALERTS_TOPIC_ARN})",
    )
    p.add_argument(
        "--webhook-url",
        default=os.environ.get(contract.ENV_ALERT_WEBHOOK_URL),
        help=f"also post each alert to this chat webhook (default: ${contract.ENV_ALERT_WEBHOOK_URL})",
    )
    p.add_argument(
        "--stand-in-endpoint",
        help="read the queue here with the emulators' own keys: it stands in for SNS invoking the function, which "
        "the function's role is not granted (default: the environment's endpoint and keys)",
    )
    p.add_argument("--once", action="store_true", help="relay what is waiting, then exit")
    p.add_argument(
        "--wait",
        type=int,
        default=contract.ORDER_QUEUE.receive_wait_time_seconds,
        help="long-poll seconds per receive (%(default)s)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not args.queue_url or not args.alerts_topic_arn:
        p.error("--queue-url and --alerts-topic-arn (or their environment variables) are required")
    sqs, sns = stand_in_queue(args.stand_in_endpoint, args.wait + 10), aws.client("sns")
    # The deployed function's configuration names the secret (the local system hands it on): read the URL as it does.
    try:
        webhook_url = args.webhook_url or webhook_url_of(os.environ.get(contract.ENV_ALERT_WEBHOOK_SECRET_ARN))
    except (ClientError, BotoCoreError) as error:
        print(f"{p.prog}: error: cannot read the webhook secret: {error}", file=sys.stderr, flush=True)
        return 1
    try:
        while True:
            try:
                handled = relay(sqs, sns, args.queue_url, args.alerts_topic_arn, args.wait, webhook_url)
            except (ClientError, BotoCoreError) as error:
                print(f"{p.prog}: error: {error}", file=sys.stderr, flush=True)
                if args.once:
                    return 1
                time.sleep(5)  # the emulator or AWS is briefly away: keep the relay alive
                continue
            if args.once and handled == 0:
                return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
