"""How the local deployer creates each resource type the program declares: one boto3 handler per Pulumi type.

A handler gets the resource as the engine would hand it to the provider (resolved inputs, the physical name already
decided by `local_runtime.naming`) and returns its id and the outputs the provider would report, taken from the emulator's
answer (ARNs, URLs, ids), so that later resources reference real values. Inputs arrive in Pulumi's shape
(camelCase keys, numbers as floats); each handler turns them into the AWS API's. Where an emulator accepts what AWS
refuses and Terraform's provider does not check at preview either, the handler checks AWS's documented rule itself
(`Invalid` below), so the deploy fails as `pulumi up` would.

Two awsx components exist only on AWS and get honest stand-ins (`Standin`): the default-VPC lookup answers with
moto's default VPC, and the image build (no Docker engine here) answers with a tag naming the build context's
content; the local ECS runs that context's ENTRYPOINT. A Lambda subscribed to a topic becomes a local queue
subscribed to it, which the local runtime's relay reads to invoke the function's handler.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

DATA_PLANE = "ministack"
CONTROL = "moto"
IMAGE_TAG_PREFIX = "local-"


class Invalid(ValueError):
    """AWS would refuse this input; the message says what AWS says."""


@dataclass(frozen=True)
class Declared:
    """One custom resource as the engine hands it to the provider."""

    urn: str
    typ: str
    logical: str
    name: str  # the physical name ("" for a type that has none)
    inputs: Mapping[str, Any]


@dataclass(frozen=True)
class Standin:
    """A local replacement for something that exists only on AWS; said in the deploy's output."""

    urn: str
    what: str


@dataclass(frozen=True)
class Relay:
    """A Lambda function subscribed to a topic, stood in for by a queue subscribed to it (local runtime reads it)."""

    queue_url: str
    function_name: str
    handler: str
    environment: Mapping[str, str]


@dataclass(frozen=True)
class Image:
    """The image the program built, as the local ECS runs it: the build context and its Dockerfile."""

    uri: str
    context: Path
    dockerfile: Path


@dataclass
class Context:
    """What handlers share: clients by AWS service, and what the deploy must tell."""

    client: Callable[[str], Any]
    region: str
    standins: list[Standin] = field(default_factory=list)
    relays: list[Relay] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    math_alarms: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # name -> PutMetricAlarm Metrics


Created = tuple[str, dict[str, Any]]  # (the provider's id, outputs beyond the inputs)
Handler = Callable[[Context, Declared], Created]


@dataclass(frozen=True)
class Kind:
    handler: Handler
    plane: str  # which emulator it writes to: DATA_PLANE or CONTROL
    stable: bool = True  # created again with the same inputs, it gets the same ARN (False: AWS makes up an id)


HANDLERS: dict[str, Kind] = {}


def handles(typ: str, plane: str, *, stable: bool = True) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[typ] = Kind(handler, plane, stable)
        return handler
    return register


# --- input shapes --------------------------------------------------------------------------------------------------


