"""The local system: the emulators, the Pulumi program deployed to them, and its ECS services running as processes.

`LocalSystem` starts ministack and moto's server on 127.0.0.1, deploys a stack file through the local deployer
(what `pulumi up -s STACK` would create), runs the deployed ECS services on the local ECS, and does what AWS does by
itself and the emulators do not (LOCAL ONLY, each said when it starts):
- publish the queues' AWS/SQS metrics and the services' Container Insights RunningTaskCount (the local ECS's real
  processes) to CloudWatch, so the real alarms evaluate (`bench.localaws.queue_metrics`);
- evaluate the alarms defined by metric math (the expected-wait pages), which ministack never evaluates
  (`bench.localaws.metric_math`);
- extract the metrics in the tasks' Embedded Metric Format log lines (the buyers' wait), as CloudWatch Logs does and
  ministack does not, and apply the missing-data rule to the alarms on them, which ministack skips
  (`bench.localaws.emf`);
- invoke the alarm notifier: a process running the notifier's module with the Lambda's environment as deployed,
  reading the queue that stands in for the Lambda's subscription;
- run the scheduled Lambdas (the orphan sweeper): a process calling the function's handler with its environment as
  deployed, at start and then on the rule's period (`bench.localaws.scheduled`);
- mute the DLQ alarm's actions: ministack evaluates alarms over every series of a metric name whatever their
  dimensions, so it would see the order queue's depth (on AWS it watches only the DLQ).
It writes the stack outputs (`pulumi stack output --json`, the URLs pointing at the local load balancers) plus the
emulators' endpoints to DIR/outputs.json, which every ops command reads with `--outputs`, and serves the live view
(`bench.localaws.console`: a page and its JSON, on 127.0.0.1). Used by `bench.local up`, the lab, the benchmarks and
the tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app import alarm_catalogue
from bench.localaws import emf, iam_gate, metric_math, queue_metrics
from bench.localaws.autoscaling import LocalAutoScaling
from bench.localaws.console import Console
from bench.localaws.credentials import lambda_environment
from bench.localaws.deployer import Deployment, Endpoints, deploy
from bench.localaws.ecs import PASS_THROUGH, LocalEcs
from bench.localaws.ecs_api import EcsApi
from bench.localaws.emulators import MUTED_ALARM_KEYS, MUTED_ALARM_REASON, Emulator
from bench.localaws.logtail import LogTail
from bench.localaws.relay import RELAYED, Alert
from bench.localaws.resources.registry import Relay, Schedule
from components.alerts import NOTIFIER_HANDLER
from stackconfig import output_names
from stackconfig.files import ROOT

QUEUE = "aws:sqs/queue:Queue"
DEFAULT_DIR = Path(".local")
ALERTS_KEPT = 50  # the relayed alerts the live view can show


class LocalError(RuntimeError):
    pass


@dataclass(frozen=True)
class LocalArgs:
    stack: str = "normal"
    config: Mapping[str, Any] = field(default_factory=dict)  # config overrides by key, e.g. {"workerCount": 200}
    env_overrides: Mapping[str, str] = field(default_factory=dict)  # LOCAL ONLY task settings (the lab's time scale)
    directory: Path = DEFAULT_DIR
    data_plane_port: int = 0  # ministack's port; 0 picks a free one
    ports: Mapping[str, int] = field(default_factory=dict)  # role -> its load balancer's port
    feed_seconds: float = queue_metrics.FEED_SECONDS
    mute_dlq_alarm: bool = True
    autoscaling: bool = False  # run the LOCAL MODEL of Application Auto Scaling (bench.localaws.autoscaling)
    time_scale: float = 1.0  # the model's clock: its 60 s evaluation period and cooldowns divided by this
    task_startup_seconds: float = 0.0  # a new task's provisioning before its process starts (Fargate takes ~1 min)
    console_port: int | None = 0  # the live view's port; 0 picks a free one, None serves no live view


def mute_false_dlq_alarm(outputs: Mapping[str, Any], cloudwatch: Any) -> str | None:
    """LOCAL ONLY: see the module docstring. Returns the muted alarm's name (None when the stack has no DLQ alarm)."""
    (key,) = MUTED_ALARM_KEYS
    name = alarm_catalogue.alarm_name(str(outputs[output_names.ALARM_PREFIX]), key)
    if not cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"]:
        return None
    cloudwatch.disable_alarm_actions(AlarmNames=[name])
    return name


