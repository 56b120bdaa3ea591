"""ServiceCluster: the one ECS cluster every service of the application runs in.

Creates: an ECS cluster with Container Insights on, whose RunningTaskCount the worker scaling and the expected-wait
alarms divide by. It hands out the grant a task needs to protect itself from scale-in (`grant_task_protection`): the
ECS agent calls UpdateTaskProtection with the task role's credentials, on the task's ARN in this cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.iam import Grant

# The agent's task-protection endpoint acts with the task role: without this action every call is refused on AWS.
TASK_PROTECTION_ACTIONS = ("ecs:UpdateTaskProtection",)


@dataclass(frozen=True)
class ServiceClusterArgs:
    region: str  # of the task ARNs a grant names


class ServiceCluster(pulumi.ComponentResource):
    def __init__(self, name: str, args: ServiceClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:compute:ServiceCluster", name, None, opts)
        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            settings=[{"name": "containerInsights", "value": "enabled"}],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn: pulumi.Output[str] = self.cluster.arn
        self.name: pulumi.Output[str] = self.cluster.name
        account_id = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        # Task ids are only known at run time: the one wildcard is the task id within this cluster.
        self.tasks_arn: pulumi.Output[str] = pulumi.Output.concat(
            "arn:aws:ecs:", args.region, ":", account_id, ":task/", self.cluster.name, "/*"
        )
        self.register_outputs({"cluster_name": self.name, "cluster_arn": self.arn})

    def grant_task_protection(self) -> Grant:
        """A task of this cluster may set its own scale-in protection (app.protection)."""
        return Grant(self.tasks_arn, TASK_PROTECTION_ACTIONS)
