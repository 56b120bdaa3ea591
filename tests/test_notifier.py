"""The alarm notifier: readable subject and body, and a real alarm on ministack delivered readable to people."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from app import alarm_catalogue, aws, contract
from app.notifier import forward, handler, render, should_notify
from bench.localaws.metric_math import evaluate_math_alarms
from stackconfig import output_names
from stackconfig.files import ROOT
from tests.helpers import System, system  # noqa: F401  (the fixture)
from tests.test_alarms import AlarmWiring, wire_alarms

# As CloudWatch on AWS sends it.
AWS_ALARM: dict[str, Any] = {
    "AlarmName": "flashsale-prod-queue-depth-critical",
    "AlarmDescription": "[CRITICAL] orders waiting in the order queue.",
    "AWSAccountId": "123456789012",
    "NewStateValue": "ALARM",
    "NewStateReason": "Threshold Crossed: 1 out of the last 1 datapoints [5432.0 (25/11/26 13:28:00)] was greater "
    "than the threshold (5000.0) (minimum 1 datapoint for OK -> ALARM transition).",
    "StateChangeTime": "2026-11-25T13:28:01.123+0000",
    "Region": "US West (Oregon)",
    "OldStateValue": "OK",
    "Trigger": {
        "MetricName": "ApproximateNumberOfMessagesVisible",
        "Namespace": "AWS/SQS",
        "Statistic": "MAXIMUM",
        "Period": 60,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": 5000.0,
        "Dimensions": [{"value": "flashsale-prod-orders", "name": "QueueName"}],
    },
}


def test_render_says_which_alarm_what_it_measures_value_threshold_and_what_to_do() -> None:
    subject, body = render(AWS_ALARM)
    assert subject.startswith("[CRITICAL] ALARM: flashsale-prod-queue-depth-critical")
    assert len(subject) < 100 and subject.isascii() and "\n" not in subject
    assert "What it measures: orders waiting in the order queue" in body
    assert "QueueName=flashsale-prod-orders" in body
    assert "Current value:    5,432" in body
    assert "Threshold:        > 5,000" in body
    assert "OK -> ALARM at 2026-11-25T13:28:01.123+0000" in body
    assert "ops.prescale" in body  # the catalogue's action for this alarm
    assert "{" not in body.split("Reason:")[0]  # not raw JSON


def test_render_recovery_and_unknown_alarms() -> None:
    subject, body = render(AWS_ALARM | {"NewStateValue": "OK", "OldStateValue": "ALARM"})
    assert subject.startswith("[RESOLVED] flashsale-prod-queue-depth-critical is OK again")
    subject, body = render({"AlarmName": "x" * 150, "NewStateValue": "ALARM", "NewStateReason": "manual"})
    assert len(subject) == 99 and subject.endswith("...")
    assert "Current value:    not stated" in body
    assert "CloudWatch console" in body


def test_render_the_buyers_wait_p95_as_ministack_sends_it() -> None:
    """ministack's message of a percentile alarm has a default basic Statistic and no ExtendedStatistic: the page
    still says p95, and the wait in seconds."""
    message: dict[str, Any] = {
        "AlarmName": "flashsale-flashsale-buyer-wait-p95",
        "NewStateValue": "ALARM",
        "OldStateValue": "OK",
        "NewStateReason": "Threshold Crossed: p95 41.5 GreaterThanThreshold 30.0",
        "Trigger": {
            "MetricName": "BuyerWait",
            "Namespace": "Flashsale",
            "Statistic": "Average",
            "Period": 60,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 30.0,
            "Dimensions": [{"Name": "Stack", "Value": "flashsale"}, {"Name": "Region", "Value": "us-west-2"}],
        },
    }
    subject, body = render(message)
    assert subject.startswith("[WARNING] ALARM: flashsale-flashsale-buyer-wait-p95: seconds the slowest 5 %")
    assert "Flashsale BuyerWait, Stack=flashsale, Region=us-west-2; p95 over 60 s" in body
    assert "Current value:    41.50 s" in body and "Threshold:        > 30 s" in body
    assert "ops.prescale" in body and "ops.dlq" in body  # the catalogue's what-to-do
    aws_message = message | {"Trigger": message["Trigger"] | {"ExtendedStatistic": "p95", "Statistic": None}}
    assert "; p95 over 60 s" in render(aws_message)[1]


def test_first_ok_is_not_worth_a_message() -> None:
    assert not should_notify(AWS_ALARM | {"NewStateValue": "OK", "OldStateValue": "INSUFFICIENT_DATA"})
    assert should_notify(AWS_ALARM)


@pytest.fixture
def wiring(system: System) -> AlarmWiring:  # noqa: F811
    return wire_alarms(system)


def test_forward_unwraps_sns_envelopes_and_passes_non_alarms_on(wiring: AlarmWiring) -> None:
    sns = aws.client("sns")
    envelope = json.dumps({"Type": "Notification", "Message": json.dumps(AWS_ALARM)})
    assert forward(sns, wiring.alerts_topic, envelope)
    assert forward(sns, wiring.alerts_topic, "plain words", subject="hello")
    # A test alert published to the alarm topic reaches the relay's queue in an envelope: passed on as it was sent.
    assert forward(
        sns,
        wiring.alerts_topic,
        json.dumps({"Type": "Notification", "Subject": "[TEST] check", "Message": "no action needed"}),
    )
    alerts = wiring.inbox()
    assert alerts[0]["subject"].startswith("[CRITICAL] ALARM:")
    assert alerts[1] == {"subject": "hello", "body": "plain words"}
    assert alerts[2] == {"subject": "[TEST] check", "body": "no action needed"}


def test_lambda_handler_publishes_readable_alerts(wiring: AlarmWiring, monkeypatch: Any) -> None:
    monkeypatch.setenv(contract.ENV_ALERTS_TOPIC_ARN, wiring.alerts_topic)
    event = {"Records": [{"Sns": {"Subject": 'ALARM: "x" in us-west-2', "Message": json.dumps(AWS_ALARM)}}]}
    assert handler(event, None) == {"received": 1, "sent": 1}
    [alert] = wiring.inbox()
    assert alert["subject"] == render(AWS_ALARM)[0]


def test_a_real_alarm_over_its_threshold_reaches_people_readable(wiring: AlarmWiring) -> None:
    aws.client("cloudwatch").put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {"MetricName": "ApproximateNumberOfMessagesVisible", "Dimensions": wiring.queue_dimensions, "Value": 1500}
        ],
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.localaws.relay",
            "--queue-url",
            wiring.alarm_events_url,
            "--alerts-topic-arn",
            wiring.alerts_topic,
            "--once",
            "--wait",
            "2",
        ],
        cwd=ROOT,
        env=wiring.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    alerts = {a["subject"].split(":")[1].strip(): a for a in wiring.inbox()}
    # 1,500 crosses the warning (1,000) but not the critical (5,000) threshold, whose first OK is dropped. (ministack
    # matches alarms to metrics without their dimensions, so the DLQ alarm fires as well; AWS would not.)
    warning = alarm_catalogue.alarm_name(wiring.prefix, "queue_depth_warning")
    assert warning in alerts and alarm_catalogue.alarm_name(wiring.prefix, "queue_depth_critical") not in alerts
    assert alerts[warning]["subject"] == f"[WARNING] ALARM: {warning}: orders waiting in the order queue"
    body = alerts[warning]["body"]
    assert "Current value:    1,500" in body and "Threshold:        > 1,000" in body
    assert "python -m ops.capacity" in body
    leftover = aws.client("sqs").get_queue_attributes(
        QueueUrl=wiring.alarm_events_url, AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert leftover["Attributes"]["ApproximateNumberOfMessages"] == "0"


def test_cli_needs_its_queue_and_topic() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.localaws.relay", "--once"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin"},
    )
    assert done.returncode == 2
    assert "--queue-url and --alerts-topic-arn" in done.stderr


def test_an_expected_wait_page_says_the_wait_and_the_tasks_to_add(wiring: AlarmWiring, system: System) -> None:  # noqa: F811
    """The deployed expected-wait alarms (metric math, evaluated locally as CloudWatch would) fire on the queue's
    depth and the worker service's running tasks, and the notifier, run with the Lambda's environment as deployed,
    reads the worker service to say how many tasks bring the wait back to the acceptable latency."""
    outputs = system.outputs
    cloudwatch = aws.client("cloudwatch")
    cluster, service = outputs[output_names.CLUSTER_NAME], outputs[output_names.WORKER_SERVICE_NAME]
    # moto counts a service's running tasks only from an UpdateService on; on AWS one task of the normal stack runs.
    aws.client("ecs").update_service(cluster=cluster, service=service, desiredCount=1)
    cloudwatch.put_metric_data(
        Namespace="AWS/SQS",
        MetricData=[
            {"MetricName": "ApproximateNumberOfMessagesVisible", "Dimensions": wiring.queue_dimensions, "Value": 10_000}
        ],
    )
    cloudwatch.put_metric_data(
        Namespace="ECS/ContainerInsights",
        MetricData=[
            {
                "MetricName": "RunningTaskCount",
                "Value": 1,
                "Dimensions": [{"Name": "ClusterName", "Value": cluster}, {"Name": "ServiceName", "Value": service}],
            }
        ],
    )
    changed = evaluate_math_alarms(cloudwatch, system.deployment.math_alarms)
    critical = alarm_catalogue.alarm_name(wiring.prefix, "expected_wait_critical")
    assert sorted(changed) == sorted([alarm_catalogue.alarm_name(wiring.prefix, "expected_wait_warning"), critical])
    (relay,) = system.deployment.relays
    done = subprocess.run(
        [sys.executable, "-m", "bench.localaws.relay", "--queue-url", relay.queue_url, "--once", "--wait", "2"],
        cwd=ROOT,
        env={**wiring.env, **relay.environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    alerts = {a["subject"].split(":")[1].strip(): a for a in wiring.inbox()}
    body = alerts[critical]["body"]
    # 10,000 waiting x 0.3 s / (1 task x 20 workers) = 150 s; twice the normal stack's 60 s is the critical threshold.
    assert "Current value:    150 s" in body and "Threshold:        > 120 s" in body
    assert "Tasks to add:     2 (1 running; 3 bring the wait to 60 s: `python -m ops.prescale --tasks 3`)" in body


class ChatWebhook:
    """A chat tool's incoming webhook on 127.0.0.1: records each JSON POST and answers `status`."""

    def __init__(self, status: int = 200) -> None:
        posts: list[dict[str, Any]] = []
        self.posts = posts

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                length = int(self.headers["Content-Length"])
                posts.append(
                    {"content_type": self.headers["Content-Type"], "json": json.loads(self.rfile.read(length))}
                )
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T0/B0/secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def chat() -> Iterator[ChatWebhook]:
    webhook = ChatWebhook()
    yield webhook
    webhook.close()


