"""Run the Pulumi program (`__main__.py`) in this process, without the Pulumi CLI, against a mock resource monitor.

The monitor decides what a resource becomes: the unit tests' monitor echoes inputs, the local deployer's creates the
resource in the emulators. Both run the same entry point with a stack file's real config, so what they see is what
`pulumi up -s STACK` would ask the engine for. Each run starts from a fresh root stack, config and monitor.
"""

from __future__ import annotations

import asyncio
import json
import runpy
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pulumi
import pulumi.runtime.settings as runtime_settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import resource_pb2

from stackconfig import schema
from stackconfig.files import MAIN

ROOT_STACK_TYPE = "pulumi:pulumi:Stack"


class EngineMonitor(MockMonitor):
    """A mock monitor that names resources as the Pulumi engine does, so URNs and aliases are the real ones.

    MockMonitor's URNs keep only the parent's own type and put the root stack's type in front of top-level
    resources; the engine keeps the parent's whole type chain and leaves the root stack out
    (`urn:pulumi:STACK::PROJECT::flashsale:patterns:QueueWorkerService$flashsale:patterns:FargateService$aws:...`).
    It also answers as an engine without alias specs, so the SDK sends each of a resource's aliases as the full URN
    it stands for (`aliasURNs`, with the aliases its parents' aliases imply), as `pulumi up` would match them.
    """

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        parent_type = parent.split("::")[2] if parent else ""
        qualified = f"{parent_type}${type_}" if parent_type and parent_type != ROOT_STACK_TYPE else type_
        return "::".join([f"urn:pulumi:{pulumi.get_stack()}", pulumi.get_project(), qualified, name])

    def SupportsFeature(self, request: Any) -> Any:  # noqa: N802 (the engine's RPC name)
        if request.id == "aliasSpecs":
            return type("SupportsFeatureResponse", (), {"hasSupport": False})
        return super().SupportsFeature(request)  # type: ignore[no-untyped-call]

    def GetDeploymentInfo(self, request: Any) -> Any:  # noqa: N802 (the engine's RPC name)
        info = super().GetDeploymentInfo(request)  # type: ignore[no-untyped-call]
        kept = [f for f in info.supportedFeatures if f != resource_pb2.RESOURCE_MONITOR_FEATURE_ALIAS_SPECS]
        return resource_pb2.DeploymentInfo(supportedFeatures=kept)


def config_strings(config: Mapping[str, Any]) -> dict[str, str]:
    """Config as the Pulumi engine hands it to a program: strings, structured values as JSON."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}


def run_main() -> None:
    """The program itself, as `pulumi up` runs it."""
    runpy.run_path(str(MAIN), run_name="__main__")


def run(
    stack: str,
    config: Mapping[str, Any],
    monitor: MockMonitor,
    *,
    program: Callable[[], None] = run_main,
    secret_keys: Iterable[str] = (),
) -> dict[str, Any]:
    """Run `program` for `stack` with `config` against `monitor`; returns the stack outputs (`pulumi.export`).

    Raises what the program raises (e.g. a config error naming the stack file and the key).
    """
    asyncio.set_event_loop(asyncio.new_event_loop())  # a fresh loop: an earlier asyncio.run() leaves none behind
    runtime_settings.ROOT.set(None)
    pulumi.runtime.set_all_config(config_strings(config), list(secret_keys))
    pulumi.runtime.set_mocks(monitor.mocks, project=schema.PROJECT, stack=stack, preview=False, monitor=monitor)
    outputs: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def body() -> pulumi.Output[None]:
        program()
        root = runtime_settings.get_root_resource()
        exported = getattr(root, "outputs", {})
        return pulumi.Output.all(**exported).apply(outputs.update)

    body()
    return outputs
