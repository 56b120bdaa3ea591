"""What both web services share: the body read ahead of routing, reading an order (and its Idempotency-Key) under
the input rules, JSON answers for every error (router 404/405 included), and the idempotent answer as a response."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import contract, logs
from app.http_server import DECLARED_BODY_BYTES
from app.idempotency import Answer, InvalidKey, fingerprint, parse_key
from app.orders import MAX_BODY_BYTES, InvalidOrder, MalformedJson, OrderRequest, parse_order_json
from app.rejections import Rejection, count

RETRY_AFTER_SECONDS = 1
CLIENT_GONE = 499  # nginx's code for "client closed the request"; the client never sees it
# A backend the answer depends on failed (the receiver's store or topic, either service's key records): nothing was
# done, and the client may retry with the same Idempotency-Key.
UNAVAILABLE = Answer(503, {"error": "order backend unavailable, retry shortly"}, remember=False, retry_after=True)


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: an error may echo what the client sent (a field name, say), and escaping cannot
    fail where UTF-8 encoding can (a lone surrogate)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, allow_nan=False, separators=(",", ":")).encode("ascii")


class Rejected(Exception):
    """The request breaks an input rule; carries the HTTP answer (and is counted, Rejection.INVALID_INPUT)."""

    def __init__(self, code: int, error: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(error)
        count(Rejection.INVALID_INPUT)
        self.response = error_response(code, error, fields=fields)


def error_response(
    code: int,
    error: str,
    *,
    retry_after: bool = False,
    close: bool = False,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body = {"error": error} | {k: v for k, v in extra.items() if v is not None}
    all_headers = dict(headers or {})
    if retry_after:
        all_headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    if close:
        all_headers["Connection"] = "close"
    return AsciiJSONResponse(body, status_code=code, headers=all_headers or None)


def answer_response(answer: Answer) -> Response:
    headers = {contract.IDEMPOTENCY_REPLAYED_HEADER: "true"} if answer.replayed else {}
    if answer.retry_after:
        headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return AsciiJSONResponse(answer.body, status_code=answer.status, headers=headers or None)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's router answers unknown paths and methods with HTTPException: JSON, like every other error."""
    if not isinstance(exc, HTTPException):
        raise exc
    return error_response(exc.status_code, str(exc.detail).lower(), headers=dict(exc.headers or {}))


EXCEPTION_HANDLERS = {HTTPException: http_error}


def _declared_too_large(scope: Scope) -> bool:
    """The server read chunk headers declaring more than MAX_BODY_BYTES (app.http_server._follow_chunks)."""
    extensions: dict[str, Any] | None = scope.get("extensions")
    return extensions is not None and extensions.get(DECLARED_BODY_BYTES, 0) > MAX_BODY_BYTES


class BufferedBody:
    """Pure ASGI, ahead of everything: reads a request's whole body (at most MAX_BODY_BYTES, within
    `timeout_seconds`) before the app sees the request. So a stalled upload never reaches the app (nor the receiver's
    in-flight cap), gets 408 when its time is up, 413 when too large (declared by Content-Length or by chunk headers, or
    sent), and a client that hangs up mid-upload is one log line, not a traceback."""

    def __init__(self, app: ASGIApp, *, timeout_seconds: float) -> None:
        self.app = app
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), b"")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await self._too_large(scope, receive, send)
            return
        chunks, size, more = [], 0, True
        try:
            async with asyncio.timeout(self.timeout_seconds):
                while more:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        logs.event(
                            "client_disconnected",
                            f"[HTTP] client hung up during {scope['method']} "
                            f"{scope['path']} before sending its whole body",
                            level="info",
                        )
                        return
                    chunk, more = message.get("body", b""), message.get("more_body", False)
                    size += len(chunk)
                    if size > MAX_BODY_BYTES or _declared_too_large(scope):
                        await self._too_large(scope, receive, send)
                        return
                    chunks.append(chunk)
        except TimeoutError:
            count(Rejection.BODY_TIMEOUT)
            await error_response(408, f"request body not received within {self.timeout_seconds:g} s", close=True)(
                scope, receive, send
            )
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: the client's hang-up, if it comes
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _too_large(scope: Scope, receive: Receive, send: Send) -> None:
        count(Rejection.BODY_TOO_LARGE)
        await error_response(413, f"body larger than {MAX_BODY_BYTES} bytes", close=True)(scope, receive, send)


@dataclass(frozen=True)
class Submission:
    """A valid order request, and its Idempotency-Key if it came with one."""

    order: OrderRequest
    key: str | None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.order.canonical_json())


async def read_submission(request: Request) -> Submission:
    """415 wrong content type, 400 malformed JSON or a bad Idempotency-Key, 422 naming each invalid field. (413 and
    408 come from BufferedBody, which has already read the body.)"""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise Rejected(415, "content type must be application/json")
    raw_key = request.headers.get(contract.IDEMPOTENCY_KEY_HEADER)
    try:
        key = None if raw_key is None else parse_key(raw_key)
    except InvalidKey as e:
        raise Rejected(400, str(e)) from None
    try:
        order = parse_order_json(await request.body())
    except MalformedJson as e:
        raise Rejected(400, f"malformed JSON: {e}") from None
    except InvalidOrder as e:
        raise Rejected(422, "invalid order", e.errors) from None
    return Submission(order, key)


def common_routes(health: dict[str, Any], document: dict[str, Any]) -> list[Route]:
    """GET /health (static: the load balancer must not kill tasks because a backend blips) and GET /openapi.json."""
    health_body = {"status": "healthy", **health}

    async def healthcheck(request: Request) -> JSONResponse:
        return JSONResponse(health_body)

    async def schema(request: Request) -> JSONResponse:
        return JSONResponse(document)

    return [
        Route(contract.HEALTH_PATH, healthcheck, methods=["GET"]),
        Route(contract.OPENAPI_PATH, schema, methods=["GET"]),
    ]
