"""The whole program: read the settings once, build the components, and name the stack outputs.

This is the one composing unit: it does the cross-wiring (image and network into the order stacks, their metrics into
the alarms and the dashboard), so the components stay unaware of each other.

Logical names are short and name the role (`sync`, `async-web`...): the stack is already in every URN, and
autonamed physical names inherit the logical name plus 7 random characters, so an ALB or target group (32
characters at most on AWS) fits whatever the project and stack are called. Only names that people or the ops
commands look up carry the stack prefix (`flashsale-<stack>`): alarm names, the dashboard, task definition families.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pulumi

from app import contract
from app.contract import AlarmSubject, System
from components.alarms import Alarms, AlarmsArgs
from components.alerts import Alerts, AlertsArgs
from components.async_stack import AsyncOrderStack, AsyncOrderStackArgs
from components.dashboard import Dashboard, DashboardArgs
from components.fargate import Placement
from components.image import ServiceImage, ServiceImageArgs
from components.network import Network, NetworkArgs
from components.settings import ConfigError, Settings, load_settings, stack_file, stack_prefix
from planning import calendar
from components.sync_stack import SyncOrderStack, SyncOrderStackArgs
from components.watched import Dimensions, Watched

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "app"


@dataclass(frozen=True)
class Deployment:
    settings: Settings
    sync: SyncOrderStack | None
    orders: AsyncOrderStack | None
    outputs: dict[str, pulumi.Input[object]]  # stack output name (contract.OUTPUT_*) -> value


def build() -> Deployment:
    s = load_settings()
    prefix = stack_prefix()
    net = Network("net", NetworkArgs(https=s.https))
    image = ServiceImage("image", ServiceImageArgs(context=APP_DIR))
    placement = Placement(
        image=image.image_uri,
        region=s.region,
        vpc_id=net.vpc_id,
        subnet_ids=net.subnet_ids,
        alb_security_group_id=net.alb_sg.id,
        tasks_security_group_id=net.tasks_sg.id,
        certificate_arn=s.certificate_arn,
        name_prefix=prefix,
    )
    outputs: dict[str, pulumi.Input[object]] = {contract.OUTPUT_ALARM_PREFIX: prefix,
                                                contract.OUTPUT_ALARM_PROFILE: s.alarm_profile}
    systems: set[System] = set()
    subjects: dict[AlarmSubject, Dimensions] = {}  # what alarms and the dashboard watch
    sync = None
    if s.deploy_sync:
        sync = SyncOrderStack(
            "sync",
            SyncOrderStackArgs(
                placement=placement,
                task_count=s.sync_task_count,
                payment_seconds=s.payment_seconds,
                payment_decline_rate=s.payment_decline_rate,
            ),
        )
        systems.add(System.SYNC)
        subjects |= sync.subjects
        outputs[contract.OUTPUT_SYNC_URL] = sync.url
    orders = None
    if s.deploy_async:
        try:
            steps, notes = calendar.schedule(s.sales, s.calendar_inputs(), datetime.now(timezone.utc))
        except calendar.CalendarError as error:
            raise ConfigError(f"{stack_file()}: {error}") from None
        for note in notes:
            pulumi.log.info(f"sale calendar: {note}")
        orders = AsyncOrderStack(
            "async",
            AsyncOrderStackArgs(
                placement=placement,
                receiver_tasks=s.receiver_tasks,
                worker_count=s.worker_count,
                worker_tasks=s.worker_tasks,
                min_worker_tasks=s.min_worker_tasks,
                max_worker_tasks=s.max_worker_tasks,
                payment_seconds=s.payment_seconds,
                payment_decline_rate=s.payment_decline_rate,
                backlog_per_task_target=s.backlog_per_task_target,
                acceptable_latency_seconds=s.acceptable_latency_seconds,
                sale_schedule=tuple(steps),
            ),
        )
        systems.add(System.ASYNC)
        subjects |= orders.subjects
        outputs |= {
            contract.OUTPUT_ASYNC_URL: orders.url,
            contract.OUTPUT_TOPIC_ARN: orders.topic.arn,
            contract.OUTPUT_QUEUE_URL: orders.queue.url,
            contract.OUTPUT_DLQ_URL: orders.dlq.url,
            contract.OUTPUT_ORDERS_TABLE: orders.table.name,
            contract.OUTPUT_CLUSTER_NAME: orders.cluster.name,
            contract.OUTPUT_WORKER_SERVICE_NAME: orders.worker.service_name,
            contract.OUTPUT_RECEIVER_SERVICE_NAME: orders.receiver.service_name,
            contract.OUTPUT_WORKER_COUNT: s.worker_count,
            contract.OUTPUT_PAYMENT_SECONDS: s.payment_seconds,
            contract.OUTPUT_ACCEPTABLE_LATENCY: s.acceptable_latency_seconds,
            contract.OUTPUT_SALE_LEAD_SECONDS: s.sale_lead_seconds,
        }

    alerts = Alerts("alerts", AlertsArgs(
        source_root=ROOT, emails=s.alert_emails, webhook_url=s.alert_webhook_url,
        worker_service=orders.worker_service_ref() if orders else None,
        acceptable_latency_seconds=s.acceptable_latency_seconds))
    outputs |= {contract.OUTPUT_ALERTS_TOPIC_ARN: alerts.alerts_topic_arn,
                contract.OUTPUT_ALARM_TOPIC_ARN: alerts.alarm_topic_arn,
                contract.OUTPUT_NOTIFIER_FUNCTION_NAME: alerts.notifier_name}
    watched = Watched(systems=frozenset(systems), dimensions=subjects)
    Alarms("alarms", AlarmsArgs(prefix=prefix, thresholds=s.thresholds, watched=watched, topic_arn=alerts.alarm_topic_arn,
                                acceptable_latency_seconds=s.acceptable_latency_seconds, worker_count=s.worker_count,
                                payment_seconds=s.payment_seconds))
    dashboard = Dashboard("dashboard", DashboardArgs(name=prefix, region=s.region, watched=watched))
    outputs[contract.OUTPUT_DASHBOARD_URL] = dashboard.url
    return Deployment(settings=s, sync=sync, orders=orders, outputs=outputs)
