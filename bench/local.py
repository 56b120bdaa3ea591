"""`python -m bench.local up`: the whole system on this machine, as the Pulumi program deploys it, until Ctrl-C.

Starts the local AWS emulators on 127.0.0.1, deploys a stack file to them through the local deployer (the same
program `pulumi up` runs, with the same config), runs every ECS service it declares on the local ECS (one process per
desired task; `ops.prescale` and auto-scaling change the count, a task that dies is replaced), and prints what was
deployed, the service URLs, the live view's URL (a page updated every second: queue, tasks, orders per second,
expected wait, alarms) and what runs locally in place of AWS. Ctrl-C or SIGTERM stops everything it started.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app import contract, roles
from bench.localaws.console import ConsoleError
from bench.localaws.deployer import DeployError, parse_overrides
from bench.localaws.ecs import LocalEcsError
from bench.localaws.emulators import EmulatorError, port_in_use
from bench.localaws.system import DEFAULT_DIR, LocalArgs, LocalError, LocalSystem
from bench.localaws.tasks import TaskError

POLL_SECONDS = 0.5


def _check_ports(ports: dict[str, int]) -> None:
    for flag, port in ports.items():
        if port and port_in_use(port):
            raise LocalError(f"port {port} ({flag}) is taken: stop what uses it or choose another port")


def describe(system: LocalSystem) -> str:
    """What was deployed and where it runs, for people."""
    deployment = system.deployment
    lines = [
        f"deployed stack {deployment.stack} to the local emulators: {len(deployment.resources)} resources, 0 rejected"
    ]
    lines += [f"  {count:3} {typ}" for typ, count in sorted(deployment.counts().items())]
    lines += [f"stand-in: {s.what}" for s in deployment.standins]
    for service in system.ecs.services:
        tasks = f"{len(service.tasks)} task{'s' if len(service.tasks) != 1 else ''}"
        if service.balancers:
            lines.append(f"{service.spec.role}: {service.balancers[0].url} ({tasks} behind a local load balancer)")
            continue
        if service.spec.role != roles.Role.WORKER:
            lines.append(f"{service.spec.role}: {tasks}")
            continue
        env = service.spec.env
        payment = float(env.get(contract.ENV_PAYMENT_SECONDS, contract.SERVICE_DEFAULTS.payment_seconds))
        lines.append(
            f"{service.spec.role}: {tasks}, {env.get(contract.ENV_WORKER_COUNT, '1')} concurrent payments of "
            f"{payment:g} s each"
        )
    lines.append(
        f"aws: {system.endpoints.data_plane} (ministack: SNS, SQS, DynamoDB, CloudWatch); "
        f"{system.endpoints.control_plane} (moto: ECS, ELBv2, IAM, auto-scaling, Lambda...)"
    )
    if system.console is not None:
        lines.append(f"live view: {system.console.url} (updated every second)")
    lines.append(f"logs: {system.logs}")
    lines.append(f"outputs: {system.outputs_file}")
    lines += [f"local only: {note}" for note in system.local_only()]
    return "\n".join(lines)


def up(args: LocalArgs, stop: threading.Event) -> int:
    with LocalSystem(args, on_event=lambda message: print(message, flush=True)) as system:
        print(describe(system))
        print("Ctrl-C stops everything.", flush=True)
        stop.wait()
        print("stopping...", flush=True)
    print("stopped.")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.local", description=__doc__.splitlines()[0])
    commands = p.add_subparsers(dest="command", required=True)
    start = commands.add_parser(
        "up",
        help="start the emulators, deploy the stack, run its services; Ctrl-C stops",
        description="Deploy a stack file to local emulators and run its services.",
    )
    start.add_argument("--stack", default="normal", help="the stack file Pulumi.STACK.yaml to deploy (%(default)s)")
    start.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, as `pulumi config set` would (repeatable), e.g. paymentSeconds=0.5",
    )
    start.add_argument("--workers", type=int, help="shorthand for --config workerCount=N")
    start.add_argument("--sync-port", type=int, default=0, help="the sync service's local URL port (default: free)")
    start.add_argument("--async-port", type=int, default=0, help="the receiver's local URL port (default: free)")
    start.add_argument("--emulator-port", type=int, default=0, help="ministack's port (default: a free one)")
    start.add_argument("--console-port", type=int, default=0, help="the live view's port (default: a free one)")
    start.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"logs and outputs (default {DEFAULT_DIR}/)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.workers is not None and args.workers < 1:
        p.error("--workers must be at least 1")
    try:
        config: dict[str, Any] = parse_overrides(args.config)
        if args.workers is not None:
            config["workerCount"] = args.workers
        _check_ports(
            {
                "--sync-port": args.sync_port,
                "--async-port": args.async_port,
                "--emulator-port": args.emulator_port,
                "--console-port": args.console_port,
            }
        )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        return up(
            LocalArgs(
                stack=args.stack,
                config=config,
                directory=args.dir,
                data_plane_port=args.emulator_port,
                ports={roles.Role.SYNC: args.sync_port, roles.Role.RECEIVER: args.async_port},
                console_port=args.console_port,
            ),
            stop,
        )
    except (LocalError, DeployError, EmulatorError, LocalEcsError, TaskError, ConsoleError) as error:
        print(f"{p.prog}: error: {error}", file=sys.stderr)
    except (BotoCoreError, ClientError) as error:
        print(f"{p.prog}: error: an emulator refused a call: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
