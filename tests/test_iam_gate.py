"""IAM enforced on the local system (bench.localaws.iam_gate): the evaluator against AWS's documented policy
examples, the request-to-action mapping on requests the SDK itself serializes, and end to end a permission removed
from a task role's policy as deployed, refused with the role, the action and the resource."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.exceptions import ClientError

from app import aws
from bench.localaws import tls
from bench.localaws.emulators import DUMMY_CREDENTIALS, Emulator
from bench.localaws.iam_gate import (
    SNAPSHOT_SUFFIX,
    Call,
    Gate,
    Ledger,
    Policies,
    Request,
    Unmapped,
    allowed,
    calls_of,
    grants,
    logical,
    upstream_account,
    used,
)
from stackconfig import output_names
from tests.conftest import IamRefusals
from tests.helpers import System, post, system, wait_for  # noqa: F401

ACCOUNT = "111122223333"
REGION = "us-west-2"
TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/orders"
QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/orders-queue"
TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:orders-topic"
DUMMY_KEYS = {
    "aws_access_key_id": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
    "aws_secret_access_key": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
}


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


# --- the evaluator: AWS's documented rules and examples ---------------------------------------------------------------


def test_nothing_is_allowed_that_no_statement_allows() -> None:
    assert not allowed([], Call("dynamodb:GetItem", TABLE))
    assert not allowed(
        [policy({"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE})], Call("dynamodb:GetItem", TABLE)
    )


def test_an_explicit_deny_wins_over_any_allow() -> None:
    documents = [
        policy({"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}),
        policy({"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": TABLE}),
    ]
    assert allowed(documents, Call("dynamodb:GetItem", TABLE))
    assert not allowed(documents, Call("dynamodb:DeleteItem", TABLE))


def test_actions_match_wildcards_and_ignore_case_resources_do_not() -> None:
    # "Action names are case-insensitive" / resource ARNs are case-sensitive (IAM JSON policy elements reference).
    document = [
        policy(
            {
                "Effect": "Allow",
                "Action": ["DynamoDB:get*", "sqs:?eceiveMessage"],
                "Resource": [TABLE, "arn:aws:sqs:*:*:orders-*"],
            }
        )
    ]
    assert allowed(document, Call("dynamodb:GetItem", TABLE))
    assert allowed(document, Call("dynamodb:BatchGetItem", TABLE)) is False
    assert allowed(document, Call("sqs:ReceiveMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-queue"))
    assert not allowed(document, Call("dynamodb:GetItem", TABLE.upper()))


def test_patterns_are_literal_but_for_their_wildcards() -> None:
    fifo = f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders.fifo"
    document = [policy({"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": fifo})]
    assert allowed(document, Call("sqs:SendMessage", fifo))
    assert not allowed(document, Call("sqs:SendMessage", fifo.replace(".fifo", "Xfifo")))


def test_not_action_and_not_resource_as_the_iam_user_guide_uses_them() -> None:
    # "Allow everything except IAM" and "deny everything outside one table" (NotAction / NotResource examples).
    document = [
        policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
        policy({"Effect": "Deny", "Action": "dynamodb:*", "NotResource": TABLE}),
    ]
    assert allowed(document, Call("sns:Publish", TOPIC))
    assert not allowed(document, Call("iam:CreateUser", "*"))
    assert allowed(document, Call("dynamodb:PutItem", TABLE))
    assert not allowed(document, Call("dynamodb:PutItem", TABLE + "-other"))


def test_a_condition_is_not_guessed_an_allow_with_one_does_not_apply() -> None:
    conditional = {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    assert not allowed(
        [policy({"Effect": "Allow", "Action": "sns:Publish", "Resource": TOPIC, "Condition": conditional})],
        Call("sns:Publish", TOPIC),
    )


def test_grants_a_run_did_not_use_are_found_and_names_lose_their_deploy_suffix() -> None:
    document = [
        policy(
            {
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:ChangeMessageVisibility"],
                "Resource": "arn:aws:sqs:*:*:q-1f68d4b",
            }
        )
    ]
    calls = [Call("sqs:ReceiveMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:q-1f68d4b")]
    idle = [g for g in grants(document) if not used(g, calls)]
    assert idle == [Call("sqs:ChangeMessageVisibility", "arn:aws:sqs:*:*:q-1f68d4b")]
    assert logical("arn:aws:dynamodb:r:1:table/orders-table-1f68d4b") == "arn:aws:dynamodb:r:1:table/orders-table"


# --- the mapping, on requests botocore serializes ---------------------------------------------------------------------


class _Sent(Exception):
    pass


def sent(service: str, operation: str, **params: Any) -> Request:
    """The request boto3 sends for one call (caught before it leaves), as the gate reads it."""
    client = boto3.session.Session().client(
        service,
        region_name=REGION,
        endpoint_url="https://localhost:1",
        aws_access_key_id="ASIAEXAMPLEKEY000001",
        aws_secret_access_key="secret",
        aws_session_token="token",
    )
    seen: list[AWSPreparedRequest] = []

    def catch(request: AWSPreparedRequest, **_: Any) -> None:
        seen.append(request)
        raise _Sent

    client.meta.events.register("before-send", catch)
    with pytest.raises(_Sent):
        getattr(client, operation)(**params)
    (request,) = seen
    body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
    headers = {
        name.lower(): value.decode() if isinstance(value, bytes) else value for name, value in request.headers.items()
    }
    return Request(request.method, request.url.split("localhost:1", 1)[1] or "/", headers, body)


def test_partiql_is_authorized_by_statement_kind_on_the_table_or_index_it_names() -> None:
    def actions(statement: str) -> list[Call]:
        return calls_of(sent("dynamodb", "execute_statement", Statement=statement), ACCOUNT)

    assert actions("INSERT INTO \"orders\" VALUE {'id': ?}") == [Call("dynamodb:PartiQLInsert", TABLE)]
    assert actions("UPDATE \"orders\" SET status = 'paid' WHERE id = '1'") == [Call("dynamodb:PartiQLUpdate", TABLE)]
    assert actions('SELECT * FROM "orders"."by-status" WHERE status = \'pending\'') == [
        Call("dynamodb:PartiQLSelect", TABLE + "/index/by-status")
    ]
    assert actions("DELETE FROM \"orders\" WHERE id = '1'") == [Call("dynamodb:PartiQLDelete", TABLE)]
    batch = sent(
        "dynamodb",
        "batch_execute_statement",
        Statements=[
            {"Statement": "INSERT INTO \"orders\" VALUE {'id': '1'}"},
            {"Statement": "UPDATE \"orders\" SET a = 1 WHERE id = '2'"},
        ],
    )
    assert calls_of(batch, ACCOUNT) == [Call("dynamodb:PartiQLInsert", TABLE), Call("dynamodb:PartiQLUpdate", TABLE)]
    with pytest.raises(Unmapped):
        actions("EXISTS(SELECT * FROM orders)")


def test_batches_are_authorized_as_the_single_action_they_batch() -> None:
    publish = sent("sns", "publish_batch", TopicArn=TOPIC, PublishBatchRequestEntries=[{"Id": "1", "Message": "m"}])
    assert calls_of(publish, ACCOUNT) == [Call("sns:Publish", TOPIC)]
    delete = sent("sqs", "delete_message_batch", QueueUrl=QUEUE_URL, Entries=[{"Id": "1", "ReceiptHandle": "h"}])
    assert calls_of(delete, ACCOUNT) == [Call("sqs:DeleteMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:orders-queue")]
    get = sent("dynamodb", "batch_get_item", RequestItems={"orders": {"Keys": [{"id": {"S": "1"}}]}})
    assert calls_of(get, ACCOUNT) == [Call("dynamodb:BatchGetItem", TABLE)]


def test_ecs_and_logs_calls_name_the_arns_aws_authorizes() -> None:
    protect = sent("ecs", "update_task_protection", cluster="shop", tasks=["abc"], protectionEnabled=True)
    assert calls_of(protect, ACCOUNT) == [
        Call("ecs:UpdateTaskProtection", f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/shop/abc")
    ]
    describe = sent(
        "ecs", "describe_services", cluster=f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/shop", services=["workers"]
    )
    assert calls_of(describe, ACCOUNT) == [
        Call("ecs:DescribeServices", f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/shop/workers")
    ]
    put = sent(
        "logs", "put_log_events", logGroupName="g", logStreamName="s", logEvents=[{"timestamp": 1, "message": "m"}]
    )
    assert calls_of(put, ACCOUNT) == [
        Call("logs:PutLogEvents", f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:g:log-stream:s")
    ]


def test_a_call_the_gate_cannot_map_is_refused_not_let_through() -> None:
    with pytest.raises(Unmapped):
        calls_of(sent("lambda", "list_functions"), ACCOUNT)


# --- end to end: a task role loses a permission -----------------------------------------------------------------------


def test_a_permission_removed_from_a_task_role_is_refused_naming_role_action_and_resource(
    system: System,  # noqa: F811
    iam_refusals: IamRefusals,
) -> None:
    receiver = system.start("receiver")
    assert post(receiver, "/orders/async").status_code == 202  # as deployed: allowed
    role_arn = aws.client("ecs").describe_task_definition(taskDefinition=receiver_definition(system))["taskDefinition"][
        "taskRoleArn"
    ]
    role, iam = role_arn.rsplit("/", 1)[-1], aws.client("iam")
    (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    deployed = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    deployed = json.loads(deployed) if isinstance(deployed, str) else deployed
    without_publish = {**deployed, "Statement": [s for s in deployed["Statement"] if "sns:Publish" not in s["Action"]]}
    iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(without_publish))
    try:
        refused = wait_for(
            lambda: post(receiver, "/orders/async").status_code == 503, 15, "the receiver to be refused sns:Publish"
        )
        assert refused
        (denial,) = iam_refusals.expected()
        assert (denial.role_arn, denial.action, denial.resource) == (
            role_arn,
            "sns:Publish",
            system.outputs[output_names.TOPIC_ARN],
        )
        assert role in str(denial) and "sns:Publish" in str(denial)
    finally:
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(deployed))


def receiver_definition(system: System) -> str:
    (service,) = [s for s in system.services if s.spec.role == "receiver"]
    return service.spec.task_definition


# --- the gate in a front, as the SDK meets it -------------------------------------------------------------------------


def test_through_a_gated_front_the_sdk_meets_awss_refusals(
    ministack: Emulator, moto: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role allowed to publish to one topic: that publish goes through; another topic, a table read and an unknown
    key are refused, each with the error code boto3 reads from AWS (query and JSON protocols alike)."""
    control = boto3.session.Session().client("iam", endpoint_url=moto.endpoint_url, region_name=REGION, **DUMMY_KEYS)
    sns = boto3.session.Session().client("sns", endpoint_url=ministack.endpoint_url, region_name=REGION, **DUMMY_KEYS)
    allowed_topic = sns.create_topic(Name="gate-allowed")["TopicArn"]
    other_topic = sns.create_topic(Name="gate-other")["TopicArn"]
    role = control.create_role(RoleName="gate-test", AssumeRolePolicyDocument=json.dumps(policy()))["Role"]["Arn"]
    grant = policy({"Effect": "Allow", "Action": "sns:Publish", "Resource": allowed_topic})
    control.put_role_policy(RoleName="gate-test", PolicyName="publish", PolicyDocument=json.dumps(grant))
    ledger = Ledger(tmp_path / "ledger")
    ledger.record_key("ASIAGATETEST00000001", role)
    ca, account = tls.shared(), upstream_account(ministack.endpoint_url)
    gate = Gate(ledger, Policies(moto.endpoint_url), tmp_path / "ledger" / f"front{SNAPSHOT_SUFFIX}", account)
    front = ca.new_front(ministack.endpoint_url, gate)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(ca.bundle))
    try:

        def client(service: str, key: str = "ASIAGATETEST00000001") -> Any:
            return boto3.session.Session().client(
                service,
                endpoint_url=front.url,
                region_name=REGION,
                aws_access_key_id=key,
                aws_secret_access_key="s",
                aws_session_token="t",
            )

        assert client("sns").publish(TopicArn=allowed_topic, Message="m")["MessageId"]
        with pytest.raises(ClientError) as refused:
            client("sns").publish(TopicArn=other_topic, Message="m")
        assert refused.value.response["Error"]["Code"] == "AuthorizationError"
        assert (
            "sns:Publish" in str(refused.value)
            and other_topic in str(refused.value)
            and "gate-test" in str(refused.value)
        )
        with pytest.raises(ClientError) as refused:
            client("dynamodb").get_item(TableName="orders", Key={"id": {"S": "1"}})
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
        with pytest.raises(ClientError) as refused:
            client("sqs", key="ASIAUNKNOWNKEY000001").list_queues()
        assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
        refusals = ledger.usage_since().denials
        assert [(d.action, d.resource) for d in refusals if d.role_arn == role] == [
            ("dynamodb:GetItem", f"arn:aws:dynamodb:{REGION}:{account}:table/orders"),
            ("sns:Publish", other_topic),
        ]
    finally:
        front.close()
        control.delete_role_policy(RoleName="gate-test", PolicyName="publish")
        control.delete_role(RoleName="gate-test")
