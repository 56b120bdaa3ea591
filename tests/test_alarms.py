"""ops.alarms on ministack: create, apply a profile, read thresholds back, and check test-alert delivery."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest

from app import alarm_catalogue, aws
from bench.localaws.deployer import deploy
from stackconfig import output_names
from stackconfig.alarm_profiles import ALARM_PROFILES, alarm_threshold
from stackconfig.files import ROOT
from tests.conftest import TEST_CONFIG
from tests.helpers import System, system  # noqa: F401  (the fixture)


@dataclass(frozen=True)
class AlarmWiring:
    """The alarm path as the program deploys it: alarms -> alarm topic -> (locally) the queue standing in for the
    notifier Lambda's subscription; the alerts topic -> an inbox queue, standing in for a person's mailbox."""

    env: dict[str, str]
    prefix: str
    alarm_topic: str
    alerts_topic: str
    alarm_events_url: str
    inbox_url: str
    queue_dimensions: list[dict[str, str]]
    dlq_dimensions: list[dict[str, str]]
    latency: float  # the stack's acceptableLatencySeconds

    @property
    def latency_flag(self) -> tuple[str, str]:
        return ("--acceptable-latency-seconds", f"{self.latency:g}")

    def inbox(self, wait_seconds: int = 5) -> list[dict[str, Any]]:
        """Alerts delivered to people, as {subject, body} (the inbox queue gets SNS envelopes)."""
        sqs = aws.client("sqs", read_timeout=wait_seconds + 10)
        found = sqs.receive_message(QueueUrl=self.inbox_url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_seconds).get(
            "Messages", []
        )
        envelopes = [json.loads(m["Body"]) for m in found]
        return [{"subject": e.get("Subject"), "body": e["Message"]} for e in envelopes]


def subscribed_queue(topic_arn: str, name: str, *, raw: bool) -> str:
    sqs = aws.client("sqs")
    url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(
        TopicArn=topic_arn, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true" if raw else "false"}
    )
    return url


def queue_name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def wire_alarms(system: System) -> AlarmWiring:
    outputs = system.outputs
    (relay,) = system.deployment.relays
    return AlarmWiring(
        env=system.aws_env,
        prefix=outputs[output_names.ALARM_PREFIX],
        alarm_topic=outputs[output_names.ALARM_TOPIC_ARN],
        alerts_topic=outputs[output_names.ALERTS_TOPIC_ARN],
        alarm_events_url=relay.queue_url,
        inbox_url=subscribed_queue(outputs[output_names.ALERTS_TOPIC_ARN], "inbox", raw=False),
        queue_dimensions=[{"Name": "QueueName", "Value": queue_name(outputs[output_names.QUEUE_URL])}],
        dlq_dimensions=[{"Name": "QueueName", "Value": queue_name(outputs[output_names.DLQ_URL])}],
        latency=float(outputs[output_names.ACCEPTABLE_LATENCY]),
    )


@pytest.fixture
def wiring(system: System) -> AlarmWiring:  # noqa: F811
    return wire_alarms(system)


def alarms_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.alarms", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def thresholds(prefix: str) -> dict[str, float]:
    alarms = aws.client("cloudwatch").describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
    return {a["AlarmName"]: a["Threshold"] for a in alarms}


def test_a_refresh_and_up_keeps_a_profile_applied_live(wiring: AlarmWiring, system: System) -> None:  # noqa: F811
    """The program ignores thresholds once alarms exist: `pulumi up --refresh` mid-sale leaves `apply`'s alone."""
    done = alarms_cli(
        wiring.env, "apply", "--profile", "flashsale", "--alarm-prefix", wiring.prefix, *wiring.latency_flag
    )
    assert done.returncode == 0, done.stderr
    applied = thresholds(wiring.prefix)
    assert applied != {  # the normal stack's own thresholds: what a `pulumi up` without ignore_changes puts back
        alarm_catalogue.alarm_name(wiring.prefix, s.key): alarm_threshold(ALARM_PROFILES["normal"], s, wiring.latency)
        for s in alarm_catalogue.ALARMS
    }
    again = deploy("normal", system.deployment.endpoints, overrides=TEST_CONFIG, state=system.deployment)
    assert thresholds(wiring.prefix) == applied
    assert again.ok and again.updated == [] and again.deleted == [], again.summary()


