"""ops.preflight against the local system deployed from the program, as an operator runs it (a process reading the
outputs file), and the verdicts on ECS states the emulators cannot hold.

One LocalSystem for the module (the normal stack, 2 s payments, an e-mail subscriber, and a sale in its `sales`
calendar, which the program turns into scheduled actions on moto's Application Auto Scaling). The baseline run
passes; then each check is made to fail by changing exactly that one thing in the emulators, which must change that
check and no other, and the change is undone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app import alarm_catalogue, contract
from bench.localaws.emulators import MUTED_ALARM_KEYS, NO_ROLLOUTS, Emulator
from bench.localaws.system import LocalArgs, LocalSystem
from ops import alarms, stack
from ops.preflight.limits import FARGATE_VCPU, QuotaValue, quota_result
from ops.preflight.live import Result
from ops.preflight.notifier import SENT_BY
from ops.preflight.run import OPTIONAL_OUTPUTS, REQUIRED_OUTPUTS
from ops.preflight.services import service_results
from planning import capacity
from planning.calendar import ACTION_NAME
from stackconfig import output_names
from stackconfig.files import ROOT
from stackconfig.schema import CONFIG_DEFAULTS
from tests.helpers import wait_for

RATE = 20.0
PAYMENT_SECONDS = 2.0
ZONE = "Europe/Berlin"
EMAIL = "oncall@example.com"
PLANNED = capacity.plan(capacity.PlanInputs(arrival_rate=RATE, payment_seconds=PAYMENT_SECONDS)).recommended_tasks
DIMENSION = "ecs:service:DesiredCount"
# What the emulators do not model, said (WARN), not judged: everything else passes.
LOCAL_WARNINGS = {
    "capacity: Fargate vCPU quota",
    "alarms: actions enabled",
    "service worker: deployment",
    "service receiver: deployment",
}
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}


def sale_start() -> datetime:
    """18:00 in Berlin, two days from now: far enough ahead for any lead time the checks use."""
    day = datetime.now(ZoneInfo(ZONE)) + timedelta(days=2)
    return day.replace(hour=18, minute=0, second=0, microsecond=0)


START = sale_start()
SALE = ("--sale-start", START.strftime("%Y-%m-%dT%H:%M"), "--timezone", ZONE, "--sale-duration", "2h")
CALENDAR = [
    {
        "name": "sale",
        "start": START.isoformat(),
        "end": (START + timedelta(hours=2)).isoformat(),
        "rate": RATE,
        "timezone": ZONE,
    }
]
LEAD = timedelta(seconds=CONFIG_DEFAULTS.sale_lead_seconds)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops.preflight", "--rate", f"{RATE:g}", *args],
        cwd=ROOT,
        env=env or CLEAN_ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- the verdicts moto cannot be brought to (it sets runningCount = desiredCount on any update and keeps a
# --- service's first deployment forever), on describe-services answers shaped as ECS's API reference documents them


def deployment(status: str, rollout: str, revision: int, reason: str = "") -> dict[str, Any]:
    return {
        "id": f"ecs-svc/{revision}",
        "status": status,
        "rolloutState": rollout,
        "rolloutStateReason": reason,
        "taskDefinition": f"arn:aws:ecs:us-west-2:123456789012:task-definition/flashsale-async-worker:{revision}",
        "desiredCount": 3,
        "runningCount": 1,
        "pendingCount": 2,
        "failedTasks": 0,
    }


LOCAL = stack.LocalCaveats(rollouts=NO_ROLLOUTS)  # as the local system writes it


def judged(service: dict[str, Any], *, local: bool = False) -> dict[str, Result]:
    return {
        r.check: r
        for r in service_results("worker", service, local=LOCAL if local else None, scale="SCALE", events="EVENTS")
    }


def test_fewer_tasks_running_than_desired_is_a_fail() -> None:
    found = judged(
        {
            "status": "ACTIVE",
            "desiredCount": 3,
            "runningCount": 1,
            "pendingCount": 2,
            "deployments": [deployment("PRIMARY", "COMPLETED", 4)],
        }
    )
    tasks = found["service worker: tasks"]
    assert (tasks.status, tasks.measured, tasks.fix) == ("FAIL", "running 1 of 3, 2 pending", "EVENTS")
    assert found["service worker: deployment"].status == "PASS"


def test_a_circuit_breaker_rollback_is_a_fail_naming_its_reason() -> None:
    reason = "ECS deployment circuit breaker: tasks failed to start."
    found = judged(
        {
            "status": "ACTIVE",
            "desiredCount": 3,
            "runningCount": 3,
            "pendingCount": 0,
            "deployments": [deployment("PRIMARY", "IN_PROGRESS", 4), deployment("ACTIVE", "FAILED", 5, reason)],
        }
    )
    rollout = found["service worker: deployment"]
    assert rollout.status == "FAIL"
    assert rollout.measured.startswith(f"circuit breaker: {reason}; PRIMARY IN_PROGRESS flashsale-async-worker:4")


def test_a_deployment_in_progress_fails_on_aws_and_is_said_locally() -> None:
    service = {
        "status": "ACTIVE",
        "desiredCount": 1,
        "runningCount": 1,
        "pendingCount": 0,
        "deployments": [deployment("PRIMARY", "IN_PROGRESS", 1)],
    }
    assert judged(service)["service worker: deployment"].status == "FAIL"
    local = judged(service, local=True)["service worker: deployment"]
    assert (local.status, local.note) == ("WARN", f"{NO_ROLLOUTS}: not judged locally")


@pytest.mark.parametrize(
    ("needed", "quota", "status"),
    [
        (10, QuotaValue(24, True), "PASS"),
        (30, QuotaValue(24, True), "FAIL"),
        (FARGATE_VCPU.value, QuotaValue(FARGATE_VCPU.value, False, "AccessDenied"), "WARN"),
        (FARGATE_VCPU.value + 1, QuotaValue(FARGATE_VCPU.value, False, "AccessDenied"), "FAIL"),
    ],
)
def test_the_quota_verdict_trusts_the_api_and_only_warns_on_a_documented_default(
    needed: float, quota: QuotaValue, status: str
) -> None:
    result = quota_result(needed, quota, "detail", "us-west-2")
    assert result.status == status
    assert ("documented default" in result.measured) == (not quota.answered)
    if status == "FAIL":
        assert (
            f"request-service-quota-increase --service-code fargate --quota-code L-3032A538 --desired-value "
            f"{needed}" in result.fix
        )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ("--sale-start", "2026-12-05T18:00"),
            "--sale-start has no UTC offset: add one (2026-12-05T18:00+01:00) or pass --timezone ZONE",
        ),
        (("--sale-start", "soon"), "--sale-start takes ISO 8601, e.g. 2026-12-05T18:00+01:00, got 'soon'"),
        (("--sale-start", "2020-01-01T00:00Z"), "--sale-start 2020-01-01T00:00:00+00:00 is in the past"),
        (
            ("--sale-start", "2999-01-01T18:00", "--timezone", "Mars/Base"),
            "--timezone: unknown time zone 'Mars/Base' (an IANA name such as Europe/Berlin or UTC)",
        ),
        (("--sale-duration", "2h"), "--sale-duration needs --sale-start"),
        (
            ("--sale-start", "2999-01-01T18:00Z", "--lead-time", "early"),
            "--lead-time takes a duration like 90s, 15m or 2h, got 'early'",
        ),
    ],
)
def test_bad_sale_input_is_one_line_before_anything_is_read(args: tuple[str, ...], says: str) -> None:
    done = run(*args)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.strip() == f"python -m ops.preflight: error: {says}"


# --- against the local system --------------------------------------------------------------------------------------


@dataclass
class Local:
    system: LocalSystem

    @property
    def outputs(self) -> dict[str, Any]:
        return self.system.outputs

    def client(self, service: str) -> Any:
        return self.system.endpoints.client(service)

    @property
    def resource_id(self) -> str:
        return f"service/{self.outputs[output_names.CLUSTER_NAME]}/{self.outputs[output_names.WORKER_SERVICE_NAME]}"

    def actions(self, what: str) -> list[dict[str, Any]]:
        """The calendar's scheduled actions of one kind ("raise" or "down"), as moto describes them."""
        found = self.client("application-autoscaling").describe_scheduled_actions(
            ServiceNamespace="ecs", ResourceId=self.resource_id, ScalableDimension=DIMENSION
        )["ScheduledActions"]
        return [a for a in found if (m := ACTION_NAME.search(a["ScheduledActionName"])) and m["what"] == what]

    def put(self, action: dict[str, Any], **changes: Any) -> None:
        """Put a scheduled action again as described, with `changes` (Schedule, Timezone...)."""
        kept = {k: action[k] for k in ("ScheduledActionName", "Schedule", "Timezone", "ScalableTargetAction")}
        self.client("application-autoscaling").put_scheduled_action(
            ServiceNamespace="ecs", ResourceId=self.resource_id, ScalableDimension=DIMENSION, **(kept | changes)
        )

    def unschedule(self, action: dict[str, Any]) -> None:
        self.client("application-autoscaling").delete_scheduled_action(
            ServiceNamespace="ecs",
            ResourceId=self.resource_id,
            ScalableDimension=DIMENSION,
            ScheduledActionName=action["ScheduledActionName"],
        )

    def preflight(self, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
        done = run(*SALE, "--json", "--outputs", str(self.system.outputs_file), *args)
        assert done.stderr == "", done.stderr
        return done.returncode, {c["check"]: c for c in json.loads(done.stdout)["checks"]}

    def worker_task_definition(self) -> dict[str, Any]:
        ecs = self.client("ecs")
        service = ecs.describe_services(
            cluster=self.outputs[output_names.CLUSTER_NAME], services=[self.outputs[output_names.WORKER_SERVICE_NAME]]
        )["services"][0]
        return dict(ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"])

    def use_task_definition(self, arn: str) -> None:
        self.client("ecs").update_service(
            cluster=self.outputs[output_names.CLUSTER_NAME],
            service=self.outputs[output_names.WORKER_SERVICE_NAME],
            taskDefinition=arn,
        )

    def worker_desired(self, count: int) -> None:
        self.client("ecs").update_service(
            cluster=self.outputs[output_names.CLUSTER_NAME],
            service=self.outputs[output_names.WORKER_SERVICE_NAME],
            desiredCount=count,
        )

    def alarm(self, key: str) -> dict[str, Any]:
        name = alarm_catalogue.alarm_name(self.outputs[output_names.ALARM_PREFIX], key)
        return dict(self.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0])

    def set_queue(self, output: str, **attributes: str) -> None:
        self.client("sqs").set_queue_attributes(QueueUrl=self.outputs[output], Attributes=attributes)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, emulators: tuple[Emulator, Emulator]) -> Iterator[Local]:
    args = LocalArgs(
        config={"paymentSeconds": PAYMENT_SECONDS, "paymentDeclineRate": 0, "alertEmails": [EMAIL], "sales": CALENDAR},
        directory=tmp_path_factory.mktemp("preflight"),
        feed_seconds=60,
    )
    with LocalSystem(args, emulators=emulators) as system:
        yield Local(system)


