"""The order store: one DynamoDB item per order, written with conditions so that retries and redeliveries are safe.

Low-level client calls (no resource layer): they cost less CPU per order, which is what a worker task is sized by.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from app import contract

FINAL_STATUSES = ("completed", "failed")
KEY = contract.ORDER_KEY


def _conditional_failed(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {name: float(v["N"]) if "N" in v else v.get("S") for name, v in item.items()}


@dataclass(frozen=True)
class Outcome:
    status: str  # completed | failed
    worker: str
    duration: float
    reason: str = ""


class OrderStore:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self._table = table

    def put_pending(self, order_id: str, customer_id: int, items_json: str, total: float) -> None:
        """Record an order as pending; never overwrites (a retried put of the same id cannot reset a final status)."""
        self._db.put_item(
            TableName=self._table,
            Item={
                KEY: {"S": order_id},
                "status": {"S": "pending"},
                "customer_id": {"N": str(customer_id)},
                "items": {"S": items_json},
                "total": {"N": repr(total)},
                "created_at": {"N": f"{time.time():.3f}"},
            },
            ConditionExpression="attribute_not_exists(#k)",
            ExpressionAttributeNames={"#k": KEY},
        )

    def remove_pending(self, order_id: str) -> bool:
        """Delete a record still pending (its publish failed); False when a worker has already taken it on."""
        try:
            self._db.delete_item(
                TableName=self._table, Key={KEY: {"S": order_id}},
                ConditionExpression="#s = :pending",
                ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":pending": {"S": "pending"}},
            )
        except ClientError as e:
            if _conditional_failed(e):
                return False
            raise
        return True

    def get(self, order_id: str) -> dict[str, Any] | None:
        """The order as plain JSON values, or None. Strongly consistent: a GET right after the 202 sees `pending`."""
        item = self._db.get_item(TableName=self._table, Key={KEY: {"S": order_id}}, ConsistentRead=True).get("Item")
        return None if item is None else _plain(item)

    def get_many(self, order_ids: list[str]) -> dict[str, dict[str, Any]]:
        """Several orders (at most 100) in one strongly consistent BatchGetItem, keyed by order id; unknown ids
        are absent. The worker checks a whole receive batch this way: one call instead of ten."""
        keys = [{KEY: {"S": order_id}} for order_id in dict.fromkeys(order_ids)]  # BatchGetItem refuses duplicates
        found: dict[str, dict[str, Any]] = {}
        while keys:
            response = self._db.batch_get_item(RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}})
            for item in response["Responses"].get(self._table, []):
                record = _plain(item)
                found[record[KEY]] = record
            keys = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
        return found

    def finish(self, order_id: str, outcome: Outcome) -> bool:
        """The one status write per order: pending/processing -> completed|failed, only if it is not final yet.

        False when the condition fails: the order is already final (a redelivery) or was never accepted.
        """
        try:
            self._db.update_item(
                TableName=self._table, Key={KEY: {"S": order_id}},
                UpdateExpression="SET #s = :s, #w = :w, #d = :d, #r = :r, #t = :t",
                ConditionExpression="attribute_exists(#k) AND #s IN (:pending, :processing)",
                # Names go through placeholders: `duration` and friends are DynamoDB reserved words.
                ExpressionAttributeNames={"#s": "status", "#k": KEY, "#w": "worker", "#d": "duration", "#r": "reason",
                                          "#t": "finished_at"},
                ExpressionAttributeValues={
                    ":s": {"S": outcome.status}, ":w": {"S": outcome.worker}, ":d": {"N": f"{outcome.duration:.3f}"},
                    ":r": {"S": outcome.reason}, ":t": {"N": f"{time.time():.3f}"},
                    ":pending": {"S": "pending"}, ":processing": {"S": "processing"},
                },
            )
        except ClientError as e:
            if _conditional_failed(e):
                return False
            raise
        return True
