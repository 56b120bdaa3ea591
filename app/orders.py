"""The order and its input rules, shared by both POST endpoints and by the worker (which re-checks queue messages).

The rules are typed pydantic models, parsed strictly from the JSON bytes (pydantic-core's parser: nesting deeper than
its recursion limit, NaN/Infinity, lone surrogates, control characters and invalid UTF-8 are malformed JSON; no type
coercion, so `true` is no integer and `2.0` no quantity), and the OpenAPI documents' schemas are generated from the
same models (app/openapi.py). `customer_id` a positive integer up to 2**53 - 1 (the largest integer every JSON reader
holds exactly, RFC 7493); `items` 1..100 of {product_id: non-empty str <= 64, quantity: int 1..1000, price: number
0..1,000,000}. Nothing else is accepted, so a rejected request records and publishes nothing.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Annotated, Any, NoReturn

from pydantic import BaseModel, ConfigDict, Field, ValidationError

MAX_BODY_BYTES = 64 * 1024
MAX_ITEMS = 100
MAX_PRODUCT_ID = 64
MAX_QUANTITY = 1000
MAX_PRICE = 1_000_000
MAX_CUSTOMER_ID = 2**53 - 1

ORDER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # str(uuid4()), as made here
STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


class Item(BaseModel):
    model_config = STRICT

    product_id: Annotated[str, Field(min_length=1, max_length=MAX_PRODUCT_ID)]
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY)]
    price: Annotated[float, Field(ge=0, le=MAX_PRICE)]


class OrderRequest(BaseModel):
    """The body of POST /orders/sync and /orders/async."""

    model_config = STRICT

    customer_id: Annotated[int, Field(ge=1, le=MAX_CUSTOMER_ID)]
    items: Annotated[list[Item], Field(min_length=1, max_length=MAX_ITEMS)]

    def canonical_json(self) -> str:
        """The payload in one spelling (field order, number format), for the idempotency fingerprint."""
        return self.model_dump_json(include={"customer_id", "items"})


class Order(OrderRequest):
    """An accepted order: the request plus its id. Its JSON is the order event (SNS message = SQS message body)."""

    order_id: Annotated[str, Field(min_length=1)]

    @property
    def total(self) -> float:
        return round(sum(i.quantity * i.price for i in self.items), 2)

    def items_json(self) -> str:
        return json.dumps([i.model_dump() for i in self.items], separators=(",", ":"))

    def to_json(self) -> str:
        """ASCII-only (escaped) JSON: SQS refuses some Unicode code points in a message body, and SNS would drop it."""
        return json.dumps(self.model_dump(), separators=(",", ":"))

    @classmethod
    def new(cls, request: OrderRequest, order_id: str | None = None) -> Order:
        """The order for a validated request (no second validation), with a new id unless one is given."""
        return cls.model_construct(
            order_id=order_id or str(uuid.uuid4()), customer_id=request.customer_id, items=request.items
        )


def is_order_id(text: str) -> bool:
    """Whether `text` is an order id as this service makes them (so worth looking up)."""
    return ORDER_ID.fullmatch(text) is not None


class InvalidOrder(ValueError):
    """Field errors, keyed by the field's path (e.g. `items[2].price`)."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class MalformedJson(ValueError):
    """The bytes are not JSON we accept (syntax, nesting depth, encoding)."""


def _path(location: tuple[int | str, ...]) -> str:
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def _raise_for(error: ValidationError) -> NoReturn:
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    malformed = [p["msg"] for p in problems if p["type"] == "json_invalid"]
    if malformed:
        raise MalformedJson(malformed[0].removeprefix("Invalid JSON: ")) from None
    fields: dict[str, str] = {}
    for problem in problems:
        message = "unknown field" if problem["type"] == "extra_forbidden" else problem["msg"]
        fields.setdefault(_path(problem["loc"]), message)
    raise InvalidOrder(fields) from None


def parse_order_json(body: bytes) -> OrderRequest:
    """A request body, checked against the input rules: raises MalformedJson (400) or InvalidOrder (422)."""
    try:
        return OrderRequest.model_validate_json(body)
    except ValidationError as e:
        _raise_for(e)


def parse_order(raw: Any, order_id: str | None = None) -> Order:
    """Check decoded JSON (a dict) against the input rules and make it an order with a new id (or `order_id`)."""
    try:
        request = OrderRequest.model_validate(raw)
    except ValidationError as e:
        _raise_for(e)
    return Order.new(request, order_id)


def parse_order_message(body: str) -> Order:
    """A queue message back into an Order; raises ValueError with the reason for a poison message."""
    try:
        return Order.model_validate_json(body)
    except ValidationError as e:
        _raise_for(e)
