"""The order record (app.contract.OrderRecord) is the one definition of an order's item: the store's statements and
conversions, GET /orders/{id}'s answer and the OpenAPI document's order schema all come from its fields."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, fields

import pytest

from app import aws, contract, openapi
from app.contract import OrderRecord, OrderStatus
from app.orders import parse_order
from app.store import OrderStore, Outcome
from stackconfig import output_names
from tests.helpers import ORDER, System, system, wait_for  # noqa: F401

ESTIMATE = {"queue_position", "expected_wait_seconds", "estimated_completion_seconds", "estimated_completion"}


def _store() -> OrderStore:
    return OrderStore(None, "orders")  # statements and conversions only: no call is made


def _inserted(store: OrderStore) -> list[str]:
    return re.findall(r"'(\w+)': \?", store.pending_insert("o", 1, "[]", 1.0)["Statement"])


def _updated(store: OrderStore) -> list[str]:
    return re.findall(r'SET "(\w+)"=\?', store._finish_statement)


def _status_schema() -> dict:  # type: ignore[type-arg]
    return openapi.receiver_document()["components"]["schemas"]["OrderStatus"]  # type: ignore[no-any-return]


def test_the_store_and_the_document_have_the_record_fields() -> None:
    names = [f.name for f in fields(OrderRecord)]
    store = _store()
    assert _inserted(store) == ["order_id", "status", "customer_id", "items", "total", "created_at", "home_region"]
    assert _inserted(store) + _updated(store)[1:] == names  # the worker sets the status and the rest
    schema = _status_schema()
    assert list(schema["properties"])[: len(names) - 1] == [n for n in names if n != "items"]  # items: INTERNAL
    assert set(schema["properties"]) - set(names) == ESTIMATE
    assert schema["required"] == ["order_id", "status", "customer_id", "total", "created_at"]
    assert schema["properties"]["status"]["enum"] == ["pending", "completed", "failed"]


def test_a_field_added_to_the_record_reaches_the_store_and_the_document(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclass(frozen=True)
    class Extended(OrderRecord):
        note: str | None = None
        audit: float | None = field(default=None, metadata={contract.INTERNAL: True})

    monkeypatch.setattr(contract, "OrderRecord", Extended)
    store = _store()
    assert _updated(store)[-2:] == ["note", "audit"]
    properties = _status_schema()["properties"]
    assert "note" in properties and "audit" not in properties
    record = Extended("o", OrderStatus.COMPLETED, 1, "[]", 2.5, 1.0, note="gift", audit=3.25)
    assert store.item(record)["audit"] == {"N": "3.25"} and store.record(store.item(record)) == record
    assert record.shown()["note"] == "gift" and "audit" not in record.shown()


def test_a_record_goes_to_an_item_and_back_unchanged() -> None:
    store = _store()
    pending = store.pending("o", 2**53 - 1, '[{"product_id":"P","quantity":1,"price":1.5}]', 1.5)
    item = store.item(pending)
    assert set(item) == set(OrderRecord.pending_fields())  # unset fields are absent, not null
    assert item["customer_id"] == {"N": "9007199254740991"} and item["status"] == {"S": "pending"}
    assert store.record(item) == pending
    done = OrderRecord(
        "o", OrderStatus.COMPLETED, 7, "[]", 0.0, 1.0, finished_at=4.0, duration=3.0, reason="", worker="WORKER-1"
    )
    assert store.record(store.item(done)) == done
    # Shown: every field but items that is set and not empty (0.0 is a total, "" no reason).
    assert done.shown() == {
        "order_id": "o",
        "status": "completed",
        "customer_id": 7,
        "total": 0.0,
        "created_at": 1.0,
        "finished_at": 4.0,
        "duration": 3.0,
        "worker": "WORKER-1",
    }
    with pytest.raises(ValueError, match="idem#k is not an order record"):
        store.record({contract.ORDER_KEY: {"S": "idem#k"}, "state": {"S": "done"}})
    assert store.record(item | {"gift_wrap": {"S": "yes"}}) == pending  # a newer version's attribute is ignored


def test_the_status_write_sets_the_outcome_only_while_pending() -> None:
    statement = _store()._finish_statement
    assert statement.endswith('WHERE "order_id"=? AND "status" IN [?]')
    parameters = _store()._finish_parameters("o", Outcome(OrderStatus.FAILED, "WORKER-2", 0.12345, 9.5, "declined"))
    assert parameters == [
        {"S": "failed"},
        {"N": "9.5"},
        {"N": "0.123"},
        {"S": "declined"},
        {"S": "WORKER-2"},
        {"S": "o"},
        {"S": "pending"},
    ]
    assert [s for s in OrderStatus if not s.final] == [OrderStatus.PENDING]


def test_an_item_that_is_no_order_fails_its_own_message_not_its_receive_batch(system: System) -> None:  # noqa: F811
    """A message naming a key that holds no order (an idempotency record's) arrives in the same receive batch as a
    real order: the real order is paid at once, the other message is an error of its own."""
    table, queue = system.outputs[output_names.ORDERS_TABLE], system.outputs[output_names.QUEUE_URL]
    aws.client("dynamodb").put_item(
        TableName=table, Item={contract.ORDER_KEY: {"S": "idem#1#k"}, "state": {"S": "done"}}
    )
    order = parse_order(ORDER)
    OrderStore(aws.client("dynamodb"), table).put_pending(
        order.order_id, order.customer_id, order.items_json(), order.total
    )
    aws.client("sqs").send_message_batch(
        QueueUrl=queue,
        Entries=[
            {"Id": "no-order", "MessageBody": json.dumps({"order_id": "idem#1#k", **ORDER})},
            {"Id": "order", "MessageBody": order.to_json()},
        ],
    )
    worker = system.start("worker", PAYMENT_SECONDS="0.1", WORKER_COUNT="5")
    system.wait_status(order.order_id, "completed", timeout=10)  # not after a redelivery (30 s visibility)
    errors = wait_for(lambda: [e for e in worker.events() if e.get("event") == "error"], 5, "the error line")
    assert len(errors) == 1 and "idem#1#k is not an order record" in errors[0]["msg"]
