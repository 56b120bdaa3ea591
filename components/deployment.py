"""The whole program: read the settings once, build the components, and name the stack outputs.

This is the one composing unit: it does the cross-wiring, so the components stay unaware of each other. One cluster
and one image for every service; the sync order service and the order receiver are load-balanced services, the
workers a queue worker service on the order pipeline; which role may do what is said here, by the pipeline's grant
methods; the services' metrics go into the alarms and the dashboard.

Logical names are short and name the role (`sync`, `receiver-web`...): the stack is already in every URN, and
autonamed physical names inherit the logical name plus 7 random characters, so an ALB or target group (32
characters at most on AWS) fits whatever the project and stack are called. Only names that people or the ops
commands look up carry the stack prefix (`flashsale-<stack>`): alarm names, the dashboard, task definition families.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pulumi

from app import contract
from app.alarm_catalogue import AlarmSubject, System
from app.roles import Role
from components.access_logs import AccessLogBucket, AccessLogBucketArgs
from components.alarms import Alarms, AlarmsArgs
from components.alerts import Alerts, AlertsArgs
from components.cluster import ServiceCluster, ServiceClusterArgs
from components.dashboard import Dashboard, DashboardArgs
from components.fargate import Placement, TaskSpec
from components.former_names import with_former_names
from components.image import ServiceImage, ServiceImageArgs
from components.keys import KeyTable, KeyTableArgs
from components.load_balanced import LoadBalancedService, LoadBalancedServiceArgs
from components.network import Network, NetworkArgs
from components.pipeline import OrderPipeline, OrderPipelineArgs
from components.queue_worker import QueueWorkerService, QueueWorkerServiceArgs
from components.settings import ConfigError, Settings, load_settings, stack_file, stack_prefix
from components.sweeper import OrphanSweeper, OrphanSweeperArgs
from components.watched import Dimensions, Watched
from planning import calendar
from stackconfig import output_names
from stackconfig.files import ROOT

APP_DIR = ROOT / "app"


@dataclass(frozen=True)
class SyncSystem:
    """The report's Part I: the sync order service, and the Idempotency-Key records its tasks share."""

    service: LoadBalancedService
    keys: KeyTable


@dataclass(frozen=True)
class AsyncSystem:
    """The report's Part III: receiver -> order pipeline -> workers."""

    pipeline: OrderPipeline
    receiver: LoadBalancedService
    worker: QueueWorkerService


@dataclass(frozen=True)
class Deployment:
    settings: Settings
    cluster: ServiceCluster
    sync: SyncSystem | None
    orders: AsyncSystem | None
    outputs: dict[str, pulumi.Input[object]]  # stack output name (stackconfig.output_names) -> value


def sync_system(s: Settings, placement: Placement) -> SyncSystem:
    """The report's Part I. Its only AWS calls are its Idempotency-Key records, in a table every sync task sees (a
    retry the ALB sends to another task must find the first task's claim)."""
    keys = KeyTable("sync-keys", KeyTableArgs())
    service = LoadBalancedService(
        "sync",
        LoadBalancedServiceArgs(
            placement=placement,
            task=TaskSpec(
                role=Role.SYNC,
                desired_count=s.sync_task_count,
                environment={
                    contract.ENV_PAYMENT_SECONDS: str(s.payment_seconds),
                    contract.ENV_PAYMENT_DECLINE_RATE: str(s.payment_decline_rate),
                    contract.ENV_KEYS_TABLE: keys.name,
                },
                grants=(keys.grant_records(),),
            ),
        ),
    )
    return SyncSystem(service=service, keys=keys)


