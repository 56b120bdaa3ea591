"""Least-privilege IAM building blocks: a role a service may assume and an inline policy of exact grants.

Every grant names one resource ARN and explicit actions, so no policy here carries a `*` action or resource; the
components that own a resource hand them out (`OrderPipeline.grant_publish()`...), with the actions one use needs. Every
trust policy admits its service only on behalf of this account (`aws:SourceAccount`): the service cannot be made to
assume the role for someone else's resource (the confused-deputy problem).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class Grant:
    """Explicit actions on one resource."""

    resource_arn: pulumi.Input[str]
    actions: tuple[str, ...]


def assume_role_policy(service: str, account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                }
            ],
        }
    )


def service_role(name: str, service: str, opts: pulumi.ResourceOptions) -> aws.iam.Role:
    account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=opts.parent)).account_id
    return aws.iam.Role(name, assume_role_policy=assume_role_policy(service, account_id), opts=opts)


def inline_policy(
    name: str, role: aws.iam.Role, allowed: Sequence[Grant], opts: pulumi.ResourceOptions
) -> aws.iam.RolePolicy:
    statements = [{"Effect": "Allow", "Action": list(g.actions), "Resource": g.resource_arn} for g in allowed]
    document = pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements})
    return aws.iam.RolePolicy(name, role=role.id, policy=document, opts=opts)
