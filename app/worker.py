"""The order worker (report Part III): WORKER_COUNT concurrent payments in one process, fed from the order queue.

Design: a few receive loops long-poll SQS (20 s, up to 10 messages), each message becomes an asyncio task (a payment
is an asyncio sleep, so 1,000 in flight cost no threads), and the blocking boto3 calls run in two small thread pools
(one for the long polls, one for everything else, so a round's status writes never wait behind a poll). The worker
holds a little more than its payment slots (`prefetch`): a freed slot starts its next payment at once instead of
after a receive, which takes ~200 ms on a loaded backend; receives wait for a batch's worth of room so they stay
batched. A slot is freed as soon as its payment's time is up: the status write, the log line and the delete overlap
the next payment. Status writes go out up to 25 in one PartiQL BatchExecuteStatement (each statement keeps its own
condition), finished messages are deleted in batches of 10: a boto3 call costs ~1 ms of CPU whatever its size.

Delivery is at least once, so every message is checked against the store before paying (an order already final, or never
accepted, is not paid), the payment gateway is given the order id as its idempotency key (a key it charged before gets
that charge's answer, not a second charge: app.payment) and the one status write is conditional (only a non-final order
becomes completed|failed): a redelivered or duplicated order is never paid twice. The status write is a pure function of
the gateway's answer (`final_outcome`), so a second write of it (after a replay, or another region's write of the same
order) writes the same record. A worker pays only its own region's orders: a record whose `home_region` is another
region's is left to that region (`not_home`; it cannot come from this region's queue unless the same Idempotency-Key
reached both regions, and then that region has its own message for it). A decline is a business outcome: status
`failed`, message deleted. Any other error leaves the message: it returns after the visibility timeout and SQS
dead-letters it after maxReceiveCount. Poison messages are logged once and made visible again at once, so they reach the
DLQ in seconds instead of minutes. Payments that outlive half the visibility timeout get their messages' visibility
extended.

SIGTERM: stop polling, give in-flight payments DRAIN_SECONDS to finish, make the rest visible again, exit 0, every
step within its bound of `contract.SHUTDOWN` (derived from the container's stopTimeout), so the whole sequence ends
before ECS's SIGKILL however slow AWS answers. On ECS the task is protected from scale-in while it holds orders
(app.protection), so scale-in stops idle tasks first.

The buyers' wait: every payment line (`payment_completed`, `payment_failed`) of an order whose final status this
worker wrote carries the order's wait, from its acceptance (the record's `created_at`) to its final status (the
status write's `finished_at`, when the gateway decided; a replayed charge's line, `payment_replayed`, carries none:
the charge's own line did), as a CloudWatch metric in the Embedded Metric Format (`wait_metric`): CloudWatch Logs
extracts it from the log line, so the metric costs no API call and no second line. Its p95 alarm and dashboard
widget read it (`app.contract.WAIT_METRIC_*`).
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import signal
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from app import aws, contract, logs
from app.contract import OrderRecord, OrderStatus
from app.orders import Order, parse_order_message
from app.payment import PaymentResult, gateway
from app.protection import TaskProtection, expiry_minutes
from app.settings import WorkerSettings
from app.store import STATEMENT_BATCH, OrderStore, Outcome, WriteFailed

BATCH = contract.ORDER_QUEUE.receive_batch_size
WAIT_SECONDS = contract.ORDER_QUEUE.receive_wait_time_seconds
MAX_RECEIVE_LOOPS = 16  # each loop is one thread, blocked while the queue is empty; 16 receive ~2,900 messages/s
CALL_THREADS = 16  # status writes, lookups, deletes and visibility changes
PREFETCH_VISIBILITY_SHARE = 0.25  # a message held for a slot never waits longer than this share of visibility
EXTEND_AT_SHARE = 0.5  # a message still held when less than this share of its visibility is left gets a new timeout
LINGER_SECONDS = 0.02  # how long a lone status write or delete waits for company to fill a batch
HEARTBEAT_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 10.0
POISON_MEMORY = 10_000

T = TypeVar("T")
SHUTDOWN = contract.SHUTDOWN


@dataclass
class InFlight:
    message_id: str
    receipt: str
    visible_until: float
    task: asyncio.Task[None] | None = None
    paying: bool = False  # holds a payment slot (else still waiting for one: released at once on SIGTERM)


@dataclass(frozen=True)
class Write:
    """One status write waiting for its batch; `written` gets True when written, False when the order was already
    final or unknown (finish_many's False)."""

    order_id: str
    outcome: Outcome
    written: asyncio.Future[bool]


@dataclass
class WorkerCounters:
    received: int = 0
    completed: int = 0
    failed: int = 0
    skipped: int = 0  # redeliveries of orders already final, and orders of another home region
    replayed: int = 0  # payments the gateway answered from its ledger (the order id was charged before)
    errors: int = 0
    poison: int = 0
    released: list[str] = field(default_factory=list)  # message ids made visible again at shutdown


def _parse(body: str) -> Order | str:
    """The message's order, or why it is poison."""
    try:
        return parse_order_message(body)
    except ValueError as e:
        return str(e)


def final_outcome(result: PaymentResult) -> Outcome:
    """The status write of a payment: a pure function of the gateway's answer for the order id, which is the same
    every time the key is charged. So whichever of two writes of an order's final status wins (a redelivery after a
    lost write, or two regions' writes meeting in the global table, last writer wins), the record is the same."""
    return Outcome(
        status=OrderStatus.COMPLETED if result.approved else OrderStatus.FAILED,
        worker=result.payer,
        duration=result.seconds,
        finished_at=result.charged_at,
        reason=result.reason,
    )


def backoff(failures: int) -> float:
    """Full jitter: workers that failed together do not retry together."""
    return random.uniform(0, min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures))


