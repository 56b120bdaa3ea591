"""Go / no-go before a sale: check the deployed stack against the sale's plan, through the AWS APIs.

`python -m ops.preflight --rate R [--sale-start T --sale-duration D] (--stack NAME | --outputs FILE)` reads the live
stack with boto3 (the same calls against AWS and against the local system) and prints one line per check, PASS, WARN
or FAIL, with what it measured, what it expected and the one command or config change that fixes it. Any FAIL makes
the verdict NO-GO and the exit code 1.

The checks: capacity (the planner's tasks for R under the scalable target's maximum; the Fargate vCPU quota from the
Service Quotas API, or AWS's documented default when the API does not answer), the sale calendar (a scheduled action
that raises the worker service's capacity far enough ahead of --sale-start, in the sale's time zone, and steps it
down after), the order queue (visibility timeout against the payment time, the DLQ attached, retention, an empty
DLQ), the alarms (all present, none muted, the stack profile's thresholds, a confirmed subscriber on the alerts
topic), the worker and receiver services (running at their desired counts, the last deployment completed, their task
definitions' WORKER_COUNT and PAYMENT_SECONDS the stack's), and with --send-test-alert the notifier.

Against the local system (an outputs file written by `bench.local up`), what the emulators do not model is said rather
than judged: the DLQ alarm the local runtime mutes on purpose, ECS rollouts, e-mail confirmation, the Fargate quota.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from app import aws, contract, roles
from app.worker import EXTEND_AT_SHARE, PREFETCH_VISIBILITY_SHARE
from ops import alarms, cost, stack
from planning import calendar, capacity
from planning.report import REPORT_SALE_SECONDS
from stackconfig.alarm_profiles import ALARM_KEYS, ALARM_PROFILES
from stackconfig.schema import CONFIG_DEFAULTS, SALES_KEY
from stackconfig import output_names
from app import alarm_catalogue

PASS: Final = "PASS"
WARN: Final = "WARN"
FAIL: Final = "FAIL"
REQUIRED_OUTPUTS: Final = (
    output_names.CLUSTER_NAME, output_names.WORKER_SERVICE_NAME, output_names.RECEIVER_SERVICE_NAME,
    output_names.QUEUE_URL, output_names.DLQ_URL, output_names.ALARM_PREFIX, output_names.ALARM_PROFILE,
    output_names.ALERTS_TOPIC_ARN, output_names.ALARM_TOPIC_ARN, output_names.WORKER_COUNT,
    output_names.PAYMENT_SECONDS, output_names.ACCEPTABLE_LATENCY)
OPTIONAL_OUTPUTS: Final = (output_names.NOTIFIER_FUNCTION_NAME, output_names.SALE_LEAD_SECONDS)
# The sale's services, checked in this order: each role's ECS service, by the stack output naming it.
SERVICE_OUTPUTS: Final = {roles.Role.WORKER: output_names.WORKER_SERVICE_NAME,
                          roles.Role.RECEIVER: output_names.RECEIVER_SERVICE_NAME}
# A payment must end before the worker extends its message's visibility, after waiting up to the prefetch share for a
# slot: a visibility timeout of this many payments needs no extension calls in the usual case (app.worker).
VISIBILITY_PAYMENTS: Final = 1 / (EXTEND_AT_SHARE - PREFETCH_VISIBILITY_SHARE)
SENT_BY: Final = "python -m ops.preflight --send-test-alert"


# Service Quotas' codes for the Fargate On-Demand vCPU resource count; its documented default, with the source and the
# date it was read, is ops/cost.py's QUOTAS (the one table of quotas).
FARGATE_VCPU_CODES: Final = ("fargate", "L-3032A538")
FARGATE_VCPU: Final = next(figure for figure in cost.QUOTAS if figure.key == "fargate_vcpu")


@dataclass(frozen=True)
class Result:
    """One line of the checklist."""

    check: str
    status: str
    measured: str
    expected: str
    fix: str = ""  # for WARN and FAIL: the one command or config change
    note: str = ""  # where a value comes from, or what the local emulators cannot show


@dataclass(frozen=True)
class Sale:
    """The sale as the operator gave it."""

    rate: float
    start: datetime | None  # aware
    zone: tzinfo  # the sale's time zone: --timezone, or --sale-start's UTC offset
    duration_seconds: float | None
    lead_seconds: float
    lead_from: str = "--lead-time"  # or the stack's saleLeadSeconds

    @property
    def zone_label(self) -> str:
        return zone_label(self.zone, self.start)

    def at(self, moment: datetime) -> str:
        """A moment as people planning the sale read it: in the sale's zone."""
        return f"{moment.astimezone(self.zone):%Y-%m-%d %H:%M} {zone_label(self.zone, moment)}"


def zone_label(zone: tzinfo, moment: datetime | None) -> str:
    return zone.key if isinstance(zone, ZoneInfo) else (zone.tzname(moment) or "UTC")


# --- reading the stack ---------------------------------------------------------------------------------------------


@dataclass
class Live:
    """The deployed stack as the AWS APIs describe it, read once and shared by the checks."""

    outputs: dict[str, Any]
    local: stack.LocalCaveats | None  # the outputs came from the local system: what its emulators cannot show
    source: str  # how the operator named the stack: `--stack NAME` or `--outputs FILE`, for the fix commands
    stack_name: str
    plan: capacity.CapacityPlan
    sale: Sale
    now: datetime
    services: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # role -> describe_services entry
    task_definitions: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # role -> its task definition
    target: dict[str, Any] | None = None  # the worker service's scalable target
    session: boto3.session.Session = field(default_factory=boto3.session.Session)
    _clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """One client per AWS service, all from one session."""
        if service not in self._clients:
            self._clients[service] = aws.client(service, read_timeout=60, session=self.session)
        return self._clients[service]

    @property
    def cluster(self) -> str:
        return str(self.outputs[output_names.CLUSTER_NAME])

    @property
    def resource_id(self) -> str:
        return contract.scalable_resource_id(self.cluster, str(self.outputs[output_names.WORKER_SERVICE_NAME]))

    @property
    def planned(self) -> int:
        return self.plan.recommended_tasks

    @property
    def pulumi_up(self) -> str:
        return f"pulumi up -s {self.stack_name}"

    def read(self) -> None:
        ecs = self.client("ecs")
        names = {role: self.outputs[output] for role, output in SERVICE_OUTPUTS.items()}
        found = {s["serviceName"]: s for s in ecs.describe_services(cluster=self.cluster,
                                                                    services=list(names.values()))["services"]}
        for role, name in names.items():
            service = found.get(name)
            if service is None or service.get("status") != "ACTIVE":
                self.services[role] = self.task_definitions[role] = None
                continue
            self.services[role] = service
            self.task_definitions[role] = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])[
                "taskDefinition"]
        targets = self.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace=contract.SCALING_NAMESPACE, ResourceIds=[self.resource_id],
            ScalableDimension=contract.SCALABLE_DIMENSION)["ScalableTargets"]
        self.target = targets[0] if targets else None


