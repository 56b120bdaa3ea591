"""Show and redrive the order queue's dead-letter queue.

`list` peeks without consuming: it receives with a short visibility timeout, then makes every message it saw
visible again at once. `redrive` sends each message back to the order queue and deletes it from the DLQ only after
the send succeeded, so an interruption loses nothing (at worst a message is in both queues, and the worker's
conditional status update makes the second payment attempt a no-op).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from app import aws, contract
from ops import stack
from stackconfig import output_names

PEEK_VISIBILITY_SECONDS = 30  # long enough to page through the DLQ without seeing a message twice
EXCERPT_CHARS = 80
REDRIVE_MARK = "flashsale-redrive-run"  # message attribute: which redrive run sent this message back


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    order_id: str | None
    receive_count: int
    sent_at: str
    size: int
    excerpt: str
    reason: str


def order_id(body: str) -> str | None:
    """The order id in a body that may be raw JSON, an SNS envelope, or poison (not JSON at all)."""
    try:
        message = json.loads(body)
        if isinstance(message, dict) and message.get("Type") == "Notification":
            message = json.loads(message.get("Message", ""))
    except (json.JSONDecodeError, TypeError):
        return None
    value = message.get(contract.ORDER_KEY) if isinstance(message, dict) else None
    return str(value) if value is not None else None


def dead_letter(message: dict[str, Any]) -> DeadLetter:
    attributes = message.get("Attributes", {})
    body = message["Body"]
    found = order_id(body)
    sent = datetime.fromtimestamp(int(attributes.get("SentTimestamp", 0)) / 1000, tz=UTC)
    custom = message.get("MessageAttributes", {})
    reason = custom.get("reason", {}).get("StringValue") or (
        "not JSON or no order id" if found is None else "failed processing (see the worker's log)"
    )
    return DeadLetter(
        message_id=message["MessageId"],
        order_id=found,
        receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
        sent_at=sent.isoformat(timespec="seconds"),
        size=len(body.encode()),
        excerpt=body[:EXCERPT_CHARS].replace("\n", " "),
        reason=reason,
    )


def receive(sqs: Any, dlq_url: str, limit: int, visibility: int) -> Iterator[dict[str, Any]]:
    """Up to `limit` distinct messages, each hidden for `visibility` seconds once received."""
    seen: set[str] = set()
    while len(seen) < limit:
        batch = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=min(10, limit - len(seen)),
            VisibilityTimeout=visibility,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        if not fresh:
            return
        for message in fresh:
            seen.add(message["MessageId"])
            yield message


def peek(sqs: Any, dlq_url: str, limit: int) -> list[DeadLetter]:
    messages = list(receive(sqs, dlq_url, limit, PEEK_VISIBILITY_SECONDS))
    for start in range(0, len(messages), 10):  # visible again now, not in 30 s
        sqs.change_message_visibility_batch(
            QueueUrl=dlq_url,
            Entries=[
                {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                for n, m in enumerate(messages[start : start + 10])
            ],
        )
    return [dead_letter(m) for m in messages]


def redrive(sqs: Any, dlq_url: str, queue_url: str, limit: int) -> tuple[int, int, list[str]]:
    """Move up to `limit` messages back; returns (moved, came back during this run, failures).

    Each sent message is marked with this run's id, so a poison message that the workers dead-letter again while
    the redrive runs is recognised and left in the DLQ instead of going round in circles.
    """
    run_id = uuid.uuid4().hex
    moved, returned, failures = 0, 0, []
    for message in receive(sqs, dlq_url, limit, contract.ORDER_QUEUE.visibility_timeout_seconds):
        attributes = message.get("MessageAttributes", {})
        if attributes.get(REDRIVE_MARK, {}).get("StringValue") == run_id:
            returned += 1
            continue
        try:
            sqs.send_message(
                QueueUrl=queue_url,
                MessageBody=message["Body"],
                MessageAttributes=attributes | {REDRIVE_MARK: {"DataType": "String", "StringValue": run_id}},
            )
        except ClientError as error:  # leave it in the DLQ; it reappears after the visibility timeout
            failures.append(f"{message['MessageId']}: {error}")
            continue
        sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
        moved += 1
    return moved, returned, failures


def cmd_list(args: argparse.Namespace) -> int:
    if args.max < 1:
        raise stack.OpsError("--max must be at least 1")
    outputs = stack.resolve_outputs(args, (output_names.DLQ_URL,))
    letters = peek(aws.client("sqs"), outputs[output_names.DLQ_URL], args.max)
    lines = [
        f"{len(letters)} message(s) in the DLQ" + (f" (showing at most {args.max})" if len(letters) == args.max else "")
    ]
    for d in letters:
        lines.append(
            f"- order {d.order_id or '?'}  received {d.receive_count}x  sent {d.sent_at}  {d.size} B  "
            f"{d.reason}\n    {d.excerpt}"
        )
    stack.emit(args, [asdict(d) for d in letters], "\n".join(lines))
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    if args.max < 1:
        raise stack.OpsError("--max must be at least 1")
    outputs = stack.resolve_outputs(args, (output_names.DLQ_URL, output_names.QUEUE_URL))
    moved, returned, failures = redrive(
        aws.client("sqs"), outputs[output_names.DLQ_URL], outputs[output_names.QUEUE_URL], args.max
    )
    text = f"Moved {moved} message(s) back to the order queue."
    if returned:
        text += f" {returned} came straight back to the DLQ (poison: fix the cause, then redrive again)."
    if failures:
        text += f" {len(failures)} failed and stay in the DLQ:\n" + "\n".join(f"  {f}" for f in failures)
    stack.emit(args, {"moved": moved, "returned": returned, "failures": failures}, text)
    return 1 if failures else 0


COMMANDS = {"list": cmd_list, "redrive": cmd_redrive}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ops.dlq", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="peek at dead-lettered orders without consuming them")
    listing.add_argument("--max", type=int, default=50, help="messages to show at most (%(default)s)")
    stack.add_output_arguments(listing, (output_names.DLQ_URL,))
    moving = sub.add_parser("redrive", help="move dead-lettered orders back to the order queue")
    moving.add_argument("--max", type=int, default=1000, help="messages to move at most (%(default)s)")
    stack.add_output_arguments(moving, (output_names.DLQ_URL, output_names.QUEUE_URL))
    for command in (listing, moving):
        stack.add_json_argument(command)
    return p


def main(argv: list[str] | None = None) -> int:
    return stack.run(parser(), lambda args: COMMANDS[args.command](args), argv)


if __name__ == "__main__":
    sys.exit(main())