@pytest.fixture(scope="module")
def baseline(local: Local) -> dict[str, dict[str, Any]]:
    code, checks = local.preflight()
    assert code == 0, checks
    return checks


@pytest.mark.slow
def test_the_deployed_local_system_is_a_go_and_says_what_the_emulators_cannot_show(
    baseline: dict[str, dict[str, Any]],
) -> None:
    assert {name for name, c in baseline.items() if c["status"] != "PASS"} == LOCAL_WARNINGS
    assert {c["status"] for name, c in baseline.items() if name in LOCAL_WARNINGS} == {"WARN"}
    quota = baseline["capacity: Fargate vCPU quota"]
    assert quota["measured"] == f"{FARGATE_VCPU.value:g} vCPU (documented default, not this account's)"
    assert "the Service Quotas API did not answer" in quota["note"] and FARGATE_VCPU.as_of in quota["note"]
    (muted,) = MUTED_ALARM_KEYS
    assert "muted by the local system on purpose" in baseline["alarms: actions enabled"]["note"]
    assert baseline["alarms: actions enabled"]["measured"].endswith(f"-{muted.replace('_', '-')} muted")
    assert baseline["service worker: tasks"]["measured"] == "running 1 of 1"
    raise_at = (START - LEAD).astimezone(UTC)
    (name, rest) = baseline["calendar: pre-scale before the sale"]["measured"].split(" ", 1)
    assert name.startswith(f"worker-sale-sale-raise-{PLANNED}-{raise_at:%Y%m%d%H%M}-")  # the calendar's own
    assert rest == (
        f"at({START - LEAD:%Y-%m-%dT%H:%M:%S}) {ZONE} -> MinCapacity {PLANNED}: fires "
        f"{START - LEAD:%Y-%m-%d %H:%M} {ZONE}, 5.0 min before the start"
    )
    assert "the stack's saleLeadSeconds" in baseline["calendar: pre-scale before the sale"]["expected"]
    assert baseline["alerts: confirmed subscriber"]["measured"] == f"confirmed: email {EMAIL}"
    assert "ministack confirms e-mail subscriptions" in baseline["alerts: confirmed subscriber"]["note"]