class LocalSystem:
    """Use as a context manager: everything it started is stopped on exit, on error and on Ctrl-C."""

    def __init__(
        self,
        args: LocalArgs,
        on_event: Callable[[str], None] = lambda message: None,
        emulators: tuple[Emulator, Emulator] | None = None,
    ) -> None:
        """`emulators` (ministack, moto) already running are used instead of starting new ones: the data plane is
        reset first, the control plane keeps what earlier deploys made (their names are their own)."""
        self.args = args
        self._given = emulators
        self.on_event = on_event
        self.logs = args.directory.resolve() / "logs"
        self.outputs_file = args.directory.resolve() / "outputs.json"
        self._stack = contextlib.ExitStack()
        self._stop = threading.Event()
        self.deployment: Deployment
        self.ecs: LocalEcs
        self.outputs: dict[str, Any] = {}
        self.muted: str | None = None
        self.autoscaling: LocalAutoScaling | None = None
        self.relays: list[subprocess.Popen[bytes]] = []
        self.scheduled: list[subprocess.Popen[bytes]] = []
        self.alerts: deque[Alert] = deque(maxlen=ALERTS_KEPT)
        self._relay_logs: list[LogTail] = []
        self._alerts_lock = threading.Lock()
        self.console: Console | None = None
        self.emf = emf.EmfExtractor()
        self.iam = iam_gate.Account([], [])  # what the tasks did with IAM, once the system stopped

    @property
    def endpoints(self) -> Endpoints:
        return self.deployment.endpoints

    def env(self) -> dict[str, str]:
        """For this process's or a child's boto3: the emulators' endpoints and dummy credentials."""
        return self.endpoints.env()

    def start(self) -> LocalSystem:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        if self._given is not None:
            data, control = self._given
            data.reset()
        else:
            data = self._stack.enter_context(
                Emulator("ministack", port=self.args.data_plane_port, log_path=_fresh(self.logs / "ministack.log"))
            )
            control = self._stack.enter_context(Emulator("moto", log_path=_fresh(self.logs / "moto.log")))
        self.deployment = deploy(
            self.args.stack, Endpoints(data.endpoint_url, control.endpoint_url), overrides=self.args.config
        )
        if not self.deployment.ok:
            raise LocalError(f"the program does not deploy:\n{self.deployment.summary()}")
        # Registered before anything that runs tasks, so it runs after they stopped: every call they made is in.
        seen_before = iam_gate.ledger().seen()
        self._stack.callback(self._account_iam, seen_before)
        ecs_api = EcsApi(control.endpoint_url, self._task_counts).start()
        self._stack.callback(ecs_api.stop)
        self.deployment.endpoints = replace(self.deployment.endpoints, ecs_api=ecs_api.url)
        if self.args.mute_dlq_alarm:
            self.muted = mute_false_dlq_alarm(self.deployment.outputs, self.endpoints.client("cloudwatch"))
        self.ecs = LocalEcs(
            self.deployment,
            self.logs,
            overrides=self.args.env_overrides,
            on_event=self.on_event,
            ports=self.args.ports,
            startup_seconds=self.args.task_startup_seconds,
        )
        self._stack.callback(self.ecs.stop)
        self.ecs.start()
        self.outputs = self.ecs.local_outputs(self.deployment.stack_outputs())
        if self.muted:
            self.outputs[output_names.LOCAL_CAVEATS][output_names.CAVEAT_MUTED_ALARMS] = {
                key: MUTED_ALARM_REASON for key in MUTED_ALARM_KEYS
            }
        self.outputs_file.write_text(json.dumps(self.outputs, indent=2, default=str) + "\n")
        self.relays = [self._relay(relay) for relay in self.deployment.relays]
        self.scheduled = [self._scheduled(schedule) for schedule in self.deployment.schedules]
        self._relay_logs = [LogTail(self.logs / f"{relay.function_name}.log") for relay in self.deployment.relays]
        feeder = threading.Thread(target=self._feed, name="local-metrics", daemon=True)
        feeder.start()
        if self.args.autoscaling:
            model = LocalAutoScaling(self.deployment, time_scale=self.args.time_scale, on_event=self.on_event)
            self.autoscaling = model
            threading.Thread(target=self._scale, args=(model,), name="local-autoscaling", daemon=True).start()
        self._stack.callback(self._stop.set)
        if self.args.console_port is not None:
            self.console = Console(self, port=self.args.console_port).start()
            self._stack.callback(self.console.stop)

    def _task_counts(self, cluster: str, name: str) -> tuple[int, int] | None:
        """What the local ECS runs of a service, for the ECS API facade: (running and healthy, starting)."""
        ecs: LocalEcs | None = getattr(self, "ecs", None)  # None while the local ECS is being made
        service = (
            next((s for s in ecs.services if s.name == name and cluster.endswith(s.cluster.rsplit("/", 1)[-1])), None)
            if ecs is not None
            else None
        )
        if ecs is None or service is None:
            return None
        running = len(service.healthy())
        return running, len(service.tasks) - running + ecs.provisioning(service)

    def _relay(self, relay: Relay) -> subprocess.Popen[bytes]:
        """The notifier Lambda, invoked locally: the relay polls the stand-in queue, with the function's env."""
        if relay.handler != NOTIFIER_HANDLER:
            raise LocalError(
                f"Lambda {relay.function_name}: no local relay for handler {relay.handler} "
                f"(bench.localaws.relay stands in for {NOTIFIER_HANDLER})"
            )
        command = ["bench.localaws.relay", "--queue-url", relay.queue_url, "--wait", "1"]
        command += ["--stand-in-endpoint", self.endpoints.data_plane]  # the queue is the local stand-in's, not its own
        return self._function_process(relay.function_name, relay.role_arn, relay.environment, command)

    def _scheduled(self, schedule: Schedule) -> subprocess.Popen[bytes]:
        """A Lambda an EventBridge schedule runs, run locally: its handler at start, then once per period."""
        command = ["bench.localaws.scheduled", "--handler", schedule.handler, "--every", str(schedule.every_seconds)]
        return self._function_process(schedule.function_name, schedule.role_arn, schedule.environment, command)

    def _function_process(
        self, function_name: str, role_arn: str, environment: Mapping[str, str], module_and_args: list[str]
    ) -> subprocess.Popen[bytes]:
        """A local process standing in for a Lambda: `python -m MODULE ARGS` with the function's environment as
        deployed, its role's keys (as Lambda gives them) and the endpoints a task gets (HTTPS, IAM enforced), logging
        to LOGS/<function name>.log; stopped with the system."""
        env = {key: os.environ[key] for key in PASS_THROUGH if key in os.environ}
        env |= {**environment, **self.endpoints.task_env()}
        env |= lambda_environment(role_arn, sts_endpoint=self.endpoints.control_plane, region=self.endpoints.region)
        log = open(_fresh(self.logs / f"{function_name}.log"), "ab")
        self._stack.callback(log.close)
        process = subprocess.Popen(
            [sys.executable, "-m", *module_and_args],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._stack.callback(_stop_process, process)
        return process

    def _feed(self) -> None:
        """LOCAL ONLY: the queues' metrics, every feed_seconds, until stopped; and relayed alerts as events."""
        sqs, cloudwatch = self.endpoints.client("sqs"), self.endpoints.client("cloudwatch")
        samplers = [queue_metrics.QueueSampler(r.outputs["url"]) for r in self.deployment.of_type(QUEUE)]
        while not self._stop.wait(self.args.feed_seconds):
            try:
                queue_metrics.publish(sqs, cloudwatch, samplers)
                queue_metrics.publish_task_counts(
                    cloudwatch,
                    {
                        (service.cluster.rsplit("/", 1)[-1], service.name): len(service.running())
                        for service in self.ecs.services
                    },
                )
                metric_math.evaluate_math_alarms(cloudwatch, self.deployment.math_alarms)
                self.emf.publish(cloudwatch, [log for service in self.ecs.services for log in list(service.logs)])
                emf.apply_missing_data(cloudwatch, self.emf.namespaces)
            except (BotoCoreError, ClientError) as error:  # the emulator may be going away (Ctrl-C)
                self.on_event(f"local metrics: round skipped: {error}")
            self.read_alerts()

    def _scale(self, model: LocalAutoScaling) -> None:
        """LOCAL MODEL: Application Auto Scaling acting on the declared policies and scheduled actions."""
        while not self._stop.wait(1.0):
            try:
                model.tick()
            except (BotoCoreError, ClientError) as error:
                self.on_event(f"auto-scaling (local model): round skipped: {error}")

    def read_alerts(self) -> list[Alert]:
        """The alerts relayed since the last call (the feeder and the live view both ask): kept in `alerts`, and
        each announced once as an event."""
        with self._alerts_lock:
            new = [
                Alert(time.time(), line.removeprefix(RELAYED))
                for log in self._relay_logs
                for line in log.lines()
                if line.startswith(RELAYED)
            ]
            self.alerts.extend(new)
        for alert in new:
            self.on_event(f"alert: {alert.subject}")
        return new

    def local_only(self) -> list[str]:
        """What this runtime does that AWS does by itself, for people."""
        notes = [
            f"queue metrics and running task counts fed to CloudWatch every {self.args.feed_seconds:g} s "
            "(ministack emits none); metric-math alarms evaluated by the local runtime (ministack does not)",
            "metrics in the tasks' Embedded Metric Format log lines extracted by the local runtime, and the "
            "missing-data rule applied to their alarms (ministack does neither)",
        ]
        notes += [
            f"Lambda {r.function_name} invoked by a local process reading {r.queue_url.rsplit('/', 1)[-1]}"
            for r in self.deployment.relays
        ]
        notes += [
            f"Lambda {s.function_name} run by a local process at start and every {s.every_seconds} s "
            "(moto never fires EventBridge schedules)"
            for s in self.deployment.schedules
        ]
        if self.muted:
            notes.append(f"{self.muted} muted ({MUTED_ALARM_REASON})")
        if self.args.autoscaling:
            notes.append(
                "auto-scaling: a LOCAL MODEL of Application Auto Scaling acts on the declared target "
                "tracking, guardrail and scheduled actions (moto stores them and never acts)"
            )
        if self.args.task_startup_seconds:
            notes.append(
                f"new tasks start {self.args.task_startup_seconds:g} s after they are wanted (Fargate's provisioning)"
            )
        if self.args.env_overrides:
            notes.append(
                "task settings overridden: " + ", ".join(f"{k}={v}" for k, v in self.args.env_overrides.items())
            )
        return notes

    def _account_iam(self, seen_before: Counter[tuple[str, str, str, bool]]) -> None:
        """IAM as the tasks met it: written to iam.json; a refused call fails the system's run (LocalError)."""
        usage = iam_gate.ledger().usage_since(seen_before)
        ecs: LocalEcs | None = getattr(self, "ecs", None)  # None when the start failed before the local ECS was made
        roles = [s.spec.task_role_arn for s in (ecs.services if ecs else []) if s.spec.task_role_arn]
        roles += [relay.role_arn for relay in self.deployment.relays]
        roles += [schedule.role_arn for schedule in self.deployment.schedules]
        self.iam = iam_gate.Account.of(usage, iam_gate.Policies(self.endpoints.control_plane), roles)
        (self.args.directory.resolve() / "iam.json").write_text(json.dumps(asdict(self.iam), indent=2) + "\n")
        if self.iam.refused:
            raise LocalError("IAM refused calls the services made:\n  " + "\n  ".join(self.iam.refused))

    def stop(self) -> None:
        self._stop.set()
        self._stack.close()

    def __enter__(self) -> LocalSystem:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _fresh(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    return path


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
