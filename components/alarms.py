"""Alarms: the catalogue's alarms (`alarm_catalogue.ALARMS`) as CloudWatch metric alarms, thresholds from the profile.

Creates one alarm per catalogue entry whose subject's system the stack deploys (no async stack, no queue alarms;
`Watched` guarantees the dimensions of every deployed subject) and whose threshold the profile sets, named
`alarm_catalogue.alarm_name(prefix, key)` so `ops.alarms` finds them. The expected-wait alarms are metric math over
the order queue's waiting messages and the worker service's running tasks (`app.expected_wait`, queries from
`components.wait_metrics`), with thresholds that are multiples of `acceptableLatencySeconds`: the same number the
worker auto-scaling aims for, so a page means the scaling has had its chance. The buyers' wait alarm watches the p95
of the waits the worker measured (its Embedded Metric Format lines, `app.worker`) against the acceptable latency:
what the buyers did wait, where the expected wait says what a new order will. Alarm and OK actions publish to the
alarm topic.

Missing data: no datapoint in a period means, for the queue and service metrics, that nothing happened, and for
the buyers' wait that no order was finished: no buyer waited, and the alarm clears after the sale's drain
(`notBreaching`). Workers that finish nothing while orders wait leave the wait metric silent; the expected-wait and
oldest-message alarms, which read the queue, page on them. A percentile over few orders is evaluated all the same
(`evaluate`): at night, one buyer waiting minutes is one buyer too many.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from app import alarm_catalogue
from app.alarm_catalogue import AlarmSubject
from components import wait_metrics
from components.watched import Replication, Watched
from stackconfig.alarm_profiles import AlarmThresholds, alarm_threshold
from stackconfig.regions import short_name

TREAT_MISSING_DATA = "notBreaching"  # see the module docstring
LOW_SAMPLE_PERCENTILES = "evaluate"


@dataclass(frozen=True)
class AlarmsArgs:
    prefix: str
    thresholds: AlarmThresholds
    watched: Watched
    topic_arn: pulumi.Input[str]
    acceptable_latency_seconds: float
    worker_count: int
    payment_seconds: float
    replication: Replication | None = None  # a global table's lag from this region (two or more regions)


class Alarms(pulumi.ComponentResource):
    def __init__(self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:monitoring:Alarms", name, None, opts)
        self.alarms: dict[str, aws.cloudwatch.MetricAlarm] = {}
        for spec in alarm_catalogue.ALARMS:
            threshold = alarm_threshold(args.thresholds, spec, args.acceptable_latency_seconds)
            if threshold is None or not args.watched.has(spec.subject):  # not in the profile, or its system
                continue
            math = spec.subject.metric_math
            percentile = not math and spec.percentile
            queries = (
                wait_metrics.alarm_queries(
                    args.watched[AlarmSubject.QUEUE],
                    args.watched[AlarmSubject.WORKER_SERVICE],
                    workers_per_task=args.worker_count,
                    payment_seconds=args.payment_seconds,
                    period=spec.period_seconds,
                )
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
                # A percentile is the alarm's extended statistic (CloudWatch refuses both statistics at once).
                statistic=None if math or percentile else spec.statistic,
                extended_statistic=spec.statistic if percentile else None,
                evaluate_low_sample_count_percentiles=LOW_SAMPLE_PERCENTILES if percentile else None,
                period=None if math else spec.period_seconds,
                evaluation_periods=spec.evaluation_periods,
                threshold=threshold,
                comparison_operator=spec.comparison,
                treat_missing_data=TREAT_MISSING_DATA,
                alarm_actions=[args.topic_arn],
                ok_actions=[args.topic_arn],
                # The name is set (ops.alarms finds alarms by it), so a replacement must delete the old alarm first:
                # created first, the new one would be the old one updated, then deleted with it. The threshold
                # belongs to the run time once the alarm exists: `ops.alarms apply --profile` switches profiles live
                # around a sale, and the next `pulumi up --refresh` must not switch it back mid-sale. So the
                # profile's threshold is what a new alarm starts with; afterwards `ops.alarms apply` sets it
                # (docs/runbook/alarms.md), also after a change of `alarmProfile` or `acceptableLatencySeconds`.
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True, ignore_changes=["threshold"]),
            )
        if args.replication is not None:
            self._replication_alarms(name, args, args.replication)
        self.register_outputs({"alarm_names": [alarm.name for alarm in self.alarms.values()]})

    def _replication_alarms(self, name: str, args: AlarmsArgs, replication: Replication) -> None:
        """One `ReplicationLatency` alarm per receiving region (alarm_catalogue.REPLICATION_LATENCY)."""
        spec = alarm_catalogue.REPLICATION_LATENCY
        for region in replication.receiving_regions:
            code = short_name(region)
            self.alarms[f"{spec.key}_{code}"] = aws.cloudwatch.MetricAlarm(
                f"{name}-replication-{code}",
                name=alarm_catalogue.replication_alarm_name(args.prefix, code),
                alarm_description=spec.description,
                namespace=spec.namespace,
                metric_name=spec.metric_name,
                dimensions={"TableName": replication.table_name, "ReceivingRegion": region},
                statistic=spec.statistic,
                period=spec.period_seconds,
                evaluation_periods=spec.evaluation_periods,
                threshold=spec.threshold_milliseconds,
                comparison_operator=spec.comparison,
                # No writes, no replication and no datapoint: nothing is lagging.
                treat_missing_data=TREAT_MISSING_DATA,
                alarm_actions=[args.topic_arn],
                ok_actions=[args.topic_arn],
                opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),  # a set name, as above
            )
