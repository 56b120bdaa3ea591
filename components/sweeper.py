"""OrphanSweeper: closes orders left pending with no message behind them (app.sweeper), on a schedule.

Creates: the sweeper Lambda (`app.sweeper.handler`, with its log group, role, dead-letter queue and policy as every
app function has them: components.functions), an EventBridge (CloudWatch Events) rule that runs it on
`contract.SWEEP_SCHEDULE`, the rule's target, and the permission for EventBridge, from that rule only, to invoke it.
Its role holds exactly the calls it makes: the table's Scan and PartiQL UPDATE (`OrderPipeline.grant_sweep_orders`),
its own log group and its DLQ.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from app import contract
from components.functions import AppCode, app_function
from components.iam import Grant

SWEEPER_HANDLER = "app.sweeper.handler"
SWEEPER = AppCode(
    handler=SWEEPER_HANDLER,
    # The app/ files the sweeper imports; boto3 comes with the Lambda runtime.
    files=("app/__init__.py", "app/sweeper.py", "app/contract.py", "app/aws.py", "app/logs.py", "app/store.py"),
    timeout_seconds=900,  # Lambda's most: a scan of a large table pages for a while (app.sweeper)
)


@dataclass(frozen=True)
class OrphanSweeperArgs:
    source_root: Path  # the directory holding app/
    table_name: pulumi.Input[str]
    grant: Grant  # the table's grant for the sweep (OrderPipeline.grant_sweep_orders())
    schedule: str = contract.SWEEP_SCHEDULE


class OrphanSweeper(pulumi.ComponentResource):
    def __init__(self, name: str, args: OrphanSweeperArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:sweeper:OrphanSweeper", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        made = app_function(
            f"{name}-fn",
            SWEEPER,
            source_root=args.source_root,
            grants=[args.grant],
            environment={contract.ENV_ORDERS_TABLE: args.table_name},
            opts=child,
        )
        self.function, self.dlq = made.function, made.dlq
        self.rule = aws.cloudwatch.EventRule(
            f"{name}-schedule",
            description="closes orders pending past the orphan bound (app.sweeper)",
            schedule_expression=args.schedule,
            opts=child,
        )
        aws.cloudwatch.EventTarget(f"{name}-target", rule=self.rule.name, arn=self.function.arn, opts=child)
        aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=self.function.name,
            principal="events.amazonaws.com",
            source_arn=self.rule.arn,
            opts=child,
        )
        self.function_name: pulumi.Output[str] = self.function.name
        self.register_outputs(
            {
                "function_arn": self.function.arn,
                "function_name": self.function_name,
                "dlq_arn": self.dlq.arn,
                "rule_arn": self.rule.arn,
            }
        )
