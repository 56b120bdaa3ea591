"""The local deployer applies the real program to the emulators and refuses what AWS or pulumi-aws would refuse.

Both stack files (and a 20-character stack name) must deploy with zero rejections: this is the proof mocks that echo
inputs cannot give (both stacks once passed every mock test and failed at `pulumi preview` on ALB and target group
names). Each fault test changes one thing in the real program and checks the deploy fails there, naming the URN.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from app import contract
from bench.localaws import naming, program
from bench.localaws.deployer import DeployError, Deployment, Endpoints, deploy, parse_overrides
from bench.localaws.resources.registry import DATA_PLANE
from stackconfig import files, output_names
from stackconfig.schema import read_stack_file

STACKS = [files.stack_of(path) for path in files.stack_files()]
LONG_STACK = "flashsale-staging-01"  # 20 characters, the longest stack name the program promises to fit


def transformed(typ: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[], None]:
    """The real program, with one resource type's inputs changed by `change` (a stack transformation)."""

    def run() -> None:
        def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
            if args.type_ != typ:
                return None
            return pulumi.ResourceTransformationResult(change(dict(args.props)), args.opts)

        pulumi.runtime.register_stack_transformation(transform)
        program.run_main()

    return run


def only_rejection(deployment: Deployment, typ: str) -> str:
    assert not deployment.ok
    assert [r.urn.split("::")[-2].split("$")[-1] for r in deployment.rejections] == [typ] * len(deployment.rejections)
    return str(deployment.rejections[0])


@pytest.mark.parametrize("stack", STACKS)
def test_each_stack_file_deploys_with_zero_rejections(stack: str, endpoints: Endpoints) -> None:
    deployment = deploy(stack, endpoints)
    assert deployment.ok, deployment.summary()
    counts = deployment.counts()
    assert counts["aws:ecs/service:Service"] == 3 and counts["aws:lb/loadBalancer:LoadBalancer"] == 2
    assert set(deployment.outputs) >= {output_names.ASYNC_URL, output_names.QUEUE_URL, output_names.WORKER_SERVICE_NAME}
    # The outputs are the emulators' own values: the queue exists under that URL.
    sqs = endpoints.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=deployment.outputs[output_names.QUEUE_URL], AttributeNames=["VisibilityTimeout", "RedrivePolicy"]
    )["Attributes"]
    assert attributes["VisibilityTimeout"] == str(contract.ORDER_QUEUE.visibility_timeout_seconds)
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == contract.ORDER_QUEUE.max_receive_count


def test_a_twenty_character_stack_name_deploys(endpoints: Endpoints) -> None:
    config = read_stack_file(files.stack_file("flashsale"))
    deployment = deploy(LONG_STACK, endpoints, config=config)
    assert deployment.ok, deployment.summary()
    names = [r.outputs["name"] for r in deployment.of_type("aws:lb/loadBalancer:LoadBalancer")]
    assert names and all(len(name) <= 32 for name in names)
    assert deployment.outputs[output_names.ALARM_PREFIX] == f"flashsale-{LONG_STACK}"


def test_a_webhook_deploys_into_a_secret_the_notifier_reads(endpoints: Endpoints) -> None:
    url = "https://hooks.example.com/services/T0/B0/XYZ"
    deployment = deploy("normal", endpoints, overrides={"alertWebhookUrl": url})
    assert deployment.ok, deployment.summary()
    (secret,) = deployment.of_type("aws:secretsmanager/secret:Secret")
    arn = secret.outputs["arn"]
    assert endpoints.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"] == url
    (relay,) = deployment.relays
    assert relay.environment[contract.ENV_ALERT_WEBHOOK_SECRET_ARN] == arn
    assert url not in json.dumps(dict(relay.environment)), "the URL is in the function's configuration"


def test_autonames_follow_pulumi_aws() -> None:
    prop, name = naming.physical_name("aws:lb/targetGroup:TargetGroup", "sync-web-tg", None)
    assert prop == "name" and name is not None and len(name) == len("sync-web-tg-") + 7
    assert name.startswith("sync-web-tg-") and all(c in "0123456789abcdef" for c in name[-7:])
    assert naming.physical_name("aws:ecs/taskDefinition:TaskDefinition", "t", "given-family") == (
        "family",
        "given-family",
    )
    assert naming.physical_name("aws:kms/key:Key", "key", None) == (None, None)  # no name input at all


