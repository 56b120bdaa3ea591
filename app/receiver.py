"""The asynchronous order receiver (report Part III): record the order, publish it, answer 202 at once.

Order of writes: the record goes in as `pending` first (so `GET /orders/{id}` works the moment the client has its
202, and a worker always finds the record), then the event is published. If the publish fails, the pending record is
deleted again (conditionally: a worker that already took the order means the publish did get through) and the
client gets 503 + Retry-After. So an accepted order always has both a record and a message, and a refused one leaves
no pending record behind.

Work in flight is bounded (app.shedding): beyond a cap that shrinks while the process is the bottleneck (so that
accepted orders stay fast) and is MAX_IN_FLIGHT otherwise (a stalled backend), the receiver sheds new orders with
503 + Retry-After instead of queueing them (it must never turn into the sync service's queue of waiting requests).
A request counts toward that cap only once its body is in (app.web.BufferedBody reads it first): clients that stall
mid-upload cannot fill it.

Orders that arrive together share AWS calls (app.batching): the records go in as PartiQL INSERTs, up to 25 in one
BatchExecuteStatement (an INSERT never overwrites, so each is as conditional as a PutItem with
attribute_not_exists), the events in SNS PublishBatch calls of up to 10. A lone order is sent at once; while calls are
in flight, arrivals group. Each entry succeeds or fails on its own, and so does each order: a failed entry gets its
order a 503 (and its pending record removed), the others of the same call are answered as usual. An INSERT that finds
its order id taken (`DuplicateItem`) is its own first attempt, whose answer was lost, or, for an order id derived from
an Idempotency-Key, the key's order recorded before (by another region, or before the key's record expired): once the
record is checked to be this order, the order goes on to its publish and its 202.
The two batched calls go over app.aws_async (no thread, under half a boto3 call's CPU); the rare ones (order status,
queue depth, the worker service's running tasks, removing a record, checking a duplicate, idempotency records) are
plain boto3 calls in a thread pool.

A pending order's status carries its estimate: the expected wait (app.expected_wait) from the queue depth and the
worker service's running tasks, the same figure the expected-wait alarms compute, each read at most once a second.

An order sent with an `Idempotency-Key` runs under app.idempotency (records in the orders table): a retry gets the
first answer and the same order id, never a second order. Each record names its home region, this task's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app import aws, contract, expected_wait, logs, openapi, rejections
from app.aws_async import AsyncClient
from app.batching import BatchCounters, Batcher
from app.idempotency import Answer, DynamoRecords, Idempotency
from app.orders import Order, has_control_characters, is_order_id
from app.settings import ReceiverSettings
from app.shedding import CPU_SATURATED_SHARE, Shedder, ShedPolicy, cpu_budget
from app.store import STATEMENT_BATCH, OrderStore, statement_errors
from app.web import (
    EXCEPTION_HANDLERS,
    UNAVAILABLE,
    BufferedBody,
    Rejected,
    answer_response,
    common_routes,
    error_response,
    read_submission,
)

# Every AWS call the receiver makes is on a buyer's request path.
READ_TIMEOUT_SECONDS = aws.REQUEST_PATH_READ_TIMEOUT_SECONDS
RETRIES = aws.REQUEST_PATH_RETRIES
LOOKUP_CACHE_SECONDS = 1.0  # queue depth and running worker tasks: status polling must not hammer SQS and ECS
PUBLISH_BATCH = 10  # SNS PublishBatch's maximum entries...
PUBLISH_BATCH_BYTES = 256 * 1024  # ...and bytes of all its messages together (an order's event is at most ~80 KB)
CALLS_IN_FLIGHT = 4  # per batched call kind: with the shedding cap of 64 orders, about as many as can be full


class EntryFailed(Exception):
    """One entry of a batched call failed (the others of the call stand)."""


class Duplicate(EntryFailed):
    """An order's INSERT found its order id taken (PartiQL's `DuplicateItem`, the same code and message on DynamoDB
    and ministack). The record there is this INSERT's own earlier attempt, whose answer was lost, or the order of the
    same Idempotency-Key recorded before (`_accept` checks that it holds this order)."""


DUPLICATE_ITEM = "DuplicateItem"  # BatchStatementError's code for an INSERT of a key that exists


BACKEND_ERRORS = (BotoCoreError, ClientError, EntryFailed)


class BackendUnavailable(Exception):
    """The order store or the topic failed; nothing was accepted."""


@dataclass
class ReceiverCounters:
    accepted: int = 0
    shed: int = 0  # 503: too much in flight
    backend_errors: int = 0  # 503: store or topic failed
    replayed: int = 0  # answered from an idempotency record
    in_flight: int = 0


def _event_bytes(order: Order) -> int:
    return len(order.to_json().encode())


def _batching(counters: BatchCounters) -> dict[str, float]:
    return {
        "calls": counters.calls,
        "orders": counters.items,
        "largest": counters.largest,
        "orders_per_call": round(counters.items / counters.calls, 2) if counters.calls else 0.0,
    }


class Cached:
    """A number fetched at most once per LOOKUP_CACHE_SECONDS (a race between threads costs one extra call)."""

    def __init__(self, fetch: Callable[[], int]) -> None:
        self._fetch = fetch
        self._value: tuple[float, int] | None = None

    def __call__(self) -> int:
        if self._value is None or time.monotonic() - self._value[0] > LOOKUP_CACHE_SECONDS:
            self._value = (time.monotonic(), self._fetch())
        return self._value[1]


class Backend:
    """The receiver's AWS side: batched record writes and publishes on the event loop, the rest in a thread pool."""

    def __init__(self, settings: ReceiverSettings) -> None:
        self.settings = settings
        self.executor = ThreadPoolExecutor(max_workers=settings.max_in_flight, thread_name_prefix="aws")
        self.store = OrderStore(
            aws.client(
                "dynamodb",
                read_timeout=READ_TIMEOUT_SECONDS,
                retries=RETRIES,
                max_pool_connections=settings.max_in_flight,
            ),
            settings.table,
        )
        self.sqs = aws.client("sqs", read_timeout=READ_TIMEOUT_SECONDS, retries=RETRIES)
        self.ecs = aws.client("ecs", read_timeout=READ_TIMEOUT_SECONDS, retries=RETRIES)
        self.dynamodb = AsyncClient(
            "dynamodb", read_timeout=READ_TIMEOUT_SECONDS, retries=RETRIES, max_connections=CALLS_IN_FLIGHT
        )
        self.sns = AsyncClient(
            "sns", read_timeout=READ_TIMEOUT_SECONDS, retries=RETRIES, max_connections=CALLS_IN_FLIGHT
        )
        self.records: Batcher[Order, None] = Batcher(
            self._write_records, max_batch=STATEMENT_BATCH, max_calls=CALLS_IN_FLIGHT
        )
        self.events: Batcher[Order, None] = Batcher(
            self._publish_events,
            max_batch=PUBLISH_BATCH,
            max_calls=CALLS_IN_FLIGHT,
            weight=_event_bytes,
            max_weight=PUBLISH_BATCH_BYTES,
        )
        self.queue_depth = Cached(self._queue_depth)
        self.running_tasks = Cached(self._running_tasks)

    async def blocking(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, function, *args)

    async def close(self) -> None:
        await self.dynamodb.close()
        await self.sns.close()
        self.executor.shutdown(wait=True)

    async def accept(self, order: Order) -> None:
        """Returns once the order's record and event are both in; raises BackendUnavailable, leaving no record.
        Shielded: once its record is written, the order goes on to its publish (or removal) even if the request is
        cancelled, so a cancellation cannot leave a pending record without an event."""
        await asyncio.shield(self._accept(order))

    async def _accept(self, order: Order) -> None:
        try:
            await self.records.submit(order)
        except Duplicate as e:
            # A retried INSERT whose first attempt landed, or the key's order recorded before: the order is recorded,
            # so it goes on to its publish (a 503 here would leave that record pending with no event behind it, and a
            # client retrying without a key would make a second order). A record of another order under this id is
            # refused as before.
            if not await self.blocking(self._landed_earlier, order):
                raise BackendUnavailable(f"order store: {e}") from e
        except BACKEND_ERRORS as e:
            raise BackendUnavailable(f"order store: {e}") from e
        try:
            await self.events.submit(order)
        except BACKEND_ERRORS as e:
            await self.blocking(self._compensate, order.order_id, e)

    async def republish(self, order: Order) -> None:
        """Publish an order whose record is already in (a resumed idempotent submission, whose first publish may not
        have gone out): a second message for an order id is harmless, the worker pays each order id once."""
        try:
            await self.events.submit(order)
        except BACKEND_ERRORS as e:
            raise BackendUnavailable(f"order topic: {e}") from e

    async def _write_records(self, orders: list[Order]) -> list[None | EntryFailed]:
        response = await self.dynamodb.call(
            "BatchExecuteStatement",
            Statements=[self.store.pending_insert(o.order_id, o.customer_id, o.items_json(), o.total) for o in orders],
        )
        return [
            None
            if error is None
            else (Duplicate if error.get("Code") == DUPLICATE_ITEM else EntryFailed)(
                f"{error.get('Code')}: {error.get('Message', '')}"
            )
            for error in statement_errors(response)
        ]

    def _landed_earlier(self, order: Order) -> bool:
        """Whether the record under the order's id is this order (an earlier attempt of its INSERT)."""
        return self.store.holds(order.order_id, order.customer_id, order.items_json(), order.total)

    async def _publish_events(self, orders: list[Order]) -> list[None | EntryFailed]:
        response = await self.sns.call(
            "PublishBatch",
            TopicArn=self.settings.topic_arn,
            PublishBatchRequestEntries=[{"Id": str(n), "Message": o.to_json()} for n, o in enumerate(orders)],
        )
        failed = {int(f["Id"]): f for f in response.get("Failed", [])}
        return [
            EntryFailed(f"{failed[n].get('Code')}: {failed[n].get('Message', '')}") if n in failed else None
            for n in range(len(orders))
        ]

    def _compensate(self, order_id: str, publish_error: Exception) -> None:
        try:
            removed = self.store.remove_pending(order_id)
        except (BotoCoreError, ClientError) as e:
            logs.event(
                "orphan",
                f"[RECEIVER] Order {order_id} publish failed and its pending record could not be removed",
                level="error",
                order_id=order_id,
                error=str(e),
            )
            raise BackendUnavailable(f"order topic: {publish_error}") from publish_error
        if removed:
            raise BackendUnavailable(f"order topic: {publish_error}") from publish_error
        # A worker already moved the order on: the publish reached the queue although the call reported an error.

    def batching(self) -> dict[str, dict[str, float]]:
        """How well orders shared calls so far (for /stats)."""
        return {"record_writes": _batching(self.records.counters), "event_publishes": _batching(self.events.counters)}

    def _queue_depth(self) -> int:
        """Orders waiting in the queue (what the alarms' WAITING metric counts)."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.settings.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def _running_tasks(self) -> int:
        """The worker service's tasks in RUNNING (what the alarms' RUNNING_TASKS metric counts); none when the
        service is gone."""
        found = self.ecs.describe_services(
            cluster=self.settings.worker_cluster, services=[self.settings.worker_service]
        )["services"]
        return int(found[0]["runningCount"]) if found else 0


def estimate(waiting: int, running_tasks: int, settings: ReceiverSettings) -> dict[str, Any]:
    """Report 6.5 item 3: the order's place in the queue and when it should be done: the expected wait before a
    worker starts it (the alarms' figure), then its own payment. No times while no worker task runs."""
    wait = expected_wait.seconds(waiting, running_tasks, settings.worker_count, settings.payment_seconds)
    done = None if wait is None else wait + settings.payment_seconds
    return {
        "queue_position": max(1, waiting),
        "expected_wait_seconds": None if wait is None else round(wait, 3),
        "estimated_completion_seconds": None if done is None else round(done, 3),
        "estimated_completion": None
        if done is None
        else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + done)),
    }


