"""The alarm catalogue: what each alarm watches, how bad it is and what to do when it fires (report 4.4 and 6.3).

Read by the Pulumi program (which creates the alarms), the notifier Lambda (which renders an alarm's message with its
runbook text), `ops.alarms` and `ops.preflight`, and the local system. The thresholds are not here: each stack
picks a profile (`stackconfig.alarm_profiles`). Standard library only, so the notifier Lambda can ship it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from app import contract, expected_wait


class System(StrEnum):
    """The two systems a stack may deploy (`deploySync`, `deployAsync`)."""

    SYNC = "sync"
    ASYNC = "async"


class AlarmSubject(StrEnum):
    """What an alarm or a dashboard line watches: one resource's CloudWatch dimensions, the buyers' wait metric of
    the stack (BUYER_WAIT: its Stack and Region dimensions, `app.contract.WAIT_*`), or (EXPECTED_WAIT) metric math over
    the order queue and the worker service (`app.expected_wait`). A mistyped member is a type error (mypy) and an
    AttributeError at import: it can never make the program drop an alarm."""

    QUEUE = "queue"
    DLQ = "dlq"
    WORKER_SERVICE = "worker_service"
    RECEIVER_SERVICE = "receiver_service"
    RECEIVER_ALB = "receiver_alb"
    SYNC_SERVICE = "sync_service"
    SYNC_ALB = "sync_alb"
    EXPECTED_WAIT = "expected_wait"
    BUYER_WAIT = "buyer_wait"  # the worker's own metric: each finished order's wait from acceptance

    @property
    def system(self) -> System:
        """The system whose resources it watches: a stack without that system has no such alarm or line."""
        return System.SYNC if self in (AlarmSubject.SYNC_SERVICE, AlarmSubject.SYNC_ALB) else System.ASYNC

    @property
    def metric_math(self) -> bool:
        """Computed from other subjects' metrics, so it has no dimensions of its own."""
        return self is AlarmSubject.EXPECTED_WAIT


@dataclass(frozen=True)
class AlarmSpec:
    """What one alarm watches. `subject` says which resource's dimensions it takes, or that it is metric math."""

    key: str  # a field of stackconfig.alarm_profiles.AlarmThresholds, and the alarm name's suffix
    subject: AlarmSubject
    namespace: str
    metric_name: str
    severity: str
    measures: str  # for people: what the number means
    action: str  # for people: what to do when it fires
    statistic: str = "Maximum"
    comparison: str = "GreaterThanThreshold"
    period_seconds: int = 60
    evaluation_periods: int = 1
    per_latency: bool = False  # the profile's number is a multiple of acceptableLatencySeconds (a value in seconds)

    @property
    def percentile(self) -> bool:
        """The statistic is a percentile (`p95`): CloudWatch takes it as the alarm's ExtendedStatistic."""
        return is_percentile(self.statistic)

    @property
    def description(self) -> str:
        """The alarm's description, read in the console and in raw alarm messages: what it measures, what to do."""
        return f"[{self.severity}] {self.measures}. What to do: {self.action}"


def is_percentile(statistic: str) -> bool:
    """`p0`..`p100`, with decimals (`p99.9`): CloudWatch's percentile statistics."""
    number = statistic[1:]
    return statistic[:1] == "p" and number.replace(".", "", 1).isdigit() and 0 <= float(number) <= 100


