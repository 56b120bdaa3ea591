"""The worker as a real process against ministack: crash and redelivery, no double payment (the gateway's ledger of
order ids included), orders of another home region left alone, poison messages to the DLQ, visibility extension for
long payments, and a clean SIGTERM drain."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Coroutine
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from app import aws, contract
from app.orders import parse_order
from app.payment import Gateway, PaymentResult
from app.settings import PaymentSettings
from app.store import OrderStore
from app.worker import final_outcome, receive_loops
from bench.localaws import gateway
from stackconfig import output_names
from tests.helpers import ORDER, StallingProxy, System, payments, post, system, wait_for  # noqa: F401


def _events(service, event: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return [e for e in service.events() if e.get("event") == event]


def _short_visibility(system: System, seconds: int) -> None:
    aws.client("sqs").set_queue_attributes(
        QueueUrl=system.outputs[output_names.QUEUE_URL], Attributes={"VisibilityTimeout": str(seconds)}
    )


T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    loop = asyncio.new_event_loop()  # not asyncio.run: a later in-process deploy needs the main thread's loop
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


def test_the_gateway_charges_a_key_once_even_concurrently() -> None:
    """Its ledger: a key charged, or being charged, gets that charge's answer; only another key is another charge
    (what an order paid without its id as the key would get)."""
    gateway = Gateway(PaymentSettings(seconds=0.05, decline_rate=0.5))

    async def charges() -> list[PaymentResult]:
        together = await asyncio.gather(*(gateway.charge("order-1", f"WORKER-{n}") for n in (1, 2)))
        return [*together, await gateway.charge("order-1", "WORKER-3"), await gateway.charge("order-2", "WORKER-4")]

    first, concurrent, later, other = _run(charges())
    assert [r.replayed for r in (first, concurrent, later, other)] == [False, True, True, False]
    assert final_outcome(concurrent) == final_outcome(later) == final_outcome(first)  # the same record, every time
    assert first.payer == "WORKER-1" and other.payer == "WORKER-4"


def test_a_charge_given_up_before_it_charged_leaves_the_key_to_the_next() -> None:
    gateway = Gateway(PaymentSettings(seconds=0.2, decline_rate=0))

    async def charges() -> tuple[PaymentResult, PaymentResult]:
        abandoned = asyncio.create_task(gateway.charge("order-1", "WORKER-1"))
        await asyncio.sleep(0.05)
        waiting = asyncio.create_task(gateway.charge("order-1", "WORKER-2"))  # waits for the first's answer
        await asyncio.sleep(0.05)
        abandoned.cancel()  # a worker's shutdown: nothing was charged
        return await waiting, await gateway.charge("order-1", "WORKER-3")

    charged, replayed = _run(charges())
    assert (charged.payer, charged.replayed) == ("WORKER-2", False)
    assert (replayed.payer, replayed.replayed) == ("WORKER-2", True)


def test_receive_loops_scale_with_workers_but_stay_few() -> None:
    assert [receive_loops(n) for n in (1, 10, 11, 200, 1000)] == [1, 1, 2, 16, 16]


def test_worker_killed_mid_payment_redelivers_and_completes_exactly_once(system: System) -> None:  # noqa: F811
    _short_visibility(system, 2)
    receiver = system.start("receiver")
    # One payment slot: the killed worker holds no other receive open. ministack, like SQS with a client that went away,
    # still hands messages to a dead client's pending long poll, which costs a receive of maxReceiveCount.
    first = system.start("worker", PAYMENT_SECONDS="3", WORKER_COUNT="1")
    order_id = post(receiver, "/orders/async").json()["order_id"]
    wait_for(lambda: _events(first, "processing"), 10, "the first worker to start paying")
    first.kill()
    assert first.process is not None and first.process.returncode == -signal.SIGKILL
    second = system.start("worker", PAYMENT_SECONDS="0.2")
    system.wait_status(order_id, "completed", timeout=15)
    assert payments(system.tasks, order_id) == 1
    assert _events(second, "processing")
    wait_for(lambda: system.queue_counts() == (0, 0), 5, "the message to be deleted")


def test_an_order_already_final_is_not_paid_again(system: System) -> None:  # noqa: F811
    receiver = system.start("receiver")
    worker = system.start("worker")
    order_id = post(receiver, "/orders/async").json()["order_id"]
    system.wait_status(order_id, "completed")
    body = json.dumps({"order_id": order_id, **ORDER})  # a duplicate delivery of the same order event
    aws.client("sqs").send_message(QueueUrl=system.outputs[output_names.QUEUE_URL], MessageBody=body)
    wait_for(lambda: _events(worker, "skipped"), 10, "the duplicate to be skipped")
    wait_for(lambda: system.queue_counts() == (0, 0), 5, "the duplicate to be deleted")
    assert payments([worker], order_id) == 1


def test_poison_messages_go_to_the_dlq_and_the_worker_keeps_going(system: System) -> None:  # noqa: F811
    receiver = system.start("receiver")
    worker = system.start("worker")
    sqs = aws.client("sqs")
    for body in ("not json", json.dumps({"order_id": "x", "customer_id": -1, "items": []})):
        sqs.send_message(QueueUrl=system.outputs[output_names.QUEUE_URL], MessageBody=body)
    order_id = post(receiver, "/orders/async").json()["order_id"]
    system.wait_status(order_id, "completed")
    wait_for(lambda: system.queue_counts(output_names.DLQ_URL)[0] == 2, 20, "both poison messages in the DLQ")
    poison = _events(worker, "poison")
    assert len(poison) == 2 and all(e["reason"] for e in poison)  # logged once each, with the reason
    assert system.queue_counts() == (0, 0)
    later = post(receiver, "/orders/async").json()["order_id"]
    system.wait_status(later, "completed")


def test_long_payments_get_their_visibility_extended(system: System) -> None:  # noqa: F811
    _short_visibility(system, 2)
    receiver = system.start("receiver")
    worker = system.start("worker", PAYMENT_SECONDS="4", WORKER_COUNT="2")
    order_id = post(receiver, "/orders/async").json()["order_id"]
    system.wait_status(order_id, "completed", timeout=10)
    assert len(_events(worker, "processing")) == 1  # never handed out again while it was being paid
    assert not _events(worker, "skipped") and not _events(worker, "duplicate_payment")


def test_sigterm_finishes_in_flight_payments_and_exits_0(system: System) -> None:  # noqa: F811
    receiver = system.start("receiver")
    worker = system.start("worker", PAYMENT_SECONDS="1", WORKER_COUNT="3")
    order_ids = [post(receiver, "/orders/async").json()["order_id"] for _ in range(3)]
    wait_for(lambda: len(_events(worker, "processing")) == 3, 10, "three payments in flight")
    assert worker.stop(timeout=10) == 0
    assert [system.order(o)["status"] for o in order_ids] == ["completed"] * 3  # type: ignore[index]
    assert system.queue_counts() == (0, 0)


def test_sigterm_releases_payments_that_cannot_finish_in_time(system: System) -> None:  # noqa: F811
    receiver = system.start("receiver")
    worker = system.start("worker", PAYMENT_SECONDS="30", WORKER_COUNT="2", DRAIN_SECONDS="0.3")
    order_ids = [post(receiver, "/orders/async").json()["order_id"] for _ in range(2)]
    wait_for(lambda: len(_events(worker, "processing")) == 2, 10, "two payments in flight")
    assert worker.stop(timeout=10) == 0
    assert system.queue_counts() == (2, 0)  # visible again at once, not after the visibility timeout
    assert [system.order(o)["status"] for o in order_ids] == ["pending"] * 2  # type: ignore[index]
    system.start("worker", PAYMENT_SECONDS="0.1", WORKER_COUNT="2")
    for order_id in order_ids:
        system.wait_status(order_id, "completed")


def test_sigterm_exits_within_the_stop_timeout_while_aws_stops_answering(system: System) -> None:  # noqa: F811
    """The worst case of a shutdown: a payment whose status write hangs, and every call after SIGTERM hanging too
    (releases, deletes, the background write). Each step is given up at its bound, so the process exits within the
    sequence's bound derived from the stop timeout (contract.SHUTDOWN), before ECS would SIGKILL it."""
    drain = 1.0
    proxy = StallingProxy(int(urlsplit(system.deployment.endpoints.data_plane).port or 0))
    try:
        receiver = system.start("receiver")
        worker = system.start(
            "worker", PAYMENT_SECONDS="1", WORKER_COUNT="2", DRAIN_SECONDS=str(drain), AWS_ENDPOINT_URL=proxy.url
        )
        order_id = post(receiver, "/orders/async").json()["order_id"]
        wait_for(lambda: _events(worker, "processing"), 10, "a payment in flight")
        proxy.stall()
        wait_for(lambda: proxy.holds(b"BatchExecuteStatement"), 10, "the payment's status write held")
        started = time.monotonic()
        code = worker.stop(timeout=contract.STOP_TIMEOUT_SECONDS)  # then SIGKILL, as ECS would
        took = time.monotonic() - started
    finally:
        proxy.close()
    assert code == 0, f"SIGKILLed after {took:.1f}s"
    bound = contract.SHUTDOWN.sequence_seconds(drain)
    assert took <= bound + contract.SHUTDOWN.exit_seconds, f"exit took {took:.1f}s, the sequence's bound is {bound:g}s"
    assert {e["step"] for e in _events(worker, "shutdown_step_timeout")} >= {"release"}
    assert system.order(order_id)["status"] == "pending"  # type: ignore[index]  # its write never landed: paid again later


