"""Pre-scale the worker service before a flash sale, and step it back down afterwards (report 6.3).

Raising desiredCount alone is not enough: target tracking would scale in again as soon as the queue looks quiet,
so prescale first lifts the Application Auto Scaling target's MinCapacity to the task count, then sets
desiredCount and waits until ECS reports the service stable. `--restore` lowers both in steps, pausing between
them, down to the normal level ("scale down gradually"). `--dry-run` prints the plan and changes nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app import aws, contract
from ops import capacity, stack
from planning import calendar
from planning.capacity import PlanInputs, plan
from stackconfig import output_names
from stackconfig.schema import CONFIG_DEFAULTS

SERVICE_OUTPUTS = (output_names.CLUSTER_NAME, output_names.WORKER_SERVICE_NAME)
# The planner's inputs from the stack; their flags are the planner's own (--workers-per-task, --payment-seconds).
PLANNER_OUTPUTS = (output_names.WORKER_COUNT, output_names.PAYMENT_SECONDS)


@dataclass(frozen=True)
class ServiceState:
    cluster: str
    service: str
    desired: int
    running: int
    min_capacity: int
    max_capacity: int

    @property
    def resource_id(self) -> str:
        return contract.scalable_resource_id(self.cluster, self.service)


def read_state(ecs: Any, autoscaling: Any, cluster: str, service: str) -> ServiceState:
    """The service and its scalable target; refuses clearly when either does not exist."""
    found = ecs.describe_services(cluster=cluster, services=[service])
    services = [s for s in found.get("services", []) if s.get("status") == "ACTIVE"]
    if not services:
        raise stack.OpsError(f"ECS service {service!r} not found (or not ACTIVE) in cluster {cluster!r}")
    resource_id = contract.scalable_resource_id(cluster, service)
    targets = autoscaling.describe_scalable_targets(
        ServiceNamespace=contract.SCALING_NAMESPACE,
        ResourceIds=[resource_id],
        ScalableDimension=contract.SCALABLE_DIMENSION,
    )["ScalableTargets"]
    if not targets:
        raise stack.OpsError(
            f"no Application Auto Scaling target for {resource_id}: the stack registers one; "
            "without it prescale cannot keep the service from scaling in"
        )
    return ServiceState(
        cluster=cluster,
        service=service,
        desired=int(services[0]["desiredCount"]),
        running=int(services[0]["runningCount"]),
        min_capacity=int(targets[0]["MinCapacity"]),
        max_capacity=int(targets[0]["MaxCapacity"]),
    )


def prescale_steps(state: ServiceState, tasks: int) -> list[int]:
    """Task counts to go through; each step sets both MinCapacity and desiredCount to the count."""
    if tasks > state.max_capacity:
        raise stack.OpsError(
            f"{tasks} tasks exceed the scalable target's MaxCapacity {state.max_capacity}: raise it "
            f"(`pulumi config set maxWorkerTasks {tasks}` then `pulumi up`) or ask for fewer tasks"
        )
    if tasks < state.desired:
        raise stack.OpsError(
            f"the service already wants {state.desired} tasks; prescale only raises (use --restore to step down)"
        )
    return [] if tasks == state.desired == state.min_capacity else [tasks]


def restore_steps(state: ServiceState, normal: int, step: int) -> list[int]:
    """From the current count down to `normal`, `step` tasks at a time."""
    if normal > state.max_capacity:
        raise stack.OpsError(f"normal level {normal} exceeds the scalable target's MaxCapacity {state.max_capacity}")
    if state.desired == state.min_capacity == normal:
        return []
    return calendar.step_down(state.desired, normal, step) or [normal]  # the calendar steps down the same way


def wait_stable(ecs: Any, state: ServiceState, tasks: int, timeout: float, poll: float) -> None:
    """Poll until one deployment runs exactly `tasks` tasks, printing each change of the counts."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        service = ecs.describe_services(cluster=state.cluster, services=[state.service])["services"][0]
        now = (service["runningCount"], service.get("pendingCount", 0), len(service.get("deployments", [])))
        if now != last:
            stack.progress(f"  {state.service}: {now[0]}/{tasks} running, {now[1]} pending, {now[2]} deployment(s)")
            last = now
        if now[0] == tasks and service["desiredCount"] == tasks and now[2] <= 1:
            return
        if time.monotonic() > deadline:
            raise stack.OpsError(
                f"{state.service} not stable after {timeout:.0f} s ({now[0]}/{tasks} running): "
                "check `aws ecs describe-services` events for placement or image errors"
            )
        time.sleep(poll)


