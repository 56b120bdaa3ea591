"""`python -m ops.local up`: the whole system on this machine, as it runs on AWS, until Ctrl-C.

Starts ministack on 127.0.0.1, runs the bootstrap (the same resources as the Pulumi program), then the sync service,
the async receiver and one worker process with --workers concurrent payments. moto's server stands in for the
worker service's ECS + Application Auto Scaling control plane (ministack has no auto-scaling), so `ops.prescale`
works locally too: it changes the recorded desired count and limits, not the one local worker process. Service settings such as
PAYMENT_SECONDS pass through from the environment. Ctrl-C or SIGTERM stops everything it started.

Two things AWS does by itself are done here by a background thread, for the local runtime only: publishing the
queues' AWS/SQS metrics to CloudWatch (ops.queue_metrics), so the real alarms evaluate, and running the alarm
notifier (app.notifier's relay; a Lambda on AWS), whose readable alerts are printed as they are sent.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from app import aws, contract, notifier, settings
from ops import queue_metrics
from ops.bootstrap import (DEFAULT_PREFIX, BootstrapArgs, bootstrap, bootstrap_worker_service, control_plane_env,
                           mute_false_dlq_alarm)
from ops.emulators import Emulator, EmulatorError, port_in_use
from ops.stack import LOCAL_ENDPOINT_KEY, LOCAL_SERVICE_ENDPOINTS_KEY
from ops.services import Service, ServiceArgs, ServiceError, service_env

DEFAULT_DIR = Path(".local")
POLL_SECONDS = 0.5
METRICS_SECONDS = 10.0  # how often the local runtime feeds AWS/SQS metrics to CloudWatch


@dataclass(frozen=True)
class LocalArgs:
    workers: int = contract.CONFIG_DEFAULTS["workerCount"]
    sync_port: int = 0
    async_port: int = 0
    emulator_port: int = 0
    directory: Path = DEFAULT_DIR
    profile: str = contract.DEFAULT_ALARM_PROFILE


def run_local_alarms(outputs: dict[str, str], stop: threading.Event, interval: float = METRICS_SECONDS) -> None:
    """LOCAL ONLY, until `stop`: feed the queues' metrics to CloudWatch and relay alarm messages to the alerts topic.

    The emulator may be going away while this runs (Ctrl-C), so a failed round is skipped, not fatal.
    """
    sqs, sns, cloudwatch = aws.client("sqs"), aws.client("sns"), aws.client("cloudwatch")
    samplers = [queue_metrics.QueueSampler(outputs[contract.OUTPUT_QUEUE_URL]),
                queue_metrics.QueueSampler(outputs[contract.OUTPUT_DLQ_URL])]
    while not stop.wait(interval):
        try:
            queue_metrics.publish(sqs, cloudwatch, samplers)
            notifier.relay(sqs, sns, outputs[contract.OUTPUT_ALARM_EVENTS_QUEUE_URL],
                           outputs[contract.OUTPUT_ALERTS_TOPIC_ARN], wait_seconds=0)
        except (BotoCoreError, ClientError) as e:
            print(f"local alarms: round skipped: {e}", file=sys.stderr, flush=True)


class LocalError(RuntimeError):
    pass


def _check_ports(args: LocalArgs) -> None:
    for flag, port in (("--sync-port", args.sync_port), ("--async-port", args.async_port),
                       ("--emulator-port", args.emulator_port)):
        if port and port_in_use(port):
            raise LocalError(f"port {port} ({flag}) is taken: stop what uses it or choose another port")


def up(args: LocalArgs, stop: threading.Event) -> int:
    """Start everything, print where it is, wait for `stop` (or a child's death), stop everything."""
    _check_ports(args)
    payment_seconds = settings.payment().seconds  # validates PAYMENT_SECONDS & co. before anything starts
    logs = args.directory.resolve() / "logs"
    outputs_file = args.directory.resolve() / "outputs.json"
    with contextlib.ExitStack() as stack:
        emulator = stack.enter_context(Emulator("ministack", port=args.emulator_port,
                                                log_path=_fresh(logs / "ministack.log")))
        control_plane = stack.enter_context(Emulator("moto", log_path=_fresh(logs / "moto.log")))
        os.environ.update(emulator.env() | control_plane_env(control_plane.endpoint_url))
        outputs = bootstrap(BootstrapArgs(prefix=DEFAULT_PREFIX, profile=args.profile))
        outputs |= bootstrap_worker_service(DEFAULT_PREFIX)
        muted = mute_false_dlq_alarm(DEFAULT_PREFIX)
        env = service_env(emulator.env(), outputs, {contract.ENV_WORKER_COUNT: str(args.workers)})
        services = [
            stack.enter_context(Service(ServiceArgs(role, env, _fresh(logs / f"{role}.log"), port)))
            for role, port in (("sync", args.sync_port), ("receiver", args.async_port), ("worker", 0))
        ]
        sync, receiver, worker = services
        outputs |= {contract.OUTPUT_SYNC_URL: sync.url, contract.OUTPUT_ASYNC_URL: receiver.url,
                    contract.OUTPUT_WORKER_COUNT: args.workers, contract.OUTPUT_PAYMENT_SECONDS: payment_seconds,
                    LOCAL_ENDPOINT_KEY: emulator.endpoint_url,
                    LOCAL_SERVICE_ENDPOINTS_KEY: control_plane_env(control_plane.endpoint_url)}
        outputs_file.write_text(json.dumps(outputs, indent=2) + "\n")
        print(f"sync: {sync.url}")
        print(f"async: {receiver.url}")
        print(f"worker: {args.workers} concurrent payments of {payment_seconds:g}s (pid {worker.pid})")
        print(f"aws: {emulator.endpoint_url} (ministack); ECS + auto-scaling control plane: "
              f"{control_plane.endpoint_url} (moto)")
        print(f"logs: {logs}")
        print(f"outputs: {outputs_file}")
        print(f"alarms: profile {args.profile}; queue metrics fed every {METRICS_SECONDS:g}s (local only), "
              f"alerts printed here as relayed; {muted} muted (ministack ignores alarm dimensions)")
        print("Ctrl-C stops everything.", flush=True)
        alarms_stop = threading.Event()
        stack.callback(alarms_stop.set)
        threading.Thread(target=run_local_alarms, args=(outputs, alarms_stop), daemon=True,
                         name="local-alarms").start()
        while not stop.wait(POLL_SECONDS):
            dead = [s for s in services if s.process is not None and s.process.poll() is not None]
            if dead:
                raise LocalError(f"{dead[0].role} exited with code {dead[0].process.returncode}; "  # type: ignore[union-attr]
                                 f"see {dead[0].log_path}")
        print("stopping...", flush=True)
    print("stopped.")
    return 0


def _fresh(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.local", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="start emulator, bootstrap and services; Ctrl-C stops them")
    start.add_argument("--workers", type=int, default=LocalArgs.workers,
                       help=f"concurrent payments in the worker (default {LocalArgs.workers})")
    start.add_argument("--sync-port", type=int, default=0, help="sync service port (default: a free one)")
    start.add_argument("--async-port", type=int, default=0, help="async receiver port (default: a free one)")
    start.add_argument("--emulator-port", type=int, default=0, help="ministack port (default: a free one)")
    start.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"logs and outputs (default {DEFAULT_DIR}/)")
    start.add_argument("--profile", default=contract.DEFAULT_ALARM_PROFILE, choices=sorted(contract.ALARM_PROFILES),
                       help="alarm thresholds")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        return up(LocalArgs(workers=args.workers, sync_port=args.sync_port, async_port=args.async_port,
                            emulator_port=args.emulator_port, directory=args.dir, profile=args.profile), stop)
    except (LocalError, EmulatorError, ServiceError, settings.SettingsError) as e:
        print(f"error: {e}", file=sys.stderr)
    except (BotoCoreError, ClientError) as e:
        print(f"error: bootstrap failed: {e}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
