"""The one way ops commands get the stack's outputs, and the error boundary they all share.

Outputs come from `--stack NAME` (`pulumi stack output --json --show-secrets -s NAME`), from `--outputs FILE` (a JSON
file of the same shape, e.g. `pulumi stack output --json > outputs.json` or the file `python -m bench.local up` writes),
or from one explicit flag per value (`--queue-url ...`), which wins over both. Keys are `stackconfig.output_names`.

An outputs file written by the local system (`python -m bench.local up`) also names its emulators (`awsEndpointUrl`,
and `awsServiceEndpoints` for the services moto serves) and their keys (`awsCredentials`): reading it points this
process's boto3 at them unless AWS_ENDPOINT_URL is already set, so the same commands work locally without exporting
anything. Its `localCaveats` say what the emulators do not model (`LocalCaveats`), so commands say it rather than
judge it. Nothing here imports the bench: the file is the whole interface.

Every command runs through `run()`: a failure, including an AWS error, is one line on stderr and exit code 1,
never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from planning.capacity import PlanError
from stackconfig import output_names


class OpsError(RuntimeError):
    """A failure with a message that tells the operator what is wrong; printed as one line."""


@dataclass(frozen=True)
class LocalCaveats:
    """What the emulators behind a local outputs file do not model (`localCaveats`, written by the local system)."""

    muted_alarms: Mapping[str, str] = field(default_factory=dict)  # alarm key -> why its actions are muted
    rollouts: str = ""  # why ECS deployments are not judged
    email: str = ""  # why a confirmed e-mail subscription proves nothing
    service_events: str = ""  # why an ECS service shows no events

    @classmethod
    def of(cls, outputs: Mapping[str, Any]) -> LocalCaveats | None:
        """None for a real stack (its outputs carry no caveats)."""
        said = outputs.get(output_names.LOCAL_CAVEATS)
        if said is None:
            return None
        if not isinstance(said, Mapping):
            raise OpsError(f"stack output `{output_names.LOCAL_CAVEATS}` must be a JSON object, got {said!r}")
        muted = said.get(output_names.CAVEAT_MUTED_ALARMS) or {}
        return cls(
            muted_alarms={str(k): str(v) for k, v in dict(muted).items()},
            rollouts=str(said.get(output_names.CAVEAT_ROLLOUTS) or ""),
            email=str(said.get(output_names.CAVEAT_EMAIL) or ""),
            service_events=str(said.get(output_names.CAVEAT_SERVICE_EVENTS) or ""),
        )


def flag(key: str) -> str:
    """`queueUrl` -> `--queue-url`: the explicit flag for one output."""
    return "--" + re.sub(r"(?<!^)(?=[A-Z])", "-", key).lower()


def add_output_arguments(parser: argparse.ArgumentParser, keys: tuple[str, ...]) -> None:
    """Add --stack, --outputs and one flag per output key this command reads."""
    group = parser.add_argument_group("stack outputs (explicit flags win over --outputs/--stack)")
    source = group.add_mutually_exclusive_group()
    source.add_argument("--stack", metavar="NAME", help="read `pulumi stack output` of this stack")
    source.add_argument(
        "--outputs",
        metavar="FILE",
        type=Path,
        help="JSON file of stack outputs (`pulumi stack output --json > FILE`, or the local system's "
        ".local/outputs.json)",
    )
    for key in keys:
        group.add_argument(flag(key), dest=f"output_{key}", metavar="VALUE", help=f"the stack output `{key}`")


def pulumi_outputs(stack: str) -> dict[str, Any]:
    command = ["pulumi", "stack", "output", "--json", "--show-secrets", "-s", stack]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    except FileNotFoundError:
        raise OpsError(
            "the pulumi CLI is not installed: install it, or pass --outputs FILE or explicit flags"
        ) from None
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise OpsError(f"`{' '.join(command)}` failed: {detail[0]}")
    return _as_outputs(done.stdout, f"pulumi stack {stack}")


def file_outputs(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as error:
        raise OpsError(f"cannot read outputs file {path}: {error.strerror}") from None
    return _as_outputs(text, str(path))


def _as_outputs(text: str, source: str) -> dict[str, Any]:
    try:
        outputs = json.loads(text)
    except json.JSONDecodeError as error:
        raise OpsError(f"{source}: not JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(outputs, dict):
        raise OpsError(f"{source}: expected a JSON object of stack outputs")
    return outputs


def resolve_outputs(
    args: argparse.Namespace, keys: tuple[str, ...], *, optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The outputs this command needs; a missing required one is an OpsError naming the ways to give it."""
    loaded: Mapping[str, Any] = {}
    missing = "is missing: pass {flag}, --outputs FILE or --stack NAME"
    if args.stack:
        loaded, missing = pulumi_outputs(args.stack), f"is not an output of stack {args.stack}: pass {{flag}}"
    elif args.outputs:
        loaded, missing = file_outputs(args.outputs), f"is not in {args.outputs}: pass {{flag}}"
        _use_local_endpoint(loaded)
    resolved = {}
    for key in keys:
        value = getattr(args, f"output_{key}", None)
        value = loaded.get(key) if value is None else value
        if value is None or value == "":
            if key in optional:
                continue
            raise OpsError(f"stack output `{key}` " + missing.format(flag=flag(key)))
        resolved[key] = value
    return resolved


def _use_local_endpoint(outputs: Mapping[str, Any]) -> None:
    endpoint = outputs.get(output_names.LOCAL_ENDPOINT)
    if endpoint and not os.environ.get("AWS_ENDPOINT_URL"):
        os.environ["AWS_ENDPOINT_URL"] = str(endpoint)
        os.environ.update(
            {str(k): str(v) for k, v in dict(outputs.get(output_names.LOCAL_SERVICE_ENDPOINTS) or {}).items()}
        )
        for key, value in dict(outputs.get(output_names.LOCAL_CREDENTIALS) or {}).items():
            os.environ.setdefault(str(key), str(value))


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON instead of text")


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    """Print the result: JSON with --json, else the human-readable text."""
    print(json.dumps(data, indent=2, default=str) if args.json else text)


def progress(message: str) -> None:
    """Progress for people goes to stderr, so stdout stays clean for --json."""
    print(message, file=sys.stderr, flush=True)


def run(parser: argparse.ArgumentParser, command: Callable[[argparse.Namespace], int], argv: list[str] | None) -> int:
    """Parse argv and run the command; failures become one line on stderr and a non-zero exit code."""
    args = parser.parse_args(argv)
    try:
        return command(args)
    except (OpsError, PlanError) as error:
        message = str(error)
    except ClientError as error:
        info = error.response.get("Error", {})
        message = f"AWS {error.operation_name} failed: {info.get('Code', '?')}: {info.get('Message', '')}".rstrip(": ")
    except BotoCoreError as error:
        message = f"AWS call failed: {error}"
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return 1
