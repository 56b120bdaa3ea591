"""What every preflight check shares: the stack as read once through the AWS APIs (`Live`), the sale as the operator
gave it (`Sale`) and one line of the checklist (`Result`).

The checks live beside it, one module per family; `ops.preflight.run` reads the stack into a `Live` and hands it to
each of them in turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo

import boto3

from app import aws, contract, roles
from ops import stack
from planning import capacity
from stackconfig import output_names

PASS: Final = "PASS"
WARN: Final = "WARN"
FAIL: Final = "FAIL"


# The sale's services, checked in this order: each role's ECS service, by the stack output naming it.
SERVICE_OUTPUTS: Final = {
    roles.Role.WORKER: output_names.WORKER_SERVICE_NAME,
    roles.Role.RECEIVER: output_names.RECEIVER_SERVICE_NAME,
}


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
        found = {
            s["serviceName"]: s
            for s in ecs.describe_services(cluster=self.cluster, services=list(names.values()))["services"]
        }
        for role, name in names.items():
            service = found.get(name)
            if service is None or service.get("status") != "ACTIVE":
                self.services[role] = self.task_definitions[role] = None
                continue
            self.services[role] = service
            self.task_definitions[role] = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])[
                "taskDefinition"
            ]
        targets = self.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace=contract.SCALING_NAMESPACE,
            ResourceIds=[self.resource_id],
            ScalableDimension=contract.SCALABLE_DIMENSION,
        )["ScalableTargets"]
        self.target = targets[0] if targets else None


def plan_text(plan: capacity.CapacityPlan) -> str:
    i = plan.inputs
    return (
        f"{i.arrival_rate:g}/s x {i.payment_seconds:g} s +{i.safety_margin:.0%} = {plan.recommended_workers} "
        f"workers, {i.workers_per_task} per task"
    )
