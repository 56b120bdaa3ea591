"""Secrets Manager handlers: the secret that holds the alert webhook URL (the notifier Lambda gets only its ARN)."""

from __future__ import annotations

from bench.localaws.resources.registry import DATA_PLANE, Context, Created, Declared, between, handles, whole


@handles("aws:secretsmanager/secret:Secret", DATA_PLANE)
def secret(ctx: Context, r: Declared) -> Created:
    window = r.inputs.get("recoveryWindowInDays")
    if window is not None and whole(window) != 0:
        between("recoveryWindowInDays", whole(window), 7, 30)
    found = ctx.client("secretsmanager").create_secret(Name=r.name, Description=r.inputs.get("description", ""))
    return found["ARN"], {"arn": found["ARN"]}


@handles("aws:secretsmanager/secretVersion:SecretVersion", DATA_PLANE, stable=False)
def secret_version(ctx: Context, r: Declared) -> Created:
    found = ctx.client("secretsmanager").put_secret_value(
        SecretId=r.inputs["secretId"], SecretString=r.inputs["secretString"]
    )
    return f"{found['ARN']}|{found['VersionId']}", {"arn": found["ARN"], "versionId": found["VersionId"]}