def task_vcpu(task_definition: dict[str, Any] | None) -> float:
    """A task's vCPU as Fargate counts it against the quota (1,024 CPU units each)."""
    units = (task_definition or {}).get("cpu") or contract.TASK_CPU_UNITS
    return int(units) / 1024


# --- capacity ------------------------------------------------------------------------------------------------------


def plan_text(plan: capacity.CapacityPlan) -> str:
    i = plan.inputs
    return (f"{i.arrival_rate:g}/s x {i.payment_seconds:g} s +{i.safety_margin:.0%} = {plan.recommended_workers} "
            f"workers, {i.workers_per_task} per task")


def check_maximum(live: Live) -> list[Result]:
    name = "capacity: auto-scaling maximum"
    if live.target is None:
        return [Result(name, FAIL, f"no scalable target for {live.resource_id}", f">= {live.planned} tasks",
                       f"{live.pulumi_up} (the program registers the worker service's scalable target)")]
    maximum = int(live.target["MaxCapacity"])
    return [Result(name, PASS if maximum >= live.planned else FAIL, f"MaxCapacity {maximum} tasks",
                   f">= {live.planned} tasks ({plan_text(live.plan)})",
                   f"pulumi config set maxWorkerTasks {live.planned} -s {live.stack_name} && {live.pulumi_up}")]


@dataclass(frozen=True)
class QuotaValue:
    value: float
    answered: bool  # from the Service Quotas API; else FARGATE_VCPU's documented default
    why: str = ""  # why the API did not answer


def fargate_quota(quotas: Any) -> QuotaValue:
    try:
        service_code, quota_code = FARGATE_VCPU_CODES
        found = quotas.get_service_quota(ServiceCode=service_code, QuotaCode=quota_code)
        return QuotaValue(float(found["Quota"]["Value"]), True)
    except ClientError as error:
        info = error.response.get("Error", {})
        return QuotaValue(FARGATE_VCPU.value, False, f"{error.operation_name}: {info.get('Code', '?')} "
                                                     f"{info.get('Message', '')}".strip())
    except BotoCoreError as error:
        return QuotaValue(FARGATE_VCPU.value, False, str(error))


def quota_result(needed: float, quota: QuotaValue, detail: str, region: str) -> Result:
    """PASS/FAIL on the account's quota; a documented default is only a WARN when it fits: it may not be the
    account's (new accounts may start lower)."""
    name, (service_code, quota_code) = "capacity: Fargate vCPU quota", FARGATE_VCPU_CODES
    look = f"aws service-quotas get-service-quota --service-code {service_code} --quota-code {quota_code} --region {region}"
    raise_it = (f"aws service-quotas request-service-quota-increase --service-code {service_code} --quota-code "
                f"{quota_code} --desired-value {math.ceil(needed)} --region {region}")
    expected = f">= {needed:g} vCPU ({detail})"
    if quota.answered:
        return Result(name, PASS if needed <= quota.value else FAIL, f"{quota.value:g} vCPU (Service Quotas "
                      f"{quota_code})", expected, raise_it)
    source = (f"the Service Quotas API did not answer ({quota.why}); the documented default (ops/cost.py QUOTAS: "
              f"{FARGATE_VCPU.what}; {FARGATE_VCPU.source}; read {FARGATE_VCPU.as_of})")
    if needed > quota.value:
        return Result(name, FAIL, f"{quota.value:g} vCPU (documented default)", expected, raise_it, source)
    return Result(name, WARN, f"{quota.value:g} vCPU (documented default, not this account's)", expected,
                  f"confirm the account's value: {look}", source)


def check_quota(live: Live) -> list[Result]:
    worker = task_vcpu(live.task_definitions.get(roles.Role.WORKER))
    receiver = task_vcpu(live.task_definitions.get(roles.Role.RECEIVER))
    receivers = int((live.services.get(roles.Role.RECEIVER) or {}).get("desiredCount", 0))
    needed = live.planned * worker + receivers * receiver
    detail = (f"{live.planned} worker tasks x {worker:g} + {receivers} receiver task(s) x {receiver:g}; other Fargate "
              "tasks in the region count too")
    return [quota_result(needed, fargate_quota(live.client("service-quotas")), detail, aws.region())]


# --- the sale calendar ---------------------------------------------------------------------------------------------

_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_UTC_NAMES = {"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Universal", "Zulu", "Etc/Universal", "Etc/Zulu"}


@dataclass(frozen=True)
class Scheduled:
    """One scheduled action on the worker service's scalable target."""

    name: str
    schedule: str
    zone: str  # the action's Timezone; UTC when it has none, as Application Auto Scaling reads it
    wall: datetime | None  # the at(...) time as written (naive); None for cron/rate schedules
    min_capacity: int | None
    max_capacity: int | None

    @property
    def fires(self) -> datetime | None:
        """When a one-off at(...) action runs, in UTC (None for recurring schedules or an unknown zone)."""
        if self.wall is None:
            return None
        try:
            return self.wall.replace(tzinfo=ZoneInfo(self.zone)).astimezone(timezone.utc)
        except (ZoneInfoNotFoundError, ValueError):
            return None

    def describe(self) -> str:
        return f"{self.name} {self.schedule} {self.zone} -> MinCapacity {self.min_capacity}"


