"""Route 53 handlers: health checks and records (latency alias records to the regions' load balancers), in moto's
Route 53, which is global as on AWS (one for every region).

moto takes nearly any health check or record (measured: a 20 s interval, 11 failures, a latency record without a set
identifier or in region `mars-1`, an unknown health check id, an alias to a zone that is not the target's), so the
handlers check AWS's rules themselves: a 10 or 30 s interval, 1 to 10 failures, a set identifier exactly with a
routing policy, a real region, a health check that exists, an alias without TTL or values whose zone is its load
balancer's canonical zone. moto itself refuses a name outside the zone, a second record of the same name, type and
set identifier, and a zone that does not exist.

The hosted zone is not the stack's: the config names one (`hostedZoneId`), as on AWS where the domain's zone exists
before the stack. `create_hosted_zone` makes one in moto with an id shaped as AWS's, for tests and the local system.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import botocore.session
from botocore.exceptions import ClientError

from bench.localaws.resources.registry import CONTROL, Context, Created, Declared, Invalid, between, handles, whole

HEALTH_CHECK_TYPES = ("HTTP", "HTTPS", "HTTP_STR_MATCH", "HTTPS_STR_MATCH", "TCP", "CALCULATED", "CLOUDWATCH_METRIC")
HEALTH_CHECK_INTERVALS = (10, 30)  # seconds, the only two Route 53 offers
ROUTING_POLICIES = (
    "latencyRoutingPolicies",
    "weightedRoutingPolicies",
    "failoverRoutingPolicies",
    "geolocationRoutingPolicies",
    "geoproximityRoutingPolicy",
    "cidrRoutingPolicy",
)
ZONE_ID_ATTEMPTS = 500  # moto draws a zone id of 22 random letters and digits; 1 in 36 starts with Z as AWS's do


def create_hosted_zone(route53: Any, domain: str) -> str:
    """A public hosted zone for `domain` in moto, with an id that starts with Z as AWS's do (the stack config
    refuses others): moto's ids are random, so zones are made until one fits and the others deleted."""
    for attempt in range(ZONE_ID_ATTEMPTS):
        zone_id = str(
            route53.create_hosted_zone(Name=domain, CallerReference=f"{domain}-{attempt}-{uuid.uuid4()}")["HostedZone"][
                "Id"
            ]
        ).rpartition("/")[2]
        if zone_id.startswith("Z"):
            return zone_id
        route53.delete_hosted_zone(Id=zone_id)
    raise RuntimeError(f"moto gave no hosted zone id starting with Z in {ZONE_ID_ATTEMPTS} attempts")


def _aws_regions() -> set[str]:
    return set(botocore.session.get_session().get_available_regions("ec2"))


@handles("aws:route53/healthCheck:HealthCheck", CONTROL, stable=False)
def health_check(ctx: Context, r: Declared) -> Created:
    inputs = whole(dict(r.inputs))
    kind = inputs.get("type")
    if kind not in HEALTH_CHECK_TYPES:
        raise Invalid(f"health check type must be one of {', '.join(HEALTH_CHECK_TYPES)}, got {kind!r}")
    config: dict[str, Any] = {"Type": kind}
    if kind.startswith(("HTTP", "TCP")):
        if not inputs.get("fqdn") and not inputs.get("ipAddress"):
            raise Invalid(f"a {kind} health check needs fqdn or ipAddress")
        interval = inputs.get("requestInterval", 30)
        if interval not in HEALTH_CHECK_INTERVALS:
            raise Invalid(f"requestInterval must be 10 or 30 seconds, got {interval}")
        failures = inputs.get("failureThreshold", 3)
        between("failureThreshold", failures, 1, 10)
        port = inputs.get("port", 443 if "HTTPS" in kind else 80)
        between("port", port, 1, 65535)
        config |= {"RequestInterval": interval, "FailureThreshold": failures, "Port": port}
        if inputs.get("fqdn"):
            if len(inputs["fqdn"]) > 255:
                raise Invalid(f"fqdn must be at most 255 characters, got {len(inputs['fqdn'])}")
            config["FullyQualifiedDomainName"] = inputs["fqdn"]
        if inputs.get("ipAddress"):
            config["IPAddress"] = inputs["ipAddress"]
        if kind != "TCP":
            path = inputs.get("resourcePath", "/")
            if len(path) > 255:
                raise Invalid(f"resourcePath must be at most 255 characters, got {len(path)}")
            config["ResourcePath"] = path
    route53 = ctx.client("route53")
    created = route53.create_health_check(CallerReference=str(uuid.uuid4()), HealthCheckConfig=config)["HealthCheck"]
    check_id = created["Id"]
    tags = inputs.get("tags") or {}
    if tags:
        route53.change_tags_for_resource(
            ResourceType="healthcheck",
            ResourceId=check_id,
            AddTags=[{"Key": key, "Value": value} for key, value in tags.items()],
        )
    return check_id, {"arn": f"arn:aws:route53:::healthcheck/{check_id}"}


