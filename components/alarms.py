"""Alarms: the catalogue's alarms (`alarm_catalogue.ALARMS`) as CloudWatch metric alarms, thresholds from the profile.

Creates one alarm per catalogue entry whose subject's system the stack deploys (no async stack, no queue alarms;
`Watched` guarantees the dimensions of every deployed subject) and whose threshold the profile sets, named
`alarm_catalogue.alarm_name(prefix, key)` so `ops.alarms` finds them. The expected-wait
alarms are metric math over the order queue's waiting messages and the worker service's running tasks
(`alarm_catalogue.expected_wait_expression`), with thresholds that are multiples of `acceptableLatencySeconds`: the same
number the worker auto-scaling aims for, so a page means the scaling has had its chance. Alarm and OK actions
publish to the alarm topic.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from app import alarm_catalogue
from app.alarm_catalogue import AlarmSubject
from components.watched import Watched
from stackconfig.alarm_profiles import AlarmThresholds, alarm_threshold


@dataclass(frozen=True)
class AlarmsArgs:
    prefix: str
    thresholds: AlarmThresholds
    watched: Watched
    topic_arn: pulumi.Input[str]
    acceptable_latency_seconds: float
    worker_count: int
    payment_seconds: float


def expected_wait_queries(
    watched: Watched, worker_count: int, payment_seconds: float, period: int
) -> list[aws.cloudwatch.MetricAlarmMetricQueryArgsDict]:
    """m1 waiting orders, m2 running worker tasks (Container Insights), e1 the expected wait in seconds."""
    waiting: aws.cloudwatch.MetricAlarmMetricQueryArgsDict = {
        "id": "m1",
        "return_data": False,
        "metric": {
            "namespace": "AWS/SQS",
            "metric_name": "ApproximateNumberOfMessagesVisible",
            "dimensions": dict(watched[AlarmSubject.QUEUE]),
            "period": period,
            "stat": "Maximum",
        },
    }
    tasks: aws.cloudwatch.MetricAlarmMetricQueryArgsDict = {
        "id": "m2",
        "return_data": False,
        "metric": {
            "namespace": "ECS/ContainerInsights",
            "metric_name": "RunningTaskCount",
            "dimensions": dict(watched[AlarmSubject.WORKER_SERVICE]),
            "period": period,
            "stat": "Average",
        },
    }
    wait: aws.cloudwatch.MetricAlarmMetricQueryArgsDict = {
        "id": "e1",
        "return_data": True,
        "label": alarm_catalogue.EXPECTED_WAIT,
        "expression": alarm_catalogue.expected_wait_expression(worker_count, payment_seconds),
    }
    return [waiting, tasks, wait]


class Alarms(pulumi.ComponentResource):
    def __init__(self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:monitoring:Alarms", name, None, opts)
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for spec in alarm_catalogue.ALARMS:
            threshold = alarm_threshold(args.thresholds, spec, args.acceptable_latency_seconds)
            if threshold is None or not args.watched.has(spec.subject):  # not in the profile, or its system
                continue
            math = spec.subject.metric_math
            queries = (
                expected_wait_queries(args.watched, args.worker_count, args.payment_seconds, spec.period_seconds)
                if math
                else None
            )
            self.alarms[spec.key] = aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.key.replace('_', '-')}",
                name=alarm_catalogue.alarm_name(args.prefix, spec.key),
                alarm_description=spec.description,
                metric_queries=queries,
                namespace=None if math else spec.namespace,  # a single metric's fields: unset for metric math
                metric_name=None if math else spec.metric_name,
                dimensions=None if math else dict(args.watched[spec.subject]),
                statistic=None if math else spec.statistic,
                period=None if math else spec.period_seconds,
                evaluation_periods=spec.evaluation_periods,
                threshold=threshold,
                comparison_operator=spec.comparison,
                treat_missing_data="notBreaching",
                alarm_actions=[args.topic_arn],
                ok_actions=[args.topic_arn],
                # The name is set (ops.alarms finds alarms by it), so a replacement must delete the old alarm first:
                # created first, the new one would be the old one updated, then deleted with it.
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
            )
        self.register_outputs({"alarm_names": [alarm.name for alarm in self.alarms.values()]})