def apply_step(ecs: Any, autoscaling: Any, state: ServiceState, tasks: int) -> None:
    """MinCapacity first, so that auto-scaling never pulls the service below the new count while it moves."""
    autoscaling.register_scalable_target(
        ServiceNamespace=contract.SCALING_NAMESPACE,
        ResourceId=state.resource_id,
        ScalableDimension=contract.SCALABLE_DIMENSION,
        MinCapacity=tasks,
        MaxCapacity=state.max_capacity,
    )
    ecs.update_service(cluster=state.cluster, service=state.service, desiredCount=tasks)


def needed_tasks(args: argparse.Namespace, outputs: dict[str, Any]) -> tuple[int, str]:
    """--tasks, or the planner's recommendation; the reason is printed with the plan."""
    if args.tasks is not None:
        if args.tasks < 1:
            raise stack.OpsError("--tasks must be at least 1")
        return args.tasks, "given with --tasks"
    defaults = PlanInputs()
    inputs = PlanInputs(
        arrival_rate=args.rate,
        payment_seconds=args.payment_seconds
        or float(outputs.get(output_names.PAYMENT_SECONDS, defaults.payment_seconds)),
        workers_per_task=args.workers_per_task
        or int(outputs.get(output_names.WORKER_COUNT, defaults.workers_per_task)),
        safety_margin=args.margin,
    )
    result = plan(inputs)
    return result.recommended_tasks, (
        f"planner: {inputs.arrival_rate:g} orders/s x {inputs.payment_seconds:g} s with {inputs.safety_margin:.0%} "
        f"margin = {result.recommended_workers} workers / {inputs.workers_per_task} per task"
    )


def describe(state: ServiceState, steps: list[int], reason: str) -> str:
    lines = [
        f"{state.resource_id}: desired {state.desired}, running {state.running}, "
        f"auto-scaling min {state.min_capacity} max {state.max_capacity}"
    ]
    if reason:
        lines.append(f"Target: {steps[-1] if steps else state.desired} tasks ({reason})")
    lines += [f"  step {n}: MinCapacity -> {tasks}, desiredCount -> {tasks}" for n, tasks in enumerate(steps, 1)]
    return "\n".join(lines)


def calendar_overrides(autoscaling: Any, resource_id: str) -> list[str]:
    """The scheduled actions still to come on the worker service (the sale calendar): each will set MinCapacity
    again, overriding what prescale sets by hand."""
    found = autoscaling.describe_scheduled_actions(
        ServiceNamespace=contract.SCALING_NAMESPACE,
        ResourceId=resource_id,
        ScalableDimension=contract.SCALABLE_DIMENSION,
    )["ScheduledActions"]
    now = datetime.now(UTC)
    notes = []
    for action in found:
        when = _one_time(action.get("Schedule", ""), action.get("Timezone") or "UTC")
        minimum = action.get("ScalableTargetAction", {}).get("MinCapacity")
        if when is not None and when > now and minimum is not None:
            notes.append(
                f"note: the sale calendar sets MinCapacity to {minimum} at {when.isoformat(timespec='minutes')} "
                f"({action['ScheduledActionName']}), overriding this"
            )
    return sorted(notes)


def _one_time(schedule: str, zone: str) -> datetime | None:
    """The moment of an `at(...)` schedule, in UTC; None for rate() and cron() schedules."""
    if not (schedule.startswith("at(") and schedule.endswith(")")):
        return None
    try:
        return datetime.fromisoformat(schedule[3:-1]).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    except (ValueError, ZoneInfoNotFoundError):
        return None


