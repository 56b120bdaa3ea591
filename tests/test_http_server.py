"""app.http_server.serve: what start-up built is out of the garbage collector's reach before the first request (a
full collection over botocore's ~800,000 start-up objects stalled every request for 0.2-0.6 s under load)."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import random
import re
from typing import Any

import pytest
import uvicorn
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send
from uvicorn.server import ServerState

from app import http_server, settings
from app.web import BufferedBody


def test_serve_freezes_what_start_up_built_before_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    start_up = [{"model": n} for n in range(1000)]  # stands for the service models the app holds
    frozen_at_start: list[int] = []

    def run(app: Any, **options: Any) -> None:
        frozen_at_start.append(gc.get_freeze_count())

    monkeypatch.setattr(uvicorn, "run", run)
    gc.unfreeze()
    try:
        http_server.serve(lambda *_: None, host="127.0.0.1", port=0, limits=settings.http())  # type: ignore[arg-type]
        assert frozen_at_start and frozen_at_start[0] >= len(start_up)
    finally:
        gc.unfreeze()


# --- Chunked bodies: a declared size over the limit is answered 413 at once; valid ones are never refused ------------

LIMITS = settings.HttpSettings(
    header_timeout_seconds=5, body_timeout_seconds=5, max_connections=10, keep_alive_seconds=5
)


async def echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await JSONResponse({"length": len(body), "sha": hashlib.sha256(body).hexdigest()})(scope, receive, send)


class Transport(asyncio.Transport):
    """What the protocol writes, and whether it closed; reads are never paused for real."""

    def __init__(self) -> None:
        super().__init__()
        self.written = bytearray()
        self.closed = self.eof = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += data

    def write_eof(self) -> None:
        self.eof = True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


async def serve_in_process(pieces: list[bytes]) -> Transport:
    """Feed `pieces` one read at a time to the server's protocol around BufferedBody(echo_length), letting the app
    run between reads; return the transport once the app is idle."""
    config = uvicorn.Config(app=BufferedBody(echo_length, timeout_seconds=5), log_level="warning")
    config.load()
    protocol = http_server.protocol_for(LIMITS)(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    for piece in pieces:
        if transport.closed:
            break
        protocol.data_received(piece)
        for _ in range(5):
            await asyncio.sleep(0)
    for _ in range(20):
        await asyncio.sleep(0)
    protocol.connection_lost(None)
    return transport


def answers(written: bytes) -> list[tuple[int, dict[str, Any]]]:
    found = []
    for match in re.finditer(rb"HTTP/1\.1 (\d{3}) [^\r]*\r\n(.*?)\r\n\r\n", written, re.DOTALL):
        length = int(re.search(rb"content-length: (\d+)", match[2])[1])  # type: ignore[index]
        found.append((int(match[1]), json.loads(written[match.end() : match.end() + length])))
    return found


HEAD = b"POST /orders HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunked(body: bytes, rng: random.Random) -> bytes:
    """`body` in random chunks, with random extensions and maybe trailers, as a valid chunked encoding."""
    out, i = bytearray(), 0
    while i < len(body):
        size = min(len(body) - i, rng.choice([1, 2, 7, 100, 4096, 70_000]))
        digits = (b"%x" if rng.random() < 0.5 else b"%X") % size
        out += b"0" * rng.choice([0, 0, 2]) + digits + rng.choice([b"", b";a=b", b';name="q;\\"x"', b";e"]) + b"\r\n"
        out += body[i : i + size] + b"\r\n"
        i += size
    out += b"0" + rng.choice([b"", b";last=1"]) + b"\r\n" + rng.choice([b"", b"X-Trailer: 1\r\n"]) + b"\r\n"
    return bytes(out)


def split(raw: bytes, rng: random.Random) -> list[bytes]:
    cuts = sorted(rng.sample(range(1, len(raw)), min(len(raw) - 1, rng.choice([0, 1, 3, 20]))))
    return [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]


@pytest.mark.parametrize("seed", range(60))
def test_valid_chunked_bodies_in_any_split_are_answered_never_refused(seed: int) -> None:
    """Valid chunked requests (one to many chunks, leading zeros, extensions, trailers), several on one keep-alive
    connection, pipelined, fed in random reads: each answered 200 with its body, never a 413 from the framing."""
    rng = random.Random(seed)
    bodies = [rng.randbytes(rng.choice([0, 1, 10, 5000, 65536])) for _ in range(rng.choice([1, 2, 3]))]
    raw = b"".join(rng.choice([b"", b"\r\n"]) + HEAD + chunked(body, rng) for body in bodies)
    written = bytes(asyncio.run(serve_in_process(split(raw, rng))).written)
    expected = [(200, {"length": len(b), "sha": hashlib.sha256(b).hexdigest()}) for b in bodies]
    assert answers(written) == expected, written[:500]


@pytest.mark.parametrize(
    "body", [b"10000000000000\r\nabc", b"10001\r\n", b"8000\r\n" + b"x" * 0x8000 + b"\r\n8001;e=1\r\n"]
)
@pytest.mark.parametrize("reads", ["one", "bytewise"])
def test_a_chunk_header_declaring_more_than_the_limit_is_413_at_once(body: bytes, reads: str) -> None:
    """2^52 bytes declared, 65,537 in one chunk, or in two: 413 as soon as the chunk header is read, although the
    bytes declared never come (before, the body deadline's 408)."""
    raw = b"POST /orders HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    pieces = [raw] if reads == "one" else [raw[i : i + 1] for i in range(len(raw))]
    transport = asyncio.run(serve_in_process(pieces))
    assert [status for status, _ in answers(bytes(transport.written))] == [413]
    assert transport.eof or transport.closed