def test_rejects_a_33_character_alb_name(endpoints: Endpoints) -> None:
    deployment = deploy(
        "normal",
        endpoints,
        run_program=transformed("aws:lb/loadBalancer:LoadBalancer", lambda props: props | {"name": "x" * 33}),
    )
    message = only_rejection(deployment, "aws:lb/loadBalancer:LoadBalancer")
    assert "::sync-web-alb: " in message or "::receiver-web-alb: " in message
    assert f'"name" cannot be longer than 32 characters: "{"x" * 33}"' in message
    # What needs the load balancer is not created, as the engine skips it.
    assert any(urn.endswith("::sync-web-http") for urn in deployment.skipped)


def test_rejects_an_autoname_that_cannot_fit(endpoints: Endpoints) -> None:
    def program_with_a_long_target_group() -> None:
        program.run_main()
        aws.lb.TargetGroup(
            "orders-web-target-group-x", port=8080, protocol="HTTP", target_type="ip", vpc_id="vpc-unused"
        )

    deployment = deploy("normal", endpoints, run_program=program_with_a_long_target_group)
    message = only_rejection(deployment, "aws:lb/targetGroup:TargetGroup")
    assert message.endswith("name 'orders-web-target-group-x-' plus 7 random chars is longer than maximum length 32")
    assert "::orders-web-target-group-x: " in message


def test_rejects_a_malformed_iam_policy(endpoints: Endpoints) -> None:
    def malformed(props: dict[str, Any]) -> dict[str, Any]:
        return props | {
            "policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Permit", "Action": "sqs:SendMessage", "Resource": "*"}],
                }
            )
        }

    deployment = deploy("normal", endpoints, run_program=transformed("aws:iam/rolePolicy:RolePolicy", malformed))
    message = only_rejection(deployment, "aws:iam/rolePolicy:RolePolicy")
    assert "PutRolePolicy: MalformedPolicyDocument" in message  # moto's IAM, validating as AWS does


def test_rejects_a_fargate_task_with_an_invalid_cpu_memory_pair(endpoints: Endpoints) -> None:
    deployment = deploy(
        "normal",
        endpoints,
        run_program=transformed("aws:ecs/taskDefinition:TaskDefinition", lambda props: props | {"memory": "4096"}),
    )
    message = only_rejection(deployment, "aws:ecs/taskDefinition:TaskDefinition")
    assert "No Fargate configuration exists for given values: 256 CPU, 4096 memory" in message
    # The sync and worker task definitions are refused; the receiver's names the worker service (whose running tasks
    # its order-status estimate reads), so it is skipped with that service, and so is every service.
    assert len(deployment.rejections) == 2
    receiver_task = "aws:ecs/taskDefinition:TaskDefinition::receiver-svc-task"
    assert [urn for urn in deployment.skipped if urn.endswith(receiver_task)], deployment.skipped
    assert sum(urn.split("::")[-2].endswith("aws:ecs/service:Service") for urn in deployment.skipped) == 3


def test_a_config_error_is_the_programs_own_message(endpoints: Endpoints) -> None:
    with pytest.raises(DeployError, match="Pulumi.normal.yaml: workerCount must be 1..2000, got 5000"):
        deploy("normal", endpoints, overrides={"workerCount": 5000})
    with pytest.raises(DeployError, match="no stack file Pulumi.nope.yaml"):
        deploy("nope", endpoints)


def test_overrides_take_json_values_or_strings() -> None:
    assert parse_overrides(["workerCount=200", "alarmProfile=flashsale", 'alertEmails=["a@b.c"]']) == {
        "workerCount": 200,
        "alarmProfile": "flashsale",
        "alertEmails": ["a@b.c"],
    }
    with pytest.raises(DeployError, match="KEY=VALUE"):
        parse_overrides(["workerCount"])


def test_the_data_plane_can_be_applied_again_with_the_same_names(
    deployment: Deployment, aws_env: dict[str, str], endpoints: Endpoints
) -> None:
    sqs = endpoints.client("sqs")
    assert sqs.list_queues().get("QueueUrls", []) == []  # `aws_env` reset ministack
    deployment.reapply(DATA_PLANE)
    assert deployment.outputs[output_names.QUEUE_URL] in sqs.list_queues()["QueueUrls"]


def test_one_region_has_no_explicit_provider_and_everything_in_the_stacks_region(deployment: Deployment) -> None:
    assert not deployment.regional and not deployment.providers
    assert {r.region for r in deployment.resources} == {""}
    assert not [r for r in deployment.resources if r.typ.startswith("aws:route53/")]
    assert not [t for t in deployment.of_type("aws:dynamodb/table:Table") if "streamArn" in t.outputs]
