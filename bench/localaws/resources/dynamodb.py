"""DynamoDB handler: tables, with their encryption, point-in-time recovery and TTL settings."""

from __future__ import annotations

from typing import Any

from bench.localaws.resources.registry import DATA_PLANE, Context, Created, Declared, handles


@handles("aws:dynamodb/table:Table", DATA_PLANE)
def table(ctx: Context, r: Declared) -> Created:
    dynamodb = ctx.client("dynamodb")
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
    arn = dynamodb.create_table(**arguments)["TableDescription"]["TableArn"]
    dynamodb.get_waiter("table_exists").wait(TableName=r.name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    if (r.inputs.get("pointInTimeRecovery") or {}).get("enabled"):
        dynamodb.update_continuous_backups(
            TableName=r.name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    ttl = r.inputs.get("ttl") or {}
    if ttl.get("enabled"):
        dynamodb.update_time_to_live(
            TableName=r.name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["attributeName"]}
        )
    return r.name, {"arn": arn}
