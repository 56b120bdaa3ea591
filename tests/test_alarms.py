"""ops.alarms on ministack: create, apply a profile, read thresholds back, and check test-alert delivery."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from app import aws, contract
from ops.alarms import create_alarms
from tests.conftest import ROOT

PREFIX = "flashsale-test"
QUEUE_DIMENSIONS = [{"Name": "QueueName", "Value": "orders"}]
DLQ_DIMENSIONS = [{"Name": "QueueName", "Value": "orders-dlq"}]


@dataclass(frozen=True)
class AlarmWiring:
    """The local alarm path: alarms -> alarm topic -> alarm-events queue; alerts topic -> an inbox queue."""

    env: dict[str, str]
    alarm_topic: str
    alerts_topic: str
    alarm_events_url: str
    inbox_url: str
    names: list[str]

    def inbox(self, wait_seconds: int = 5) -> list[dict[str, Any]]:
        """Alerts delivered to people, as {subject, body} (the inbox queue gets SNS envelopes)."""
        sqs = aws.client("sqs", read_timeout=wait_seconds + 10)
        found = sqs.receive_message(QueueUrl=self.inbox_url, MaxNumberOfMessages=10,
                                    WaitTimeSeconds=wait_seconds).get("Messages", [])
        envelopes = [json.loads(m["Body"]) for m in found]
        return [{"subject": e.get("Subject"), "body": e["Message"]} for e in envelopes]


def subscribed_queue(topic_arn: str, name: str, *, raw: bool) -> str:
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=arn,
                                Attributes={"RawMessageDelivery": "true" if raw else "false"})
    return url


def wire_alarms(env: dict[str, str]) -> AlarmWiring:
    sns = aws.client("sns")
    alarm_topic = sns.create_topic(Name="alarms")["TopicArn"]
    alerts_topic = sns.create_topic(Name="alerts")["TopicArn"]
    names = create_alarms(aws.client("cloudwatch"), prefix=PREFIX,
                          dimensions={"queue": QUEUE_DIMENSIONS, "dlq": DLQ_DIMENSIONS},
                          thresholds=contract.ALARM_PROFILES["normal"], action_arns=[alarm_topic])
    return AlarmWiring(env=env, alarm_topic=alarm_topic, alerts_topic=alerts_topic,
                       alarm_events_url=subscribed_queue(alarm_topic, "alarm-events", raw=True),
                       inbox_url=subscribed_queue(alerts_topic, "inbox", raw=False), names=names)


@pytest.fixture
def wiring(aws_env: dict[str, str]) -> AlarmWiring:
    return wire_alarms(aws_env)


def alarms_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ops.alarms", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def thresholds() -> dict[str, float]:
    alarms = aws.client("cloudwatch").describe_alarms(AlarmNamePrefix=PREFIX)["MetricAlarms"]
    return {a["AlarmName"]: a["Threshold"] for a in alarms}


def test_create_alarms_puts_the_catalogue_for_the_given_subjects(wiring: AlarmWiring) -> None:
    queue_and_dlq = [s for s in contract.ALARMS if s.subject in ("queue", "dlq")]
    assert wiring.names == [contract.alarm_name(PREFIX, s.key) for s in queue_and_dlq]
    alarm = aws.client("cloudwatch").describe_alarms(
        AlarmNames=[contract.alarm_name(PREFIX, "dlq_not_empty")])["MetricAlarms"][0]
    assert alarm["Dimensions"] == DLQ_DIMENSIONS
    assert alarm["AlarmActions"] == alarm["OKActions"] == [wiring.alarm_topic]
    assert "ops.dlq" in alarm["AlarmDescription"]


def test_apply_flashsale_then_normal_round_trips_thresholds_and_keeps_actions(wiring: AlarmWiring) -> None:
    done = alarms_cli(wiring.env, "apply", "--profile", "flashsale", "--alarm-prefix", PREFIX)
    assert done.returncode == 0, done.stderr
    assert "pulumi config set alarmProfile flashsale -s STACK" in done.stdout
    assert "next `pulumi up` restores" in done.stdout
    flash = contract.ALARM_PROFILES["flashsale"]
    assert thresholds() == {contract.alarm_name(PREFIX, s.key): float(getattr(flash, s.key))
                            for s in contract.ALARMS if s.subject in ("queue", "dlq")}
    alarm = aws.client("cloudwatch").describe_alarms(
        AlarmNames=[contract.alarm_name(PREFIX, "queue_depth_warning")])["MetricAlarms"][0]
    assert alarm["AlarmActions"] == alarm["OKActions"] == [wiring.alarm_topic]
    assert alarm["Dimensions"] == QUEUE_DIMENSIONS

    status = alarms_cli(wiring.env, "status", "--alarm-prefix", PREFIX, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["profiles"] == ["flashsale"]

    assert alarms_cli(wiring.env, "apply", "--profile", "normal", "--alarm-prefix", PREFIX).returncode == 0
    assert thresholds()[contract.alarm_name(PREFIX, "queue_depth_warning")] == 1_000


def test_status_shows_state_and_threshold(wiring: AlarmWiring) -> None:
    done = alarms_cli(wiring.env, "status", "--alarm-prefix", PREFIX)
    assert done.returncode == 0, done.stderr
    line = next(row for row in done.stdout.splitlines() if row.startswith(contract.alarm_name(PREFIX, "queue_depth_critical")))
    assert "INSUFFICIENT_DATA" in line and "5000" in line
    assert "Thresholds match profile: normal" in done.stdout


def test_apply_refuses_an_unknown_prefix(wiring: AlarmWiring) -> None:
    done = alarms_cli(wiring.env, "apply", "--profile", "flashsale", "--alarm-prefix", "nope")
    assert done.returncode == 1
    assert "no alarms named nope-<key> found" in done.stderr
    assert "Traceback" not in done.stderr


def test_test_notification_lands_in_a_queue_subscribed_to_the_alerts_topic(wiring: AlarmWiring, tmp_path: Any) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({contract.OUTPUT_ALERTS_TOPIC_ARN: wiring.alerts_topic}))
    done = alarms_cli(wiring.env, "test-notification", "--outputs", str(outputs))
    assert done.returncode == 0, done.stderr
    [alert] = wiring.inbox()
    assert alert["subject"].startswith("[TEST]")
    assert "TEST ALERT - no action needed" in alert["body"]


def test_aws_errors_are_one_line(wiring: AlarmWiring) -> None:
    done = alarms_cli(wiring.env, "test-notification", "--alerts-topic-arn",
                      "arn:aws:sns:us-west-2:000000000000:missing")
    assert done.returncode == 1
    assert done.stderr.startswith("python -m ops.alarms: error: AWS Publish failed")
    assert len(done.stderr.strip().splitlines()) == 1
