"""A Lambda function made of `app/` modules, with what every such function here needs beside it.

Creates, as children of the component that calls it (there is no component of its own: the notifier's resources kept
their names and parent, so their URNs, when it moved here): the function's log group (`<base>-logs`, retention
`LOG_RETENTION_DAYS`), its role (`<base>-role`, Lambda only, this account only), its dead-letter queue (`<base>-dlq`:
an asynchronous invocation that still fails after Lambda's retries lands there instead of vanishing), one inline policy
(`<base>-policy`: the caller's grants, plus writing its own log group and sending to its DLQ) and the function
(`<base>`), whose code is the listed `app/` files (boto3 comes with the runtime, so a function's modules import only
boto3 and the standard library).

Users: the alarm notifier (components.alerts) and the orphan sweeper (components.sweeper).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from app import contract
from components.defaults import LOG_RETENTION_DAYS
from components.iam import Grant, inline_policy, service_role

PYTHON_RUNTIME = "python3.12"


@dataclass(frozen=True)
class AppCode:
    """What a function runs: its handler (`module.function`), the app/ files it imports, its timeout."""

    handler: str
    files: tuple[str, ...]
    timeout_seconds: int

    def archive(self, source_root: Path) -> pulumi.AssetArchive:
        """The files as the function's code, each at its path under the directory holding app/."""
        return pulumi.AssetArchive({path: pulumi.FileAsset(source_root / path) for path in self.files})


@dataclass(frozen=True)
class AppFunction:
    function: aws.lambda_.Function
    dlq: aws.sqs.Queue


def app_function(
    base: str,
    code: AppCode,
    *,
    source_root: Path,
    grants: Sequence[Grant],
    environment: Mapping[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> AppFunction:
    """The function `base` and its log group, role, dead-letter queue and policy (see the module docstring)."""
    logs = aws.cloudwatch.LogGroup(f"{base}-logs", retention_in_days=LOG_RETENTION_DAYS, opts=opts)
    role = service_role(f"{base}-role", "lambda.amazonaws.com", opts)
    # A dead-letter queue only: nothing may redrive into it (it is a function's, not a queue's).
    dlq = aws.sqs.Queue(
        f"{base}-dlq",
        message_retention_seconds=contract.ORDER_QUEUE.dlq_retention_seconds,  # kept as long as the orders' DLQ
        sqs_managed_sse_enabled=True,
        redrive_allow_policy=json.dumps({"redrivePermission": "denyAll"}),
        opts=opts,
    )
    allowed = [
        *grants,
        Grant(pulumi.Output.concat(logs.arn, ":log-stream:*"), ("logs:CreateLogStream", "logs:PutLogEvents")),
        Grant(dlq.arn, ("sqs:SendMessage",)),
    ]
    inline_policy(f"{base}-policy", role, allowed, opts)
    function = aws.lambda_.Function(
        base,
        runtime=PYTHON_RUNTIME,
        handler=code.handler,
        role=role.arn,
        code=code.archive(source_root),
        timeout=code.timeout_seconds,
        environment={"variables": dict(environment)},
        dead_letter_config={"target_arn": dlq.arn},
        logging_config={"log_format": "Text", "log_group": logs.name},
        opts=opts,
    )
    return AppFunction(function=function, dlq=dlq)
