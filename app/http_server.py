"""The web roles' HTTP server: uvicorn with its httptools protocol, plus the limits it lacks on slow and flooding
clients (measured in docs/reliability.md, "Why this server": of uvicorn httptools/h11, hypercorn and granian,
httptools costs the least CPU per request, and none of them had all of these).

`GuardedHttpToolsProtocol` adds, per connection:
- a header deadline: the request line and headers must arrive within `header_timeout_seconds` of the connection or
  of the request's first byte, else 408 and close (slowloris);
- header limits: more than MAX_HEADER_BYTES of request line + headers, or more than MAX_HEADERS header lines, get 431
  and close, counted on the bytes received, so unfinished headers cannot grow memory either;
- pipelining that cannot lose an answer: a malformed request behind one still being answered gets its 400 after
  that answer, not instead of it (uvicorn would close the connection under the first request's 202);
- a response sent before its request was read to its end (413, 400, 431, or any early answer) ends the connection
  with a lingering close, as nginx does: FIN after the answer, then what the client still sends is read and
  discarded, bounded in time and bytes (SERVICE_DEFAULTS.linger_*), then close. Closing at once with unread bytes
  resets the connection, and a reset makes a client still sending (or a proxy in front) lose the answer;
- at most `max_connections` connections: beyond it the longest-idle ones (between requests or still waiting for
  headers) are closed, and when none is idle the new connection gets 503 + Retry-After.
- a chunked body whose chunk headers declare more than MAX_BODY_BYTES in all is refused (413) as soon as the chunk
  header is read, not when its bytes have come or at the body deadline: httptools never reports a declared chunk
  size, so the sizes are read from the raw bytes (app.chunked), checked against the parser's count of chunk headers.
The body deadline and the body size limit live in app.web.BufferedBody (the declared chunk sizes reach it through the
scope's DECLARED_BODY_BYTES extension). Error answers are JSON, like the app's.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
from asyncio import TimerHandle, Transport
from collections.abc import Iterable
from typing import Any

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle

from app import logs
from app.chunked import ChunkSizes
from app.contract import SERVICE_DEFAULTS
from app.orders import MAX_BODY_BYTES
from app.rejections import Rejection, count
from app.settings import HttpSettings

MAX_HEADER_BYTES = 16 * 1024  # request line + headers; browsers and the ALB send far less
MAX_HEADERS = 100
GRACEFUL_SHUTDOWN_SECONDS = 10
# The ASGI scope extension through which the server tells app.web.BufferedBody that a chunked body declared more than
# MAX_BODY_BYTES (the total of its chunk headers), before those bytes arrive.
DECLARED_BODY_BYTES = "flashsale.declared_body_bytes"
LINGER_SECONDS = SERVICE_DEFAULTS.linger_seconds
LINGER_IDLE_SECONDS = SERVICE_DEFAULTS.linger_idle_seconds
LINGER_MAX_BYTES = SERVICE_DEFAULTS.linger_max_bytes


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing a request that breaks a limit."""


def raw_response(status: int, error: str, *, retry_after: bool = False) -> bytes:
    body = json.dumps({"error": error}, separators=(",", ":")).encode()
    extra = b"retry-after: 1\r\n" if retry_after else b""
    return (
        STATUS_LINE[status]
        + b"content-type: application/json\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\nconnection: close\r\n"
        + extra
        + b"\r\n"
        + body
    )


