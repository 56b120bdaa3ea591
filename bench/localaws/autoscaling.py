"""LOCAL MODEL of Application Auto Scaling for the worker service: moto stores the scaling policies and scheduled
actions the program declares and never acts on them, so this model acts on them the way AWS documents it.

Each `tick()` (every second; its clock divided by `time_scale`):
- Scheduled actions (the sale calendar; `at(...)` schedules only): when one is due, the scalable target's MinCapacity
  (and MaxCapacity, if the action sets it) become the action's, and a desired count below the new minimum is raised
  to it. Each action runs once.
- Every evaluation period (60 s on AWS), target tracking and the age guardrail by `planning.scaling`'s rules (AWS's
  3 periods above / 15 below, the proportional capacity, the cooldowns, the guardrail's percentage step). The
  tracked metric is the policy's own math, waiting messages over running tasks, from the same CloudWatch metrics the
  alarms read; the guardrail acts while its CloudWatch alarm is in ALARM.
- The desired count always stays within [MinCapacity, MaxCapacity] as the scalable target holds them now (so
  `ops.prescale` raising the minimum is honoured), and is written with ECS UpdateService, which the local ECS
  follows (with its task start-up delay).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from app import contract
from bench.localaws.deployer import Deployment
from bench.localaws.metric_math import evaluate, metric_value
from planning import scaling

POLICY = "aws:appautoscaling/policy:Policy"
TARGET = "aws:appautoscaling/target:Target"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


@dataclass
class ModelState(scaling.ScalingState):
    done_actions: set[str] = field(default_factory=set)
    history: list[tuple[float, int, str]] = field(default_factory=list)  # (time.time(), desired, why)


@dataclass(frozen=True)
class DeclaredScaling:
    """The worker service's scaling as the program declared it, in the caller's clock (seconds / time_scale)."""

    policy: scaling.ScalingPolicy
    queries: dict[str, Any]  # the target-tracking metric queries by id (m1 waiting, m2 running tasks)
    guardrail_alarm: str | None
    guardrail_period_seconds: float
    guardrail_age_seconds: float  # its threshold as declared (the stack's acceptable latency), not scaled


def declared_scaling(deployment: Deployment, time_scale: float = 1.0) -> DeclaredScaling:
    policies = deployment.of_type(POLICY)
    tracking = next(p.outputs for p in policies if p.outputs["policyType"] == "TargetTrackingScaling")
    configuration = tracking["targetTrackingScalingPolicyConfiguration"]
    step = next((p.outputs for p in policies if p.outputs["policyType"] == "StepScaling"), None)
    step_configuration = step["stepScalingPolicyConfiguration"] if step else {}
    alarm = next(
        (
            a.outputs
            for a in deployment.of_type(ALARM)
            if step is not None and a.outputs.get("alarmActions") == [step["arn"]]
        ),
        None,
    )
    if step_configuration and step_configuration.get("adjustmentType") != "PercentChangeInCapacity":
        raise ValueError("the local model knows the guardrail as a PercentChangeInCapacity step policy")
    policy = scaling.ScalingPolicy(
        target=float(configuration["targetValue"]),
        scale_out_cooldown=float(configuration.get("scaleOutCooldown", 0)) / time_scale,
        scale_in_cooldown=float(configuration.get("scaleInCooldown", 0)) / time_scale,
        guardrail_percent=(
            float(step_configuration["stepAdjustments"][0]["scalingAdjustment"]) if step_configuration else None
        ),
        guardrail_min_adjustment=int(step_configuration.get("minAdjustmentMagnitude", 1)),
        guardrail_cooldown=float(step_configuration.get("cooldown", 0)) / time_scale,
    )
    return DeclaredScaling(
        policy=policy,
        queries={m["id"]: m for m in configuration["customizedMetricSpecification"]["metrics"]},
        guardrail_alarm=alarm["name"] if alarm else None,
        guardrail_period_seconds=float(alarm["period"]) / time_scale if alarm else 0.0,
        guardrail_age_seconds=float(alarm["threshold"]) if alarm else 0.0,
    )


class LocalAutoScaling:
    """The worker service's scaling as AWS would do it; `tick()` once a second (a thread in the local runtime)."""

    def __init__(
        self, deployment: Deployment, *, time_scale: float = 1.0, on_event: Callable[[str], None] = lambda message: None
    ) -> None:
        endpoints = deployment.endpoints
        self.ecs, self.scaling = endpoints.client("ecs"), endpoints.client("application-autoscaling")
        self.cloudwatch = endpoints.client("cloudwatch")
        self.time_scale = time_scale
        self.on_event = on_event
        (target,) = deployment.of_type(TARGET)
        self.resource_id = target.outputs["resourceId"]
        _, self.cluster, self.service = self.resource_id.split("/")
        self.declared = declared_scaling(deployment, time_scale)
        self.policy, self.queries, self.guardrail_alarm = (
            self.declared.policy,
            self.declared.queries,
            self.declared.guardrail_alarm,
        )
        self.evaluation_seconds = scaling.EVALUATION_SECONDS / time_scale
        self.state = ModelState()
        self.next_evaluation = time.monotonic() + self.evaluation_seconds

    # --- the scalable target and the service --------------------------------------------------------------------

    def limits(self) -> tuple[int, int]:
        (target,) = self.scaling.describe_scalable_targets(
            ServiceNamespace=contract.SCALING_NAMESPACE, ResourceIds=[self.resource_id]
        )["ScalableTargets"]
        return int(target["MinCapacity"]), int(target["MaxCapacity"])

    def desired(self) -> int:
        return int(
            self.ecs.describe_services(cluster=self.cluster, services=[self.service])["services"][0]["desiredCount"]
        )

    def set_desired(self, count: int, why: str) -> None:
        low, high = self.limits()
        count = max(low, min(high, count))
        if count != self.desired():
            self.ecs.update_service(cluster=self.cluster, service=self.service, desiredCount=count)
            self.state.history.append((time.time(), count, why))
            self.on_event(f"auto-scaling (local model): worker service -> {count} tasks ({why})")

    # --- the rules -------------------------------------------------------------------------------------------------

    def tick(self) -> None:
        self._scheduled_actions()
        now = time.monotonic()
        if now >= self.next_evaluation:
            self.next_evaluation = now + self.evaluation_seconds
            self._evaluate(now)
        low, _ = self.limits()
        if self.desired() < low:
            self.set_desired(low, f"MinCapacity {low}")

    def scale_in_due(self) -> float:
        """Seconds (this clock) until target tracking scales in, if the queue stays empty from now on."""
        return (
            scaling.scale_in_due(self.policy, self.state, self.next_evaluation, self.evaluation_seconds)
            - time.monotonic()
        )

    def _scheduled_actions(self) -> None:
        now = datetime.now(UTC)
        for action in self.scaling.describe_scheduled_actions(
            ServiceNamespace=contract.SCALING_NAMESPACE, ResourceId=self.resource_id
        )["ScheduledActions"]:
            name, schedule = action["ScheduledActionName"], action.get("Schedule", "")
            if name in self.state.done_actions or not schedule.startswith("at("):
                continue
            due = datetime.fromisoformat(schedule[3:-1]).replace(tzinfo=ZoneInfo(action.get("Timezone") or "UTC"))
            if due > now:
                continue
            wanted = action.get("ScalableTargetAction", {})
            low, high = self.limits()
            low, high = int(wanted.get("MinCapacity", low)), int(wanted.get("MaxCapacity", high))
            self.scaling.register_scalable_target(
                ServiceNamespace=contract.SCALING_NAMESPACE,
                ResourceId=self.resource_id,
                ScalableDimension=contract.SCALABLE_DIMENSION,
                MinCapacity=low,
                MaxCapacity=max(low, high),
            )
            self.on_event(f"auto-scaling (local model): scheduled action {name}: MinCapacity -> {low}")
            current = self.desired()
            if current < low:
                self.set_desired(low, f"scheduled action {name}")
            elif current > high:
                self.set_desired(high, f"scheduled action {name}")
            # Done only once its limits and desired count are written: whoever sees it done (the lab, a test) reads
            # them as the action left them, and an action whose calls failed runs again at the next tick.
            self.state.done_actions.add(name)

    def backlog_per_task(self) -> float | None:
        """The target-tracking metric, as the policy's metric math defines it (its returned expression over its
        metrics); None without data or with no running task."""
        stamp = datetime.now(UTC)
        values = {}
        for key, query in self.queries.items():
            if "metricStat" not in query:
                continue
            stat, metric = query["metricStat"], query["metricStat"]["metric"]
            values[key] = metric_value(
                self.cloudwatch,
                {
                    "Metric": {
                        "Namespace": metric["namespace"],
                        "MetricName": metric["metricName"],
                        "Dimensions": [{"Name": d["name"], "Value": d["value"]} for d in metric["dimensions"]],
                    },
                    "Period": max(1, round(self.evaluation_seconds)),
                    "Stat": stat["stat"],
                },
                stamp,
            )
        (returned,) = [query for query in self.queries.values() if query.get("returnData")]
        return evaluate(returned["expression"], values)

    def _guardrail_alarm(self) -> bool:
        if not self.guardrail_alarm:
            return False
        alarm = self.cloudwatch.describe_alarms(AlarmNames=[self.guardrail_alarm])["MetricAlarms"]
        return bool(alarm) and alarm[0]["StateValue"] == "ALARM"

    def _evaluate(self, now: float) -> None:
        decision = scaling.tracking_decision(self.policy, self.state, now, self.desired(), self.backlog_per_task())
        if decision is not None:
            self.set_desired(*decision)
        decision = scaling.guardrail_decision(self.policy, self.state, now, self.desired(), self._guardrail_alarm())
        if decision is not None:
            self.set_desired(*decision)
