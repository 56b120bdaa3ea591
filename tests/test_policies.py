"""The policy pack (policypack/) against the program under mocks: both stack files pass every mandatory policy, the
shipped stacks draw exactly the two advisories they deserve (no certificate, no alert subscriber), and every policy
fires on a deliberately broken resource. The policies' validate functions are plain Python: each resource is handed
to them as the engine would (`ResourceValidationArgs` / `StackValidationArgs`), no engine needed."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
)

from app import contract
from bench.localaws import naming
from policypack.flashsale_policies import PACK_NAME, POLICIES, policies
from policypack.flashsale_policies.names import NAME_LIMITS
from stackconfig import schema
from stackconfig.files import ROOT, stack_of
from stackconfig.schema import read_stack_file
from tests.infra_mocks import STACK_FILES, Declared, StackRun, is_secret, run_program
from tests.test_infra import CERTIFICATE

PACK = ROOT / "policypack"
BY_NAME = {policy.name: policy for policy in POLICIES}
ADVISORIES_OF_THE_SHIPPED_STACKS = {"alb-https", "alerts-reach-someone"}
Violations = dict[str, list[tuple[str, str | None]]]  # policy -> (message, urn)


def plain(value: Any) -> Any:
    """A recorded input as the engine hands it to a policy: secrets unwrapped."""
    if is_secret(value):
        return plain(value["value"])
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def props_of(resource: Declared) -> dict[str, Any]:
    """Its outputs, with its id (bridged resources report it; others reference an IAM role or a bucket by it)."""
    return {**plain(resource.state), "id": resource.id}


def policy_resources(run: StackRun) -> list[PolicyResource]:
    options = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    return [PolicyResource(r.typ, props_of(r), r.urn, r.name, options, None, None, [], {}) for r in run.resources]


def check(run: StackRun, region: str, only: Iterable[str] = tuple(BY_NAME)) -> Violations:
    """Every violation the named policies report for the run, as `pulumi preview --policy-pack` would list them."""
    found: Violations = {name: [] for name in only}
    provider = PolicyProviderResource("pulumi:providers:aws", {"region": region}, "urn:provider", "default")
    resources = policy_resources(run)
    for name in only:
        policy = BY_NAME[name]

        def report(message: str, urn: str | None = None, name: str = name) -> None:
            found[name].append((message, urn))

        if isinstance(policy, ResourceValidationPolicy):
            for r in resources:

                def report_at(message: str, urn: str | None = None, at: str | None = r.urn) -> None:
                    report(message, at)

                policy.validate(
                    ResourceValidationArgs(r.resource_type, r.props, r.urn, r.name, r.opts, provider), report_at
                )
        else:
            policy.validate(StackValidationArgs(resources), report)
    return found


@pytest.fixture(scope="module", params=STACK_FILES, ids=stack_of)
def shipped(request: pytest.FixtureRequest) -> tuple[StackRun, Violations]:
    path: Path = request.param
    config = read_stack_file(path)
    run = run_program(stack_of(path), config)
    return run, check(run, config[schema.REGION_KEY])


def test_every_mandatory_policy_passes_both_stack_files(shipped: tuple[StackRun, Violations]) -> None:
    run, found = shipped
    mandatory = {
        name: v for name, v in found.items() if BY_NAME[name].enforcement_level is EnforcementLevel.MANDATORY and v
    }
    assert mandatory == {}, f"{run.stack}: {mandatory}"


def test_the_shipped_stacks_say_they_have_no_certificate_and_no_alert_subscriber(
    shipped: tuple[StackRun, Violations],
) -> None:
    run, found = shipped
    advisories = {name for name, v in found.items() if v}
    assert advisories == ADVISORIES_OF_THE_SHIPPED_STACKS, run.stack
    assert all(BY_NAME[name].enforcement_level is EnforcementLevel.ADVISORY for name in advisories)
    assert "certificateArn" in found["alb-https"][0][0] and "alertEmails" in found["alerts-reach-someone"][0][0]


def test_a_certificate_and_a_subscriber_silence_the_advisories() -> None:
    config = read_stack_file(ROOT / "Pulumi.normal.yaml") | {
        "flashsale:certificateArn": CERTIFICATE,
        "flashsale:alertWebhookUrl": "https://hooks.example.com/services/T0/B0/XYZ",
    }
    run = run_program("normal", config, secret_keys=["flashsale:alertWebhookUrl"])
    found = check(run, "us-west-2")
    assert {name for name, v in found.items() if v} == set(), found


# --- Each policy fires -------------------------------------------------------------------------------------------

Change = Callable[[dict[str, Any]], None]


def edit(typ: str, change: Change, pick: str = "") -> Callable[[StackRun], StackRun]:
    """The run with one resource of `typ` (whose name contains `pick`) changed."""

    def broken(run: StackRun) -> StackRun:
        resources = [replace(r, state=copy.deepcopy(r.state)) for r in run.resources]
        target = next(r for r in resources if r.typ == typ and pick in r.name)
        change(target.state)
        return StackRun(run.stack, resources, run.outputs)

    return broken


def without(typ: str) -> Callable[[StackRun], StackRun]:
    def broken(run: StackRun) -> StackRun:
        return StackRun(run.stack, [r for r in run.resources if r.typ != typ], run.outputs)

    return broken


def in_json(key: str, change: Callable[[Any], Any]) -> Change:
    def apply(state: dict[str, Any]) -> None:
        state[key] = json.dumps(change(json.loads(state[key])))

    return apply


def setting(key: str, value: Any) -> Change:
    def apply(state: dict[str, Any]) -> None:
        state[key] = value

    return apply


def first_statement(change: Callable[[dict[str, Any]], None]) -> Callable[[Any], Any]:
    def apply(document: dict[str, Any]) -> dict[str, Any]:
        change(document["Statement"][0])
        return document

    return apply


def each_container(change: Callable[[dict[str, Any]], None]) -> Callable[[Any], Any]:
    def apply(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for container in containers:
            change(container)
        return containers

    return apply


def no_protection(document: dict[str, Any]) -> dict[str, Any]:
    document["Statement"] = [s for s in document["Statement"] if "ecs:UpdateTaskProtection" not in s["Action"]]
    return document


# policy -> (how to break the normal stack, a phrase its message must hold)
BREAKAGES: dict[str, tuple[Callable[[StackRun], StackRun], str]] = {
    "iam-least-privilege": (
        edit(
            "aws:iam/rolePolicy:RolePolicy",
            in_json("policy", first_statement(lambda s: s.update(Action=["sqs:*"], Resource="*"))),
        ),
        "list the exact actions",
    ),
    "iam-trust-own-account": (
        edit("aws:iam/role:Role", in_json("assumeRolePolicy", first_statement(lambda s: s.pop("Condition")))),
        "confused deputy",
    ),
    "iam-managed-policies-allowed": (
        edit(
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
            setting("policyArn", "arn:aws:iam::aws:policy/AdministratorAccess"),
        ),
        "inline policy",
    ),
    "encrypted-at-rest": (
        edit("aws:sqs/queue:Queue", setting("sqsManagedSseEnabled", False)),
        "sqs_managed_sse_enabled",
    ),
    "queue-dead-letter": (
        edit("aws:sqs/queue:Queue", lambda s: s.pop("redriveAllowPolicy"), "notifier-dlq"),
        "redrive_policy",
    ),
    "lambda-keeps-failures": (
        edit("aws:lambda/function:Function", lambda s: s.pop("deadLetterConfig")),
        "dead_letter_config",
    ),
    "lambda-no-plain-secrets": (
        edit(
            "aws:lambda/function:Function",
            lambda s: s["environment"]["variables"].update(
                {contract.ENV_ALERT_WEBHOOK_URL: "https://hooks.example.com/services/T0/B0/XYZ"}
            ),
        ),
        "Secrets Manager",
    ),
    "alb-logged-and-strict": (edit("aws:lb/loadBalancer:LoadBalancer", lambda s: s.pop("accessLogs")), "access logs"),
    "alb-https": (lambda run: run, "certificateArn"),  # the shipped stacks themselves
    "no-public-services": (
        edit(
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            lambda s: s.update(cidrIpv4="0.0.0.0/0", referencedSecurityGroupId=None),
            "tasks-from-alb",
        ),
        "open to the internet",
    ),
    "security-rules-described": (
        edit("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule", lambda s: s.pop("description")),
        "no description",
    ),
    "ecr-immutable-scanned": (
        edit("aws:ecr/repository:Repository", setting("imageTagMutability", "MUTABLE")),
        "IMMUTABLE",
    ),
    "ecs-containers-hardened": (
        edit(
            "aws:ecs/taskDefinition:TaskDefinition",
            in_json("containerDefinitions", each_container(lambda c: c.pop("stopTimeout"))),
        ),
        "stopTimeout",
    ),
    "ecs-services-bounded": (edit("aws:appautoscaling/target:Target", setting("maxCapacity", 500)), "maxTasks"),
    "alarms-have-actions": (
        edit("aws:cloudwatch/metricAlarm:MetricAlarm", setting("alarmActions", [])),
        "no alarm action",
    ),
    "allowed-regions": (edit("aws:sqs/queue:Queue", setting("region", "eu-north-1")), "aws:region"),
    "aws-name-limits": (
        edit("aws:lb/targetGroup:TargetGroup", setting("name", "receiver-web-tg-with-a-longer-name")),
        "AWS allows 32",
    ),
    "s3-buckets-protected": (without(policies.BUCKET_LIFECYCLE), "expires them"),
    "scale-in-protection-granted": (
        edit("aws:iam/rolePolicy:RolePolicy", in_json("policy", no_protection), "worker"),
        "UpdateTaskProtection",
    ),
    "alerts-reach-someone": (lambda run: run, "reach no one"),  # the shipped stacks themselves
}


def test_every_policy_has_a_breakage_that_shows_it_firing() -> None:
    assert set(BREAKAGES) == set(BY_NAME)


@pytest.fixture(scope="module")
def normal() -> StackRun:
    return run_program("normal", read_stack_file(ROOT / "Pulumi.normal.yaml"))


@pytest.mark.parametrize("name", sorted(BREAKAGES))
def test_each_policy_fires_on_a_broken_resource(normal: StackRun, name: str) -> None:
    breakage, says = BREAKAGES[name]
    found = check(breakage(normal), "us-west-2", only=[name])[name]
    assert found, f"{name} did not fire"
    assert any(says in message for message, _ in found), found
    assert all(urn is None or urn.startswith("urn:pulumi:normal::") for _, urn in found), found


def test_config_changes_what_a_policy_allows(normal: StackRun) -> None:
    policy = BY_NAME["ecs-services-bounded"]
    assert isinstance(policy, ResourceValidationPolicy)
    resources = policy_resources(normal)
    (target,) = [r for r in resources if r.resource_type == policies.SCALABLE_TARGET]
    reported: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append(message)

    args = ResourceValidationArgs(
        target.resource_type, target.props, target.urn, target.name, target.opts, None, config={"maxTasks": 5}
    )
    policy.validate(args, report)
    assert reported and "above maxTasks 5" in reported[0]


# --- The pack as the CLI runs it -----------------------------------------------------------------------------------


def test_the_pack_serves_its_policies_as_the_cli_starts_it() -> None:
    """The CLI runs the pack's folder with Python and reads the port of its analyzer from the first line."""
    process = subprocess.Popen(
        [sys.executable, str(PACK / "__main__.py")], cwd=PACK, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        failed = process.stderr.read() if process.poll() is not None and process.stderr is not None else ""
        assert re.fullmatch(r"\d+\n", line), line + failed
    finally:
        process.kill()
        process.wait(timeout=30)
    project = yaml.safe_load((PACK / "PulumiPolicy.yaml").read_text())
    assert project["runtime"]["name"] == "python" and project["description"]
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", PACK_NAME)


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.\[\]-]+)==(\S+)", line.split("#")[0].strip())
        if match:
            found[match[1].split("[")[0].lower()] = match[2]
    return found