@handles("aws:route53/record:Record", CONTROL, stable=False)
def record(ctx: Context, r: Declared) -> Created:
    inputs = whole(dict(r.inputs))
    zone_id, name, kind = inputs["zoneId"], str(inputs["name"]).rstrip(".").lower(), inputs["type"]
    record_set: dict[str, Any] = {"Name": name, "Type": kind}
    policies = [key for key in ROUTING_POLICIES if inputs.get(key)]
    identifier = inputs.get("setIdentifier")
    if len(policies) > 1:
        raise Invalid(f"a record takes one routing policy, got {', '.join(policies)}")
    if policies and not identifier:
        raise Invalid(f"a record with {policies[0]} needs a setIdentifier")
    if identifier and not policies:
        raise Invalid("setIdentifier is only for a record with a routing policy")
    if identifier:
        record_set["SetIdentifier"] = identifier
    if policies == ["latencyRoutingPolicies"]:
        (latency,) = inputs["latencyRoutingPolicies"]
        if latency["region"] not in _aws_regions():
            raise Invalid(f"latency routing region {latency['region']!r} is not an AWS region")
        record_set["Region"] = latency["region"]
    elif policies:
        raise Invalid(f"the local deployer deploys latency routing only, not {policies[0]}")
    route53 = ctx.client("route53")
    if check_id := inputs.get("healthCheckId"):
        try:
            route53.get_health_check(HealthCheckId=check_id)
        except ClientError as error:
            raise Invalid(f"health check {check_id} does not exist ({error.response['Error']['Code']})") from None
        record_set["HealthCheckId"] = check_id
    aliases = inputs.get("aliases") or []
    if aliases:
        if inputs.get("ttl") is not None or inputs.get("records"):
            raise Invalid("an alias record takes no ttl and no records")
        (alias,) = aliases
        _check_alias_target(ctx, alias)
        record_set["AliasTarget"] = {
            "DNSName": alias["name"],
            "HostedZoneId": alias["zoneId"],
            "EvaluateTargetHealth": bool(alias.get("evaluateTargetHealth")),
        }
    else:
        if inputs.get("ttl") is None or not inputs.get("records"):
            raise Invalid("a record that is not an alias needs ttl and records")
        record_set |= {"TTL": inputs["ttl"], "ResourceRecords": [{"Value": value} for value in inputs["records"]]}
    route53.change_resource_record_sets(
        HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": record_set}]}
    )
    record_id = "_".join(part for part in (zone_id, name, kind, identifier) if part)  # as pulumi-aws makes it
    return record_id, {"name": name, "fqdn": name}


def _check_alias_target(ctx: Context, alias: Mapping[str, Any]) -> None:
    """An alias to a load balancer must name the load balancer's canonical hosted zone (AWS: "the alias target name
    does not lie within the target zone"); the load balancer is looked up in every region the deploy has."""
    target = str(alias["name"]).rstrip(".").lower().removeprefix("dualstack.")
    if not target.endswith(".elb.amazonaws.com"):
        raise Invalid(f"the local deployer checks aliases to load balancers only, not {alias['name']}")
    for region in {ctx.region, *ctx.regions}:
        for page in ctx.client_in(region, "elbv2").get_paginator("describe_load_balancers").paginate():
            for balancer in page["LoadBalancers"]:
                if balancer["DNSName"].lower() == target:
                    if balancer["CanonicalHostedZoneId"] != alias["zoneId"]:
                        raise Invalid(
                            f"alias target {alias['name']} does not lie within the target zone {alias['zoneId']} "
                            f"(its load balancer's zone is {balancer['CanonicalHostedZoneId']})"
                        )
                    return
    raise Invalid(f"alias target {alias['name']}: no such load balancer")
