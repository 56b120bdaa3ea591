"""`python -m bench.localaws.deployer`: apply the Pulumi program, with a stack file's config, to the local AWS
emulators.

This is `pulumi up` without the CLI: the program (`__main__.py`) runs in this process under Pulumi's mock engine,
and the resource monitor creates each declared resource in the emulators through boto3 (`bench.localaws.resources`), in
the
order the program's dependencies allow, returning the emulator's real outputs so that later resources reference
real values. Physical names follow pulumi-aws's autonaming and AWS's name rules (`bench.localaws.naming`). Whatever the
provider, AWS or the emulator would refuse is a rejection naming the resource's URN; resources that depend on a
rejected one are not created, as the engine would skip them. The stack outputs are the program's own
(`pulumi stack output --json`), plus the emulators' endpoints.

The same deployment can be applied again to a reset data-plane emulator (`Deployment.reapply`): tests use it to
get fresh queues and tables with the same names between tests without running the program again.

A deploy over a previous one (`deploy(..., state=previous)`) is `pulumi up --refresh` on a stack that exists: each
resource already in the state (by URN, or by one of its `aliases`) is refreshed first (its live values read back, for
the types whose values change at run time: `REFRESHERS`), then its properties in `ignore_changes` take the refreshed
state's value, as the engine does, and only a resource whose inputs then differ is updated (its handler called again
with its old physical name); the rest are left alone. Resources of the state the program no longer declares are
listed as what `pulumi up` would delete (`Deployment.deleted`; not deleted here).

Several regions (the `regions` config, docs/multi-region.md): each region has its own emulator set, and each resource
goes to the one of its provider's region. The program gives each extra region an explicit `aws.Provider(region=...)`;
the engine hands a resource's provider as a reference (`URN::ID`, in `RegisterResource.provider`, or
`providers["aws"]` for a remote component), so the deployer accepts each provider resource (nothing to create: an
id, its inputs echoed) and remembers its region, and a resource without one is the default provider's, in
`aws:region`. `deploy(..., regions={region: Endpoints})` gives the other regions' emulators: one ministack per
region, so that a region's loss can be staged by stopping its data plane alone (ministack does keep its queues,
topics and tables per request region, but its queue URLs carry no region: two regions' queues of the same name would
have one URL), and one moto for all of them (its backends are per region, and Route 53 is global there as on AWS; the
control plane is not what the failure tests take down).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pulumi
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from app import contract
from bench.localaws import naming, program, tls
from bench.localaws.emulators import (
    CONTROL_PLANE,
    DUMMY_CREDENTIALS,
    EMAIL_CONFIRMED_AT_ONCE,
    NO_ROLLOUTS,
    NO_SERVICE_EVENTS,
    control_plane_env,
    emulator_client,
    endpoint_env,
    endpoint_for,
)
from bench.localaws.resources.registry import (
    CONTROL,
    HANDLERS,
    REFRESHERS,
    Context,
    Declared,
    Image,
    Invalid,
    Relay,
    Schedule,
    Standin,
)
from stackconfig import files, output_names, schema

CALLER_IDENTITY = "aws:index/getCallerIdentity:getCallerIdentity"
REGION_KEY = "aws:region"
PROVIDER_TYPE = "pulumi:providers:aws"
ELB_SERVICE_ACCOUNT = "aws:elb/getServiceAccount:getServiceAccount"
# The Elastic Load Balancing accounts that write access logs (AWS's "Enable access logs for your Application Load
# Balancer"), for the regions the stacks are deployed in.
ELB_ACCOUNTS = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "eu-west-1": "156460612806",
}


T = TypeVar("T")


class DeployError(RuntimeError):
    """The program could not run at all (a config error, an unreadable stack file)."""


@dataclass(frozen=True)
class Endpoints:
    """Where the emulators answer: ministack for the data plane, moto's server for the control plane."""

    data_plane: str
    control_plane: str
    region: str = contract.AWS_REGION_DEFAULT
    ecs_api: str | None = None  # the local ECS's API facade (bench.localaws.ecs_api), once it serves

    def client(self, service: str) -> Any:
        """One client per service and endpoint, made once (making one costs ~50 ms; calls are thread-safe)."""
        if service == "ecs" and self.ecs_api:
            return _client(service, self.ecs_api, self.region)
        return _client(service, endpoint_for(service, self.data_plane, self.control_plane), self.region)

    def control_env(self) -> dict[str, str]:
        """The per-service endpoints of the control plane (ECS: the facade, when it serves)."""
        return control_plane_env(self.control_plane) | (
            {f"AWS_ENDPOINT_URL_{CONTROL_PLANE['ecs']}": self.ecs_api} if self.ecs_api else {}
        )

    def env(self) -> dict[str, str]:
        """The environment that points a process's boto3 at these emulators, with the emulators' keys."""
        return DUMMY_CREDENTIALS | self.keyless_env()

    def task_env(self, *, https: bool = True) -> dict[str, str]:
        """What a local task is given, as on ECS: no keys (it gets its role's, bench.localaws.credentials), every
        endpoint over HTTPS with certificate and hostname checks (bench.localaws.tls), the local CA as its bundle, and
        IAM enforced on each call (bench.localaws.iam_gate). `https=False`: the emulators' own plain HTTP ports and no
        bundle (and so no IAM gate), for the benchmark that tells what TLS costs a task."""
        if not https:
            return self.keyless_env()
        ca, iam = tls.shared(), self.control_plane  # every call a task makes is authorized by its role's policies
        fronts = Endpoints(
            ca.front(self.data_plane, iam).url,
            ca.front(self.control_plane, iam).url,
            self.region,
            ca.front(self.ecs_api, iam).url if self.ecs_api else None,
        )
        return fronts.keyless_env() | {"AWS_CA_BUNDLE": str(ca.bundle)}

    def keyless_env(self) -> dict[str, str]:
        """Every endpoint of these, without keys."""
        return endpoint_env(self.data_plane, self.region) | self.control_env()


