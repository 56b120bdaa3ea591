"""HTTPS in front of the emulators, as AWS endpoints are: a local CA, a certificate for `localhost` only, and a TLS
terminating pipe to the emulator's plain HTTP port (local-only: ministack and moto serve HTTP).

The tasks reach the data plane at `https://localhost:PORT` with `AWS_CA_BUNDLE` naming this CA, so their boto3
clients and the receiver's event-loop client check the certificate and the hostname as they would on AWS: a client
that connects by another name (`127.0.0.1`) is refused. The CA (trustme) lives for the process; its certificate is
written to a temporary file for the tasks.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ssl
import tempfile
import threading
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import trustme

from bench.localaws.emulators import LOOPBACK

HOSTNAME: Final = "localhost"  # the one name the certificate is for
CHUNK = 64 * 1024


class TlsFront:
    """`https://localhost:<port>` forwarding every connection to the plain-HTTP `upstream` (http://127.0.0.1:N)."""

    port: int

    def __init__(self, upstream: str, ca: trustme.CA) -> None:
        parts = urlsplit(upstream)
        self.upstream = upstream
        self._upstream = (parts.hostname or LOOPBACK, int(parts.port or 80))
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(HOSTNAME).configure_cert(self._context)
        self.connections = 0  # accepted so far
        self._open: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._serve, name=f"tls-front-{self._upstream[1]}", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._server is None:
            raise RuntimeError(f"the TLS front for {upstream} did not start")
        self.port = int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"https://{HOSTNAME}:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._server = await asyncio.start_server(self._pipe, LOOPBACK, 0, ssl=self._context)
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    async def _pipe(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            client_writer.close()
            return
        self._open.add(client_writer)
        try:
            await asyncio.gather(
                _copy(client_reader, upstream_writer), _copy(upstream_reader, client_writer), return_exceptions=True
            )
        finally:
            self._open.discard(client_writer)

    def drop_connections(self) -> None:
        """Close every open connection, as a server does to idle keep-alive connections (fault injection)."""

        def drop() -> None:
            for writer in list(self._open):
                writer.close()

        self._loop.call_soon_threadsafe(drop)

    def close(self) -> None:
        async def shut() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._open):
                writer.close()
            pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Bytes from one side to the other until either ends; then the other is closed too (a closed keep-alive
    connection on one side closes it on the other, as a load balancer's would)."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(OSError, ssl.SSLError, RuntimeError):
            writer.close()


class LocalCa:
    """This process's CA and its fronts, one per upstream, made when first asked for."""

    def __init__(self) -> None:
        self._ca = trustme.CA()
        self._lock = threading.Lock()
        self._fronts: dict[str, TlsFront] = {}
        bundle = tempfile.NamedTemporaryFile(prefix="flashsale-local-ca-", suffix=".pem", delete=False)  # noqa: SIM115
        with bundle:
            bundle.write(self._ca.cert_pem.bytes())
        self.bundle = Path(bundle.name)
        atexit.register(self.bundle.unlink, missing_ok=True)

    def front(self, upstream: str) -> TlsFront:
        """The front of `upstream`, shared by every task of this process."""
        with self._lock:
            if upstream not in self._fronts:
                self._fronts[upstream] = self.new_front(upstream)
            return self._fronts[upstream]

    def new_front(self, upstream: str) -> TlsFront:
        """A front of its own (the caller closes it), for a test that breaks its connections."""
        return TlsFront(upstream, self._ca)

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting this CA (for tests that talk to a front themselves)."""
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context


_SHARED: LocalCa | None = None
_SHARED_LOCK = threading.Lock()


def shared() -> LocalCa:
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = LocalCa()
        return _SHARED
