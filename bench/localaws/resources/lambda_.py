"""Lambda handlers: functions (a Python runtime; their code zipped from the program's AssetArchive as the engine
uploads it) and their invoke permissions. Named `lambda_`, as pulumi_aws names it: `lambda` is a keyword."""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import Any

import pulumi

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

LAMBDA_RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13")


def _archive(code: Any) -> bytes:
    """A Pulumi AssetArchive of FileAssets, zipped as the engine uploads it."""
    if not isinstance(code, pulumi.AssetArchive):
        raise Invalid("the local deployer takes Lambda code as an AssetArchive of FileAssets")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, asset in sorted(code.assets.items()):
            if not isinstance(asset, pulumi.FileAsset):
                raise Invalid(f"Lambda code entry {path} is not a FileAsset")
            archive.write(str(asset.path), path)
    return buffer.getvalue()


@handles("aws:lambda/function:Function", CONTROL)
def function(ctx: Context, r: Declared) -> Created:
    i = r.inputs
    if i.get("runtime") not in LAMBDA_RUNTIMES:
        raise Invalid(
            f"runtime {i.get('runtime')!r} is not a Python runtime Lambda offers ({', '.join(LAMBDA_RUNTIMES)})"
        )
    timeout = whole(i.get("timeout", 3))
    between("timeout", timeout, 1, 900)
    arguments: dict[str, Any] = {
        "FunctionName": r.name,
        "Runtime": i["runtime"],
        "Role": i["role"],
        "Handler": i["handler"],
        "Code": {"ZipFile": _archive(i["code"])},
        "Timeout": timeout,
    }
    if i.get("environment"):
        arguments["Environment"] = {"Variables": dict(i["environment"].get("variables") or {})}
    if i.get("loggingConfig"):
        arguments["LoggingConfig"] = pascal(i["loggingConfig"])
    if i.get("deadLetterConfig"):
        arguments["DeadLetterConfig"] = {"TargetArn": i["deadLetterConfig"]["targetArn"]}
    found = ctx.client("lambda").create_function(**arguments)
    return r.name, {"arn": found["FunctionArn"], "invokeArn": found["FunctionArn"], "version": found.get("Version")}


@handles("aws:lambda/permission:Permission", CONTROL)
def lambda_permission(ctx: Context, r: Declared) -> Created:
    statement = r.inputs.get("statementId") or r.logical[-90:] + "-" + hashlib.sha1(r.urn.encode()).hexdigest()[:8]
    arguments = {
        "FunctionName": r.inputs["function"],
        "StatementId": statement,
        "Action": r.inputs["action"],
        "Principal": r.inputs["principal"],
    }
    if r.inputs.get("sourceArn"):
        arguments["SourceArn"] = r.inputs["sourceArn"]
    ctx.client("lambda").add_permission(**arguments)
    return statement, {"statementId": statement}
