"""LatencyRouting: one name for buyers (`ordersDomain`), answered by the nearest healthy region's receiver ALB, with
two or more regions (docs/multi-region.md says why Route 53 rather than Global Accelerator).

Creates, per region: a Route 53 health check on the receiver's `/health` through its ALB (every 30 s from Route 53's
checkers, unhealthy after 3 failures in a row), and a latency alias record (A) of `ordersDomain` in the hosted zone to
the ALB, tied to that health check and evaluating the ALB's own target health. Route 53 answers each resolver with
the lowest-latency region whose check passes; a region that fails its checks drops out of the answers without
anyone editing a record (the data plane fails over; the control plane, in us-east-1, is not needed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from app import contract
from components.network import HTTP_PORT, HTTPS_PORT
from stackconfig.regions import short_name

HEALTH_CHECK_INTERVAL_SECONDS = 30  # Route 53 offers 10 (fast, at a higher price) or 30
HEALTH_CHECK_FAILURES = 3  # consecutive failures before a region is unhealthy: ~90 s to detect, plus resolver TTLs


@dataclass(frozen=True)
class RegionalEndpoint:
    """One region's receiver ALB."""

    region: str
    dns_name: pulumi.Input[str]
    zone_id: pulumi.Input[str]  # the ALB's canonical hosted zone, for the alias


@dataclass(frozen=True)
class LatencyRoutingArgs:
    hosted_zone_id: str
    domain: str
    endpoints: Sequence[RegionalEndpoint]
    https: bool = False  # the ALBs serve HTTPS (and only redirect on HTTP)


class LatencyRouting(pulumi.ComponentResource):
    def __init__(self, name: str, args: LatencyRoutingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:regions:LatencyRouting", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.health_checks: dict[str, aws.route53.HealthCheck] = {}
        self.records: dict[str, aws.route53.Record] = {}
        for endpoint in args.endpoints:
            code = short_name(endpoint.region)
            check = aws.route53.HealthCheck(
                f"{name}-{code}-health",
                type="HTTPS" if args.https else "HTTP",
                fqdn=endpoint.dns_name,
                port=HTTPS_PORT if args.https else HTTP_PORT,
                resource_path=contract.HEALTH_PATH,
                request_interval=HEALTH_CHECK_INTERVAL_SECONDS,
                failure_threshold=HEALTH_CHECK_FAILURES,
                tags={"Name": f"{args.domain} {endpoint.region}"},
                opts=child,
            )
            self.health_checks[endpoint.region] = check
            self.records[endpoint.region] = aws.route53.Record(
                f"{name}-{code}",
                zone_id=args.hosted_zone_id,
                name=args.domain,
                type="A",
                set_identifier=endpoint.region,
                latency_routing_policies=[{"region": endpoint.region}],
                health_check_id=check.id,
                aliases=[{"name": endpoint.dns_name, "zone_id": endpoint.zone_id, "evaluate_target_health": True}],
                opts=child,
            )
        self.url: pulumi.Output[str] = pulumi.Output.from_input(f"{'https' if args.https else 'http'}://{args.domain}")
        self.register_outputs({"url": self.url})
