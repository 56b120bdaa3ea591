"""Elastic Load Balancing (elbv2) handlers: load balancers, target groups and listeners (forward or redirect)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.localaws.resources.registry import (
    CONTROL,
    Context,
    Created,
    Declared,
    Invalid,
    between,
    handles,
    pascal,
    whole,
)


@handles("aws:lb/loadBalancer:LoadBalancer", CONTROL)
def load_balancer(ctx: Context, r: Declared) -> Created:
    elbv2 = ctx.client("elbv2")
    lb = elbv2.create_load_balancer(
        Name=r.name,
        Subnets=list(r.inputs.get("subnets", [])),
        SecurityGroups=list(r.inputs.get("securityGroups", [])),
        Scheme="internal" if r.inputs.get("internal") else "internet-facing",
        Type=r.inputs.get("loadBalancerType", "application"),
    )["LoadBalancers"][0]
    arn = lb["LoadBalancerArn"]
    attributes = []
    if r.inputs.get("dropInvalidHeaderFields"):
        attributes.append({"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"})
    logs = r.inputs.get("accessLogs") or {}
    if logs.get("enabled"):
        attributes += [
            {"Key": "access_logs.s3.enabled", "Value": "true"},
            {"Key": "access_logs.s3.bucket", "Value": logs["bucket"]},
            {"Key": "access_logs.s3.prefix", "Value": logs.get("prefix", "")},
        ]
    if attributes:
        elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=attributes)
    return arn, {
        "arn": arn,
        "arnSuffix": arn.split(":loadbalancer/", 1)[1],
        "dnsName": lb["DNSName"],
        "zoneId": lb["CanonicalHostedZoneId"],
    }


@handles("aws:lb/targetGroup:TargetGroup", CONTROL)
def target_group(ctx: Context, r: Declared) -> Created:
    elbv2 = ctx.client("elbv2")
    check = r.inputs.get("healthCheck") or {}
    arguments: dict[str, Any] = {
        "Name": r.name,
        "Protocol": r.inputs["protocol"],
        "Port": whole(r.inputs["port"]),
        "VpcId": r.inputs["vpcId"],
        "TargetType": r.inputs.get("targetType", "instance"),
    }
    if check.get("path"):
        arguments["HealthCheckPath"] = check["path"]
    if check.get("interval"):
        arguments["HealthCheckIntervalSeconds"] = whole(check["interval"])
    if check.get("matcher"):
        arguments["Matcher"] = {"HttpCode": check["matcher"]}
    group = elbv2.create_target_group(**arguments)["TargetGroups"][0]
    arn = group["TargetGroupArn"]
    if r.inputs.get("deregistrationDelay") is not None:
        delay = whole(r.inputs["deregistrationDelay"])
        between("deregistration_delay", delay, 0, 3600)
        elbv2.modify_target_group_attributes(
            TargetGroupArn=arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(delay)}]
        )
    return arn, {"arn": arn, "arnSuffix": arn.split(":", 5)[5]}


def _listener_action(action: Mapping[str, Any]) -> dict[str, Any]:
    if action["type"] == "forward":
        return {"Type": "forward", "TargetGroupArn": action["targetGroupArn"]}
    if action["type"] == "redirect":
        return {"Type": "redirect", "RedirectConfig": pascal(action["redirect"])}
    raise Invalid(f"listener action type {action['type']!r} is not supported by the local deployer")


@handles("aws:lb/listener:Listener", CONTROL)
def listener(ctx: Context, r: Declared) -> Created:
    arguments: dict[str, Any] = {
        "LoadBalancerArn": r.inputs["loadBalancerArn"],
        "Protocol": r.inputs.get("protocol", "HTTP"),
        "Port": whole(r.inputs["port"]),
        "DefaultActions": [_listener_action(a) for a in r.inputs["defaultActions"]],
    }
    if r.inputs.get("certificateArn"):
        arguments["Certificates"] = [{"CertificateArn": r.inputs["certificateArn"]}]
    if r.inputs.get("sslPolicy"):
        arguments["SslPolicy"] = r.inputs["sslPolicy"]
    arn = ctx.client("elbv2").create_listener(**arguments)["Listeners"][0]["ListenerArn"]
    return arn, {"arn": arn}
