"""The expected wait's metric queries (`app.expected_wait.TERMS`) in the shapes CloudWatch's consumers take them.

One definition, three shapes: an alarm's metric queries (the expected-wait alarms), a target-tracking policy's
customized metrics (the worker scaling's backlog per task) and a dashboard widget's metrics (the expected-wait
graph). Each reads the same metrics with the same statistic, the order queue's dimensions for `WAITING` and the
worker service's for `RUNNING_TASKS`.
"""

from __future__ import annotations

from typing import Any

import pulumi_aws as aws

from app import expected_wait
from app.expected_wait import Term
from components.watched import Dimensions

ScalingMetric = (
    aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationCustomizedMetricSpecificationMetricArgsDict
)
RESULT_ID = "e1"  # the expression's id, beside the terms' m1 and m2


def _terms(queue: Dimensions, worker_service: Dimensions) -> list[tuple[Term, Dimensions]]:
    return list(zip(expected_wait.TERMS, (queue, worker_service), strict=True))


def alarm_queries(
    queue: Dimensions, worker_service: Dimensions, *, workers_per_task: int, payment_seconds: float, period: int
) -> list[aws.cloudwatch.MetricAlarmMetricQueryArgsDict]:
    """A metric-math alarm's queries: the terms over `period`, and the expected wait in seconds returned."""
    queries: list[aws.cloudwatch.MetricAlarmMetricQueryArgsDict] = [
        {
            "id": term.id,
            "label": term.label,
            "return_data": False,
            "metric": {
                "namespace": term.namespace,
                "metric_name": term.metric_name,
                "dimensions": dict(dimensions),
                "period": period,
                "stat": term.statistic,
            },
        }
        for term, dimensions in _terms(queue, worker_service)
    ]
    queries.append(
        {
            "id": RESULT_ID,
            "return_data": True,
            "label": expected_wait.LABEL,
            "expression": expected_wait.expression(workers_per_task, payment_seconds),
        }
    )
    return queries


def scaling_metrics(queue: Dimensions, worker_service: Dimensions) -> list[ScalingMetric]:
    """A target-tracking policy's metrics: the terms, and the backlog per task returned."""
    metrics: list[ScalingMetric] = [
        {
            "id": term.id,
            "label": term.label,
            "return_data": False,
            "metric_stat": {
                "stat": term.statistic,
                "metric": {
                    "namespace": term.namespace,
                    "metric_name": term.metric_name,
                    "dimensions": [{"name": key, "value": value} for key, value in dimensions.items()],
                },
            },
        }
        for term, dimensions in _terms(queue, worker_service)
    ]
    metrics.append(
        {
            "id": "backlog_per_task",
            "label": "orders waiting per task",
            "return_data": True,
            "expression": expected_wait.BACKLOG_PER_TASK,
        }
    )
    return metrics


def dashboard_metrics(
    queue: Dimensions, worker_service: Dimensions, *, workers_per_task: int, payment_seconds: float
) -> list[list[Any]]:
    """A dashboard graph's metrics: the terms hidden, the expected wait drawn."""
    metrics: list[list[Any]] = [
        [
            term.namespace,
            term.metric_name,
            *(part for item in dimensions.items() for part in item),
            {"id": term.id, "stat": term.statistic, "label": term.label, "visible": False},
        ]
        for term, dimensions in _terms(queue, worker_service)
    ]
    metrics.append(
        [
            {
                "id": RESULT_ID,
                "label": expected_wait.LABEL,
                "expression": expected_wait.expression(workers_per_task, payment_seconds),
            }
        ]
    )
    return metrics
