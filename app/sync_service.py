"""The synchronous order service (report Part I): every request waits for its own payment.

The PaymentProcessor's slots are the bottleneck; requests that cannot be paid within REQUEST_TIMEOUT_SECONDS get 504,
and a client that hangs up stops its payment, so no payment runs for nobody.

An `Idempotency-Key` gets the receiver's semantics (app.idempotency), with the records in a DynamoDB table that every
sync task sees (ENV_KEYS_TABLE): the load balancer sends a retry to either task, and records in each process's
memory let the other task pay it again. A retry of a paid (201) or declined (402) order gets that answer again and
is not charged again, whichever task it reaches; one that arrives while the first still pays waits up to
app.idempotency.WAIT_SECONDS for its answer, then gets 409 + Retry-After; a 504 or an abandoned payment is not
remembered, so its retry pays. A claim outlasts the payment deadline (its lease is the request timeout plus
app.idempotency.LEASE_SECONDS); if the task holding it dies, a retry after the lease pays under the same order id,
which is what a real payment gateway is given as its idempotency key. The key records are the service's only AWS
calls; when they fail, a keyed order gets 503 + Retry-After and is not paid (an order without a key needs none).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app import aws, contract, logs, openapi, rejections
from app.idempotency import LEASE_SECONDS, Answer, DynamoRecords, Idempotency
from app.orders import Order
from app.payment import PaymentProcessor, PaymentResult, PaymentTimeout
from app.settings import SyncSettings
from app.web import (
    CLIENT_GONE,
    EXCEPTION_HANDLERS,
    UNAVAILABLE,
    BufferedBody,
    Rejected,
    answer_response,
    common_routes,
    read_submission,
)


@dataclass
class SyncCounters:
    total_orders: int = 0
    completed: int = 0
    failed: int = 0
    timed_out: int = 0
    abandoned: int = 0
    replayed: int = 0
    backend_errors: int = 0  # 503: the key records could not be read or written


async def _client_gone(request: Request) -> None:
    """Returns when the client disconnects (the body is already read, so the next ASGI message is the hang-up)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


KEY_THREADS = 16  # key-record calls at once (each a few ms; a request makes one to three)


def build(settings: SyncSettings) -> BufferedBody:
    processor = PaymentProcessor(settings=settings.payment, slots=settings.slots)
    counters = SyncCounters()
    executor = ThreadPoolExecutor(max_workers=KEY_THREADS, thread_name_prefix="keys")

    async def blocking(function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, function, *args)

    dynamodb = aws.client(
        "dynamodb",
        read_timeout=aws.REQUEST_PATH_READ_TIMEOUT_SECONDS,
        retries=aws.REQUEST_PATH_RETRIES,
        max_pool_connections=KEY_THREADS,
    )
    idempotency = Idempotency(
        DynamoRecords(dynamodb, settings.keys_table),
        call=blocking,
        lease_seconds=settings.request_timeout_seconds + LEASE_SECONDS,
    )
    per_minute = 60 * settings.slots / settings.payment.seconds if settings.payment.seconds else float("inf")
    throughput_limit = f"~{per_minute:g} orders/minute ({settings.payment.seconds:g}s per payment)"

    async def pay(request: Request, order: Order, started: float) -> Answer:
        counters.total_orders += 1
        logs.event(
            "received",
            f"[SYNC] Order {order.order_id} received, starting payment verification...",
            order_id=order.order_id,
        )
        deadline = started + settings.request_timeout_seconds
        payment = asyncio.create_task(processor.verify(order.order_id, deadline=deadline))
        hang_up = asyncio.create_task(_client_gone(request))
        await asyncio.wait((payment, hang_up), return_when=asyncio.FIRST_COMPLETED)
        hang_up.cancel()
        if not payment.done():
            payment.cancel()
            counters.abandoned += 1
            logs.event("abandoned", f"[SYNC] Order {order.order_id} abandoned by the client", order_id=order.order_id)
            return Answer(CLIENT_GONE, {"error": "client closed the request"}, remember=False)
        duration = round(time.monotonic() - started, 3)
        try:
            result: PaymentResult = payment.result()
        except PaymentTimeout:
            counters.timed_out += 1
            logs.event(
                "timeout",
                f"[TIMEOUT] Order {order.order_id} exceeded {settings.request_timeout_seconds:g}s timeout",
                order_id=order.order_id,
                duration=duration,
            )
            return Answer(
                504,
                {"error": "Request timeout - system overloaded", "order_id": order.order_id, "duration": duration},
                remember=False,
            )
        if not result.approved:
            counters.failed += 1
            logs.event(
                "declined",
                f"[SYNC] Order {order.order_id} payment DECLINED in {duration:.2f}s",
                order_id=order.order_id,
                duration=duration,
                reason=result.reason,
            )
            return Answer(
                402,
                {
                    "error": "payment declined",
                    "order_id": order.order_id,
                    "status": "failed",
                    "reason": result.reason,
                    "duration": duration,
                },
            )
        counters.completed += 1
        logs.event(
            "completed",
            f"[SYNC] Order {order.order_id} COMPLETED in {duration:.2f}s",
            order_id=order.order_id,
            duration=duration,
        )
        return Answer(201, {"order_id": order.order_id, "status": "completed", "duration": duration})

    async def create_order(request: Request) -> Response:
        started = time.monotonic()
        try:
            submission = await read_submission(request)
        except Rejected as rejected:
            return rejected.response
        if submission.key is None:
            return answer_response(await pay(request, Order.new(submission.order), started))
        # A resumed claim (its task died mid-payment, which charged nothing) pays under the same order id.
        try:
            answer = await idempotency.submit(
                submission.key,
                submission.order.customer_id,
                submission.fingerprint,
                lambda order_id, resumed: pay(request, Order.new(submission.order, order_id), started),
            )
        except (BotoCoreError, ClientError) as e:  # the key record could not be read or written: nothing was paid
            counters.backend_errors += 1
            logs.event("backend_error", f"[SYNC] idempotency record unavailable: {e}", level="warning")
            answer = UNAVAILABLE
        if answer.replayed:
            counters.replayed += 1
            logs.event(
                "replayed",
                f"[SYNC] {contract.IDEMPOTENCY_KEY_HEADER} seen before: answered {answer.status} again",
                order_id=answer.body.get("order_id"),
            )
        return answer_response(answer)

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "total_orders": counters.total_orders,
                "payments_processed": counters.completed,
                "payments_failed": counters.failed,
                "timeouts": counters.timed_out,
                "abandoned": counters.abandoned,
                "replayed": counters.replayed,
                "rejected": rejections.snapshot(),
                "backend_errors": counters.backend_errors,
                "status_breakdown": {
                    "pending": processor.waiting,
                    "processing": processor.processing,
                    "completed": counters.completed,
                    "failed": counters.failed,
                },
                "throughput_limit": throughput_limit,
            }
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        executor.shutdown(wait=True)

    app = Starlette(
        routes=[
            Route(contract.SYNC_ORDERS_PATH, create_order, methods=["POST"]),
            Route(contract.STATS_PATH, stats, methods=["GET"]),
            *common_routes({"mode": "synchronous"}, openapi.sync_document()),
        ],
        lifespan=lifespan,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    return BufferedBody(app, timeout_seconds=settings.http.body_timeout_seconds)