ALARMS: Final[tuple[AlarmSpec, ...]] = (
    AlarmSpec(
        key="expected_wait_warning",
        subject=AlarmSubject.EXPECTED_WAIT,
        namespace="",
        metric_name=expected_wait.LABEL,
        severity="WARNING",
        measures="seconds a new order waits before a worker starts it",
        action="Buyers wait longer than the stack's acceptable latency: add worker tasks "
        "(`python -m ops.prescale --tasks N`; the alert says how many), or check that auto-scaling is acting.",
        per_latency=True,
    ),
    AlarmSpec(
        key="expected_wait_critical",
        subject=AlarmSubject.EXPECTED_WAIT,
        namespace="",
        metric_name=expected_wait.LABEL,
        severity="CRITICAL",
        measures="seconds a new order waits before a worker starts it",
        action="Buyers wait twice the acceptable latency and auto-scaling has not caught up: pre-scale now "
        "(`python -m ops.prescale --tasks N`; the alert says how many) and check worker health and the DLQ.",
        per_latency=True,
    ),
    AlarmSpec(
        key="buyer_wait_p95",
        subject=AlarmSubject.BUYER_WAIT,
        namespace=contract.WAIT_METRIC_NAMESPACE,
        metric_name=contract.WAIT_METRIC_NAME,
        statistic="p95",
        severity="WARNING",
        measures="seconds the slowest 5 % of the orders finished in the period waited, from acceptance to paid or "
        "declined",
        action="Buyers did wait longer than the stack's acceptable latency. If the expected-wait alarms fire too, add "
        "worker tasks (`python -m ops.prescale --tasks N`); if they do not, the time is lost elsewhere: check the "
        "worker's payment durations and errors in its logs, redeliveries and the DLQ (`python -m ops.dlq list`).",
        per_latency=True,
    ),
    AlarmSpec(
        key="queue_depth_warning",
        subject=AlarmSubject.QUEUE,
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        severity="WARNING",
        measures="orders waiting in the order queue",
        action="Workers are falling behind: run `python -m ops.capacity` for the needed workers, then "
        "`python -m ops.prescale --tasks N`.",
    ),
    AlarmSpec(
        key="queue_depth_critical",
        subject=AlarmSubject.QUEUE,
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        severity="CRITICAL",
        measures="orders waiting in the order queue",
        action="Customers are waiting long for confirmation: pre-scale the workers now "
        "(`python -m ops.prescale --tasks N`) and check worker health and the DLQ.",
    ),
    AlarmSpec(
        key="oldest_message_age",
        subject=AlarmSubject.QUEUE,
        namespace="AWS/SQS",
        metric_name="ApproximateAgeOfOldestMessage",
        severity="CRITICAL",
        measures="age in seconds of the oldest waiting order",
        action="Orders are not being processed in time: check that the worker service is running, then pre-scale "
        "(`python -m ops.prescale`).",
    ),
    AlarmSpec(
        key="dlq_not_empty",
        subject=AlarmSubject.DLQ,
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        severity="WARNING",
        measures="orders that failed processing 3 times and were dead-lettered",
        action="Inspect them with `python -m ops.dlq list`; after fixing the cause, `python -m ops.dlq redrive`.",
    ),
    AlarmSpec(
        key="worker_cpu_high",
        subject=AlarmSubject.WORKER_SERVICE,
        namespace="AWS/ECS",
        metric_name="CPUUtilization",
        statistic="Average",
        evaluation_periods=3,
        severity="WARNING",
        measures="worker tasks' average CPU in percent",
        action="Each task is at its limit: add tasks (`python -m ops.prescale --tasks N`) rather than workers "
        "per task.",
    ),
    AlarmSpec(
        key="alb_5xx",
        subject=AlarmSubject.RECEIVER_ALB,
        namespace="AWS/ApplicationELB",
        metric_name="HTTPCode_Target_5XX_Count",
        statistic="Sum",
        severity="WARNING",
        measures="5xx answers from the order receiver (503 means it shed load or lost its backend)",
        action="Check the receiver's logs and the order topic/table; add receiver tasks if it is shedding load.",
    ),
)


def alarm_name(prefix: str, key: str) -> str:
    """Physical alarm name, shared by the Pulumi program, `ops.alarms` and the notifier."""
    return f"{prefix}-{key.replace('_', '-')}"


@dataclass(frozen=True)
class ReplicationAlarmSpec:
    """The orders table's replication lag to one other region, with two or more regions (docs/multi-region.md).

    Not one of ALARMS: those are per system and their thresholds per profile (`ops.alarms apply` switches them around
    a sale); this one exists only on a global table, once per (source, receiving) region pair, in the source region
    where DynamoDB publishes it, and its threshold does not change with a sale: it is here, in one place."""

    key: str  # the alarm name's suffix, before the receiving region's short name
    namespace: str
    metric_name: str
    statistic: str
    threshold_milliseconds: float
    period_seconds: int
    evaluation_periods: int
    comparison: str
    severity: str
    measures: str
    action: str

    @property
    def description(self) -> str:
        return f"[{self.severity}] {self.measures}. What to do: {self.action}"


# Replication usually lags by under a second, with no SLA (DynamoDB global tables); ten times that for five minutes is
# no blip. It matters for a failover: an evacuated region's last orders reach the others only after the lag, and the
# runbook waits ~10x the recent maximum lag before another region takes over its orders.
REPLICATION_LATENCY: Final = ReplicationAlarmSpec(
    key="replication_latency",
    namespace="AWS/DynamoDB",
    metric_name="ReplicationLatency",
    statistic="Average",
    threshold_milliseconds=10_000,
    period_seconds=60,
    evaluation_periods=5,
    comparison="GreaterThanOrEqualToThreshold",
    severity="warning",
    measures="milliseconds an order written in this region takes to reach the receiving region's replica",
    action="Check the receiving region's health and DynamoDB's status there; before moving a region's orders to "
    "another, wait for the lag to fall (docs/multi-region.md).",
)


def replication_alarm_name(prefix: str, receiving_short_name: str) -> str:
    """`flashsale-<stack>-replication-latency-use2`: in the source region, one per receiving region."""
    return alarm_name(prefix, f"{REPLICATION_LATENCY.key}_{receiving_short_name}")
