"""The asynchronous order receiver (report Part III): record the order, publish it, answer 202 at once.

Order of writes: the record goes in as `pending` first (so `GET /orders/{id}` works the moment the client has its
202, and a worker always finds the record), then the event is published. If the publish fails, the pending record is
deleted again (conditionally: a worker that already took the order means the publish did get through) and the
client gets 503 + Retry-After. So an accepted order always has both a record and a message, and a refused one leaves
no pending record behind.

Work in flight is bounded (app.shedding): beyond a cap that shrinks while the process is the bottleneck (so that
accepted orders stay fast) and is MAX_IN_FLIGHT otherwise (a stalled backend), the receiver sheds new orders with
503 + Retry-After instead of queueing them (it must never turn into the sync service's queue of waiting requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
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

from app import aws, contract, logs, openapi
from app.orders import Order
from app.settings import ReceiverSettings
from app.shedding import CPU_SATURATED_SHARE, ShedPolicy, Shedder, cpu_budget
from app.store import OrderStore
from app.web import Rejected, common_routes, error_response, read_order

BACKEND_ERRORS = (BotoCoreError, ClientError)
QUEUE_DEPTH_CACHE_SECONDS = 1.0


class BackendUnavailable(Exception):
    """The order store or the topic failed; nothing was accepted."""


@dataclass
class ReceiverCounters:
    accepted: int = 0
    rejected: int = 0  # bad input
    shed: int = 0  # 503: too much in flight
    backend_errors: int = 0  # 503: store or topic failed
    in_flight: int = 0


class Backend:
    """The blocking boto3 side of the receiver; its methods run in the receiver's thread pool."""

    def __init__(self, settings: ReceiverSettings) -> None:
        pool = settings.max_in_flight
        self.settings = settings
        self.store = OrderStore(aws.client("dynamodb", read_timeout=5, retries=1, max_pool_connections=pool),
                                settings.table)
        self.sns = aws.client("sns", read_timeout=5, retries=1, max_pool_connections=pool)
        self.sqs = aws.client("sqs", read_timeout=5, retries=1)
        self._depth: tuple[float, int] = (0.0, 0)

    def accept(self, order: Order) -> None:
        try:
            self.store.put_pending(order.order_id, order.customer_id, order.items_json(), order.total)
        except BACKEND_ERRORS as e:
            raise BackendUnavailable(f"order store: {e}") from e
        try:
            self.sns.publish(TopicArn=self.settings.topic_arn, Message=order.to_json())
        except BACKEND_ERRORS as e:
            self._compensate(order.order_id, e)

    def _compensate(self, order_id: str, publish_error: Exception) -> None:
        try:
            removed = self.store.remove_pending(order_id)
        except BACKEND_ERRORS as e:
            logs.event("orphan", f"[RECEIVER] Order {order_id} publish failed and its pending record could not be "
                       "removed", level="error", order_id=order_id, error=str(e))
            raise BackendUnavailable(f"order topic: {publish_error}") from publish_error
        if removed:
            raise BackendUnavailable(f"order topic: {publish_error}") from publish_error
        # A worker already moved the order on: the publish reached the queue although the call reported an error.

    def queue_depth(self) -> int:
        """Orders waiting in the queue, cached for a second so status polling does not hammer SQS."""
        fetched_at, depth = self._depth
        if time.monotonic() - fetched_at > QUEUE_DEPTH_CACHE_SECONDS:
            attributes = self.sqs.get_queue_attributes(QueueUrl=self.settings.queue_url,
                                                       AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
            depth = int(attributes["ApproximateNumberOfMessages"])
            self._depth = (time.monotonic(), depth)
        return depth


def estimate(position: int, settings: ReceiverSettings) -> dict[str, Any]:
    """Report 6.5 item 3: place in the queue and when the order should be done, at num_workers payments at a time."""
    seconds = math.ceil(position / settings.worker_count) * settings.payment_seconds
    return {
        "queue_position": position,
        "estimated_completion_seconds": round(seconds, 3),
        "estimated_completion": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds)),
    }


def build(settings: ReceiverSettings) -> Shedder:
    backend = Backend(settings)
    executor = ThreadPoolExecutor(max_workers=settings.max_in_flight, thread_name_prefix="aws")
    counters = ReceiverCounters()

    async def blocking(function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(executor, function, *args)

    async def create_order(request: Request) -> Response:
        started = time.monotonic()
        try:
            order = await read_order(request)
        except Rejected as rejected:
            counters.rejected += 1
            return rejected.response
        try:
            await blocking(backend.accept, order)
        except BackendUnavailable as e:
            counters.backend_errors += 1
            logs.event("backend_error", f"[RECEIVER] Order {order.order_id} refused: {e}", level="warning",
                       order_id=order.order_id)
            return error_response(503, "order backend unavailable, retry shortly", retry_after=True)
        counters.accepted += 1
        duration = round(time.monotonic() - started, 3)
        logs.event("accepted", f"[RECEIVER] Order {order.order_id} accepted in {duration:.3f}s",
                   order_id=order.order_id, duration=duration)
        return JSONResponse({"order_id": order.order_id, "status": "pending",
                             "message": "Order received and queued for processing", "duration": duration},
                            status_code=202)

    async def order_status(request: Request) -> Response:
        order_id = request.path_params["order_id"]
        try:
            record = await blocking(backend.store.get, order_id)
            body = {key: record[key] for key in ("order_id", "status", "customer_id", "total", "created_at",
                                                 "finished_at", "duration", "reason", "worker")
                    if record and record.get(key) not in (None, "")} if record else None
            if body and body["status"] == "pending":
                body |= estimate(max(1, await blocking(backend.queue_depth)), settings)
        except BACKEND_ERRORS:
            return error_response(503, "order backend unavailable, retry shortly", retry_after=True)
        if body is None:
            return error_response(404, "unknown order", order_id=order_id)
        if "customer_id" in body:
            body["customer_id"] = int(body["customer_id"])
        return JSONResponse(body)

    async def stats(request: Request) -> JSONResponse:
        try:
            waiting: int | None = await blocking(backend.queue_depth)
        except BACKEND_ERRORS:
            waiting = None
        return JSONResponse({
            "total_orders": counters.accepted + counters.backend_errors,
            "accepted": counters.accepted,
            "rejected_invalid": counters.rejected,
            "shed": counters.shed,
            "backend_errors": counters.backend_errors,
            "in_flight": counters.in_flight,
            "max_in_flight": settings.max_in_flight,
            "queue_depth": waiting,
            "num_workers": settings.worker_count,
            "throughput_limit": f"~{60 * settings.worker_count / settings.payment_seconds:g} orders/minute per "
                                f"worker task ({settings.worker_count} workers, {settings.payment_seconds:g}s per "
                                "payment)" if settings.payment_seconds else "unbounded",
        })

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        watch = asyncio.create_task(guard.watch())
        yield
        watch.cancel()
        executor.shutdown(wait=True)

    app = Starlette(routes=[
        Route(contract.ASYNC_ORDERS_PATH, create_order, methods=["POST"]),
        Route(contract.ORDER_STATUS_PATH, order_status, methods=["GET"]),
        Route(contract.STATS_PATH, stats, methods=["GET"]),
        *common_routes({"mode": "async-enabled", "num_workers": settings.worker_count}, openapi.receiver_document()),
    ], lifespan=lifespan)
    policy = ShedPolicy(contract.ASYNC_ORDERS_PATH, settings.max_in_flight, CPU_SATURATED_SHARE * cpu_budget())
    guard = Shedder(app, policy=policy, counters=counters)
    return guard
