"""The expected wait, defined once: seconds a new order waits before a worker starts it.

    waiting orders x payment seconds / (running worker tasks x workers per task)

the queue ahead of the order, paid at the rate of every running payment slot. CloudWatch computes it from two
metrics (`WAITING` and `RUNNING_TASKS`, combined by `expression`) for the expected-wait alarms; the worker scaling
tracks the same two metrics' ratio, the backlog per task (`BACKLOG_PER_TASK`), at the backlog whose wait is the
acceptable latency (`backlog_per_task_target`); the dashboard draws the same queries; the notifier's page, the live
view and GET /orders/{id} compute `seconds` from the same four numbers. So the figure a buyer is told is the one the
alarms page on.

One statistic for both metrics, `STATISTIC` (Maximum). Both are levels (a gauge of messages, a gauge of tasks), and
AWS publishes each once a minute, so at the alarms' 60 s period every statistic reads the same. They part where a
period holds several samples (a longer period, the lab's shortened ones, the local runtime's sub-second feed):
Sum multiplies the level by the number of samples; Average spreads a burst over the period (a 15 s burst in a 60 s
period reads a quarter of its size, and the page comes late or not at all); Maximum reads each gauge at its peak:
the backlog the alarms exist to catch, over the tasks that paid during the period.

Standard library only: the notifier Lambda ships it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

STATISTIC: Final = "Maximum"
LABEL: Final = "expected wait"  # the metric-math alarms' metric name and the expression's label
FORMULA: Final = "waiting orders x payment time / (running worker tasks x workers per task)"  # for people


@dataclass(frozen=True)
class Term:
    """One metric the formula reads: its query id in the metric math, and the CloudWatch metric."""

    id: str
    label: str
    namespace: str
    metric_name: str
    statistic: str = STATISTIC


WAITING: Final = Term("m1", "orders waiting", "AWS/SQS", "ApproximateNumberOfMessagesVisible")  # the order queue
# Container Insights (the cluster enables it): the worker service's tasks in RUNNING.
RUNNING_TASKS: Final = Term("m2", "running worker tasks", "ECS/ContainerInsights", "RunningTaskCount")
TERMS: Final = (WAITING, RUNNING_TASKS)
BACKLOG_PER_TASK: Final = f"{WAITING.id} / {RUNNING_TASKS.id}"  # what the worker scaling tracks


def seconds(waiting: float, running_tasks: float, workers_per_task: int, payment_seconds: float) -> float | None:
    """The expected wait; None with no running task (CloudWatch's division by zero gives no value either: the
    oldest-message alarm is what pages then)."""
    if waiting < 0 or workers_per_task < 1 or payment_seconds < 0:
        raise ValueError(
            f"expected wait of {waiting} waiting orders, {workers_per_task} workers per task, "
            f"{payment_seconds} s per payment: none may be negative, workers at least 1"
        )
    if running_tasks <= 0:
        return None
    return waiting * payment_seconds / (running_tasks * workers_per_task)


def expression(workers_per_task: int, payment_seconds: float) -> str:
    """`seconds` as CloudWatch metric math over the `TERMS` queries."""
    return f"{WAITING.id} * {payment_seconds:g} / ({RUNNING_TASKS.id} * {workers_per_task})"


def backlog_per_task_target(acceptable_latency_seconds: float, workers_per_task: int, payment_seconds: float) -> float:
    """Waiting orders per running task at which the expected wait is the acceptable latency: the worker scaling's
    target, so it acts at the wait the alarms measure."""
    return acceptable_latency_seconds * workers_per_task / payment_seconds


def tasks_for(wait_seconds: float, running_tasks: int, target_seconds: float) -> int:
    """Running tasks that bring a wait measured over `running_tasks` (at least one) to `target_seconds`: `seconds`
    falls in proportion to the running tasks."""
    if target_seconds <= 0:
        raise ValueError(f"target wait must be positive, got {target_seconds:g} s")
    return math.ceil(max(running_tasks, 1) * wait_seconds / target_seconds)
