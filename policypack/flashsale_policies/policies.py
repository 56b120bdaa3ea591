"""The rules, as pulumi-policy resource and stack policies. Each check is a plain function of a resource's properties
(camelCase, as the engine hands them) and the policy's config, yielding one message per problem that says how to fix
it; the policy objects only route resources to them. So the suite runs every check under mocks, without an engine.

Settings a team may want to change are each policy's config (`Setting`: key, JSON schema, default), set with
`pulumi preview --policy-pack policypack --policy-pack-config config.json`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from .names import NAME_LIMITS

Props = Mapping[str, Any]
Config = Mapping[str, Any]
ResourceCheck = Callable[[str, Props, Config], Iterable[str]]  # (type, props, config) -> problems

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ROLE = "aws:iam/role:Role"
QUEUE = "aws:sqs/queue:Queue"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
ECS_SERVICE = "aws:ecs/service:Service"
SCALABLE_TARGET = "aws:appautoscaling/target:Target"
FUNCTION = "aws:lambda/function:Function"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
BUCKET_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
BUCKET_PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"

ANYWHERE = ("0.0.0.0/0", "::/0")
FARGATE_STOP_TIMEOUT = (2, 120)  # seconds ECS allows on Fargate
TASK_PROTECTION_ACTION = "ecs:UpdateTaskProtection"
HUMAN_PROTOCOLS = ("email", "email-json", "sms", "http", "https")
SECRET_STORE_ARN = re.compile(r"arn:aws[\w-]*:(secretsmanager|ssm):[\w-]+:\d{12}:(secret|parameter)[:/].+")


@dataclass(frozen=True)
class Setting:
    """One config key of a policy: its JSON schema (with the default used when the team sets none)."""

    key: str
    schema: Mapping[str, Any]

    def of(self, config: Config) -> Any:
        return config.get(self.key, self.schema["default"])


def config_schema(*settings: Setting) -> PolicyConfigSchema:
    return PolicyConfigSchema(properties={s.key: dict(s.schema) for s in settings})


def document(value: Any) -> Any:
    """A JSON document property (policies, container definitions) as data: the engine hands a string."""
    return json.loads(value) if isinstance(value, str) else value


def listed(value: Any) -> list[Any]:
    """IAM's one-or-many fields (Action, Resource) as a list."""
    return list(value) if isinstance(value, (list, tuple)) else [value]


def resource_policy(
    name: str,
    description: str,
    types: Sequence[str] | None,
    check: ResourceCheck,
    *,
    advisory: bool = False,
    settings: Sequence[Setting] = (),
) -> ResourceValidationPolicy:
    """A policy that runs `check` on every resource of `types` (every resource when None) and reports each problem."""

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        if types is None or args.resource_type in types:
            for problem in check(args.resource_type, args.props, args.get_config()):
                report(problem, None)

    return ResourceValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.ADVISORY if advisory else EnforcementLevel.MANDATORY,
        config_schema=config_schema(*settings) if settings else None,
    )


# --- IAM ---------------------------------------------------------------------------------------------------------

ALLOWED_WILDCARDS = Setting(
    "allowedResourceWildcards",
    {
        "type": "array",
        "items": {"type": "string"},
        "description": "regexes of resource ARNs that may hold a * (names made later: log streams, a cluster's tasks)",
        "default": [r"arn:aws[\w-]*:.+:log-stream:\*", r"arn:aws[\w-]*:ecs:[\w-]+:\d{12}:task/[\w-]+/\*"],
    },
)


def least_privilege(typ: str, props: Props, config: Config) -> Iterator[str]:
    allowed = [re.compile(pattern) for pattern in ALLOWED_WILDCARDS.of(config)]
    for number, statement in enumerate(listed(document(props["policy"])["Statement"]), 1):
        if statement.get("Effect") != "Allow":
            continue
        for action in listed(statement.get("Action", [])):
            if "*" in action:
                yield f"statement {number} allows {action!r}: list the exact actions the role needs"
        for resource in listed(statement.get("Resource", [])):
            if "*" in resource and not any(p.fullmatch(resource) for p in allowed):
                yield (
                    f"statement {number} applies to {resource!r}: name the one resource (a grant method of the "
                    f"component that owns it), or add the pattern to {ALLOWED_WILDCARDS.key}"
                )


