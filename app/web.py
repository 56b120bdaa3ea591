"""What both web services share: reading an order from a request under the input rules, and JSON answers."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app import contract

from app.orders import MAX_BODY_BYTES, InvalidOrder, Order, decode_json, parse_order

RETRY_AFTER_SECONDS = 1


class Rejected(Exception):
    """The request breaks an input rule; carries the HTTP answer."""

    def __init__(self, code: int, error: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.response = error_response(code, error, fields=fields)


def error_response(code: int, error: str, *, retry_after: bool = False, **extra: Any) -> JSONResponse:
    body = {"error": error} | {k: v for k, v in extra.items() if v is not None}
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if retry_after else None
    return JSONResponse(body, status_code=code, headers=headers)


async def read_order(request: Request) -> Order:
    """415 wrong content type, 413 over 64 KiB, 400 malformed JSON, 422 naming each invalid field."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise Rejected(415, "content type must be application/json")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise Rejected(413, f"body larger than {MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise Rejected(413, f"body larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    try:
        raw = decode_json(b"".join(chunks))
    except ValueError as e:  # includes UnicodeDecodeError and json.JSONDecodeError
        raise Rejected(400, f"malformed JSON: {e}") from None
    try:
        return parse_order(raw)
    except InvalidOrder as e:
        raise Rejected(422, "invalid order", e.errors) from None


def common_routes(health: dict[str, Any], document: dict[str, Any]) -> list[Route]:
    """GET /health (static: the load balancer must not kill tasks because a backend blips) and GET /openapi.json."""
    health_body = {"status": "healthy", **health}

    async def healthcheck(request: Request) -> JSONResponse:
        return JSONResponse(health_body)

    async def schema(request: Request) -> JSONResponse:
        return JSONResponse(document)

    return [Route(contract.HEALTH_PATH, healthcheck, methods=["GET"]),
            Route(contract.OPENAPI_PATH, schema, methods=["GET"])]