def test_the_pack_pins_what_the_project_pins() -> None:
    pack, project = pins(PACK / "requirements.txt"), pins(ROOT / "requirements.txt")
    assert pack and all(project.get(name) == version for name, version in pack.items()), (pack, project)


def test_the_pack_knows_the_names_the_local_deployer_enforces() -> None:
    """The pack stands alone (it is published without the project), so it carries AWS's name rules itself."""
    assert {typ: (r.prop, r.max_length, r.pattern, r.forbidden) for typ, r in naming.RULES.items()} == {
        typ: (r.prop, r.max_length, r.pattern, r.forbidden) for typ, r in NAME_LIMITS.items()
    }


def test_the_packs_defaults_fit_the_program() -> None:
    assert policies.ALERT_RELAYS.schema["default"] == [contract.ENV_ALERT_WEBHOOK_SECRET_ARN]
    assert contract.AWS_REGION_DEFAULT in policies.ALLOWED_REGIONS.schema["default"]
    least, most = policies.MIN_STOP_TIMEOUT.schema["default"], policies.FARGATE_STOP_TIMEOUT[1]
    assert least <= contract.STOP_TIMEOUT_SECONDS <= most
    ceiling = policies.MAX_TASKS.schema["default"]
    for key in ("maxWorkerTasks", "syncTaskCount", "receiverTasks"):
        bounds = schema.bounds(key)
        assert bounds is not None and bounds[1] <= ceiling, key
