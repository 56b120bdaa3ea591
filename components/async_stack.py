"""AsyncOrderStack: the report's Part III, order receiver -> SNS -> SQS -> workers, with DynamoDB order records.

Creates: the order topic (SNS, encrypted), the order queue (SQS, encrypted, the report's timings) with its DLQ, a raw
SNS->SQS subscription and a queue policy admitting only that topic, the orders table (on-demand, encrypted, with TTL
on the idempotency records' expiry attribute), an
ECS cluster with Container Insights, the receiver behind its own PublicEndpoint, the worker service running
`workerCount` concurrent payments per task, and auto-scaling of the workers from one SLO, `acceptableLatencySeconds`:
target tracking on backlog per task (queue visible messages / running worker tasks, aiming at the backlog a task
starts within the acceptable latency) and a guardrail that adds tasks when the oldest waiting order is older than
the acceptable latency (step scaling on ApproximateAgeOfOldestMessage: target tracking reacts to depth, not to a
queue that stopped moving). Each step of the sale calendar becomes a scheduled action setting the worker service's
MinCapacity (raised before a sale, stepped down after).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from app import contract
from app.contract import AlarmSubject
from components.defaults import SNS_MANAGED_KEY
from components.endpoint import PublicEndpoint
from components.fargate import FargateService, FargateServiceArgs, Placement, Port, insights_cluster
from components.iam import grants
from components.alerts import WorkerServiceRef
from planning.calendar import ScheduledStep

SCALE_OUT_COOLDOWN_SECONDS = 60
SCALE_IN_COOLDOWN_SECONDS = 300  # scale in slowly after a sale (report 6.3: "scale down gradually")
GUARDRAIL_STEP_PERCENT = 50  # of the running tasks, at least one, each time the oldest order is too old
GUARDRAIL_PERIOD_SECONDS = 60


@dataclass(frozen=True)
class AsyncOrderStackArgs:
    placement: Placement
    receiver_tasks: int
    worker_count: int
    worker_tasks: int
    min_worker_tasks: int
    max_worker_tasks: int
    payment_seconds: float
    payment_decline_rate: float
    backlog_per_task_target: float
    acceptable_latency_seconds: float
    sale_schedule: tuple[ScheduledStep, ...] = ()  # the sale calendar's steps (planning.calendar)


class AsyncOrderStack(pulumi.ComponentResource):
    def __init__(self, name: str, args: AsyncOrderStackArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:async:AsyncOrderStack", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        q = contract.ORDER_QUEUE

        self.topic = aws.sns.Topic(f"{name}-orders", kms_master_key_id=SNS_MANAGED_KEY, opts=child)
        self.dlq = aws.sqs.Queue(
            f"{name}-orders-dlq",
            message_retention_seconds=q.dlq_retention_seconds,
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-orders-queue",
            visibility_timeout_seconds=q.visibility_timeout_seconds,
            message_retention_seconds=q.message_retention_seconds,
            receive_wait_time_seconds=q.receive_wait_time_seconds,
            redrive_policy=self.dlq.arn.apply(q.redrive_policy),
            sqs_managed_sse_enabled=True,
            opts=child,
        )
        aws.sqs.QueuePolicy(
            f"{name}-orders-queue-policy",
            queue_url=self.queue.url,
            policy=pulumi.Output.all(self.queue.arn, self.topic.arn).apply(
                lambda arns: json.dumps(contract.queue_policy(arns[0], arns[1]))
            ),
            opts=child,
        )
        aws.sns.TopicSubscription(
            f"{name}-orders-to-queue",
            topic=self.topic.arn,
            protocol="sqs",
            endpoint=self.queue.arn,
            raw_message_delivery=True,
            opts=child,
        )
        self.table = aws.dynamodb.Table(
            f"{name}-orders-table",
            billing_mode="PAY_PER_REQUEST",
            hash_key=contract.ORDER_KEY,
            attributes=[{"name": contract.ORDER_KEY, "type": "S"}],
            server_side_encryption={"enabled": True},
            point_in_time_recovery={"enabled": True},
            # The receiver's Idempotency-Key records (`idem#...`) expire after 24 h; orders have no such attribute.
            ttl={"attribute_name": contract.IDEMPOTENCY_TTL_ATTRIBUTE, "enabled": True},
            opts=child,
        )

        self.cluster = insights_cluster(f"{name}-cluster", child)
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        cluster_tasks = pulumi.Output.concat("arn:aws:ecs:", args.placement.region, ":", account_id, ":task/",
                                             self.cluster.name, "/*")
        arns = {"topic": self.topic.arn, "queue": self.queue.arn, "table": self.table.arn,
                "cluster_tasks": cluster_tasks}
        self.endpoint = PublicEndpoint(
            f"{name}-web",
            args.placement.endpoint(),
            opts=child,
        )
        self.receiver = FargateService(
            f"{name}-receiver",
            FargateServiceArgs(
                role="receiver",
                placement=args.placement,
                cluster_arn=self.cluster.arn,
                desired_count=args.receiver_tasks,
                environment={
                    contract.ENV_TOPIC_ARN: self.topic.arn,
                    contract.ENV_QUEUE_URL: self.queue.url,
                    contract.ENV_ORDERS_TABLE: self.table.name,
                    # For /health's num_workers and the order-status estimate (queue position / workers x payment).
                    contract.ENV_WORKER_COUNT: str(args.worker_count),
                    contract.ENV_PAYMENT_SECONDS: str(args.payment_seconds),
                },
                grants=grants(contract.RECEIVER_PERMISSIONS, arns),
                port=Port(self.endpoint.target_group.arn, self.endpoint.listeners),
            ),
            opts=child,
        )
        self.worker = FargateService(
            f"{name}-worker",
            FargateServiceArgs(
                role="worker",
                placement=args.placement,
                cluster_arn=self.cluster.arn,
                desired_count=args.worker_tasks,
                environment={
                    contract.ENV_QUEUE_URL: self.queue.url,
                    contract.ENV_ORDERS_TABLE: self.table.name,
                    contract.ENV_WORKER_COUNT: str(args.worker_count),
                    contract.ENV_PAYMENT_SECONDS: str(args.payment_seconds),
                    contract.ENV_PAYMENT_DECLINE_RATE: str(args.payment_decline_rate),
                },
                grants=grants(contract.WORKER_PERMISSIONS, arns),
            ),
            opts=child,
        )
        self._autoscale(name, args, child)

        self.url: pulumi.Output[str] = self.endpoint.url
        # What the alarms and the dashboard watch, as CloudWatch dimensions.
        self.subjects: dict[AlarmSubject, dict[str, pulumi.Output[str]]] = {
            AlarmSubject.QUEUE: {"QueueName": self.queue.name},
            AlarmSubject.DLQ: {"QueueName": self.dlq.name},
            AlarmSubject.WORKER_SERVICE: {"ClusterName": self.cluster.name, "ServiceName": self.worker.service_name},
            AlarmSubject.RECEIVER_SERVICE: {"ClusterName": self.cluster.name,
                                            "ServiceName": self.receiver.service_name},
            AlarmSubject.RECEIVER_ALB: {"LoadBalancer": self.endpoint.arn_suffix},
        }
        self.register_outputs(
            {
                "url": self.url,
                "topic_arn": self.topic.arn,
                "queue_url": self.queue.url,
                "dlq_url": self.dlq.url,
                "table_name": self.table.name,
                "cluster_name": self.cluster.name,
                "worker_service_name": self.worker.service_name,
            }
        )

    def worker_service_ref(self) -> WorkerServiceRef:
        """What the alarm notifier needs to say how many worker tasks to add."""
        return WorkerServiceRef(cluster_name=self.cluster.name, service_name=self.worker.service_name,
                                service_arn=self.worker.service.id)

    def _autoscale(self, name: str, args: AsyncOrderStackArgs, child: pulumi.ResourceOptions) -> None:
        """Track backlog per task: visible messages / running worker tasks, aiming at the acceptable latency."""
        target = aws.appautoscaling.Target(
            f"{name}-worker-scaling",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=pulumi.Output.concat("service/", self.cluster.name, "/", self.worker.service_name),
            min_capacity=args.min_worker_tasks,
            max_capacity=args.max_worker_tasks,
            opts=child,
        )
        aws.appautoscaling.Policy(
            f"{name}-worker-backlog",
            policy_type="TargetTrackingScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            target_tracking_scaling_policy_configuration={
                "target_value": args.backlog_per_task_target,
                "scale_out_cooldown": SCALE_OUT_COOLDOWN_SECONDS,
                "scale_in_cooldown": SCALE_IN_COOLDOWN_SECONDS,
                "customized_metric_specification": {
                    "metrics": [
                        {
                            "id": "m1",
                            "label": "orders waiting",
                            "return_data": False,
                            "metric_stat": {
                                "stat": "Sum",
                                "metric": {
                                    "namespace": "AWS/SQS",
                                    "metric_name": "ApproximateNumberOfMessagesVisible",
                                    "dimensions": [{"name": "QueueName", "value": self.queue.name}],
                                },
                            },
                        },
                        {
                            "id": "m2",
                            "label": "running worker tasks",
                            "return_data": False,
                            "metric_stat": {
                                "stat": "Average",
                                "metric": {
                                    "namespace": "ECS/ContainerInsights",
                                    "metric_name": "RunningTaskCount",
                                    "dimensions": [
                                        {"name": "ClusterName", "value": self.cluster.name},
                                        {"name": "ServiceName", "value": self.worker.service_name},
                                    ],
                                },
                            },
                        },
                        {"id": "backlog_per_task", "label": "orders waiting per task", "expression": "m1 / m2", "return_data": True},
                    ]
                },
            },
            opts=child,
        )
        guardrail = aws.appautoscaling.Policy(
            f"{name}-worker-age-guardrail",
            policy_type="StepScaling",
            service_namespace=target.service_namespace,
            scalable_dimension=target.scalable_dimension,
            resource_id=target.resource_id,
            step_scaling_policy_configuration={
                "adjustment_type": "PercentChangeInCapacity",
                "min_adjustment_magnitude": 1,
                "cooldown": SCALE_OUT_COOLDOWN_SECONDS,
                "metric_aggregation_type": "Maximum",
                "step_adjustments": [{"metric_interval_lower_bound": "0", "scaling_adjustment": GUARDRAIL_STEP_PERCENT}],
            },
            opts=child,
        )
        for step in args.sale_schedule:
            aws.appautoscaling.ScheduledAction(
                f"{name}-worker-sale-{step.action_name}",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                schedule=step.schedule,
                timezone=step.timezone,
                scalable_target_action={"min_capacity": step.min_capacity},
                opts=child,
            )
        aws.cloudwatch.MetricAlarm(
            f"{name}-worker-age-alarm",
            alarm_description="Scaling guardrail (not a page): the oldest waiting order is older than the acceptable "
            "latency; adds worker tasks.",
            namespace="AWS/SQS",
            metric_name="ApproximateAgeOfOldestMessage",
            dimensions={"QueueName": self.queue.name},
            statistic="Maximum",
            period=GUARDRAIL_PERIOD_SECONDS,
            evaluation_periods=1,
            threshold=args.acceptable_latency_seconds,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=[guardrail.arn],
            opts=child,
        )