def whole(value: Any) -> Any:
    """Pulumi's numbers arrive as floats; AWS APIs want integers where they are whole."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [whole(v) for v in value]
    if isinstance(value, dict):
        return {k: whole(v) for k, v in value.items()}
    return value


def pascal(value: Any) -> Any:
    """Pulumi's camelCase nested inputs in the AWS API's PascalCase (`scaleOutCooldown` -> `ScaleOutCooldown`)."""
    if isinstance(value, list):
        return [pascal(v) for v in value]
    if isinstance(value, dict):
        return {k[:1].upper() + k[1:]: pascal(v) for k, v in value.items()}
    return whole(value)


def policy_document(text: Any, what: str) -> dict[str, Any]:
    """A JSON policy as AWS parses it: an object with Version and Statement."""
    try:
        document = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError as e:
        raise Invalid(f"{what} is not valid JSON: {e.msg}") from None
    if not isinstance(document, dict) or "Statement" not in document:
        raise Invalid(f"{what} must be a JSON object with a Statement")
    return document


def json_text(text: Any, what: str) -> Any:
    try:
        return json.loads(text)
    except (TypeError, json.JSONDecodeError) as e:
        raise Invalid(f"{what} is not valid JSON: {e}") from None


def _between(what: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise Invalid(f"{what} must be between {low} and {high}, got {value}")


def account_of(arn: str) -> str:
    return arn.split(":")[4]


# --- awsx stand-ins -------------------------------------------------------------------------------------------------


@handles("awsx:ec2:DefaultVpc", CONTROL)
def default_vpc(ctx: Context, r: Declared) -> Created:
    ec2 = ctx.client("ec2")
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise Invalid("the account has no default VPC")
    vpc = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
    public = sorted(s["SubnetId"] for s in subnets if s.get("MapPublicIpOnLaunch"))
    ctx.standins.append(Standin(r.urn, f"default VPC lookup answered with the emulator's default VPC {vpc}"))
    return vpc, {"vpcId": vpc, "publicSubnetIds": public, "privateSubnetIds": []}


def context_digest(context: Path) -> str:
    """What the build context holds, as a hash: the stand-in image's tag changes when the code does."""
    digest = hashlib.sha256()
    for path in sorted(p for p in context.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(context)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


@handles("awsx:ecr:Image", CONTROL)
def image(ctx: Context, r: Declared) -> Created:
    context, dockerfile = Path(r.inputs["context"]), Path(r.inputs.get("dockerfile") or Path(r.inputs["context"]) / "Dockerfile")
    if not dockerfile.is_file():
        raise Invalid(f"no Dockerfile at {dockerfile}")
    uri = f"{r.inputs['repositoryUrl']}:{IMAGE_TAG_PREFIX}{context_digest(context)}"
    ctx.images.append(Image(uri, context, dockerfile))
    ctx.standins.append(Standin(r.urn, f"image not built (no Docker engine): the local ECS runs {context.name}/ "
                                       f"with its Dockerfile's ENTRYPOINT, as {uri.rsplit('/', 1)[-1]}"))
    return uri, {"imageUri": uri}


# --- network --------------------------------------------------------------------------------------------------------


@handles("aws:ec2/securityGroup:SecurityGroup", CONTROL)
def security_group(ctx: Context, r: Declared) -> Created:
    ec2 = ctx.client("ec2")
    group = ec2.create_security_group(GroupName=r.name, Description=r.inputs.get("description", "Managed by Pulumi"),
                                      VpcId=r.inputs["vpcId"])["GroupId"]
    # As Terraform's provider does: without inline egress rules, the default allow-all egress rule is removed.
    ec2.revoke_security_group_egress(GroupId=group, IpPermissions=[{"IpProtocol": "-1",
                                                                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    owner = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]["OwnerId"]
    return group, {"arn": f"arn:aws:ec2:{ctx.region}:{owner}:security-group/{group}", "ownerId": owner}


RULE_DESCRIPTION = re.compile(r"[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]{0,255}")  # EC2's rule description


def _rule_description(text: str) -> str:
    if not RULE_DESCRIPTION.fullmatch(text):
        raise Invalid(f"description must be at most 255 of a-zA-Z0-9. _-:/()#,@[]+=&;{{}}!$*, got {text!r}")
    return text


def _rule(ctx: Context, r: Declared, egress: bool) -> Created:
    ec2 = ctx.client("ec2")
    permission: dict[str, Any] = {"IpProtocol": r.inputs["ipProtocol"], "FromPort": whole(r.inputs["fromPort"]),
                                  "ToPort": whole(r.inputs["toPort"])}
    described = {"Description": _rule_description(r.inputs["description"])} if r.inputs.get("description") else {}
    if r.inputs.get("cidrIpv4"):
        permission["IpRanges"] = [{"CidrIp": r.inputs["cidrIpv4"], **described}]
    elif r.inputs.get("referencedSecurityGroupId"):
        permission["UserIdGroupPairs"] = [{"GroupId": r.inputs["referencedSecurityGroupId"], **described}]
    else:
        raise Invalid("a rule needs cidrIpv4, cidrIpv6, prefixListId or referencedSecurityGroupId")
    authorize = ec2.authorize_security_group_egress if egress else ec2.authorize_security_group_ingress
    rule = authorize(GroupId=r.inputs["securityGroupId"], IpPermissions=[permission])["SecurityGroupRules"][0]
    rule_id = rule["SecurityGroupRuleId"]
    return rule_id, {"securityGroupRuleId": rule_id,
                     "arn": f"arn:aws:ec2:{ctx.region}:{rule.get('GroupOwnerId', '')}:security-group-rule/{rule_id}"}


@handles("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule", CONTROL)
def ingress_rule(ctx: Context, r: Declared) -> Created:
    return _rule(ctx, r, egress=False)


@handles("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", CONTROL)
def egress_rule(ctx: Context, r: Declared) -> Created:
    return _rule(ctx, r, egress=True)


# --- load balancing -------------------------------------------------------------------------------------------------


@handles("aws:lb/loadBalancer:LoadBalancer", CONTROL)
def load_balancer(ctx: Context, r: Declared) -> Created:
    elbv2 = ctx.client("elbv2")
    lb = elbv2.create_load_balancer(
        Name=r.name, Subnets=list(r.inputs.get("subnets", [])), SecurityGroups=list(r.inputs.get("securityGroups", [])),
        Scheme="internal" if r.inputs.get("internal") else "internet-facing",
        Type=r.inputs.get("loadBalancerType", "application"))["LoadBalancers"][0]
    arn = lb["LoadBalancerArn"]
    attributes = []
    if r.inputs.get("dropInvalidHeaderFields"):
        attributes.append({"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"})
    logs = r.inputs.get("accessLogs") or {}
    if logs.get("enabled"):
        attributes += [{"Key": "access_logs.s3.enabled", "Value": "true"},
                       {"Key": "access_logs.s3.bucket", "Value": logs["bucket"]},
                       {"Key": "access_logs.s3.prefix", "Value": logs.get("prefix", "")}]
    if attributes:
        elbv2.modify_load_balancer_attributes(LoadBalancerArn=arn, Attributes=attributes)
    return arn, {"arn": arn, "arnSuffix": arn.split(":loadbalancer/", 1)[1], "dnsName": lb["DNSName"],
                 "zoneId": lb["CanonicalHostedZoneId"]}


@handles("aws:lb/targetGroup:TargetGroup", CONTROL)
def target_group(ctx: Context, r: Declared) -> Created:
    elbv2 = ctx.client("elbv2")
    check = r.inputs.get("healthCheck") or {}
    arguments: dict[str, Any] = {"Name": r.name, "Protocol": r.inputs["protocol"], "Port": whole(r.inputs["port"]),
                                 "VpcId": r.inputs["vpcId"], "TargetType": r.inputs.get("targetType", "instance")}
    if check.get("path"):
        arguments["HealthCheckPath"] = check["path"]
    if check.get("interval"):
        arguments["HealthCheckIntervalSeconds"] = whole(check["interval"])
    if check.get("matcher"):
        arguments["Matcher"] = {"HttpCode": check["matcher"]}
    group = elbv2.create_target_group(**arguments)["TargetGroups"][0]
    arn = group["TargetGroupArn"]
    if r.inputs.get("deregistrationDelay") is not None:
        delay = whole(r.inputs["deregistrationDelay"])
        _between("deregistration_delay", delay, 0, 3600)
        elbv2.modify_target_group_attributes(TargetGroupArn=arn, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": str(delay)}])
    return arn, {"arn": arn, "arnSuffix": arn.split(":", 5)[5]}


def _listener_action(action: Mapping[str, Any]) -> dict[str, Any]:
    if action["type"] == "forward":
        return {"Type": "forward", "TargetGroupArn": action["targetGroupArn"]}
    if action["type"] == "redirect":
        return {"Type": "redirect", "RedirectConfig": pascal(action["redirect"])}
    raise Invalid(f"listener action type {action['type']!r} is not supported by the local deployer")


@handles("aws:lb/listener:Listener", CONTROL)
def listener(ctx: Context, r: Declared) -> Created:
    arguments: dict[str, Any] = {
        "LoadBalancerArn": r.inputs["loadBalancerArn"], "Protocol": r.inputs.get("protocol", "HTTP"),
        "Port": whole(r.inputs["port"]), "DefaultActions": [_listener_action(a) for a in r.inputs["defaultActions"]]}
    if r.inputs.get("certificateArn"):
        arguments["Certificates"] = [{"CertificateArn": r.inputs["certificateArn"]}]
    if r.inputs.get("sslPolicy"):
        arguments["SslPolicy"] = r.inputs["sslPolicy"]
    arn = ctx.client("elbv2").create_listener(**arguments)["Listeners"][0]["ListenerArn"]
    return arn, {"arn": arn}


# --- ECS ------------------------------------------------------------------------------------------------------------

# Fargate's CPU units -> the memory sizes (MiB) allowed with them (AWS: "Task CPU and memory", Amazon ECS docs).
FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}


@handles("aws:ecs/cluster:Cluster", CONTROL)
def cluster(ctx: Context, r: Declared) -> Created:
    settings = [dict(setting) for setting in r.inputs.get("settings", [])]  # ECS's API is camelCase, like Pulumi's
    arn = ctx.client("ecs").create_cluster(clusterName=r.name, settings=settings)["cluster"]["clusterArn"]
    return arn, {"arn": arn}


@handles("aws:ecs/taskDefinition:TaskDefinition", CONTROL)
def task_definition(ctx: Context, r: Declared) -> Created:
    containers = json_text(r.inputs["containerDefinitions"], "containerDefinitions")
    if not isinstance(containers, list) or not containers:
        raise Invalid("containerDefinitions must be a non-empty JSON list")
    arguments: dict[str, Any] = {"family": r.name, "containerDefinitions": containers,
                                 "networkMode": r.inputs.get("networkMode", "bridge"),
                                 "requiresCompatibilities": list(r.inputs.get("requiresCompatibilities", []))}
    if "FARGATE" in arguments["requiresCompatibilities"]:
        try:
            cpu, memory = int(r.inputs["cpu"]), int(r.inputs["memory"])
        except (KeyError, ValueError):
            raise Invalid("a Fargate task definition needs task-level cpu and memory") from None
        if memory not in FARGATE_MEMORY.get(cpu, ()):
            raise Invalid(f"No Fargate configuration exists for given values: {cpu} CPU, {memory} memory")
        if arguments["networkMode"] != "awsvpc":
            raise Invalid("Fargate tasks must use the awsvpc network mode")
    for key in ("cpu", "memory", "executionRoleArn", "taskRoleArn"):
        if r.inputs.get(key):
            arguments[key] = r.inputs[key]
    if r.inputs.get("runtimePlatform"):
        arguments["runtimePlatform"] = dict(r.inputs["runtimePlatform"])
    if r.inputs.get("volumes"):
        arguments["volumes"] = [dict(v) for v in r.inputs["volumes"]]
    found = ctx.client("ecs").register_task_definition(**arguments)["taskDefinition"]
    return found["taskDefinitionArn"], {"arn": found["taskDefinitionArn"], "revision": found["revision"],
                                        "arnWithoutRevision": found["taskDefinitionArn"].rsplit(":", 1)[0]}


@handles("aws:ecs/service:Service", CONTROL)
def ecs_service(ctx: Context, r: Declared) -> Created:
    network = r.inputs.get("networkConfiguration") or {}
    arguments: dict[str, Any] = {
        "cluster": r.inputs["cluster"], "serviceName": r.name, "taskDefinition": r.inputs["taskDefinition"],
        "desiredCount": whole(r.inputs.get("desiredCount", 0)), "launchType": r.inputs.get("launchType", "EC2"),
        "loadBalancers": [whole(dict(lb)) for lb in r.inputs.get("loadBalancers", [])],
        "propagateTags": r.inputs.get("propagateTags", "NONE"),
        "enableECSManagedTags": bool(r.inputs.get("enableEcsManagedTags", False)),
    }
    if network:
        arguments["networkConfiguration"] = {"awsvpcConfiguration": {
            "subnets": list(network.get("subnets", [])), "securityGroups": list(network.get("securityGroups", [])),
            "assignPublicIp": "ENABLED" if network.get("assignPublicIp") else "DISABLED"}}
    if r.inputs.get("healthCheckGracePeriodSeconds") is not None:
        arguments["healthCheckGracePeriodSeconds"] = whole(r.inputs["healthCheckGracePeriodSeconds"])
    if r.inputs.get("deploymentCircuitBreaker"):
        arguments["deploymentConfiguration"] = {"deploymentCircuitBreaker": dict(r.inputs["deploymentCircuitBreaker"])}
    arn = ctx.client("ecs").create_service(**arguments)["service"]["serviceArn"]
    return arn, {"arn": arn}


@handles("aws:appautoscaling/target:Target", CONTROL)
def scalable_target(ctx: Context, r: Declared) -> Created:
    found = ctx.client("application-autoscaling").register_scalable_target(
        ServiceNamespace=r.inputs["serviceNamespace"], ResourceId=r.inputs["resourceId"],
        ScalableDimension=r.inputs["scalableDimension"], MinCapacity=whole(r.inputs["minCapacity"]),
        MaxCapacity=whole(r.inputs["maxCapacity"]))
    return r.inputs["resourceId"], {"arn": found.get("ScalableTargetARN", "")}


@handles("aws:appautoscaling/policy:Policy", CONTROL)
def scaling_policy(ctx: Context, r: Declared) -> Created:
    arguments: dict[str, Any] = {"PolicyName": r.name, "ServiceNamespace": r.inputs["serviceNamespace"],
                                 "ResourceId": r.inputs["resourceId"], "ScalableDimension": r.inputs["scalableDimension"],
                                 "PolicyType": r.inputs.get("policyType", "StepScaling")}
    for key in ("targetTrackingScalingPolicyConfiguration", "stepScalingPolicyConfiguration"):
        if r.inputs.get(key):
            arguments[key[:1].upper() + key[1:]] = pascal(r.inputs[key])
    for step in arguments.get("StepScalingPolicyConfiguration", {}).get("StepAdjustments", []):
        for bound in ("MetricIntervalLowerBound", "MetricIntervalUpperBound"):  # strings in Pulumi's schema
            if isinstance(step.get(bound), str):
                step[bound] = float(step[bound])
    found = ctx.client("application-autoscaling").put_scaling_policy(**arguments)
    return found["PolicyARN"], {"arn": found["PolicyARN"],
                                "alarmArns": [a["AlarmARN"] for a in found.get("Alarms", [])]}


SCHEDULE = re.compile(r"at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\)")


@handles("aws:appautoscaling/scheduledAction:ScheduledAction", CONTROL)
def scheduled_action(ctx: Context, r: Declared) -> Created:
    if not SCHEDULE.fullmatch(r.inputs["schedule"]):
        raise Invalid(f"schedule must be at(yyyy-mm-ddThh:mm:ss), rate(...) or cron(...), got {r.inputs['schedule']!r}")
    action = pascal(r.inputs.get("scalableTargetAction") or {})
    if not action:
        raise Invalid("scalableTargetAction needs MinCapacity or MaxCapacity")
    arguments: dict[str, Any] = {
        "ServiceNamespace": r.inputs["serviceNamespace"], "ScheduledActionName": r.name,
        "ResourceId": r.inputs["resourceId"], "ScalableDimension": r.inputs["scalableDimension"],
        "Schedule": r.inputs["schedule"], "ScalableTargetAction": action}
    if r.inputs.get("timezone"):
        arguments["Timezone"] = r.inputs["timezone"]
    scaling = ctx.client("application-autoscaling")
    scaling.put_scheduled_action(**arguments)
    found = scaling.describe_scheduled_actions(ServiceNamespace=r.inputs["serviceNamespace"],
                                               ScheduledActionNames=[r.name])["ScheduledActions"]
    arn = found[0]["ScheduledActionARN"] if found else ""
    return arn or r.name, {"arn": arn}


# --- messaging and storage (the data plane) --------------------------------------------------------------------------

QUEUE_ATTRIBUTES = {  # Pulumi input -> (SQS attribute, AWS's allowed range)
    "visibilityTimeoutSeconds": ("VisibilityTimeout", 0, 43_200),
    "messageRetentionSeconds": ("MessageRetentionPeriod", 60, 1_209_600),
    "receiveWaitTimeSeconds": ("ReceiveMessageWaitTimeSeconds", 0, 20),
    "delaySeconds": ("DelaySeconds", 0, 900),
    "maxMessageSize": ("MaximumMessageSize", 1_024, 262_144),
}


def _redrive(text: str) -> str:
    policy = json_text(text, "redrivePolicy")
    if not isinstance(policy, dict) or "deadLetterTargetArn" not in policy:
        raise Invalid("redrivePolicy must name a deadLetterTargetArn")
    _between("redrivePolicy maxReceiveCount", int(policy.get("maxReceiveCount", 0)), 1, 1000)
    return text


@handles("aws:sqs/queue:Queue", DATA_PLANE)
def queue(ctx: Context, r: Declared) -> Created:
    attributes: dict[str, str] = {}
    for prop, (attribute, low, high) in QUEUE_ATTRIBUTES.items():
        if r.inputs.get(prop) is not None:
            value = whole(r.inputs[prop])
            _between(prop, value, low, high)
            attributes[attribute] = str(value)
    if r.inputs.get("redrivePolicy"):
        attributes["RedrivePolicy"] = _redrive(r.inputs["redrivePolicy"])
    if r.inputs.get("redriveAllowPolicy"):
        json_text(r.inputs["redriveAllowPolicy"], "redriveAllowPolicy")
        attributes["RedriveAllowPolicy"] = r.inputs["redriveAllowPolicy"]
    if r.inputs.get("sqsManagedSseEnabled") is not None:
        attributes["SqsManagedSseEnabled"] = str(bool(r.inputs["sqsManagedSseEnabled"])).lower()
    if r.inputs.get("fifoQueue"):
        attributes["FifoQueue"] = "true"
    sqs = ctx.client("sqs")
    url = sqs.create_queue(QueueName=r.name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, {"url": url, "arn": arn}


@handles("aws:sqs/queuePolicy:QueuePolicy", DATA_PLANE)
def queue_policy(ctx: Context, r: Declared) -> Created:
    policy_document(r.inputs["policy"], "the queue policy")
    ctx.client("sqs").set_queue_attributes(QueueUrl=r.inputs["queueUrl"], Attributes={"Policy": r.inputs["policy"]})
    return r.inputs["queueUrl"], {}


@handles("aws:sns/topic:Topic", DATA_PLANE)
def topic(ctx: Context, r: Declared) -> Created:
    attributes = {"KmsMasterKeyId": r.inputs["kmsMasterKeyId"]} if r.inputs.get("kmsMasterKeyId") else {}
    arn = ctx.client("sns").create_topic(Name=r.name, Attributes=attributes)["TopicArn"]
    return arn, {"arn": arn}


@handles("aws:sns/topicSubscription:TopicSubscription", DATA_PLANE, stable=False)
def subscription(ctx: Context, r: Declared) -> Created:
    sns, protocol = ctx.client("sns"), r.inputs["protocol"]
    if protocol == "lambda":
        return _lambda_subscription(ctx, r)
    attributes = {"RawMessageDelivery": "true"} if r.inputs.get("rawMessageDelivery") else {}
    arn = sns.subscribe(TopicArn=r.inputs["topic"], Protocol=protocol, Endpoint=r.inputs["endpoint"],
                        Attributes=attributes, ReturnSubscriptionArn=True)["SubscriptionArn"]
    return arn, {"arn": arn}


def _lambda_subscription(ctx: Context, r: Declared) -> Created:
    """LOCAL STAND-IN: the emulators cannot invoke a Lambda, so a queue subscribed to the topic takes its events and
    the local runtime's relay runs the function's handler on them, with the function's environment as deployed."""
    function_name = r.inputs["endpoint"].rsplit(":", 1)[-1]
    found = ctx.client("lambda").get_function(FunctionName=function_name)["Configuration"]
    sqs, sns = ctx.client("sqs"), ctx.client("sns")
    url = sqs.create_queue(QueueName=f"{r.logical}-events"[:80])["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
                                                "Action": "sqs:SendMessage", "Resource": arn,
                                                "Condition": {"ArnEquals": {"aws:SourceArn": r.inputs["topic"]}}}]})})
    subscription_arn = sns.subscribe(TopicArn=r.inputs["topic"], Protocol="sqs", Endpoint=arn,
                                     ReturnSubscriptionArn=True)["SubscriptionArn"]
    ctx.relays.append(Relay(url, function_name, found["Handler"],
                            dict(found.get("Environment", {}).get("Variables", {}))))
    ctx.standins.append(Standin(r.urn, f"Lambda {function_name} subscribed through local queue {url.rsplit('/', 1)[-1]}"
                                       ", relayed by the local runtime"))
    return subscription_arn, {"arn": subscription_arn}