def _order_event(system: System, order_id: str) -> None:  # noqa: F811
    """The order's event in the queue again: a redelivery, or a duplicate as SNS may send."""
    body = json.dumps({"order_id": order_id, **ORDER})
    aws.client("sqs").send_message(QueueUrl=system.outputs[output_names.QUEUE_URL], MessageBody=body)


def _pending_again(system: System, order_id: str) -> None:  # noqa: F811
    """A paid order's record pending again: its final write lost (to another region's later pending write, under the
    global table's last-writer-wins)."""
    aws.client("dynamodb").update_item(
        TableName=system.outputs[output_names.ORDERS_TABLE],
        Key={contract.ORDER_KEY: {"S": order_id}},
        UpdateExpression="SET #s = :pending REMOVE finished_at, #d, reason, worker",
        ExpressionAttributeNames={"#s": "status", "#d": "duration"},
        ExpressionAttributeValues={":pending": {"S": "pending"}},
    )


def test_a_redelivery_after_a_lost_status_write_is_not_charged_again(system: System) -> None:  # noqa: F811
    """The order is paid and final; then its record is pending again (its status write lost: a pending write of
    another region that won the global table's last-writer-wins, or a write that never landed) and its message comes
    again. The store's check and the conditional write both let it through; the gateway's ledger, keyed by the order
    id, alone stops the second charge, and the status write it makes is the first one's."""
    receiver = system.start("receiver")
    worker = system.start("worker", PAYMENT_SECONDS="0.05")
    order_id = post(receiver, "/orders/async").json()["order_id"]
    paid = system.wait_status(order_id, "completed")
    _pending_again(system, order_id)
    _order_event(system, order_id)
    wait_for(lambda: _events(worker, "payment_replayed") or payments([worker], order_id) > 1, 10, "the second payment")
    assert payments([worker], order_id) == 1  # answered from the ledger, not charged again
    assert system.wait_status(order_id, "completed") == paid  # the same final record
    wait_for(lambda: system.queue_counts() == (0, 0), 5, "the message to be deleted")


