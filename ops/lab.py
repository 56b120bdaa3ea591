"""`python -m ops.lab`: the lab report's experiments, measured on this machine, as a Markdown report with plots.

Starts the local system as ops.local does (the normal stack deployed by the local deployer, its services on the local
ECS) with the flash-sale alarm profile, redeployed with `workerCount` N for each worker level as the report did, and
runs, with every duration divided and every rate multiplied by --time-scale K (so workers needed = rate x payment
time, and orders per test, stay the report's): Part I (the sync service, normal and flash-sale load), Part III/V (the async receiver under
the flash sale with 1, 5, 20, 100 and 200 workers; queue depth, drain, the worker's CPU and memory, next to
ops.capacity's predictions) while the expected-wait alarms fire and clear and their notifications are captured as a
person receives them. Everything it started is stopped on exit, on error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

from app import contract, settings
from local_runtime.console import ConsoleError
from local_runtime.deployer import DeployError
from local_runtime.ecs import LocalEcsError
from local_runtime.emulators import LOOPBACK, Emulator, EmulatorError, free_port
from local_runtime import metric_math
from local_runtime.queue_metrics import FEED_SECONDS
from local_runtime.system import LocalArgs, LocalError, LocalSystem
from local_runtime.tasks import TaskError
from ops import alarms, capacity, lab_report, loadtest, stack
from ops.lab_analysis import LevelWindow, epoch, in_queue, measure_level
from ops.lab_report import LATENCY_SECONDS, LabResult, LevelResult, Notification, PartResult
from ops.lab_watch import Watch, WatchArgs, queue_counts

STACK = "normal"  # deployed with the flash-sale alarm profile; its syncTaskCount is the report's 2 tasks
DEFAULT_SCALE = 2.0  # 120 orders/s: one receiver process beside ministack, the worker and Locust on 2 cores
SAMPLE_SECONDS = 0.25  # queue depth and worker CPU/RSS
QUIET_SECONDS = 2.0  # notifications: the inbox is read until it stays empty this long


@dataclass(frozen=True)
class LabArgs:
    results: Path
    time_scale: float = DEFAULT_SCALE
    sale_fraction: float = 1.0  # of the report's load durations (quick: fewer orders)
    levels: tuple[int, ...] = contract.REPORT_WORKER_LEVELS
    drain_limit_seconds: float = 150.0  # wall clock: longer drains are extrapolated from a window
    window_seconds: float = 10.0  # wall clock, after the sale, for extrapolated drains
    quick: bool = False


QUICK_CHANGES = ("each load runs a third of the report's duration (a 20 s sale: 1,200 orders instead of 3,600)",
                 "worker levels 1 and 200 only",
                 "the 1-worker drain is extrapolated from a 5 s window (default: drains predicted longer than 150 s "
                 "wall clock, from a 10 s window)")


class LabError(stack.OpsError):
    pass


def quick(args: LabArgs) -> LabArgs:
    """--quick: what QUICK_CHANGES says."""
    return replace(args, sale_fraction=1 / 3, levels=(1, 200), drain_limit_seconds=20.0, window_seconds=5.0,
                   quick=True)


def scaled(profile: loadtest.LoadProfile, args: LabArgs) -> loadtest.LoadProfile:
    """The report's profile in lab time: durations / K (rates x K are run_load's time_scale)."""
    return replace(profile, duration_seconds=profile.duration_seconds * args.sale_fraction / args.time_scale,
                   timeout_seconds=profile.timeout_seconds / args.time_scale)


def local_args(args: LabArgs, directory: Path, workers: int | None = None, console_port: int = 0) -> LocalArgs:
    """The stack as deployed, with the report's numbers scaled by K as config keys (as `pulumi config set` would set
    them: payment time, acceptable latency, and the level's workers per task) and, LOCAL ONLY, the sync service's
    request deadline scaled with them (the program leaves it at its default)."""
    d = contract.SERVICE_DEFAULTS
    config: dict[str, Any] = {"paymentSeconds": d.payment_seconds / args.time_scale, "alarmProfile": "flashsale",
                              "acceptableLatencySeconds": max(1, round(LATENCY_SECONDS / args.time_scale))}
    if workers is not None:
        config["workerCount"] = workers
    return LocalArgs(stack=STACK, config=config,
                     env_overrides={contract.ENV_REQUEST_TIMEOUT_SECONDS: repr(d.request_timeout_seconds / args.time_scale)},
                     directory=directory, feed_seconds=FEED_SECONDS / args.time_scale, console_port=console_port)


@dataclass
class Deployed:
    """One deployment of the stack for part of the lab, with the lab's instruments on it."""

    system: LocalSystem
    periods: dict[str, int]
    inbox: str

    @property
    def outputs(self) -> dict[str, Any]:
        return self.system.outputs

    def client(self, service: str) -> Any:
        return self.system.endpoints.client(service)

    @property
    def prefix(self) -> str:
        return str(self.outputs[contract.OUTPUT_ALARM_PREFIX])