@dataclass(frozen=True)
class Change:
    """One thing changed in the emulators, the check it must fail, and how to undo it."""

    check: str
    status: str
    says: str  # in the check's measured value (or its note)
    apply: Callable[[Local], Any]
    undo: Callable[[Local, Any], None]
    fix_says: str = ""  # in the fix the check prints


def _change_raise(local: Local, **changes: Any) -> dict[str, Any]:
    (saved,) = local.actions("raise")
    local.put(saved, **changes)
    return saved


def _delete(local: Local, what: str) -> list[dict[str, Any]]:
    saved = local.actions(what)
    for action in saved:
        local.unschedule(action)
    return saved


def _put_back(local: Local, saved: dict[str, Any] | list[dict[str, Any]]) -> None:
    for action in saved if isinstance(saved, list) else [saved]:
        local.put(action)


def _reput_alarm(local: Local, key: str, **changes: Any) -> dict[str, Any]:
    saved = local.alarm(key)
    alarms.reput(local.client("cloudwatch"), saved, **changes)
    return saved


def _delete_critical_alarm(local: Local) -> dict[str, Any]:
    saved = local.alarm("queue_depth_critical")
    local.client("cloudwatch").delete_alarms(AlarmNames=[saved["AlarmName"]])
    return saved


def _new_worker_revision(local: Local) -> str:
    current = local.worker_task_definition()
    containers = current["containerDefinitions"]
    for item in containers[0]["environment"]:
        if item["name"] == contract.ENV_WORKER_COUNT:
            item["value"] = "7"
    kept = {
        k: current[k]
        for k in (
            "family",
            "networkMode",
            "requiresCompatibilities",
            "cpu",
            "memory",
            "executionRoleArn",
            "taskRoleArn",
            "volumes",
            "runtimePlatform",
        )
        if k in current
    }
    arn = local.client("ecs").register_task_definition(containerDefinitions=containers, **kept)["taskDefinition"][
        "taskDefinitionArn"
    ]
    local.use_task_definition(arn)
    return str(current["taskDefinitionArn"])


