"""The alarm notifier: turns CloudWatch's raw alarm JSON into an e-mail people can act on.

Alarm actions publish CloudWatch's JSON to the alarm topic; people subscribe to the alerts topic. In between,
`handler` (the AWS Lambda entry, subscribed to the alarm topic; on one machine, the bench's relay
`bench.localaws.relay` calls `forward` the same way) renders each message with `render` and publishes the readable
version to the alerts topic. Transitions from INSUFFICIENT_DATA to OK are dropped: nothing happened.

With a chat webhook configured (Slack- or Teams-style incoming webhook: a JSON POST of `{"text": ...}`), the notifier
also posts each alert there itself: an SNS HTTPS subscription would wait forever for a confirmation that a chat
webhook never sends. A failed post is logged, never fatal (the e-mail alert is already out). The Lambda reads the
webhook URL from the Secrets Manager secret its configuration names (a URL in an environment variable would be
readable by anyone who may read the function's configuration).

It ships in a Lambda, so it imports only boto3 and the standard library (so do the app modules it ships with,
`components.alerts.NOTIFIER`).
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app import alarm_catalogue, aws, contract, expected_wait

SUBJECT_LIMIT = 99  # SNS: ASCII, under 100 characters, no line breaks
WEBHOOK_TIMEOUT_SECONDS = 5  # well inside the Lambda's 10 s
COMPARISONS = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}
# CloudWatch: "... datapoints [1500.0 (25/11/26 13:28:00)] was greater ..."; ministack: "Threshold Crossed: Maximum
# 1500.0 ..."
_VALUE_PATTERNS = (
    re.compile(r"\[\s*(-?[0-9.]+(?:[eE][-+]?\d+)?)"),
    re.compile(r"Threshold Crossed: \w+ (-?[0-9.]+(?:[eE][-+]?\d+)?) "),
)


def spec_for(alarm_name: str) -> alarm_catalogue.AlarmSpec | None:
    """The catalogue entry whose key is the alarm name's suffix (names are `alarm_catalogue.alarm_name(prefix,
    key)`)."""
    return next((s for s in alarm_catalogue.ALARMS if alarm_name.endswith(alarm_catalogue.alarm_name("", s.key))), None)


def current_value(reason: str) -> float | None:
    for pattern in _VALUE_PATTERNS:
        found = pattern.search(reason)
        if found:
            return float(found.group(1))
    return None


def number(value: float | None) -> str:
    if value is None:
        return "not stated (see the reason below)"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def _ascii_line(text: str) -> str:
    clean = "".join(c if 32 <= ord(c) < 127 else "?" for c in text)
    return clean if len(clean) <= SUBJECT_LIMIT else clean[: SUBJECT_LIMIT - 3] + "..."


def tasks_to_add(wait_seconds: float) -> str | None:
    """For an expected-wait page: how many worker tasks bring the wait back to the acceptable latency, from the
    worker service's running tasks (the wait falls in proportion to the tasks). None when the stack did not say which
    service or the lookup fails: the page then goes out without it."""
    cluster, service = os.environ.get(contract.ENV_WORKER_CLUSTER), os.environ.get(contract.ENV_WORKER_SERVICE)
    try:
        latency = float(os.environ.get(contract.ENV_ACCEPTABLE_LATENCY, ""))
    except ValueError:
        return None
    if not (cluster and service and latency > 0):
        return None
    try:
        found = aws.client("ecs").describe_services(cluster=cluster, services=[service])["services"]
    except (BotoCoreError, ClientError):
        return None
    if not found:
        return None
    running = int(found[0]["runningCount"])
    needed = expected_wait.tasks_for(wait_seconds, running, latency)
    add = max(0, needed - running)
    return (
        f"{add} ({running} running; {needed} bring the wait to {latency:g} s: "
        f"`python -m ops.prescale --tasks {needed}`)"
    )


def render(alarm_message: dict[str, Any], advice: Callable[[float], str | None] = lambda wait: None) -> tuple[str, str]:
    """(subject, body) for one CloudWatch alarm state change, for people rather than machines. `advice` turns an
    expected wait into the tasks to add (`tasks_to_add` where the notifier runs; nothing in tests by default)."""
    name = str(alarm_message.get("AlarmName", "unnamed alarm"))
    state = str(alarm_message.get("NewStateValue", "UNKNOWN"))
    old_state = str(alarm_message.get("OldStateValue", "UNKNOWN"))
    reason = str(alarm_message.get("NewStateReason", ""))
    trigger = alarm_message.get("Trigger") or {}
    spec = spec_for(name)
    severity = spec.severity if spec else "ALARM"
    measures = spec.measures if spec else str(alarm_message.get("AlarmDescription") or trigger.get("MetricName", "?"))
    action = spec.action if spec else "See the alarm's description and metric in the CloudWatch console."

    if state == "OK":
        subject = f"[RESOLVED] {name} is OK again: {measures}"
    else:
        subject = f"[{severity}] {state}: {name}: {measures}"

    dimensions = ", ".join(
        f"{d.get('name') or d.get('Name')}={d.get('value') or d.get('Value')}" for d in trigger.get("Dimensions") or []
    )
    metric = f"{trigger.get('Namespace', '?')} {trigger.get('MetricName', '?')}" + (
        f", {dimensions}" if dimensions else ""
    )
    comparison = COMPARISONS.get(str(trigger.get("ComparisonOperator")), str(trigger.get("ComparisonOperator", "")))
    # A percentile alarm's statistic is its ExtendedStatistic; ministack's message has only a default Statistic
    # (Average) for it, so for a catalogue percentile alarm the catalogue's statistic wins over a basic one.
    basic = spec.statistic if spec is not None and spec.percentile else trigger.get("Statistic")
    statistic = trigger.get("ExtendedStatistic") or basic or "?"
    value = current_value(reason)
    wait = spec is not None and spec.subject is alarm_catalogue.AlarmSubject.EXPECTED_WAIT
    how = expected_wait.FORMULA if wait else f"{metric}; {statistic} over {trigger.get('Period', '?')} s"
    unit = " s" if spec is not None and spec.per_latency else ""  # thresholds in acceptable latencies are seconds
    sizing = advice(value) if wait and value is not None and state == "ALARM" else None
    body = "\n".join(
        [
            f"{state}: {name} ({severity})",
            "",
            f"What it measures: {measures}",
            f"                  ({how})",
            f"Current value:    {number(value)}{unit if value is not None else ''}",
            f"Threshold:        {comparison} {number(trigger.get('Threshold'))}{unit}",
            *([f"Tasks to add:     {sizing}"] if sizing else []),
            f"State:            {old_state} -> {state} at {alarm_message.get('StateChangeTime', '?')}",
            f"Reason:           {reason or 'not given'}",
            "",
            "What to do:" if state != "OK" else "What to do: nothing; if you acted on the alarm, check that it held:",
            f"  {action}",
            "",
            f"Alarm {name} in {alarm_message.get('Region', '?')}, account {alarm_message.get('AWSAccountId', '?')}.",
        ]
    )
    return _ascii_line(subject), body


def should_notify(alarm_message: dict[str, Any]) -> bool:
    return not (
        alarm_message.get("NewStateValue") == "OK" and alarm_message.get("OldStateValue") == "INSUFFICIENT_DATA"
    )


def unwrap(text: str, subject: str | None = None) -> tuple[str, str | None]:
    """(message, subject) of a body that may be an SNS envelope (a queue subscribed without raw delivery)."""
    try:
        envelope = json.loads(text)
    except json.JSONDecodeError:
        return text, subject
    if isinstance(envelope, dict) and envelope.get("Type") == "Notification" and "Message" in envelope:
        return unwrap(str(envelope["Message"]), envelope.get("Subject") or subject)
    return text, subject


def parse(text: str) -> dict[str, Any] | None:
    """The alarm JSON in a message body: raw delivery, or wrapped in an SNS envelope. None when it is neither."""
    try:
        message = json.loads(unwrap(text)[0])
    except json.JSONDecodeError:
        return None
    return message if isinstance(message, dict) and "AlarmName" in message else None


def post_webhook(url: str, subject: str, body: str) -> bool:
    """POST the alert to a chat webhook as `{"text": ...}` (what Slack and Teams incoming webhooks take). A failure is
    logged and reported as False, never raised."""
    payload = json.dumps({"text": f"{subject}\n\n{body}"}).encode()
    try:
        request = urllib.request.Request(url, data=payload, method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
            if 200 <= response.status < 300:
                return True
            problem = f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        problem = f"HTTP {error.code}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        problem = str(getattr(error, "reason", error))
    print(
        f"notifier: chat webhook post failed ({problem}); the alert went to the alerts topic",
        file=sys.stderr,
        flush=True,
    )
    return False


def forward(
    sns: Any, topic_arn: str, text: str, subject: str | None = None, webhook_url: str | None = None
) -> str | None:
    """Publish the readable version of one message on the alarm topic (and post it to the chat webhook, if any);
    its subject, or None when dropped.

    A message that is not an alarm (a test alert, someone publishing by hand) is passed on with its own subject."""
    text, subject = unwrap(text, subject)
    message = parse(text)
    if message is None:  # not an alarm (someone published by hand): pass it on unchanged
        readable_subject, body = _ascii_line(subject or "Message on the alarm topic"), text
    elif should_notify(message):
        readable_subject, body = render(message, tasks_to_add)
    else:
        return None
    sns.publish(TopicArn=topic_arn, Subject=readable_subject, Message=body)
    if webhook_url:
        post_webhook(webhook_url, readable_subject, body)
    return readable_subject


def webhook_url_of(secret_arn: str | None) -> str | None:
    """The chat webhook URL held by the secret, if one is configured."""
    if not secret_arn:
        return None
    return str(aws.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"]) or None


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """AWS Lambda entry: the function is subscribed to the alarm topic."""
    sns = aws.client("sns")
    topic_arn = os.environ[contract.ENV_ALERTS_TOPIC_ARN]
    webhook_url = webhook_url_of(os.environ.get(contract.ENV_ALERT_WEBHOOK_SECRET_ARN))
    sent = sum(
        forward(sns, topic_arn, r["Sns"]["Message"], r["Sns"].get("Subject"), webhook_url) is not None
        for r in event.get("Records", [])
    )
    return {"received": len(event.get("Records", [])), "sent": sent}
