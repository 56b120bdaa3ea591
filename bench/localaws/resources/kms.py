"""KMS handler: customer-managed keys (the alarm topic's, which CloudWatch may use), their policy and rotation."""

from __future__ import annotations

from typing import Any

from bench.localaws.resources.registry import CONTROL, Context, Created, Declared, handles, policy_document


@handles("aws:kms/key:Key", CONTROL)
def kms_key(ctx: Context, r: Declared) -> Created:
    kms = ctx.client("kms")
    arguments: dict[str, Any] = {"Description": r.inputs.get("description", "")}
    if r.inputs.get("policy"):
        policy_document(r.inputs["policy"], "the key policy")
        arguments["Policy"] = r.inputs["policy"]
    key = kms.create_key(**arguments)["KeyMetadata"]
    if r.inputs.get("enableKeyRotation"):
        kms.enable_key_rotation(KeyId=key["KeyId"])
    return key["KeyId"], {"arn": key["Arn"], "keyId": key["KeyId"]}