def build(settings: ReceiverSettings) -> BufferedBody:
    backend = Backend(settings)
    blocking = backend.blocking
    counters = ReceiverCounters()

    dynamodb = aws.client(
        "dynamodb", read_timeout=READ_TIMEOUT_SECONDS, retries=RETRIES, max_pool_connections=settings.max_in_flight
    )
    records = DynamoRecords(dynamodb, settings.table)
    idempotency = Idempotency(records, call=blocking)

    async def accept(order: Order, resumed: bool, started: float) -> Answer:
        try:
            if resumed and await blocking(backend.store.get, order.order_id) is not None:
                await backend.republish(order)
            else:
                await backend.accept(order)
        except (BackendUnavailable, *BACKEND_ERRORS) as e:
            counters.backend_errors += 1
            logs.event(
                "backend_error",
                f"[RECEIVER] Order {order.order_id} refused: {e}",
                level="warning",
                order_id=order.order_id,
            )
            return UNAVAILABLE
        counters.accepted += 1
        duration = round(time.monotonic() - started, 3)
        logs.event(
            "accepted",
            f"[RECEIVER] Order {order.order_id} accepted in {duration:.3f}s",
            order_id=order.order_id,
            duration=duration,
        )
        return Answer(
            202,
            {
                "order_id": order.order_id,
                "status": "pending",
                "message": "Order received and queued for processing",
                "duration": duration,
            },
        )

    async def create_order(request: Request) -> Response:
        started = time.monotonic()
        try:
            submission = await read_submission(request)
        except Rejected as rejected:
            return rejected.response
        if submission.key is None:
            return answer_response(await accept(Order.new(submission.order), False, started))
        try:
            answer = await idempotency.submit(
                submission.key,
                submission.order.customer_id,
                submission.fingerprint,
                lambda order_id, resumed: accept(Order.new(submission.order, order_id), resumed, started),
            )
        except BACKEND_ERRORS as e:  # the idempotency record could not be read or written: nothing was accepted
            counters.backend_errors += 1
            logs.event("backend_error", f"[RECEIVER] idempotency record unavailable: {e}", level="warning")
            answer = UNAVAILABLE
        if answer.replayed:
            counters.replayed += 1
            logs.event(
                "replayed",
                f"[RECEIVER] {contract.IDEMPOTENCY_KEY_HEADER} seen before: answered {answer.status} again",
                order_id=answer.body.get("order_id"),
            )
        return answer_response(answer)

    async def order_status(request: Request) -> Response:
        order_id = request.path_params["order_id"]
        if has_control_characters(order_id):
            return error_response(400, "order id must not contain control characters (U+0000-U+001F, U+007F-U+009F)")
        if not is_order_id(order_id):  # no lookup: over-long keys are a DynamoDB error, `idem#...` not an order
            return error_response(404, "unknown order")
        try:
            record = await blocking(backend.store.get, order_id)
            if record is None:
                return error_response(404, "unknown order", order_id=order_id)
            body = record.shown()
            if not record.status.final:
                body |= estimate(await blocking(backend.queue_depth), await blocking(backend.running_tasks), settings)
        except BACKEND_ERRORS:
            return answer_response(UNAVAILABLE)
        return JSONResponse(body)

    async def stats(request: Request) -> JSONResponse:
        try:
            waiting: int | None = await blocking(backend.queue_depth)
        except BACKEND_ERRORS:
            waiting = None
        return JSONResponse(
            {
                "total_orders": counters.accepted + counters.backend_errors,
                "accepted": counters.accepted,
                "shed": counters.shed,
                "backend_errors": counters.backend_errors,
                "replayed": counters.replayed,
                "rejected": rejections.snapshot(),
                "in_flight": counters.in_flight,
                "max_in_flight": settings.max_in_flight,
                "queue_depth": waiting,
                **backend.batching(),
                "num_workers": settings.worker_count,
                "throughput_limit": f"~{60 * settings.worker_count / settings.payment_seconds:g} orders/minute per "
                f"worker task ({settings.worker_count} workers, {settings.payment_seconds:g}s per "
                "payment)"
                if settings.payment_seconds
                else "unbounded",
            }
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        watch = asyncio.create_task(guard.watch())
        yield
        watch.cancel()
        await backend.close()

    app = Starlette(
        routes=[
            Route(contract.ASYNC_ORDERS_PATH, create_order, methods=["POST"]),
            Route(contract.ORDER_STATUS_PATH, order_status, methods=["GET"]),
            Route(contract.STATS_PATH, stats, methods=["GET"]),
            *common_routes(
                {"mode": "async-enabled", "num_workers": settings.worker_count}, openapi.receiver_document()
            ),
        ],
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    policy = ShedPolicy(contract.ASYNC_ORDERS_PATH, settings.max_in_flight, CPU_SATURATED_SHARE * cpu_budget())
    guard = Shedder(app, policy=policy, counters=counters)
    return BufferedBody(guard, timeout_seconds=settings.http.body_timeout_seconds)
