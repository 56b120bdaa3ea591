"""Idempotent order submission: the `Idempotency-Key` header (IETF httpapi draft, as Stripe practises it).

A client that lost an answer (a timeout, a dropped connection) sends the same order again with the same key and gets
the first answer back, with the same order id, instead of a second order. Keys are scoped per customer
(`<customer_id>#<key>`), kept `contract.IDEMPOTENCY_KEEP_SECONDS` (24 h), and bound to the payload they came with: the
same key with another payload is refused (422). What is remembered is a final answer (202 accepted; 201 paid or 402
declined); an answer that says "try again" (503 backend unavailable or shed, 504 timed out, a client gone) is not,
so a retry with the key tries again.

While the first request with a key is still in flight, a second one waits up to `WAIT_SECONDS` for its answer (in the
same process it waits on the first one itself; across processes it polls the record), then gets 409 + Retry-After.

`Idempotency.submit` runs one submission around the caller's `attempt(order_id, resumed)`; the records live in a
`Records` store, `DynamoRecords`: items `idem#<scope>` in a table every task of the service sees, deleted by DynamoDB
TTL on `expires_at` (the receiver's are in the orders table, beside the orders and keyed like them; the sync
service's in its own key table). Every task sees them, because the load balancer sends a retry to any task.
A claim is a lease, longer than any attempt: if the process holding it dies, a retry after the lease resumes the
submission with the same order id (`resumed=True`), so that it cannot become a second order.

A key's order id is derived from its scope and payload (`order_id`), not drawn at random: a retry that reaches another
region, whose replica of the orders table has not yet received this region's records, names the same order, and the
payment gateway, which dedups on the order id, charges it once (docs/multi-region.md). A retry after the key's record
expired names that order too: it is found recorded, and not charged again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from app import contract, logs

WAIT_SECONDS = 1.0  # a duplicate waits this long for the first request's answer before 409
POLL_SECONDS = (0.05, 0.1, 0.2, 0.4)  # across processes: when to look at the record again while it is in flight
LEASE_SECONDS = 60.0  # longer than any attempt (boto3 timeouts and retries bound one at ~45 s)
RECORD_PREFIX = "idem#"

IN_FLIGHT, DONE = "in_flight", "done"
# The namespace of keyed order ids (UUID5). Fixed for good: another value would give a retry of an order accepted
# before the change another order id, and another charge.
ORDER_ID_NAMESPACE = uuid.UUID("6f1d2c3e-5b0a-4e8f-9c47-2a7d1e6b3f90")
T = TypeVar("T")


class InvalidKey(ValueError):
    """The Idempotency-Key header breaks its rules; the message says which."""


def parse_key(value: str) -> str:
    """The key as sent: 1..255 printable ASCII characters, bare or as a structured-field string ("...")."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not value:
        raise InvalidKey(f"{contract.IDEMPOTENCY_KEY_HEADER} must not be empty")
    if len(value) > contract.MAX_IDEMPOTENCY_KEY:
        raise InvalidKey(
            f"{contract.IDEMPOTENCY_KEY_HEADER} must be at most {contract.MAX_IDEMPOTENCY_KEY} "
            f"characters, got {len(value)}"
        )
    if not all(" " <= c <= "~" for c in value) or '"' in value or "\\" in value:
        raise InvalidKey(f"{contract.IDEMPOTENCY_KEY_HEADER} must be printable ASCII without quotes or backslashes")
    return value


def order_id(scope: str, payload_fingerprint: str) -> str:
    """The order id of a key's order: the same for the same `<customer_id>#<key>` and payload in every task of every
    region (a UUID5, so it looks like any order id). The payload is part of it so that an order id always names one
    payload: two payloads under one key in two regions within the replication lag (where the key's record cannot
    refuse the second with 422) are two orders, each charged for what it records, not one charge under a record the
    last writer chose; and a key reused with another payload after its record expired is a new order, as before."""
    return str(uuid.uuid5(ORDER_ID_NAMESPACE, f"{scope}#{payload_fingerprint}"))


def fingerprint(canonical_payload: str) -> str:
    return hashlib.sha256(canonical_payload.encode()).hexdigest()


@dataclass(frozen=True)
class Answer:
    """What a submission answered; `remember` False for answers that tell the client to try again."""

    status: int
    body: dict[str, Any]
    remember: bool = True
    retry_after: bool = False
    replayed: bool = False  # sent again from the record (the `Idempotent-Replayed: true` header)


