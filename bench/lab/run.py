"""`python -m bench.lab`: the lab report's experiments, measured on this machine, as a Markdown report with plots.

Starts the local system as bench.local does (the normal stack deployed by the local deployer, its services on the local
ECS) with the flash-sale alarm profile, redeployed with `workerCount` N for each worker level as the report did, and
runs, with every duration divided and every rate multiplied by --time-scale K (so workers needed = rate x payment
time, and orders per test, stay the report's): Part I (the sync service, normal and flash-sale load), Part III/V (the
async receiver under
the flash sale with 1, 5, 20, 100 and 200 workers; queue depth, drain, the worker's CPU and memory, next to
ops.capacity's predictions) while the expected-wait alarms fire and clear and their notifications are captured as a
person receives them, and Part VI (the same sale under each scaling strategy: fixed, auto-scaled by the local model of
Application Auto Scaling, pre-scaled by ops.prescale, scheduled by the sale calendar; waits until paid, backlog, tasks
and the bill, next to planning.strategies' predictions). Everything it started is stopped on exit, on error and on
Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from app import contract, roles, settings
from bench import docs
from bench.lab import post_sale
from bench.lab import report as lab_report
from bench.lab import strategies as lab_strategies
from bench.lab.analysis import LevelWindow, epoch, in_queue, measure_level
from bench.lab.args import DEFAULT_SCALE, LabArgs
from bench.lab.post_sale import PostSale
from bench.lab.report import LATENCY_SECONDS, LabResult, LevelResult, Notification, PartResult
from bench.lab.strategies import OrderTimes, StrategyRun
from bench.lab.watch import Watch, WatchArgs
from bench.localaws import iam_gate, metric_math
from bench.localaws.autoscaling import declared_scaling
from bench.localaws.console import ConsoleError
from bench.localaws.deployer import DeployError
from bench.localaws.ecs import LocalEcsError, LocalService
from bench.localaws.emulators import LOOPBACK, Emulator, EmulatorError, free_port
from bench.localaws.queue_metrics import FEED_SECONDS
from bench.localaws.system import LocalArgs, LocalError, LocalSystem
from bench.localaws.tasks import TaskError
from ops import alarms, cost, loadtest, stack
from planning import calendar, capacity, scaling, strategies
from planning.strategies import Strategy
from stackconfig import files, output_names, schema
from stackconfig.schema import SALES_KEY, Sale

STACK = "normal"  # deployed with the flash-sale alarm profile; its syncTaskCount is the report's 2 tasks
# --quick runs at 120 orders/s: it runs in CI beside pip's and pytest's own work, and its physics is asserted.
QUICK_SCALE = 2.0
SAMPLE_SECONDS = 0.25  # queue depth and worker CPU/RSS
QUIET_SECONDS = 2.0  # notifications: the inbox is read until it stays empty this long
LAB_LEAD_SECONDS = schema.least("saleLeadSeconds")  # the calendar's lead in the lab (wall clock): the least allowed
SALE_MARGIN_SECONDS = 10.0  # wall clock: the scheduled sale starts this long after its tasks should run
HEALTHY_SECONDS = 30.0  # wall clock: raised tasks still starting at the sale's start may take this long more


def stack_service(startup_seconds: float) -> tuple[strategies.WorkerService, calendar.CalendarInputs]:
    """The lab stack's worker service as its stack file declares it (report time)."""
    path = files.stack_file(STACK)
    try:
        inputs = calendar.inputs_of(schema.load_stack_file(path))
    except schema.ConfigError as error:
        raise stack.OpsError(str(error)) from None
    return strategies.WorkerService(
        workers_per_task=inputs.workers_per_task,
        payment_seconds=inputs.payment_seconds,
        normal_tasks=inputs.min_tasks,
        max_tasks=inputs.max_tasks,
        startup_seconds=startup_seconds,
    ), inputs


