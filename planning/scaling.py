"""Application Auto Scaling's rules for the worker service, as pure functions of what the program declares.

Two users: the local model (`bench.localaws.autoscaling`), which applies them to the emulated control plane, and the
strategy predictions (`planning.strategies`), which apply them to a fluid model of the queue. Both therefore scale
alike by construction; the lab compares either with what the local system measured.

The rules, as AWS documents them ("Target tracking scaling policies" and "Step scaling policies for Application Auto
Scaling"):
- Target tracking acts through two alarms it creates: the high one needs HIGH_PERIODS consecutive one-minute
  periods above the target, the low one LOW_PERIODS below it. The new capacity is ceil(current x metric / target),
  no sooner than the scale-out cooldown after the policy's last scale-out (scale-in: its own cooldown).
- The step-scaling guardrail adds a percentage of the current capacity (at least its minimum adjustment) while its
  alarm is in ALARM, no sooner than its cooldown after its last step.
- Whatever a rule asks is then held within the scalable target's [MinCapacity, MaxCapacity].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EVALUATION_SECONDS = 60.0  # the period of the alarms target tracking creates
HIGH_PERIODS = 3  # its high alarm: 3 of 3 datapoints above the target
LOW_PERIODS = 15  # its low alarm: 15 of 15 below
# A Fargate task wanted now starts its container about a minute later: "It is normal for new AWS Fargate tasks to
# take 30-45 seconds or longer to start" (AWS's answer on repost.aws, "How to speed up provisioning of ECS Fargate
# task", which lists the steps: a compute instance, a network interface, the image pull and unpack, the program);
# 60 s allows for the pull of this project's ~150 MB Python image. Overridable: --task-startup-seconds.
FARGATE_STARTUP_SECONDS = 60.0


@dataclass(frozen=True)
class ScalingPolicy:
    """The worker service's scaling as the program declares it (cooldowns in the caller's clock)."""

    target: float  # orders waiting per running task
    scale_out_cooldown: float
    scale_in_cooldown: float
    guardrail_percent: float | None  # the step policy's PercentChangeInCapacity; None without a guardrail
    guardrail_min_adjustment: int
    guardrail_cooldown: float


@dataclass
class ScalingState:
    above: int = 0  # consecutive evaluation periods above the target
    below: int = 0
    last_scale_out: float = -math.inf
    last_scale_in: float = -math.inf
    last_guardrail: float = -math.inf


def proportional(current: int, metric: float, target: float) -> int:
    """Target tracking's capacity for a metric: as many tasks as bring the metric to the target."""
    return math.ceil(max(current, 1) * metric / target - 1e-9)


def tracking_decision(
    policy: ScalingPolicy, state: ScalingState, now: float, current: int, metric: float | None
) -> tuple[int, str] | None:
    """One evaluation period of target tracking: the capacity it asks and why, or None. Updates `state`."""
    if metric is None:  # no datapoint: the alarms' missing data, neither above nor below
        return None
    state.above = state.above + 1 if metric > policy.target else 0
    state.below = state.below + 1 if metric < policy.target else 0
    wanted = proportional(current, metric, policy.target)
    if state.above >= HIGH_PERIODS and wanted > current and now - state.last_scale_out >= policy.scale_out_cooldown:
        state.last_scale_out = now
        return wanted, f"target tracking: {metric:,.0f} waiting per task > target {policy.target:,.0f}"
    if state.below >= LOW_PERIODS and wanted < current and now - state.last_scale_in >= policy.scale_in_cooldown:
        state.last_scale_in = now
        return wanted, f"target tracking: {metric:,.0f} waiting per task < target {policy.target:,.0f}"
    return None


def guardrail_decision(
    policy: ScalingPolicy, state: ScalingState, now: float, current: int, alarm: bool
) -> tuple[int, str] | None:
    """The step-scaling guardrail, while its alarm (the oldest order older than the acceptable latency) fires."""
    if policy.guardrail_percent is None or not alarm or now - state.last_guardrail < policy.guardrail_cooldown:
        return None
    state.last_guardrail = now
    step = max(policy.guardrail_min_adjustment, math.ceil(current * policy.guardrail_percent / 100 - 1e-9))
    return current + step, "guardrail: the oldest order is older than the acceptable latency"


def scale_in_due(
    policy: ScalingPolicy, state: ScalingState, next_evaluation: float, evaluation_seconds: float = EVALUATION_SECONDS
) -> float:
    """When target tracking scales in if the metric stays below the target from now on (an empty queue does):
    the evaluation that completes LOW_PERIODS periods below, and no sooner than the scale-in cooldown."""
    remaining = max(0, LOW_PERIODS - state.below - 1)
    due = next_evaluation + remaining * evaluation_seconds
    while due - state.last_scale_in < policy.scale_in_cooldown:
        due += evaluation_seconds
    return due
