"""Alarm thresholds around a flash sale: apply a profile live, show alarm states, send a test alert.

The alarms are Pulumi resources, so a live change is drift: the next `pulumi up` restores the stack's thresholds.
`apply` says so and prints the `pulumi config set alarmProfile ...` line that makes the change permanent.

`create_alarms` is the one AlarmSpec -> CloudWatch mapping used outside Pulumi (the local bootstrap calls it).
"""

from __future__ import annotations

from typing import Any

from app import contract


def alarm_description(spec: contract.AlarmSpec) -> str:
    """What people read in the console and in raw alarm messages: what it measures and what to do."""
    return f"[{spec.severity}] {spec.measures}. What to do: {spec.action}"


def create_alarms(
    cloudwatch: Any,
    *,
    prefix: str,
    dimensions: dict[str, list[dict[str, str]]],
    thresholds: contract.AlarmThresholds,
    action_arns: list[str],
) -> list[str]:
    """Put every catalogue alarm whose subject has dimensions here; returns the alarm names it put."""
    names = []
    for spec in contract.ALARMS:
        if spec.subject not in dimensions:
            continue
        name = contract.alarm_name(prefix, spec.key)
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            AlarmDescription=alarm_description(spec),
            Namespace=spec.namespace,
            MetricName=spec.metric_name,
            Dimensions=dimensions[spec.subject],
            Statistic=spec.statistic,
            Period=spec.period_seconds,
            EvaluationPeriods=spec.evaluation_periods,
            Threshold=float(getattr(thresholds, spec.key)),
            ComparisonOperator=spec.comparison,
            TreatMissingData="notBreaching",
            ActionsEnabled=True,
            AlarmActions=action_arns,
            OKActions=action_arns,
        )
        names.append(name)
    return names
