"""RegionalCopy: the async system in one more region, with two or more regions (docs/multi-region.md).

Creates the region's explicit AWS provider (`<name>-aws`) and, under it (each child component is given it and its
children inherit it), the region's
network (default VPC, security groups), image repository and build, ECS cluster, ALB access-log bucket, the async
system (order topic, queue and DLQ, receiver behind its ALB, workers; `components.async_system`) on the region's
replica of the primary's global orders table, and its own alerts (alarm topic, notifier, alerts topic: CloudWatch
alarm actions only reach a topic in the alarm's region) and alarms, the catalogue's plus the orders table's
`ReplicationLatency` to every other region. Not here: the sync service and the orphan sweeper stay in the primary
region, and the dashboard is the primary's, which draws every region.

Logical names start with the region's short name (`use2-receiver`...): unique in the stack, and an autonamed ALB or
target group stays within AWS's 32 characters. Physical names that are set explicitly (alarm names, task families)
are the primary's: they are regional on AWS, so the same name in another region is another resource, and the ops
commands find a region's alarms by the same prefix there.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from app.alarm_catalogue import System
from components.access_logs import AccessLogBucket, AccessLogBucketArgs
from components.alarms import Alarms, AlarmsArgs
from components.alerts import Alerts, AlertsArgs
from components.async_system import AsyncSystem, async_dimensions, async_system
from components.cluster import ServiceCluster, ServiceClusterArgs
from components.fargate import Placement
from components.image import ServiceImage, ServiceImageArgs
from components.network import Network, NetworkArgs
from components.pipeline import TableReplica
from components.settings import Settings
from components.watched import Replication, Watched
from stackconfig.files import ROOT


@dataclass(frozen=True)
class RegionalCopyArgs:
    settings: Settings
    region: str  # of its provider, and of the ARNs, dimensions and dashboard lines it makes
    table: TableReplica  # the region's replica of the primary's orders table
    prefix: str  # flashsale-<stack>: alarm names and task families, as the primary's


class RegionalCopy(pulumi.ComponentResource):
    def __init__(self, name: str, args: RegionalCopyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:regions:RegionalCopy", name, None, opts)
        s, region = args.settings, args.region
        self.provider = aws.Provider(f"{name}-aws", region=region, opts=pulumi.ResourceOptions(parent=self))

        def child() -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, provider=self.provider)

        net = Network(f"{name}-net", NetworkArgs(https=s.https), opts=child())
        image = ServiceImage(f"{name}-image", ServiceImageArgs(context=ROOT / "app"), opts=child())
        cluster = ServiceCluster(f"{name}-ecs", ServiceClusterArgs(region=region), opts=child())
        placement = Placement(
            cluster=cluster,
            image=image.image_uri,
            region=region,
            vpc_id=net.vpc_id,
            subnet_ids=net.subnet_ids,
            alb_security_group_id=net.alb_sg.id,
            tasks_security_group_id=net.tasks_sg.id,
            access_logs=AccessLogBucket(f"{name}-alb-logs", AccessLogBucketArgs(), opts=child()),
            certificate_arn=s.certificate_arn,  # empty: the config refuses one region's certificate for several
            name_prefix=args.prefix,
        )
        self.region = region
        self.cluster = cluster
        self.orders: AsyncSystem = async_system(
            s, placement, tag=f"{name}-", parent=self, provider=self.provider, replica_of=args.table
        )
        self.watched = Watched(systems=frozenset({System.ASYNC}), dimensions=async_dimensions(self.orders, region))
        alerts = Alerts(
            f"{name}-alerts",
            AlertsArgs(
                source_root=ROOT,
                emails=s.alert_emails,
                webhook_url=s.alert_webhook_secret,
                worker_service=self.orders.worker.ref,
                acceptable_latency_seconds=s.acceptable_latency_seconds,
            ),
            opts=child(),
        )
        self.replication = Replication(
            table_name=args.table.name,
            source_region=region,
            receiving_regions=tuple(other for other in s.regions if other != region),
        )
        Alarms(
            f"{name}-alarms",
            AlarmsArgs(
                prefix=args.prefix,
                thresholds=s.thresholds,
                watched=self.watched,
                topic_arn=alerts.alarm_topic_arn,
                acceptable_latency_seconds=s.acceptable_latency_seconds,
                worker_count=s.worker_count,
                payment_seconds=s.payment_seconds,
                replication=self.replication,
            ),
            opts=child(),
        )
        self.url: pulumi.Output[str] = self.orders.receiver.url
        self.register_outputs(
            {
                "url": self.url,
                "queue_url": self.orders.pipeline.queue.url,
                "cluster_name": cluster.name,
                "alarm_topic_arn": alerts.alarm_topic_arn,
            }
        )
