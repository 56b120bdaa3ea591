"""`python -m ops.bootstrap`: create on the local emulator, idempotently, what the Pulumi program creates on AWS.

From the shared contract: the order topic; the order queue and its DLQ (the report's settings, maxReceiveCount 3);
the topic->queue subscription with raw delivery; the queue policy admitting only that topic; the orders table
(on-demand, TTL on the idempotency records' expiry attribute); the alerts topic (people), the alarm topic (raw alarm JSON) with a local `alarm-events` queue subscribed
to it for the local notifier; and the CloudWatch alarms of the chosen profile. It writes the same output keys
`pulumi stack output --json` gives, so the ops scripts read a local file exactly as they read a real stack.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app import aws, contract
from ops import alarms

DEFAULT_PREFIX = "flashsale-local"


@dataclass(frozen=True)
class BootstrapArgs:
    prefix: str = DEFAULT_PREFIX
    profile: str = contract.DEFAULT_ALARM_PROFILE


# Services that the local runtime serves from moto's server rather than ministack (which lacks Application Auto
# Scaling); boto3 sends a service to AWS_ENDPOINT_URL_<SERVICE> when that variable is set.
CONTROL_PLANE_SERVICES = ("ECS", "EC2", "APPLICATION_AUTO_SCALING")


def control_plane_env(endpoint_url: str) -> dict[str, str]:
    return {f"AWS_ENDPOINT_URL_{service}": endpoint_url for service in CONTROL_PLANE_SERVICES}


def cluster_name(prefix: str) -> str:
    return f"{prefix}-cluster"


def worker_service_name(prefix: str) -> str:
    return f"{prefix}-worker"


def local_dimensions(prefix: str, queue_name: str, dlq_name: str) -> dict[str, list[dict[str, str]]]:
    """CloudWatch dimensions per alarm subject (the ALB's name is made up locally: no ALB runs here)."""
    return {
        "queue": [{"Name": "QueueName", "Value": queue_name}],
        "dlq": [{"Name": "QueueName", "Value": dlq_name}],
        "worker_service": [{"Name": "ClusterName", "Value": cluster_name(prefix)},
                           {"Name": "ServiceName", "Value": worker_service_name(prefix)}],
        "receiver_alb": [{"Name": "LoadBalancer", "Value": f"app/{prefix}-receiver/local"}],
    }


def _queue(sqs: Any, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    """Create the queue or bring an existing one to these attributes; returns (url, arn)."""
    try:
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except ClientError as e:
        if "QueueAlreadyExists" not in e.response.get("Error", {}).get("Code", ""):
            raise
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _subscribe_raw(sns: Any, topic_arn: str, queue_arn: str) -> None:
    existing = [s for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn)
                for s in page["Subscriptions"] if s["Endpoint"] == queue_arn]
    if not existing:
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                      Attributes={"RawMessageDelivery": "true"}, ReturnSubscriptionArn=True)


def _table(dynamodb: Any, name: str) -> None:
    try:
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": contract.ORDER_KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": contract.ORDER_KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):  # enabling it twice is an error on AWS
        dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": contract.IDEMPOTENCY_TTL_ATTRIBUTE})


def bootstrap(args: BootstrapArgs) -> dict[str, Any]:
    """Create everything (idempotent) and return the stack outputs."""
    sns, sqs, dynamodb, cloudwatch = (aws.client(s) for s in ("sns", "sqs", "dynamodb", "cloudwatch"))
    p = args.prefix
    topic_arn = sns.create_topic(Name=f"{p}-order-events")["TopicArn"]
    dlq_url, dlq_arn = _queue(sqs, f"{p}-order-dlq", contract.ORDER_QUEUE.dlq_attributes())
    queue_url, queue_arn = _queue(sqs, f"{p}-order-queue", contract.ORDER_QUEUE.queue_attributes(dlq_arn))
    sqs.set_queue_attributes(QueueUrl=queue_url,
                             Attributes={"Policy": json.dumps(contract.queue_policy(queue_arn, topic_arn))})
    _subscribe_raw(sns, topic_arn, queue_arn)
    table = f"{p}-orders"
    _table(dynamodb, table)

    alerts_arn = sns.create_topic(Name=f"{p}-alerts")["TopicArn"]
    alarm_topic_arn = sns.create_topic(Name=f"{p}-alarms")["TopicArn"]
    events_url, events_arn = _queue(sqs, f"{p}-alarm-events", {})
    sqs.set_queue_attributes(QueueUrl=events_url,
                             Attributes={"Policy": json.dumps(contract.queue_policy(events_arn, alarm_topic_arn))})
    _subscribe_raw(sns, alarm_topic_arn, events_arn)
    alarms.create_alarms(cloudwatch, prefix=p,
                         dimensions=local_dimensions(p, f"{p}-order-queue", f"{p}-order-dlq"),
                         thresholds=contract.ALARM_PROFILES[args.profile], action_arns=[alarm_topic_arn])
    return {
        contract.OUTPUT_TOPIC_ARN: topic_arn,
        contract.OUTPUT_QUEUE_URL: queue_url,
        contract.OUTPUT_DLQ_URL: dlq_url,
        contract.OUTPUT_ORDERS_TABLE: table,
        contract.OUTPUT_ALERTS_TOPIC_ARN: alerts_arn,
        contract.OUTPUT_ALARM_TOPIC_ARN: alarm_topic_arn,
        contract.OUTPUT_ALARM_PREFIX: p,
        contract.OUTPUT_ALARM_EVENTS_QUEUE_URL: events_url,
    }


