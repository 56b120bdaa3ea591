"""Input rules of both POST endpoints: each bad-input class, and a rejected request records and publishes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.orders import MAX_BODY_BYTES, InvalidOrder, parse_order, parse_order_message
from tests.helpers import ORDER, System, post, system  # noqa: F401

GOOD_ITEM = {"product_id": "P-1", "quantity": 1, "price": 1.5}


@pytest.mark.parametrize(
    ("body", "bad"),
    [
        ({"customer_id": 0, "items": [GOOD_ITEM]}, {"customer_id"}),
        ({"customer_id": True, "items": [GOOD_ITEM]}, {"customer_id"}),
        ({"customer_id": "7", "items": [GOOD_ITEM]}, {"customer_id"}),
        ({"customer_id": 1, "items": []}, {"items"}),
        ({"customer_id": 1, "items": [GOOD_ITEM] * 101}, {"items"}),
        ({"customer_id": 1}, {"items"}),
        ({"customer_id": 1, "items": [{**GOOD_ITEM, "product_id": ""}]}, {"items[0].product_id"}),
        ({"customer_id": 1, "items": [{**GOOD_ITEM, "product_id": "x" * 65}]}, {"items[0].product_id"}),
        ({"customer_id": 1, "items": [GOOD_ITEM, {**GOOD_ITEM, "quantity": 0}]}, {"items[1].quantity"}),
        ({"customer_id": 1, "items": [{**GOOD_ITEM, "quantity": 1001}]}, {"items[0].quantity"}),
        ({"customer_id": 1, "items": [{**GOOD_ITEM, "quantity": 2.0}]}, {"items[0].quantity"}),
        ({"customer_id": 1, "items": [{**GOOD_ITEM, "price": -0.01}]}, {"items[0].price"}),
        ({"customer_id": 1, "items": [{**GOOD_ITEM, "price": 1_000_000.01}]}, {"items[0].price"}),
        ({"customer_id": 1, "items": [{**GOOD_ITEM, "price": "1"}]}, {"items[0].price"}),
        ({"customer_id": 1, "items": [{**GOOD_ITEM, "price": 0.001}]}, {"items[0].price"}),  # below a cent
        ({"customer_id": 1, "items": [{**GOOD_ITEM, "price": 49.995}]}, {"items[0].price"}),
        ({"customer_id": 1, "items": [{**GOOD_ITEM, "product_id": "P\x00"}]}, {"items[0].product_id"}),  # NUL
        ({"customer_id": 1, "items": [{**GOOD_ITEM, "product_id": "P\x7f"}]}, {"items[0].product_id"}),  # DEL
        ({"customer_id": 1, "items": [{**GOOD_ITEM, "product_id": "\x85P"}]}, {"items[0].product_id"}),  # C1 NEL
        ({"customer_id": 1, "items": ["P-1"]}, {"items[0]"}),
        ({"customer_id": 1, "items": [GOOD_ITEM], "coupon": "x"}, {"coupon"}),
        (
            {"customer_id": -1, "items": [{"quantity": 0}]},
            {"customer_id", "items[0].product_id", "items[0].quantity", "items[0].price"},
        ),
    ],
)
def test_each_bad_field_is_named(body: dict[str, Any], bad: set[str]) -> None:
    with pytest.raises(InvalidOrder) as caught:
        parse_order(body)
    assert set(caught.value.errors) == bad


def test_limits_themselves_are_accepted() -> None:
    item = {"product_id": "x" * 64, "quantity": 1000, "price": 1_000_000}
    order = parse_order({"customer_id": 1, "items": [item] * 100})
    assert len(order.items) == 100 and order.order_id


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[1]",
        '{"order_id": "a"}',
        '{"customer_id": 1, "items": []}',
        '{"order_id": "a", "customer_id": 1, "items": [{"product_id": "p", "quantity": 1, "price": NaN}]}',
    ],
)
def test_poison_messages_are_recognised(body: str) -> None:
    with pytest.raises(ValueError):
        parse_order_message(body)


@pytest.mark.parametrize("price", [0, 0.01, 0.1, 49.99, 999_999.99, 1_000_000])
def test_prices_in_whole_cents_are_accepted_and_read_back_exactly(price: float) -> None:
    order = parse_order({"customer_id": 1, "items": [{**GOOD_ITEM, "price": price}]})
    assert order.items[0].price == price and parse_order_message(order.to_json()) == order


def test_totals_are_summed_in_whole_cents() -> None:
    """3 x 0.1 is 0.30000000000000004 in binary floats; the total is summed in Decimal."""
    items = [{**GOOD_ITEM, "quantity": 3, "price": 0.1}, {**GOOD_ITEM, "quantity": 1000, "price": 999_999.99}]
    assert parse_order({"customer_id": 1, "items": items}).total == 999_999_990.3


def test_product_ids_keep_other_unicode() -> None:
    assert parse_order({"customer_id": 1, "items": [{**GOOD_ITEM, "product_id": "café\u00a0№7"}]}).items


def test_a_queue_message_round_trips() -> None:
    order = parse_order(ORDER)
    assert parse_order_message(order.to_json()) == order


@pytest.mark.parametrize("role", ["sync", "receiver"])
def test_bad_requests_get_their_status_and_leave_no_trace(system: System, role: str) -> None:  # noqa: F811
    service = system.start(role)
    path = "/orders/sync" if role == "sync" else "/orders/async"
    url = service.url + path
    cases = {
        400: httpx.post(url, content=b'{"customer_id": 1,', headers={"Content-Type": "application/json"}),
        415: httpx.post(url, content=b"customer_id=1", headers={"Content-Type": "application/x-www-form-urlencoded"}),
        413: httpx.post(url, content=b" " * (MAX_BODY_BYTES + 1), headers={"Content-Type": "application/json"}),
        422: post(service, path, {"customer_id": "me", "items": [{"product_id": "", "quantity": 1, "price": 1}]}),
    }
    for status, response in cases.items():
        assert response.status_code == status, (status, response.text)
        assert response.json()["error"]
    assert set(cases[422].json()["fields"]) == {"customer_id", "items[0].product_id"}
    assert system.orders() == []
    assert system.queue_counts() == (0, 0)
