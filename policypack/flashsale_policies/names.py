"""AWS's name rules per resource type: the input that holds the name, its longest length, the pattern the whole
name must match, and what it must not contain (regex, why).

A name AWS refuses fails `pulumi up` half way through, after other resources were made; this pack refuses it at
preview. Read from terraform-provider-aws's validators and the AWS API references (the same sources as the local
deployer's `bench.localaws.naming`, which applies them with pulumi-aws's autonaming; the suite checks both agree).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class NameLimit:
    prop: str  # the Pulumi property (camelCase, as policies see it)
    max_length: int = 255
    pattern: str = r".+"
    forbidden: tuple[tuple[str, str], ...] = field(default=())

    def problem(self, name: str) -> str | None:
        """Why AWS would refuse `name`, or None."""
        if len(name) > self.max_length:
            return f"{self.prop} {name!r} is {len(name)} characters, AWS allows {self.max_length}"
        if not re.fullmatch(self.pattern, name):
            return f"{self.prop} {name!r} must match {self.pattern}"
        for regex, why in self.forbidden:
            if re.search(regex, name):
                return f"{self.prop} {name!r} {why}"
        return None


_ELB = r"[0-9A-Za-z-]+"
_NO_EDGE_HYPHEN = ((r"^-|-$", "cannot begin or end with a hyphen"),)
_IAM = r"[\w+=,.@-]+"

NAME_LIMITS: dict[str, NameLimit] = {
    "aws:lb/loadBalancer:LoadBalancer": NameLimit(
        "name", 32, _ELB, (*_NO_EDGE_HYPHEN, (r"^internal-", 'cannot begin with "internal-"'))
    ),
    "aws:lb/targetGroup:TargetGroup": NameLimit("name", 32, _ELB, _NO_EDGE_HYPHEN),
    "aws:sqs/queue:Queue": NameLimit("name", 80, r"[0-9A-Za-z_-]+(\.fifo)?"),
    "aws:sns/topic:Topic": NameLimit("name", 256, r"[0-9A-Za-z_-]+(\.fifo)?"),
    "aws:dynamodb/table:Table": NameLimit("name", 255, r"[a-zA-Z0-9_.-]{3,}"),
    "aws:ecs/cluster:Cluster": NameLimit("name", 255, r"[0-9A-Za-z_-]+"),
    "aws:ecs/service:Service": NameLimit("name", 255, r"[0-9A-Za-z_-]+"),
    "aws:ecs/taskDefinition:TaskDefinition": NameLimit("family", 255, r"[0-9A-Za-z_-]+"),
    "aws:cloudwatch/logGroup:LogGroup": NameLimit("name", 512, r"[0-9A-Za-z_./#-]+"),
    "aws:cloudwatch/metricAlarm:MetricAlarm": NameLimit("name"),
    "aws:cloudwatch/dashboard:Dashboard": NameLimit("dashboardName", 255, r"[-_A-Za-z0-9]+"),
    "aws:iam/role:Role": NameLimit("name", 64, _IAM),
    "aws:iam/rolePolicy:RolePolicy": NameLimit("name", 128, _IAM),
    "aws:iam/policy:Policy": NameLimit("name", 128, _IAM),
    "aws:ec2/securityGroup:SecurityGroup": NameLimit("name", forbidden=((r"^sg-", 'cannot begin with "sg-"'),)),
    "aws:ecr/repository:Repository": NameLimit(
        "name", 256, r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"
    ),
    "aws:lambda/function:Function": NameLimit("name", 64, r"[0-9A-Za-z_-]+"),
    "aws:cloudwatch/eventRule:EventRule": NameLimit("name", 64, r"[0-9A-Za-z_.-]+"),
    "aws:appautoscaling/policy:Policy": NameLimit("name"),
    "aws:appautoscaling/scheduledAction:ScheduledAction": NameLimit("name"),
    "aws:s3/bucket:Bucket": NameLimit("bucket", 63, r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"),
    "aws:secretsmanager/secret:Secret": NameLimit("name", 512, r"[0-9A-Za-z/_+=.@-]+"),
}