def mute_false_dlq_alarm(prefix: str) -> str:
    """LOCAL ONLY: ministack evaluates an alarm over every series of its metric name, whatever the dimensions, so the
    DLQ alarm would see the order queue's depth and notify falsely; its actions are disabled here (on AWS it watches
    only the DLQ). Returns the alarm's name."""
    name = contract.alarm_name(prefix, "dlq_not_empty")
    aws.client("cloudwatch").disable_alarm_actions(AlarmNames=[name])
    return name


def bootstrap_worker_service(prefix: str = DEFAULT_PREFIX) -> dict[str, Any]:
    """The worker service's control plane: an ECS cluster, a Fargate worker service at `workerTasks` tasks and its
    scalable target (`minWorkerTasks`..`maxWorkerTasks`), as the Pulumi program creates them, for `ops.prescale`.

    Locally this is moto's server (a FARGATE service there needs a subnet and a security group): it records desired
    counts and scaling limits, while the local worker stays one process whatever the desired count.
    """
    ec2, ecs, scaling = aws.client("ec2"), aws.client("ecs"), aws.client("application-autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"{prefix}-tasks", Description="worker tasks", VpcId=vpc)["GroupId"]
    cluster, service = cluster_name(prefix), worker_service_name(prefix)
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family=service, requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
        cpu=str(contract.TASK_CPU_UNITS), memory=str(contract.TASK_MEMORY_MB),
        containerDefinitions=[{"name": "worker", "image": "flashsale-app:local", "essential": True,
                               "command": ["worker"]}])
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=service,
                       desiredCount=contract.CONFIG_DEFAULTS["workerTasks"], launchType="FARGATE",
                       networkConfiguration={"awsvpcConfiguration": {"subnets": [subnet], "securityGroups": [group]}})
    scaling.register_scalable_target(
        ServiceNamespace="ecs", ResourceId=f"service/{cluster}/{service}", ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=contract.CONFIG_DEFAULTS["minWorkerTasks"], MaxCapacity=contract.CONFIG_DEFAULTS["maxWorkerTasks"])
    return {contract.OUTPUT_CLUSTER_NAME: cluster, contract.OUTPUT_WORKER_SERVICE_NAME: service}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.bootstrap", description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help=f"resource name prefix (default {DEFAULT_PREFIX})")
    parser.add_argument("--profile", default=contract.DEFAULT_ALARM_PROFILE, choices=sorted(contract.ALARM_PROFILES),
                        help="alarm thresholds")
    parser.add_argument("--outputs", type=Path, help="write the stack outputs as JSON to this file")
    parser.add_argument("--json", action="store_true", help="print the outputs as JSON")
    args = parser.parse_args(argv)
    try:
        outputs = bootstrap(BootstrapArgs(prefix=args.prefix, profile=args.profile))
    except (BotoCoreError, ClientError) as e:
        print(f"error: bootstrap failed (is the emulator running and AWS_ENDPOINT_URL set?): {e}", file=sys.stderr)
        return 1
    if args.outputs:
        args.outputs.parent.mkdir(parents=True, exist_ok=True)
        args.outputs.write_text(json.dumps(outputs, indent=2) + "\n")
    if args.json:
        print(json.dumps(outputs, indent=2))
    else:
        for key, value in outputs.items():
            print(f"{key:>20}: {value}")
        if args.outputs:
            print(f"outputs written to {args.outputs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