QUICK_SALE_FRACTION = 1 / 3
QUICK_STARTUP_SECONDS = 10.0
QUICK_CHANGES = (
    "each load runs a third of the report's duration (a 20 s sale: 1,200 orders instead of 3,600)",
    "Part I under the flash-sale load only",
    "Part V at the stack's own worker count only (20 workers, also Part VI's fixed strategy); its drain "
    "extrapolated from a 5 s window (default: drains predicted longer than 150 s wall clock, from a 10 s "
    "window)",
    f"Part VI: fixed and pre-scaled only, new tasks starting {QUICK_STARTUP_SECONDS:g} s after they are "
    f"wanted (default {scaling.FARGATE_STARTUP_SECONDS:g} s)",
)


class LabError(stack.OpsError):
    pass


def quick(args: LabArgs) -> LabArgs:
    """--quick: what QUICK_CHANGES says."""
    service, _ = stack_service(QUICK_STARTUP_SECONDS)
    return replace(
        args,
        sale_fraction=QUICK_SALE_FRACTION,
        profiles=("flashsale",),
        levels=(service.workers_per_task,),
        strategies=(Strategy.FIXED, Strategy.PRE_SCALED),
        startup_seconds=QUICK_STARTUP_SECONDS,
        drain_limit_seconds=20.0,
        window_seconds=5.0,
        quick=True,
    )


def scaled(profile: loadtest.LoadProfile, args: LabArgs) -> loadtest.LoadProfile:
    """The report's profile in lab time: durations / K (rates x K are run_load's time_scale)."""
    return replace(
        profile,
        duration_seconds=profile.duration_seconds * args.sale_fraction / args.time_scale,
        timeout_seconds=profile.timeout_seconds / args.time_scale,
    )


@dataclass(frozen=True)
class Deployment:
    """What one deployment of the lab changes in the stack."""

    name: str
    workers: int | None = None  # workerCount, for a Part V level
    autoscaling: bool = False  # the local model of Application Auto Scaling acts (Part VI)
    sale: Sale | None = None  # in the stack's `sales` calendar (the scheduled strategy)


def local_args(args: LabArgs, directory: Path, deployment: Deployment, console_port: int = 0) -> LocalArgs:
    """The stack as deployed, with the report's numbers scaled by K as config keys (as `pulumi config set` would set
    them: payment time, acceptable latency, the level's workers per task, a calendar's sale and its lead) and,
    LOCAL ONLY, the sync service's request deadline scaled with them (the program leaves it at its default)."""
    d = contract.SERVICE_DEFAULTS
    config: dict[str, Any] = {
        "paymentSeconds": d.payment_seconds / args.time_scale,
        "alarmProfile": "flashsale",
        "acceptableLatencySeconds": max(1, round(LATENCY_SECONDS / args.time_scale)),
    }
    if deployment.workers is not None:
        config["workerCount"] = deployment.workers
    if deployment.sale is not None:
        config[SALES_KEY] = [deployment.sale.model_dump(mode="json", exclude_none=True)]
        config["saleLeadSeconds"] = LAB_LEAD_SECONDS
    return LocalArgs(
        stack=STACK,
        config=config,
        env_overrides={contract.ENV_REQUEST_TIMEOUT_SECONDS: repr(d.request_timeout_seconds / args.time_scale)},
        directory=directory,
        feed_seconds=FEED_SECONDS / args.time_scale,
        console_port=console_port,
        autoscaling=deployment.autoscaling,
        time_scale=args.time_scale,
        task_startup_seconds=args.startup_seconds / args.time_scale,
    )


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
        return str(self.outputs[output_names.ALARM_PREFIX])


