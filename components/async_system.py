"""The report's Part III, receiver -> order pipeline -> workers, in one region: the stack's own (the primary), or,
with two or more regions (docs/multi-region.md), a regional copy under `components.region.RegionalCopy`.

`async_dimensions` is what the alarms and the dashboard watch of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pulumi

from app import contract
from app.alarm_catalogue import AlarmSubject
from app.roles import Role
from components.fargate import Placement, TaskSpec
from components.load_balanced import LoadBalancedService, LoadBalancedServiceArgs
from components.pipeline import OrderPipeline, OrderPipelineArgs, TableReplica
from components.queue_worker import QueueWorkerService, QueueWorkerServiceArgs
from components.settings import ConfigError, Settings, stack_file
from components.watched import Dimensions
from planning import calendar


@dataclass(frozen=True)
class AsyncSystem:
    """The report's Part III: receiver -> order pipeline -> workers."""

    pipeline: OrderPipeline
    receiver: LoadBalancedService
    worker: QueueWorkerService


def async_system(
    s: Settings,
    placement: Placement,
    *,
    tag: str = "",
    parent: pulumi.Resource | None = None,
    provider: pulumi.ProviderResource | None = None,
    replica_regions: tuple[str, ...] = (),
    replica_of: TableReplica | None = None,
) -> AsyncSystem:
    """The report's Part III in one region. The primary's (no `tag`, no `parent`) is the stack's, as it always was;
    a regional copy's logical names start with `tag` (`use2-`) and its components sit under `parent`, with the
    region's `provider` (their children inherit it). `replica_regions`: the primary's table is a global table with
    these replicas; `replica_of`: a regional copy uses its region's replica."""
    try:
        steps, notes = calendar.schedule(s.sales, s.calendar_inputs(), datetime.now(UTC))
    except calendar.CalendarError as error:
        raise ConfigError(f"{stack_file()}: {error}") from None
    for note in notes if not tag else ():  # said once, for the primary
        pulumi.log.info(f"sale calendar: {note}")
    pipeline = OrderPipeline(
        f"{tag}orders",
        OrderPipelineArgs(protect_data=s.protect_data, replica_regions=replica_regions, replica_of=replica_of),
        opts=_under(parent, provider),
    )
    worker = QueueWorkerService(
        f"{tag}worker",
        QueueWorkerServiceArgs(
            placement=placement,
            task=TaskSpec(
                role=Role.WORKER,
                desired_count=s.worker_tasks,
                environment={
                    contract.ENV_QUEUE_URL: pipeline.queue.url,
                    contract.ENV_ORDERS_TABLE: pipeline.table_name,
                    contract.ENV_WORKER_COUNT: str(s.worker_count),
                    contract.ENV_PAYMENT_SECONDS: str(s.payment_seconds),
                    contract.ENV_PAYMENT_DECLINE_RATE: str(s.payment_decline_rate),
                    # The buyers' wait metric's Stack dimension (its Region is the task's AWS_REGION, set by ECS).
                    contract.ENV_STACK_NAME: pulumi.get_stack(),
                },
                grants=(pipeline.grant_consume(), pipeline.grant_settle_orders()),
            ),
            queue_name=pipeline.queue.name,
            backlog_per_task_target=s.backlog_per_task_target,
            acceptable_latency_seconds=s.acceptable_latency_seconds,
            min_tasks=s.min_worker_tasks,
            max_tasks=s.max_worker_tasks,
            sale_schedule=tuple(steps),
        ),
        opts=_under(parent, provider),
    )
    receiver = LoadBalancedService(
        f"{tag}receiver",
        LoadBalancedServiceArgs(
            placement=placement,
            task=TaskSpec(
                role=Role.RECEIVER,
                desired_count=s.receiver_tasks,
                environment={
                    contract.ENV_TOPIC_ARN: pipeline.topic.arn,
                    contract.ENV_QUEUE_URL: pipeline.queue.url,
                    contract.ENV_ORDERS_TABLE: pipeline.table_name,
                    # For /health's num_workers and the order-status estimate: the expected wait over the worker
                    # service's running tasks, as the alarms compute it (app.expected_wait).
                    contract.ENV_WORKER_COUNT: str(s.worker_count),
                    contract.ENV_PAYMENT_SECONDS: str(s.payment_seconds),
                    **worker.ref.environment(),
                },
                grants=(
                    pipeline.grant_publish(),
                    pipeline.grant_write_orders(),
                    pipeline.grant_queue_depth(),
                    worker.ref.grant_describe(),
                ),
            ),
        ),
        opts=_under(parent, provider),
    )
    return AsyncSystem(pipeline=pipeline, receiver=receiver, worker=worker)


def _under(parent: pulumi.Resource | None, provider: pulumi.ProviderResource | None) -> pulumi.ResourceOptions | None:
    """A component's options: none at the top of the stack (the primary's, as they always were)."""
    if parent is None and provider is None:
        return None
    return pulumi.ResourceOptions(parent=parent, provider=provider)


def async_dimensions(orders: AsyncSystem, region: str) -> dict[AlarmSubject, Dimensions]:
    """What the alarms and the dashboard watch of one region's async system."""
    pipeline, receiver, worker = orders.pipeline, orders.receiver, orders.worker
    return {
        AlarmSubject.QUEUE: pipeline.queue_dimensions,
        AlarmSubject.DLQ: pipeline.dlq_dimensions,
        AlarmSubject.WORKER_SERVICE: worker.service.dimensions,
        AlarmSubject.RECEIVER_SERVICE: receiver.service.dimensions,
        AlarmSubject.RECEIVER_ALB: receiver.alb_dimensions,
        # What the workers write into their payment lines (app.worker.wait_metric): this stack, in its region.
        AlarmSubject.BUYER_WAIT: {
            contract.WAIT_DIMENSION_STACK: pulumi.get_stack(),
            contract.WAIT_DIMENSION_REGION: region,
        },
    }