_CLIENTS: dict[tuple[str, str, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(service: str, endpoint_url: str, region: str) -> Any:
    with _CLIENTS_LOCK:
        key = (service, endpoint_url, region)
        if key not in _CLIENTS:
            config = Config(
                region_name=region,
                connect_timeout=2,
                read_timeout=30,
                max_pool_connections=20,
                retries={"total_max_attempts": 2, "mode": "standard"},
            )
            _CLIENTS[key] = emulator_client(service, endpoint_url, region, config)
        return _CLIENTS[key]


@dataclass(frozen=True)
class Rejection:
    urn: str
    message: str

    def __str__(self) -> str:
        return f"{self.urn}: {self.message}"


@dataclass(frozen=True)
class DeployedResource:
    urn: str
    declared: Declared
    id: str
    outputs: dict[str, Any]
    region: str = ""  # of its provider, when not the stack's (aws:region)

    @property
    def typ(self) -> str:
        return self.declared.typ


@dataclass
class Deployment:
    """What one deploy created, refused and stood in for, and the stack's outputs."""

    stack: str
    endpoints: Endpoints  # the stack's region (aws:region), the default provider's
    regional: dict[str, Endpoints] = field(default_factory=dict)  # every other region's emulators, by region
    providers: dict[str, str] = field(default_factory=dict)  # explicit AWS provider's reference (URN::ID) -> region
    resources: list[DeployedResource] = field(default_factory=list)
    components: list[str] = field(default_factory=list)  # URNs of component resources (nothing to create)
    rejections: list[Rejection] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # URNs not created: they depend on a rejected resource
    standins: list[Standin] = field(default_factory=list)
    relays: list[Relay] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    math_alarms: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # metric-math alarm -> its queries
    schedules: list[Schedule] = field(default_factory=list)  # scheduled Lambdas, run by the local runtime
    outputs: dict[str, Any] = field(default_factory=dict)
    updated: list[str] = field(default_factory=list)  # over a previous deploy: URNs whose handler ran again
    deleted: list[str] = field(default_factory=list)  # over a previous deploy: URNs `pulumi up` would delete

    @property
    def ok(self) -> bool:
        return not self.rejections and not self.skipped

    def counts(self) -> Counter[str]:
        """Resources created, per Pulumi type."""
        return Counter(r.typ for r in self.resources)

    def of_type(self, typ: str) -> list[DeployedResource]:
        return [r for r in self.resources if r.typ == typ]

    def endpoints_in(self, region: str) -> Endpoints:
        """The emulators of `region` ("": the stack's)."""
        if not region or region == self.endpoints.region:
            return self.endpoints
        return self.regional[region]

    def in_region(self, region: str) -> list[DeployedResource]:
        """The resources created in `region`'s emulators."""
        return [r for r in self.resources if (r.region or self.endpoints.region) == region]

    def context(self, region: str = "") -> Context:
        """What a handler of a resource in `region` is given, with every region's clients."""
        endpoints = self.endpoints_in(region)
        return Context(
            client=endpoints.client,
            region=endpoints.region,
            standins=self.standins,
            relays=self.relays,
            images=self.images,
            math_alarms=self.math_alarms,
            schedules=self.schedules,
            regions={e.region: e.client for e in (self.endpoints, *self.regional.values())},
        )

    def reapply(self, plane: str) -> None:
        """Create this deployment's resources of `plane` again, with the same names and inputs, on emulators that
        were reset (every region's); their ids and ARNs must come out as before (else later resources would point
        nowhere)."""
        contexts = {
            region: replace(self.context(region), standins=[], relays=[], images=[], math_alarms={}, schedules=[])
            for region in {r.region for r in self.resources}
        }
        for resource in self.resources:
            kind = HANDLERS[resource.typ]
            if kind.plane != plane:
                continue
            created_id, outputs = kind.handler(contexts[resource.region], resource.declared)
            for key in ("arn", "url") if kind.stable else ():
                if key in resource.outputs and outputs.get(key) != resource.outputs[key]:
                    raise DeployError(
                        f"{resource.urn}: re-created with {key} {outputs.get(key)}, was {resource.outputs[key]}"
                    )

    def stack_outputs(self) -> dict[str, Any]:
        """`pulumi stack output --json`, plus where the emulators are, their keys and what they do not model (ops
        commands
        read it all from one file)."""
        return {
            **self.outputs,
            output_names.LOCAL_ENDPOINT: self.endpoints.data_plane,
            output_names.LOCAL_SERVICE_ENDPOINTS: self.endpoints.control_env(),
            output_names.LOCAL_CREDENTIALS: dict(DUMMY_CREDENTIALS),
            output_names.LOCAL_CAVEATS: {
                output_names.CAVEAT_ROLLOUTS: NO_ROLLOUTS,
                output_names.CAVEAT_EMAIL: EMAIL_CONFIRMED_AT_ONCE,
                output_names.CAVEAT_SERVICE_EVENTS: NO_SERVICE_EVENTS,
            },
        }

    def summary(self) -> str:
        lines = [
            f"stack {self.stack}: {len(self.resources)} resources in the stack, "
            f"{len(self.rejections)} rejected, {len(self.skipped)} not created"
        ]
        lines += [f"  {count:3} {typ}" for typ, count in sorted(self.counts().items())]
        if self.regional:
            lines += [
                f"  region {region}: {len(self.in_region(region))} resources"
                for region in (self.endpoints.region, *self.regional)
            ]
        lines += [f"  stand-in: {s.what}" for s in self.standins]
        lines += [f"  REJECTED {r}" for r in self.rejections]
        lines += [f"  not created (depends on a rejected resource): {urn}" for urn in self.skipped]
        lines += [f"  updated: {urn}" for urn in self.updated]
        lines += [f"  `pulumi up` would delete: {urn}" for urn in self.deleted]
        return "\n".join(lines)


def aws_error(error: Exception) -> str:
    """The refusal as AWS (or the provider) words it; anything else with its type, since it is a bug to fix."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        return f"{error.operation_name}: {info.get('Code', '?')}: {info.get('Message', '')}"
    if isinstance(error, (naming.NameRejected, Invalid, BotoCoreError)):
        return str(error)
    return f"{type(error).__name__}: {error}"


class _Invokes(Mocks):
    """Provider functions the program calls (data sources), answered by the emulators of the provider's region."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def call(self, args: MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        endpoints = self.deployment.endpoints_in(self.deployment.providers.get(args.provider or "", ""))
        if args.token == CALLER_IDENTITY:
            found = endpoints.client("sts").get_caller_identity()
            return {
                "accountId": found["Account"],
                "arn": found["Arn"],
                "userId": found["UserId"],
                "id": found["Account"],
            }, []
        if args.token == ELB_SERVICE_ACCOUNT:
            region = args.args.get("region") or endpoints.region
            if region not in ELB_ACCOUNTS:
                raise DeployError(
                    f"the local deployer knows the load balancer log account of {sorted(ELB_ACCOUNTS)} "
                    f"only, not {region}"
                )
            return {"arn": f"arn:aws:iam::{ELB_ACCOUNTS[region]}:root", "id": ELB_ACCOUNTS[region]}, []
        raise DeployError(f"the local deployer cannot answer the provider function {args.token}")

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        raise DeployError(f"the local deployer cannot read existing resources ({args.typ} {args.name})")


class LocalMonitor(program.EngineMonitor):
    """The resource monitor of a local deploy: each registration becomes a real resource in the emulators."""

    def __init__(self, deployment: Deployment, state: Deployment | None = None) -> None:
        super().__init__(_Invokes(deployment))
        self.deployment = deployment
        self.state = {r.urn: r for r in state.resources} if state else {}
        self.claimed: set[str] = set()  # URNs of the state that a declared resource took over (its own or an alias)
        self._contexts = {region: deployment.context(region) for region in ("", *deployment.regional)}
        self._failed: set[str] = set()
        self._lock = threading.Lock()
        # The engine registers resources from several threads. moto's backends are not thread-safe: a role created
        # while another call looks roles up fails that call with a 500 ("dictionary changed size during
        # iteration", seen in a lab run), so the control plane's resources are made one at a time.
        self._control_plane = threading.Lock()

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 (the engine's RPC name)
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            return resource_pb2.RegisterResourceResponse(urn=urn)
        _ensure_event_loop()  # type: ignore[no-untyped-call]
        # The provider gets secrets decrypted (the webhook URL into its Secrets Manager secret), as the engine hands
        # them.
        inputs, _ = rpc.deserialize_properties_unwrap_secrets(request.object)
        created = self._create(urn, request, inputs)
        if created is None:  # as the engine reports a failed resource: its outputs become unknown, the program goes on
            return resource_pb2.RegisterResourceResponse(urn=urn, result=resource_pb2.Result.FAIL)
        created_id, state = created
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, created_id, state)
        return resource_pb2.RegisterResourceResponse(
            urn=urn, id=created_id, object=_sync_await(rpc.serialize_properties(state, {}))
        )

    def _create(self, urn: str, request: Any, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        """(id, outputs) of the created resource, or None when it was rejected or not created."""
        deployment = self.deployment
        if not request.custom and request.type not in HANDLERS:  # our components; awsx's are remote: handled
            with self._lock:
                deployment.components.append(urn)
            return "", {}
        if request.type == PROVIDER_TYPE:
            return self._provider(urn, inputs)
        depends = set(request.dependencies) | {u for deps in request.propertyDependencies.values() for u in deps.urns}
        with self._lock:
            blocked = bool(depends & self._failed)
            if blocked:
                self._failed.add(urn)
                deployment.skipped.append(urn)
        if blocked:
            return None
        try:
            region = self._region_of(request)
        except Invalid as error:
            with self._lock:
                self._failed.add(urn)
                deployment.rejections.append(Rejection(urn, aws_error(error)))
            return None
        context = self._contexts[region]
        old = next((self.state[u] for u in (urn, *request.aliasURNs) if u in self.state), None)
        if old is not None:
            with self._lock:
                self.claimed.add(old.urn)
            return self._update(urn, request, inputs, old, context)
        try:
            prop, name = naming.physical_name(request.type, request.name, inputs.get(_name_input(request.type)))
            declared = Declared(urn=urn, typ=request.type, logical=request.name, name=name or "", inputs=inputs)
            kind = HANDLERS.get(request.type)
            if kind is None:
                raise naming.NameRejected(
                    f"the local deployer has no handler for {request.type}: add one to "
                    "its AWS service's module in bench/localaws/resources/"
                )
            if kind.plane == CONTROL:
                with self._control_plane:
                    created_id, outputs = kind.handler(context, declared)
            else:
                created_id, outputs = kind.handler(context, declared)
        except Exception as error:  # noqa: BLE001 - any failure to create is this resource's rejection
            with self._lock:
                self._failed.add(urn)
                deployment.rejections.append(Rejection(urn, aws_error(error)))
            return None
        state = {**inputs, **({prop: name} if prop else {}), **outputs}
        with self._lock:
            deployment.resources.append(DeployedResource(urn, declared, created_id, state, region))
        return created_id, state

    def _provider(self, urn: str, inputs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """An explicit AWS provider: nothing to create in the emulators; its reference is remembered with its region,
        which must be one the deploy has emulators for. Its id is stable, as the engine keeps a provider's id from
        one `pulumi up` to the next."""
        region = str(inputs.get("region") or self.deployment.endpoints.region)
        provider_id = str(uuid.uuid5(uuid.NAMESPACE_URL, urn))
        with self._lock:
            self.deployment.providers[f"{urn}::{provider_id}"] = region
        return provider_id, dict(inputs)

    def _region_of(self, request: Any) -> str:
        """The region of a resource's provider, "" for the default provider's (the stack's): its emulators."""
        reference = request.provider or dict(request.providers).get("aws", "")
        if not reference:
            return ""
        with self._lock:
            region = self.deployment.providers.get(reference)
        if region is None:
            raise Invalid(f"the local deployer knows no provider {reference}")
        if region == self.deployment.endpoints.region:
            return ""
        if region not in self.deployment.regional:
            raise Invalid(
                f"the local deployer has no emulators for region {region}: deploy(..., regions={{{region!r}: "
                "Endpoints(...)}})"
            )
        return region

    def _update(
        self, urn: str, request: Any, inputs: dict[str, Any], old: DeployedResource, context: Context
    ) -> tuple[str, dict[str, Any]] | None:
        """Refresh `old`, keep its ignored properties, and call its handler again only if the inputs changed."""
        deployment = self.deployment
        try:
            reader = REFRESHERS.get(old.typ)
            live = reader(context, old.declared) if reader else {}
            olds = {**old.declared.inputs, **live}
            ignored = set(request.ignoreChanges)
            if nested := sorted(p for p in ignored if "." in p or "[" in p):
                raise Invalid(f"the local deployer ignores top-level properties only, not {nested}")
            news = {**inputs, **{key: olds[key] for key in ignored if key in olds}}
            declared = Declared(urn=urn, typ=old.typ, logical=request.name, name=old.declared.name, inputs=news)
            if _comparable(news) == _comparable(olds):
                created_id, outputs = old.id, {**old.outputs, **live}
            else:
                kind = HANDLERS[old.typ]
                if kind.plane == CONTROL:
                    with self._control_plane:
                        created_id, outputs = kind.handler(context, declared)
                else:
                    created_id, outputs = kind.handler(context, declared)
                with self._lock:
                    deployment.updated.append(urn)
        except Exception as error:  # noqa: BLE001 - as a failed create: this resource's rejection
            with self._lock:
                self._failed.add(urn)
                deployment.rejections.append(Rejection(urn, aws_error(error)))
            return None
        prop = _name_input(old.typ)
        state = {**news, **({prop: old.declared.name} if old.declared.name else {}), **outputs}
        with self._lock:
            deployment.resources.append(DeployedResource(urn, declared, created_id, state, old.region))
        return created_id, state


def _name_input(typ: str) -> str:
    rule = naming.RULES.get(typ)
    return rule.prop if rule else "name"


def deploy(
    stack: str,
    endpoints: Endpoints,
    *,
    overrides: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    run_program: Callable[[], None] = program.run_main,
    state: Deployment | None = None,
    regions: Mapping[str, Endpoints] | None = None,
) -> Deployment:
    """Run the program for `stack` (its stack file's config, or `config` as given, with `overrides` by key, e.g.
    {"workerCount": 200}) against the emulators; over `state`, a previous deploy of the stack, as `pulumi up
    --refresh` (see the module's docstring). `regions`: the emulators of each region other than the stack's
    (`aws:region`, whose are `endpoints`), one per region of the `regions` config. Raises DeployError when the
    program itself fails or a configured region has no emulators; rejections are in the result."""
    config = with_overrides(dict(config) if config is not None else load_config(stack), overrides or {})
    region = str(config.get(REGION_KEY) or contract.AWS_REGION_DEFAULT)
    # A secret key can only come from `overrides` or `config` here (stack-file ciphertext is refused): it is handed
    # to the program as the engine hands a decrypted secret.
    secret_keys = [key for key in (f"{schema.PROJECT}:{k}" for k in schema.SECRET_KEYS) if key in config]
    regional = {name: replace(e, region=name) for name, e in (regions or {}).items() if name != region}
    configured = config.get(f"{schema.PROJECT}:regions") or []
    if isinstance(configured, str):
        configured = json.loads(configured)
    if missing := [name for name in configured if name != region and name not in regional]:
        raise DeployError(
            f"the stack's regions {missing} have no emulators: deploy(..., regions={{REGION: Endpoints}})"
        )
    deployment = Deployment(
        stack=stack, endpoints=Endpoints(endpoints.data_plane, endpoints.control_plane, region), regional=regional
    )
    if state is not None:  # what the handlers of resources left alone told the previous deploy still holds
        deployment.standins, deployment.relays = list(state.standins), list(state.relays)
        deployment.images, deployment.math_alarms = list(state.images), dict(state.math_alarms)
        deployment.schedules = list(state.schedules)
    monitor = LocalMonitor(deployment, state)
    try:
        deployment.outputs = program.run(stack, config, monitor, program=run_program, secret_keys=secret_keys)
    except DeployError:
        raise
    except Exception as error:  # the program's own failure (a config error names the file and the key)
        raise DeployError(str(error)) from error
    if state is not None:
        kept = monitor.claimed | set(deployment.skipped) | {r.urn for r in deployment.rejections}
        deployment.deleted = sorted({r.urn for r in state.resources} - kept)
        deployment.standins = _distinct(deployment.standins)
        deployment.relays = _distinct(deployment.relays)
        deployment.images = _distinct(deployment.images)
        deployment.schedules = _distinct(deployment.schedules)
    return deployment


def _comparable(value: Any) -> Any:
    """Inputs as the engine diffs them: assets and archives by their content, the rest by value."""
    if isinstance(value, pulumi.FileAsset):
        return ("asset", hashlib.sha256(Path(value.path).read_bytes()).hexdigest())
    if isinstance(value, pulumi.AssetArchive):
        return ("archive", {path: _comparable(asset) for path, asset in value.assets.items()})
    if isinstance(value, Mapping):
        return {key: _comparable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_comparable(item) for item in value]
    return value


def _distinct(items: list[T]) -> list[T]:
    """Each entry once (a resource updated in place tells again what it told when it was created)."""
    kept: list[T] = []
    for item in items:
        if item not in kept:
            kept.append(item)
    return kept


def load_config(stack: str) -> dict[str, Any]:
    """The stack file's config; secrets cannot be decrypted without the Pulumi CLI and are refused."""
    path = files.stack_file(stack)
    if not path.exists():
        known = ", ".join(files.stack_of(p) for p in files.stack_files())
        raise DeployError(f"no stack file {path.name} (stacks: {known})")
    try:
        config = schema.read_stack_file(path)
    except schema.ConfigError as error:
        raise DeployError(str(error)) from None
    secrets = sorted(key for key, value in config.items() if isinstance(value, dict) and "secure" in value)
    if secrets:
        raise DeployError(
            f"{path.name}: {', '.join(secrets)} are secrets the local deployer cannot decrypt; "
            "override them with --config KEY=VALUE"
        )
    return config


def with_overrides(config: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`overrides` given by bare key (`workerCount`, the project's) or namespaced (`aws:region`)."""
    for key, value in overrides.items():
        config[key if ":" in key else f"{schema.PROJECT}:{key}"] = value
    return config


def parse_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """`KEY=VALUE` pairs; a value that is JSON (numbers, true, lists) is taken as such, else as a string."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise DeployError(f"--config takes KEY=VALUE, got {pair!r}")
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[key] = raw
    return overrides


def main(argv: list[str] | None = None) -> int:
    from bench.localaws.emulators import Emulator, EmulatorError

    parser = argparse.ArgumentParser(
        prog="python -m bench.localaws.deployer",
        description=__doc__.splitlines()[0],
        epilog="Without --data-plane/--control-plane it starts ministack and moto's server "
        "for the deploy and stops them after: a check that both stacks deploy "
        "(exit 1 on any rejection). `python -m bench.local up` keeps them running.",
    )
    parser.add_argument("--stack", default="normal", help="stack file Pulumi.STACK.yaml (default %(default)s)")
    parser.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key (repeatable), e.g. workerCount=200",
    )
    parser.add_argument("--data-plane", metavar="URL", help="a running ministack (default: start one)")
    parser.add_argument("--control-plane", metavar="URL", help="a running moto server (default: start one)")
    parser.add_argument(
        "--region",
        action="append",
        default=[],
        metavar="REGION=URL",
        help="a running ministack for one more region of the `regions` config (repeatable); its control plane is "
        "the same moto, and hostedZoneId must name a zone that exists there",
    )
    parser.add_argument("--outputs", type=Path, help="write the stack outputs as JSON to this file")
    parser.add_argument("--json", action="store_true", help="print the deployment as JSON")
    args = parser.parse_args(argv)
    started: list[Emulator] = []
    try:
        data_plane, control_plane = args.data_plane, args.control_plane
        if not data_plane:
            started.append(Emulator("ministack").start())
            data_plane = started[-1].endpoint_url
        if not control_plane:
            started.append(Emulator("moto").start())
            control_plane = started[-1].endpoint_url
        regional = {}
        for pair in args.region:
            name, sep, url = pair.partition("=")
            if not sep or not url:
                raise DeployError(f"--region takes REGION=URL, got {pair!r}")
            regional[name] = Endpoints(url, control_plane, name)
        deployment = deploy(
            args.stack,
            Endpoints(data_plane, control_plane),
            overrides=parse_overrides(args.config),
            regions=regional,
        )
    except (DeployError, EmulatorError) as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 1
    finally:
        for emulator in started:
            emulator.stop()
    if args.outputs:
        args.outputs.parent.mkdir(parents=True, exist_ok=True)
        args.outputs.write_text(json.dumps(deployment.stack_outputs(), indent=2, default=str) + "\n")
    if args.json:
        print(
            json.dumps(
                {
                    "stack": deployment.stack,
                    "ok": deployment.ok,
                    "counts": deployment.counts(),
                    "rejections": [str(r) for r in deployment.rejections],
                    "skipped": deployment.skipped,
                    "standins": [s.what for s in deployment.standins],
                    "outputs": deployment.outputs,
                },
                indent=2,
                default=str,
            )
        )
    else:
        print(deployment.summary())
    return 0 if deployment.ok else 1


if __name__ == "__main__":
    sys.exit(main())
