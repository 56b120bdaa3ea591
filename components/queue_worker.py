"""QueueWorkerService: a role that works off a queue, scaled on its backlog (CDK's QueueProcessingFargateService).

Creates: a FargateService (`<name>-svc`, no port) and its auto-scaling, all from one SLO, the acceptable latency:
target tracking on backlog per task (queue visible messages / running tasks, Container Insights), aiming at the
backlog a task starts within the acceptable latency; a guardrail that adds tasks when the oldest waiting message is
older than the acceptable latency (step scaling on ApproximateAgeOfOldestMessage: target tracking reacts to depth,
not to a queue that stopped moving); and one scheduled action per step of the sale calendar, setting MinCapacity
(raised before a sale, stepped down after). With scale-in protection (the default) the task role may protect its
own task while it holds messages (app.protection), so scaling in never picks a busy task.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypedDict

import pulumi
import pulumi_aws as aws

from app import contract
from components import wait_metrics
from components.fargate import FargateService, FargateServiceArgs, Placement, TaskSpec
from components.iam import Grant
from planning.calendar import ScheduledStep


class ScalableTarget(TypedDict):
    """What names the scalable target, for each policy and scheduled action acting on it."""

    service_namespace: pulumi.Input[str]
    scalable_dimension: pulumi.Input[str]
    resource_id: pulumi.Input[str]


@dataclass(frozen=True)
class WorkerServiceRef:
    """The worker service as other roles look it up (DescribeServices' running count): the receiver's order-status
    estimate and the notifier's "tasks to add" divide by its running tasks."""

    cluster_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    service_arn: pulumi.Input[str]

    def environment(self) -> dict[str, pulumi.Input[str]]:
        """The variables that name it to the role's code."""
        return {contract.ENV_WORKER_CLUSTER: self.cluster_name, contract.ENV_WORKER_SERVICE: self.service_name}

    def grant_describe(self) -> Grant:
        return Grant(self.service_arn, ("ecs:DescribeServices",))


@dataclass(frozen=True)
class QueueWorkerServiceArgs:
    placement: Placement
    task: TaskSpec  # a role without an HTTP server; its desired count is the scaling's from then on
    queue_name: pulumi.Input[str]  # the queue whose backlog it works off
    backlog_per_task_target: float  # visible messages per running task that target tracking holds
    acceptable_latency_seconds: float  # the guardrail adds tasks while the oldest message is older than this
    min_tasks: int = 1
    max_tasks: int = 10  # the report's 6.5
    scale_in_protection: bool = True  # tasks may protect themselves while busy (ecs:UpdateTaskProtection)
    scale_out_cooldown_seconds: int = 60
    scale_in_cooldown_seconds: int = 300  # scale in slowly after a sale (report 6.3: "scale down gradually")
    guardrail_step_percent: int = 50  # of the running tasks, at least one, each time the oldest message is too old
    guardrail_period_seconds: int = 60
    sale_schedule: tuple[ScheduledStep, ...] = ()  # the sale calendar's steps (planning.calendar)


class QueueWorkerService(pulumi.ComponentResource):
    def __init__(self, name: str, args: QueueWorkerServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:patterns:QueueWorkerService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        protection = (args.placement.cluster.grant_task_protection(),) if args.scale_in_protection else ()
        task = replace(args.task, grants=(*args.task.grants, *protection))
        self.service = FargateService(f"{name}-svc", FargateServiceArgs(args.placement, task), opts=child)
        self.ref = WorkerServiceRef(
            cluster_name=args.placement.cluster.name,
            service_name=self.service.service_name,
            service_arn=self.service.service.id,
        )
        self._scale_on_backlog(name, args, child)
        self.register_outputs({"service_name": self.service.service_name})

    def _scale_on_backlog(self, name: str, args: QueueWorkerServiceArgs, child: pulumi.ResourceOptions) -> None:
        """Track backlog per task: visible messages / running tasks, aiming at the acceptable latency."""
        cluster_name = args.placement.cluster.name
        target = aws.appautoscaling.Target(
            f"{name}-scaling",
            service_namespace=contract.SCALING_NAMESPACE,
            scalable_dimension=contract.SCALABLE_DIMENSION,
            resource_id=pulumi.Output.all(cluster_name, self.service.service_name).apply(
                lambda names: contract.scalable_resource_id(*names)
            ),
            min_capacity=args.min_tasks,
            max_capacity=args.max_tasks,
            # MinCapacity belongs to the run time once the target exists: ops.prescale raises it before a sale and
            # the sale calendar's scheduled actions raise and step it down. Declared, it would be put back by the
            # next `pulumi up --refresh` (the default of many pipelines) in the middle of a pre-scaled sale. So
            # `minWorkerTasks` is the minimum a new stack starts with; afterwards `ops.prescale --restore
            # --normal-tasks N` sets it (docs/runbook/prescale.md). MaxCapacity stays the program's (no run-time
            # command changes it: prescale refuses to go past it).
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(ignore_changes=["min_capacity"])),
        )
        on_target: ScalableTarget = {
            "service_namespace": target.service_namespace,
            "scalable_dimension": target.scalable_dimension,
            "resource_id": target.resource_id,
        }
        aws.appautoscaling.Policy(
            f"{name}-backlog",
            policy_type="TargetTrackingScaling",
            **on_target,
            target_tracking_scaling_policy_configuration={
                "target_value": args.backlog_per_task_target,
                "scale_out_cooldown": args.scale_out_cooldown_seconds,
                "scale_in_cooldown": args.scale_in_cooldown_seconds,
                "customized_metric_specification": {
                    "metrics": wait_metrics.scaling_metrics({"QueueName": args.queue_name}, self.service.dimensions)
                },
            },
            opts=child,
        )
        guardrail = aws.appautoscaling.Policy(
            f"{name}-age-guardrail",
            policy_type="StepScaling",
            **on_target,
            step_scaling_policy_configuration={
                "adjustment_type": "PercentChangeInCapacity",
                "min_adjustment_magnitude": 1,
                "cooldown": args.scale_out_cooldown_seconds,
                "metric_aggregation_type": "Maximum",
                "step_adjustments": [
                    {"metric_interval_lower_bound": "0", "scaling_adjustment": args.guardrail_step_percent}
                ],
            },
            opts=child,
        )
        for step in args.sale_schedule:
            aws.appautoscaling.ScheduledAction(
                f"{name}-sale-{step.action_name}",
                **on_target,
                schedule=step.schedule,
                timezone=step.timezone,
                scalable_target_action={"min_capacity": step.min_capacity},
                opts=child,
            )
        aws.cloudwatch.MetricAlarm(
            f"{name}-age-alarm",
            alarm_description="Scaling guardrail (not a page): the oldest waiting order is older than the acceptable "
            "latency; adds worker tasks.",
            namespace="AWS/SQS",
            metric_name="ApproximateAgeOfOldestMessage",
            dimensions={"QueueName": args.queue_name},
            statistic="Maximum",
            period=args.guardrail_period_seconds,
            evaluation_periods=1,
            threshold=args.acceptable_latency_seconds,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[guardrail.arn],
            opts=child,
        )
