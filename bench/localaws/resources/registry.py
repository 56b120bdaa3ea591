"""What every handler shares, and how each registers: the resource as the engine hands it to the provider
(`Declared`), what the deploy keeps and must tell (`Context`: clients by AWS service, stand-ins, relays, images,
metric-math alarms, schedules), `Invalid` for an input AWS would refuse, and `handles`, which puts a handler in
`HANDLERS` with the emulator it writes to, and `refreshes`, which puts in `REFRESHERS` how a type's live values are
read back. Then the input shapes: Pulumi's camelCase keys and float numbers as the AWS APIs take them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DATA_PLANE = "ministack"
CONTROL = "moto"


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
    role_arn: str  # the function's execution role: the local stand-in runs with its credentials


@dataclass(frozen=True)
class Schedule:
    """A Lambda function an EventBridge schedule runs, stood in for by the local runtime calling its handler's module
    on the same period (bench.localaws.scheduled)."""

    function_name: str
    handler: str
    environment: Mapping[str, str]
    every_seconds: int
    role_arn: str  # the function's execution role: the local stand-in runs with its credentials


@dataclass(frozen=True)
class Image:
    """The image the program built, as the local ECS runs it: the build context and its Dockerfile."""

    uri: str
    context: Path
    dockerfile: Path


@dataclass
class Context:
    """What handlers share: clients by AWS service (in the region of the resource's provider), and what the deploy
    must tell."""

    client: Callable[[str], Any]
    region: str
    standins: list[Standin] = field(default_factory=list)
    relays: list[Relay] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    math_alarms: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # name -> PutMetricAlarm Metrics
    schedules: list[Schedule] = field(default_factory=list)
    # Every region the deploy has emulators for -> its clients by service (a global table's replica is created in
    # its region's data plane; a latency record's alias target is looked up in the ALB's region).
    regions: Mapping[str, Callable[[str], Any]] = field(default_factory=dict)

    def client_in(self, region: str, service: str) -> Any:
        """A client of `service` in `region`'s emulators; a region the deploy has none for is refused."""
        if region == self.region:
            return self.client(service)
        if region not in self.regions:
            raise Invalid(
                f"the local deployer has no emulators for region {region} (it has {', '.join(sorted(self.regions))})"
            )
        return self.regions[region](service)


Created = tuple[str, dict[str, Any]]  # (the provider's id, outputs beyond the inputs)
Handler = Callable[[Context, Declared], Created]


@dataclass(frozen=True)
class Kind:
    handler: Handler
    plane: str  # which emulator it writes to: DATA_PLANE or CONTROL
    stable: bool = True  # created again with the same inputs, it gets the same ARN (False: AWS makes up an id)


HANDLERS: dict[str, Kind] = {}

# A refresh reads back what AWS holds now, as the inputs the program would declare for it (Pulumi's camelCase).
Reader = Callable[[Context, Declared], dict[str, Any]]
REFRESHERS: dict[str, Reader] = {}


def handles(typ: str, plane: str, *, stable: bool = True) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[typ] = Kind(handler, plane, stable)
        return handler

    return register


def refreshes(typ: str) -> Callable[[Reader], Reader]:
    """Register how `pulumi refresh` reads a type's live values back: the types whose properties change at run time
    (the operator commands, the sale calendar, auto-scaling), so a deploy over a previous one sees what they did."""

    def register(reader: Reader) -> Reader:
        REFRESHERS[typ] = reader
        return reader

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


def between(what: str, value: int, low: int, high: int) -> None:
    """A number within AWS's documented range for it (emulators take any)."""
    if not low <= value <= high:
        raise Invalid(f"{what} must be between {low} and {high}, got {value}")
