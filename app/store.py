"""The order store: one DynamoDB item per order, written with conditions so that retries and redeliveries are safe.

Low-level client calls (no resource layer): they cost less CPU per order, which is what a worker task is sized by.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from app import contract

FINAL_STATUSES = ("completed", "failed")
KEY = contract.ORDER_KEY
STATEMENT_BATCH = 25  # BatchExecuteStatement's maximum


def _conditional_failed(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    return {name: float(v["N"]) if "N" in v else v.get("S") for name, v in item.items()}


def statement_errors(response: dict[str, Any]) -> list[dict[str, str] | None]:
    """Each statement's error ({"Code": ..., "Message": ...}) or None, in the order sent: the statements of a
    BatchExecuteStatement succeed or fail on their own (an HTTP 200 says nothing about them)."""
    return [answer.get("Error") for answer in response["Responses"]]


@dataclass(frozen=True)
class Outcome:
    status: str  # completed | failed
    worker: str
    duration: float
    reason: str = ""


class WriteFailed(Exception):
    """One status write of a batch failed for another reason than its condition (throttled, conflict...): retry it."""


class OrderStore:
    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self._table = table
        # Quoted names: `status`, `duration` and friends are reserved words. A PartiQL UPDATE never creates an item.
        self._finish_statement = (
            f'UPDATE "{table}" SET "status"=? SET "worker"=? SET "duration"=? SET "reason"=? SET "finished_at"=? '
            f'WHERE "{KEY}"=? AND "status" IN [?, ?]')
        # A PartiQL INSERT never overwrites: a key that exists fails that statement alone (DuplicateItem).
        self._insert_statement = (
            f"INSERT INTO \"{table}\" VALUE {{'{KEY}': ?, 'status': ?, 'customer_id': ?, 'items': ?, 'total': ?, "
            "'created_at': ?}")

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

    def pending_insert(self, order_id: str, customer_id: int, items_json: str, total: float) -> dict[str, Any]:
        """put_pending's record as one statement of a BatchExecuteStatement (the receiver writes up to
        STATEMENT_BATCH orders a call), just as safe: it fails, alone, if the order id exists."""
        return {"Statement": self._insert_statement,
                "Parameters": [{"S": order_id}, {"S": "pending"}, {"N": str(customer_id)}, {"S": items_json},
                               {"N": repr(total)}, {"N": f"{time.time():.3f}"}]}

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

    def finish_many(self, finished: Sequence[tuple[str, Outcome]]) -> list[bool | WriteFailed]:
        """The one status write per order, up to STATEMENT_BATCH of them in one PartiQL BatchExecuteStatement (a call
        costs the worker ~1 ms of CPU, whatever its size). Each statement has its own condition, pending/processing ->
        completed|failed only if the order exists and is not final, and succeeds or fails on its own: True written,
        False the condition failed (already final, a redelivery, or never accepted), WriteFailed any other error.
        """
        response = self._db.batch_execute_statement(Statements=[{
            "Statement": self._finish_statement,
            "Parameters": [{"S": outcome.status}, {"S": outcome.worker}, {"N": f"{outcome.duration:.3f}"},
                           {"S": outcome.reason}, {"N": f"{time.time():.3f}"}, {"S": order_id},
                           {"S": "pending"}, {"S": "processing"}],
        } for order_id, outcome in finished])
        results: list[bool | WriteFailed] = []
        for error in statement_errors(response):
            if error is None:
                results.append(True)
            elif error.get("Code") == "ConditionalCheckFailed":
                results.append(False)
            else:
                results.append(WriteFailed(f"{error.get('Code')}: {error.get('Message', '')}"))
        return results