@pytest.mark.parametrize("home", ["us-east-2", None], ids=["another region's", "no home region (older record)"])
def test_a_worker_pays_only_its_own_regions_orders(system: System, home: str | None) -> None:  # noqa: F811
    """A record whose home region is another is that region's to pay (left pending, the message deleted); a record
    from before home regions is this region's."""
    worker = system.start("worker", PAYMENT_SECONDS="0.05")
    order = parse_order(ORDER)
    store = OrderStore(aws.client("dynamodb"), system.outputs[output_names.ORDERS_TABLE])
    pending = store.pending(order.order_id, order.customer_id, order.items_json(), order.total)
    item = store.item(pending)
    if home is None:
        del item["home_region"]
    else:
        item["home_region"] = {"S": home}
    aws.client("dynamodb").put_item(TableName=system.outputs[output_names.ORDERS_TABLE], Item=item)
    _order_event(system, order.order_id)
    if home is None:
        system.wait_status(order.order_id, "completed")
        assert payments([worker], order.order_id) == 1
    else:
        (left,) = wait_for(lambda: _events(worker, "not_home"), 10, "the order left to its region")
        assert left["home_region"] == home and system.order(order.order_id)["status"] == "pending"  # type: ignore[index]
        assert not _events(worker, "processing")
    wait_for(lambda: system.queue_counts() == (0, 0), 5, "the message to be deleted")


def test_workers_sharing_a_gateway_never_charge_an_order_twice(system: System) -> None:  # noqa: F811
    """Two worker tasks (two regions' workers) charge through one gateway (bench.localaws.gateway, as a real
    gateway is one service for every region). The first pays the order and stops; the record is pending again (its
    final write lost to another region's pending write) and the message comes again, to the second task, whose own
    ledger is empty: the shared gateway answers from its ledger, and the record ends as the first payment wrote it."""
    # ministack, like SQS, may hand the message to the stopped task's last long poll: it comes back after 2 s.
    _short_visibility(system, 2)
    shared = gateway.serve(PaymentSettings(seconds=0.05, decline_rate=0))
    try:
        receiver = system.start("receiver")
        first = system.start("worker", PAYMENT_GATEWAY_URL=shared.url)
        order_id = post(receiver, "/orders/async").json()["order_id"]
        paid = system.wait_status(order_id, "completed")
        assert first.stop(timeout=10) == 0
        _pending_again(system, order_id)
        _order_event(system, order_id)
        second = system.start("worker", PAYMENT_GATEWAY_URL=shared.url)
        wait_for(lambda: _events(second, "payment_replayed") or payments([second], order_id), 10, "the second payment")
        assert payments(system.tasks, order_id) == 1  # charged by the first task only
        assert system.wait_status(order_id, "completed") == paid
    finally:
        shared.stop()