def trusts_own_account(typ: str, props: Props, config: Config) -> Iterator[str]:
    for number, statement in enumerate(listed(document(props["assumeRolePolicy"])["Statement"]), 1):
        principal = statement.get("Principal")
        if not isinstance(principal, Mapping) or set(principal) != {"Service"}:
            yield f"statement {number} trusts {principal!r}: only an AWS service may assume the role"
        condition = (statement.get("Condition") or {}).get("StringEquals") or {}
        if not condition.get("aws:SourceAccount"):
            yield (
                f"statement {number} has no aws:SourceAccount condition: the service could be made to assume the "
                "role for another account's resource (confused deputy); add StringEquals aws:SourceAccount"
            )


MANAGED_POLICIES = Setting(
    "allowedManagedPolicies",
    {
        "type": "array",
        "items": {"type": "string"},
        "description": "AWS managed policy ARNs a role may carry",
        "default": ["arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"],
    },
)


def managed_policy_allowed(typ: str, props: Props, config: Config) -> Iterator[str]:
    if props["policyArn"] not in MANAGED_POLICIES.of(config):
        yield (
            f"attaches {props['policyArn']}: managed policies grant more than a service needs; give the exact "
            f"grants in an inline policy, or add the ARN to {MANAGED_POLICIES.key}"
        )


# --- Encryption, retention, failures ------------------------------------------------------------------------------

SSE_ALGORITHMS = ("AES256", "aws:kms", "aws:kms:dsse")


def encrypted_at_rest(typ: str, props: Props, config: Config) -> Iterator[str]:
    if typ == TOPIC and not props.get("kmsMasterKeyId"):
        yield "the topic is not encrypted: set kms_master_key_id (alias/aws/sns, or a key CloudWatch may use)"
    elif typ == QUEUE and not (props.get("sqsManagedSseEnabled") or props.get("kmsMasterKeyId")):
        yield "the queue is not encrypted: set sqs_managed_sse_enabled=True (or kms_master_key_id)"
    elif typ == "aws:dynamodb/table:Table" and not (props.get("serverSideEncryption") or {}).get("enabled"):
        yield "the table uses the AWS owned key: set server_side_encryption={'enabled': True}"
    elif typ == "aws:kms/key:Key" and not props.get("enableKeyRotation"):
        yield "the key never rotates: set enable_key_rotation=True"
    elif typ == BUCKET_ENCRYPTION:
        for rule in props.get("rules") or [{}]:
            algorithm = (rule.get("applyServerSideEncryptionByDefault") or {}).get("sseAlgorithm")
            if algorithm not in SSE_ALGORITHMS:
                yield f"default encryption {algorithm!r}: use one of {', '.join(SSE_ALGORITHMS)}"


def queue_has_dead_letter(typ: str, props: Props, config: Config) -> Iterator[str]:
    if props.get("redriveAllowPolicy"):
        return  # it is a dead-letter queue itself: says which queues (or none) may redrive into it
    redrive = document(props.get("redrivePolicy") or "{}")
    if not redrive.get("deadLetterTargetArn"):
        yield (
            "messages that keep failing are retried until they expire: give the queue a redrive_policy "
            "(deadLetterTargetArn, maxReceiveCount), or mark a dead-letter queue with redrive_allow_policy"
        )


def function_keeps_failures(typ: str, props: Props, config: Config) -> Iterator[str]:
    if not (props.get("deadLetterConfig") or {}).get("targetArn"):
        yield (
            "an asynchronous invocation that fails after Lambda's retries leaves no trace: set dead_letter_config "
            "to an SQS queue (and grant the role sqs:SendMessage on it)"
        )


SENSITIVE_VARIABLES = Setting(
    "sensitiveVariables",
    {
        "type": "string",
        "description": "regex of environment variable names that must hold a secret's ARN, not a value",
        "default": r"(?i).*(webhook|token|password|secret|api_?key|credential).*",
    },
)


def no_plain_secrets(typ: str, props: Props, config: Config) -> Iterator[str]:
    names = re.compile(SENSITIVE_VARIABLES.of(config))
    variables = (props.get("environment") or {}).get("variables") or {}
    for name, value in variables.items():
        if names.fullmatch(name) and not SECRET_STORE_ARN.fullmatch(str(value)):
            yield (
                f"environment variable {name} holds a secret in the function's configuration (readable by anyone "
                "who may read the function): keep it in Secrets Manager or an SSM SecureString, pass the ARN, "
                "grant secretsmanager:GetSecretValue (or ssm:GetParameter) on it"
            )


