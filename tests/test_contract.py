"""The shared contract is internally consistent: the Pulumi program, the services and ops all lean on it."""

from __future__ import annotations

import json

import pytest

from app import alarm_catalogue, contract
from app.settings import SettingsError
from app.settings import worker as worker_settings
from stackconfig.alarm_profiles import ALARM_KEYS, ALARM_PROFILES


def test_every_threshold_has_an_alarm_and_every_alarm_a_threshold() -> None:
    assert sorted(a.key for a in alarm_catalogue.ALARMS) == sorted(ALARM_KEYS)


def test_alarm_subjects_are_members_of_the_enum() -> None:
    """A plain string (which mypy refuses) would slip past a dataclass at run time: the catalogue holds none."""
    assert all(type(a.subject) is alarm_catalogue.AlarmSubject for a in alarm_catalogue.ALARMS)


def test_profiles_follow_the_report() -> None:
    normal = ALARM_PROFILES["normal"]
    assert (normal.queue_depth_warning, normal.queue_depth_critical, normal.oldest_message_age) == (1000, 5000, 1800)
    for profile in ALARM_PROFILES.values():
        assert profile.expected_wait_warning < profile.expected_wait_critical
        if profile.queue_depth_warning is not None and profile.queue_depth_critical is not None:
            assert profile.queue_depth_warning < profile.queue_depth_critical
    assert ALARM_PROFILES["flashsale"].oldest_message_age < normal.oldest_message_age


def test_queue_settings_are_the_reports() -> None:
    q = contract.ORDER_QUEUE
    assert (q.visibility_timeout_seconds, q.message_retention_seconds, q.receive_wait_time_seconds) == (30, 345_600, 20)
    assert json.loads(q.redrive_policy("arn:aws:sqs:us-west-2:1:dlq")) == {
        "deadLetterTargetArn": "arn:aws:sqs:us-west-2:1:dlq",
        "maxReceiveCount": 3,
    }


def test_queue_policy_admits_only_its_topic() -> None:
    (statement,) = contract.queue_policy("arn:q", "arn:t")["Statement"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": "arn:t"}}
    assert statement["Resource"] == "arn:q" and statement["Action"] == "sqs:SendMessage"


def test_the_worker_shutdown_fits_the_stop_timeout() -> None:
    """Every step's bound comes from the stop timeout once: the default drain leaves the other steps and the exit
    margin, and the whole sequence ends before the SIGKILL."""
    budget = contract.SHUTDOWN
    assert budget.stop_timeout_seconds == contract.STOP_TIMEOUT_SECONDS
    assert contract.SERVICE_DEFAULTS.drain_seconds == budget.drain_seconds > 0
    longest = budget.sequence_seconds(budget.drain_seconds)
    assert longest == budget.drain_seconds + 2 * budget.release_seconds + budget.receive_grace_seconds + (
        budget.settle_seconds
    )
    assert longest + budget.exit_seconds == contract.STOP_TIMEOUT_SECONDS
    assert budget.exit_seconds >= 1  # the interpreter's exit on a loaded host


def test_a_drain_longer_than_the_stop_timeout_allows_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(contract.ENV_ORDERS_TABLE, "orders")
    monkeypatch.setenv(contract.ENV_QUEUE_URL, "http://queue")
    monkeypatch.setenv(contract.ENV_DRAIN_SECONDS, str(contract.SHUTDOWN.drain_seconds + 0.5))
    with pytest.raises(SettingsError, match=f"DRAIN_SECONDS must be within 0..{contract.SHUTDOWN.drain_seconds:g}"):
        worker_settings()


def test_an_orphan_is_a_pending_record_older_than_any_message_for_it_can_live() -> None:
    """The sweeper's bound: the last send of an order's event (a keyed retry can resend it for the key's life), then
    the longest a message lives (the DLQ keeps a message's first enqueue time, so the longer retention of the two),
    then one visibility timeout for a worker that took it at the last moment."""
    queue = contract.QueueSettings(visibility_timeout_seconds=7, message_retention_seconds=99, dlq_retention_seconds=4)
    assert contract.orphan_after_seconds(queue, resend_window_seconds=1000) == 1000 + 99 + 7
    dlq_longer = contract.QueueSettings(visibility_timeout_seconds=7, message_retention_seconds=40)
    assert contract.orphan_after_seconds(dlq_longer, 0) == dlq_longer.dlq_retention_seconds + 7
    q = contract.ORDER_QUEUE
    assert contract.ORPHAN_AFTER_SECONDS == contract.IDEMPOTENCY_KEEP_SECONDS + q.dlq_retention_seconds + 30
    assert contract.ORPHAN_AFTER_SECONDS > contract.IDEMPOTENCY_KEEP_SECONDS + q.message_retention_seconds
    assert f"{contract.ORPHAN_AFTER_SECONDS // 86_400} days" in contract.ORPHAN_REASON
    assert contract.SWEEP_SCHEDULE == "rate(1440 minutes)"  # EventBridge's form of SWEEP_EVERY_SECONDS (a day)
