"""LOCAL MODEL of Application Auto Scaling for the worker service: moto stores the scaling policies and scheduled
actions the program declares and never acts on them, so this model acts on them the way AWS documents it.

Its rules, each time `tick()` runs (every second, time divided by `time_scale`):
- Scheduled actions (the sale calendar; `at(...)` schedules only): when one is due, the scalable target's MinCapacity
  (and MaxCapacity, if the action sets it) become the action's, and a desired count below the new minimum is raised
  to it. Each action runs once.
- Target tracking (every evaluation period, 60 s on AWS): the metric is the policy's own math, waiting messages over
  running tasks, from the same CloudWatch metrics the alarms read. AWS's target tracking acts through two alarms it
  creates: the high alarm needs 3 consecutive periods above the target, the low alarm 15 below it (AWS: "Target
  tracking scaling policies", alarms created by Application Auto Scaling). On the high side the new capacity is
  ceil(current x metric / target), no sooner than the scale-out cooldown after the last scale-out; on the low side,
  the same formula, no sooner than the scale-in cooldown.
- The guardrail (step scaling on the oldest message's age): while its alarm is in ALARM, +50 % of the tasks (at least
  one) per evaluation period, respecting its cooldown.
- The desired count always stays within [MinCapacity, MaxCapacity] as the scalable target holds them now (so
  `ops.prescale` raising the minimum is honoured), and is written with ECS UpdateService, which the local ECS
  follows (with its task start-up delay).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from local_runtime.deployer import Deployment
from local_runtime.metric_math import metric_value

POLICY = "aws:appautoscaling/policy:Policy"
TARGET = "aws:appautoscaling/target:Target"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
EVALUATION_SECONDS = 60.0
HIGH_PERIODS = 3  # target tracking's high alarm: 3 of 3 datapoints above the target
LOW_PERIODS = 15  # its low alarm: 15 of 15 below


@dataclass
class ScalingState:
    above: int = 0  # consecutive evaluation periods above the target
    below: int = 0
    last_scale_out: float = -math.inf
    last_scale_in: float = -math.inf
    last_guardrail: float = -math.inf
    done_actions: set[str] = field(default_factory=set)
    history: list[tuple[float, int, str]] = field(default_factory=list)  # (time, desired, why)


class LocalAutoScaling:
    """The worker service's scaling as AWS would do it; `tick()` once a second (a thread in the local runtime)."""

    def __init__(self, deployment: Deployment, *, time_scale: float = 1.0,
                 on_event: Callable[[str], None] = lambda message: None) -> None:
        endpoints = deployment.endpoints
        self.ecs, self.scaling = endpoints.client("ecs"), endpoints.client("application-autoscaling")
        self.cloudwatch = endpoints.client("cloudwatch")
        self.time_scale = time_scale
        self.on_event = on_event
        (target,) = deployment.of_type(TARGET)
        self.resource_id = target.outputs["resourceId"]
        _, self.cluster, self.service = self.resource_id.split("/")
        policies = deployment.of_type(POLICY)
        tracking = next(p.outputs for p in policies if p.outputs["policyType"] == "TargetTrackingScaling")
        configuration = tracking["targetTrackingScalingPolicyConfiguration"]
        self.target_value = float(configuration["targetValue"])
        self.scale_out_cooldown = float(configuration.get("scaleOutCooldown", 0))
        self.scale_in_cooldown = float(configuration.get("scaleInCooldown", 0))
        self.queries = {m["id"]: m for m in configuration["customizedMetricSpecification"]["metrics"]}
        guardrail = next((p for p in policies if p.outputs["policyType"] == "StepScaling"), None)
        self.guardrail_alarm = next((a.outputs["name"] for a in deployment.of_type(ALARM)
                                     if guardrail is not None and a.outputs.get("alarmActions") == [guardrail.outputs["arn"]]),
                                    None)
        self.guardrail_cooldown = float((guardrail.outputs["stepScalingPolicyConfiguration"].get("cooldown", 0))
                                        if guardrail else 0)
        self.state = ScalingState()
        self._next_evaluation = time.monotonic() + self.seconds(EVALUATION_SECONDS)

    def seconds(self, report_seconds: float) -> float:
        return report_seconds / self.time_scale

    # --- the scalable target and the service --------------------------------------------------------------------

    def limits(self) -> tuple[int, int]:
        (target,) = self.scaling.describe_scalable_targets(ServiceNamespace="ecs", ResourceIds=[self.resource_id])[
            "ScalableTargets"]
        return int(target["MinCapacity"]), int(target["MaxCapacity"])

    def desired(self) -> int:
        return int(self.ecs.describe_services(cluster=self.cluster, services=[self.service])["services"][0][
            "desiredCount"])

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
        if now >= self._next_evaluation:
            self._next_evaluation = now + self.seconds(EVALUATION_SECONDS)
            self._evaluate(now)
        low, _ = self.limits()
        if self.desired() < low:
            self.set_desired(low, f"MinCapacity {low}")

    def _scheduled_actions(self) -> None:
        now = datetime.now(timezone.utc)
        for action in self.scaling.describe_scheduled_actions(ServiceNamespace="ecs", ResourceId=self.resource_id)[
                "ScheduledActions"]:
            name, schedule = action["ScheduledActionName"], action.get("Schedule", "")
            if name in self.state.done_actions or not schedule.startswith("at("):
                continue
            due = datetime.fromisoformat(schedule[3:-1]).replace(tzinfo=ZoneInfo(action.get("Timezone") or "UTC"))
            if due > now:
                continue
            self.state.done_actions.add(name)
            wanted = action.get("ScalableTargetAction", {})
            low, high = self.limits()
            low, high = int(wanted.get("MinCapacity", low)), int(wanted.get("MaxCapacity", high))
            self.scaling.register_scalable_target(ServiceNamespace="ecs", ResourceId=self.resource_id,
                                                  ScalableDimension="ecs:service:DesiredCount", MinCapacity=low,
                                                  MaxCapacity=max(low, high))
            self.on_event(f"auto-scaling (local model): scheduled action {name}: MinCapacity -> {low}")
            current = self.desired()
            if current < low:
                self.set_desired(low, f"scheduled action {name}")
            elif current > high:
                self.set_desired(high, f"scheduled action {name}")

    def backlog_per_task(self) -> float | None:
        """The target-tracking metric, as the policy's metric math defines it (m1 / m2)."""
        stamp = datetime.now(timezone.utc)
        values = []
        for key in ("m1", "m2"):
            stat = self.queries[key]["metricStat"]
            metric = stat["metric"]
            values.append(metric_value(self.cloudwatch, {
                "Metric": {"Namespace": metric["namespace"], "MetricName": metric["metricName"],
                           "Dimensions": [{"Name": d["name"], "Value": d["value"]} for d in metric["dimensions"]]},
                "Period": max(1, round(EVALUATION_SECONDS / self.time_scale)), "Stat": stat["stat"]},
                stamp))
        waiting, tasks = values
        if waiting is None or not tasks:
            return None
        return waiting / tasks

    def _evaluate(self, now: float) -> None:
        metric = self.backlog_per_task()
        current = self.desired()
        if metric is not None:
            self.state.above = self.state.above + 1 if metric > self.target_value else 0
            self.state.below = self.state.below + 1 if metric < self.target_value else 0
            proportional = math.ceil(max(current, 1) * metric / self.target_value)
            if (self.state.above >= HIGH_PERIODS and proportional > current
                    and now - self.state.last_scale_out >= self.seconds(self.scale_out_cooldown)):
                self.state.last_scale_out = now
                self.set_desired(proportional, f"target tracking: {metric:,.0f} waiting per task > target "
                                               f"{self.target_value:,.0f}")
            elif (self.state.below >= LOW_PERIODS and proportional < current
                  and now - self.state.last_scale_in >= self.seconds(self.scale_in_cooldown)):
                self.state.last_scale_in = now
                self.set_desired(proportional, f"target tracking: {metric:,.0f} waiting per task < target "
                                               f"{self.target_value:,.0f}")
        if self.guardrail_alarm and now - self.state.last_guardrail >= self.seconds(self.guardrail_cooldown):
            alarm = self.cloudwatch.describe_alarms(AlarmNames=[self.guardrail_alarm])["MetricAlarms"]
            if alarm and alarm[0]["StateValue"] == "ALARM":
                self.state.last_guardrail = now
                self.set_desired(self.desired() + max(1, math.ceil(0.5 * self.desired())),
                                 "guardrail: the oldest order is older than the acceptable latency")
