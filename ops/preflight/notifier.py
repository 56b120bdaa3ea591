"""The notifier check (`--send-test-alert` only, since it reaches people): one clearly marked test alert through the
notifier, the Lambda on AWS, the local relay against the local system."""

from __future__ import annotations

import json
from typing import Final

from ops import alarms, stack
from ops.preflight.live import FAIL, PASS, Live, Result
from stackconfig import output_names

SENT_BY: Final = "python -m ops.preflight --send-test-alert"


def check_notifier(live: Live) -> list[Result]:
    """A dry-run alert through the notifier: on AWS the Lambda is invoked with an SNS event; locally (no emulator
    runs a Lambda) the message goes to the alarm topic, whose stand-in subscription the local relay reads."""
    subject, body = alarms.delivery_check(SENT_BY)
    name, expected = "notifier: test alert", "the notifier publishes 1 readable alert to the alerts topic"
    alarm_topic = live.outputs[output_names.ALARM_TOPIC_ARN]
    if live.local:
        message = live.client("sns").publish(TopicArn=alarm_topic, Subject=subject, Message=body)["MessageId"]
        return [
            Result(
                name,
                PASS,
                f"published {message} to the alarm topic",
                expected,
                note="local path: the local relay runs the notifier's module on it and publishes the alert "
                "(its log says `relayed: ...`); on AWS preflight invokes the Lambda",
            )
        ]
    function = live.outputs.get(output_names.NOTIFIER_FUNCTION_NAME)
    if not function:
        return [
            Result(
                name,
                FAIL,
                f"stack output {output_names.NOTIFIER_FUNCTION_NAME} missing",
                expected,
                f"{live.pulumi_up}, or pass {stack.flag(output_names.NOTIFIER_FUNCTION_NAME)}",
            )
        ]
    event = {
        "Records": [{"EventSource": "aws:sns", "Sns": {"TopicArn": alarm_topic, "Subject": subject, "Message": body}}]
    }
    answer = live.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event).encode())
    payload = answer["Payload"].read().decode(errors="replace")
    try:
        sent = json.loads(payload).get("sent") if not answer.get("FunctionError") else None
    except (json.JSONDecodeError, AttributeError):
        sent = None
    logs = f"aws logs tail /aws/lambda/{function} --since 10m (or the function's log group)"
    if sent == 1:
        return [
            Result(
                name,
                PASS,
                f"invoked {function}: sent 1",
                expected,
                note="AWS path: Lambda Invoke with a test SNS event; check the on-call received it",
            )
        ]
    return [
        Result(
            name,
            FAIL,
            f"invoked {function}: {answer.get('FunctionError') or 'answered'} {payload[:200]}",
            expected,
            logs,
            "AWS path: Lambda Invoke with a test SNS event",
        )
    ]
