"""CloudWatch handlers: metric alarms (operators, statistics or percentiles, periods and missing-data treatments
checked as AWS does; metric-math alarms kept in the context for the local runtime to evaluate) and dashboards."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.alarm_catalogue import is_percentile
from bench.localaws.resources.registry import (
    DATA_PLANE,
    Context,
    Created,
    Declared,
    Invalid,
    between,
    handles,
    json_text,
    refreshes,
    whole,
)

ALARM_OPERATORS = (
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "GreaterThanUpperThreshold",
)
ALARM_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")
LOW_SAMPLE_PERCENTILES = ("evaluate", "ignore")


def _period(value: int) -> None:
    """CloudWatch: 10, 20, 30 (high resolution) or a multiple of 60 seconds."""
    if value not in (10, 20, 30) and (value <= 0 or value % 60):
        raise Invalid(f"period must be 10, 20, 30 or a multiple of 60 seconds, got {value}")


def _metric_query(query: Mapping[str, Any]) -> dict[str, Any]:
    """A Pulumi metricQuery ({id, expression | metric: {metricName, namespace, period, stat, dimensions}}) as the
    PutMetricAlarm Metrics entry."""
    entry: dict[str, Any] = {"Id": query["id"], "ReturnData": bool(query.get("returnData", False))}
    for key in ("expression", "label"):
        if query.get(key):
            entry[key.capitalize()] = query[key]
    if query.get("period"):
        entry["Period"] = whole(query["period"])
    metric = query.get("metric")
    if metric:
        _period(whole(metric["period"]))
        entry["MetricStat"] = {
            "Metric": {
                "Namespace": metric["namespace"],
                "MetricName": metric["metricName"],
                "Dimensions": [{"Name": k, "Value": v} for k, v in (metric.get("dimensions") or {}).items()],
            },
            "Period": whole(metric["period"]),
            "Stat": metric["stat"],
        }
    return entry


def _statistic(i: Mapping[str, Any]) -> dict[str, str]:
    """A single-metric alarm's statistic: a basic one, or a percentile (ExtendedStatistic, with its low-sample-count
    rule); exactly one of the two, as PutMetricAlarm requires."""
    basic, extended = i.get("statistic"), i.get("extendedStatistic")
    if (basic is None) == (extended is None):
        raise Invalid("set exactly one of statistic and extendedStatistic")
    if basic is not None:
        if basic not in ALARM_STATISTICS:
            raise Invalid(f"statistic must be one of {', '.join(ALARM_STATISTICS)}, got {basic!r}")
        return {"Statistic": basic}
    if not isinstance(extended, str) or not is_percentile(extended):
        raise Invalid(f"extendedStatistic must be a percentile p0..p100 (e.g. p95), got {extended!r}")
    arguments = {"ExtendedStatistic": extended}
    low = i.get("evaluateLowSampleCountPercentiles")
    if low is not None:
        if low not in LOW_SAMPLE_PERCENTILES:
            raise Invalid(f"evaluateLowSampleCountPercentiles must be one of {', '.join(LOW_SAMPLE_PERCENTILES)}")
        arguments["EvaluateLowSampleCountPercentile"] = str(low)
    return arguments


@handles("aws:cloudwatch/metricAlarm:MetricAlarm", DATA_PLANE)
def metric_alarm(ctx: Context, r: Declared) -> Created:
    i = r.inputs
    if i["comparisonOperator"] not in ALARM_OPERATORS:
        raise Invalid(
            f"comparisonOperator must be one of {', '.join(ALARM_OPERATORS)}, got {i['comparisonOperator']!r}"
        )
    if i.get("treatMissingData", "missing") not in MISSING_DATA:
        raise Invalid(f"treatMissingData must be one of {', '.join(MISSING_DATA)}")
    arguments: dict[str, Any] = {
        "AlarmName": r.name,
        "ComparisonOperator": i["comparisonOperator"],
        "EvaluationPeriods": whole(i["evaluationPeriods"]),
        "TreatMissingData": i.get("treatMissingData", "missing"),
        "ActionsEnabled": bool(i.get("actionsEnabled", True)),
        "AlarmActions": list(i.get("alarmActions", [])),
        "OKActions": list(i.get("okActions", [])),
        "InsufficientDataActions": list(i.get("insufficientDataActions", [])),
    }
    between("evaluationPeriods", arguments["EvaluationPeriods"], 1, 1_000_000)
    for source, target in (
        ("alarmDescription", "AlarmDescription"),
        ("threshold", "Threshold"),
        ("datapointsToAlarm", "DatapointsToAlarm"),
    ):
        if i.get(source) is not None:
            arguments[target] = whole(i[source])
    if i.get("metricQueries"):
        arguments["Metrics"] = [_metric_query(q) for q in i["metricQueries"]]
        # ministack accepts metric math and keeps no trace of it: the local runtime evaluates these alarms from
        # their definitions as deployed (bench.localaws.metric_math).
        ctx.math_alarms[r.name] = arguments["Metrics"]
    else:
        arguments |= _statistic(i)
        _period(whole(i["period"]))
        arguments |= {
            "Namespace": i["namespace"],
            "MetricName": i["metricName"],
            "Period": whole(i["period"]),
            "Dimensions": [{"Name": k, "Value": v} for k, v in (i.get("dimensions") or {}).items()],
        }
    cloudwatch = ctx.client("cloudwatch")
    cloudwatch.put_metric_alarm(**arguments)
    arn = cloudwatch.describe_alarms(AlarmNames=[r.name])["MetricAlarms"][0]["AlarmArn"]
    return r.name, {"arn": arn}


@refreshes("aws:cloudwatch/metricAlarm:MetricAlarm")
def read_metric_alarm(ctx: Context, r: Declared) -> dict[str, Any]:
    """The threshold as it is now: `ops.alarms apply` changes it during a sale."""
    found = ctx.client("cloudwatch").describe_alarms(AlarmNames=[r.name])["MetricAlarms"]
    return {"threshold": found[0]["Threshold"]} if found else {}


@handles("aws:cloudwatch/dashboard:Dashboard", DATA_PLANE)
def dashboard(ctx: Context, r: Declared) -> Created:
    body = json_text(r.inputs["dashboardBody"], "dashboardBody")
    if not isinstance(body, dict) or not isinstance(body.get("widgets"), list):
        raise Invalid("dashboardBody must be a JSON object with a widgets list")
    cloudwatch = ctx.client("cloudwatch")
    cloudwatch.put_dashboard(DashboardName=r.name, DashboardBody=r.inputs["dashboardBody"])
    arn = cloudwatch.get_dashboard(DashboardName=r.name)["DashboardArn"]
    return r.name, {"dashboardArn": arn}
