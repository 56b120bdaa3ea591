"""The order and its input rules, shared by both POST endpoints and by the worker (which re-checks queue messages).

The rules are typed pydantic models, parsed strictly from the JSON bytes (pydantic-core's parser: nesting deeper than
its recursion limit, NaN/Infinity, lone surrogates, control characters and invalid UTF-8 are malformed JSON; no type
coercion, so `true` is no integer and `2.0` no quantity), and the OpenAPI documents' schemas are generated from the
same models (app/openapi.py). `customer_id` a positive integer up to 2**53 - 1 (the largest integer every JSON reader
holds exactly, RFC 7493); `items` 1..100 of {product_id: 1..64 characters, none a control character, quantity: int
1..1000, price: number 0..1,000,000 in whole minor units of the store's currency}. Nothing else is accepted, so a
rejected request records and publishes nothing.

Money. A price is a JSON number in major units (49.99), the API every client already speaks, and must be a whole
number of the currency's minor unit (`contract.SERVICE_DEFAULTS.currency_decimals`: 2, cents, so 0.001 is refused).
The check is exact: a JSON number is read as the double nearest to it (as every JSON reader reads it, RFC 7493), and
the shortest decimal that is that double (`repr`) is the number the client wrote whenever it has at most 15
significant digits, which a price up to 1,000,000 with at most 3 decimals always has; its decimal places are counted
on that. Totals are summed in Decimal and rounded to the minor unit, so no binary rounding creeps in (3 x 0.1 is 0.3),
and stored and sent as numbers whose shortest form is that decimal (at most 100 x 1,000 x 1,000,000 = 10^11 with 3
decimals: 14 digits). Why not integer minor units on the wire (4999): every client, the load generator and the
report's examples send major units, and the rule above gives the same guarantee without breaking them. Why not a
Decimal field: pydantic reads a Decimal from a JSON string too and writes it back as one (`"49.99"`), so the input
rules (no coercion) and the order event's format would both change; the check and the sum are where exactness
matters, and they are Decimal.
"""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal
from typing import Annotated, Any, NoReturn

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from app import contract

MAX_BODY_BYTES = 64 * 1024
MAX_ITEMS = 100
MAX_PRODUCT_ID = 64
MAX_QUANTITY = 1000
MAX_PRICE = 1_000_000
MAX_CUSTOMER_ID = 2**53 - 1

CURRENCY_DECIMALS = contract.SERVICE_DEFAULTS.currency_decimals
MINOR_UNIT = Decimal(1).scaleb(-CURRENCY_DECIMALS)  # 0.01
# C0 controls, DEL and C1 controls: never part of an identifier a client sends (a NUL in a product id, say, is cut off
# or refused by the systems an order is handed to, and invisible in every log and console).
CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")
CONTROL_PATTERN = "^[^\\x00-\\x1f\\x7f-\\x9f]*$"  # the same rule, for the OpenAPI document
# A UUID as made here: uuid4, or app.idempotency's uuid5 of a key.
ORDER_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


def has_control_characters(text: str) -> bool:
    return CONTROL_CHARACTERS.search(text) is not None


def _no_control_characters(text: str) -> str:
    if has_control_characters(text):
        raise ValueError("must not contain control characters (U+0000-U+001F, U+007F-U+009F)")
    return text


def exact(price: float) -> Decimal:
    """The decimal the client wrote (see the module's docstring: the shortest decimal that is the double)."""
    return Decimal(repr(price))


def _whole_minor_units(price: float) -> float:
    if exact(price).as_tuple().exponent < -CURRENCY_DECIMALS:  # type: ignore[operator]  # finite: checked before
        raise ValueError(f"must be a whole number of the currency's minor unit (at most {CURRENCY_DECIMALS} decimals)")
    return price


Identifier = Annotated[
    str,
    Field(min_length=1, max_length=MAX_PRODUCT_ID, json_schema_extra={"pattern": CONTROL_PATTERN}),
    AfterValidator(_no_control_characters),
]
Price = Annotated[
    float,
    Field(
        ge=0,
        le=MAX_PRICE,
        description=f"in major units of the store's currency, at most {CURRENCY_DECIMALS} decimals (whole minor units)",
    ),
    AfterValidator(_whole_minor_units),
]


class Item(BaseModel):
    model_config = STRICT

    product_id: Identifier
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY)]
    price: Price


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
        """Summed in Decimal, in whole minor units; as a number whose shortest form is that decimal."""
        return float(sum((i.quantity * exact(i.price) for i in self.items), Decimal(0)).quantize(MINOR_UNIT))

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
