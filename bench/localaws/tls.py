"""HTTPS in front of the emulators, as AWS endpoints are: a local CA, a certificate for `localhost` only, and a TLS
terminating pipe to the emulator's plain HTTP port (local-only: ministack and moto serve HTTP).

The tasks reach the data plane at `https://localhost:PORT` with `AWS_CA_BUNDLE` naming this CA, so their boto3
clients and the receiver's event-loop client check the certificate and the hostname as they would on AWS: a client
that connects by another name (`127.0.0.1`) is refused. The CA (trustme) lives for the process; its certificate is
written to a temporary file for the tasks. The fronts the tasks use run in processes of their own: a busy test or lab
process must not delay the tasks' calls (a worker extending a message's visibility has a second to do it).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import html
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import trustme

from bench.localaws import iam_gate
from bench.localaws.emulators import LOOPBACK

HOSTNAME: Final = "localhost"  # the one name the certificate is for
CHUNK = 64 * 1024
GATE_FLUSH_SECONDS: Final = 0.5  # how often a gated front writes its record of calls (at once after a refusal)


class TlsFront:
    """`https://localhost:<port>` forwarding every connection to the plain-HTTP `upstream` (http://127.0.0.1:N)."""

    port: int

    def __init__(self, upstream: str, context: ssl.SSLContext, gate: iam_gate.Gate | None = None) -> None:
        parts = urlsplit(upstream)
        self.upstream = upstream
        self._upstream = (parts.hostname or LOOPBACK, int(parts.port or 80))
        self._context = context
        self._gate = gate  # when given, every request must pass it (bench.localaws.iam_gate) before it goes on
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
            if self._gate is not None:
                self._loop.create_task(_flush_every(self._gate, GATE_FLUSH_SECONDS))
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
            requests = (
                _copy(client_reader, upstream_writer)
                if self._gate is None
                else _gated(self._gate, client_reader, upstream_writer, client_writer)
            )
            await asyncio.gather(requests, _copy(upstream_reader, client_writer), return_exceptions=True)
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
        if self._gate is not None:
            self._gate.flush()


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


async def _gated(
    gate: iam_gate.Gate, reader: asyncio.StreamReader, upstream: asyncio.StreamWriter, client: asyncio.StreamWriter
) -> None:
    """Requests from the client, each forwarded only if the gate lets it through; a refused one is answered here.
    The SDKs send one request and wait for its answer before the next (no pipelining), so an answer written here
    never overtakes the upstream's answer to an earlier request."""
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # the client closed between requests
            request_line, *lines = head.decode("latin-1").split("\r\n")
            headers = {n.strip().lower(): v.strip() for n, _, v in (line.partition(":") for line in lines if line)}
            if "chunked" in headers.get("transfer-encoding", "").lower():
                client.write(_answer(411, "LengthRequired", "the local IAM gate reads bodies by Content-Length", {}))
                return
            body = await reader.readexactly(int(headers.get("content-length") or 0))
            method, target, _ = request_line.split(" ", 2)
            refusal = await _refusal(gate, iam_gate.Request(method, target, headers, body))
            if refusal is None:
                upstream.write(head + body)
                await upstream.drain()
            else:
                client.write(_answer(*refusal, headers))
                await client.drain()
    except (OSError, ssl.SSLError, ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, ssl.SSLError, RuntimeError):
            upstream.close()


async def _refusal(gate: iam_gate.Gate, request: iam_gate.Request) -> iam_gate.Refusal | None:
    """What AWS would answer instead of serving `request` (None: serve it)."""
    try:
        role = gate.identify(request)
    except iam_gate.Unmapped:
        return iam_gate.Refusal(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    except PermissionError as unknown:
        return gate.unknown_key(str(unknown))
    if role is None:
        return None
    policies = gate.policies.known(role)
    if policies is None:
        policies = await asyncio.to_thread(gate.policies.read, role)
    return gate.decide(request, role, policies)


def _answer(status: int, code: str, message: str, request_headers: dict[str, str]) -> bytes:
    """An error as the service's protocol carries it: JSON for JSON protocols, the query protocols' XML otherwise."""
    if "x-amz-target" in request_headers:
        content_type = request_headers.get("content-type", "application/x-amz-json-1.0")
        body = json.dumps({"__type": code, "message": message}).encode()
    else:
        content_type = "text/xml"
        query_code = "AuthorizationError" if code == "AccessDeniedException" else code
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{query_code}</Code>"
            f"<Message>{html.escape(message)}</Message></Error><RequestId>local-iam-gate</RequestId></ErrorResponse>"
        ).encode()
    reason = {400: "Bad Request", 403: "Forbidden", 411: "Length Required"}.get(status, "Error")
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nx-amzn-ErrorType: {code}\r\n"
        f"x-amzn-RequestId: local-iam-gate\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _flush_every(gate: iam_gate.Gate, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        gate.flush()


class FrontProcess:
    """A TlsFront in a process of its own (`python -m bench.localaws.tls`), so that the tasks' calls are not
    slowed by whatever the process that started it is doing; it exits when that process does (its stdin closes)."""

    def __init__(self, upstream: str, cert: Path, key: Path, iam: str | None = None) -> None:
        self.upstream = upstream
        gated = ["--iam", iam, "--ledger", str(iam_gate.ledger().directory)] if iam else []
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.localaws.tls", upstream, str(cert), str(key), *gated],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        said = self._process.stdout.readline()
        if not said.strip().isdigit():
            self._process.kill()
            raise RuntimeError(f"the TLS front for {upstream} did not start: {said!r}")
        self.port = int(said)

    @property
    def url(self) -> str:
        return f"https://{HOSTNAME}:{self.port}"

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(5)


class LocalCa:
    """This process's CA and its fronts, one per upstream, made when first asked for."""

    def __init__(self) -> None:
        self._ca = trustme.CA()
        self._server = self._ca.issue_cert(HOSTNAME)
        self._lock = threading.Lock()
        self._fronts: dict[str, FrontProcess] = {}
        self._files = Path(tempfile.mkdtemp(prefix="flashsale-local-ca-"))
        atexit.register(shutil.rmtree, self._files, ignore_errors=True)
        self.bundle = self._files / "ca.pem"
        self.bundle.write_bytes(self._ca.cert_pem.bytes())
        self._cert, self._key = self._files / "localhost.pem", self._files / "localhost.key"
        self._cert.write_bytes(b"".join(blob.bytes() for blob in self._server.cert_chain_pems))
        self._key.write_bytes(self._server.private_key_pem.bytes())

    def front(self, upstream: str, iam: str | None = None) -> FrontProcess:
        """The front of `upstream`, shared by every task this process starts; with `iam` (the control plane whose
        IAM holds the roles' policies), every call through it is authorized as AWS would (bench.localaws.iam_gate)."""
        with self._lock:
            if upstream not in self._fronts:
                self._fronts[upstream] = FrontProcess(upstream, self._cert, self._key, iam)
            return self._fronts[upstream]

    def new_front(self, upstream: str, gate: iam_gate.Gate | None = None) -> TlsFront:
        """A front in this process, of its own (the caller closes it): for a test that counts or breaks its
        connections, or watches its IAM gate."""
        return TlsFront(upstream, server_context(self._cert, self._key), gate)

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting this CA (for tests that talk to a front themselves)."""
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


_SHARED: LocalCa | None = None
_SHARED_LOCK = threading.Lock()


def shared() -> LocalCa:
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = LocalCa()
        return _SHARED


def main(argv: list[str]) -> int:
    """`python -m bench.localaws.tls UPSTREAM CERT KEY [--iam URL --ledger DIR]`: serve a front, print its port, stop
    when stdin closes."""
    p = argparse.ArgumentParser(prog="python -m bench.localaws.tls", description="Local system: one TLS front.")
    p.add_argument("upstream", help="the emulator's plain HTTP endpoint")
    p.add_argument("cert", type=Path, help="the server certificate chain (PEM)")
    p.add_argument("key", type=Path, help="its private key (PEM)")
    p.add_argument("--iam", help="authorize every call against the roles' policies in this control plane's IAM")
    p.add_argument("--ledger", type=Path, help="the process's IAM ledger directory (keys in, calls out)")
    args = p.parse_args(argv)
    gate = None
    if args.iam:
        if args.ledger is None:
            p.error("--iam needs --ledger")
        ledger = iam_gate.Ledger(args.ledger)
        snapshot = args.ledger / f"front-{os.getpid()}{iam_gate.SNAPSHOT_SUFFIX}"
        gate = iam_gate.Gate(ledger, iam_gate.Policies(args.iam), snapshot, iam_gate.upstream_account(args.upstream))
    front = TlsFront(args.upstream, server_context(args.cert, args.key), gate)
    print(front.port, flush=True)
    sys.stdin.read()  # until the process that started this one closes the pipe or exits
    front.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