def command(args: argparse.Namespace) -> int:
    if args.calendar is not None:
        steps_, notes_ = capacity.read_calendar(args.calendar)
        stack.emit(args, capacity.schedule_json(steps_, notes_), capacity.render_schedule(steps_, notes_))
        return 0
    outputs = stack.resolve_outputs(args, SERVICE_OUTPUTS + PLANNER_OUTPUTS, optional=PLANNER_OUTPUTS)
    ecs, autoscaling = aws.client("ecs"), aws.client("application-autoscaling")
    state = read_state(ecs, autoscaling, outputs[output_names.CLUSTER_NAME], outputs[output_names.WORKER_SERVICE_NAME])
    overrides = calendar_overrides(autoscaling, state.resource_id)
    if args.restore:
        if args.step < 1:
            raise stack.OpsError("--step must be at least 1")
        steps, reason = restore_steps(state, args.normal_tasks, args.step), ""
    else:
        tasks, reason = needed_tasks(args, outputs)
        steps = prescale_steps(state, tasks)
    plan_text = describe(state, steps, reason) if steps else describe(state, steps, "") + "\nNothing to do."
    plan_text = "\n".join([plan_text, *overrides])
    if args.dry_run or not steps:
        stack.emit(
            args,
            {"before": asdict(state), "steps": steps, "applied": False},
            plan_text + ("\nDry run: nothing changed." if args.dry_run else ""),
        )
        return 0
    stack.progress(plan_text)
    for number, tasks in enumerate(steps, 1):
        if number > 1 and args.pause > 0:
            stack.progress(f"  pausing {args.pause:g} s before the next step")
            time.sleep(args.pause)
        apply_step(ecs, autoscaling, state, tasks)
        wait_stable(ecs, state, tasks, args.timeout, args.poll)
        state = read_state(ecs, autoscaling, state.cluster, state.service)
    stack.emit(
        args,
        {"after": asdict(state), "steps": steps, "applied": True},
        f"Done: {state.resource_id} runs {state.running} tasks, auto-scaling min {state.min_capacity} "
        f"max {state.max_capacity}.",
    )
    return 0


def parser() -> argparse.ArgumentParser:
    d = PlanInputs()
    p = argparse.ArgumentParser(
        prog="python -m ops.prescale",
        description=__doc__.split("\n\n")[0],
        epilog="Without --tasks the task count comes from the capacity planner "
        "(python -m ops.capacity) and the stack's workerCount/paymentSeconds.",
    )
    p.add_argument("--tasks", type=int, help="worker tasks to run during the sale")
    p.add_argument("--rate", type=float, default=d.arrival_rate, help="expected peak orders/s (%(default)s)")
    p.add_argument("--payment-seconds", type=float, help="seconds per payment (default: stack output, else 3)")
    p.add_argument("--workers-per-task", type=int, help="workers per task (default: stack output workerCount)")
    p.add_argument("--margin", type=float, default=d.safety_margin, help="safety margin (%(default)s)")
    p.add_argument("--restore", action="store_true", help="after the sale: step down to --normal-tasks")
    p.add_argument(
        "--normal-tasks",
        type=int,
        default=CONFIG_DEFAULTS.min_worker_tasks,
        help="the normal MinCapacity and task count to restore (%(default)s, the stack's minWorkerTasks)",
    )
    p.add_argument(
        "--step",
        type=int,
        default=calendar.STEP_DOWN_TASKS,
        help="tasks removed per restore step (%(default)s, as the sale calendar steps down)",
    )
    p.add_argument(
        "--pause",
        type=float,
        default=calendar.STEP_DOWN_PAUSE_SECONDS,
        help="seconds between restore steps (%(default)s)",
    )
    p.add_argument(
        "--calendar",
        type=Path,
        metavar="STACK_FILE",
        help="print the schedule this stack file's sale calendar produces (changes nothing)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for a stable service (%(default)s)")
    p.add_argument("--poll", type=float, default=5, help="seconds between stability checks (%(default)s)")
    stack.add_output_arguments(p, SERVICE_OUTPUTS)
    stack.add_json_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    return stack.run(parser(), command, argv)


if __name__ == "__main__":
    sys.exit(main())