def wait_metric(stack_name: str | None) -> logs.EmbeddedMetric | None:
    """The buyers' wait metric of this task's stack in its region (`AWS_REGION`, which ECS sets in every task); None
    without a stack name."""
    if not stack_name:
        return None
    return logs.EmbeddedMetric(
        namespace=contract.WAIT_METRIC_NAMESPACE,
        name=contract.WAIT_METRIC_NAME,
        unit=contract.WAIT_METRIC_UNIT,
        dimensions={contract.WAIT_DIMENSION_STACK: stack_name, contract.WAIT_DIMENSION_REGION: aws.region()},
    )


def buyer_wait(created_at: float, finished_at: float) -> float:
    """Seconds from acceptance to the final status (never negative: the two times come from two tasks' clocks)."""
    return round(max(0.0, finished_at - created_at), 3)


def receive_loops(worker_count: int) -> int:
    return min(MAX_RECEIVE_LOOPS, math.ceil(worker_count / BATCH))


def prefetch(worker_count: int, payment_seconds: float, visibility_seconds: float) -> int:
    """Messages held beyond the payment slots: each slot's next message, but no more than the slots pay in
    PREFETCH_VISIBILITY_SHARE of the visibility timeout (another task could pay them sooner)."""
    rate = worker_count / max(payment_seconds, 1e-3)
    return min(worker_count, math.floor(rate * visibility_seconds * PREFETCH_VISIBILITY_SHARE))


