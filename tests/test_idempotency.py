"""Idempotent submission (issue 11, defect 11; issue 24, item 7): the same Idempotency-Key and payload get the first
answer and the same order id, on both services, whichever of a service's tasks the retry reaches; another payload
gets 422; a 503 is not remembered; a second request while the first is in flight waits briefly, then gets 409 +
Retry-After; records expire by TTL; a claim whose process died is resumed under the same order id. Services as
processes against ministack; the submission's own rules in-process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from app import aws, contract, idempotency
from app.idempotency import Answer, DynamoRecords, Idempotency, Record
from app.orders import parse_order
from app.store import OrderStore
from app.web import Submission
from bench.localaws.emulators import Emulator
from stackconfig import output_names
from tests.helpers import CUSTOMER_ID, ORDER, System, payments, system, unread_bytes, wait_for  # noqa: F401

PATHS = {"sync": contract.SYNC_ORDERS_PATH, "receiver": contract.ASYNC_ORDERS_PATH}
KEY = contract.IDEMPOTENCY_KEY_HEADER
OTHER = {**ORDER, "items": [{"product_id": "PROD-002", "quantity": 1, "price": 5.0}]}


def submit(url: str, key: str, body: dict[str, Any] = ORDER, timeout: float = 30) -> httpx.Response:
    return httpx.post(url, json=body, headers={KEY: key}, timeout=timeout)


def orders_only(system: System) -> list[dict[str, Any]]:  # noqa: F811
    return [o for o in system.orders() if not o[contract.ORDER_KEY].startswith(idempotency.RECORD_PREFIX)]


def records(system: System) -> list[dict[str, Any]]:  # noqa: F811
    return [o for o in system.orders() if o[contract.ORDER_KEY].startswith(idempotency.RECORD_PREFIX)]


@pytest.mark.parametrize("role", sorted(PATHS))
def test_the_same_key_twice_is_one_order_with_one_answer(system: System, role: str) -> None:  # noqa: F811
    service = system.start(role, PAYMENT_SECONDS="0.05")
    url = service.url + PATHS[role]
    first, again = submit(url, "order-1"), submit(url, "order-1")
    assert first.status_code == again.status_code == (201 if role == "sync" else 202)
    assert again.json() == first.json()  # the stored answer, duration included
    assert again.headers[contract.IDEMPOTENCY_REPLAYED_HEADER] == "true"
    assert contract.IDEMPOTENCY_REPLAYED_HEADER not in first.headers
    other_customer = submit(url, "order-1", {**ORDER, "customer_id": CUSTOMER_ID + 1})
    assert other_customer.json()["order_id"] != first.json()["order_id"]  # keys are per customer
    stats = httpx.get(service.url + contract.STATS_PATH).json()
    assert stats["replayed"] == 1
    if role == "sync":
        assert stats["total_orders"] == stats["payments_processed"] == 2  # one payment per customer's key
    else:
        assert sorted(o[contract.ORDER_KEY] for o in orders_only(system)) == sorted(
            [first.json()["order_id"], other_customer.json()["order_id"]]
        )
        assert system.queue_counts() == (2, 0)  # published once each


@pytest.mark.parametrize("role", sorted(PATHS))
def test_the_same_key_with_another_payload_is_422(system: System, role: str) -> None:  # noqa: F811
    service = system.start(role, PAYMENT_SECONDS="0.05")
    url = service.url + PATHS[role]
    assert submit(url, "k").status_code < 300
    reused = submit(url, "k", OTHER)
    assert reused.status_code == 422 and "different payload" in reused.json()["error"]


@pytest.mark.parametrize("role", sorted(PATHS))
def test_keys_that_break_the_rules_get_400(system: System, role: str) -> None:  # noqa: F811
    service = system.start(role, PAYMENT_SECONDS="0.05")
    url = service.url + PATHS[role]
    for key in ("x" * 256, "", "naïve", 'a"b'):
        response = httpx.post(url, json=ORDER, headers=[(KEY.encode(), key.encode("latin-1"))])
        assert response.status_code == 400 and response.json()["error"], (key, response.text)
    with socket.create_connection(("127.0.0.1", service.port), timeout=5) as sock:  # a control character
        body = b'{"customer_id":1,"items":[{"product_id":"P","quantity":1,"price":1}]}'
        sock.sendall(
            b"POST " + PATHS[role].encode() + b" HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            b"Idempotency-Key: a\x01b\r\nContent-Length: %d\r\n\r\n" % len(body) + body
        )
        assert sock.recv(65536).startswith(b"HTTP/1.1 400 ")
    assert submit(url, "x" * 255).status_code < 300  # the longest key passes
    quoted = submit(url, '"sf-string"')  # a structured-field string is the same key as its content
    assert submit(url, "sf-string").json()["order_id"] == quoted.json()["order_id"]


def test_a_503_is_not_remembered(system: System) -> None:  # noqa: F811
    receiver = system.start("receiver")
    url = receiver.url + contract.ASYNC_ORDERS_PATH
    topic = system.outputs[output_names.TOPIC_ARN]
    aws.client("sns").delete_topic(TopicArn=topic)
    refused = submit(url, "retry-me")
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert orders_only(system) == [] and records(system) == []  # nothing accepted, nothing remembered
    assert aws.client("sns").create_topic(Name=topic.rsplit(":", 1)[1])["TopicArn"] == topic  # the topic is back
    retried = submit(url, "retry-me")
    assert retried.status_code == 202 and contract.IDEMPOTENCY_REPLAYED_HEADER not in retried.headers
    assert [o[contract.ORDER_KEY] for o in orders_only(system)] == [retried.json()["order_id"]]


def test_a_second_request_while_the_first_pays_waits_then_gets_409(system: System) -> None:  # noqa: F811
    sync = system.start("sync", PAYMENT_SECONDS="2", PAYMENT_DECLINE_RATE="0")
    url = sync.url + contract.SYNC_ORDERS_PATH
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(submit, url, "slow")
        wait_for(
            lambda: httpx.get(sync.url + contract.STATS_PATH).json()["status_breakdown"]["processing"] == 1,
            10,
            "the first request to be paying",
        )
        started = time.monotonic()
        second = submit(url, "slow")
        waited = time.monotonic() - started
        assert second.status_code == 409 and second.headers["Retry-After"] == "1", second.text
        assert idempotency.WAIT_SECONDS - 0.1 <= waited <= idempotency.WAIT_SECONDS + 0.5
        assert first.result().status_code == 201
    third = submit(url, "slow")
    assert third.status_code == 201 and third.json() == first.result().json()
    assert httpx.get(sync.url + contract.STATS_PATH).json()["payments_processed"] == 1


def test_one_key_sent_to_both_sync_tasks_is_one_order_paid_once(system: System) -> None:  # noqa: F811
    """Issue 24: the ALB alternates a client's retries between the 2 sync tasks; with the records in each task's
    memory, 4 sends of one key gave 2 order ids, each paid. Sent to each task's own port: one order, paid once."""
    tasks = [system.start("sync", PAYMENT_SECONDS="2", PAYMENT_DECLINE_RATE="0") for _ in range(2)]
    urls = [t.url + contract.SYNC_ORDERS_PATH for t in tasks]

    def stats(n: int) -> dict[str, Any]:
        return dict(httpx.get(tasks[n].url + contract.STATS_PATH).json())

    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(submit, urls[0], "both")
        wait_for(lambda: stats(0)["status_breakdown"]["processing"] == 1, 10, "the first task to be paying")
        during = submit(urls[1], "both")  # the other task sees the claim: waits, then 409
        assert during.status_code == 409 and during.headers["Retry-After"] == "1", during.text
        assert first.result().status_code == 201
    retries = [submit(urls[n], "both") for n in (1, 0, 1)]
    assert [r.status_code for r in retries] == [201, 201, 201]
    assert {r.json()["order_id"] for r in retries} == {first.result().json()["order_id"]}
    assert all(r.headers[contract.IDEMPOTENCY_REPLAYED_HEADER] == "true" for r in retries)
    assert [stats(n)["payments_processed"] for n in (0, 1)] == [1, 0]  # paid once, by the first task
    paid = [e for t in tasks for e in t.events() if e.get("event") == "completed"]
    assert [e["order_id"] for e in paid] == [first.result().json()["order_id"]]


