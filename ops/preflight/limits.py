"""The capacity checks: the worker service's scalable target lets it reach the planned tasks, and the account's
Fargate vCPU quota holds them (from the Service Quotas API, or AWS's documented default when it does not answer)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from app import aws, contract, roles
from ops import cost
from ops.preflight.live import FAIL, PASS, WARN, Live, Result, plan_text

# Service Quotas' codes for the Fargate On-Demand vCPU resource count; its documented default, with the source and the
# date it was read, is ops/cost.py's QUOTAS (the one table of quotas).
FARGATE_VCPU_CODES: Final = ("fargate", "L-3032A538")
FARGATE_VCPU: Final = next(figure for figure in cost.QUOTAS if figure.key == "fargate_vcpu")


def task_vcpu(task_definition: dict[str, Any] | None) -> float:
    """A task's vCPU as Fargate counts it against the quota (1,024 CPU units each)."""
    units = (task_definition or {}).get("cpu") or contract.TASK_CPU_UNITS
    return int(units) / 1024


def check_maximum(live: Live) -> list[Result]:
    name = "capacity: auto-scaling maximum"
    if live.target is None:
        return [
            Result(
                name,
                FAIL,
                f"no scalable target for {live.resource_id}",
                f">= {live.planned} tasks",
                f"{live.pulumi_up} (the program registers the worker service's scalable target)",
            )
        ]
    maximum = int(live.target["MaxCapacity"])
    return [
        Result(
            name,
            PASS if maximum >= live.planned else FAIL,
            f"MaxCapacity {maximum} tasks",
            f">= {live.planned} tasks ({plan_text(live.plan)})",
            f"pulumi config set maxWorkerTasks {live.planned} -s {live.stack_name} && {live.pulumi_up}",
        )
    ]


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
        return QuotaValue(
            FARGATE_VCPU.value,
            False,
            f"{error.operation_name}: {info.get('Code', '?')} {info.get('Message', '')}".strip(),
        )
    except BotoCoreError as error:
        return QuotaValue(FARGATE_VCPU.value, False, str(error))


def quota_result(needed: float, quota: QuotaValue, detail: str, region: str) -> Result:
    """PASS/FAIL on the account's quota; a documented default is only a WARN when it fits: it may not be the
    account's (new accounts may start lower)."""
    name, (service_code, quota_code) = "capacity: Fargate vCPU quota", FARGATE_VCPU_CODES
    look = (
        f"aws service-quotas get-service-quota --service-code {service_code} --quota-code {quota_code} "
        f"--region {region}"
    )
    raise_it = (
        f"aws service-quotas request-service-quota-increase --service-code {service_code} --quota-code "
        f"{quota_code} --desired-value {math.ceil(needed)} --region {region}"
    )
    expected = f">= {needed:g} vCPU ({detail})"
    if quota.answered:
        return Result(
            name,
            PASS if needed <= quota.value else FAIL,
            f"{quota.value:g} vCPU (Service Quotas {quota_code})",
            expected,
            raise_it,
        )
    source = (
        f"the Service Quotas API did not answer ({quota.why}); the documented default (ops/cost.py QUOTAS: "
        f"{FARGATE_VCPU.what}; {FARGATE_VCPU.source}; read {FARGATE_VCPU.as_of})"
    )
    if needed > quota.value:
        return Result(name, FAIL, f"{quota.value:g} vCPU (documented default)", expected, raise_it, source)
    return Result(
        name,
        WARN,
        f"{quota.value:g} vCPU (documented default, not this account's)",
        expected,
        f"confirm the account's value: {look}",
        source,
    )


def check_quota(live: Live) -> list[Result]:
    worker = task_vcpu(live.task_definitions.get(roles.Role.WORKER))
    receiver = task_vcpu(live.task_definitions.get(roles.Role.RECEIVER))
    receivers = int((live.services.get(roles.Role.RECEIVER) or {}).get("desiredCount", 0))
    needed = live.planned * worker + receivers * receiver
    detail = (
        f"{live.planned} worker tasks x {worker:g} + {receivers} receiver task(s) x {receiver:g}; other Fargate "
        "tasks in the region count too"
    )
    return [quota_result(needed, fargate_quota(live.client("service-quotas")), detail, aws.region())]
