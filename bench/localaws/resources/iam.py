"""IAM handlers: roles (their trust policy's grammar checked, as AWS does and moto's CreateRole does not), inline role
policies and managed-policy attachments."""

from __future__ import annotations

import hashlib
import json

from bench.localaws.resources.registry import CONTROL, Context, Created, Declared, handles, policy_document

PLACEHOLDER_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


@handles("aws:iam/role:Role", CONTROL)
def role(ctx: Context, r: Declared) -> Created:
    iam, trust = ctx.client("iam"), r.inputs["assumeRolePolicy"]
    policy_document(trust, "assumeRolePolicy")
    found = iam.create_role(RoleName=r.name, AssumeRolePolicyDocument=PLACEHOLDER_TRUST)["Role"]
    try:  # CreateRole in moto does not check the trust policy's grammar; UpdateAssumeRolePolicy does, as AWS does
        iam.update_assume_role_policy(RoleName=r.name, PolicyDocument=trust)
    except Exception:
        iam.delete_role(RoleName=r.name)
        raise
    return r.name, {"arn": found["Arn"], "uniqueId": found["RoleId"]}


@handles("aws:iam/rolePolicy:RolePolicy", CONTROL)
def role_policy(ctx: Context, r: Declared) -> Created:
    policy_document(r.inputs["policy"], "the role policy")
    ctx.client("iam").put_role_policy(RoleName=r.inputs["role"], PolicyName=r.name, PolicyDocument=r.inputs["policy"])
    return f"{r.inputs['role']}:{r.name}", {}


@handles("aws:iam/rolePolicyAttachment:RolePolicyAttachment", CONTROL)
def role_policy_attachment(ctx: Context, r: Declared) -> Created:
    ctx.client("iam").attach_role_policy(RoleName=r.inputs["role"], PolicyArn=r.inputs["policyArn"])
    return f"{r.inputs['role']}-{hashlib.sha1(r.inputs['policyArn'].encode()).hexdigest()[:8]}", {}