def test_the_sync_service_without_its_key_table_answers_503_for_keyed_orders(system: System) -> None:  # noqa: F811
    sync = system.start("sync", PAYMENT_SECONDS="0.05", PAYMENT_DECLINE_RATE="0")
    aws.client("dynamodb").delete_table(TableName=sync.env[contract.ENV_KEYS_TABLE])
    refused = submit(sync.url + contract.SYNC_ORDERS_PATH, "no-table")
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "1", refused.text
    stats = httpx.get(sync.url + contract.STATS_PATH).json()
    assert (stats["backend_errors"], stats["total_orders"]) == (1, 0)  # refused before any payment
    assert httpx.post(sync.url + contract.SYNC_ORDERS_PATH, json=ORDER).status_code == 201  # no key, no record


def test_a_duplicate_during_a_backend_stall_waits_for_the_first(system: System, ministack: Emulator) -> None:  # noqa: F811
    """The receiver's in-process wait: the duplicate gets the first request's 202 once the backend is back."""
    receiver = system.start("receiver")
    url = receiver.url + contract.ASYNC_ORDERS_PATH
    assert ministack.process is not None
    with ThreadPoolExecutor(3) as pool:
        os.kill(ministack.process.pid, signal.SIGSTOP)
        try:
            first = pool.submit(submit, url, "stalled")
            wait_for(lambda: unread_bytes(ministack.port) > 0, 10, "the first claim in the stalled backend")
            early = pool.submit(submit, url, "stalled")  # waits WAIT_SECONDS, then 409
            time.sleep(idempotency.WAIT_SECONDS + 0.3)
            assert early.result().status_code == 409
            late = pool.submit(submit, url, "stalled")
            time.sleep(0.2)
        finally:
            os.kill(ministack.process.pid, signal.SIGCONT)
        assert first.result().status_code == 202
        assert late.result().status_code == 202 and late.result().json() == first.result().json()
    assert len(orders_only(system)) == 1


