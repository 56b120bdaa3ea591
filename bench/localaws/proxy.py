"""The local stand-in for an ALB listener: one port on 127.0.0.1 that spreads connections over a service's tasks.

It balances per connection, round robin over the tasks that are running and healthy (an ALB balances per request;
with keep-alive clients the difference is which task a connection's requests go to, not how many each task gets over
many connections). A connection to a task that refuses is retried on the next task, as an ALB retries a target that
resets before answering. All balancers share one event loop in one background thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Sequence

from bench.localaws.emulators import LOOPBACK

CHUNK = 64 * 1024
LINGER_SECONDS = 10.0  # the most a closing connection keeps reading what its client still sends
_NO_TARGET_BODY = b'{"error":"no healthy task behind the load balancer"}'
NO_TARGET = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
    b"Content-Length: %d\r\n\r\n%s" % (len(_NO_TARGET_BODY), _NO_TARGET_BODY)
)


class Balancer:
    """One listener: `targets` are the ports of the tasks behind it, replaced as tasks come and go."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = 0
        self._targets: tuple[int, ...] = ()
        self._turn = itertools.count()
        self.connections = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def set_targets(self, ports: Sequence[int]) -> None:
        self._targets = tuple(ports)

    def targets(self) -> tuple[int, ...]:
        return self._targets

    def _order(self) -> list[int]:
        targets = self._targets
        if not targets:
            return []
        start = next(self._turn) % len(targets)
        return [*targets[start:], *targets[:start]]

    async def handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        for port in self._order():
            try:
                task_reader, task_writer = await asyncio.open_connection(LOOPBACK, port)
            except OSError:
                continue
            upload = asyncio.create_task(_upload(client_reader, task_writer))
            await _pipe(task_reader, client_writer)  # the task's answers, until it closes; then the client's EOF
            # A lingering close: what the client still sends is read and dropped (by `upload`) for a while before
            # the connection closes, or the client's unread bytes would reset it and destroy the answer on its way.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(upload, LINGER_SECONDS)
            await _close(client_writer)
            return
        client_writer.write(NO_TARGET)
        await _close(client_writer)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The task's bytes to the client until the task closes; the client then gets an EOF (a half-close)."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    with contextlib.suppress(ConnectionError, OSError):
        if writer.can_write_eof():
            writer.write_eof()


async def _upload(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The client's bytes to the task until the client closes; once the task has gone, they are dropped."""
    try:
        while data := await reader.read(CHUNK):
            if writer.is_closing():
                continue
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                writer.close()
    except (ConnectionError, OSError):
        pass
    finally:
        await _close(writer)


async def _close(writer: asyncio.StreamWriter) -> None:
    try:
        if writer.can_write_eof():
            writer.write_eof()
        writer.close()
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


class Balancers:
    """The event loop thread that serves every balancer; `add` opens a listener on a free (or given) port."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="local-alb", daemon=True)
        self._servers: list[asyncio.Server] = []
        self._thread.start()

    def add(self, balancer: Balancer, port: int = 0) -> Balancer:
        async def listen() -> None:
            server = await asyncio.start_server(balancer.handle, LOOPBACK, port)
            balancer.port = int(server.sockets[0].getsockname()[1])
            self._servers.append(server)

        asyncio.run_coroutine_threadsafe(listen(), self._loop).result(timeout=10)
        return balancer

    def close(self) -> None:
        async def shutdown() -> None:
            for server in self._servers:
                server.close()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