# --- Load balancers and network -----------------------------------------------------------------------------------


def alb_logged_and_strict(typ: str, props: Props, config: Config) -> Iterator[str]:
    if props.get("loadBalancerType", "application") != "application":
        return
    logs = props.get("accessLogs") or {}
    if not (logs.get("enabled") and logs.get("bucket")):
        yield (
            "the load balancer keeps no access logs: set access_logs={'bucket': ..., 'enabled': True} to an "
            "SSE-S3 bucket with a lifecycle rule (components.access_logs.AccessLogBucket)"
        )
    if not props.get("dropInvalidHeaderFields"):
        yield "invalid HTTP headers reach the services (request smuggling): set drop_invalid_header_fields=True"


def listener_https(typ: str, props: Props, config: Config) -> Iterator[str]:
    forwards = any(action.get("type") == "forward" for action in props.get("defaultActions") or [])
    if props.get("protocol") == "HTTP" and forwards:
        yield (
            "orders travel over plain HTTP: fine for a lab; for real customers "
            "`pulumi config set certificateArn <ACM certificate ARN>` (HTTPS, and HTTP only redirects)"
        )


PUBLIC_PORTS = Setting(
    "publicPorts",
    {
        "type": "array",
        "items": {"type": "integer"},
        "description": "ports that may be open to the internet",
        "default": [80, 443],
    },
)


def _open_ports(rule: Props, public: Sequence[int]) -> Iterator[str]:
    cidrs = [
        rule.get("cidrIpv4"),
        rule.get("cidrIpv6"),
        *(rule.get("cidrBlocks") or []),
        *(rule.get("ipv6CidrBlocks") or []),
    ]
    if not any(cidr in ANYWHERE for cidr in cidrs):
        return
    low, high = int(rule.get("fromPort", 0) or 0), int(rule.get("toPort", 65535) or 65535)
    if rule.get("ipProtocol", rule.get("protocol")) in ("-1", "all") or any(
        port not in public for port in range(low, high + 1)
    ):
        yield (
            f"ports {low}..{high} are open to the internet: only {list(public)} may be (the load balancers'); "
            "a service's tasks admit their load balancer's security group, never an address range"
        )


def no_public_services(typ: str, props: Props, config: Config) -> Iterator[str]:
    public = PUBLIC_PORTS.of(config)
    rules = [props] if typ == INGRESS else list(props.get("ingress") or [])
    for rule in rules:
        yield from _open_ports(rule, public)


def rules_described(typ: str, props: Props, config: Config) -> Iterator[str]:
    described = props.get("description")
    if not described or described == "Managed by Pulumi":
        yield "no description: say what the rule (or group) admits and why, as a reviewer of the group reads it"


# --- Containers ---------------------------------------------------------------------------------------------------


def image_tags_immutable(typ: str, props: Props, config: Config) -> Iterator[str]:
    if props.get("imageTagMutability") != "IMMUTABLE":
        yield "a pushed tag can be moved to another image: set image_tag_mutability='IMMUTABLE'"
    if not (props.get("imageScanningConfiguration") or {}).get("scanOnPush"):
        yield "images are not scanned: set image_scanning_configuration={'scan_on_push': True}"


MIN_STOP_TIMEOUT = Setting(
    "minStopTimeoutSeconds",
    {
        "type": "integer",
        "minimum": FARGATE_STOP_TIMEOUT[0],
        "maximum": FARGATE_STOP_TIMEOUT[1],
        "description": "the least time a container gets between SIGTERM and SIGKILL",
        "default": 2,
    },
)


