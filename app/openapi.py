"""The OpenAPI 3.1 documents the two web services serve at GET /openapi.json.

Every schema is generated (pydantic's JSON Schema) from a model: the request body from `app.orders.OrderRequest`,
the very model the services validate with, an order's status from the order record (`app.contract.OrderRecord`, the
type the store writes and reads), and the other answers from the models below, which state what the handlers send
(tests/test_fuzz.py checks every answer against them).
"""

from __future__ import annotations

import typing
from dataclasses import MISSING, fields
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, create_model
from pydantic.json_schema import models_json_schema

from app import contract, idempotency
from app.orders import MAX_BODY_BYTES, OrderRequest

JSON = "application/json"
REF = "#/components/schemas/{model}"


class Error(BaseModel):
    error: str
    fields: dict[str, str] | None = None  # 422: one message per invalid field, keyed by its path (items[0].price)


class Accepted(BaseModel):
    order_id: str
    status: Literal["pending"]
    message: str
    duration: float


class Paid(BaseModel):
    order_id: str
    status: Literal["completed"]
    duration: float


class Declined(BaseModel):
    error: str
    order_id: str
    status: Literal["failed"]
    reason: str
    duration: float


class TimedOut(BaseModel):
    error: str
    order_id: str
    duration: float


ESTIMATE: dict[str, Any] = {  # app.receiver.estimate's fields, added while the order is pending
    "queue_position": (int | None, None),
    "expected_wait_seconds": (float | None, None),
    "estimated_completion_seconds": (float | None, None),
    "estimated_completion": (str | None, None),
}


def _values(hint: Any) -> Any:
    """An enum as the literal values it is sent as (inline, as the status always was in the document)."""
    if isinstance(hint, type) and issubclass(hint, Enum):
        return Literal[tuple(member.value for member in hint)]
    return hint


def order_status_model() -> type[BaseModel]:
    """GET /orders/{id}'s answer: the order record's shown fields (OrderRecord.shown: not INTERNAL; required where
    the record requires them), then the estimate."""
    record = contract.OrderRecord
    hints = typing.get_type_hints(record)
    shown: dict[str, Any] = {
        f.name: (_values(hints[f.name]), ... if f.default is MISSING else None)
        for f in fields(record)
        if not f.metadata.get(contract.INTERNAL)
    }
    model: type[BaseModel] = create_model("OrderStatus", **shown, **ESTIMATE)
    return model


class Health(BaseModel):
    status: str
    mode: str
    num_workers: int | None = None


def _models() -> tuple[type[BaseModel], ...]:
    return (OrderRequest, Error, Accepted, Paid, Declined, TimedOut, order_status_model(), Health)


def _schemas() -> dict[str, Any]:
    _, document = models_json_schema([(m, "validation") for m in _models()], ref_template=REF)
    return dict(document["$defs"])


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds to wait before retrying"}}
REPLAYED = {
    contract.IDEMPOTENCY_REPLAYED_HEADER: {
        "schema": {"type": "string", "enum": ["true"]},
        "description": "present when this is the stored answer to an earlier request with the same Idempotency-Key",
    }
}
IDEMPOTENCY_KEY = {
    "name": contract.IDEMPOTENCY_KEY_HEADER,
    "in": "header",
    "required": False,
    "description": f"Makes the submission idempotent: the same key and payload again (per customer, for at least "
    f"{contract.IDEMPOTENCY_KEEP_SECONDS // 3600} h) get the first answer and the same order_id instead "
    f"of a second order; while the first request is still in flight a second one waits up to "
    f"{idempotency.WAIT_SECONDS:g} s for its answer, then gets 409 + Retry-After. The same key with "
    "another payload gets 422. Answers that say to try again (503, 504) are not remembered.",
    # Printable ASCII without quotes or backslashes (so also valid as a structured-field string).
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": contract.MAX_IDEMPOTENCY_KEY,
        "pattern": r"^[ !#-\[\]-~]+$",
    },
}


def _json(description: str, model: type[BaseModel], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": _ref(model)}}} | (
        {"headers": headers} if headers else {}
    )


def _post_order(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "parameters": [IDEMPOTENCY_KEY],
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref(OrderRequest)}}},
            "responses": responses
            | {
                "400": _json("malformed JSON, or an invalid Idempotency-Key", Error),
                "408": _json("the body did not arrive within the body timeout", Error),
                "409": _json("a request with this Idempotency-Key is still in flight", Error, RETRY_AFTER),
                "413": _json(f"body larger than {MAX_BODY_BYTES} bytes", Error),
                "415": _json("content type is not application/json", Error),
                "422": _json(
                    "invalid fields, each named in `fields`; or an Idempotency-Key reused with another payload", Error
                ),
            },
        }
    }


def _get(summary: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "responses": {"200": {"description": summary, "content": {JSON: {"schema": schema}}}},
        }
    }


def _document(title: str, paths: dict[str, Any]) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0"},
        "paths": paths,
        "components": {"schemas": _schemas()},
    }


def sync_document() -> dict[str, Any]:
    return _document(
        "flashsale synchronous order service",
        {
            contract.SYNC_ORDERS_PATH: _post_order(
                "Place an order and wait for its payment (report Part I)",
                {
                    "201": _json("payment completed", Paid, REPLAYED),
                    "402": _json("payment declined", Declined, REPLAYED),
                    "504": _json("the payment could not finish within the request timeout", TimedOut),
                    "503": _json(
                        "the Idempotency-Key's record could not be read or written (nothing was paid): retry after "
                        "Retry-After seconds",
                        Error,
                        RETRY_AFTER,
                    ),
                },
            ),
            contract.HEALTH_PATH: _get("health", _ref(Health)),
            contract.STATS_PATH: _get("counters", {"type": "object"}),
        },
    )


def receiver_document() -> dict[str, Any]:
    unavailable = _json("overloaded or backend unavailable: retry after Retry-After seconds", Error, RETRY_AFTER)
    return _document(
        "flashsale asynchronous order receiver",
        {
            contract.ASYNC_ORDERS_PATH: _post_order(
                "Accept an order for background payment (report Part III)",
                {
                    "202": _json("accepted: recorded as pending and queued", Accepted, REPLAYED),
                    "503": unavailable,
                },
            ),
            contract.ORDER_STATUS_PATH: {
                "get": {
                    "summary": "An order's status, with queue position and estimated completion while pending",
                    "parameters": [{"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": _json("the order", order_status_model()),
                        "400": _json("the order id contains control characters", Error),
                        "404": _json("unknown order", Error),
                        "503": unavailable,
                    },
                }
            },
            contract.HEALTH_PATH: _get("health", _ref(Health)),
            contract.STATS_PATH: _get("counters and queue depth", {"type": "object"}),
        },
    )
