"""LOCAL ONLY: evaluate the alarms defined by metric math, which ministack accepts but never evaluates.

ministack evaluates an alarm only from its own Namespace and MetricName (whatever the dimensions), and drops an
alarm's `Metrics=[...]` (1.5.33: DescribeAlarms answers without them): a metric-math alarm stays INSUFFICIENT_DATA
forever. The local runtime therefore evaluates those alarms itself, from their definitions as the program deployed
them (the deployer keeps them) and their threshold and state as ministack holds them (`ops.alarms apply` changes
the threshold there), the way CloudWatch does, from the metrics in ministack: each `MetricStat` query's statistic over
the alarm's last period
(GetMetricStatistics, with the query's dimensions), the returned expression over them (the arithmetic subset of
CloudWatch metric math: numbers, query ids, + - * / and parentheses), the comparison with the threshold, and, on a
change of state, SetAlarmState, which runs the alarm's actions as a real evaluation would. A query without data,
or a division by zero, gives no value, which the alarm's TreatMissingData decides (notBreaching: OK).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

OPERATORS: dict[type[ast.operator], Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}
WORDS = {
    "GreaterThanThreshold": "greater than",
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}


class UnsupportedExpression(ValueError):
    pass


def evaluate(expression: str, values: Mapping[str, float | None]) -> float | None:
    """The expression's value; None when a query has no value or a division is by zero."""

    def walk(node: ast.AST) -> float | None:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in values:
                raise UnsupportedExpression(f"unknown query id {node.id!r}")
            return values[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = walk(node.operand)
            return None if inner is None else -inner
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            left, right = walk(node.left), walk(node.right)
            if left is None or right is None or (isinstance(node.op, ast.Div) and right == 0):
                return None
            return OPERATORS[type(node.op)](left, right)
        raise UnsupportedExpression(f"the local evaluator takes + - * / over numbers and query ids: {expression!r}")

    return walk(ast.parse(expression, mode="eval"))


def metric_value(cloudwatch: Any, stat: Mapping[str, Any], now: datetime) -> float | None:
    """A MetricStat's statistic over its last period, or None without data."""
    metric, period = stat["Metric"], int(stat["Period"])
    points = cloudwatch.get_metric_statistics(
        Namespace=metric["Namespace"],
        MetricName=metric["MetricName"],
        Dimensions=metric.get("Dimensions", []),
        StartTime=now - timedelta(seconds=period),
        EndTime=now + timedelta(seconds=1),
        Period=period,
        Statistics=[stat["Stat"]],
    )["Datapoints"]
    values = [float(p[stat["Stat"]]) for p in points if stat["Stat"] in p]
    if not values:
        return None
    return (
        max(values)
        if stat["Stat"] == "Maximum"
        else min(values)
        if stat["Stat"] == "Minimum"
        else sum(values)
        if stat["Stat"] == "Sum"
        else sum(values) / len(values)
    )


def evaluate_math_alarms(cloudwatch: Any, definitions: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """One evaluation round of the alarms named in `definitions` (alarm name -> its Metrics, as PutMetricAlarm takes
    them); returns the names of the alarms that changed state."""
    now = datetime.now(UTC)
    changed = []
    names = list(definitions)
    for start in range(0, len(names), 100):  # DescribeAlarms takes up to 100 names
        for alarm in cloudwatch.describe_alarms(AlarmNames=names[start : start + 100])["MetricAlarms"]:
            queries = definitions[alarm["AlarmName"]]
            if alarm["ComparisonOperator"] not in COMPARE:
                continue
            values = {q["Id"]: metric_value(cloudwatch, q["MetricStat"], now) for q in queries if "MetricStat" in q}
            (returned,) = [q for q in queries if q.get("ReturnData", True)]
            value = (
                values.get(returned["Id"]) if "Expression" not in returned else evaluate(returned["Expression"], values)
            )
            threshold = float(alarm["Threshold"])
            if value is None:
                if alarm.get("TreatMissingData", "missing") != "notBreaching" or alarm["StateValue"] == "OK":
                    continue
                state, reason = "OK", "no data (treated as not breaching)"
            else:
                breaching = COMPARE[alarm["ComparisonOperator"]](value, threshold)
                state = "ALARM" if breaching else "OK"
                reason = (
                    f"Threshold Crossed: 1 datapoint [{round(value, 3)} ({now:%d/%m/%y %H:%M:%S})] was "
                    f"{'' if breaching else 'not '}{WORDS[alarm['ComparisonOperator']]} the threshold "
                    f"({threshold:.1f})."
                )
            if state != alarm["StateValue"]:
                cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason)
                changed.append(alarm["AlarmName"])
    return changed


def shorten_periods(definitions: Mapping[str, list[dict[str, Any]]], factor: float) -> dict[str, int]:
    """LOCAL LAB ONLY: divide each metric-math alarm's query periods by `factor` (the lab runs time `factor` times
    faster; ops.alarms.shorten_periods does the same to single-metric alarms). Returns alarm name -> new period."""
    periods = {}
    for name, queries in definitions.items():
        for query in queries:
            if "MetricStat" in query:
                query["MetricStat"]["Period"] = max(1, round(query["MetricStat"]["Period"] / factor))
                periods[name] = query["MetricStat"]["Period"]
    return periods
