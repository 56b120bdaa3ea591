"""OrderPipeline: where accepted orders travel and are recorded (the report's Part III, without the services).

Creates: the order topic (SNS, encrypted), the order queue (SQS, encrypted, the report's timings) with its DLQ, a raw
SNS->SQS subscription and a queue policy admitting only that topic, and the orders table (on-demand, encrypted,
point-in-time recovery, TTL on the idempotency records' expiry attribute).

Access is granted through its methods, one per use, each the exact actions that use needs on one of its resources
(least privilege, no `*`). They return grants for a task role's one inline policy (components.iam), so a service's
policy lists its uses in the order the composition gives them; which role gets which is components.deployment's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from app import contract
from components.defaults import SNS_MANAGED_KEY
from components.iam import Grant

# PublishBatch is authorised as sns:Publish ("Grants permission to both publish and publish batch", Amazon SNS
# developer guide, "Amazon SNS API permissions: Actions and resources reference").
PUBLISH_ACTIONS = ("sns:Publish",)
# Pending records go in as PartiQL INSERTs in BatchExecuteStatement, which IAM authorises as PartiQLInsert (DynamoDB
# developer guide, "IAM security policies with PartiQL for DynamoDB"). PutItem, GetItem, DeleteItem: the idempotency
# records (app.idempotency); DeleteItem also removes a record whose publish failed (the client got 503, the order was
# not accepted); GetItem also reads an order's status.
WRITE_ORDERS_ACTIONS = ("dynamodb:PartiQLInsert", "dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem")
QUEUE_DEPTH_ACTIONS = ("sqs:GetQueueAttributes",)  # queue depth for the order-status estimate
CONSUME_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes")
# A receive batch is checked in one BatchGetItem; status writes go in batches (PartiQL BatchExecuteStatement of
# conditional UPDATEs, which IAM authorises as PartiQLUpdate).
SETTLE_ORDERS_ACTIONS = ("dynamodb:BatchGetItem", "dynamodb:PartiQLUpdate")
# The orphan sweeper (app.sweeper): a filtered Scan for old pending orders, then conditional PartiQL UPDATEs in
# BatchExecuteStatement (PartiQLUpdate, as above).
SWEEP_ORDERS_ACTIONS = ("dynamodb:Scan", "dynamodb:PartiQLUpdate")
GLOBAL_TABLE_STREAM = "NEW_AND_OLD_IMAGES"  # what replication needs (DynamoDB developer guide, global tables)


@dataclass(frozen=True)
class TableReplica:
    """The orders table as one region's copy of the async system sees it: a replica of the primary's global table
    (same name, the ARN in that region), which the primary's pipeline owns."""

    name: pulumi.Input[str]
    arn: pulumi.Input[str]


def replica_arn(table_arn: str, region: str) -> str:
    """A global table's ARN in another region: `arn:aws:dynamodb:REGION:ACCOUNT:table/NAME`."""
    parts = table_arn.split(":")
    parts[3] = region
    return ":".join(parts)


@dataclass(frozen=True)
class OrderPipelineArgs:
    # The report's queue (visibility 30 s, retention 4 days, 20 s long polls) and the DLQ it asked for (after 3
    # receives, kept 14 days).
    queue: contract.QueueSettings = contract.ORDER_QUEUE
    # The orders and the messages behind them: the engine refuses to delete or replace them while this holds
    # (`protect`), so a refactor that would replace them (a rename without an alias, a property that forces a new
    # table) fails at `pulumi up` instead of swapping in empty ones. `retain_on_delete` would not do: a replacement
    # would still point the services at new, empty resources, leaving the data in orphans. Teardown: config
    # `protectData` false, `pulumi up` (unprotects), then `pulumi destroy` (docs/runbook/teardown.md).
    protect_data: bool = True
    # Multi-region (docs/multi-region.md). The owner's table becomes a global table with a replica in each of these
    # regions (DynamoDB global tables version 2019.11.21, which need the stream with new and old images); empty: a
    # regional table, as before.
    replica_regions: tuple[str, ...] = ()
    # A regional copy's pipeline: no table of its own, its region's replica of the owner's.
    replica_of: TableReplica | None = None


