"""The order store: one DynamoDB item per order, written with conditions so that retries and redeliveries are safe.

The item is contract.OrderRecord, attribute for attribute: the statements' attribute lists and the conversions both
ways come from its fields, so the record type is the only place its shape is written down. Low-level client calls (no
resource layer, no boto3 TypeSerializer, which refuses floats): they cost less CPU per order, which is what a worker
task is sized by.
"""

from __future__ import annotations

import operator
import time
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from enum import Enum
from types import NoneType
from typing import Any

from botocore.exceptions import ClientError

from app import aws, contract
from app.contract import OrderRecord, OrderStatus

KEY = contract.ORDER_KEY
STATEMENT_BATCH = 25  # BatchExecuteStatement's maximum
NOT_FINAL = tuple(status for status in OrderStatus if not status.final)  # what the status write may change
ACCEPTANCE_ONLY = ("status", "created_at", "home_region")  # pending fields that say when and where, not what


def _conditional_failed(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def now() -> float:
    """The store's clock for `created_at` and `finished_at`: epoch seconds to the millisecond."""
    return round(time.time(), 3)


@dataclass(frozen=True)
class Attribute:
    """One field of the record as a DynamoDB attribute: S for text (str, str enums), N for numbers (floats to the
    millisecond: times and durations are rounded there, totals have cents). The conversions are chosen once per field:
    the store converts every order's record both ways."""

    name: str
    write: Callable[[Any], dict[str, str]]
    read: Callable[[dict[str, str]], Any]

    @classmethod
    def of(cls, name: str, kind: type) -> Attribute:
        if kind is float:
            return cls(name, lambda v: {"N": repr(round(v, 3))}, lambda a: float(a["N"]))
        if kind is int:
            return cls(name, lambda v: {"N": str(v)}, lambda a: int(a["N"]))
        if kind is str:
            return cls(name, lambda v: {"S": v}, lambda a: a["S"])
        if issubclass(kind, Enum) and issubclass(kind, str):
            return cls(name, lambda v: {"S": str(v)}, lambda a: kind(a["S"]))
        raise TypeError(f"OrderRecord.{name}: {kind} is no DynamoDB S or N attribute")


def attributes(record: type[OrderRecord]) -> dict[str, Attribute]:
    """The record type's fields as attributes, in field order (an optional field's type is the one beside None)."""
    hints = typing.get_type_hints(record)
    found = {}
    for f in fields(record):
        kinds = [kind for kind in typing.get_args(hints[f.name]) or (hints[f.name],) if kind is not NoneType]
        if len(kinds) != 1:
            raise TypeError(f"OrderRecord.{f.name}: {hints[f.name]} is no DynamoDB S or N attribute")
        found[f.name] = Attribute.of(f.name, kinds[0])
    return found


def statement_errors(response: dict[str, Any]) -> list[dict[str, str] | None]:
    """Each statement's error ({"Code": ..., "Message": ...}) or None, in the order sent: the statements of a
    BatchExecuteStatement succeed or fail on their own (an HTTP 200 says nothing about them)."""
    return [answer.get("Error") for answer in response["Responses"]]


@dataclass(frozen=True)
class Outcome:
    """A payment's outcome: the status write's values (field names are OrderRecord's)."""

    status: OrderStatus  # completed | failed
    worker: str
    duration: float
    finished_at: float
    reason: str = ""


class WriteFailed(Exception):
    """One status write of a batch failed for another reason than its condition (throttled, conflict...): retry it."""


class OrderStore:
    """The orders table's replica in this task's region (`aws.region()`), which is the home region of the orders it
    records."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self._table = table
        self.region = aws.region()
        self._record = contract.OrderRecord
        self._attributes = attributes(self._record)
        self._pending = self._record.pending_fields()
        self._outcome = self._record.outcome_fields()
        self._pending_values = operator.attrgetter(*self._pending)
        self._pending_writers = [self._attributes[name].write for name in self._pending]
        self._outcome_writers = [(name, self._attributes[name].write) for name in self._outcome]
        self._readers = {name: attribute.read for name, attribute in self._attributes.items()}
        # Quoted names: `status`, `duration` and friends are reserved words. A PartiQL UPDATE never creates an item.
        sets = " ".join(f'SET "{name}"=?' for name in self._outcome)
        not_final = ", ".join("?" for _ in NOT_FINAL)
        still_open = f'WHERE "{KEY}"=? AND "status" IN [{not_final}]'
        self._finish_statement = f'UPDATE "{table}" {sets} {still_open}'
        self._close_statement = f'UPDATE "{table}" SET "status"=? SET "reason"=? SET "finished_at"=? {still_open}'
        # A PartiQL INSERT never overwrites: a key that exists fails that statement alone (DuplicateItem).
        values = ", ".join(f"'{name}': ?" for name in self._pending)
        self._insert_statement = f'INSERT INTO "{table}" VALUE {{{values}}}'

    def pending(self, order_id: str, customer_id: int, items_json: str, total: float) -> OrderRecord:
        """A new order's record, as the receiver writes it."""
        return self._record(
            order_id=order_id,
            status=OrderStatus.PENDING,
            customer_id=customer_id,
            items=items_json,
            total=total,
            created_at=now(),
            home_region=self.region,
        )

    def item(self, record: OrderRecord) -> dict[str, dict[str, str]]:
        """The record as a DynamoDB item (its unset fields absent)."""
        return {
            name: attribute.write(value)
            for name, attribute in self._attributes.items()
            if (value := getattr(record, name)) is not None
        }

    def record(self, item: dict[str, dict[str, str]]) -> OrderRecord:
        """A DynamoDB item back into its record; ValueError for an item that is not an order's. Attributes the
        record does not have are ignored (a newer version's, during a rolling deployment)."""
        readers = self._readers
        try:
            return self._record(**{name: readers[name](value) for name, value in item.items() if name in readers})
        except (TypeError, ValueError, KeyError) as e:
            raise ValueError(f"item {item.get(KEY, {}).get('S')} is not an order record: {e}") from None

    def put_pending(self, order_id: str, customer_id: int, items_json: str, total: float) -> None:
        """Record an order as pending; never overwrites (a retried put of the same id cannot reset a final status)."""
        self._db.put_item(
            TableName=self._table,
            Item=self.item(self.pending(order_id, customer_id, items_json, total)),
            ConditionExpression="attribute_not_exists(#k)",
            ExpressionAttributeNames={"#k": KEY},
        )

    def pending_insert(self, order_id: str, customer_id: int, items_json: str, total: float) -> dict[str, Any]:
        """put_pending's record as one statement of a BatchExecuteStatement (the receiver writes up to
        STATEMENT_BATCH orders a call), just as safe: it fails, alone, if the order id exists."""
        values = self._pending_values(self.pending(order_id, customer_id, items_json, total))
        return {
            "Statement": self._insert_statement,
            "Parameters": [write(value) for write, value in zip(self._pending_writers, values, strict=True)],
        }

    def holds(self, order_id: str, customer_id: int, items_json: str, total: float) -> bool:
        """Whether the order id's record is this order (its customer, items and total; not its time, which each
        attempt of a write takes anew, nor its home region: a retry with an Idempotency-Key may land in another
        region): how a retried write recognises its own first attempt, or its key's order."""
        record = self.get(order_id)
        if record is None:
            return False
        mine = self.item(self.pending(order_id, customer_id, items_json, total))
        theirs = self.item(record)
        return all(theirs.get(name) == mine[name] for name in self._pending if name not in ACCEPTANCE_ONLY)

    def remove_pending(self, order_id: str) -> bool:
        """Delete a record still pending (its publish failed); False when a worker has already taken it on."""
        try:
            self._db.delete_item(
                TableName=self._table,
                Key={KEY: {"S": order_id}},
                ConditionExpression="#s = :pending",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":pending": {"S": OrderStatus.PENDING.value}},
            )
        except ClientError as e:
            if _conditional_failed(e):
                return False
            raise
        return True

    def get(self, order_id: str) -> OrderRecord | None:
        """The order's record, or None. Strongly consistent: a GET right after the 202 sees it pending."""
        item = self._db.get_item(TableName=self._table, Key={KEY: {"S": order_id}}, ConsistentRead=True).get("Item")
        return None if item is None else self.record(item)

    def get_many(self, order_ids: list[str]) -> dict[str, OrderRecord | ValueError]:
        """Several orders (at most 100) in one strongly consistent BatchGetItem, keyed by order id; unknown ids
        are absent, an item that is not an order's is its ValueError (it fails its own message, not the batch). The
        worker checks a whole receive batch this way: one call instead of ten."""
        keys = [{KEY: {"S": order_id}} for order_id in dict.fromkeys(order_ids)]  # BatchGetItem refuses duplicates
        found: dict[str, OrderRecord | ValueError] = {}
        while keys:
            response = self._db.batch_get_item(RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}})
            for item in response["Responses"].get(self._table, []):
                try:
                    found[item[KEY]["S"]] = self.record(item)
                except ValueError as e:
                    found[item[KEY]["S"]] = e
            keys = response.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
        return found

    def _finish_parameters(self, order_id: str, outcome: Outcome) -> list[dict[str, str]]:
        values = vars(outcome)  # Outcome's fields are the record's
        return [
            *(write(values[name]) for name, write in self._outcome_writers),
            {"S": order_id},
            *({"S": status.value} for status in NOT_FINAL),
        ]

    def finish_many(self, finished: Sequence[tuple[str, Outcome]]) -> list[bool | WriteFailed]:
        """The one status write per order, up to STATEMENT_BATCH of them in one PartiQL BatchExecuteStatement (a call
        costs the worker ~1 ms of CPU, whatever its size). Each statement has its own condition, pending ->
        completed|failed only if the order exists and is not final, and succeeds or fails on its own: True written,
        False the condition failed (already final, a redelivery, or never accepted), WriteFailed any other error.
        """
        response = self._db.batch_execute_statement(
            Statements=[
                {
                    "Statement": self._finish_statement,
                    "Parameters": self._finish_parameters(order_id, outcome),
                }
                for order_id, outcome in finished
            ]
        )
        return _written(response)

    def pending_before(self, cutoff: float) -> Iterator[str]:
        """The ids of the orders still pending that were recorded before `cutoff` (epoch seconds): a Scan with a
        filter, page by page (app.sweeper says why not an index). Eventually consistent: whatever it finds is closed
        by a conditional write, which reads the record as it is."""
        arguments: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "#s = :pending AND #c < :cutoff",
            "ProjectionExpression": "#k",
            "ExpressionAttributeNames": {"#s": "status", "#c": "created_at", "#k": KEY},
            "ExpressionAttributeValues": {
                ":pending": {"S": OrderStatus.PENDING.value},
                ":cutoff": self._attributes["created_at"].write(cutoff),
            },
        }
        while True:
            page = self._db.scan(**arguments)
            yield from (item[KEY]["S"] for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return
            arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def close_many(self, order_ids: Sequence[str], reason: str) -> list[bool | WriteFailed]:
        """Close orders that were never paid as failed with `reason`, up to STATEMENT_BATCH a call, each only if it is
        still pending (the status write's own condition: a payment committed meanwhile wins): True closed, False no
        longer pending, WriteFailed any other error."""
        at = now()
        response = self._db.batch_execute_statement(
            Statements=[
                {
                    "Statement": self._close_statement,
                    "Parameters": [
                        {"S": OrderStatus.FAILED.value},
                        {"S": reason},
                        self._attributes["finished_at"].write(at),
                        {"S": order_id},
                        *({"S": status.value} for status in NOT_FINAL),
                    ],
                }
                for order_id in order_ids
            ]
        )
        return _written(response)


def _written(response: dict[str, Any]) -> list[bool | WriteFailed]:
    """Each conditional write's result: True written, False its condition failed, WriteFailed any other error."""
    results: list[bool | WriteFailed] = []
    for error in statement_errors(response):
        if error is None:
            results.append(True)
        elif error.get("Code") == "ConditionalCheckFailed":
            results.append(False)
        else:
            results.append(WriteFailed(f"{error.get('Code')}: {error.get('Message', '')}"))
    return results
