"""Physical names as `pulumi up` would give them, and AWS's rules for them, so a name AWS rejects fails here too.

Autonaming (pulumi-terraform-bridge `tfbridge.AutoName`, pulumi-aws `provider/autonaming.go`): a resource whose
name input is not set gets `<logical name>-<7 random lowercase hex>`; when that would be longer than the type's
autoname cap the engine refuses the resource ("plus 7 random chars is longer than maximum length N") instead of
truncating. The cap is 255 unless pulumi-aws declares another for the type (`provider/resources.go`,
`provider/aliases.go`). The Terraform provider underneath then validates the name at preview with AWS's own limits
(`internal/service/*/validate.go` of terraform-provider-aws), whatever the cap allowed: an ALB autonamed to 40
characters passes the cap of 255 and is rejected by the 32-character rule.

Read from pulumi-aws 7 and terraform-provider-aws sources in 2026-12 (see `RULES`); a type not listed here has no
name input and is not autonamed.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

SUFFIX_LENGTH = 7
DEFAULT_CAP = 255


class NameRejected(ValueError):
    """The name cannot be used: the message is the provider's or AWS's."""


@dataclass(frozen=True)
class NameRule:
    """How one resource type is named: which input holds the name, the autoname cap, and AWS's validation."""

    prop: str  # the Pulumi input property (camelCase, as the engine sees it)
    autoname_cap: int | None = DEFAULT_CAP  # None: never autonamed (the program must set it)
    max_length: int = DEFAULT_CAP
    pattern: str = r".+"  # the whole name must match
    forbidden: tuple[tuple[str, str], ...] = field(default=())  # (regex, why), each must not match

    def check(self, name: str, what: str) -> None:
        if not name:
            raise NameRejected(f'"{self.prop}" of {what} must not be empty')
        if len(name) > self.max_length:
            raise NameRejected(f'"{self.prop}" cannot be longer than {self.max_length} characters: "{name}"')
        if not re.fullmatch(self.pattern, name):
            raise NameRejected(f'"{self.prop}" of {what} must match {self.pattern}: "{name}"')
        for regex, why in self.forbidden:
            if re.search(regex, name):
                raise NameRejected(f'"{self.prop}" of {what} {why}: "{name}"')


_ELB = r"[0-9A-Za-z-]+"
_NO_EDGE_HYPHEN = ((r"^-|-$", "cannot begin or end with a hyphen"),)
_IAM = r"[\w+=,.@-]+"

