"""KeyTable: Idempotency-Key records that every task of a service sees (app.idempotency's `DynamoRecords`).

Creates: one DynamoDB table (on-demand, encrypted, TTL on the records' expiry attribute), keyed like the orders table
(`contract.ORDER_KEY`, holding `idem#<customer_id>#<key>`). The sync order service keeps its keys here: a retry that
the load balancer sends to another task finds the first task's claim or answer, so it is never paid twice. Its own
table rather than the orders table: the sync system deploys without the async one (`deployAsync: false`), and its
tasks may then touch no order of the async system.

Access is granted through `grant_records()`: exactly the calls `DynamoRecords` makes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from app import contract
from components.iam import Grant

# DynamoRecords: a claim is a conditional PutItem (and so is replacing it with the answer), a lost race reads the
# record with GetItem, an attempt that gives up its claim deletes it (conditional DeleteItem).
RECORD_ACTIONS = ("dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:DeleteItem")


@dataclass(frozen=True)
class KeyTableArgs:
    ttl_attribute: str = contract.IDEMPOTENCY_TTL_ATTRIBUTE  # records expire by DynamoDB TTL on this attribute


class KeyTable(pulumi.ComponentResource):
    def __init__(self, name: str, args: KeyTableArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("flashsale:storage:KeyTable", name, None, opts)
        self.table = aws.dynamodb.Table(
            f"{name}-table",
            billing_mode="PAY_PER_REQUEST",
            hash_key=contract.ORDER_KEY,
            attributes=[{"name": contract.ORDER_KEY, "type": "S"}],
            server_side_encryption={"enabled": True},
            ttl={"attribute_name": args.ttl_attribute, "enabled": True},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name: pulumi.Output[str] = self.table.name
        self.register_outputs({"table_name": self.name})

    def grant_records(self) -> Grant:
        """Claim, answer, read and release Idempotency-Key records."""
        return Grant(self.table.arn, RECORD_ACTIONS)
