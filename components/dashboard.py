"""Dashboard: one CloudWatch page with the report's 7.2 graphs for whichever systems the stack deploys.

Queue depth, in-flight and dead-lettered orders, age of the oldest order, the expected wait (the alarms' metric math,
`components.wait_metrics`), the buyers' wait as the workers measured it (p50, p95 and p99 beside the acceptable
latency, the p95 alarm's threshold at 1x), worker CPU/memory, running task counts, and each ALB's requests, 5xx and
latency. A line appears when the stack deploys its subject's system, a panel when it has a line.

With two or more regions (docs/multi-region.md) the page shows every region: the primary's panels, then each other
region's copy of the async system, each panel titled with its region and drawn from that region's metrics, and the
orders table's replication lag between every pair of regions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pulumi
import pulumi_aws as aws

from app import alarm_catalogue, contract
from app.alarm_catalogue import AlarmSubject
from components import wait_metrics
from components.watched import Replication, Watched

PERIOD_SECONDS = 60
WIDGET_WIDTH = 12
WIDGET_HEIGHT = 6
WAIT_TITLE = "Expected wait (s)"
WAIT_PANEL_AT = 2  # after the order queue and the age of its oldest order
BUYER_WAIT_TITLE = "Buyers' wait, acceptance to paid (s)"
BUYER_WAIT_PERCENTILES = ("p50", "p95", "p99")
REPLICATION_TITLE = "Orders table replication lag (ms)"


@dataclass(frozen=True)
class Line:
    subject: AlarmSubject
    namespace: str
    metric: str
    stat: str
    label: str


def _alb(subject: AlarmSubject, system: str) -> list[tuple[str, list[Line]]]:
    return [
        (
            f"{system} ALB requests and 5xx",
            [
                Line(subject, "AWS/ApplicationELB", "RequestCount", "Sum", "requests"),
                Line(subject, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "Sum", "5xx"),
            ],
        ),
        (
            f"{system} ALB latency (s)",
            [
                Line(subject, "AWS/ApplicationELB", "TargetResponseTime", "p50", "p50"),
                Line(subject, "AWS/ApplicationELB", "TargetResponseTime", "p95", "p95"),
            ],
        ),
    ]


def _usage(subject: AlarmSubject, system: str) -> tuple[str, list[Line]]:
    return (
        f"{system} CPU and memory (%)",
        [
            Line(subject, "AWS/ECS", "CPUUtilization", "Average", "CPU"),
            Line(subject, "AWS/ECS", "MemoryUtilization", "Average", "memory"),
        ],
    )


PANELS: list[tuple[str, list[Line]]] = [
    (
        "Order queue",
        [
            Line(AlarmSubject.QUEUE, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", "waiting"),
            Line(AlarmSubject.QUEUE, "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "Maximum", "in flight"),
            Line(AlarmSubject.DLQ, "AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", "dead-lettered"),
        ],
    ),
    (
        "Age of oldest order (s)",
        [Line(AlarmSubject.QUEUE, "AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum", "oldest")],
    ),
    _usage(AlarmSubject.WORKER_SERVICE, "Workers"),
    (
        "Running tasks",
        [
            Line(subject, "ECS/ContainerInsights", "RunningTaskCount", "Average", label)
            for subject, label in (
                (AlarmSubject.WORKER_SERVICE, "workers"),
                (AlarmSubject.RECEIVER_SERVICE, "receivers"),
                (AlarmSubject.SYNC_SERVICE, "sync"),
            )
        ],
    ),
    *_alb(AlarmSubject.RECEIVER_ALB, "Receiver"),
    _usage(AlarmSubject.SYNC_SERVICE, "Sync"),
    *_alb(AlarmSubject.SYNC_ALB, "Sync"),
]


@dataclass(frozen=True)
class DashboardArgs:
    name: str  # the dashboard's physical name
    region: str
    watched: Watched
    workers_per_task: int  # for the expected wait
    payment_seconds: float
    acceptable_latency_seconds: float  # drawn beside the buyers' wait
    # Two or more regions: each other region's copy of the async system, and the global table's replication.
    other_regions: Sequence[tuple[str, Watched]] = ()
    replication: Sequence[Replication] = ()


def _widget(
    title: str, region: str, metrics: list[list[Any]], lines: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A graph; `lines` are horizontal annotations ({label, value})."""
    properties: dict[str, Any] = {
        "title": title,
        "region": region,
        "view": "timeSeries",
        "period": PERIOD_SECONDS,
        "metrics": metrics,
    }
    if lines:
        properties["annotations"] = {"horizontal": lines}
    return {"type": "metric", "width": WIDGET_WIDTH, "height": WIDGET_HEIGHT, "properties": properties}