class Lab:
    """The lab's runs, each on a fresh deployment of the stack (the report redeployed for every worker level: 5.1 step
    1); `run()` does the experiments in order."""

    def __init__(self, args: LabArgs, stack_: contextlib.ExitStack) -> None:
        self.args = args
        self.logs = args.results / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        stack.progress(f"lab: time scale {args.time_scale:g} ({lab_report.in_lab_time(args)})")
        self.service, self.stack_inputs = stack_service(args.startup_seconds)
        self.stack = stack_
        self.periods: dict[str, int] = {}
        self.iam: list[iam_gate.Account] = []  # each deployment's, once it stopped
        # One pair of emulators for every deployment of the lab (starting them costs seconds each time).
        self.emulators = (
            stack_.enter_context(Emulator("ministack", log_path=self.logs / "ministack.log")),
            stack_.enter_context(Emulator("moto", log_path=self.logs / "moto.log")),
        )
        # One live view URL for the whole lab: each deployment serves it on the same port in turn.
        self.console_port = free_port()
        stack.progress(
            f"lab: live view at http://{LOOPBACK}:{self.console_port}/ (open it in a browser to watch; "
            "it pauses while the stack is redeployed between parts)"
        )

    @contextlib.contextmanager
    def _deploy(self, deployment: Deployment) -> Iterator[Deployed]:
        """`pulumi up` of the stack (locally), with the deployment's config; stopped on exit."""
        changes = [f"workerCount {deployment.workers}"] if deployment.workers else []
        changes += ["auto-scaling (local model)"] if deployment.autoscaling else []
        changes += [f"sale {deployment.sale.name} in its calendar"] if deployment.sale else []
        stack.progress(f"lab: deploying the {STACK} stack" + (f" with {', '.join(changes)}" if changes else ""))
        with LocalSystem(
            local_args(self.args, self.args.results / deployment.name, deployment, self.console_port),
            emulators=self.emulators,
        ) as system:
            os.environ.update(system.env())
            cloudwatch = system.endpoints.client("cloudwatch")
            prefix = str(system.outputs[output_names.ALARM_PREFIX])
            periods = alarms.shorten_periods(cloudwatch, prefix, self.args.time_scale)
            periods |= metric_math.shorten_periods(system.deployment.math_alarms, self.args.time_scale)
            if system.autoscaling is not None and system.autoscaling.guardrail_alarm:  # not a page: its own name
                (guardrail,) = cloudwatch.describe_alarms(AlarmNames=[system.autoscaling.guardrail_alarm])[
                    "MetricAlarms"
                ]
                alarms.reput(cloudwatch, guardrail, Period=max(1, round(guardrail["Period"] / self.args.time_scale)))
            self.periods = periods
            yield Deployed(system=system, periods=periods, inbox=self._inbox(system))
        self.iam.append(system.iam)  # once stopped: a refused call has failed the lab already (LocalError)

    def _inbox(self, system: LocalSystem) -> str:
        """A queue subscribed to the alerts topic: what a person's mailbox would receive (SNS envelope: subject)."""
        sqs, sns = system.endpoints.client("sqs"), system.endpoints.client("sns")
        topic = system.outputs[output_names.ALERTS_TOPIC_ARN]
        url = str(sqs.create_queue(QueueName="lab-inbox")["QueueUrl"])
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(contract.queue_policy(arn, topic))})
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
        return url

    def run(self) -> LabResult:
        runs: dict[Strategy, StrategyRun] = {}
        post: PostSale | None = None  # ops.report on the scheduled run's sale, else on the pre-scaled one's
        scheduled = self._calendar_sale() if Strategy.SCHEDULED in self.args.strategies else None
        # Part I runs on the deployment the scheduled strategy uses: the calendar's notice passes meanwhile.
        first = Deployment("sync", autoscaling=scheduled is not None, sale=scheduled)
        with self._deploy(first) as deployed:
            parts = [self._part_one(deployed, name) for name in self.args.profiles]
            sync = deployed.system.ecs.service(roles.Role.SYNC)
            slots = len(sync.tasks) * int(
                sync.spec.env.get(contract.ENV_PAYMENT_SLOTS, contract.SERVICE_DEFAULTS.payment_slots)
            )
            if scheduled is not None:
                runs[Strategy.SCHEDULED] = self._strategy(deployed, Strategy.SCHEDULED, scheduled)
                post = self._post_sale(deployed, first, runs[Strategy.SCHEDULED])
        levels = [self._level(workers) for workers in self.args.levels]
        if Strategy.FIXED in self.args.strategies:
            runs[Strategy.FIXED] = self._fixed(levels)
        for strategy in (Strategy.AUTO_SCALED, Strategy.PRE_SCALED):
            if strategy in self.args.strategies:
                deployment = Deployment(f"strategy-{strategy.value}", autoscaling=True)
                with self._deploy(deployment) as deployed:
                    runs[strategy] = self._strategy(deployed, strategy)
                    if strategy is Strategy.PRE_SCALED and post is None:
                        post = self._post_sale(deployed, deployment, runs[strategy])
        return LabResult(
            args=self.args,
            parts=parts,
            levels=levels,
            periods=self.periods,
            feed_seconds=FEED_SECONDS / self.args.time_scale,
            sync_slots=slots,
            quick_changes=QUICK_CHANGES if self.args.quick else (),
            strategies=[runs[s] for s in Strategy if s in runs],
            post_sale=post,
            iam_unused=sorted(set.intersection(*(set(account.unused) for account in self.iam))) if self.iam else [],
        )

    def _post_sale(self, deployed: Deployed, deployment: Deployment, run: StrategyRun) -> PostSale:
        """`python -m ops.report` on this run's sale, as an operator runs it after one (bench.lab.post_sale)."""
        stack.progress(f"lab: python -m ops.report on the {run.strategy.value} run's sale")
        k, directory = self.args.time_scale, self.args.results / deployment.name
        overrides = local_args(self.args, directory, deployment).config
        stack_file = post_sale.write_stack_file(STACK, overrides, directory)
        records = self._records(deployed)
        period = post_sale.period_for(FEED_SECONDS / k)
        which = ["--sale", deployment.sale.name] if deployment.sale else post_sale.window_args(records)
        out = self.args.results / "post-sale-report"
        args = [*which, "--outputs", str(deployed.system.outputs_file), "--stack-file", str(stack_file)]
        args += ["--period", str(period), "--out", str(out)]
        report = post_sale.run_report(args)
        return PostSale(
            strategy=run.strategy.value,
            command=shlex.join(["python", "-m", "ops.report", *args]),
            path=out / "report.md",
            period=period,
            verdict=str(report["verdict"]),
            agreements=tuple(post_sale.compare(run, records, report, k)),
        )

    def _load(self, url: str, name: str, endpoint: str, directory: str) -> PartResult:
        profile = loadtest.profile(name, endpoint)
        result = loadtest.run_load(
            url, scaled(profile, self.args), self.args.results / directory, time_scale=self.args.time_scale
        )
        return PartResult(
            profile=profile, result=result, records=loadtest.read_records(Path(result.files["requests_csv"]))
        )

    def _part_one(self, deployed: Deployed, name: str) -> PartResult:
        stack.progress(f"lab: Part I, sync service, {name} profile")
        return self._load(deployed.outputs[output_names.SYNC_URL], name, "sync", f"sync-{name}")

    def _watch(self, deployed: Deployed, worker_pid: int | None) -> Watch:
        system = deployed.system
        service = system.ecs.service(roles.Role.WORKER)

        def tasks() -> tuple[int, int]:
            return len(service.healthy()), len(service.tasks) + system.ecs.provisioning(service)

        return Watch(
            WatchArgs(
                queue_url=deployed.outputs[output_names.QUEUE_URL],
                worker_pid=worker_pid,
                sample_seconds=SAMPLE_SECONDS,
                tasks=tasks,
            ),
            deployed.client("sqs"),
        ).start()

    def _level(self, workers: int) -> LevelResult:
        args = self.args
        with self._deploy(Deployment(f"async-{workers}-workers", workers)) as deployed:
            stack.progress(f"lab: Part V, {workers} workers: flash sale on the async receiver")
            sqs, queue_url = deployed.client("sqs"), deployed.outputs[output_names.QUEUE_URL]
            (worker,) = deployed.system.ecs.service(roles.Role.WORKER).tasks  # the worker service's one task
            watch = self._watch(deployed, worker.pid)
            try:
                part = self._load(
                    deployed.outputs[output_names.ASYNC_URL], "flashsale", "async", f"async-{workers}-workers"
                )
                sent = [r.sent_at for r in part.records if r.outcome != "not_sent"]
                sale_start, sale_end = min(sent), max(sent)
                prediction = self._plan().levels[args.levels.index(workers)]
                extrapolated = prediction.drain_seconds / args.time_scale > args.drain_limit_seconds
                observe_end = self._observe(watch, sale_end, prediction.drain_seconds / args.time_scale, extrapolated)
                if extrapolated:
                    stack.progress("lab: purging the rest of the queue (drain extrapolated)")
                    sqs.purge_queue(QueueUrl=queue_url)
                # The first level shows the alarms clearing too (a scaled period after the empty queue, ~30 s); the
                # others keep what fired by then.
                notifications = (
                    self._alarms_clear(deployed, sale_start)
                    if workers == args.levels[0]
                    else self._read_inbox(deployed, sale_start)
                )
                events = worker.events()
                records = self._records(deployed) if workers == self.service.workers_per_task else []
            finally:
                watch.stop()
        self._check(watch, f"the {workers}-worker run")
        window = LevelWindow(
            sale_start, sale_end, contract.SERVICE_DEFAULTS.payment_seconds / args.time_scale, observe_end, extrapolated
        )
        return LevelResult(
            workers=workers,
            part=part,
            prediction=prediction,
            measure=measure_level(workers, window, events, watch.samples),
            window=window,
            samples=watch.samples,
            notifications=notifications,
            records=records,
        )

    def _records(self, deployed: Deployed) -> list[OrderTimes]:
        return lab_strategies.order_records(deployed.client("dynamodb"), deployed.outputs[output_names.ORDERS_TABLE])

    @staticmethod
    def _check(watch: Watch, run: str) -> None:
        if watch.error:
            raise LabError(f"sampling the queue failed during {run}: {watch.error}")

    def _plan(self) -> capacity.CapacityPlan:
        return capacity.plan(
            capacity.PlanInputs(
                arrival_rate=self._sale().rate, sale_seconds=self._sale().seconds, worker_levels=self.args.levels
            )
        )

    # --- Part VI ---------------------------------------------------------------------------------------------------

    def _sale(self) -> strategies.SaleLoad:
        """The flash sale, in report time."""
        flash = lab_report.FLASH_SALE
        return strategies.SaleLoad(rate=flash.rate, seconds=flash.duration_seconds * self.args.sale_fraction)

    def _sale_tasks(self) -> int:
        """What the planner recommends for the sale (what ops.prescale and the calendar raise the service to)."""
        recommended = capacity.plan(
            capacity.PlanInputs(
                arrival_rate=self._sale().rate,
                payment_seconds=self.service.payment_seconds,
                workers_per_task=self.service.workers_per_task,
            )
        ).recommended_tasks
        return min(self.service.max_tasks, recommended)

    def _calendar_sale(self) -> Sale:
        """The scheduled strategy's sale, as a person would add it to the stack's `sales`: its raise is due at the
        calendar's earliest (one minute's notice), so the sale starts once its tasks have started after that."""
        k = self.args.time_scale
        start = datetime.now(UTC) + timedelta(
            seconds=calendar.MIN_NOTICE_SECONDS + 1 + self.args.startup_seconds / k + SALE_MARGIN_SECONDS
        )
        start = start.replace(microsecond=0)
        # The calendar steps down after its end: declared a minute after the load's end, so a late start stays covered.
        end = start + timedelta(seconds=self._sale().seconds / k + 60)
        return Sale(name="lab", start=start, end=end, rate=self._sale().rate * k)

    def _plan_of(self, strategy: Strategy) -> strategies.Plan:
        raised = strategy in (Strategy.PRE_SCALED, Strategy.SCHEDULED)
        return strategies.Plan(
            strategy,
            sale_tasks=self._sale_tasks() if raised else 0,
            lead_seconds=self.stack_inputs.lead_seconds if raised else 0.0,
            step_tasks=calendar.STEP_DOWN_TASKS,
            step_pause_seconds=calendar.STEP_DOWN_PAUSE_SECONDS,
        )

    def _predict(
        self, strategy: Strategy, deployed: Deployed | None = None, first_evaluation: float = scaling.EVALUATION_SECONDS
    ) -> strategies.Prediction:
        auto = None
        if deployed is not None and deployed.system.autoscaling is not None:
            declared = declared_scaling(deployed.system.deployment)  # report time: the program's own constants
            auto = strategies.AutoScaling(
                policy=declared.policy,
                guardrail_age_seconds=declared.guardrail_age_seconds * self.args.time_scale,
                guardrail_period_seconds=declared.guardrail_period_seconds,
                first_evaluation=first_evaluation,
            )
        return strategies.predict(
            self._plan_of(strategy), self._sale(), self.service, auto if strategy is Strategy.AUTO_SCALED else None
        )

    def _fixed(self, levels: list[LevelResult]) -> StrategyRun:
        """The stack's own worker tasks all along: Part V's level at the stack's workerCount is that run."""
        level = next((lv for lv in levels if lv.workers == self.service.workers_per_task), None)
        if level is None:
            raise LabError(f"the fixed strategy needs Part V's {self.service.workers_per_task}-worker level")
        k, m, w = self.args.time_scale, level.measure, level.window
        waits, extra = lab_strategies.waits(level.records, k, w.observe_end, m.rate, w.payment_seconds)
        drain = m.drain_seconds * k
        points = lab_strategies.timeline([s for s in level.samples if s.t <= w.observe_end], w.sale_start, k)
        if m.extrapolated:
            points += ((self._sale().seconds + drain, 0, self.service.normal_tasks),)
        return StrategyRun(
            strategy=Strategy.FIXED,
            requests=level.part.result.requests,
            accepted=level.part.result.accepted,
            waits=tuple(waits),
            extrapolated_waits=extra,
            peak_backlog=m.peak,
            drain_seconds=drain,
            drain_extrapolated=m.extrapolated,
            first_scale_out=None,
            timeline=points,
            task_seconds_before=0.0,
            task_seconds_during=self.service.normal_tasks * (self._sale().seconds + drain),
            task_seconds_after=0.0,
            sale_tasks=self.service.normal_tasks,
            prediction=self._predict(Strategy.FIXED),
            workers_per_task=self.service.workers_per_task,
        )

    def _prescale(self, deployed: Deployed, *more: str) -> dict[str, Any]:
        """`python -m ops.prescale` against the deployment, as an operator runs it (the lab's rate: orders/s x K)."""
        command = [
            sys.executable,
            "-m",
            "ops.prescale",
            "--rate",
            f"{self._sale().rate * self.args.time_scale:g}",
            "--poll",
            "0.5",
            "--outputs",
            str(deployed.system.outputs_file),
            "--json",
            *more,
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # from the outputs file, as a user
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
        if done.returncode != 0:
            raise LabError(f"{' '.join(command[1:4])} failed: {done.stderr.strip()[-500:]}")
        return dict(json.loads(done.stdout))

    def _strategy(self, deployed: Deployed, strategy: Strategy, sale: Sale | None = None) -> StrategyRun:
        """One strategy's run of the flash sale on the async service, from its first move to the empty queue."""
        k, system = self.args.time_scale, deployed.system
        model, service = system.autoscaling, system.ecs.service(roles.Role.WORKER)
        watch = self._watch(deployed, None)
        try:
            if strategy is Strategy.PRE_SCALED:
                stack.progress(f"lab: Part VI, {strategy.value}: ops.prescale before the sale")
                self._prescale(deployed)
            if sale is not None:
                self._await_raise(service, sale)
            stack.progress(f"lab: Part VI, {strategy.value}: flash sale on the async receiver")
            evaluation_at = time.time() + (model.next_evaluation - time.monotonic()) if model else 0.0
            part = self._load(
                deployed.outputs[output_names.ASYNC_URL], "flashsale", "async", f"strategy-{strategy.value}"
            )
            sent = [r.sent_at for r in part.records if r.outcome != "not_sent"]
            sale_start, sale_end = min(sent), max(sent)
            prediction = self._predict(strategy, deployed, (evaluation_at - sale_start) * k)
            drained = self._observe(watch, sale_end, prediction.drain_seconds / k, extrapolated=False)
            records = self._records(deployed)
            wanted_at_end = lab_strategies.wanted_tasks(watch.samples[-1])
            if strategy is Strategy.AUTO_SCALED and model is not None:
                scale_in_at = time.time() + model.scale_in_due()
                after = max(0, wanted_at_end) * max(0.0, scale_in_at - drained) * k
            elif strategy is Strategy.PRE_SCALED:
                steps = self._prescale(
                    deployed, "--restore", "--dry-run", "--normal-tasks", str(self.service.normal_tasks)
                )["steps"]
                after = sum(steps[:-1]) * calendar.STEP_DOWN_PAUSE_SECONDS
            else:
                after = strategies.step_down_seconds(wanted_at_end, self.service.normal_tasks, self._plan_of(strategy))
        finally:
            watch.stop()
        self._check(watch, f"the {strategy.value} run")
        samples = watch.samples
        first_scale_out = next(
            (
                (at - sale_start) * k
                for at, _, why in (model.state.history if model else [])
                if at >= sale_start and not why.startswith("MinCapacity")
            ),
            None,
        )
        try:
            waits, extra = lab_strategies.waits(records, k, drained, math.nan, 0.0)
        except ValueError:
            raise LabError(
                f"accepted orders still unpaid after the queue drained in the {strategy.value} run; see {self.logs}"
            ) from None
        plan = self._plan_of(strategy)
        return StrategyRun(
            strategy=strategy,
            requests=part.result.requests,
            accepted=part.result.accepted,
            waits=tuple(waits),
            extrapolated_waits=extra,
            peak_backlog=max(in_queue(s) for s in samples if s.t >= sale_start),
            drain_seconds=(drained - sale_end) * k,
            drain_extrapolated=False,
            first_scale_out=first_scale_out if strategy is Strategy.AUTO_SCALED else None,
            timeline=lab_strategies.timeline(samples, sale_start, k),
            task_seconds_before=plan.sale_tasks * plan.lead_seconds,
            task_seconds_during=lab_strategies.task_seconds(samples, sale_start, drained) * k,
            task_seconds_after=after,
            sale_tasks=max(lab_strategies.wanted_tasks(s) for s in samples),
            prediction=prediction,
            workers_per_task=self.service.workers_per_task,
        )

    def _await_raise(self, service: LocalService, sale: Sale) -> None:
        """Until the calendar's sale starts; by then its raise must have started the sale's tasks."""
        wait = sale.start.timestamp() - time.time()
        if wait > 0:
            stack.progress(
                f"lab: Part VI, scheduled: the calendar raises the worker service; the sale starts in {wait:.0f} s"
            )
            time.sleep(wait)
        deadline = time.time() + HEALTHY_SECONDS
        while len(service.healthy()) < self._sale_tasks():
            if time.time() > deadline:
                raise LabError(
                    f"the calendar's raise did not run {self._sale_tasks()} worker tasks by the sale's "
                    f"start ({len(service.healthy())} running); see {self.logs}"
                )
            time.sleep(SAMPLE_SECONDS)

    def _observe(self, watch: Watch, sale_end: float, predicted_drain: float, extrapolated: bool) -> float:
        """Wait for the drain (bounded) or, when it would take too long, for the observation window."""
        if extrapolated:
            stack.progress(
                f"lab: drain predicted {capacity.duration(predicted_drain)} wall clock: measuring "
                f"{self.args.window_seconds:g} s at steady rate, then extrapolating"
            )
            time.sleep(max(0.0, sale_end + self.args.window_seconds - time.time()))
            return time.time()
        deadline = sale_end + 2 * predicted_drain + 30
        next_report = 0.0
        while time.time() < deadline:
            sample = watch.latest()
            if sample is not None and sample.t > sale_end and in_queue(sample) == 0:
                return sample.t
            if sample is not None and time.time() >= next_report:
                stack.progress(
                    f"lab: draining, {in_queue(sample):,} orders in the queue"
                    + (f", {sample.running} worker tasks" if sample.running > 1 else "")
                )
                next_report = time.time() + 10
            time.sleep(SAMPLE_SECONDS)
        raise LabError(
            f"the queue did not drain within {deadline - sale_end:.0f} s (predicted "
            f"{predicted_drain:.0f} s); see {self.logs}"
        )

    def _alarms_clear(self, deployed: Deployed, since: float) -> list[Notification]:
        """Wait until no alarm is in ALARM (the feeder keeps publishing the now empty queue), then read the inbox."""
        timeout = 3 * max(deployed.periods.values()) + 30
        deadline = time.time() + timeout
        cloudwatch = deployed.client("cloudwatch")
        while True:
            firing = [
                a["AlarmName"]
                for a in cloudwatch.describe_alarms(AlarmNamePrefix=f"{deployed.prefix}-", StateValue="ALARM")[
                    "MetricAlarms"
                ]
            ]
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
            messages = sqs.receive_message(QueueUrl=deployed.inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            )
            for message in messages:
                envelope = json.loads(message["Body"])
                found.append(
                    Notification(
                        at=epoch(envelope["Timestamp"]),
                        since=since,
                        subject=envelope.get("Subject", ""),
                        body=envelope["Message"],
                    )
                )
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
    p = argparse.ArgumentParser(prog="python -m bench.lab", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--time-scale",
        type=float,
        metavar="K",
        help=f"divide every duration and multiply every rate by K (default {DEFAULT_SCALE:g}; --quick {QUICK_SCALE:g})",
    )
    p.add_argument("--quick", action="store_true", help="under 2 minutes, for CI: " + "; ".join(QUICK_CHANGES))
    p.add_argument("--results", type=Path, help="results folder (default results/lab-<timestamp>/)")
    p.add_argument(
        "--task-startup-seconds",
        type=float,
        metavar="S",
        help="report seconds from a worker task wanted to its container running (default "
        f"{scaling.FARGATE_STARTUP_SECONDS:g}, Fargate's; --quick {QUICK_STARTUP_SECONDS:g})",
    )
    p.add_argument(
        "--price",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a list price of ops/cost.py PRICES for Part VI's bills (repeatable)",
    )
    p.add_argument(
        "--docs",
        type=Path,
        nargs="?",
        const=docs.DOCS,
        metavar="DIR",
        help=f"also write the tables and plots as the docs' generated page {docs.LAB_PAGE} and lab-*.png "
        f"(default DIR: the checkout's docs/)",
    )
    stack.add_json_argument(p)
    return p


def invocation(ns: argparse.Namespace) -> str:
    """The command line that reproduces this run's figures, for the header of the docs page."""
    words = ["python -m bench.lab", *(["--quick"] if ns.quick else []), f"--time-scale {ns.time_scale:g}"]
    if ns.task_startup_seconds is not None:
        words.append(f"--task-startup-seconds {ns.task_startup_seconds:g}")
    return " ".join([*words, *(f"--price {price}" for price in ns.price), "--docs"])


def command(ns: argparse.Namespace) -> int:
    if ns.time_scale is None:
        ns.time_scale = QUICK_SCALE if ns.quick else DEFAULT_SCALE
    if not 1 <= ns.time_scale <= 20:
        raise LabError("--time-scale must be within 1..20 (above 20 the emulator cannot carry the rates)")
    if ns.task_startup_seconds is not None and not 0 <= ns.task_startup_seconds <= 600:
        raise LabError("--task-startup-seconds must be within 0..600")
    results = ns.results or Path("results") / f"lab-{datetime.now():%Y%m%d-%H%M%S}"
    args = LabArgs(
        results=results.resolve(), time_scale=ns.time_scale, prices=cost.prices(cost.parse_overrides(ns.price, "price"))
    )
    args = quick(args) if ns.quick else args
    if ns.task_startup_seconds is not None:
        args = replace(args, startup_seconds=ns.task_startup_seconds)
    signal.signal(signal.SIGTERM, _interrupted)
    started = time.monotonic()
    try:
        result = run_lab(args)
    except (
        LocalError,
        DeployError,
        EmulatorError,
        LocalEcsError,
        TaskError,
        ConsoleError,
        settings.SettingsError,
    ) as e:
        raise LabError(str(e)) from None
    files = lab_report.write(result, args.results)
    if ns.docs is not None:
        files |= lab_report.write_docs(result, ns.docs, invocation(ns))
    elapsed = time.monotonic() - started
    summary = lab_report.summary(result) | {
        "results": str(args.results),
        "files": files,
        "elapsed_seconds": round(elapsed, 1),
    }
    stack.emit(ns, summary, lab_report.console(result, files, elapsed))
    return 0


def main(argv: list[str] | None = None) -> int:
    return stack.run(parser(), command, argv)
