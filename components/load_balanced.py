"""LoadBalancedService: a web role behind its own internet-facing ALB (CDK's ApplicationLoadBalancedFargateService).

Creates: a PublicEndpoint (`<name>-web`: ALB, target group health-checked on /health, listeners) and a
FargateService (`<name>-svc`) whose tasks register with that target group once the listeners exist. Used by the sync
order service and the order receiver.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.endpoint import PublicEndpoint
from components.fargate import FargateService, FargateServiceArgs, Placement, Port, TaskSpec


@dataclass(frozen=True)
class LoadBalancedServiceArgs:
    placement: Placement
    task: TaskSpec  # a role with an HTTP server on contract.CONTAINER_PORT, answering contract.HEALTH_PATH


class LoadBalancedService(pulumi.ComponentResource):
    def __init__(self, name: str, args: LoadBalancedServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:patterns:LoadBalancedService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.endpoint = PublicEndpoint(f"{name}-web", args.placement.endpoint(), opts=child)
        port = Port(self.endpoint.target_group.arn, self.endpoint.listeners)
        self.service = FargateService(f"{name}-svc", FargateServiceArgs(args.placement, args.task, port), opts=child)
        self.url: pulumi.Output[str] = self.endpoint.url
        self.alb_dimensions: dict[str, pulumi.Output[str]] = {"LoadBalancer": self.endpoint.arn_suffix}
        self.register_outputs({"url": self.url, "service_name": self.service.service_name})