class OrderPipeline(pulumi.ComponentResource):
    def __init__(self, name: str, args: OrderPipelineArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:messaging:OrderPipeline", name, None, opts)
        q = args.queue
        child = pulumi.ResourceOptions(parent=self)
        kept = pulumi.ResourceOptions(parent=self, protect=args.protect_data)
        self.topic = aws.sns.Topic(f"{name}-topic", kms_master_key_id=SNS_MANAGED_KEY, opts=child)
        # It declares itself a dead-letter queue (allowAll is SQS's default, said explicitly): "byQueue" would name the
        # order queue, which itself names this one.
        self.dlq = aws.sqs.Queue(
            f"{name}-dlq",
            message_retention_seconds=q.dlq_retention_seconds,
            sqs_managed_sse_enabled=True,
            redrive_allow_policy=json.dumps({"redrivePermission": "allowAll"}),
            opts=kept,
        )
        self.queue = aws.sqs.Queue(
            f"{name}-queue",
            visibility_timeout_seconds=q.visibility_timeout_seconds,
            message_retention_seconds=q.message_retention_seconds,
            receive_wait_time_seconds=q.receive_wait_time_seconds,
            redrive_policy=self.dlq.arn.apply(q.redrive_policy),
            sqs_managed_sse_enabled=True,
            opts=kept,
        )
        aws.sqs.QueuePolicy(
            f"{name}-queue-policy",
            queue_url=self.queue.url,
            policy=pulumi.Output.all(self.queue.arn, self.topic.arn).apply(
                lambda arns: json.dumps(contract.queue_policy(arns[0], arns[1]))
            ),
            opts=child,
        )
        aws.sns.TopicSubscription(
            f"{name}-to-queue",
            topic=self.topic.arn,
            protocol="sqs",
            endpoint=self.queue.arn,
            raw_message_delivery=True,
            opts=child,
        )  # raw: the message is the order's JSON
        self.table: aws.dynamodb.Table | None = None
        if args.replica_of is None:
            self.table = aws.dynamodb.Table(
                f"{name}-table",
                billing_mode="PAY_PER_REQUEST",
                hash_key=contract.ORDER_KEY,
                attributes=[{"name": contract.ORDER_KEY, "type": "S"}],
                server_side_encryption={"enabled": True},
                point_in_time_recovery={"enabled": True},
                # The receiver's Idempotency-Key records (`idem#...`) expire after 24 h; orders have no such attribute.
                ttl={"attribute_name": contract.IDEMPOTENCY_TTL_ATTRIBUTE, "enabled": True},
                # A global table: its replicas, and the stream replication reads (unset for a regional table).
                stream_enabled=True if args.replica_regions else None,
                stream_view_type=GLOBAL_TABLE_STREAM if args.replica_regions else None,
                replicas=[
                    # Each replica keeps its own point-in-time recovery; SSE with the AWS managed key, as the owner's.
                    {"region_name": region, "point_in_time_recovery": True}
                    for region in args.replica_regions
                ]
                or None,
                opts=kept,
            )
            self.table_name: pulumi.Output[str] = self.table.name
            self.table_arn: pulumi.Output[str] = self.table.arn
        else:
            self.table_name = pulumi.Output.from_input(args.replica_of.name)
            self.table_arn = pulumi.Output.from_input(args.replica_of.arn)
        # What its alarms and dashboard lines watch.
        self.queue_dimensions: dict[str, pulumi.Output[str]] = {"QueueName": self.queue.name}
        self.dlq_dimensions: dict[str, pulumi.Output[str]] = {"QueueName": self.dlq.name}
        self.register_outputs(
            {
                "topic_arn": self.topic.arn,
                "queue_url": self.queue.url,
                "dlq_url": self.dlq.url,
                "table_name": self.table_name,
            }
        )

    def grant_publish(self) -> Grant:
        """Publish orders to the topic (Publish and PublishBatch)."""
        return Grant(self.topic.arn, PUBLISH_ACTIONS)

    def grant_write_orders(self) -> Grant:
        """Record accepted orders and idempotency records; read an order's status."""
        return Grant(self.table_arn, WRITE_ORDERS_ACTIONS)

    def grant_queue_depth(self) -> Grant:
        """Read the queue's depth (the order-status estimate)."""
        return Grant(self.queue.arn, QUEUE_DEPTH_ACTIONS)

    def grant_consume(self) -> Grant:
        """Receive, delete and extend orders on the queue, and read its depth."""
        return Grant(self.queue.arn, CONSUME_ACTIONS)

    def grant_settle_orders(self) -> Grant:
        """Read a batch of order records and write their payment outcome."""
        return Grant(self.table_arn, SETTLE_ORDERS_ACTIONS)

    def grant_sweep_orders(self) -> Grant:
        """Find old pending orders and close them (the orphan sweeper)."""
        return Grant(self.table_arn, SWEEP_ORDERS_ACTIONS)
