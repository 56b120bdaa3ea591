"""The OpenAPI documents the two web services serve at GET /openapi.json, kept beside the input rules they state."""

from __future__ import annotations

from typing import Any

from app import contract
from app.orders import MAX_BODY_BYTES, MAX_ITEMS, MAX_PRICE, MAX_PRODUCT_ID, MAX_QUANTITY

JSON = "application/json"

ORDER_REQUEST: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["customer_id", "items"],
    "properties": {
        "customer_id": {"type": "integer", "minimum": 1},
        "items": {
            "type": "array", "minItems": 1, "maxItems": MAX_ITEMS,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["product_id", "quantity", "price"],
                "properties": {
                    "product_id": {"type": "string", "minLength": 1, "maxLength": MAX_PRODUCT_ID},
                    "quantity": {"type": "integer", "minimum": 1, "maximum": MAX_QUANTITY},
                    "price": {"type": "number", "minimum": 0, "maximum": MAX_PRICE},
                },
            },
        },
    },
}
ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "fields": {"type": "object", "additionalProperties": {"type": "string"}}},
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds to wait before retrying"}}


def _json(description: str, schema: dict[str, Any], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}} | ({"headers": headers} if headers else {})


def _object(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": list(properties), "properties": properties}


def _input_errors() -> dict[str, Any]:
    return {
        "400": _json("malformed JSON", ERROR),
        "413": _json(f"body larger than {MAX_BODY_BYTES} bytes", ERROR),
        "415": _json("content type is not application/json", ERROR),
        "422": _json("invalid fields, each named in `fields`", ERROR),
    }


def _post_order(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {"post": {
        "summary": summary,
        "requestBody": {"required": True, "content": {JSON: {"schema": ORDER_REQUEST}}},
        "responses": responses | _input_errors(),
    }}


def _get(summary: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"summary": summary, "responses": {"200": _json(summary, schema)}}}


def _document(title: str, paths: dict[str, Any]) -> dict[str, Any]:
    return {"openapi": "3.0.3", "info": {"title": title, "version": "1.0.0"}, "paths": paths}


def sync_document() -> dict[str, Any]:
    result = _object(order_id={"type": "string"}, status={"type": "string", "enum": ["completed"]},
                     duration={"type": "number"})
    return _document("flashsale synchronous order service", {
        contract.SYNC_ORDERS_PATH: _post_order("Place an order and wait for its payment (report Part I)", {
            "201": _json("payment completed", result),
            "402": _json("payment declined", ERROR),
            "504": _json("the payment could not finish within the request timeout", ERROR),
        }),
        contract.HEALTH_PATH: _get("health", _object(status={"type": "string"}, mode={"type": "string"})),
        contract.STATS_PATH: _get("counters", {"type": "object"}),
    })


def receiver_document() -> dict[str, Any]:
    accepted = _object(order_id={"type": "string"}, status={"type": "string", "enum": ["pending"]},
                       message={"type": "string"}, duration={"type": "number"})
    status = {"type": "object", "required": ["order_id", "status"], "properties": {
        "order_id": {"type": "string"}, "status": {"type": "string", "enum": list(contract.ORDER_STATUSES)},
        "queue_position": {"type": "integer"}, "estimated_completion_seconds": {"type": "number"},
        "estimated_completion": {"type": "string"}, "reason": {"type": "string"},
    }}
    unavailable = _json("overloaded or backend unavailable: retry after Retry-After seconds", ERROR, RETRY_AFTER)
    return _document("flashsale asynchronous order receiver", {
        contract.ASYNC_ORDERS_PATH: _post_order("Accept an order for background payment (report Part III)", {
            "202": _json("accepted: recorded as pending and queued", accepted),
            "503": unavailable,
        }),
        contract.ORDER_STATUS_PATH: {"get": {
            "summary": "An order's status, with queue position and estimated completion while pending",
            "parameters": [{"name": "order_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _json("the order", status), "404": _json("unknown order", ERROR),
                          "503": unavailable},
        }},
        contract.HEALTH_PATH: _get("health", _object(status={"type": "string"}, mode={"type": "string"},
                                                     num_workers={"type": "integer"})),
        contract.STATS_PATH: _get("counters and queue depth", {"type": "object"}),
    })
