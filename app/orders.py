"""The order and its input rules, shared by both POST endpoints and by the worker (which re-checks queue messages).

Rules: `customer_id` a positive int; `items` 1..100 of {product_id: non-empty str <= 64, quantity: int 1..1000,
price: number 0..1,000,000}. Nothing else is accepted, so a rejected request records and publishes nothing.
"""

from __future__ import annotations

import json
import math
import uuid
from dataclasses import dataclass
from typing import Any

MAX_BODY_BYTES = 64 * 1024
MAX_ITEMS = 100
MAX_PRODUCT_ID = 64
MAX_QUANTITY = 1000
MAX_PRICE = 1_000_000


@dataclass(frozen=True)
class Item:
    product_id: str
    quantity: int
    price: float


@dataclass(frozen=True)
class Order:
    order_id: str
    customer_id: int
    items: tuple[Item, ...]

    @property
    def total(self) -> float:
        return round(sum(i.quantity * i.price for i in self.items), 2)

    def items_json(self) -> str:
        return json.dumps([{"product_id": i.product_id, "quantity": i.quantity, "price": i.price} for i in self.items],
                          separators=(",", ":"))

    def to_json(self) -> str:
        """The order event: the SNS message body and so the SQS message body (raw delivery)."""
        return f'{{"order_id":{json.dumps(self.order_id)},"customer_id":{self.customer_id},"items":{self.items_json()}}}'


class InvalidOrder(ValueError):
    """Field errors, keyed by the field's path (e.g. `items[2].price`)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _item(path: str, raw: Any, errors: dict[str, str]) -> Item | None:
    if not isinstance(raw, dict):
        errors[path] = "must be an object with product_id, quantity and price"
        return None
    for extra in sorted(set(raw) - {"product_id", "quantity", "price"}):
        errors[f"{path}.{extra}"] = "unknown field"
    product_id: Any = raw.get("product_id")
    quantity: Any = raw.get("quantity")
    price: Any = raw.get("price")
    if not isinstance(product_id, str) or not 1 <= len(product_id) <= MAX_PRODUCT_ID:
        errors[f"{path}.product_id"] = f"must be a non-empty string of at most {MAX_PRODUCT_ID} characters"
    if not _is_int(quantity) or not 1 <= quantity <= MAX_QUANTITY:
        errors[f"{path}.quantity"] = f"must be an integer 1..{MAX_QUANTITY}"
    if not (_is_int(price) or isinstance(price, float)) or not math.isfinite(price) or not 0 <= price <= MAX_PRICE:
        errors[f"{path}.price"] = f"must be a number 0..{MAX_PRICE:,}"
    if any(key.startswith(path + ".") for key in errors):
        return None
    return Item(product_id=product_id, quantity=quantity, price=float(price))


def parse_order(raw: Any, order_id: str | None = None) -> Order:
    """Check a decoded JSON body against the input rules; raises InvalidOrder naming every bad field.

    The endpoints pass no order_id (a new one is made); the worker passes the message's, which must be present.
    """
    if not isinstance(raw, dict):
        raise InvalidOrder({"body": "must be a JSON object"})
    errors: dict[str, str] = {}
    allowed = {"customer_id", "items"} | ({"order_id"} if order_id is not None else set())
    for extra in sorted(set(raw) - allowed):
        errors[extra] = "unknown field"
    customer_id: Any = raw.get("customer_id")
    raw_items: Any = raw.get("items")
    if not _is_int(customer_id) or customer_id < 1:
        errors["customer_id"] = "must be a positive integer"
    items: list[Item] = []
    if not isinstance(raw_items, list) or not 1 <= len(raw_items) <= MAX_ITEMS:
        errors["items"] = f"must be a list of 1..{MAX_ITEMS} items"
    else:
        items = [item for n, r in enumerate(raw_items) if (item := _item(f"items[{n}]", r, errors)) is not None]
    if errors:
        raise InvalidOrder(errors)
    return Order(order_id=order_id or str(uuid.uuid4()), customer_id=customer_id, items=tuple(items))


def _no_constants(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def decode_json(body: bytes) -> Any:
    """Strict JSON: rejects NaN/Infinity (Python's json accepts them) and invalid UTF-8; raises ValueError."""
    return json.loads(body.decode("utf-8"), parse_constant=_no_constants)


def parse_order_message(body: str) -> Order:
    """A queue message back into an Order; raises ValueError with the reason for a poison message."""
    raw = decode_json(body.encode("utf-8", "surrogatepass"))
    order_id = raw.get("order_id") if isinstance(raw, dict) else None
    if not isinstance(order_id, str) or not order_id:
        raise ValueError("no order_id")
    return parse_order(raw, order_id=order_id)