def test_the_lambda_posts_each_alert_to_the_chat_webhook(
    wiring: AlarmWiring, chat: ChatWebhook, monkeypatch: Any
) -> None:
    monkeypatch.setenv(contract.ENV_ALERTS_TOPIC_ARN, wiring.alerts_topic)
    # As deployed: the function's configuration names the secret, the URL is read from it at run time.
    secret = aws.client("secretsmanager").create_secret(Name="flashsale-webhook", SecretString=chat.url)["ARN"]
    monkeypatch.setenv(contract.ENV_ALERT_WEBHOOK_SECRET_ARN, secret)
    event = {"Records": [{"Sns": {"Subject": "x", "Message": json.dumps(AWS_ALARM)}}]}
    assert handler(event, None) == {"received": 1, "sent": 1}
    [post] = chat.posts
    subject, body = render(AWS_ALARM)
    assert post == {"content_type": "application/json", "json": {"text": f"{subject}\n\n{body}"}}
    assert len(wiring.inbox()) == 1  # and the e-mail alert went out as before


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/unreachable", "not a url"])
def test_a_failing_webhook_is_logged_not_fatal(wiring: AlarmWiring, url: str, capsys: Any) -> None:
    failing = ChatWebhook(status=500)
    try:
        for target in (url, failing.url):
            assert forward(aws.client("sns"), wiring.alerts_topic, json.dumps(AWS_ALARM), webhook_url=target)
    finally:
        failing.close()
    assert len(wiring.inbox()) == 2
    err = capsys.readouterr().err
    assert err.count("chat webhook post failed") == 2 and "HTTP 500" in err and "Traceback" not in err
