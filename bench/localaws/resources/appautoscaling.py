"""Application Auto Scaling handlers: scalable targets, scaling policies and scheduled actions (the sale calendar's;
their schedule expressions checked as AWS does)."""

from __future__ import annotations

import re
from typing import Any

from bench.localaws.resources.registry import (
    CONTROL,
    Context,
    Created,
    Declared,
    Invalid,
    handles,
    pascal,
    refreshes,
    whole,
)


@handles("aws:appautoscaling/target:Target", CONTROL)
def scalable_target(ctx: Context, r: Declared) -> Created:
    found = ctx.client("application-autoscaling").register_scalable_target(
        ServiceNamespace=r.inputs["serviceNamespace"],
        ResourceId=r.inputs["resourceId"],
        ScalableDimension=r.inputs["scalableDimension"],
        MinCapacity=whole(r.inputs["minCapacity"]),
        MaxCapacity=whole(r.inputs["maxCapacity"]),
    )
    return r.inputs["resourceId"], {"arn": found.get("ScalableTargetARN", "")}


@refreshes("aws:appautoscaling/target:Target")
def read_scalable_target(ctx: Context, r: Declared) -> dict[str, Any]:
    """MinCapacity and MaxCapacity as they are now: ops.prescale and the sale calendar's actions change them."""
    found = ctx.client("application-autoscaling").describe_scalable_targets(
        ServiceNamespace=r.inputs["serviceNamespace"],
        ResourceIds=[r.inputs["resourceId"]],
        ScalableDimension=r.inputs["scalableDimension"],
    )["ScalableTargets"]
    return {"minCapacity": found[0]["MinCapacity"], "maxCapacity": found[0]["MaxCapacity"]} if found else {}


@handles("aws:appautoscaling/policy:Policy", CONTROL)
def scaling_policy(ctx: Context, r: Declared) -> Created:
    arguments: dict[str, Any] = {
        "PolicyName": r.name,
        "ServiceNamespace": r.inputs["serviceNamespace"],
        "ResourceId": r.inputs["resourceId"],
        "ScalableDimension": r.inputs["scalableDimension"],
        "PolicyType": r.inputs.get("policyType", "StepScaling"),
    }
    for key in ("targetTrackingScalingPolicyConfiguration", "stepScalingPolicyConfiguration"):
        if r.inputs.get(key):
            arguments[key[:1].upper() + key[1:]] = pascal(r.inputs[key])
    for step in arguments.get("StepScalingPolicyConfiguration", {}).get("StepAdjustments", []):
        for bound in ("MetricIntervalLowerBound", "MetricIntervalUpperBound"):  # strings in Pulumi's schema
            if isinstance(step.get(bound), str):
                step[bound] = float(step[bound])
    found = ctx.client("application-autoscaling").put_scaling_policy(**arguments)
    return found["PolicyARN"], {
        "arn": found["PolicyARN"],
        "alarmArns": [a["AlarmARN"] for a in found.get("Alarms", [])],
    }


SCHEDULE = re.compile(
    r"at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\)"
)


@handles("aws:appautoscaling/scheduledAction:ScheduledAction", CONTROL)
def scheduled_action(ctx: Context, r: Declared) -> Created:
    if not SCHEDULE.fullmatch(r.inputs["schedule"]):
        raise Invalid(f"schedule must be at(yyyy-mm-ddThh:mm:ss), rate(...) or cron(...), got {r.inputs['schedule']!r}")
    action = pascal(r.inputs.get("scalableTargetAction") or {})
    if not action:
        raise Invalid("scalableTargetAction needs MinCapacity or MaxCapacity")
    arguments: dict[str, Any] = {
        "ServiceNamespace": r.inputs["serviceNamespace"],
        "ScheduledActionName": r.name,
        "ResourceId": r.inputs["resourceId"],
        "ScalableDimension": r.inputs["scalableDimension"],
        "Schedule": r.inputs["schedule"],
        "ScalableTargetAction": action,
    }
    if r.inputs.get("timezone"):
        arguments["Timezone"] = r.inputs["timezone"]
    scaling = ctx.client("application-autoscaling")
    scaling.put_scheduled_action(**arguments)
    found = scaling.describe_scheduled_actions(
        ServiceNamespace=r.inputs["serviceNamespace"], ScheduledActionNames=[r.name]
    )["ScheduledActions"]
    arn = found[0]["ScheduledActionARN"] if found else ""
    return arn or r.name, {"arn": arn}