class _CycleTransport(asyncio.Transport):
    """What a request's cycle writes to and closes: the connection, except that the cycle's close (after an answer
    with `connection: close`, or an app error) goes through the protocol, which lingers if the request is unread."""

    def __init__(self, protocol: GuardedHttpToolsProtocol) -> None:
        super().__init__()
        self._protocol = protocol

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._protocol.transport.write(data)

    def is_closing(self) -> bool:
        return self._protocol.transport.is_closing()

    def close(self) -> None:
        self._protocol.close_after_answer()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits above; `limits` is set by `protocol_for`."""

    limits: HttpSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_headers = True
        self._header_bytes = 0
        self._header_count = 0
        self._header_timer: TimerHandle | None = None
        self._deferred: bytes | None = None  # an error answer waiting for the answer in progress
        self._refusal: bytes | None = None  # the answer for the request a parser callback refused
        self.idle_since = time.monotonic()
        self._last_data = 0.0  # loop time of the last bytes received
        self._lingering = False
        self._lingered = 0  # bytes discarded while lingering
        self._linger_until = 0.0
        self._linger_timer: TimerHandle | None = None
        self._cycle_transport = _CycleTransport(self)
        # Chunked framing (see _follow_chunks): where the request being read began, when that is known.
        self._in_head = False  # a request has begun and its headers are not complete
        self._at_boundary = True  # the next byte starts a request (after optional CRLFs)
        self._head_tail: bytes | None = None  # the last 3 bytes of the head in progress, when its start is known
        self._feed_begins = self._feed_heads = 0  # requests begun, heads completed, during the current feed
        self._body_cycle: RequestResponseCycle | None = None  # that request's cycle
        self._chunk_headers = 0  # chunk-size lines the parser read in the current request
        self._sizes: ChunkSizes | None = None  # the current request's declared chunk sizes, read from its bytes

    # --- connection -----------------------------------------------------------------------------------------------

    def connection_made(self, transport: Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()
        if len(self.connections) > self.limits.max_connections:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
        super().connection_lost(exc)

    def _idle(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _make_room(self) -> None:
        """Too many connections: close the longest-idle other ones, or refuse this one when none is idle."""
        idle = sorted(
            (
                c
                for c in self.connections
                if c is not self
                and isinstance(c, GuardedHttpToolsProtocol)
                and c._idle()
                and not c.transport.is_closing()
            ),
            key=lambda c: c.idle_since,  # lingering connections first: their idle_since is 0
        )
        excess = len(self.connections) - self.limits.max_connections
        if not idle:
            logs.event(
                "connections_full",
                f"[HTTP] {len(self.connections)} connections open, none idle: refused a new one",
                level="warning",
            )
            count(Rejection.CONNECTIONS_FULL)
            self.transport.write(raw_response(503, "too many connections, retry shortly", retry_after=True))
            self.transport.close()
            return
        for connection in idle[:excess]:
            connection.transport.close()

    # --- header deadline and limits -------------------------------------------------------------------------------

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.limits.header_timeout_seconds, self._header_timeout)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            count(Rejection.HEADER_TIMEOUT)
            self._fail(
                raw_response(408, f"request headers not received within {self.limits.header_timeout_seconds:g} s")
            )

    def data_received(self, data: bytes) -> None:
        self._last_data = self.loop.time()
        if self._lingering:
            self._lingered += len(data)
            if self._lingered > LINGER_MAX_BYTES:
                self.transport.close()
            return
        if self._awaiting_headers:
            self._arm_header_timer()  # a keep-alive connection's next request starts its deadline here
            self._header_bytes += len(data)
        was_boundary, tail = self._at_boundary, self._head_tail
        self._feed_begins = self._feed_heads = 0
        self._body_cycle = None
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self._awaiting_headers and self._header_bytes > MAX_HEADER_BYTES:
            count(Rejection.HEADERS_TOO_LARGE)
            self._fail(raw_response(431, f"request headers larger than {MAX_HEADER_BYTES} bytes"))
            return
        self._follow_chunks(data, was_boundary, tail)

    def on_message_begin(self) -> None:
        self._feed_begins += 1
        self._in_head = True
        super().on_message_begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > MAX_HEADERS:
            self._refusal = raw_response(431, f"more than {MAX_HEADERS} request headers")
            raise _Refused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > MAX_HEADER_BYTES:  # headers that arrived complete in one read
            self._refusal = raw_response(431, f"request headers larger than {MAX_HEADER_BYTES} bytes")
            raise _Refused
        self._awaiting_headers = self._in_head = False
        self._header_bytes = self._header_count = self._chunk_headers = 0
        self._sizes = None
        self._disarm_header_timer()
        # This head began at a known place if it was in progress with its start known, or if it is the first
        # request begun in this feed and the feed began at a request boundary.
        self._feed_heads += 1
        first_head = self._feed_heads == 1
        known = self._head_tail is not None if self._feed_begins == 0 else self._at_boundary and self._feed_begins == 1
        super().on_headers_complete()
        if self.cycle is not None:
            self.cycle.transport = self._cycle_transport
            if first_head and known:
                self._body_cycle = self.cycle

    def on_chunk_header(self) -> None:
        self._chunk_headers += 1

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_headers = True  # whatever comes next is the next request's headers
        self._sizes = None

    # --- chunked bodies: a declared size over the limit is refused at once ------------------------------------------

    def _follow_chunks(self, data: bytes, was_boundary: bool, tail: bytes | None) -> None:
        """After a feed: read the declared chunk sizes of the request still being read, from the raw bytes, when its
        body's first byte is known exactly; over MAX_BODY_BYTES, wake BufferedBody to answer 413 at once.

        The body starts right after the first CRLFCRLF of the request's head (a head holds no empty line before its
        end; the parser refuses bare LFs). The head's start is known when the connection was at a request boundary
        (CRLFs the parser skips ahead of a request are skipped here too) or it was in progress with a known start
        (then its last 3 bytes, `tail`, join this data). A request begun behind another in the same read (pipelined)
        has no known start and is not followed: it gets the limit as its bytes arrive, as before. The sizes are
        trusted only while they count as many chunk-size lines as the parser has read."""
        body_cycle = self._body_cycle
        if self._in_head:  # a head in progress: keep its start known for the next read
            known = tail is not None if self._feed_begins == 0 else was_boundary and self._feed_begins == 1
            self._head_tail = ((tail or b"") + data)[-3:] if known else None
        else:
            self._head_tail = None
        self._at_boundary = self._awaiting_headers and not self._in_head
        if self._awaiting_headers or self.cycle is None or self.cycle.response_complete:
            return  # no body in progress (the common case: the request arrived whole)
        sizes = self._sizes
        if sizes is not None:
            sizes.feed(data)
        elif body_cycle is self.cycle and _is_chunked(self.cycle.scope["headers"]):
            head = (tail or b"") + data
            start = 0 if tail is not None else len(data) - len(data.lstrip(b"\r\n"))
            end = head.find(b"\r\n\r\n", start)
            if end < 0:
                return
            sizes = self._sizes = ChunkSizes()
            sizes.feed(head[end + 4 :])
        else:
            return
        if sizes.broken or sizes.chunks != self._chunk_headers:
            self._sizes = None  # out of step with the parser: stop trusting it (the limit still holds as bytes come)
        elif sizes.declared > MAX_BODY_BYTES:
            self._sizes = None
            extensions: dict[str, Any] = self.cycle.scope.setdefault("extensions", {})
            extensions[DECLARED_BODY_BYTES] = sizes.declared
            self.cycle.message_event.set()  # BufferedBody, waiting for body bytes, sees it and answers 413

    # --- errors, pipelining, responses ----------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        """uvicorn calls this for any parser error; answer the refused request's limit or a JSON 400."""
        answer, self._refusal = self._refusal or raw_response(400, "malformed HTTP request"), None
        count(Rejection.HEADERS_TOO_LARGE if answer.startswith(STATUS_LINE[431]) else Rejection.MALFORMED_HTTP)
        self._fail(answer)

    def _fail(self, answer: bytes) -> None:
        """Answer with an error and close; after the answer in progress, if there is one, so that it is delivered."""
        self._disarm_header_timer()
        if self._idle():
            self.transport.write(answer)
            self.close_after_answer()
        else:
            self._deferred = answer
            self.flow.pause_reading()

    def on_response_complete(self) -> None:
        if self._lingering:
            return  # the connection ends here: nothing behind this request is served
        super().on_response_complete()
        self.idle_since = time.monotonic()
        if self._deferred is not None:
            self.transport.write(self._deferred)
            self.close_after_answer()
        elif self.cycle.response_complete and self.cycle.more_body and not self.transport.is_closing():
            self.close_after_answer()  # answered before the body was read: the rest of it is not worth reading

    # --- lingering close ------------------------------------------------------------------------------------------

    def close_after_answer(self) -> None:
        """Close once the answer is sent. If the request was not read to its end and the client sent something
        within LINGER_IDLE_SECONDS, it may still be sending: closing now with its bytes unread would reset the
        connection, and the reset can cost the client (or a proxy) the answer. So linger: FIN after the answer (the
        client reads it, then EOF), discard what arrives, and close at the client's EOF, after LINGER_IDLE_SECONDS
        without data, after LINGER_SECONDS in all, or past LINGER_MAX_BYTES."""
        if self._lingering or self.transport.is_closing():
            return
        unread = not self._awaiting_headers or self._header_bytes > 0
        now = self.loop.time()
        if not unread or now - self._last_data >= LINGER_IDLE_SECONDS:
            self.transport.close()
            return
        self._lingering = True
        self._disarm_header_timer()
        self._unset_keepalive_if_required()
        self.idle_since = 0.0  # the first closed when connections are full
        self._linger_until = now + LINGER_SECONDS
        self.transport.write_eof()  # shutdown(SHUT_WR) once the answer is flushed
        self.flow.resume_reading()
        self._linger_timer = self.loop.call_later(LINGER_IDLE_SECONDS, self._linger_check)

    def _linger_check(self) -> None:
        due = min(self._last_data + LINGER_IDLE_SECONDS, self._linger_until)
        now = self.loop.time()
        if now >= due:
            self._linger_timer = None
            self.transport.close()
        else:
            self._linger_timer = self.loop.call_later(due - now, self._linger_check)


def _is_chunked(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """As the parser decides: the last transfer coding is chunked."""
    codings = [value for name, value in headers if name == b"transfer-encoding"]
    return bool(codings) and codings[-1].rsplit(b",", 1)[-1].strip().lower() == b"chunked"


def protocol_for(limits: HttpSettings) -> type[GuardedHttpToolsProtocol]:
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})


def serve(app: ASGIApp, *, host: str, port: int, limits: HttpSettings) -> None:
    """Run `app` until SIGTERM. Keep-alive outlasts the ALB's idle timeout (60 s): if the server closed first, a
    request the ALB (or any pooling client) sends on a connection at that moment would fail (ALB 502).

    What start-up made (botocore's service models and endpoint data: ~800,000 objects in the receiver) lives as long
    as the process, so it is moved out of the garbage collector's reach first (`gc.freeze()`): a full collection
    walked all of it, ~0.3-0.6 s with every request stalled (measured with the receiver's app built), and now walks
    only what requests leave behind."""
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=protocol_for(limits),
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        timeout_keep_alive=int(limits.keep_alive_seconds),
    )