def _worker_back(local: Local, _: Any) -> None:
    local.worker_desired(1)
    wait_for(lambda: len(local.system.ecs.service("worker").healthy()) == 1, 30, "the worker task back")


def _second_worker_stuck(local: Local) -> float:
    """A second worker task wanted that never gets past provisioning (say, no capacity in the zone, or the image
    cannot be pulled): the local ECS holds it as Fargate would, and DescribeServices says 1 running, 1 pending."""
    ecs, saved = local.system.ecs, local.system.ecs.startup_seconds
    ecs.startup_seconds = 3600.0
    local.worker_desired(2)
    service = ecs.service("worker")
    wait_for(lambda: ecs.provisioning(service) == 1, 10, "the second worker task provisioning")
    return saved


def _second_worker_gone(local: Local, saved: float) -> None:
    local.worker_desired(1)
    service = local.system.ecs.service("worker")
    wait_for(lambda: local.system.ecs.provisioning(service) == 0, 10, "the second worker task no longer wanted")
    local.system.ecs.startup_seconds = saved


def _pending_subscription(local: Local) -> str:
    return str(
        local.client("sns").subscribe(
            TopicArn=local.outputs[output_names.ALERTS_TOPIC_ARN],
            Protocol="https",
            Endpoint="https://127.0.0.1:9/hook",
            ReturnSubscriptionArn=True,
        )["SubscriptionArn"]
    )