def scheduled(action: dict[str, Any]) -> Scheduled:
    schedule = str(action.get("Schedule", ""))
    found = _AT.match(schedule)
    target = action.get("ScalableTargetAction") or {}
    return Scheduled(name=str(action.get("ScheduledActionName", "?")), schedule=schedule,
                     zone=str(action.get("Timezone") or "UTC"),
                     wall=datetime.fromisoformat(found.group(1)) if found else None,
                     min_capacity=target.get("MinCapacity"), max_capacity=target.get("MaxCapacity"))


def same_zone(action_zone: str, sale: Sale, moment: datetime) -> bool:
    """The action's zone is the sale's (a zone name, or the same UTC offset at that moment when the sale gave one)."""
    if isinstance(sale.zone, ZoneInfo):
        return action_zone == sale.zone.key or {action_zone, sale.zone.key} <= _UTC_NAMES
    try:
        return ZoneInfo(action_zone).utcoffset(moment) == sale.zone.utcoffset(moment)
    except (ZoneInfoNotFoundError, ValueError):
        return False


def put_action(live: Live, name: str, when: datetime, min_capacity: int) -> str:
    """The AWS CLI command that schedules one capacity change, written in the sale's zone when it has a name."""
    zone = live.sale.zone.key if isinstance(live.sale.zone, ZoneInfo) else "UTC"
    wall = when.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    maximum = max(min_capacity, int((live.target or {}).get("MaxCapacity", min_capacity)))
    return (f"aws application-autoscaling put-scheduled-action --service-namespace ecs --scalable-dimension "
            f"{contract.SCALABLE_DIMENSION} --resource-id {live.resource_id} --scheduled-action-name {name} --schedule "
            f"'at({wall:%Y-%m-%dT%H:%M:%S})' --timezone {zone} --scalable-target-action "
            f"MinCapacity={min_capacity},MaxCapacity={maximum}")


def calendar_fix(live: Live, change: str, where: str = "in") -> str:
    """The config change for a sale the stack's calendar schedules (`sales`, planning.calendar)."""
    return (f"{change} {where} the stack's `{SALES_KEY}` config (Pulumi.{live.stack_name}.yaml), then "
            f"{live.pulumi_up}")


def sale_entry(live: Live) -> str:
    """This sale as an entry of the stack's `sales` config."""
    sale = live.sale
    assert sale.start is not None
    zone = sale.zone if isinstance(sale.zone, ZoneInfo) else ZoneInfo("UTC")
    start = sale.start.astimezone(zone)
    end = (start + timedelta(seconds=sale.duration_seconds)).isoformat() if sale.duration_seconds else "END"
    return (f"{{name: sale, start: '{start.isoformat()}', end: '{end}', rate: {sale.rate:g}, "
            f"timezone: {zone.key}}}")


def ahead(seconds: float) -> str:
    return capacity.duration(abs(seconds)) + (" before" if seconds >= 0 else " after")


def prescale_result(live: Live, actions: list[Scheduled]) -> Result:
    """The pre-scale for a sale with a start: the latest action that raises MinCapacity to the plan at least the lead
    time before the start, and nothing lowering it again before the sale ends."""
    sale, planned, name = live.sale, live.planned, "calendar: pre-scale before the sale"
    assert sale.start is not None
    deadline = sale.start - timedelta(seconds=sale.lead_seconds)
    end = sale.start + timedelta(seconds=sale.duration_seconds or 0)
    future = sorted((a for a in actions if a.fires and a.fires > live.now), key=lambda a: a.fires or live.now)
    raises = [a for a in future if (a.min_capacity or 0) >= planned]
    expected = (f"MinCapacity >= {planned} tasks by {sale.at(deadline)} ({capacity.duration(sale.lead_seconds)} "
                f"before the start, {sale.lead_from}), in {sale.zone_label}")
    fix = calendar_fix(live, f"add {sale_entry(live)}", "to")
    current = int((live.target or {}).get("MinCapacity", 0))
    on_time = [a for a in raises if a.fires and a.fires <= deadline]
    since = max((a.fires for a in on_time if a.fires), default=None)
    if current >= planned and since is None:
        since = live.now
    if since is not None:
        lowered = [a for a in future if a.fires and since < a.fires < end and a.min_capacity is not None
                   and a.min_capacity < planned]
        if lowered:
            first = lowered[0]
            return Result(name, FAIL, f"{first.describe()} lowers it at {sale.at(first.fires or end)}, before the sale "
                          "ends", expected, f"aws application-autoscaling delete-scheduled-action --service-namespace "
                          f"ecs --scalable-dimension {contract.SCALABLE_DIMENSION} --resource-id {live.resource_id} "
                          f"--scheduled-action-name {first.name}")
        if not on_time:
            return Result(name, PASS, f"MinCapacity already {current} tasks (pre-scaled), nothing lowers it before "
                          "the end", expected)
        best = max(on_time, key=lambda a: a.fires or live.now)
        fires = best.fires or deadline
        measured = (f"{best.describe()}: fires {sale.at(fires)}, {ahead((sale.start - fires).total_seconds())} "
                    "the start")
        if not same_zone(best.zone, sale, fires):
            rezone = (calendar_fix(live, f"set the sale's timezone to {sale.zone_label}")
                      if calendar.from_calendar(best.name) else put_action(live, best.name, fires, planned))
            return Result(name, WARN, measured, expected, rezone,
                          f"the action's time zone is {best.zone}, the sale's {sale.zone_label}: the times agree, but "
                          "a calendar kept in two zones goes wrong the day one of them is edited")
        return Result(name, PASS, measured, expected)
    late = [a for a in raises if a.fires and a.fires > deadline]
    if late:
        first = late[0]
        fires = first.fires or deadline
        note = ""
        ours = calendar.from_calendar(first.name)
        fix = (calendar_fix(live, f"start the sale at {sale.start.isoformat()} and set saleLeadSeconds >= "
                                  f"{sale.lead_seconds:g}") if ours else put_action(live, first.name, deadline, planned))
        if first.wall is not None and not same_zone(first.zone, sale, fires):
            meant = first.wall.replace(tzinfo=sale.zone)
            if isinstance(sale.zone, ZoneInfo) and meant <= deadline:
                note = (f"its time zone is {first.zone}; read in the sale's zone ({sale.zone_label}) it would fire "
                        f"at {sale.at(meant)}, in time")
                fix = (calendar_fix(live, f"set the sale's timezone to {sale.zone_label}") if ours else
                       put_action(live, first.name, meant, planned))
        return Result(name, FAIL, f"{first.describe()}: fires {sale.at(fires)}, "
                      f"{ahead((sale.start - fires).total_seconds())} the start", expected, fix, note)
    short = [a for a in future if a.fires and a.fires <= sale.start and a.min_capacity is not None]
    if short:
        best = short[-1]
        return Result(name, FAIL, f"{best.describe()}: sets it to {best.min_capacity}, the plan needs {planned}",
                      expected, calendar_fix(live, f"set the sale's rate to {sale.rate:g} (or tasks: {planned})")
                      if calendar.from_calendar(best.name) else put_action(live, best.name, best.fires or deadline,
                                                                             planned))
    recurring = [a.describe() for a in actions if a.wall is None]
    note = ("not evaluated (preflight reads one-off at(...) actions, which a sale calendar creates): "
            + "; ".join(recurring)) if recurring else ""
    return Result(name, FAIL, f"no scheduled action raises MinCapacity to {planned} before the sale", expected, fix,
                  note)


