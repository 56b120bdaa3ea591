"""SyncOrderStack: the report's Part I, the synchronous order service behind its own ALB.

Creates: an ECS cluster (Container Insights on), a PublicEndpoint, and the `sync` role as a Fargate service with
`syncTaskCount` tasks. The sync service calls no AWS API, so its tasks get no task role.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from app import contract
from app.contract import AlarmSubject
from components.endpoint import PublicEndpoint
from components.fargate import FargateService, FargateServiceArgs, Placement, Port, insights_cluster


@dataclass(frozen=True)
class SyncOrderStackArgs:
    placement: Placement
    task_count: int
    payment_seconds: float
    payment_decline_rate: float


class SyncOrderStack(pulumi.ComponentResource):
    def __init__(self, name: str, args: SyncOrderStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:sync:SyncOrderStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.cluster = insights_cluster(f"{name}-cluster", child)
        self.endpoint = PublicEndpoint(
            f"{name}-web",
            args.placement.endpoint(),
            opts=child,
        )
        self.service = FargateService(
            f"{name}-svc",
            FargateServiceArgs(
                role="sync",
                placement=args.placement,
                cluster_arn=self.cluster.arn,
                desired_count=args.task_count,
                environment={
                    contract.ENV_PAYMENT_SECONDS: str(args.payment_seconds),
                    contract.ENV_PAYMENT_DECLINE_RATE: str(args.payment_decline_rate),
                },
                port=Port(self.endpoint.target_group.arn, self.endpoint.listeners),
            ),
            opts=child,
        )
        self.url: pulumi.Output[str] = self.endpoint.url
        # What the alarms and the dashboard watch, as CloudWatch dimensions.
        self.subjects: dict[AlarmSubject, dict[str, pulumi.Output[str]]] = {
            AlarmSubject.SYNC_ALB: {"LoadBalancer": self.endpoint.arn_suffix},
            AlarmSubject.SYNC_SERVICE: {"ClusterName": self.cluster.name, "ServiceName": self.service.service_name},
        }
        self.register_outputs({"url": self.url, "cluster_name": self.cluster.name})