class Lab:
    """The lab's runs, each on a fresh deployment of the stack (the report redeployed for every worker level: 5.1 step
    1); `run()` does the experiments in order."""

    def __init__(self, args: LabArgs, stack_: contextlib.ExitStack) -> None:
        self.args = args
        self.logs = args.results / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        stack.progress(f"lab: time scale {args.time_scale:g} (payment {3 / args.time_scale:g} s, flash sale "
                       f"{60 * args.sale_fraction / args.time_scale:g} s at {60 * args.time_scale:g} orders/s)")
        self.stack = stack_
        self.periods: dict[str, int] = {}
        # One pair of emulators for every deployment of the lab (starting them costs seconds each time).
        self.emulators = (stack_.enter_context(Emulator("ministack", log_path=self.logs / "ministack.log")),
                          stack_.enter_context(Emulator("moto", log_path=self.logs / "moto.log")))
        # One live view URL for the whole lab: each deployment serves it on the same port in turn.
        self.console_port = free_port()
        stack.progress(f"lab: live view at http://{LOOPBACK}:{self.console_port}/ (open it in a browser to watch; "
                       "it pauses while the stack is redeployed between parts)")

    @contextlib.contextmanager
    def _deploy(self, name: str, workers: int | None = None) -> Iterator[Deployed]:
        """`pulumi up` of the stack (locally), with `workerCount` set for a worker level; stopped on exit."""
        stack.progress(f"lab: deploying the {STACK} stack" + (f" with workerCount {workers}" if workers else ""))
        with LocalSystem(local_args(self.args, self.args.results / name, workers, self.console_port),
                         emulators=self.emulators) as system:
            os.environ.update(system.env())
            cloudwatch = system.endpoints.client("cloudwatch")
            prefix = str(system.outputs[contract.OUTPUT_ALARM_PREFIX])
            periods = alarms.shorten_periods(cloudwatch, prefix, self.args.time_scale)
            periods |= metric_math.shorten_periods(system.deployment.math_alarms, self.args.time_scale)
            self.periods = periods
            yield Deployed(system=system, periods=periods, inbox=self._inbox(system))

    def _inbox(self, system: LocalSystem) -> str:
        """A queue subscribed to the alerts topic: what a person's mailbox would receive (SNS envelope: subject)."""
        sqs, sns = system.endpoints.client("sqs"), system.endpoints.client("sns")
        topic = system.outputs[contract.OUTPUT_ALERTS_TOPIC_ARN]
        url = str(sqs.create_queue(QueueName="lab-inbox")["QueueUrl"])
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(contract.queue_policy(arn, topic))})
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        return url

    def run(self) -> LabResult:
        with self._deploy("sync") as deployed:
            parts = [self._part_one(deployed, name) for name in loadtest.PROFILE_NAMES]
            sync = deployed.system.ecs.service("sync")
            slots = len(sync.tasks) * int(sync.spec.env.get(contract.ENV_PAYMENT_SLOTS,
                                                            contract.SERVICE_DEFAULTS.payment_slots))
        levels = [self._level(workers) for workers in self.args.levels]
        return LabResult(args=self.args, parts=parts, levels=levels,
                         periods=self.periods, feed_seconds=FEED_SECONDS / self.args.time_scale,
                         sync_slots=slots, quick_changes=QUICK_CHANGES if self.args.quick else ())

    def _load(self, url: str, name: str, endpoint: str, directory: str) -> PartResult:
        profile = loadtest.profile(name, endpoint)
        result = loadtest.run_load(url, scaled(profile, self.args), self.args.results / directory,
                                   time_scale=self.args.time_scale)
        return PartResult(profile=profile, result=result,
                          records=loadtest.read_records(Path(result.files["requests_csv"])))

    def _part_one(self, deployed: Deployed, name: str) -> PartResult:
        stack.progress(f"lab: Part I, sync service, {name} profile")
        return self._load(deployed.outputs[contract.OUTPUT_SYNC_URL], name, "sync", f"sync-{name}")

    def _level(self, workers: int) -> LevelResult:
        args = self.args
        with self._deploy(f"async-{workers}-workers", workers) as deployed:
            stack.progress(f"lab: Part V, {workers} workers: flash sale on the async receiver")
            sqs, queue_url = deployed.client("sqs"), deployed.outputs[contract.OUTPUT_QUEUE_URL]
            (worker,) = deployed.system.ecs.service("worker").tasks  # the worker service's one task
            watch = Watch(WatchArgs(queue_url=queue_url, worker_pid=worker.pid, sample_seconds=SAMPLE_SECONDS),
                          sqs).start()
            try:
                part = self._load(deployed.outputs[contract.OUTPUT_ASYNC_URL], "flashsale", "async",
                                  f"async-{workers}-workers")
                sent = [r.sent_at for r in part.records if r.outcome != "not_sent"]
                sale_start, sale_end = min(sent), max(sent)
                prediction = self._plan().levels[args.levels.index(workers)]
                extrapolated = prediction.drain_seconds / args.time_scale > args.drain_limit_seconds
                observe_end = self._observe(watch, sale_end, prediction.drain_seconds / args.time_scale,
                                            extrapolated)
                if extrapolated:
                    stack.progress("lab: purging the rest of the queue (drain extrapolated)")
                    sqs.purge_queue(QueueUrl=queue_url)
                notifications = self._alarms_clear(deployed, sale_start)
                events = worker.events()
            finally:
                watch.stop()
        if watch.error:
            raise LabError(f"sampling the queue failed during the {workers}-worker run: {watch.error}")
        window = LevelWindow(sale_start, sale_end, contract.SERVICE_DEFAULTS.payment_seconds / args.time_scale,
                             observe_end, extrapolated)
        return LevelResult(workers=workers, part=part, prediction=prediction,
                           measure=measure_level(workers, window, events, watch.samples),
                           window=window, samples=watch.samples, notifications=notifications)

    def _plan(self) -> capacity.CapacityPlan:
        flash = loadtest.profile("flashsale", "async")
        return capacity.plan(capacity.PlanInputs(arrival_rate=flash.rate,
                                                 sale_seconds=flash.duration_seconds * self.args.sale_fraction,
                                                 worker_levels=self.args.levels))

    def _observe(self, watch: Watch, sale_end: float, predicted_drain: float, extrapolated: bool) -> float:
        """Wait for the drain (bounded) or, when it would take too long, for the observation window."""
        if extrapolated:
            stack.progress(f"lab: drain predicted {capacity.duration(predicted_drain)} wall clock: measuring "
                           f"{self.args.window_seconds:g} s at steady rate, then extrapolating")
            time.sleep(max(0.0, sale_end + self.args.window_seconds - time.time()))
            return time.time()
        deadline = sale_end + 2 * predicted_drain + 30
        next_report = 0.0
        while time.time() < deadline:
            sample = watch.latest()
            if sample is not None and sample.t > sale_end and in_queue(sample) == 0:
                return sample.t
            if sample is not None and time.time() >= next_report:
                stack.progress(f"lab: draining, {in_queue(sample):,} orders in the queue")
                next_report = time.time() + 10
            time.sleep(SAMPLE_SECONDS)
        raise LabError(f"the queue did not drain within {deadline - sale_end:.0f} s (predicted "
                       f"{predicted_drain:.0f} s); see {self.logs}")

    def _alarms_clear(self, deployed: Deployed, since: float) -> list[Notification]:
        """Wait until no alarm is in ALARM (the feeder keeps publishing the now empty queue), then read the inbox."""
        timeout = 3 * max(deployed.periods.values()) + 30
        deadline = time.time() + timeout
        cloudwatch = deployed.client("cloudwatch")
        while True:
            firing = [a["AlarmName"] for a in cloudwatch.describe_alarms(
                AlarmNamePrefix=f"{deployed.prefix}-", StateValue="ALARM")["MetricAlarms"]]
            if not firing:
                break
            if time.time() > deadline:
                raise LabError(f"alarms {', '.join(firing)} did not clear within {timeout:.0f} s of the empty queue")
            time.sleep(0.5)
        return self._read_inbox(deployed, since)

    def _read_inbox(self, deployed: Deployed, since: float) -> list[Notification]:
        found: list[Notification] = []
        quiet_until = time.time() + QUIET_SECONDS
        sqs = deployed.client("sqs")
        while time.time() < quiet_until:
            messages = sqs.receive_message(QueueUrl=deployed.inbox, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1).get("Messages", [])
            for message in messages:
                envelope = json.loads(message["Body"])
                found.append(Notification(at=epoch(envelope["Timestamp"]), since=since,
                                          subject=envelope.get("Subject", ""), body=envelope["Message"]))
                sqs.delete_message(QueueUrl=deployed.inbox, ReceiptHandle=message["ReceiptHandle"])
            if messages:
                quiet_until = time.time() + QUIET_SECONDS
        return sorted(found, key=lambda n: n.at)