def stepdown_result(live: Live, actions: list[Scheduled]) -> Result:
    """After the sale, capacity should come down by itself (report 6.3: "scale down gradually")."""
    sale, planned = live.sale, live.planned
    assert sale.start is not None and sale.duration_seconds is not None
    end = sale.start + timedelta(seconds=sale.duration_seconds)
    downs = [a for a in actions if a.fires and a.fires >= end and a.min_capacity is not None
             and a.min_capacity < planned]
    expected = f"an action lowering MinCapacity below {planned} after the end, {sale.at(end)}"
    if downs:
        first = min(downs, key=lambda a: a.fires or end)
        return Result("calendar: step down after the sale", PASS,
                      f"{first.describe()}: fires {sale.at(first.fires or end)}", expected)
    normal = int((live.target or {}).get("MinCapacity", 1))
    normal = normal if normal < planned else CONFIG_DEFAULTS.min_worker_tasks
    if any(calendar.from_calendar(a.name) for a in actions):
        fix = f"{live.pulumi_up} (the calendar declares the step-down after each sale)"
    elif any((a.min_capacity or 0) >= planned for a in actions):  # raised by hand: step down by hand
        fix = put_action(live, "sale-stepdown", end, normal) + f" (or after the sale: python -m ops.prescale " \
                                                               f"--restore {live.source})"
    else:
        fix = (f"the sale in `{SALES_KEY}` (the pre-scale line's fix) steps down after it too; or after the "
               f"sale: python -m ops.prescale --restore {live.source}")
    return Result("calendar: step down after the sale", WARN, f"nothing lowers MinCapacity after {sale.at(end)}: the "
                  f"{planned} tasks keep running (and costing)", expected, fix)


def check_calendar(live: Live) -> list[Result]:
    found = live.client("application-autoscaling").describe_scheduled_actions(
        ServiceNamespace=contract.SCALING_NAMESPACE, ResourceId=live.resource_id,
        ScalableDimension=contract.SCALABLE_DIMENSION)["ScheduledActions"]
    actions = [scheduled(a) for a in found]
    if live.sale.start is not None:
        results = [prescale_result(live, actions)]
        if live.sale.duration_seconds is not None:
            results.append(stepdown_result(live, actions))
        return results
    upcoming = sorted((a for a in actions if a.fires and a.fires > live.now and a.min_capacity is not None),
                      key=lambda a: a.fires or live.now)
    name = "calendar: scheduled pre-scale"
    if not upcoming:
        return [Result(name, WARN, f"no --sale-start given and no scheduled action on {live.resource_id}",
                       "a scheduled action raising capacity before the sale",
                       "pass --sale-start (ISO 8601) to check the calendar against the sale, or pre-scale by hand: "
                       f"python -m ops.prescale --tasks {live.planned} {live.source}")]
    first = upcoming[0]
    return [Result(name, PASS if (first.min_capacity or 0) >= live.planned else FAIL,
                   f"next: {first.describe()} at {live.sale.at(first.fires or live.now)}",
                   f"MinCapacity >= {live.planned} tasks (pass --sale-start to check its timing)",
                   put_action(live, first.name, first.fires or live.now, live.planned))]


# --- the order queue -----------------------------------------------------------------------------------------------


def days(seconds: int) -> str:
    """Retention for people: 4 d, 14 d, or 60 s and 8.0 min below a day."""
    return f"{seconds / 86_400:g} d" if seconds >= 86_400 else capacity.duration(seconds)