class Worker:
    def __init__(self, settings: WorkerSettings) -> None:
        self.settings = settings
        loops = receive_loops(settings.worker_count)
        self._polls = ThreadPoolExecutor(max_workers=loops, thread_name_prefix="poll")
        self._executor = ThreadPoolExecutor(max_workers=CALL_THREADS, thread_name_prefix="aws")
        self._sqs = aws.client("sqs", read_timeout=WAIT_SECONDS + 10, max_pool_connections=loops + CALL_THREADS)
        self._store = OrderStore(
            aws.client("dynamodb", read_timeout=5, max_pool_connections=CALL_THREADS), settings.table
        )
        self._gateway = gateway(settings.payment, settings.worker_count)
        self._loops = loops
        self._slots = asyncio.Semaphore(settings.worker_count)
        self._room = settings.worker_count  # messages it may hold: the slots plus the prefetch (set in run())
        self._held = 0  # messages received (or being received) and not finished with
        self._waiting = 0  # of those, not yet paying and not settled otherwise
        self._receive_room = 1  # free room that makes a receive worth it (a batch, or the whole prefetch)
        self._changed = asyncio.Event()  # room or waiting changed: receive loops look again
        self._idle_ids = list(range(settings.worker_count, 0, -1))  # [WORKER-n] labels, lowest first
        self._in_flight: dict[str, InFlight] = {}
        self._deletes: asyncio.Queue[InFlight] = asyncio.Queue()
        self._writes: asyncio.Queue[Write] = asyncio.Queue()
        self._poison_seen: OrderedDict[str, None] = OrderedDict()
        self._stopping = asyncio.Event()
        self._visibility = float(contract.ORDER_QUEUE.visibility_timeout_seconds)
        self._background: set[asyncio.Task[Any]] = set()
        self._wait_metric = wait_metric(settings.stack_name)
        self.counters = WorkerCounters()

    async def _blocking(self, function: Any, pool: ThreadPoolExecutor | None = None, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(pool or self._executor, lambda: function(**kwargs))

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # --- room: hold at most the slots plus the prefetch, receive in batches ----------------------------------

    async def _claim(self) -> int:
        """Wait for room worth a receive (a batch's worth, or any when nothing waits for a slot); 0 when stopping."""
        while not self._stopping.is_set():
            free = self._room - self._held
            if free >= self._receive_room or (free > 0 and self._waiting == 0):
                n = min(BATCH, free)
                self._adjust(held=n, waiting=n)
                return n
            self._changed.clear()
            await self._changed.wait()
        return 0

    def _adjust(self, *, held: int = 0, waiting: int = 0) -> None:
        self._held += held
        self._waiting += waiting
        self._changed.set()

    # --- main ------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        attributes = await self._blocking(
            self._sqs.get_queue_attributes, QueueUrl=self.settings.queue_url, AttributeNames=["VisibilityTimeout"]
        )
        self._visibility = float(attributes["Attributes"]["VisibilityTimeout"])
        ahead = prefetch(self.settings.worker_count, self.settings.payment.seconds, self._visibility)
        self._room = self.settings.worker_count + ahead
        self._receive_room = min(BATCH, max(1, ahead))
        logs.event(
            "starting",
            f"[WORKER-1] Starting worker ({self.settings.worker_count} concurrent payments, "
            f"{self._loops} receive loops, {ahead} messages prefetched; "
            f"buyer wait metric {'on' if self._wait_metric else 'off (no ' + contract.ENV_STACK_NAME + ')'})",
            workers=self.settings.worker_count,
            loops=self._loops,
            prefetch=ahead,
            wait_metric=None if self._wait_metric is None else self._wait_metric.dimensions,
        )
        receivers = [asyncio.create_task(self._receive_loop()) for _ in range(self._loops)]
        helpers = [
            asyncio.create_task(self._batch_loop(self._writes, STATEMENT_BATCH, self._write)),
            asyncio.create_task(self._batch_loop(self._deletes, BATCH, self._delete)),
            asyncio.create_task(self._extend_loop()),
            asyncio.create_task(self._heartbeat_loop(receivers)),
        ]
        if self.settings.agent_uri:
            protection = TaskProtection(
                self.settings.agent_uri, expiry_minutes(self._visibility), busy=lambda: bool(self._in_flight)
            )  # received, not yet done with
            self._spawn(protection.run(self._stopping))
        await self._stopping.wait()
        await self._drain(receivers, helpers)

    async def _drain(self, receivers: list[asyncio.Task[None]], helpers: list[asyncio.Task[None]]) -> None:
        """The shutdown sequence; each step within its bound of SHUTDOWN, the drain within DRAIN_SECONDS."""
        self._changed.set()  # wake loops waiting for room so they see the stop
        waiting = [f for f in self._in_flight.values() if not f.paying]
        for flight in waiting:  # not started: another worker may take them now
            if flight.task is not None:
                flight.task.cancel()
        await self._bounded("release", self._release(waiting), SHUTDOWN.release_seconds)
        payments = [f.task for f in self._in_flight.values() if f.task is not None and f.paying]
        logs.event(
            "draining",
            f"[WORKER-1] SIGTERM: draining {len(payments)} in-flight payments (up to {self.settings.drain_seconds:g}s)",
            in_flight=len(payments),
        )
        if payments:
            await asyncio.wait(payments, timeout=self.settings.drain_seconds)
        unfinished = list(self._in_flight.values())
        for flight in unfinished:
            if flight.task is not None:
                flight.task.cancel()
        await self._bounded("release", self._release(unfinished), SHUTDOWN.release_seconds)
        # Receives still long-polling get a moment to return what they took (released by their loop); a poll cut
        # off by the exit only delays its messages by one visibility timeout.
        await asyncio.wait(receivers, timeout=SHUTDOWN.receive_grace_seconds)
        settle_by = time.monotonic() + SHUTDOWN.settle_seconds
        await self._bounded("delete", self._deletes.join(), SHUTDOWN.settle_seconds)
        for task in [*receivers, *helpers]:
            task.cancel()
        if self._background:
            await asyncio.wait(self._background, timeout=max(0.0, settle_by - time.monotonic()))
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._polls.shutdown(wait=False, cancel_futures=True)
        logs.event(
            "stopped",
            f"[WORKER-1] Stopped: {self.counters.completed} completed, {self.counters.failed} "
            f"failed, {len(self.counters.released)} released for redelivery",
            completed=self.counters.completed,
            failed=self.counters.failed,
            released=len(self.counters.released),
        )

    async def _bounded(self, step: str, work: Awaitable[Any], seconds: float) -> None:
        """One shutdown step, given up after `seconds` (its AWS call is abandoned in its thread: what it was about
        comes back after the visibility timeout, as after a crash)."""
        try:
            await asyncio.wait_for(work, timeout=seconds)
        except TimeoutError:
            logs.event(
                "shutdown_step_timeout",
                f"[WORKER-1] Shutdown: {step} not done within {seconds:g}s, given up",
                level="warning",
                step=step,
            )

    async def _release(self, flights: list[InFlight]) -> None:
        """Make messages visible again at once (shutdown), so another worker takes them without waiting."""
        self.counters.released += [f.message_id for f in await self._set_visibility(flights, 0)]

    async def _set_visibility(self, flights: list[InFlight], seconds: int) -> list[InFlight]:
        """ChangeMessageVisibility ten at a time; returns the messages changed (failures are logged, not raised)."""
        changed: list[InFlight] = []
        for start in range(0, len(flights), BATCH):
            chunk = flights[start : start + BATCH]
            try:
                response = await self._blocking(
                    self._sqs.change_message_visibility_batch,
                    QueueUrl=self.settings.queue_url,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": f.receipt, "VisibilityTimeout": seconds}
                        for n, f in enumerate(chunk)
                    ],
                )
            except (BotoCoreError, ClientError) as e:
                logs.event(
                    "visibility_failed",
                    f"[WORKER-1] Could not set visibility of {len(chunk)} messages to {seconds}s: {e}",
                    level="warning",
                )
                continue
            failed = {int(f["Id"]) for f in response.get("Failed", [])}
            changed += [f for n, f in enumerate(chunk) if n not in failed]
        return changed

    # --- receiving -----------------------------------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        failures = 0
        while wanted := await self._claim():
            try:
                response = await self._blocking(
                    self._sqs.receive_message,
                    self._polls,
                    QueueUrl=self.settings.queue_url,
                    MaxNumberOfMessages=wanted,
                    WaitTimeSeconds=WAIT_SECONDS,
                )
            except (BotoCoreError, ClientError) as e:
                self._adjust(held=-wanted, waiting=-wanted)
                failures += 1
                delay = backoff(failures)
                logs.event(
                    "receive_failed",
                    f"[WORKER-1] Receive failed ({e}); retrying in {delay:.1f}s",
                    level="warning",
                    failures=failures,
                )
                await asyncio.sleep(delay)
                continue
            failures = 0
            messages = response.get("Messages", [])
            now = time.monotonic()
            flights = [InFlight(m["MessageId"], m["ReceiptHandle"], now + self._visibility) for m in messages]
            if self._stopping.is_set():
                self._adjust(held=-wanted, waiting=-wanted)
                await self._release(flights)
                return
            self._adjust(held=len(messages) - wanted, waiting=len(messages) - wanted)
            self.counters.received += len(messages)
            # One BatchGetItem for the whole receive batch, not one GetItem per message: half the calls per order.
            orders = [_parse(m["Body"]) for m in messages]
            lookup = self._spawn(self._lookup([o.order_id for o in orders if isinstance(o, Order)]))
            for message, flight, order in zip(messages, flights, orders, strict=True):
                self._in_flight[flight.message_id] = flight
                flight.task = self._spawn(self._handle(message, flight, order, lookup))

    async def _lookup(self, order_ids: list[str]) -> dict[str, OrderRecord | ValueError]:
        return await self._blocking(self._store.get_many, order_ids=order_ids) if order_ids else {}

    # --- one message ---------------------------------------------------------------------------------------------

    async def _handle(
        self,
        message: dict[str, Any],
        flight: InFlight,
        order: Order | str,
        lookup: asyncio.Task[dict[str, OrderRecord | ValueError]],
    ) -> None:
        done = False
        try:
            done = await self._process(message, flight, order, lookup)
        except asyncio.CancelledError:
            raise  # shutdown: _drain releases the message
        except Exception as e:  # the message comes back after the visibility timeout; after 3 receives, the DLQ
            self.counters.errors += 1
            logs.event(
                "error",
                f"[WORKER-1] Message {flight.message_id} failed, left for redelivery: {e!r}",
                level="error",
                message_id=flight.message_id,
            )
        finally:
            self._adjust(held=-1, waiting=0 if flight.paying else -1)
            if not done:
                self._in_flight.pop(flight.message_id, None)
        if done:
            self._deletes.put_nowait(flight)

    async def _process(
        self,
        message: dict[str, Any],
        flight: InFlight,
        order: Order | str,
        lookup: asyncio.Task[dict[str, OrderRecord | ValueError]],
    ) -> bool:
        """Returns True when the message is finished with and must be deleted."""
        if isinstance(order, str):
            self._poison(message, flight, order)
            return False
        # Checked on every delivery, not just redeliveries: SNS->SQS may also deliver a duplicate as a new message.
        record = (await lookup).get(order.order_id)
        if isinstance(record, ValueError):  # an item at that key that is no order: left for redelivery, the DLQ
            raise record
        if record is None or record.status.final:
            self.counters.skipped += 1
            state = "unknown" if record is None else record.status.value
            logs.event(
                "skipped",
                f"[WORKER-1] Order {order.order_id} is already {state}: not paid again",
                order_id=order.order_id,
                status=state,
            )
            return True
        if record.home_region not in (None, self._store.region):
            self.counters.skipped += 1
            logs.event(
                "not_home",
                f"[WORKER-1] Order {order.order_id} belongs to {record.home_region}: left to its workers",
                level="warning",
                order_id=order.order_id,
                home_region=record.home_region,
            )
            return True
        await self._pay(order, flight, record.created_at)
        return True

    async def _pay(self, order: Order, flight: InFlight, created_at: float) -> None:
        """One payment in one slot (`[WORKER-n]`); the slot is free again as soon as the payment's time is up."""
        await self._slots.acquire()
        flight.paying = True
        self._adjust(waiting=-1)
        label = self._idle_ids.pop()
        name = f"WORKER-{label}"
        try:
            logs.event(
                "processing", f"[{name}] Processing order {order.order_id}", order_id=order.order_id, worker=name
            )
            result = await self._gateway.charge(order.order_id, name)
        finally:
            self._idle_ids.append(label)
            self._slots.release()
        outcome = final_outcome(result)
        status = outcome.status
        written = await self._record(order.order_id, outcome)
        if result.replayed:
            self.counters.replayed += 1
            logs.event(
                "payment_replayed",
                f"[{name}] Order {order.order_id} was charged before ({status}): not charged again",
                order_id=order.order_id,
                worker=name,
                status=status,
                written=written,
            )
            return
        if not written:
            logs.event(
                "duplicate_payment",
                f"[{name}] Order {order.order_id} was already final or unknown: this payment is void",
                level="error",
                order_id=order.order_id,
            )
            return
        verb = "COMPLETED" if result.approved else "DECLINED"
        metric = self._wait_metric
        logs.event(
            f"payment_{status}",
            f"[{name}] Order {order.order_id} payment {verb} in {result.seconds:.2f}s",
            order_id=order.order_id,
            worker=name,
            seconds=round(result.seconds, 3),
            reason=result.reason,
            **(
                {}
                if metric is None
                else metric.members(buyer_wait(created_at, outcome.finished_at), outcome.finished_at)
            ),
        )
        if result.approved:
            self.counters.completed += 1
        else:
            self.counters.failed += 1

    async def _record(self, order_id: str, outcome: Outcome) -> bool:
        """The status write, retried with backoff for up to one visibility timeout: the payment is made, and giving
        up would leave the message to be redelivered and paid again (answered from the gateway's ledger if the same
        ledger sees it). False when the order was already final or unknown."""
        deadline = time.monotonic() + self._visibility
        failures = 0
        while True:
            write = Write(order_id, outcome, asyncio.get_running_loop().create_future())
            self._writes.put_nowait(write)
            try:
                return await write.written
            except (BotoCoreError, ClientError, WriteFailed) as e:
                failures += 1
                delay = backoff(failures)
                if time.monotonic() + delay > deadline:
                    raise
                logs.event(
                    "record_failed",
                    f"[{outcome.worker}] Order {order_id}: status write failed ({e}); retrying in {delay:.1f}s",
                    level="warning",
                    order_id=order_id,
                    failures=failures,
                )
                await asyncio.sleep(delay)

    def _poison(self, message: dict[str, Any], flight: InFlight, reason: str) -> None:
        """Log once per message, then let it come straight back so SQS dead-letters it after maxReceiveCount."""
        message_id = message["MessageId"]
        if message_id not in self._poison_seen:
            self.counters.poison += 1
            self._poison_seen[message_id] = None
            if len(self._poison_seen) > POISON_MEMORY:
                self._poison_seen.popitem(last=False)
            logs.event(
                "poison",
                f"[WORKER-1] Poison message {message_id} ({reason}): left for the DLQ",
                level="warning",
                message_id=message_id,
                reason=reason,
                body=message["Body"][:200],
            )
        self._spawn(self._set_visibility([flight], 0))

    # --- background ----------------------------------------------------------------------------------------------

    async def _batch_loop(self, queue: asyncio.Queue[T], size: int, send: Callable[[list[T]], Awaitable[None]]) -> None:
        """Hand what the queue holds to `send` in batches of up to `size`, each batch its own task (a call costs
        ~1 ms of CPU whatever its size); a lone item waits LINGER_SECONDS for company."""
        while True:
            batch = [await queue.get()]
            if queue.empty():
                await asyncio.sleep(LINGER_SECONDS)
            while len(batch) < size and not queue.empty():
                batch.append(queue.get_nowait())
            self._spawn(send(batch))

    async def _write(self, batch: list[Write]) -> None:
        try:
            results = await self._blocking(self._store.finish_many, finished=[(w.order_id, w.outcome) for w in batch])
        except (BotoCoreError, ClientError) as e:
            results = [e] * len(batch)
        for write, result in zip(batch, results, strict=False):
            if write.written.done():  # its payment was cancelled (shutdown)
                continue
            if isinstance(result, Exception):
                write.written.set_exception(result)
            else:
                write.written.set_result(result)

    async def _delete(self, batch: list[InFlight]) -> None:
        try:
            response = await self._blocking(
                self._sqs.delete_message_batch,
                QueueUrl=self.settings.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": f.receipt} for n, f in enumerate(batch)],
            )
            for failure in response.get("Failed", []):
                logs.event("delete_failed", f"[WORKER-1] Delete failed: {failure.get('Message')}", level="warning")
        except (BotoCoreError, ClientError) as e:  # redelivered later; the store check stops a second payment
            logs.event("delete_failed", f"[WORKER-1] Delete of {len(batch)} messages failed: {e}", level="warning")
        finally:
            for flight in batch:
                self._in_flight.pop(flight.message_id, None)
                self._deletes.task_done()

    async def _extend_loop(self) -> None:
        """Payments outliving EXTEND_AT_SHARE of the visibility timeout get another full timeout."""
        while True:
            await asyncio.sleep(self._visibility / 6)
            now = time.monotonic()
            due = [f for f in self._in_flight.values() if f.visible_until - now < self._visibility * EXTEND_AT_SHARE]
            for flight in await self._set_visibility(due, int(self._visibility)):
                flight.visible_until = now + self._visibility

    async def _heartbeat_loop(self, receivers: list[asyncio.Task[None]]) -> None:
        """Touch the heartbeat file while the receive loops are alive: the container health check reads its age."""
        path = Path(self.settings.heartbeat_file)
        while not self._stopping.is_set():
            if any(task.done() for task in receivers):
                logs.event("unhealthy", "[WORKER-1] A receive loop ended: heartbeat stopped", level="error")
                return
            path.touch()
            await asyncio.sleep(HEARTBEAT_SECONDS)


def run(settings: WorkerSettings) -> None:
    asyncio.run(Worker(settings).run())
    # A receive still long-polling in its thread would hold the interpreter's exit for up to 20 s (executor threads
    # are joined at exit). Everything worth keeping is done: in-flight work is finished or released, logs flushed.
    sys.stdout.flush()
    os._exit(0)