def containers_hardened(typ: str, props: Props, config: Config) -> Iterator[str]:
    least, most = MIN_STOP_TIMEOUT.of(config), FARGATE_STOP_TIMEOUT[1]
    for container in document(props["containerDefinitions"]):
        name = container.get("name", "?")
        timeout = container.get("stopTimeout")
        if timeout is None or not least <= timeout <= most:
            yield (
                f"container {name}: stopTimeout {timeout} — set it ({least}..{most} s): the graceful drain of "
                "in-flight work is bounded by it, and ECS kills the container when it runs out"
            )
        if str(container.get("user", "")).split(":")[0] in ("", "0", "root"):
            yield f"container {name} runs as root: set user to an unprivileged uid:gid"
        if container.get("readonlyRootFilesystem") is not True:
            yield f"container {name}: set readonlyRootFilesystem=True (mount a task-storage volume where it writes)"
        if not container.get("logConfiguration"):
            yield f"container {name} keeps no logs: set a logConfiguration (awslogs)"


MAX_TASKS = Setting(
    "maxTasks",
    {
        "type": "integer",
        "minimum": 1,
        "description": "most tasks one ECS service may run (a cost ceiling)",
        "default": 100,
    },
)


def service_bounded(typ: str, props: Props, config: Config) -> Iterator[str]:
    ceiling = MAX_TASKS.of(config)
    if typ == ECS_SERVICE:
        breaker = props.get("deploymentCircuitBreaker") or {}
        if not (breaker.get("enable") and breaker.get("rollback")):
            yield (
                "a failing deployment keeps replacing tasks: set deployment_circuit_breaker={'enable': True, "
                "'rollback': True}"
            )
        if int(props.get("desiredCount", 0) or 0) > ceiling:
            yield f"desiredCount {props['desiredCount']} is above {MAX_TASKS.key} {ceiling}"
    elif props.get("serviceNamespace") == "ecs" and int(props.get("maxCapacity", 0) or 0) > ceiling:
        yield (
            f"auto-scaling may run {props['maxCapacity']} tasks, above {MAX_TASKS.key} {ceiling}: lower "
            "maxWorkerTasks, or raise the policy's maxTasks"
        )


# --- Alarms, regions, names ---------------------------------------------------------------------------------------


def alarm_acts(typ: str, props: Props, config: Config) -> Iterator[str]:
    if not props.get("alarmActions"):
        yield "the alarm has no alarm action: nobody hears of it; point alarm_actions at the alarm topic"
    if props.get("actionsEnabled") is False:
        yield "the alarm's actions are disabled: set actions_enabled=True"


ALLOWED_REGIONS = Setting(
    "allowedRegions",
    {
        "type": "array",
        "items": {"type": "string"},
        "description": "AWS regions the stacks may deploy to",
        "default": ["us-west-2"],
    },
)


def in_allowed_region(region: Any, config: Config) -> Iterator[str]:
    if isinstance(region, str) and region and region not in ALLOWED_REGIONS.of(config):
        yield (
            f"deploys to {region}, not one of {ALLOWED_REGIONS.of(config)}: `pulumi config set aws:region ...`, "
            f"or add the region to {ALLOWED_REGIONS.key}"
        )


def names_fit(typ: str, props: Props, config: Config) -> Iterator[str]:
    limit = NAME_LIMITS.get(typ)
    name = props.get(limit.prop) if limit else None
    if limit and isinstance(name, str):
        problem = limit.problem(name)
        if problem:
            yield (
                f"{problem}: AWS would refuse it half way through `pulumi up`; shorten the logical name "
                "(autonamed resources add 8 characters)"
            )