def test_the_deployed_alarms_are_the_catalogue_on_the_stack_resources(wiring: AlarmWiring) -> None:
    cloudwatch = aws.client("cloudwatch")
    found = cloudwatch.describe_alarms(AlarmNamePrefix=f"{wiring.prefix}-")["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in found) == sorted(
        alarm_catalogue.alarm_name(wiring.prefix, s.key) for s in alarm_catalogue.ALARMS
    )
    alarm = cloudwatch.describe_alarms(AlarmNames=[alarm_catalogue.alarm_name(wiring.prefix, "dlq_not_empty")])[
        "MetricAlarms"
    ][0]
    assert alarm["Dimensions"] == wiring.dlq_dimensions
    assert alarm["AlarmActions"] == alarm["OKActions"] == [wiring.alarm_topic]
    assert "ops.dlq" in alarm["AlarmDescription"]


def test_apply_flashsale_then_normal_round_trips_thresholds_and_keeps_actions(wiring: AlarmWiring) -> None:
    prefix = wiring.prefix
    done = alarms_cli(wiring.env, "apply", "--profile", "flashsale", "--alarm-prefix", prefix, *wiring.latency_flag)
    assert done.returncode == 0, done.stderr
    assert "pulumi config set alarmProfile flashsale -s STACK" in done.stdout
    assert "`pulumi up` keeps these until the next `apply`" in done.stdout
    flash, normal = ALARM_PROFILES["flashsale"], ALARM_PROFILES["normal"]
    latency = wiring.latency
    assert thresholds(prefix) == {  # the normal stack's raw-depth alarms are not in the flash-sale profile: kept
        alarm_catalogue.alarm_name(prefix, s.key): alarm_threshold(flash, s, latency)
        if getattr(flash, s.key) is not None
        else alarm_threshold(normal, s, latency)
        for s in alarm_catalogue.ALARMS
    }
    assert "kept (not in this profile)" in done.stdout
    alarm = aws.client("cloudwatch").describe_alarms(
        AlarmNames=[alarm_catalogue.alarm_name(prefix, "queue_depth_warning")]
    )["MetricAlarms"][0]
    assert alarm["AlarmActions"] == alarm["OKActions"] == [wiring.alarm_topic]
    assert alarm["Dimensions"] == wiring.queue_dimensions

    status = alarms_cli(wiring.env, "status", "--alarm-prefix", prefix, "--json", *wiring.latency_flag)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["profiles"] == ["flashsale"]

    assert (
        alarms_cli(
            wiring.env, "apply", "--profile", "normal", "--alarm-prefix", prefix, *wiring.latency_flag
        ).returncode
        == 0
    )
    assert thresholds(prefix)[alarm_catalogue.alarm_name(prefix, "queue_depth_warning")] == 1_000


def test_status_shows_state_and_threshold(wiring: AlarmWiring) -> None:
    done = alarms_cli(wiring.env, "status", "--alarm-prefix", wiring.prefix, *wiring.latency_flag)
    assert done.returncode == 0, done.stderr
    critical = alarm_catalogue.alarm_name(wiring.prefix, "queue_depth_critical")
    line = next(row for row in done.stdout.splitlines() if row.startswith(critical))
    assert "INSUFFICIENT_DATA" in line and "5000" in line
    assert "Thresholds match profile: normal" in done.stdout


def test_apply_refuses_an_unknown_prefix(wiring: AlarmWiring) -> None:
    done = alarms_cli(wiring.env, "apply", "--profile", "flashsale", "--alarm-prefix", "nope")
    assert done.returncode == 1
    assert "no alarms named nope-<key> found" in done.stderr
    assert "Traceback" not in done.stderr


def test_test_notification_lands_in_a_queue_subscribed_to_the_alerts_topic(wiring: AlarmWiring, tmp_path: Any) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({output_names.ALERTS_TOPIC_ARN: wiring.alerts_topic}))
    done = alarms_cli(wiring.env, "test-notification", "--outputs", str(outputs))
    assert done.returncode == 0, done.stderr
    [alert] = wiring.inbox()
    assert alert["subject"].startswith("[TEST]")
    assert "TEST ALERT - no action needed" in alert["body"]


def test_aws_errors_are_one_line(wiring: AlarmWiring) -> None:
    done = alarms_cli(
        wiring.env, "test-notification", "--alerts-topic-arn", "arn:aws:sns:us-west-2:000000000000:missing"
    )
    assert done.returncode == 1
    assert done.stderr.startswith("python -m ops.alarms: error: AWS Publish failed")
    assert len(done.stderr.strip().splitlines()) == 1