def buyer_wait_widget(args: DashboardArgs) -> dict[str, Any]:
    """The waits the workers measured (`app.contract.WAIT_METRIC_*`), p50/p95/p99, and the acceptable latency."""
    dims = [part for item in args.watched[AlarmSubject.BUYER_WAIT].items() for part in item]
    return _widget(
        BUYER_WAIT_TITLE,
        args.region,
        [
            [contract.WAIT_METRIC_NAMESPACE, contract.WAIT_METRIC_NAME, *dims, {"stat": stat, "label": stat}]
            for stat in BUYER_WAIT_PERCENTILES
        ],
        [{"label": "acceptable latency", "value": args.acceptable_latency_seconds}],
    )


def widgets(args: DashboardArgs) -> list[dict[str, Any]]:
    """The dashboard's widgets (with Output values inside, resolved by json_dumps)."""
    watched = args.watched
    result = []
    for title, lines in PANELS:
        present = [line for line in lines if watched.has(line.subject)]
        if not present:
            continue
        metrics = []
        for line in present:
            dims = [part for name, value in watched[line.subject].items() for part in (name, value)]
            metrics.append([line.namespace, line.metric, *dims, {"stat": line.stat, "label": line.label}])
        result.append(_widget(title, args.region, metrics))
    if watched.has(AlarmSubject.BUYER_WAIT):
        result.insert(WAIT_PANEL_AT, buyer_wait_widget(args))
    # The expected wait goes before the buyers' wait: what a new order will wait, then what the buyers did.
    if watched.has(AlarmSubject.EXPECTED_WAIT):
        result.insert(
            WAIT_PANEL_AT,
            _widget(
                WAIT_TITLE,
                args.region,
                wait_metrics.dashboard_metrics(
                    watched[AlarmSubject.QUEUE],
                    watched[AlarmSubject.WORKER_SERVICE],
                    workers_per_task=args.workers_per_task,
                    payment_seconds=args.payment_seconds,
                ),
            ),
        )
    return result


def _in_region(widget: dict[str, Any], region: str) -> dict[str, Any]:
    """A widget titled with its region."""
    properties = widget["properties"]
    return {**widget, "properties": {**properties, "title": f"{region}: {properties['title']}"}}


def replication_widget(region: str, replication: Sequence[Replication]) -> dict[str, Any]:
    """`ReplicationLatency` of every (source, receiving) pair, each read in its source region."""
    spec = alarm_catalogue.REPLICATION_LATENCY
    metrics: list[list[Any]] = [
        [
            spec.namespace,
            spec.metric_name,
            "TableName",
            watch.table_name,
            "ReceivingRegion",
            receiving,
            {"stat": spec.statistic, "region": watch.source_region, "label": f"{watch.source_region} -> {receiving}"},
        ]
        for watch in replication
        for receiving in watch.receiving_regions
    ]
    return _widget(REPLICATION_TITLE, region, metrics, [{"label": "alarm", "value": spec.threshold_milliseconds}])


def page(args: DashboardArgs) -> list[dict[str, Any]]:
    """The page: one region's widgets, or with other regions every region's, titled, and the replication lag."""
    if not args.other_regions:
        return widgets(args)
    views = [
        (args.region, args),
        *((region, replace(args, region=region, watched=watched)) for region, watched in args.other_regions),
    ]
    result = [_in_region(widget, region) for region, view in views for widget in widgets(view)]
    if args.replication:
        result.append(replication_widget(args.region, args.replication))
    return result


class Dashboard(pulumi.ComponentResource):
    def __init__(self, name: str, args: DashboardArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:monitoring:Dashboard", name, None, opts)
        dashboard = aws.cloudwatch.Dashboard(
            f"{name}-page",
            dashboard_name=args.name,
            dashboard_body=pulumi.Output.json_dumps({"widgets": page(args)}),
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),  # a set name, as the alarms'
        )
        self.url: pulumi.Output[str] = dashboard.dashboard_name.apply(
            lambda dashboard_name: (
                f"https://{args.region}.console.aws.amazon.com/cloudwatch/home"
                f"?region={args.region}#dashboards:name={dashboard_name}"
            )
        )
        self.register_outputs({"url": self.url})