def _regions(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """The provider's region, and a resource's own `region` input (pulumi-aws 7 allows one per resource)."""
    if not args.resource_type.startswith("aws:"):
        return
    config = args.get_config()
    provider_region = args.provider.props.get("region") if args.provider is not None else None
    for region in (provider_region, args.props.get("region")):
        for problem in in_allowed_region(region, config):
            report(problem, None)


# --- Across resources (stack policies) ----------------------------------------------------------------------------


def _key(resource: PolicyResource) -> set[str]:
    """What other resources reference it by: its id (IAM role, S3 bucket: the name) and name."""
    return {str(resource.props[k]) for k in ("id", "name", "bucket") if resource.props.get(k)}


def _of(resources: Sequence[PolicyResource], typ: str) -> list[PolicyResource]:
    return [r for r in resources if r.resource_type == typ]


def buckets_protected(resources: Sequence[PolicyResource]) -> Iterator[tuple[str, str]]:
    for bucket in _of(resources, BUCKET):
        keys = _key(bucket)
        attached = {
            typ: [r for r in _of(resources, typ) if r.props.get("bucket") in keys]
            for typ in (BUCKET_ENCRYPTION, BUCKET_LIFECYCLE, BUCKET_PUBLIC_ACCESS)
        }
        if not attached[BUCKET_ENCRYPTION]:
            yield bucket.urn, "no default encryption: add a BucketServerSideEncryptionConfiguration (SSE-S3 or KMS)"
        if not any(
            rule.get("status") == "Enabled" and rule.get("expiration")
            for r in attached[BUCKET_LIFECYCLE]
            for rule in r.props.get("rules") or []
        ):
            yield bucket.urn, "objects are kept forever: add a BucketLifecycleConfiguration rule that expires them"
        flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
        if not any(all(r.props.get(flag) for flag in flags) for r in attached[BUCKET_PUBLIC_ACCESS]):
            yield bucket.urn, "public access is not blocked: add a BucketPublicAccessBlock with all four flags true"


def scale_in_protection_granted(resources: Sequence[PolicyResource]) -> Iterator[tuple[str, str]]:
    """A scaled ECS service's tasks may protect themselves while busy, or scaling in stops work half done."""
    by_arn = {r.props["arn"]: r for r in resources if isinstance(r.props.get("arn"), str)}
    for target in _of(resources, SCALABLE_TARGET):
        if target.props.get("serviceNamespace") != "ecs":
            continue
        service_name = str(target.props["resourceId"]).rsplit("/", 1)[-1]
        services = [s for s in _of(resources, ECS_SERVICE) if s.props.get("name") == service_name]
        for service in services:
            definition = by_arn.get(service.props.get("taskDefinition"))
            role = by_arn.get(definition.props.get("taskRoleArn")) if definition is not None else None
            granted = role is not None and any(
                TASK_PROTECTION_ACTION in listed(statement.get("Action", []))
                for policy in _of(resources, ROLE_POLICY)
                if policy.props.get("role") in _key(role)
                for statement in listed(document(policy.props["policy"])["Statement"])
            )
            if not granted:
                yield (
                    service.urn,
                    (
                        f"the service scales in, but its task role may not call {TASK_PROTECTION_ACTION}: "
                        "a busy task can be stopped mid-work; grant it on the cluster's tasks "
                        "(ServiceCluster.grant_task_protection)"
                    ),
                )


ALERT_RELAYS = Setting(
    "alertRelayVariables",
    {
        "type": "array",
        "items": {"type": "string"},
        "description": "function environment variables whose presence means alerts are relayed to people "
        "(a chat webhook)",
        "default": ["ALERT_WEBHOOK_SECRET_ARN"],
    },
)


def alerts_reach_someone(resources: Sequence[PolicyResource], config: Config) -> Iterator[tuple[str, str]]:
    if any(s.props.get("protocol") in HUMAN_PROTOCOLS for s in _of(resources, SUBSCRIPTION)):
        return
    relays = ALERT_RELAYS.of(config)
    if any(
        name in ((f.props.get("environment") or {}).get("variables") or {})
        for f in _of(resources, FUNCTION)
        for name in relays
    ):
        return
    if _of(resources, "aws:cloudwatch/metricAlarm:MetricAlarm"):
        yield (
            "",
            (
                "alarms fire but reach no one: `pulumi config set --path 'alertEmails[0]' oncall@example.com`, "
                "or `pulumi config set --secret alertWebhookUrl <chat webhook>`"
            ),
        )


def stack_policy(
    name: str,
    description: str,
    check: Callable[[Sequence[PolicyResource], Config], Iterable[tuple[str, str]]],
    *,
    advisory: bool = False,
    settings: Sequence[Setting] = (),
) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        for urn, problem in check(args.resources, args.get_config()):
            report(problem, urn or None)

    return StackValidationPolicy(
        name=name,
        description=description,
        validate=validate,
        enforcement_level=EnforcementLevel.ADVISORY if advisory else EnforcementLevel.MANDATORY,
        config_schema=config_schema(*settings) if settings else None,
    )


def _ignoring_config(
    check: Callable[[Sequence[PolicyResource]], Iterable[tuple[str, str]]],
) -> Callable[[Sequence[PolicyResource], Config], Iterable[tuple[str, str]]]:
    return lambda resources, config: check(resources)


POLICIES: tuple[ResourceValidationPolicy | StackValidationPolicy, ...] = (
    resource_policy(
        "iam-least-privilege",
        "Role policies name exact actions on exact resources (no *).",
        (ROLE_POLICY, "aws:iam/policy:Policy"),
        least_privilege,
        settings=[ALLOWED_WILDCARDS],
    ),
    resource_policy(
        "iam-trust-own-account",
        "Roles trust an AWS service, only on behalf of this account.",
        (ROLE,),
        trusts_own_account,
    ),
    resource_policy(
        "iam-managed-policies-allowed",
        "Only allow-listed AWS managed policies are attached.",
        ("aws:iam/rolePolicyAttachment:RolePolicyAttachment",),
        managed_policy_allowed,
        settings=[MANAGED_POLICIES],
    ),
    resource_policy(
        "encrypted-at-rest",
        "Topics, queues, tables and buckets are encrypted; keys rotate.",
        (TOPIC, QUEUE, "aws:dynamodb/table:Table", "aws:kms/key:Key", BUCKET_ENCRYPTION),
        encrypted_at_rest,
    ),
    resource_policy(
        "queue-dead-letter", "Every queue has a dead-letter queue, or is one.", (QUEUE,), queue_has_dead_letter
    ),
    resource_policy(
        "lambda-keeps-failures",
        "Functions invoked asynchronously keep what failed (a DLQ).",
        (FUNCTION,),
        function_keeps_failures,
    ),
    resource_policy(
        "lambda-no-plain-secrets",
        "Secrets reach functions as Secrets Manager / SSM ARNs, not values.",
        (FUNCTION,),
        no_plain_secrets,
        settings=[SENSITIVE_VARIABLES],
    ),
    resource_policy(
        "alb-logged-and-strict",
        "Application load balancers keep access logs and drop bad headers.",
        (LOAD_BALANCER,),
        alb_logged_and_strict,
    ),
    resource_policy(
        "alb-https",
        "Listeners serve HTTPS (advisory: the lab runs without a certificate).",
        ("aws:lb/listener:Listener",),
        listener_https,
        advisory=True,
    ),
    resource_policy(
        "no-public-services",
        "Only the load balancers' ports are open to the internet.",
        (INGRESS, SECURITY_GROUP),
        no_public_services,
        settings=[PUBLIC_PORTS],
    ),
    resource_policy(
        "security-rules-described",
        "Security groups and their rules say what they admit.",
        (INGRESS, EGRESS, SECURITY_GROUP),
        rules_described,
    ),
    resource_policy(
        "ecr-immutable-scanned",
        "Image tags are immutable and images are scanned on push.",
        ("aws:ecr/repository:Repository",),
        image_tags_immutable,
    ),
    resource_policy(
        "ecs-containers-hardened",
        "Containers set stopTimeout, run as non-root, read-only, with logs.",
        (TASK_DEFINITION,),
        containers_hardened,
        settings=[MIN_STOP_TIMEOUT],
    ),
    resource_policy(
        "ecs-services-bounded",
        "Services roll back failed deploys and stay under a task ceiling.",
        (ECS_SERVICE, SCALABLE_TARGET),
        service_bounded,
        settings=[MAX_TASKS],
    ),
    resource_policy(
        "alarms-have-actions",
        "Every alarm acts (notifies or scales).",
        ("aws:cloudwatch/metricAlarm:MetricAlarm",),
        alarm_acts,
    ),
    ResourceValidationPolicy(
        name="allowed-regions",
        description="Resources are deployed only to the allowed regions.",
        validate=_regions,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=config_schema(ALLOWED_REGIONS),
    ),
    resource_policy("aws-name-limits", "Names fit AWS's length and character rules.", tuple(NAME_LIMITS), names_fit),
    stack_policy(
        "s3-buckets-protected",
        "Buckets are encrypted, expire objects and block public access.",
        _ignoring_config(buckets_protected),
    ),
    stack_policy(
        "scale-in-protection-granted",
        "Scaled ECS services' tasks may protect themselves while busy.",
        _ignoring_config(scale_in_protection_granted),
    ),
    stack_policy(
        "alerts-reach-someone",
        "Alarms reach a person (advisory: the lab has no subscriber).",
        alerts_reach_someone,
        advisory=True,
        settings=[ALERT_RELAYS],
    ),
)
