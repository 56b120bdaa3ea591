"""CloudWatch Logs handler: log groups, with their retention."""

from __future__ import annotations

from bench.localaws.resources.registry import DATA_PLANE, Context, Created, Declared, handles, whole


@handles("aws:cloudwatch/logGroup:LogGroup", DATA_PLANE)
def log_group(ctx: Context, r: Declared) -> Created:
    logs = ctx.client("logs")
    logs.create_log_group(logGroupName=r.name)
    if r.inputs.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=r.name, retentionInDays=whole(r.inputs["retentionInDays"]))
    found = logs.describe_log_groups(logGroupNamePrefix=r.name)["logGroups"][0]
    return r.name, {"arn": found.get("arn", "").removesuffix(":*")}