def test_records_expire_by_ttl_after_a_day(system: System) -> None:  # noqa: F811
    receiver = system.start("receiver")
    assert submit(receiver.url + contract.ASYNC_ORDERS_PATH, "ttl").status_code == 202
    [record] = records(system)
    expires = float(record[contract.IDEMPOTENCY_TTL_ATTRIBUTE])
    assert contract.IDEMPOTENCY_KEEP_SECONDS - 60 <= expires - time.time() <= contract.IDEMPOTENCY_KEEP_SECONDS
    ttl = aws.client("dynamodb").describe_time_to_live(TableName=system.outputs[output_names.ORDERS_TABLE])
    assert ttl["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": contract.IDEMPOTENCY_TTL_ATTRIBUTE,
    }


def _stale_claim(system: System, key: str, order_id: str, lease_until: float) -> None:  # noqa: F811
    """An in-flight claim as a receiver left it when it died (or, with a future lease, as another one holds it)."""
    now = time.time()
    scope = f"{ORDER['customer_id']}#{key}"
    payload = Submission(parse_order(ORDER), key).fingerprint
    DynamoRecords(aws.client("dynamodb"), system.outputs[output_names.ORDERS_TABLE]).put_new(
        Record(
            scope=scope,
            state=idempotency.IN_FLIGHT,
            order_id=order_id,
            fingerprint=payload,
            token="dead",
            lease_until=lease_until,
            expires_at=now + 3600,
        ),
        now,
    )


@pytest.mark.parametrize("recorded", [False, True], ids=["before its put", "after its put"])
def test_a_claim_left_by_a_dead_receiver_is_resumed_under_the_same_order_id(
    system: System,  # noqa: F811
    recorded: bool,
) -> None:
    receiver = system.start("receiver")
    order_id = str(uuid.uuid4())
    _stale_claim(system, "orphan", order_id, lease_until=time.time() - 1)
    if recorded:  # it died between its put and its publish: the record is there, the message maybe not
        order = parse_order(ORDER, order_id)
        OrderStore(aws.client("dynamodb"), system.outputs[output_names.ORDERS_TABLE]).put_pending(
            order_id, order.customer_id, order.items_json(), order.total
        )
    resumed = submit(receiver.url + contract.ASYNC_ORDERS_PATH, "orphan")
    assert resumed.status_code == 202 and resumed.json()["order_id"] == order_id
    assert [o[contract.ORDER_KEY] for o in orders_only(system)] == [order_id]
    assert system.queue_counts() == (1, 0)


