"""The whole program: read the settings once, build the components, and name the stack outputs.

This is the one composing unit: it does the cross-wiring, so the components stay unaware of each other. One cluster
and one image for every service; the sync order service and the order receiver are load-balanced services, the
workers a queue worker service on the order pipeline; which role may do what is said here, by the pipeline's grant
methods; the services' metrics go into the alarms and the dashboard.

Logical names are short and name the role (`sync`, `receiver-web`...): the stack is already in every URN, and
autonamed physical names inherit the logical name plus 7 random characters, so an ALB or target group (32
characters at most on AWS) fits whatever the project and stack are called. Only names that people or the ops
commands look up carry the stack prefix (`flashsale-<stack>`): alarm names, the dashboard, task definition families.

Regions (docs/multi-region.md): with one (the default), the stack is what it always was. With two or more, the stack's
own region (`aws:region`, the first of `regions`) is the primary and keeps every resource it had, under the same
URNs; its orders table becomes a global table with a replica in each other region; each other region gets a copy of
the async system (`components.region.RegionalCopy`, under that region's explicit provider); `ordersDomain` routes
buyers to the nearest healthy region (`components.routing`); the dashboard draws every region. The sync service and
the orphan sweeper stay in the primary.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from app import contract
from app.alarm_catalogue import AlarmSubject, System
from app.roles import Role
from components.access_logs import AccessLogBucket, AccessLogBucketArgs
from components.alarms import Alarms, AlarmsArgs
from components.alerts import Alerts, AlertsArgs
from components.async_system import AsyncSystem, async_dimensions, async_system
from components.cluster import ServiceCluster, ServiceClusterArgs
from components.dashboard import Dashboard, DashboardArgs
from components.fargate import Placement, TaskSpec
from components.former_names import with_former_names
from components.image import ServiceImage, ServiceImageArgs
from components.keys import KeyTable, KeyTableArgs
from components.load_balanced import LoadBalancedService, LoadBalancedServiceArgs
from components.network import Network, NetworkArgs
from components.pipeline import TableReplica, replica_arn
from components.region import RegionalCopy, RegionalCopyArgs
from components.routing import LatencyRouting, LatencyRoutingArgs, RegionalEndpoint
from components.settings import Settings, load_settings, stack_prefix
from components.sweeper import OrphanSweeper, OrphanSweeperArgs
from components.watched import Dimensions, Replication, Watched
from stackconfig import output_names
from stackconfig.files import ROOT
from stackconfig.regions import short_name

APP_DIR = ROOT / "app"


@dataclass(frozen=True)
class SyncSystem:
    """The report's Part I: the sync order service, and the Idempotency-Key records its tasks share."""

    service: LoadBalancedService
    keys: KeyTable


@dataclass(frozen=True)
class Deployment:
    settings: Settings
    cluster: ServiceCluster
    sync: SyncSystem | None
    orders: AsyncSystem | None
    outputs: dict[str, pulumi.Input[object]]  # stack output name (stackconfig.output_names) -> value
    regional: tuple[RegionalCopy, ...] = ()  # two or more regions: the other regions' copies of the async system


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
    # Two or more regions: the primary's orders table is a global table with a replica in each other region.
    others = s.regions[1:]
    orders = async_system(s, placement, replica_regions=others) if s.deploy_async else None
    worker_ref = None
    regional: tuple[RegionalCopy, ...] = ()
    replication: Replication | None = None
    if orders is not None:
        pipeline, receiver, worker = orders.pipeline, orders.receiver, orders.worker
        systems.add(System.ASYNC)
        dimensions |= async_dimensions(orders, s.region)
        worker_ref = worker.ref  # the alarm notifier says how many worker tasks to add
        outputs |= {
            output_names.ASYNC_URL: receiver.url,
            output_names.TOPIC_ARN: pipeline.topic.arn,
            output_names.QUEUE_URL: pipeline.queue.url,
            output_names.DLQ_URL: pipeline.dlq.url,
            output_names.ORDERS_TABLE: pipeline.table_name,
            output_names.WORKER_SERVICE_NAME: worker.service.service_name,
            output_names.RECEIVER_SERVICE_NAME: receiver.service.service_name,
            output_names.WORKER_COUNT: s.worker_count,
            output_names.PAYMENT_SECONDS: s.payment_seconds,
            output_names.ACCEPTABLE_LATENCY: s.acceptable_latency_seconds,
            output_names.SALE_LEAD_SECONDS: s.sale_lead_seconds,
        }
        sweeper = OrphanSweeper(
            "sweeper",
            OrphanSweeperArgs(source_root=ROOT, table_name=pipeline.table_name, grant=pipeline.grant_sweep_orders()),
        )
        outputs[output_names.SWEEPER_FUNCTION_NAME] = sweeper.function_name
        if s.multi_region:
            regional = tuple(regional_copy(s, region, prefix, orders) for region in others)
            replication = Replication(table_name=pipeline.table_name, source_region=s.region, receiving_regions=others)
            routing = latency_routing(s, orders, regional)
            outputs |= {
                output_names.ORDERS_DOMAIN_URL: routing.url,
                output_names.REGIONAL_ASYNC_URLS: {copy.region: copy.url for copy in regional},
            }

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
            replication=replication,
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
            other_regions=[(copy.region, copy.watched) for copy in regional],
            replication=[replication, *(copy.replication for copy in regional)] if replication else [],
        ),
    )
    outputs[output_names.DASHBOARD_URL] = dashboard.url
    return Deployment(settings=s, cluster=cluster, sync=sync, orders=orders, outputs=outputs, regional=regional)


def regional_copy(s: Settings, region: str, prefix: str, primary: AsyncSystem) -> RegionalCopy:
    """Another region's copy of the async system, on its replica of the primary's orders table, with its own
    explicit provider for that region (one stack, one provider per region: docs/multi-region.md)."""
    table = primary.pipeline
    return RegionalCopy(
        short_name(region),
        RegionalCopyArgs(
            settings=s,
            region=region,
            # A global table's replica has the table's name; its ARN names its region.
            table=TableReplica(name=table.table_name, arn=table.table_arn.apply(lambda arn: replica_arn(arn, region))),
            prefix=prefix,
        ),
    )


def latency_routing(s: Settings, primary: AsyncSystem, regional: tuple[RegionalCopy, ...]) -> LatencyRouting:
    """`ordersDomain`: each region's receiver ALB, health-checked, the nearest healthy one answering."""
    receivers = [(s.region, primary.receiver), *((copy.region, copy.orders.receiver) for copy in regional)]
    return LatencyRouting(
        "dns",
        LatencyRoutingArgs(
            hosted_zone_id=s.hosted_zone_id,
            domain=s.orders_domain,
            endpoints=[
                RegionalEndpoint(region, receiver.endpoint.alb.dns_name, receiver.endpoint.alb.zone_id)
                for region, receiver in receivers
            ],
            https=s.https,
        ),
    )