def in_flight() -> Answer:
    return Answer(
        409,
        {
            "error": f"a request with this {contract.IDEMPOTENCY_KEY_HEADER} is still in progress; "
            "retry after Retry-After seconds"
        },
        remember=False,
        retry_after=True,
    )


def mismatch() -> Answer:
    return Answer(
        422, {"error": f"this {contract.IDEMPOTENCY_KEY_HEADER} was used with a different payload"}, remember=False
    )


@dataclass(frozen=True)
class Record:
    scope: str  # <customer_id>#<key>
    state: str  # in_flight | done
    order_id: str
    fingerprint: str
    token: str  # which attempt holds the claim
    lease_until: float
    expires_at: float
    answer: Answer | None = None


class Records(Protocol):
    """Where records live. Blocking calls (DynamoRecords' run in the service's thread pool)."""

    def put_new(self, record: Record, now: float) -> Record | None:
        """Store `record` unless an unexpired one exists for its scope; returns that one instead."""

    def put_over(self, record: Record, token: str) -> bool:
        """Replace the record of `record.scope` if its token is still `token`; False if not."""

    def delete(self, scope: str, token: str) -> None:
        """Remove the record of `scope` if its token is `token` (an attempt gives up its claim)."""


@dataclass
class _Local:
    fingerprint: str
    answer: asyncio.Future[Answer]


@dataclass
class Idempotency:
    """Runs submissions under their keys. `call(function, *args)` runs a Records method (in the service's thread
    pool); the answer of `attempt(order_id, resumed)` is remembered when final and released otherwise. A claim's
    lease is `lease_seconds`: a service whose attempts may last longer (the sync service's payment deadline) extends
    it, or another task would resume a claim whose attempt is still running."""

    records: Records
    call: Callable[..., Awaitable[Any]]
    wait_seconds: float = WAIT_SECONDS
    lease_seconds: float = LEASE_SECONDS
    _local: dict[str, _Local] = field(default_factory=dict)

    async def submit(
        self, key: str, customer_id: int, payload_fingerprint: str, attempt: Callable[[str, bool], Awaitable[Answer]]
    ) -> Answer:
        scope = f"{customer_id}#{key}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_seconds
        while (local := self._local.get(scope)) is not None:  # the first request with this key runs here
            if local.fingerprint != payload_fingerprint:
                return mismatch()
            try:
                answer = await asyncio.wait_for(asyncio.shield(local.answer), max(0.0, deadline - loop.time()))
            except TimeoutError:
                return in_flight()
            if answer.remember:
                return replace(answer, replayed=True)
            # The first attempt ended in "try again": this request may now claim the key itself.
        mine = _Local(payload_fingerprint, loop.create_future())
        self._local[scope] = mine
        answer = in_flight()
        try:
            answer = await self._claim_and_run(scope, payload_fingerprint, attempt, deadline)
            return answer
        finally:
            del self._local[scope]
            mine.answer.set_result(answer)

    async def _claim_and_run(
        self, scope: str, payload_fingerprint: str, attempt: Callable[[str, bool], Awaitable[Answer]], deadline: float
    ) -> Answer:
        loop = asyncio.get_running_loop()
        token = uuid.uuid4().hex
        claimed, resumed, polls = None, False, iter(POLL_SECONDS)
        while claimed is None:
            now = time.time()
            record = Record(
                scope=scope,
                state=IN_FLIGHT,
                order_id=order_id(scope, payload_fingerprint),
                fingerprint=payload_fingerprint,
                token=token,
                lease_until=now + self.lease_seconds,
                expires_at=now + contract.IDEMPOTENCY_KEEP_SECONDS,
            )
            found: Record | None = await self.call(self.records.put_new, record, now)
            if found is None:
                claimed = record
            elif found.fingerprint != payload_fingerprint:
                return mismatch()
            elif found.state == DONE and found.answer is not None:
                return replace(found.answer, replayed=True)
            elif found.lease_until <= now:  # its process died mid-attempt: resume it under the same order id
                takeover = replace(record, order_id=found.order_id)
                if await self.call(self.records.put_over, takeover, found.token):
                    claimed, resumed = takeover, True
            if claimed is None:
                pause = next(polls, None)
                if pause is None or loop.time() + pause > deadline:
                    return in_flight()
                await asyncio.sleep(pause)
        try:
            answer = await attempt(claimed.order_id, resumed)
        except BaseException:
            await self._quietly(scope, self.records.delete, scope, token)
            raise
        if answer.remember:
            done = replace(claimed, state=DONE, answer=answer)
            await self._quietly(scope, self.records.put_over, done, token)
        else:
            await self._quietly(scope, self.records.delete, scope, token)
        return answer

    async def _quietly(self, scope: str, function: Callable[..., T], *args: Any) -> None:
        """Record bookkeeping after the attempt: a failure here must not change the answer already decided (the
        claim then expires with its lease, and a retry resumes it under the same order id)."""
        try:
            await self.call(function, *args)
        except (BotoCoreError, ClientError) as e:
            logs.event(
                "idempotency_record_failed",
                f"[IDEMPOTENCY] could not update the record of {scope}: {e}",
                level="warning",
            )