def _interrupted(*_: Any) -> NoReturn:
    raise KeyboardInterrupt


def run_lab(args: LabArgs) -> LabResult:
    with contextlib.ExitStack() as stack_:
        return Lab(args, stack_).run()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ops.lab", description=__doc__.split("\n\n")[0])
    p.add_argument("--time-scale", type=float, default=DEFAULT_SCALE, metavar="K",
                   help="divide every duration and multiply every rate by K (default %(default)g)")
    p.add_argument("--quick", action="store_true", help="under 2 minutes, for CI: " + "; ".join(QUICK_CHANGES))
    p.add_argument("--results", type=Path, help="results folder (default results/lab-<timestamp>/)")
    stack.add_json_argument(p)
    return p


def command(ns: argparse.Namespace) -> int:
    if not 1 <= ns.time_scale <= 20:
        raise LabError("--time-scale must be within 1..20 (above 20 the emulator cannot carry the rates)")
    results = ns.results or Path("results") / f"lab-{datetime.now():%Y%m%d-%H%M%S}"
    args = LabArgs(results=results.resolve(), time_scale=ns.time_scale)
    args = quick(args) if ns.quick else args
    signal.signal(signal.SIGTERM, _interrupted)
    started = time.monotonic()
    try:
        result = run_lab(args)
    except (LocalError, DeployError, EmulatorError, LocalEcsError, TaskError, ConsoleError,
            settings.SettingsError) as e:
        raise LabError(str(e)) from None
    files = lab_report.write(result, args.results)
    elapsed = time.monotonic() - started
    summary = lab_report.summary(result) | {"results": str(args.results), "files": files,
                                            "elapsed_seconds": round(elapsed, 1)}
    stack.emit(ns, summary, lab_report.console(result, files, elapsed))
    return 0


def main(argv: list[str] | None = None) -> int:
    return stack.run(parser(), command, argv)


if __name__ == "__main__":
    sys.exit(main())