def test_a_claim_held_by_another_receiver_gets_409_after_polling(system: System) -> None:  # noqa: F811
    receiver = system.start("receiver")
    _stale_claim(system, "elsewhere", str(uuid.uuid4()), lease_until=time.time() + 60)
    started = time.monotonic()
    busy = submit(receiver.url + contract.ASYNC_ORDERS_PATH, "elsewhere")
    assert busy.status_code == 409 and busy.headers["Retry-After"] == "1"
    assert time.monotonic() - started < idempotency.WAIT_SECONDS + 0.5
    assert orders_only(system) == []


class DictRecords:
    """Records in a dict, for the submission's rules alone."""

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}

    def put_new(self, record: Record, now: float) -> Record | None:
        found = self.records.get(record.scope)
        if found is not None and found.expires_at > now:
            return found
        self.records[record.scope] = record
        return None

    def put_over(self, record: Record, token: str) -> bool:
        if self.records[record.scope].token != token:
            return False
        self.records[record.scope] = record
        return True

    def delete(self, scope: str, token: str) -> None:
        if self.records[scope].token == token:
            del self.records[scope]


async def _now(function: Any, *args: Any) -> Any:
    return function(*args)


def test_answers_that_say_try_again_are_not_remembered() -> None:
    async def run() -> list[int]:
        guard = Idempotency(DictRecords(), call=_now)
        answers = iter([Answer(504, {}, remember=False), Answer(201, {"order_id": "x"})])
        attempts = []

        async def attempt(order_id: str, resumed: bool) -> Answer:
            attempts.append(order_id)
            return next(answers)

        codes = [(await guard.submit("k", 1, "f", attempt)).status for _ in range(3)]
        return codes + [len(attempts)]

    loop = asyncio.new_event_loop()  # not asyncio.run: it leaves the main thread without a loop, which a later
    try:  # in-process deploy (Pulumi's runtime) needs
        assert loop.run_until_complete(run()) == [504, 201, 201, 2]
    finally:
        loop.close()


def test_a_retry_in_another_region_names_the_same_order_and_is_not_charged_again(system: System) -> None:  # noqa: F811
    """Issue 21 item 2: the key's first request is accepted and paid in one region; its retry reaches a receiver
    (another task: the other region's) whose replica has none of the first region's records yet (global tables
    replicate in about a second), so nothing there remembers the key. The order id is derived from the key, so the
    retry names the same order; the gateway, given that id as its idempotency key, answers from its ledger instead of
    charging again; and the status write, a function of that answer, writes the same final record. One worker task
    pays for both regions here: the simulator's ledger is per process (a gateway shared by two regions' workers is
    item 4's, with two local regions)."""
    first_region, other_region = system.start("receiver"), system.start("receiver")
    worker = system.start("worker", PAYMENT_SECONDS="0.05")
    first = submit(first_region.url + contract.ASYNC_ORDERS_PATH, "cross-region")
    order_id = first.json()["order_id"]
    paid = system.wait_status(order_id, "completed")
    dynamodb, table = aws.client("dynamodb"), system.outputs[output_names.ORDERS_TABLE]
    for key in (order_id, f"{idempotency.RECORD_PREFIX}{CUSTOMER_ID}#cross-region"):  # not replicated yet
        dynamodb.delete_item(TableName=table, Key={contract.ORDER_KEY: {"S": key}})
    again = submit(other_region.url + contract.ASYNC_ORDERS_PATH, "cross-region")
    assert again.status_code == 202 and contract.IDEMPOTENCY_REPLAYED_HEADER not in again.headers
    assert again.json()["order_id"] == order_id

    def replays() -> list[dict[str, Any]]:
        return [e for e in worker.events() if e.get("event") == "payment_replayed"]

    replayed = wait_for(lambda: replays() or payments([worker], order_id) > 1, 10, "the second payment")
    assert payments([worker], order_id) == 1  # charged once, the second time answered from the ledger
    assert replayed[0]["order_id"] == order_id and replayed[0]["written"] is True
    repaid = system.wait_status(order_id, "completed")
    repaid.pop("created_at"), paid.pop("created_at")  # each region's receiver recorded its own acceptance
    assert repaid == paid  # the same final record