def async_system(s: Settings, placement: Placement) -> AsyncSystem:
    try:
        steps, notes = calendar.schedule(s.sales, s.calendar_inputs(), datetime.now(UTC))
    except calendar.CalendarError as error:
        raise ConfigError(f"{stack_file()}: {error}") from None
    for note in notes:
        pulumi.log.info(f"sale calendar: {note}")
    pipeline = OrderPipeline("orders", OrderPipelineArgs(protect_data=s.protect_data))
    worker = QueueWorkerService(
        "worker",
        QueueWorkerServiceArgs(
            placement=placement,
            task=TaskSpec(
                role=Role.WORKER,
                desired_count=s.worker_tasks,
                environment={
                    contract.ENV_QUEUE_URL: pipeline.queue.url,
                    contract.ENV_ORDERS_TABLE: pipeline.table.name,
                    contract.ENV_WORKER_COUNT: str(s.worker_count),
                    contract.ENV_PAYMENT_SECONDS: str(s.payment_seconds),
                    contract.ENV_PAYMENT_DECLINE_RATE: str(s.payment_decline_rate),
                    # The buyers' wait metric's Stack dimension (its Region is the task's AWS_REGION, set by ECS).
                    contract.ENV_STACK_NAME: pulumi.get_stack(),
                },
                grants=(pipeline.grant_consume(), pipeline.grant_settle_orders()),
            ),
            queue_name=pipeline.queue.name,
            backlog_per_task_target=s.backlog_per_task_target,
            acceptable_latency_seconds=s.acceptable_latency_seconds,
            min_tasks=s.min_worker_tasks,
            max_tasks=s.max_worker_tasks,
            sale_schedule=tuple(steps),
        ),
    )
    receiver = LoadBalancedService(
        "receiver",
        LoadBalancedServiceArgs(
            placement=placement,
            task=TaskSpec(
                role=Role.RECEIVER,
                desired_count=s.receiver_tasks,
                environment={
                    contract.ENV_TOPIC_ARN: pipeline.topic.arn,
                    contract.ENV_QUEUE_URL: pipeline.queue.url,
                    contract.ENV_ORDERS_TABLE: pipeline.table.name,
                    # For /health's num_workers and the order-status estimate: the expected wait over the worker
                    # service's running tasks, as the alarms compute it (app.expected_wait).
                    contract.ENV_WORKER_COUNT: str(s.worker_count),
                    contract.ENV_PAYMENT_SECONDS: str(s.payment_seconds),
                    **worker.ref.environment(),
                },
                grants=(
                    pipeline.grant_publish(),
                    pipeline.grant_write_orders(),
                    pipeline.grant_queue_depth(),
                    worker.ref.grant_describe(),
                ),
            ),
        ),
    )
    return AsyncSystem(pipeline=pipeline, receiver=receiver, worker=worker)


