"""PublicEndpoint: an internet-facing ALB in front of one service's tasks.

Creates: the ALB (access logs on, into the stack's AccessLogBucket under `<name>/`), an IP target group
health-checked on `/health` every 30 s (the report's Part I), and listeners: HTTP forwarding to the tasks when no
certificate is configured (as in the report), or HTTPS with the certificate plus an HTTP listener that only redirects
to HTTPS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from app import contract
from components.access_logs import AccessLogBucket
from components.network import HTTP_PORT, HTTPS_PORT

HEALTH_CHECK_INTERVAL_SECONDS = 30
DEREGISTRATION_DELAY_SECONDS = 30  # in-flight requests are short; the default 300 s only slows deploys
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


@dataclass(frozen=True)
class PublicEndpointArgs:
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    security_group_id: pulumi.Input[str]
    access_logs: AccessLogBucket
    certificate_arn: str = ""  # HTTPS when set


class PublicEndpoint(pulumi.ComponentResource):
    def __init__(self, name: str, args: PublicEndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:web:PublicEndpoint", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.alb = aws.lb.LoadBalancer(
            f"{name}-alb",
            load_balancer_type="application",
            internal=False,
            security_groups=[args.security_group_id],
            subnets=args.subnet_ids,
            drop_invalid_header_fields=True,
            access_logs={"bucket": args.access_logs.bucket_name, "prefix": name, "enabled": True},
            # The ALB checks at creation that it may write to the bucket: the bucket policy first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.access_logs.policy]),
        )
        self.target_group = aws.lb.TargetGroup(
            f"{name}-tg",
            port=contract.CONTAINER_PORT,
            protocol="HTTP",
            target_type="ip",
            vpc_id=args.vpc_id,
            deregistration_delay=DEREGISTRATION_DELAY_SECONDS,
            health_check={
                "path": contract.HEALTH_PATH,
                "interval": HEALTH_CHECK_INTERVAL_SECONDS,
                "matcher": "200",
            },
            opts=child,
        )
        forward: aws.lb.ListenerDefaultActionArgsDict = {"type": "forward", "target_group_arn": self.target_group.arn}
        if args.certificate_arn:
            https = aws.lb.Listener(
                f"{name}-https",
                load_balancer_arn=self.alb.arn,
                port=HTTPS_PORT,
                protocol="HTTPS",
                certificate_arn=args.certificate_arn,
                ssl_policy=TLS_POLICY,
                default_actions=[forward],
                opts=child,
            )
            redirect = aws.lb.Listener(
                f"{name}-http",
                load_balancer_arn=self.alb.arn,
                port=HTTP_PORT,
                protocol="HTTP",
                default_actions=[
                    {
                        "type": "redirect",
                        "redirect": {"port": str(HTTPS_PORT), "protocol": "HTTPS", "status_code": "HTTP_301"},
                    }
                ],
                opts=child,
            )
            self.listeners = [https, redirect]
            scheme = "https"
        else:
            http = aws.lb.Listener(
                f"{name}-http",
                load_balancer_arn=self.alb.arn,
                port=HTTP_PORT,
                protocol="HTTP",
                default_actions=[forward],
                opts=child,
            )
            self.listeners = [http]
            scheme = "http"
        self.url: pulumi.Output[str] = pulumi.Output.concat(scheme, "://", self.alb.dns_name)
        self.arn_suffix: pulumi.Output[str] = self.alb.arn_suffix
        self.register_outputs({"url": self.url, "alb_arn": self.alb.arn, "target_group_arn": self.target_group.arn})