def _unsubscribe_pending(local: Local, _: Any) -> None:
    sns = local.client("sns")
    for sub in sns.list_subscriptions_by_topic(TopicArn=local.outputs[output_names.ALERTS_TOPIC_ARN])["Subscriptions"]:
        if sub["Protocol"] == "https":
            sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])


def _scalable_max(local: Local, maximum: int) -> None:
    local.client("application-autoscaling").register_scalable_target(
        ServiceNamespace="ecs",
        ResourceId=local.resource_id,
        ScalableDimension=DIMENSION,
        MinCapacity=1,
        MaxCapacity=maximum,
    )


def _redrive(local: Local) -> str:
    policy = local.client("sqs").get_queue_attributes(
        QueueUrl=local.outputs[output_names.QUEUE_URL], AttributeNames=["RedrivePolicy"]
    )["Attributes"]["RedrivePolicy"]
    local.set_queue(output_names.QUEUE_URL, RedrivePolicy="")
    return str(policy)


Q = contract.ORDER_QUEUE
CHANGES = {
    "scalable target MaxCapacity 2": Change(
        "capacity: auto-scaling maximum",
        "FAIL",
        "MaxCapacity 2 tasks",
        lambda local: _scalable_max(local, 2),
        lambda local, _: _scalable_max(local, 10),
    ),
    "the raise's at(...) read in UTC instead of Berlin time": Change(
        "calendar: pre-scale before the sale",
        "FAIL",
        f"read in the sale's zone ({ZONE}) it would fire",
        lambda local: _change_raise(local, Timezone="UTC"),
        _put_back,
        f"set the sale's timezone to {ZONE} in the stack's `sales` config",
    ),
    "the raise 2 minutes before the start": Change(
        "calendar: pre-scale before the sale",
        "FAIL",
        "2.0 min before the start",
        lambda local: _change_raise(local, Schedule=f"at({START - timedelta(minutes=2):%Y-%m-%dT%H:%M:%S})"),
        _put_back,
        "set saleLeadSeconds >= 300",
    ),
    "the raise deleted": Change(
        "calendar: pre-scale before the sale",
        "FAIL",
        f"no scheduled action raises MinCapacity to {PLANNED}",
        lambda local: _delete(local, "raise"),
        _put_back,
        f"add {{name: sale, start: '{START.isoformat()}', end: '{(START + timedelta(hours=2)).isoformat()}', "
        f"rate: {RATE:g}, timezone: {ZONE}}} to the stack's `sales` config",
    ),
    "the step-downs deleted": Change(
        "calendar: step down after the sale",
        "WARN",
        "nothing lowers MinCapacity",
        lambda local: _delete(local, "down"),
        _put_back,
        "the calendar declares the step-down after each sale",
    ),
    "visibility timeout 2 s": Change(
        "queue: visibility timeout",
        "FAIL",
        "2 s",
        lambda local: local.set_queue(output_names.QUEUE_URL, VisibilityTimeout="2"),
        lambda local, _: local.set_queue(output_names.QUEUE_URL, VisibilityTimeout=str(Q.visibility_timeout_seconds)),
    ),
    "redrive policy removed": Change(
        "queue: DLQ attached",
        "FAIL",
        "no redrive policy",
        _redrive,
        lambda local, policy: local.set_queue(output_names.QUEUE_URL, RedrivePolicy=policy),
    ),
    "DLQ retention 1 h": Change(
        "queue: retention",
        "FAIL",
        "DLQ 60.0 min",
        lambda local: local.set_queue(output_names.DLQ_URL, MessageRetentionPeriod="3600"),
        lambda local, _: local.set_queue(output_names.DLQ_URL, MessageRetentionPeriod=str(Q.dlq_retention_seconds)),
    ),
    "a message in the DLQ": Change(
        "queue: DLQ empty",
        "WARN",
        "1 message(s) in the DLQ",
        lambda local: local.client("sqs").send_message(
            QueueUrl=local.outputs[output_names.DLQ_URL], MessageBody='{"order_id": "dead-1"}'
        ),
        lambda local, _: local.client("sqs").purge_queue(QueueUrl=local.outputs[output_names.DLQ_URL]),
    ),
    "critical alarm deleted": Change(
        "alarms: present",
        "FAIL",
        "missing flashsale-normal-queue-depth-critical",
        _delete_critical_alarm,
        lambda local, saved: alarms.reput(local.client("cloudwatch"), saved),
    ),
    "warning alarm's actions disabled": Change(
        "alarms: actions enabled",
        "FAIL",
        "flashsale-normal-queue-depth-warning (actions disabled)",
        lambda local: local.client("cloudwatch").disable_alarm_actions(
            AlarmNames=["flashsale-normal-queue-depth-warning"]
        ),
        lambda local, _: local.client("cloudwatch").enable_alarm_actions(
            AlarmNames=["flashsale-normal-queue-depth-warning"]
        ),
    ),
    "warning threshold edited to 600": Change(
        "alarms: thresholds",
        "FAIL",
        "flashsale-normal-queue-depth-warning 600 (expected 1000)",
        lambda local: _reput_alarm(local, "queue_depth_warning", Threshold=600.0),
        lambda local, saved: alarms.reput(local.client("cloudwatch"), saved),
    ),
    # ministack confirms e-mail subscriptions at once; it keeps an HTTPS one pending, as AWS keeps both.
    "a subscription left pending": Change(
        "alerts: confirmed subscriber",
        "FAIL",
        "pending confirmation: https https://127.0.0.1:9/hook",
        _pending_subscription,
        _unsubscribe_pending,
    ),
    "worker service scaled to zero": Change(
        "service worker: tasks",
        "FAIL",
        "desired 0: scaled to zero",
        lambda local: local.worker_desired(0),
        _worker_back,
    ),
    "a second worker task stuck provisioning": Change(
        "service worker: tasks",
        "FAIL",
        "running 1 of 2, 1 pending",
        _second_worker_stuck,
        _second_worker_gone,
        "aws ecs describe-services",
    ),
    "worker task definition revision with WORKER_COUNT 7": Change(
        "service worker: task definition",
        "FAIL",
        f"{contract.ENV_WORKER_COUNT}=7",
        _new_worker_revision,
        lambda local, arn: local.use_task_definition(arn),
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("change", list(CHANGES.values()), ids=list(CHANGES))
def test_one_change_in_the_emulators_fails_exactly_its_check(
    local: Local, baseline: dict[str, dict[str, Any]], change: Change
) -> None:
    undo = change.apply(local)
    try:
        code, checks = local.preflight()
    finally:
        change.undo(local, undo)
    found = checks[change.check]
    assert found["status"] == change.status, found
    assert change.says in found["measured"] + " " + found["note"], found
    if found["status"] != "PASS":
        assert found["fix"] and change.fix_says in found["fix"], found
    others = {name: c["status"] for name, c in checks.items() if name != change.check}
    assert others == {name: c["status"] for name, c in baseline.items() if name != change.check}
    assert code == (1 if change.status == "FAIL" else 0)


@pytest.mark.slow
def test_a_failing_run_prints_each_fix_and_exits_1(local: Local) -> None:
    local.set_queue(output_names.QUEUE_URL, VisibilityTimeout="2")
    try:
        done = run(*SALE, "--outputs", str(local.system.outputs_file))
    finally:
        local.set_queue(output_names.QUEUE_URL, VisibilityTimeout=str(Q.visibility_timeout_seconds))
    assert done.returncode == 1 and done.stderr == ""
    lines = done.stdout.splitlines()
    failing = lines.index(next(line for line in lines if line.startswith("FAIL  queue: visibility timeout")))
    assert lines[failing].split("  ")[-1].startswith("2 s | expected: > 2 s (one payment); >= 8 s")
    assert lines[failing + 1].strip() == "fix: pulumi up -s normal (the program sets 30 s)"
    passed = sum(line.startswith("PASS") for line in lines)
    assert lines[-1] == f"NO-GO: 1 FAIL, {len(LOCAL_WARNINGS)} WARN, {passed} PASS"


@pytest.mark.slow
def test_a_sale_beyond_the_quota_is_a_fail_on_the_documented_default(local: Local) -> None:
    done = run("--json", "--outputs", str(local.system.outputs_file), "--rate", "300")  # the last --rate wins
    quota = {c["check"]: c for c in json.loads(done.stdout)["checks"]}["capacity: Fargate vCPU quota"]
    assert quota["status"] == "FAIL" and quota["measured"] == f"{FARGATE_VCPU.value:g} vCPU (documented default)"
    assert "request-service-quota-increase" in quota["fix"]


@pytest.mark.slow
def test_the_test_alert_goes_through_the_local_relay_to_people(local: Local) -> None:
    sqs, sns = local.client("sqs"), local.client("sns")
    inbox = sqs.create_queue(QueueName="preflight-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    subscription = sns.subscribe(
        TopicArn=local.outputs[output_names.ALERTS_TOPIC_ARN], Protocol="sqs", Endpoint=arn, ReturnSubscriptionArn=True
    )["SubscriptionArn"]
    try:
        code, checks = local.preflight("--send-test-alert")

        def delivered() -> list[dict[str, Any]]:
            found = sqs.receive_message(QueueUrl=inbox, WaitTimeSeconds=1).get("Messages", [])
            return [json.loads(m["Body"]) for m in found]

        [alert] = wait_for(delivered, 20, "the test alert in the inbox")
    finally:
        sns.unsubscribe(SubscriptionArn=subscription)
        sqs.delete_queue(QueueUrl=inbox)
    assert code == 0
    notifier = checks["notifier: test alert"]
    assert notifier["status"] == "PASS" and notifier["note"].startswith("local path:")
    assert alert["Subject"] == alarms.TEST_SUBJECT
    assert f"sent by `{SENT_BY}`" in alert["Message"]


@pytest.mark.slow
def test_read_as_aws_the_same_stack_fails_where_the_emulators_fall_short(local: Local) -> None:
    """Without the local runtime's outputs file (explicit flags, the emulators' endpoints exported), preflight takes
    the AWS path: the notifier Lambda is invoked (moto cannot run it), and what the local run only said is judged."""
    flags = [arg for key in REQUIRED_OUTPUTS + OPTIONAL_OUTPUTS for arg in (stack.flag(key), str(local.outputs[key]))]
    done = run(*SALE, "--json", "--send-test-alert", *flags, env=CLEAN_ENV | local.system.env())
    checks = {c["check"]: c for c in json.loads(done.stdout)["checks"]}
    assert done.returncode == 1
    notifier = checks["notifier: test alert"]
    assert notifier["status"] == "FAIL" and "Handled" in notifier["measured"]
    assert notifier["note"] == "AWS path: Lambda Invoke with a test SNS event"
    assert checks["alarms: actions enabled"]["status"] == "FAIL"
    assert checks["service worker: deployment"]["status"] == "FAIL"
    assert checks["alerts: confirmed subscriber"]["note"] == ""


@pytest.mark.slow
def test_a_pre_scale_put_by_hand_in_the_wrong_zone_is_fixed_by_the_command_not_the_config(local: Local) -> None:
    saved = _delete(local, "raise")
    wall = START - timedelta(minutes=30)
    hand_made = {
        "ScheduledActionName": "sale-prescale",
        "Schedule": f"at({wall:%Y-%m-%dT%H:%M:%S})",
        "Timezone": "UTC",
        "ScalableTargetAction": {"MinCapacity": PLANNED},
    }
    local.put(hand_made)
    try:
        code, checks = local.preflight()
    finally:
        local.unschedule(hand_made)
        _put_back(local, saved)
    found = checks["calendar: pre-scale before the sale"]
    assert code == 1 and found["status"] == "FAIL"
    assert found["fix"] == (
        f"aws application-autoscaling put-scheduled-action --service-namespace ecs --scalable-dimension {DIMENSION} "
        f"--resource-id {local.resource_id} --scheduled-action-name sale-prescale --schedule "
        f"'at({wall:%Y-%m-%dT%H:%M:%S})' --timezone {ZONE} --scalable-target-action MinCapacity={PLANNED},"
        "MaxCapacity=10"
    )