@handles("aws:dynamodb/table:Table", DATA_PLANE)
def table(ctx: Context, r: Declared) -> Created:
    dynamodb = ctx.client("dynamodb")
    keys = [{"AttributeName": r.inputs["hashKey"], "KeyType": "HASH"}]
    if r.inputs.get("rangeKey"):
        keys.append({"AttributeName": r.inputs["rangeKey"], "KeyType": "RANGE"})
    arguments: dict[str, Any] = {
        "TableName": r.name, "KeySchema": keys, "BillingMode": r.inputs.get("billingMode", "PROVISIONED"),
        "AttributeDefinitions": [{"AttributeName": a["name"], "AttributeType": a["type"]}
                                 for a in r.inputs.get("attributes", [])]}
    if (r.inputs.get("serverSideEncryption") or {}).get("enabled"):
        arguments["SSESpecification"] = {"Enabled": True}
    arn = dynamodb.create_table(**arguments)["TableDescription"]["TableArn"]
    dynamodb.get_waiter("table_exists").wait(TableName=r.name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    if (r.inputs.get("pointInTimeRecovery") or {}).get("enabled"):
        dynamodb.update_continuous_backups(TableName=r.name, PointInTimeRecoverySpecification={
            "PointInTimeRecoveryEnabled": True})
    ttl = r.inputs.get("ttl") or {}
    if ttl.get("enabled"):
        dynamodb.update_time_to_live(TableName=r.name, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": ttl["attributeName"]})
    return r.name, {"arn": arn}


@handles("aws:cloudwatch/logGroup:LogGroup", DATA_PLANE)
def log_group(ctx: Context, r: Declared) -> Created:
    logs = ctx.client("logs")
    logs.create_log_group(logGroupName=r.name)
    if r.inputs.get("retentionInDays"):
        logs.put_retention_policy(logGroupName=r.name, retentionInDays=whole(r.inputs["retentionInDays"]))
    found = logs.describe_log_groups(logGroupNamePrefix=r.name)["logGroups"][0]
    return r.name, {"arn": found.get("arn", "").removesuffix(":*")}


ALARM_OPERATORS = ("GreaterThanOrEqualToThreshold", "GreaterThanThreshold", "LessThanThreshold",
                   "LessThanOrEqualToThreshold", "LessThanLowerOrGreaterThanUpperThreshold",
                   "LessThanLowerThreshold", "GreaterThanUpperThreshold")
ALARM_STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
MISSING_DATA = ("breaching", "notBreaching", "ignore", "missing")


def _period(value: int) -> None:
    """CloudWatch: 10, 20, 30 (high resolution) or a multiple of 60 seconds."""
    if value not in (10, 20, 30) and (value <= 0 or value % 60):
        raise Invalid(f"period must be 10, 20, 30 or a multiple of 60 seconds, got {value}")


def _metric_query(query: Mapping[str, Any]) -> dict[str, Any]:
    """A Pulumi metricQuery ({id, expression | metric: {metricName, namespace, period, stat, dimensions}}) as the
    PutMetricAlarm Metrics entry."""
    entry: dict[str, Any] = {"Id": query["id"], "ReturnData": bool(query.get("returnData", False))}
    for key in ("expression", "label"):
        if query.get(key):
            entry[key.capitalize()] = query[key]
    if query.get("period"):
        entry["Period"] = whole(query["period"])
    metric = query.get("metric")
    if metric:
        _period(whole(metric["period"]))
        entry["MetricStat"] = {
            "Metric": {"Namespace": metric["namespace"], "MetricName": metric["metricName"],
                       "Dimensions": [{"Name": k, "Value": v} for k, v in (metric.get("dimensions") or {}).items()]},
            "Period": whole(metric["period"]), "Stat": metric["stat"]}
    return entry


@handles("aws:cloudwatch/metricAlarm:MetricAlarm", DATA_PLANE)
def metric_alarm(ctx: Context, r: Declared) -> Created:
    i = r.inputs
    if i["comparisonOperator"] not in ALARM_OPERATORS:
        raise Invalid(f"comparisonOperator must be one of {', '.join(ALARM_OPERATORS)}, got {i['comparisonOperator']!r}")
    if i.get("treatMissingData", "missing") not in MISSING_DATA:
        raise Invalid(f"treatMissingData must be one of {', '.join(MISSING_DATA)}")
    arguments: dict[str, Any] = {
        "AlarmName": r.name, "ComparisonOperator": i["comparisonOperator"],
        "EvaluationPeriods": whole(i["evaluationPeriods"]), "TreatMissingData": i.get("treatMissingData", "missing"),
        "ActionsEnabled": bool(i.get("actionsEnabled", True)),
        "AlarmActions": list(i.get("alarmActions", [])), "OKActions": list(i.get("okActions", [])),
        "InsufficientDataActions": list(i.get("insufficientDataActions", []))}
    _between("evaluationPeriods", arguments["EvaluationPeriods"], 1, 1_000_000)
    for source, target in (("alarmDescription", "AlarmDescription"), ("threshold", "Threshold"),
                           ("datapointsToAlarm", "DatapointsToAlarm")):
        if i.get(source) is not None:
            arguments[target] = whole(i[source])
    if i.get("metricQueries"):
        arguments["Metrics"] = [_metric_query(q) for q in i["metricQueries"]]
        # ministack accepts metric math and keeps no trace of it: the local runtime evaluates these alarms from
        # their definitions as deployed (local_runtime.metric_math).
        ctx.math_alarms[r.name] = arguments["Metrics"]
    else:
        if i.get("statistic") not in ALARM_STATISTICS:
            raise Invalid(f"statistic must be one of {', '.join(ALARM_STATISTICS)}, got {i.get('statistic')!r}")
        _period(whole(i["period"]))
        arguments |= {"Namespace": i["namespace"], "MetricName": i["metricName"], "Statistic": i["statistic"],
                      "Period": whole(i["period"]),
                      "Dimensions": [{"Name": k, "Value": v} for k, v in (i.get("dimensions") or {}).items()]}
    cloudwatch = ctx.client("cloudwatch")
    cloudwatch.put_metric_alarm(**arguments)
    arn = cloudwatch.describe_alarms(AlarmNames=[r.name])["MetricAlarms"][0]["AlarmArn"]
    return r.name, {"arn": arn}


@handles("aws:cloudwatch/dashboard:Dashboard", DATA_PLANE)
def dashboard(ctx: Context, r: Declared) -> Created:
    body = json_text(r.inputs["dashboardBody"], "dashboardBody")
    if not isinstance(body, dict) or not isinstance(body.get("widgets"), list):
        raise Invalid("dashboardBody must be a JSON object with a widgets list")
    cloudwatch = ctx.client("cloudwatch")
    cloudwatch.put_dashboard(DashboardName=r.name, DashboardBody=r.inputs["dashboardBody"])
    arn = cloudwatch.get_dashboard(DashboardName=r.name)["DashboardArn"]
    return r.name, {"dashboardArn": arn}


# --- IAM, KMS, ECR, Lambda (the control plane) ------------------------------------------------------------------------

PLACEHOLDER_TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


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


@handles("aws:ecr/repository:Repository", CONTROL)
def repository(ctx: Context, r: Declared) -> Created:
    scanning = r.inputs.get("imageScanningConfiguration") or {}
    found = ctx.client("ecr").create_repository(
        repositoryName=r.name, imageScanningConfiguration={"scanOnPush": bool(scanning.get("scanOnPush", False))},
        imageTagMutability=r.inputs.get("imageTagMutability", "MUTABLE"))[
        "repository"]
    return r.name, {"arn": found["repositoryArn"], "repositoryUrl": found["repositoryUri"],
                    "registryId": found["registryId"]}


@handles("aws:ecr/lifecyclePolicy:LifecyclePolicy", CONTROL)
def lifecycle_policy(ctx: Context, r: Declared) -> Created:
    json_text(r.inputs["policy"], "the lifecycle policy")
    found = ctx.client("ecr").put_lifecycle_policy(repositoryName=r.inputs["repository"],
                                                   lifecyclePolicyText=r.inputs["policy"])
    return r.inputs["repository"], {"registryId": found.get("registryId", "")}


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
        raise Invalid(f"runtime {i.get('runtime')!r} is not a Python runtime Lambda offers ({', '.join(LAMBDA_RUNTIMES)})")
    timeout = whole(i.get("timeout", 3))
    _between("timeout", timeout, 1, 900)
    arguments: dict[str, Any] = {"FunctionName": r.name, "Runtime": i["runtime"], "Role": i["role"],
                                 "Handler": i["handler"], "Code": {"ZipFile": _archive(i["code"])}, "Timeout": timeout}
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
    arguments = {"FunctionName": r.inputs["function"], "StatementId": statement, "Action": r.inputs["action"],
                 "Principal": r.inputs["principal"]}
    if r.inputs.get("sourceArn"):
        arguments["SourceArn"] = r.inputs["sourceArn"]
    ctx.client("lambda").add_permission(**arguments)
    return statement, {"statementId": statement}


# --- storage and secrets ------------------------------------------------------------------------------------------


@handles("aws:s3/bucket:Bucket", CONTROL)
def bucket(ctx: Context, r: Declared) -> Created:
    s3 = ctx.client("s3")
    location = {} if ctx.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": ctx.region}}
    s3.create_bucket(Bucket=r.name, **location)
    return r.name, {"arn": f"arn:aws:s3:::{r.name}", "bucket": r.name,
                    "bucketDomainName": f"{r.name}.s3.amazonaws.com"}


@handles("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", CONTROL)
def bucket_encryption(ctx: Context, r: Declared) -> Created:
    rules = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": by_default["sseAlgorithm"]}
              | ({"KMSMasterKeyID": by_default["kmsMasterKeyId"]} if by_default.get("kmsMasterKeyId") else {})}
             for by_default in (rule["applyServerSideEncryptionByDefault"] for rule in r.inputs["rules"])]
    ctx.client("s3").put_bucket_encryption(Bucket=r.inputs["bucket"],
                                           ServerSideEncryptionConfiguration={"Rules": rules})
    return r.inputs["bucket"], {}