def check_queue(live: Live) -> list[Result]:
    sqs = live.client("sqs")
    queue = sqs.get_queue_attributes(QueueUrl=live.outputs[output_names.QUEUE_URL], AttributeNames=["All"])[
        "Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=live.outputs[output_names.DLQ_URL], AttributeNames=["All"])[
        "Attributes"]
    q, payment = contract.ORDER_QUEUE, float(live.outputs[output_names.PAYMENT_SECONDS])
    results = []

    visibility, enough = int(queue["VisibilityTimeout"]), payment * VISIBILITY_PAYMENTS
    status = FAIL if visibility <= payment else WARN if visibility < enough else PASS
    fix = (f"{live.pulumi_up} (the program sets {q.visibility_timeout_seconds} s)" if q.visibility_timeout_seconds
           >= enough else f"raise ORDER_QUEUE.visibility_timeout_seconds in app/contract.py to {math.ceil(enough)}, "
           f"or lower paymentSeconds, then {live.pulumi_up}")
    results.append(Result("queue: visibility timeout", status, f"{visibility} s",
                          f"> {payment:g} s (one payment); >= {enough:g} s so that a payment ends before the worker "
                          "must extend it", fix,
                          "payments outlive the timeout: each needs an extension, and a stalled worker's orders are "
                          "handed out again mid-payment" if status == FAIL else ""))

    try:
        redrive = json.loads(queue.get("RedrivePolicy") or "{}")
    except json.JSONDecodeError:
        redrive = {}
    dlq_arn, target = dlq.get("QueueArn"), redrive.get("deadLetterTargetArn")
    receives = int(redrive.get("maxReceiveCount", 0))
    measured = (f"dead-letters to {str(target).rsplit(':', 1)[-1]} after {receives} receives" if target else
                "no redrive policy")
    status = FAIL if target != dlq_arn or receives < 1 else WARN if receives != q.max_receive_count else PASS
    results.append(Result("queue: DLQ attached", status, measured,
                          f"dead-letters to {str(dlq_arn).rsplit(':', 1)[-1]} after {q.max_receive_count} receives",
                          f"{live.pulumi_up} (the program attaches the DLQ)"))

    kept, dead = int(queue["MessageRetentionPeriod"]), int(dlq["MessageRetentionPeriod"])
    ok = kept >= q.message_retention_seconds and dead >= max(kept, q.dlq_retention_seconds)
    results.append(Result("queue: retention", PASS if ok else FAIL, f"orders {days(kept)}, DLQ {days(dead)}",
                          f"orders >= {days(q.message_retention_seconds)}, DLQ >= the orders' and >= "
                          f"{days(q.dlq_retention_seconds)} (a dead letter keeps its first enqueue time)",
                          f"{live.pulumi_up} (the program sets {days(q.message_retention_seconds)} and "
                          f"{days(q.dlq_retention_seconds)})"))

    waiting = sum(int(dlq.get(key, 0)) for key in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                                                   "ApproximateNumberOfMessagesDelayed"))
    results.append(Result("queue: DLQ empty", PASS if waiting == 0 else WARN, f"{waiting} message(s) in the DLQ",
                          "0", f"python -m ops.dlq list {live.source} (then fix the cause and python -m ops.dlq "
                          f"redrive {live.source})"))
    return results


# --- alarms and alerts ---------------------------------------------------------------------------------------------


def check_alarms(live: Live) -> list[Result]:
    """The alarms the program creates for this stack: each catalogue alarm the stack's profile sets a threshold for."""
    prefix, profile = str(live.outputs[output_names.ALARM_PREFIX]), str(live.outputs[output_names.ALARM_PROFILE])
    latency = float(live.outputs[output_names.ACCEPTABLE_LATENCY])
    wanted = {key: threshold for key in ALARM_KEYS
              if (threshold := alarms.profile_threshold(profile, key, latency)) is not None}
    names = {key: alarm_catalogue.alarm_name(prefix, key) for key in wanted}
    found = {a["AlarmName"]: a for a in live.client("cloudwatch").describe_alarms(
        AlarmNames=list(names.values()), AlarmTypes=["MetricAlarm"])["MetricAlarms"]}
    present = {key: found[name] for key, name in names.items() if name in found}
    missing = [name for name in names.values() if name not in found]
    results = [Result("alarms: present", FAIL if missing else PASS,
                      f"missing {', '.join(missing)}" if missing else f"{len(present)} of {len(names)}",
                      f"{len(names)} of {len(names)} (app/alarm_catalogue.py ALARMS with a threshold in "
                      f"stackconfig/alarm_profiles.py {profile})",
                      f"{live.pulumi_up} (the program creates every alarm)")]

    topic = live.outputs[output_names.ALARM_TOPIC_ARN]
    muted = {key for key, a in present.items() if not a.get("ActionsEnabled", True)}
    unwired = {key for key, a in present.items() if topic not in a.get("AlarmActions", [])}
    said = live.local.muted_alarms if live.local else {}
    local_muted = {key for key in muted if key in said} - unwired
    wrong = sorted((muted | unwired) - local_muted)
    note = "; ".join(f"{names[key]} muted by the local system on purpose ({said[key]}); on AWS a muted "
                     "alarm is a FAIL" for key in sorted(local_muted))
    if wrong:
        enable = [names[k] for k in wrong if k in muted]
        fix = (f"aws cloudwatch enable-alarm-actions --alarm-names {' '.join(enable)}" if enable else
               f"{live.pulumi_up} (the program points every alarm at the alarm topic)")
        results.append(Result("alarms: actions enabled", FAIL, "muted: " + ", ".join(
            f"{names[k]} ({'actions disabled' if k in muted else 'not wired to the alarm topic'})" for k in wrong),
            "every alarm's actions enabled, publishing to the alarm topic", fix, note))
    else:
        local_names = " ".join(names[k] for k in sorted(local_muted))
        results.append(Result("alarms: actions enabled", WARN if local_muted else PASS,
                              f"{len(present) - len(local_muted)} of {len(present)} enabled"
                              + (f", {local_names} muted" if local_muted else ""),
                              "every alarm's actions enabled, publishing to the alarm topic",
                              f"on AWS: aws cloudwatch enable-alarm-actions --alarm-names {local_names}"
                              if local_muted else "", note))

    off = {key: a.get("Threshold") for key, a in present.items() if a.get("Threshold") != wanted[key]}
    others = [p for p in alarms.matching_profiles(present, latency) if p != profile] if off else []
    name, expected = "alarms: thresholds", f"profile {profile} (the stack's alarmProfile)"
    if not off:
        results.append(Result(name, PASS, f"{len(present)} alarm(s) at profile {profile}", expected))
    elif others:
        results.append(Result(name, WARN, f"all at profile {others[0]}, applied live", expected,
                              f"pulumi config set alarmProfile {others[0]} -s {live.stack_name} to keep them (the next "
                              f"pulumi up restores {profile}), or python -m ops.alarms apply --profile {profile} "
                              f"{live.source}"))
    else:
        results.append(Result(name, FAIL, ", ".join(
            f"{names[key]} {value:g} (expected {wanted[key]:g})" for key, value in off.items()),
            expected, f"python -m ops.alarms apply --profile {profile} {live.source}"))
    return results