def build() -> Deployment:
    s = load_settings()
    prefix = stack_prefix()
    # Before any resource: resources renamed since the first release keep their old URNs as aliases.
    pulumi.runtime.register_stack_transformation(with_former_names(prefix))
    net = Network("net", NetworkArgs(https=s.https))
    image = ServiceImage("image", ServiceImageArgs(context=APP_DIR))
    cluster = ServiceCluster("ecs", ServiceClusterArgs(region=s.region))
    placement = Placement(
        cluster=cluster,
        image=image.image_uri,
        region=s.region,
        vpc_id=net.vpc_id,
        subnet_ids=net.subnet_ids,
        alb_security_group_id=net.alb_sg.id,
        tasks_security_group_id=net.tasks_sg.id,
        access_logs=AccessLogBucket("alb-logs", AccessLogBucketArgs()),
        certificate_arn=s.certificate_arn,
        name_prefix=prefix,
    )
    outputs: dict[str, pulumi.Input[object]] = {
        output_names.ALARM_PREFIX: prefix,
        output_names.ALARM_PROFILE: s.alarm_profile,
        output_names.CLUSTER_NAME: cluster.name,
    }
    systems: set[System] = set()
    dimensions: dict[AlarmSubject, Dimensions] = {}  # what alarms and the dashboard watch
    sync = sync_system(s, placement) if s.deploy_sync else None
    if sync is not None:
        systems.add(System.SYNC)
        dimensions |= {
            AlarmSubject.SYNC_ALB: sync.service.alb_dimensions,
            AlarmSubject.SYNC_SERVICE: sync.service.service.dimensions,
        }
        outputs[output_names.SYNC_URL] = sync.service.url
    orders = async_system(s, placement) if s.deploy_async else None
    worker_ref = None
    if orders is not None:
        pipeline, receiver, worker = orders.pipeline, orders.receiver, orders.worker
        systems.add(System.ASYNC)
        dimensions |= {
            AlarmSubject.QUEUE: pipeline.queue_dimensions,
            AlarmSubject.DLQ: pipeline.dlq_dimensions,
            AlarmSubject.WORKER_SERVICE: worker.service.dimensions,
            AlarmSubject.RECEIVER_SERVICE: receiver.service.dimensions,
            AlarmSubject.RECEIVER_ALB: receiver.alb_dimensions,
            # What the workers write into their payment lines (app.worker.wait_metric): this stack, in its region.
            AlarmSubject.BUYER_WAIT: {
                contract.WAIT_DIMENSION_STACK: pulumi.get_stack(),
                contract.WAIT_DIMENSION_REGION: s.region,
            },
        }
        worker_ref = worker.ref  # the alarm notifier says how many worker tasks to add
        outputs |= {
            output_names.ASYNC_URL: receiver.url,
            output_names.TOPIC_ARN: pipeline.topic.arn,
            output_names.QUEUE_URL: pipeline.queue.url,
            output_names.DLQ_URL: pipeline.dlq.url,
            output_names.ORDERS_TABLE: pipeline.table.name,
            output_names.WORKER_SERVICE_NAME: worker.service.service_name,
            output_names.RECEIVER_SERVICE_NAME: receiver.service.service_name,
            output_names.WORKER_COUNT: s.worker_count,
            output_names.PAYMENT_SECONDS: s.payment_seconds,
            output_names.ACCEPTABLE_LATENCY: s.acceptable_latency_seconds,
            output_names.SALE_LEAD_SECONDS: s.sale_lead_seconds,
        }
        sweeper = OrphanSweeper(
            "sweeper",
            OrphanSweeperArgs(source_root=ROOT, table_name=pipeline.table.name, grant=pipeline.grant_sweep_orders()),
        )
        outputs[output_names.SWEEPER_FUNCTION_NAME] = sweeper.function_name

    alerts = Alerts(
        "alerts",
        AlertsArgs(
            source_root=ROOT,
            emails=s.alert_emails,
            webhook_url=s.alert_webhook_secret,
            worker_service=worker_ref,
            acceptable_latency_seconds=s.acceptable_latency_seconds,
        ),
    )
    outputs |= {
        output_names.ALERTS_TOPIC_ARN: alerts.alerts_topic_arn,
        output_names.ALARM_TOPIC_ARN: alerts.alarm_topic_arn,
        output_names.NOTIFIER_FUNCTION_NAME: alerts.notifier_name,
    }
    watched = Watched(systems=frozenset(systems), dimensions=dimensions)
    Alarms(
        "alarms",
        AlarmsArgs(
            prefix=prefix,
            thresholds=s.thresholds,
            watched=watched,
            topic_arn=alerts.alarm_topic_arn,
            acceptable_latency_seconds=s.acceptable_latency_seconds,
            worker_count=s.worker_count,
            payment_seconds=s.payment_seconds,
        ),
    )
    dashboard = Dashboard(
        "dashboard",
        DashboardArgs(
            name=prefix,
            region=s.region,
            watched=watched,
            workers_per_task=s.worker_count,
            payment_seconds=s.payment_seconds,
            acceptable_latency_seconds=s.acceptable_latency_seconds,
        ),
    )
    outputs[output_names.DASHBOARD_URL] = dashboard.url
    return Deployment(settings=s, cluster=cluster, sync=sync, orders=orders, outputs=outputs)
