"""Alarms: the report's 4.4 and 6.3 alarms as CloudWatch metric alarms, from the one catalogue.

Creates one alarm per `contract.ALARMS` entry whose subject this stack has (no async stack, no queue alarms), named
`contract.alarm_name(prefix, key)` so `ops.alarms` finds them, with the thresholds of the stack's `alarmProfile`.
Alarm and OK actions publish to the alarm topic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from app import contract

Dimensions = Mapping[str, Mapping[str, pulumi.Input[str]]]  # subject -> CloudWatch dimensions


@dataclass(frozen=True)
class AlarmsArgs:
    prefix: str
    thresholds: contract.AlarmThresholds
    subjects: Dimensions
    topic_arn: pulumi.Input[str]


class Alarms(pulumi.ComponentResource):
    def __init__(self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:monitoring:Alarms", name, None, opts)
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for spec in contract.ALARMS:
            if spec.subject not in args.subjects:
                continue
            self.alarms[spec.key] = aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.key.replace('_', '-')}",
                name=contract.alarm_name(args.prefix, spec.key),
                alarm_description=spec.description,
                namespace=spec.namespace,
                metric_name=spec.metric_name,
                dimensions=dict(args.subjects[spec.subject]),
                statistic=spec.statistic,
                period=spec.period_seconds,
                evaluation_periods=spec.evaluation_periods,
                threshold=float(getattr(args.thresholds, spec.key)),
                comparison_operator=spec.comparison,
                treat_missing_data="notBreaching",
                alarm_actions=[args.topic_arn],
                ok_actions=[args.topic_arn],
                # The name is set (ops.alarms finds alarms by it), so a replacement must delete the old alarm first:
                # created first, the new one would be the old one updated, then deleted with it.
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
            )
        self.register_outputs({"alarm_names": [alarm.name for alarm in self.alarms.values()]})