def subscriptions(sns: Any, topic: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(confirmed, pending) subscriptions of a topic. AWS lists a pending one with the ARN "PendingConfirmation"; an
    emulator may list its ARN and say so in its attributes."""
    confirmed: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
        for sub in page.get("Subscriptions", []):
            arn = sub.get("SubscriptionArn", "")
            waiting = arn.replace(" ", "").lower() == "pendingconfirmation" or sns.get_subscription_attributes(
                SubscriptionArn=arn)["Attributes"].get("PendingConfirmation") == "true"
            (pending if waiting else confirmed).append(sub)
    return confirmed, pending


def check_subscribers(live: Live) -> list[Result]:
    confirmed, pending = subscriptions(live.client("sns"), live.outputs[output_names.ALERTS_TOPIC_ARN])
    name, expected = "alerts: confirmed subscriber", ">= 1 confirmed subscription on the alerts topic, none pending"
    said = ", ".join(f"{s['Protocol']} {s['Endpoint']}" for s in confirmed) or "none"
    if pending:
        emails = [s["Endpoint"] for s in pending if s.get("Protocol") == "email"]
        return [Result(name, FAIL, "pending confirmation: " + ", ".join(f"{s['Protocol']} {s['Endpoint']}"
                                                                        for s in pending) + f"; confirmed: {said}",
                       expected, (f"open the e-mail AWS sent to {', '.join(emails)} (subject \"AWS Notification - "
                                  "Subscription Confirmation\") and confirm" if emails else
                                  "the endpoint must confirm: it gets a SubscriptionConfirmation with a SubscribeURL")
                       + "; or drop the address from alertEmails and " + live.pulumi_up)]
    if not confirmed:
        return [Result(name, FAIL, "no subscription: alarms reach nobody", expected,
                       f"pulumi config set --path 'alertEmails[0]' oncall@example.com -s {live.stack_name} && "
                       f"{live.pulumi_up}, then confirm the e-mail")]
    note = live.local.email if live.local and any(s.get("Protocol") == "email" for s in confirmed) else ""
    return [Result(name, PASS, f"confirmed: {said}", expected, note=note)]


# --- the services --------------------------------------------------------------------------------------------------


def service_results(role: str, service: dict[str, Any] | None, *, local: stack.LocalCaveats | None, scale: str,
                    events: str) -> list[Result]:
    """Tasks running at the desired count, and the last deployment completed (no circuit-breaker rollback)."""
    if service is None:
        return [Result(f"service {role}: tasks", FAIL, "not found or not ACTIVE", "an ACTIVE service", scale)]
    desired, running, pending = (int(service.get(k, 0)) for k in ("desiredCount", "runningCount", "pendingCount"))
    if desired < 1:
        tasks = Result(f"service {role}: tasks", FAIL, "desired 0: scaled to zero", ">= 1 task, all running", scale)
    else:
        tasks = Result(f"service {role}: tasks", PASS if running >= desired and pending == 0 else FAIL,
                       f"running {running} of {desired}" + (f", {pending} pending" if pending else ""),
                       f"running {desired} of {desired}", events)
    deployments = service.get("deployments", [])
    failed = [d for d in deployments if d.get("rolloutState") == "FAILED"]
    primary: dict[str, Any] = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
    shown = "; ".join(f"{d.get('status')} {d.get('rolloutState', '-')} {str(d.get('taskDefinition', '')).rsplit('/', 1)[-1]}"
                      for d in deployments)
    name, expected = f"service {role}: deployment", "one PRIMARY deployment, COMPLETED"
    if failed or len(deployments) > 1:
        reason = "; ".join(str(d.get("rolloutStateReason", "")) for d in failed if d.get("rolloutStateReason"))
        deployment = Result(name, FAIL, (f"circuit breaker: {reason}; " if failed else "rollout in progress: ") + shown,
                            expected, f"wait for it to settle and read why tasks failed: {events}")
    elif primary.get("rolloutState", "COMPLETED") == "COMPLETED":
        deployment = Result(name, PASS, shown or "no deployments listed", expected)
    elif local:
        deployment = Result(name, WARN, shown, expected, note=f"{local.rollouts}: not judged locally")
    else:
        deployment = Result(name, FAIL, f"not completed: {shown}", expected, events)
    return [tasks, deployment]


def environment(task_definition: dict[str, Any], role: str) -> dict[str, str]:
    containers = task_definition.get("containerDefinitions", [])
    container = next((c for c in containers if c.get("name") == role), containers[0] if containers else {})
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def task_definition_result(live: Live, role: str) -> Result:
    """The running task definition carries the stack's settings (a revision registered by hand would not)."""
    name = f"service {role}: task definition"
    workers, payment = int(live.outputs[output_names.WORKER_COUNT]), float(live.outputs[output_names.PAYMENT_SECONDS])
    expected = (f"{contract.ENV_WORKER_COUNT}={workers}, {contract.ENV_PAYMENT_SECONDS}={payment:g} (the stack's "
                "workerCount, paymentSeconds)")
    found = live.task_definitions.get(role)
    if found is None:
        return Result(name, FAIL, "no service, no task definition", expected, live.pulumi_up)
    env = environment(found, role)
    revision = f"{found.get('family')}:{found.get('revision')}"

    def number(key: str) -> float | None:
        try:
            return float(env[key])
        except (KeyError, ValueError):
            return None

    ok = number(contract.ENV_WORKER_COUNT) == workers and number(contract.ENV_PAYMENT_SECONDS) == payment
    return Result(name, PASS if ok else FAIL, f"{revision}: {contract.ENV_WORKER_COUNT}="
                  f"{env.get(contract.ENV_WORKER_COUNT, 'unset')}, {contract.ENV_PAYMENT_SECONDS}="
                  f"{env.get(contract.ENV_PAYMENT_SECONDS, 'unset')}", expected,
                  f"{live.pulumi_up} (deploys the stack's task definition; a revision set by hand is drift)")


def check_services(live: Live) -> list[Result]:
    results = []
    for role, output in SERVICE_OUTPUTS.items():
        service_name = live.outputs[output]
        scale = (f"python -m ops.prescale --tasks {live.planned} {live.source}" if role is roles.Role.WORKER else
                 f"aws ecs update-service --cluster {live.cluster} --service {service_name} --desired-count N "
                 "(the stack's receiverTasks)")
        events = (f"aws ecs describe-services --cluster {live.cluster} --services {service_name} --query "
                  "'services[0].events[:5]'")
        results += service_results(role, live.services.get(role), local=live.local, scale=scale, events=events)
        results.append(task_definition_result(live, role))
    return results


# --- the notifier --------------------------------------------------------------------------------------------------


def check_notifier(live: Live) -> list[Result]:
    """A dry-run alert through the notifier: on AWS the Lambda is invoked with an SNS event; locally (no emulator
    runs a Lambda) the message goes to the alarm topic, whose stand-in subscription the local relay reads."""
    subject, body = alarms.delivery_check(SENT_BY)
    name, expected = "notifier: test alert", "the notifier publishes 1 readable alert to the alerts topic"
    alarm_topic = live.outputs[output_names.ALARM_TOPIC_ARN]
    if live.local:
        message = live.client("sns").publish(TopicArn=alarm_topic, Subject=subject, Message=body)["MessageId"]
        return [Result(name, PASS, f"published {message} to the alarm topic", expected,
                       note="local path: the local relay runs the notifier's module on it and publishes the alert "
                            "(its log says `relayed: ...`); on AWS preflight invokes the Lambda")]
    function = live.outputs.get(output_names.NOTIFIER_FUNCTION_NAME)
    if not function:
        return [Result(name, FAIL, f"stack output {output_names.NOTIFIER_FUNCTION_NAME} missing", expected,
                       f"{live.pulumi_up}, or pass {stack.flag(output_names.NOTIFIER_FUNCTION_NAME)}")]
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {"TopicArn": alarm_topic, "Subject": subject,
                                                            "Message": body}}]}
    answer = live.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event).encode())
    payload = answer["Payload"].read().decode(errors="replace")
    try:
        sent = json.loads(payload).get("sent") if not answer.get("FunctionError") else None
    except (json.JSONDecodeError, AttributeError):
        sent = None
    logs = f"aws logs tail /aws/lambda/{function} --since 10m (or the function's log group)"
    if sent == 1:
        return [Result(name, PASS, f"invoked {function}: sent 1", expected, note="AWS path: Lambda Invoke with a "
                       "test SNS event; check the on-call received it")]
    return [Result(name, FAIL, f"invoked {function}: {answer.get('FunctionError') or 'answered'} {payload[:200]}",
                   expected, logs, "AWS path: Lambda Invoke with a test SNS event")]


