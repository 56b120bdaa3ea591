"""FargateService: one role of the service image running on ECS Fargate, the building block of the patterns.

Creates: a log group, an execution role (ECR pull and log writing through the AWS managed
AmazonECSTaskExecutionRolePolicy), a task role holding only the grants it is given (none for the sync service),
a task definition (256 CPU units / 512 MB, non-root user, read-only root filesystem with a task-storage volume on
/tmp) and the ECS service. The service ignores `desiredCount` after creation, so auto-scaling and
`ops.prescale` are not undone by the next `pulumi up`, and rolls back failed deploys with the circuit breaker.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from app import contract, healthcheck
from app.roles import Role
from components.access_logs import AccessLogBucket
from components.cluster import ServiceCluster
from components.defaults import LOG_RETENTION_DAYS
from components.endpoint import PublicEndpointArgs
from components.iam import Grant, inline_policy, service_role

EXECUTION_POLICY_ARN = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
HEALTH_CHECK_GRACE_SECONDS = 60
TMP_VOLUME = "tmp"
ECS_TASKS = "ecs-tasks.amazonaws.com"


@dataclass(frozen=True)
class Placement:
    """Where every service runs and from which image: shared by every service of the application."""

    cluster: ServiceCluster
    image: pulumi.Input[str]
    region: str
    vpc_id: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[str]]
    alb_security_group_id: pulumi.Input[str]
    tasks_security_group_id: pulumi.Input[str]
    access_logs: AccessLogBucket  # every ALB's access logs
    certificate_arn: str = ""  # HTTPS on the ALBs when set
    name_prefix: str = "flashsale"  # of the names set explicitly (task families): two stacks never share one

    def endpoint(self) -> PublicEndpointArgs:
        return PublicEndpointArgs(
            vpc_id=self.vpc_id,
            subnet_ids=self.subnet_ids,
            security_group_id=self.alb_security_group_id,
            access_logs=self.access_logs,
            certificate_arn=self.certificate_arn,
        )


@dataclass(frozen=True)
class Port:
    """The load balancer target group a web role registers with; its listeners must exist before the service."""

    target_group_arn: pulumi.Input[str]
    listeners: Sequence[pulumi.Resource]


@dataclass(frozen=True)
class TaskSpec:
    """What a service's tasks run: one role of the image, how many, with what environment and AWS access."""

    role: Role  # the ROLE the container runs
    desired_count: int = 1  # at deploy time; later changes (ops.prescale, auto-scaling) are not undone by `pulumi up`
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)  # on top of ROLE and PORT
    grants: Sequence[Grant] = ()  # the task role's policy; none: no task role (no AWS access)


@dataclass(frozen=True)
class FargateServiceArgs:
    placement: Placement
    task: TaskSpec
    port: Port | None = None  # registered with a load balancer; none: no port mapping


class FargateService(pulumi.ComponentResource):
    def __init__(self, name: str, args: FargateServiceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:fargate:FargateService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        task = args.task
        self.log_group = aws.cloudwatch.LogGroup(f"{name}-logs", retention_in_days=LOG_RETENTION_DAYS, opts=child)

        execution_role = service_role(f"{name}-execution", ECS_TASKS, child)
        aws.iam.RolePolicyAttachment(
            f"{name}-execution-policy", role=execution_role.name, policy_arn=EXECUTION_POLICY_ARN, opts=child
        )
        task_role_arn: pulumi.Input[str] | None = None
        if task.grants:
            task_role = service_role(f"{name}-task-role", ECS_TASKS, child)
            inline_policy(f"{name}-task-policy", task_role, task.grants, child)
            task_role_arn = task_role.arn

        check = healthcheck.HEALTH_CHECK
        environment = {
            contract.ENV_ROLE: task.role,
            contract.ENV_PORT: str(contract.CONTAINER_PORT),
            **task.environment,
        }
        container = {
            "name": task.role,
            "image": args.placement.image,
            "essential": True,
            "user": f"{contract.CONTAINER_UID}:{contract.CONTAINER_UID}",
            "readonlyRootFilesystem": True,
            "mountPoints": [{"sourceVolume": TMP_VOLUME, "containerPath": contract.WRITABLE_PATH}],
            "portMappings": [{"containerPort": contract.CONTAINER_PORT, "protocol": "tcp"}] if args.port else [],
            # ECS ignores the image's HEALTHCHECK; the same command checks /health (web) or the heartbeat (worker).
            "healthCheck": {
                "command": ["CMD", *check.command],
                "interval": check.interval_seconds,
                "timeout": check.timeout_seconds,
                "retries": check.retries,
                "startPeriod": check.start_period_seconds,
            },
            # Set, not left to ECS's default: the worker's drain bound (DRAIN_SECONDS) is derived from it.
            "stopTimeout": contract.STOP_TIMEOUT_SECONDS,
            "environment": [{"name": key, "value": value} for key, value in sorted(environment.items())],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": self.log_group.name,
                    "awslogs-region": args.placement.region,
                    "awslogs-stream-prefix": task.role,
                },
            },
        }
        self.task_definition = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=f"{args.placement.name_prefix}-{name}",
            cpu=str(contract.TASK_CPU_UNITS),
            memory=str(contract.TASK_MEMORY_MB),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            runtime_platform={"operating_system_family": "LINUX", "cpu_architecture": "X86_64"},
            execution_role_arn=execution_role.arn,
            task_role_arn=task_role_arn,
            volumes=[{"name": TMP_VOLUME}],  # task ephemeral storage: writable /tmp under a read-only root
            container_definitions=pulumi.Output.json_dumps([container]),
            opts=child,
        )

        load_balancers: list[aws.ecs.ServiceLoadBalancerArgsDict] = []
        depends_on: list[pulumi.Resource] = []
        if args.port is not None:
            load_balancers.append(
                {
                    "target_group_arn": args.port.target_group_arn,
                    "container_name": task.role,
                    "container_port": contract.CONTAINER_PORT,
                }
            )
            depends_on.extend(args.port.listeners)
        self.service = aws.ecs.Service(
            f"{name}-service",
            cluster=args.placement.cluster.arn,
            task_definition=self.task_definition.arn,
            desired_count=task.desired_count,
            launch_type="FARGATE",
            network_configuration={
                "subnets": args.placement.subnet_ids,
                "security_groups": [args.placement.tasks_security_group_id],
                "assign_public_ip": True,  # default VPC, no NAT: a public IP is how tasks reach ECR and AWS APIs
            },
            load_balancers=load_balancers,
            health_check_grace_period_seconds=HEALTH_CHECK_GRACE_SECONDS if args.port is not None else None,
            deployment_circuit_breaker={"enable": True, "rollback": True},
            propagate_tags="SERVICE",
            enable_ecs_managed_tags=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on, ignore_changes=["desiredCount"]),
        )
        self.service_name: pulumi.Output[str] = self.service.name
        # What its alarms and dashboard lines watch (Container Insights' and AWS/ECS's dimensions).
        self.dimensions: dict[str, pulumi.Output[str]] = {
            "ClusterName": args.placement.cluster.name,
            "ServiceName": self.service_name,
        }
        self.register_outputs(
            {
                "service_name": self.service_name,
                "task_definition_arn": self.task_definition.arn,
                "log_group": self.log_group.name,
            }
        )
