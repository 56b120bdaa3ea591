"""The order queue checks: a visibility timeout that outlasts a payment, the DLQ attached with the program's receive
count, retention long enough for both queues, and an empty DLQ."""

from __future__ import annotations

import json
import math
from typing import Final

from app import contract
from app.worker import EXTEND_AT_SHARE, PREFETCH_VISIBILITY_SHARE
from ops.preflight.live import FAIL, PASS, WARN, Live, Result
from planning import capacity
from stackconfig import output_names

# A payment must end before the worker extends its message's visibility, after waiting up to the prefetch share for a
# slot: a visibility timeout of this many payments needs no extension calls in the usual case (app.worker).
VISIBILITY_PAYMENTS: Final = 1 / (EXTEND_AT_SHARE - PREFETCH_VISIBILITY_SHARE)


def days(seconds: int) -> str:
    """Retention for people: 4 d, 14 d, or 60 s and 8.0 min below a day."""
    return f"{seconds / 86_400:g} d" if seconds >= 86_400 else capacity.duration(seconds)


def check_queue(live: Live) -> list[Result]:
    sqs = live.client("sqs")
    queue = sqs.get_queue_attributes(QueueUrl=live.outputs[output_names.QUEUE_URL], AttributeNames=["All"])[
        "Attributes"
    ]
    dlq = sqs.get_queue_attributes(QueueUrl=live.outputs[output_names.DLQ_URL], AttributeNames=["All"])["Attributes"]
    q, payment = contract.ORDER_QUEUE, float(live.outputs[output_names.PAYMENT_SECONDS])
    results = []

    visibility, enough = int(queue["VisibilityTimeout"]), payment * VISIBILITY_PAYMENTS
    status = FAIL if visibility <= payment else WARN if visibility < enough else PASS
    fix = (
        f"{live.pulumi_up} (the program sets {q.visibility_timeout_seconds} s)"
        if q.visibility_timeout_seconds >= enough
        else f"raise ORDER_QUEUE.visibility_timeout_seconds in app/contract.py to {math.ceil(enough)}, "
        f"or lower paymentSeconds, then {live.pulumi_up}"
    )
    results.append(
        Result(
            "queue: visibility timeout",
            status,
            f"{visibility} s",
            f"> {payment:g} s (one payment); >= {enough:g} s so that a payment ends before the worker must extend it",
            fix,
            "payments outlive the timeout: each needs an extension, and a stalled worker's orders are "
            "handed out again mid-payment"
            if status == FAIL
            else "",
        )
    )

    try:
        redrive = json.loads(queue.get("RedrivePolicy") or "{}")
    except json.JSONDecodeError:
        redrive = {}
    dlq_arn, target = dlq.get("QueueArn"), redrive.get("deadLetterTargetArn")
    receives = int(redrive.get("maxReceiveCount", 0))
    measured = (
        f"dead-letters to {str(target).rsplit(':', 1)[-1]} after {receives} receives" if target else "no redrive policy"
    )
    status = FAIL if target != dlq_arn or receives < 1 else WARN if receives != q.max_receive_count else PASS
    results.append(
        Result(
            "queue: DLQ attached",
            status,
            measured,
            f"dead-letters to {str(dlq_arn).rsplit(':', 1)[-1]} after {q.max_receive_count} receives",
            f"{live.pulumi_up} (the program attaches the DLQ)",
        )
    )

    kept, dead = int(queue["MessageRetentionPeriod"]), int(dlq["MessageRetentionPeriod"])
    ok = kept >= q.message_retention_seconds and dead >= max(kept, q.dlq_retention_seconds)
    results.append(
        Result(
            "queue: retention",
            PASS if ok else FAIL,
            f"orders {days(kept)}, DLQ {days(dead)}",
            f"orders >= {days(q.message_retention_seconds)}, DLQ >= the orders' and >= "
            f"{days(q.dlq_retention_seconds)} (a dead letter keeps its first enqueue time)",
            f"{live.pulumi_up} (the program sets {days(q.message_retention_seconds)} and "
            f"{days(q.dlq_retention_seconds)})",
        )
    )

    waiting = sum(
        int(dlq.get(key, 0))
        for key in (
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        )
    )
    results.append(
        Result(
            "queue: DLQ empty",
            PASS if waiting == 0 else WARN,
            f"{waiting} message(s) in the DLQ",
            "0",
            f"python -m ops.dlq list {live.source} (then fix the cause and python -m ops.dlq redrive {live.source})",
        )
    )
    return results
