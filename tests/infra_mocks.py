"""Run the Pulumi program in-process under echoing mocks, with a stack file's real config, and record what it declares.

The mocks echo each resource's inputs and add only the computed fields the program reads (ARNs, names, URLs, the
awsx default-VPC and image outputs). A stack transformation records every resource's options, which mocks never
see (`ignore_changes`, `depends_on`). The run itself is `bench.localaws.program.run`, the same entry point the local
deployer applies to the emulators (tests/test_deployer.py): these mocks see what the program asks for, the deployer
what AWS would make of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.rpc import _special_secret_sig as SECRET_MARK
from pulumi.runtime.rpc import _special_sig_key as SECRET_SIG

from bench.localaws import program
from stackconfig.files import stack_files

ACCOUNT = "123456789012"
REGION = "us-west-2"
PROVIDER = "pulumi:providers:aws"
ELB_ACCOUNT = "797873946194"  # the region's load balancer log-delivery account
STACK_FILES = stack_files()
# The ALBs' canonical hosted zones (Elastic Load Balancing endpoints and quotas, AWS General Reference).
ALB_ZONES = {"us-west-2": "Z1H1FL5HABSF5", "us-east-2": "Z3AADJGX6KTTL2", "eu-west-1": "Z32O12XQLNTSW2"}


def _computed(typ: str, name: str, inputs: Mapping[str, Any], region: str = REGION) -> dict[str, Any]:
    """The fields AWS computes, in the region of the resource's provider (the stack's, unless it has another)."""
    physical = inputs.get("name") or f"{name}-1a2b3c"
    service, _, kind = typ.partition(":")[2].partition("/")
    arn = f"arn:aws:{service}:{region}:{ACCOUNT}:{kind.split(':')[0]}/{physical}"
    fields: dict[str, Any] = {"arn": arn, "name": physical}
    if typ == "awsx:ec2:DefaultVpc":
        fields |= {"vpcId": "vpc-0default", "publicSubnetIds": ["subnet-0a", "subnet-0b"], "privateSubnetIds": []}
    elif typ == "awsx:ecr:Image":
        fields |= {"imageUri": f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/flashsale@sha256:0123"}
    elif typ == "aws:ecr/repository:Repository":
        fields |= {"repositoryUrl": f"{ACCOUNT}.dkr.ecr.{region}.amazonaws.com/{physical}"}
    elif typ == "aws:sqs/queue:Queue":
        fields |= {"url": f"https://sqs.{region}.amazonaws.com/{ACCOUNT}/{physical}"}
    elif typ == "aws:lb/loadBalancer:LoadBalancer":
        fields |= {
            "dnsName": f"{physical}.{region}.elb.amazonaws.com",
            "arnSuffix": f"app/{physical}/0123",
            "zoneId": ALB_ZONES.get(region, "Z0ALBZONE0"),
        }
    elif typ == "aws:lb/targetGroup:TargetGroup":
        fields |= {"arnSuffix": f"targetgroup/{physical}/0123"}
    elif typ == "aws:s3/bucket:Bucket":
        fields |= {"bucket": inputs.get("bucket") or physical}
    elif typ == "aws:cloudwatch/dashboard:Dashboard":
        fields |= {"dashboardName": inputs["dashboardName"]}
    return fields


class AwsMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.provider_regions: dict[str, str] = {}  # an explicit AWS provider's id -> its region

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        resource_id = f"{args.name}-id"
        if args.typ == PROVIDER:
            self.provider_regions[resource_id] = args.inputs.get("region", REGION)
        # A provider reference is `URN::ID`; resources of the default provider are in the stack's region.
        region = self.provider_regions.get((args.provider or "").rpartition("::")[2], REGION)
        return resource_id, {**_computed(args.typ, args.name, args.inputs, region), **args.inputs}

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            return {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/test",
                "userId": "test",
                "id": ACCOUNT,
            }, []
        if args.token == "aws:elb/getServiceAccount:getServiceAccount":
            return {"arn": f"arn:aws:iam::{ELB_ACCOUNT}:root", "id": ELB_ACCOUNT}, []
        return {}, []


@dataclass(frozen=True)
class Declared:
    """One resource as the program declared it."""

    urn: str
    typ: str
    name: str
    state: dict[str, Any]
    opts: pulumi.ResourceOptions | None
    id: str = ""  # the provider's id, as the mocks gave it

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
        bare = name_suffix.removeprefix("-")  # a top-level component's children: "net-tasks" matches "-net-tasks"
        found = [r for r in self.of_type(typ) if r.name.endswith(name_suffix) or r.name == bare]
        assert len(found) == 1, f"expected one {typ} named *{name_suffix}, got {[r.urn for r in found]}"
        return found[0]

    def by_arn(self, arn: str) -> Declared:
        found = [r for r in self.resources if r.get("arn") == arn]
        assert len(found) == 1, f"no single resource has ARN {arn}"
        return found[0]


def is_secret(value: Any) -> bool:
    """Whether a recorded input arrived as a Pulumi secret (mocks see the wire form: a signature and the value)."""
    return isinstance(value, dict) and value.get(SECRET_SIG) == SECRET_MARK


def run_program(stack: str, config: Mapping[str, Any], secret_keys: Iterable[str] = ()) -> StackRun:
    """Run the program for `stack` with `config`; raises what the program raises (e.g. a config error)."""
    monitor = MockMonitor(AwsMocks())
    options: dict[tuple[str, str], pulumi.ResourceOptions] = {}

    def record(args: pulumi.ResourceTransformationArgs) -> None:
        options[(args.type_, args.name)] = args.opts

    def recorded() -> None:
        pulumi.runtime.register_stack_transformation(record)
        program.run_main()

    run = StackRun(stack)
    run.outputs = program.run(stack, config, monitor, program=recorded, secret_keys=secret_keys)
    for urn, registered in monitor.get_registered_resources().items():
        typ = urn.split("::")[2].split("$")[-1]
        name = urn.split("::")[3]
        run.resources.append(
            Declared(urn, typ, name, dict(registered.state), options.get((typ, name)), registered.id or "")
        )
    return run


@dataclass(frozen=True)
class Registered:
    """A resource as the engine would see it registered: its URN (the engine's), its aliases as URNs, protect."""

    urn: str
    aliases: tuple[str, ...]
    protect: bool

    @property
    def typ(self) -> str:
        return self.urn.split("::")[2].split("$")[-1]


class _Recorder(program.EngineMonitor):
    def __init__(self) -> None:
        super().__init__(AwsMocks())
        self.registered: dict[str, Registered] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the engine's RPC name)
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        self.registered[response.urn] = Registered(response.urn, tuple(request.aliasURNs), bool(request.protect))
        return response


def registrations(stack: str, config: Mapping[str, Any]) -> dict[str, Registered]:
    """Every resource the program registers for `stack`, by its engine URN (the root stack left out)."""
    monitor = _Recorder()
    program.run(stack, config, monitor)
    return {urn: r for urn, r in monitor.registered.items() if r.typ != program.ROOT_STACK_TYPE}