KEY = contract.ORDER_KEY


def _conditional_failed(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class DynamoRecords:
    """Records as items of the orders table: `order_id` = `idem#<scope>` (no order id has that form, and
    GET /orders/{id} only looks up order ids), removed by the table's TTL on `expires_at` (DynamoDB deletes expired
    items within days, so a read treats an expired record as absent)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self._db = dynamodb
        self._table = table

    @staticmethod
    def _item(record: Record) -> dict[str, Any]:
        item = {
            KEY: {"S": RECORD_PREFIX + record.scope},
            "state": {"S": record.state},
            "order": {"S": record.order_id},
            "fingerprint": {"S": record.fingerprint},
            "token": {"S": record.token},
            "lease_until": {"N": f"{record.lease_until:.3f}"},
            contract.IDEMPOTENCY_TTL_ATTRIBUTE: {"N": str(int(record.expires_at))},
        }
        if record.answer is not None:
            item["answer_status"] = {"N": str(record.answer.status)}
            item["answer"] = {"S": json.dumps(record.answer.body, separators=(",", ":"))}
        return item

    @staticmethod
    def _record(item: dict[str, Any]) -> Record:
        answer = None
        if "answer" in item:
            answer = Answer(int(item["answer_status"]["N"]), json.loads(item["answer"]["S"]))
        return Record(
            scope=item[KEY]["S"].removeprefix(RECORD_PREFIX),
            state=item["state"]["S"],
            order_id=item["order"]["S"],
            fingerprint=item["fingerprint"]["S"],
            token=item["token"]["S"],
            lease_until=float(item["lease_until"]["N"]),
            expires_at=float(item[contract.IDEMPOTENCY_TTL_ATTRIBUTE]["N"]),
            answer=answer,
        )

    def put_new(self, record: Record, now: float) -> Record | None:
        try:
            self._db.put_item(
                TableName=self._table,
                Item=self._item(record),
                ConditionExpression="attribute_not_exists(#k) OR #e <= :now",
                ExpressionAttributeNames={"#k": KEY, "#e": contract.IDEMPOTENCY_TTL_ATTRIBUTE},
                ExpressionAttributeValues={":now": {"N": str(int(now))}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as e:
            if not _conditional_failed(e):
                raise
            item = e.response.get("Item") or self._db.get_item(
                TableName=self._table,
                Key={KEY: {"S": RECORD_PREFIX + record.scope}},
                ConsistentRead=True,
            ).get("Item")
            return self._record(item) if item else record  # gone meanwhile: the caller polls and tries again
        return None

    def put_over(self, record: Record, token: str) -> bool:
        try:
            self._db.put_item(
                TableName=self._table,
                Item=self._item(record),
                ConditionExpression="#t = :token",
                ExpressionAttributeNames={"#t": "token"},
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except ClientError as e:
            if _conditional_failed(e):
                return False
            raise
        return True

    def delete(self, scope: str, token: str) -> None:
        try:
            self._db.delete_item(
                TableName=self._table,
                Key={KEY: {"S": RECORD_PREFIX + scope}},
                ConditionExpression="#t = :token",
                ExpressionAttributeNames={"#t": "token"},
                ExpressionAttributeValues={":token": {"S": token}},
            )
        except ClientError as e:
            if not _conditional_failed(e):
                raise