# Terraform type names in the comments; sources: pulumi-aws provider/resources.go + aliases.go (caps),
# terraform-provider-aws internal/service/<svc>/ (validation), AWS API references where Terraform has none.
RULES: dict[str, NameRule] = {
    # aws_lb: generic cap 255; elbv2/validate.go validName: 32, letters digits hyphens, no edge hyphen, not internal-
    "aws:lb/loadBalancer:LoadBalancer": NameRule(
        "name",
        max_length=32,
        pattern=_ELB,
        forbidden=(*_NO_EDGE_HYPHEN, (r"^internal-", 'cannot begin with "internal-"')),
    ),
    # aws_lb_target_group: AutoName("name", 32, "-"); elbv2/validate.go validTargetGroupName
    "aws:lb/targetGroup:TargetGroup": NameRule(
        "name", autoname_cap=32, max_length=32, pattern=_ELB, forbidden=_NO_EDGE_HYPHEN
    ),
    # aws_sqs_queue: custom autoname 80; sqs/queue.go CustomizeDiff ^[0-9A-Za-z_-]{1,80}$ (FIFO: 75 + .fifo)
    "aws:sqs/queue:Queue": NameRule("name", autoname_cap=80, max_length=80, pattern=r"[0-9A-Za-z_-]+(\.fifo)?"),
    # aws_sns_topic: custom autoname 80; sns/topic.go ^[0-9A-Za-z_-]{1,256}$
    "aws:sns/topic:Topic": NameRule("name", autoname_cap=80, max_length=256, pattern=r"[0-9A-Za-z_-]+(\.fifo)?"),
    # aws_dynamodb_table: no Terraform check; AWS CreateTable: 3..255 of [a-zA-Z0-9_.-]
    "aws:dynamodb/table:Table": NameRule("name", pattern=r"[a-zA-Z0-9_.-]{3,}"),
    # aws_ecs_cluster: ecs/validate.go validateClusterName
    "aws:ecs/cluster:Cluster": NameRule("name", pattern=r"[0-9A-Za-z_-]+"),
    # aws_ecs_service: no Terraform check; AWS CreateService: up to 255 letters, numbers, underscores, hyphens
    "aws:ecs/service:Service": NameRule("name", pattern=r"[0-9A-Za-z_-]+"),
    # aws_ecs_task_definition: `family` is required (never autonamed)
    "aws:ecs/taskDefinition:TaskDefinition": NameRule("family", autoname_cap=None, pattern=r"[0-9A-Za-z_-]+"),
    # aws_cloudwatch_log_group: logs/validate.go validLogGroupName
    "aws:cloudwatch/logGroup:LogGroup": NameRule("name", max_length=512, pattern=r"[0-9A-Za-z_./#-]+"),
    # aws_cloudwatch_metric_alarm: alarm_name, AutoName 255
    "aws:cloudwatch/metricAlarm:MetricAlarm": NameRule("name"),
    # aws_cloudwatch_dashboard: dashboard_name is required; cloudwatch/validate.go validDashboardName
    "aws:cloudwatch/dashboard:Dashboard": NameRule("dashboardName", autoname_cap=None, pattern=r"[-_A-Za-z0-9]+"),
    # aws_iam_role: AutoName("name", 64, "-"); iam/validate.go validResourceName
    "aws:iam/role:Role": NameRule("name", autoname_cap=64, max_length=64, pattern=_IAM),
    # aws_iam_role_policy: generic cap 255, but iam/role_policy.go allows 128
    "aws:iam/rolePolicy:RolePolicy": NameRule("name", max_length=128, pattern=_IAM),
    "aws:iam/policy:Policy": NameRule("name", max_length=128, pattern=_IAM),
    # aws_security_group: ec2/vpc_security_group.go: 255, not beginning with sg-
    "aws:ec2/securityGroup:SecurityGroup": NameRule("name", forbidden=((r"^sg-", 'cannot begin with "sg-"'),)),
    # aws_ecr_repository: no Terraform check; AWS CreateRepository regex (lowercase), 2..256
    "aws:ecr/repository:Repository": NameRule(
        "name", max_length=256, pattern=r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*"
    ),
    # aws_lambda_function: function_name, AutoName 64; lambda/validate.go validFunctionName (plain names)
    "aws:lambda/function:Function": NameRule("name", autoname_cap=64, max_length=64, pattern=r"[0-9A-Za-z_-]+"),
    # aws_cloudwatch_event_rule: AutoName 64; events/validate.go validateEventRuleName: 64 of [0-9A-Za-z_.-]
    "aws:cloudwatch/eventRule:EventRule": NameRule("name", autoname_cap=64, max_length=64, pattern=r"[0-9A-Za-z_.-]+"),
    # aws_s3_bucket: AutoName("bucket", 63, "-") (lowercased); s3/bucket.go validBucketName: 3..63 of a-z 0-9 . -
    "aws:s3/bucket:Bucket": NameRule(
        "bucket", autoname_cap=63, max_length=63, pattern=r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
    ),
    # aws_secretsmanager_secret: secretsmanager/secret.go: 512 of [0-9A-Za-z/_+=.@-]
    "aws:secretsmanager/secret:Secret": NameRule("name", max_length=512, pattern=r"[0-9A-Za-z/_+=.@-]+"),
    # aws_appautoscaling_policy / scheduled_action: generic 255
    "aws:appautoscaling/policy:Policy": NameRule("name"),
    "aws:appautoscaling/scheduledAction:ScheduledAction": NameRule("name"),
}


def autoname(logical: str, cap: int) -> str:
    """`<logical>-<7 hex>`, or the engine's refusal when it cannot fit under `cap`."""
    if len(logical) + 1 + SUFFIX_LENGTH > cap:
        raise NameRejected(f"name '{logical}-' plus {SUFFIX_LENGTH} random chars is longer than maximum length {cap}")
    return f"{logical}-{secrets.token_hex(4)[:SUFFIX_LENGTH]}"


def physical_name(typ: str, logical: str, given: str | None) -> tuple[str | None, str | None]:
    """(the name property, the physical name) for a resource of `typ`: the given name checked against AWS's rules,
    or the autoname pulumi-aws would make; (None, None) for a type without a name input."""
    rule = RULES.get(typ)
    if rule is None:
        return None, None
    if given is None:
        if rule.autoname_cap is None:
            raise NameRejected(f'"{rule.prop}" is required')
        given = autoname(logical, rule.autoname_cap)
    rule.check(given, typ)
    return rule.prop, given
