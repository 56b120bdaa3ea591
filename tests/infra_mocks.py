"""Run the Pulumi program in-process under mocks, with a stack file's real config, and record what it declares.

The mocks echo each resource's inputs and add only the computed fields the program reads (ARNs, names, URLs, the
awsx default-VPC and image outputs). A stack transformation records every resource's options, which mocks never
see (`ignore_changes`, `depends_on`). Each run starts from a fresh root stack, config and monitor, so nothing leaks
from one stack's run into the next.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi.runtime.settings as runtime_settings
import yaml
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.rpc import _special_secret_sig as SECRET_MARK
from pulumi.runtime.rpc import _special_sig_key as SECRET_SIG

from components.deployment import build

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "flashsale"
ACCOUNT = "123456789012"
REGION = "us-west-2"
STACK_FILES = sorted(ROOT.glob("Pulumi.*.yaml"))


def stack_of(path: Path) -> str:
    return path.name.removeprefix("Pulumi.").removesuffix(".yaml")


def stack_config(path: Path) -> dict[str, Any]:
    """A stack file's `config:` block, as written (secure values stay {"secure": ciphertext})."""
    return dict(yaml.safe_load(path.read_text())["config"])


def _computed(typ: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    physical = inputs.get("name") or f"{name}-1a2b3c"
    service, _, kind = typ.partition(":")[2].partition("/")
    arn = f"arn:aws:{service}:{REGION}:{ACCOUNT}:{kind.split(':')[0]}/{physical}"
    fields: dict[str, Any] = {"arn": arn, "name": physical}
    if typ == "awsx:ec2:DefaultVpc":
        fields |= {"vpcId": "vpc-0default", "publicSubnetIds": ["subnet-0a", "subnet-0b"], "privateSubnetIds": []}
    elif typ == "awsx:ecr:Image":
        fields |= {"imageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/flashsale@sha256:0123"}
    elif typ == "aws:ecr/repository:Repository":
        fields |= {"repositoryUrl": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{physical}"}
    elif typ == "aws:sqs/queue:Queue":
        fields |= {"url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical}"}
    elif typ == "aws:lb/loadBalancer:LoadBalancer":
        fields |= {"dnsName": f"{physical}.{REGION}.elb.amazonaws.com", "arnSuffix": f"app/{physical}/0123"}
    elif typ == "aws:lb/targetGroup:TargetGroup":
        fields |= {"arnSuffix": f"targetgroup/{physical}/0123"}
    elif typ == "aws:cloudwatch/dashboard:Dashboard":
        fields |= {"dashboardName": inputs["dashboardName"]}
    return fields


class AwsMocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", {**_computed(args.typ, args.name, args.inputs), **args.inputs}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/test", "userId": "test", "id": ACCOUNT}, []
        return {}, []


@dataclass(frozen=True)
class Declared:
    """One resource as the program declared it."""

    urn: str
    typ: str
    name: str
    state: dict[str, Any]
    opts: pulumi.ResourceOptions | None

    def __getitem__(self, key: str) -> Any:
        return self.state[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.state.get(key, default)


@dataclass
class StackRun:
    stack: str
    resources: list[Declared] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Declared]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name_suffix: str) -> Declared:
        found = [r for r in self.of_type(typ) if r.name.endswith(name_suffix)]
        assert len(found) == 1, f"expected one {typ} named *{name_suffix}, got {[r.urn for r in found]}"
        return found[0]

    def by_arn(self, arn: str) -> Declared:
        found = [r for r in self.resources if r.get("arn") == arn]
        assert len(found) == 1, f"no single resource has ARN {arn}"
        return found[0]


def is_secret(value: Any) -> bool:
    """Whether a recorded input arrived as a Pulumi secret (mocks see the wire form: a signature and the value)."""
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_MARK


def config_strings(config: Mapping[str, Any]) -> dict[str, str]:
    """Config as the Pulumi engine hands it to a program: strings, structured values as JSON."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}


def run_program(stack: str, config: Mapping[str, Any], secret_keys: Iterable[str] = ()) -> StackRun:
    """Run the program for `stack` with `config`; raises what the program raises (e.g. a config error)."""
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_all_config(config_strings(config), list(secret_keys))
    monitor = MockMonitor(AwsMocks())
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    options: dict[tuple[str, str], pulumi.ResourceOptions] = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        options[(args.type_, args.name)] = args.opts

    pulumi.runtime.register_stack_transformation(record)
    run = StackRun(stack)

    @pulumi.runtime.test
    def program() -> pulumi.Output[None]:
        deployment = build()
        return pulumi.Output.all(**deployment.outputs).apply(run.outputs.update)

    program()
    for urn, registered in monitor.get_registered_resources().items():
        typ = urn.split("::")[2].split("$")[-1]
        name = urn.split("::")[3]
        run.resources.append(Declared(urn, typ, name, dict(registered.state), options.get((typ, name))))
    return run