# --- the run -------------------------------------------------------------------------------------------------------

# (what a check reads, for the line that says it could not read it; the check)
CHECKS: Final[tuple[tuple[str, Callable[[Live], list[Result]]], ...]] = (
    ("capacity: scalable target", check_maximum),
    ("capacity: service quota", check_quota),
    ("calendar: scheduled actions", check_calendar),
    ("queue: attributes", check_queue),
    ("alarms: descriptions", check_alarms),
    ("alerts: subscriptions", check_subscribers),
    ("services: task definitions", check_services),
)


def run_checks(live: Live, checks: Iterable[tuple[str, Callable[[Live], list[Result]]]]) -> list[Result]:
    """Every check; one the credentials may not read (an AWS error) is a FAIL naming the call, and the rest go on."""
    results: list[Result] = []
    for name, check in checks:
        try:
            results += [r if r.status != PASS else replace(r, fix="") for r in check(live)]
        except ClientError as error:
            info = error.response.get("Error", {})
            results.append(Result(name, FAIL, f"could not read: {error.operation_name}: {info.get('Code', '?')}",
                                  "readable with these credentials", "grant the read permission, or run preflight "
                                  "with a role that has it", str(info.get("Message", ""))))
    return results


def parse_duration(text: str, what: str) -> float:
    """`90s`, `15m`, `2h`, `1.5h` or plain seconds."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*", text)
    if not found:
        raise stack.OpsError(f"{what} takes a duration like 90s, 15m or 2h, got {text!r}")
    value = float(found.group(1)) * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[found.group(2) or "s"]
    if value <= 0:
        raise stack.OpsError(f"{what} must be positive, got {text!r}")
    return value


def parse_sale(args: argparse.Namespace, now: datetime, lead_seconds: float) -> Sale:
    zone: tzinfo | None = None
    if args.timezone:
        try:
            zone = ZoneInfo(args.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise stack.OpsError(f"--timezone: unknown time zone {args.timezone!r} (an IANA name such as "
                                 "Europe/Berlin or UTC)") from None
    start = None
    if args.sale_start:
        try:
            start = datetime.fromisoformat(args.sale_start)
        except ValueError:
            raise stack.OpsError(f"--sale-start takes ISO 8601, e.g. 2026-12-05T18:00+01:00, got "
                                 f"{args.sale_start!r}") from None
        if start.tzinfo is None:
            if zone is None:
                raise stack.OpsError("--sale-start has no UTC offset: add one (2026-12-05T18:00+01:00) or pass "
                                     "--timezone ZONE")
            start = start.replace(tzinfo=zone)
        elif zone is not None and zone.utcoffset(start) != start.utcoffset():
            raise stack.OpsError(f"--sale-start's offset {start:%z} is not {args.timezone}'s on that day "
                                 f"({start.astimezone(zone):%z})")
        if start <= now:
            raise stack.OpsError(f"--sale-start {start.isoformat()} is in the past")
    elif args.sale_duration:
        raise stack.OpsError("--sale-duration needs --sale-start")
    return Sale(rate=args.rate, start=start, zone=zone or (start.tzinfo if start and start.tzinfo else timezone.utc),
                duration_seconds=parse_duration(args.sale_duration, "--sale-duration") if args.sale_duration else None,
                lead_seconds=lead_seconds)


def number_output(outputs: dict[str, Any], key: str, kind: Callable[[Any], Any]) -> Any:
    try:
        return kind(outputs[key])
    except (TypeError, ValueError):
        raise stack.OpsError(f"stack output `{key}` must be a number, got {outputs[key]!r}") from None


def render(live: Live, results: list[Result]) -> str:
    counts = {status: sum(r.status == status for r in results) for status in (FAIL, WARN, PASS)}
    sale = live.sale
    when = (f" from {sale.at(sale.start)}" if sale.start else "") + (
        f" for {capacity.duration(sale.duration_seconds)}" if sale.duration_seconds else "")
    verdict = "NO-GO" if counts[FAIL] else "GO"
    lines = [f"Preflight of {live.outputs[output_names.ALARM_PREFIX]} for {sale.rate:g} orders/s{when}"
             + (" (local system)" if live.local else ""),
             f"Plan: {plan_text(live.plan)} = {live.planned} worker tasks",
             ""]
    width = max(len(r.check) for r in results)
    for r in results:
        lines.append(f"{r.status}  {r.check:<{width}}  {r.measured} | expected: {r.expected}")
        if r.fix and r.status != PASS:
            lines.append(f"{'':6}fix: {r.fix}")
        if r.note:
            lines.append(f"{'':6}note: {r.note}")
    lines += ["", f"{verdict}: {counts[FAIL]} FAIL, {counts[WARN]} WARN, {counts[PASS]} PASS"]
    return "\n".join(lines)


def command(args: argparse.Namespace) -> int:
    now = datetime.now(timezone.utc)
    lead = parse_duration(args.lead_time, "--lead-time") if args.lead_time else None
    sale = parse_sale(args, now, lead or 0.0)  # bad input is refused before anything is read
    local = (output_names.LOCAL_ENDPOINT, output_names.LOCAL_CAVEATS)
    outputs = stack.resolve_outputs(args, REQUIRED_OUTPUTS + OPTIONAL_OUTPUTS + local, optional=OPTIONAL_OUTPUTS + local)
    if lead is None:  # the calendar's own lead time (the config key saleLeadSeconds)
        stacked = output_names.SALE_LEAD_SECONDS in outputs
        sale = replace(sale, lead_from="the stack's saleLeadSeconds" if stacked else "saleLeadSeconds' default",
                       lead_seconds=number_output(outputs, output_names.SALE_LEAD_SECONDS, float) if stacked
                       else float(CONFIG_DEFAULTS.sale_lead_seconds))
    plan = capacity.plan(capacity.PlanInputs(
        arrival_rate=args.rate, payment_seconds=number_output(outputs, output_names.PAYMENT_SECONDS, float),
        sale_seconds=sale.duration_seconds or REPORT_SALE_SECONDS,
        workers_per_task=number_output(outputs, output_names.WORKER_COUNT, int), safety_margin=args.margin))
    prefix = str(outputs[output_names.ALARM_PREFIX])
    if outputs[output_names.ALARM_PROFILE] not in ALARM_PROFILES:
        raise stack.OpsError(f"stack output `{output_names.ALARM_PROFILE}` must be one of "
                             f"{', '.join(ALARM_PROFILES)}, got {outputs[output_names.ALARM_PROFILE]!r}")
    number_output(outputs, output_names.ACCEPTABLE_LATENCY, float)
    live = Live(outputs=outputs, local=stack.LocalCaveats.of(outputs),
                source=f"--stack {args.stack}" if args.stack else f"--outputs {args.outputs}" if args.outputs else
                "--stack STACK", stack_name=args.stack or prefix.split("-", 1)[-1], plan=plan, sale=sale, now=now)
    live.read()
    checks = CHECKS + ((("notifier: invoke", check_notifier),) if args.send_test_alert else ())
    results = run_checks(live, checks)
    failed = any(r.status == FAIL for r in results)
    stack.emit(args, {"verdict": "NO-GO" if failed else "GO", "local": live.local is not None,
                      "plan": {"rate": sale.rate, "workers": plan.recommended_workers, "tasks": live.planned},
                      "sale": {"start": sale.start.isoformat() if sale.start else None, "zone": sale.zone_label,
                               "duration_seconds": sale.duration_seconds, "lead_seconds": sale.lead_seconds},
                      "checks": [asdict(r) for r in results]}, render(live, results))
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    d = capacity.PlanInputs()
    p = argparse.ArgumentParser(prog="python -m ops.preflight", description=__doc__.split("\n\n")[0],
                                epilog="Exit code 1 on any FAIL (NO-GO), 0 otherwise (WARNs included).")
    p.add_argument("--rate", type=float, required=True, help="the sale's expected peak, orders/s")
    p.add_argument("--sale-start", metavar="T", help="when the sale starts, ISO 8601 (2026-12-05T18:00+01:00, or "
                                                     "without an offset with --timezone)")
    p.add_argument("--sale-duration", metavar="D", help="how long it lasts (90m, 2h): checks the step-down after it")
    p.add_argument("--timezone", metavar="ZONE", help="the sale's time zone, an IANA name (Europe/Berlin); "
                                                      "default: --sale-start's UTC offset")
    p.add_argument("--lead-time", metavar="D", help="how long before the start capacity must be raised (default: "
                                                    "the stack's saleLeadSeconds, as the calendar raises it)")
    p.add_argument("--margin", type=float, default=d.safety_margin, help="the planner's safety margin (%(default)s)")
    p.add_argument("--send-test-alert", action="store_true",
                   help="also send a clearly marked test alert through the notifier")
    stack.add_output_arguments(p, REQUIRED_OUTPUTS + OPTIONAL_OUTPUTS)
    stack.add_json_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    return stack.run(parser(), command, argv)


if __name__ == "__main__":
    sys.exit(main())
