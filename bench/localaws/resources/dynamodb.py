"""DynamoDB handler: tables, with their encryption, point-in-time recovery, TTL, stream and global-table replicas.

A replica (DynamoDB global tables version 2019.11.21, pulumi-aws `replicas`) is asked of the table's own region as
the provider does (`UpdateTable` `ReplicaUpdates`: ministack accepts it and reports the replica `ACTIVE`, but
replicates nothing), and, since each region has its own emulators locally, the replica's table is also created in
its region's data plane with the same name, keys, billing mode, stream and TTL, so that region's services find it.
Nothing copies items between them: that is the local replicator's job (docs/multi-region.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench.localaws.resources.registry import DATA_PLANE, Context, Created, Declared, Invalid, handles

GLOBAL_TABLE_STREAM = "NEW_AND_OLD_IMAGES"  # what a 2019.11.21 global table's replication reads
STREAM_VIEW_TYPES = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")


@handles("aws:dynamodb/table:Table", DATA_PLANE)
def table(ctx: Context, r: Declared) -> Created:
    replicas = [dict(replica) for replica in r.inputs.get("replicas") or []]
    arguments = _create_arguments(r)
    if replicas:
        _check_global(ctx, r, replicas)
    # Each replica's region's data plane, found before anything is created (a region without one is refused).
    elsewhere = [ctx.client_in(replica["regionName"], "dynamodb") for replica in replicas]
    dynamodb = ctx.client("dynamodb")
    outputs = _create(dynamodb, r.name, arguments, r.inputs)
    for replica in replicas:
        dynamodb.update_table(TableName=r.name, ReplicaUpdates=[{"Create": {"RegionName": replica["regionName"]}}])
    if replicas:
        outputs["replicas"] = [
            {**replica, **_create(client, r.name, arguments, _replica(r, replica))}
            for replica, client in zip(replicas, elsewhere, strict=True)
        ]
    return r.name, outputs


def _create_arguments(r: Declared) -> dict[str, Any]:
    keys = [{"AttributeName": r.inputs["hashKey"], "KeyType": "HASH"}]
    if r.inputs.get("rangeKey"):
        keys.append({"AttributeName": r.inputs["rangeKey"], "KeyType": "RANGE"})
    arguments: dict[str, Any] = {
        "TableName": r.name,
        "KeySchema": keys,
        "BillingMode": r.inputs.get("billingMode", "PROVISIONED"),
        "AttributeDefinitions": [
            {"AttributeName": a["name"], "AttributeType": a["type"]} for a in r.inputs.get("attributes", [])
        ],
    }
    if (r.inputs.get("serverSideEncryption") or {}).get("enabled"):
        arguments["SSESpecification"] = {"Enabled": True}
    if r.inputs.get("streamEnabled"):
        view = r.inputs.get("streamViewType")
        if view not in STREAM_VIEW_TYPES:  # the provider's plan-time check
            raise Invalid(f"streamViewType must be one of {', '.join(STREAM_VIEW_TYPES)} with streamEnabled")
        arguments["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
    elif r.inputs.get("streamViewType"):
        raise Invalid("streamViewType is set but streamEnabled is not: the table would have no stream")
    return arguments


def _check_global(ctx: Context, r: Declared, replicas: list[dict[str, Any]]) -> None:
    """What AWS refuses of a version 2019.11.21 global table, which ministack accepts."""
    if r.inputs.get("streamViewType") != GLOBAL_TABLE_STREAM or not r.inputs.get("streamEnabled"):
        raise Invalid(f"a table with replicas needs its stream enabled with {GLOBAL_TABLE_STREAM}")
    if r.inputs.get("billingMode", "PROVISIONED") != "PAY_PER_REQUEST":
        raise Invalid(
            "the local deployer deploys replicas of on-demand tables only (provisioned ones need auto scaling)"
        )
    regions = [replica.get("regionName") for replica in replicas]
    if ctx.region in regions:
        raise Invalid(f"a replica cannot be in the table's own region {ctx.region}")
    if len(set(regions)) != len(regions):
        raise Invalid(f"each replica must be in its own region, got {regions}")


def _replica(r: Declared, replica: Mapping[str, Any]) -> dict[str, Any]:
    """A replica's settings as a table's inputs: its own point-in-time recovery, the table's TTL."""
    return {"pointInTimeRecovery": {"enabled": bool(replica.get("pointInTimeRecovery"))}, "ttl": r.inputs.get("ttl")}


def _create(dynamodb: Any, name: str, arguments: dict[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """Create the table and apply its settings; its ARN, and its stream's when it has one."""
    described = dynamodb.create_table(**arguments)["TableDescription"]
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    if (settings.get("pointInTimeRecovery") or {}).get("enabled"):
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    ttl = settings.get("ttl") or {}
    if ttl.get("enabled"):
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]}
        )
    outputs: dict[str, Any] = {"arn": described["TableArn"]}
    if "LatestStreamArn" in described:
        outputs |= {"streamArn": described["LatestStreamArn"], "streamLabel": described.get("LatestStreamLabel", "")}
    return outputs