@handles("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", CONTROL)
def bucket_public_access_block(ctx: Context, r: Declared) -> Created:
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    configuration = {flag[:1].upper() + flag[1:]: bool(r.inputs.get(flag)) for flag in flags}
    ctx.client("s3").put_public_access_block(Bucket=r.inputs["bucket"], PublicAccessBlockConfiguration=configuration)
    return r.inputs["bucket"], {}


@handles("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", CONTROL)
def bucket_lifecycle(ctx: Context, r: Declared) -> Created:
    rules = [{("ID" if key == "Id" else key): value for key, value in rule.items()}
             for rule in pascal(r.inputs["rules"])]
    ctx.client("s3").put_bucket_lifecycle_configuration(Bucket=r.inputs["bucket"],
                                                        LifecycleConfiguration={"Rules": rules})
    return r.inputs["bucket"], {}


@handles("aws:s3/bucketPolicy:BucketPolicy", CONTROL)
def bucket_policy(ctx: Context, r: Declared) -> Created:
    policy_document(r.inputs["policy"], "the bucket policy")
    ctx.client("s3").put_bucket_policy(Bucket=r.inputs["bucket"], Policy=r.inputs["policy"])
    return r.inputs["bucket"], {}


@handles("aws:secretsmanager/secret:Secret", DATA_PLANE)
def secret(ctx: Context, r: Declared) -> Created:
    window = r.inputs.get("recoveryWindowInDays")
    if window is not None and whole(window) != 0:
        _between("recoveryWindowInDays", whole(window), 7, 30)
    found = ctx.client("secretsmanager").create_secret(Name=r.name, Description=r.inputs.get("description", ""))
    return found["ARN"], {"arn": found["ARN"]}


@handles("aws:secretsmanager/secretVersion:SecretVersion", DATA_PLANE, stable=False)
def secret_version(ctx: Context, r: Declared) -> Created:
    found = ctx.client("secretsmanager").put_secret_value(SecretId=r.inputs["secretId"],
                                                          SecretString=r.inputs["secretString"])
    return f"{found['ARN']}|{found['VersionId']}", {"arn": found["ARN"], "versionId": found["VersionId"]}
