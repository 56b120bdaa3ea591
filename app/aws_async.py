"""AWS API calls on the event loop for the receiver's hot path: botocore's own serializer, parser and standard retry
conditions, a SigV4 signature identical to botocore's, sent over keep-alive HTTP/1.1 connections parsed by
httptools, without a thread.

Why not a boto3 client there: measured against ministack (docs/performance.md has the figures), a
boto3 call costs ~0.9 ms of CPU whatever the operation, aiobotocore the same, plus ~0.16 ms to hop to a worker
thread and back; the receiver makes two calls per order. Why not aiohttp under botocore's signer (what this was):
aiohttp's request machinery costs ~0.3 ms of CPU a call and botocore's `AWSRequest` + `SigV4Auth` ~0.07 ms (0.11 ms
for SNS, whose form body it encodes twice); at 60 orders/s, where every order makes its two calls alone, that was
most of the receiver's CPU. Here a call's HTTP costs ~0.07 ms (a request written in one piece, the answer parsed by
httptools' C parser, already uvicorn's) and its signature ~0.01 ms (the signing key is derived once a day, as SigV4
allows). Everything the calls need beyond that comes from botocore: the request's serialization and the answer's
parsing (so errors carry the same codes, as ClientError), and the retry rules.

Everything else comes from a boto3 client built once, so the endpoint (AWS_ENDPOINT_URL or the region's), the
region and the credentials (environment, or the ECS task role) are those every other client of the services uses.
The task role's credentials expire and botocore fetches them again from the container credentials endpoint, a call
that can wait ~9 s (2 s timeouts, 3 tries, 1 s sleeps) when the endpoint is slow or down: `TaskCredentials` makes
that call in a thread, ahead of expiry, while requests keep signing with the credentials they have. Retries follow
botocore's standard mode (transient errors, throttling, modeled retryable errors; jittered exponential backoff),
with the attempts given.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ssl
import time
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

import boto3
import botocore
import botocore.session
import httptools
from botocore import parsers, serialize
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.httpsession import get_cert_path
from botocore.model import OperationModel
from botocore.retries.standard import ExponentialBackoff, RetryContext, StandardRetryConditions
from botocore.utils import get_environ_proxies

from app import aws

USER_AGENT = f"flashsale-receiver botocore/{botocore.__version__}"
DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class _HttpResponse:
    """What botocore's parsers and retry checkers read from a response (they look headers up in lower case)."""

    status_code: int
    headers: dict[str, str]
    content: bytes


class SigV4:
    """AWS Signature Version 4 of a POST without a query string, as botocore's SigV4Auth computes it for these
    services (every header but User-Agent signed, the payload's SHA-256, X-Amz-Security-Token for temporary
    credentials), for `host` (the Host header: lower case, without a default port)."""

    def __init__(self, host: str, region: str, service: str) -> None:
        self.host = host
        self._tail = f"/{region}/{service}/aws4_request"
        self._region_service = (region, service)
        self._key: tuple[str, str, bytes] = ("", "", b"")  # (secret key, day, signing key)

    def _signing_key(self, secret_key: str, day: str) -> bytes:
        cached_secret, cached_day, key = self._key
        if cached_secret != secret_key or cached_day != day:
            key = hmac.digest(f"AWS4{secret_key}".encode(), day.encode(), "sha256")
            for part in (*self._region_service, "aws4_request"):
                key = hmac.digest(key, part.encode(), "sha256")
            self._key = (secret_key, day, key)
        return key

    def headers(
        self, credentials: ReadOnlyCredentials, headers: dict[str, str], body: bytes, amz_date: str
    ) -> dict[str, str]:
        """`headers` plus Host, X-Amz-Date, X-Amz-Security-Token (if any) and Authorization, all lower case;
        `amz_date` as `YYYYMMDDTHHMMSSZ` (UTC)."""
        signed = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
        signed |= {"host": self.host, "x-amz-date": amz_date}
        if credentials.token:
            signed["x-amz-security-token"] = credentials.token
        names = sorted(signed)
        signed_names = ";".join(names)
        canonical = "".join(f"{name}:{signed[name]}\n" for name in names)
        request_hash = hashlib.sha256(
            f"POST\n/\n\n{canonical}\n{signed_names}\n{hashlib.sha256(body).hexdigest()}".encode()
        ).hexdigest()
        scope = amz_date[:8] + self._tail
        signature = hmac.new(
            self._signing_key(credentials.secret_key, amz_date[:8]),
            f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{request_hash}".encode(),
            "sha256",
        ).hexdigest()
        signed["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={signed_names}, Signature={signature}"
        )
        return signed


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: one request at a time, its answer parsed by httptools."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._parser = httptools.HttpResponseParser(self)
        self._answer: asyncio.Future[tuple[int, list[tuple[bytes, bytes]], bytes, bool]] | None = None
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not registered subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionResetError("connection closed before the whole answer"))

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(e)
            self.close()

    def _fail(self, error: Exception) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_exception(error)

    # httptools' callbacks
    def on_message_begin(self) -> None:
        self._headers, self._body = [], []

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(
                (self._parser.get_status_code(), self._headers, b"".join(self._body), self._parser.should_keep_alive())
            )

    async def exchange(self, request: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes, bool]:
        """Send one request, return (status, headers, body, keep-alive); raises what the connection met."""
        assert self.transport is not None
        self._answer = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        try:
            return await self._answer
        finally:
            self._answer = None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class UnsupportedProxy(RuntimeError):
    """A proxy from the environment applies to an endpoint this client would reach directly."""


def tls_context(url: str) -> ssl.SSLContext | None:
    """For an https URL, certificate and hostname checks against the CA bundle boto3 uses (AWS_CA_BUNDLE or the
    `ca_bundle` setting, else botocore's bundle); None for http."""
    if urlsplit(url).scheme != "https":
        return None
    bundle = botocore.session.get_session().get_config_variable("ca_bundle")
    return ssl.create_default_context(cafile=bundle or get_cert_path(True))


def refuse_proxies(url: str) -> None:
    """This client connects directly; where HTTPS_PROXY/HTTP_PROXY (minus NO_PROXY) would send boto3's calls to `url`
    through a proxy, it refuses to start rather than go around it."""
    proxy = get_environ_proxies(url).get(urlsplit(url).scheme)
    if proxy:
        raise UnsupportedProxy(
            f"a proxy ({proxy}) applies to {url}, and the event-loop client does not go through proxies: "
            f"add the endpoint's host to NO_PROXY (or reach it through a VPC endpoint)"
        )


class Pool:
    """Keep-alive connections to one endpoint, at most `size` requests (so connections) at once. A connection idle
    longer than IDLE_SECONDS is closed rather than reused: NAT gateways drop idle flows after 350 s without telling
    either end, and a request sent on a dropped flow waits for its read timeout."""

    IDLE_SECONDS = 50.0

    def __init__(self, url: str, *, size: int, connect_timeout: float, read_timeout: float) -> None:
        parts = urlsplit(url)
        self.url = url
        self._host, self._port = parts.hostname or "", parts.port or DEFAULT_PORTS[parts.scheme]
        self._tls = tls_context(url)
        self._slots = asyncio.Semaphore(size)
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._idle: list[tuple[_Connection, float]] = []  # with when each went idle (monotonic)

    async def _connection(self) -> _Connection:
        """The most recently used open connection not idle too long, or a new one."""
        stale_before = time.monotonic() - self.IDLE_SECONDS
        while self._idle:
            connection, idle_since = self._idle.pop()
            if not connection.closed and idle_since >= stale_before:
                return connection
            connection.close()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await asyncio.get_running_loop().create_connection(
                    _Connection, self._host, self._port, ssl=self._tls
                )
        except TimeoutError as e:
            raise ConnectTimeoutError(endpoint_url=self.url, error=e) from e
        except OSError as e:
            raise EndpointConnectionError(endpoint_url=self.url, error=e) from e
        return connection

    async def send(self, request: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        async with self._slots:
            connection = await self._connection()
            reuse = False
            try:
                async with asyncio.timeout(self._read_timeout):
                    status, headers, body, reuse = await connection.exchange(request)
            except TimeoutError as e:
                raise ReadTimeoutError(endpoint_url=self.url, error=e) from e
            except (OSError, httptools.HttpParserError) as e:
                raise ConnectionClosedError(endpoint_url=self.url, error=e) from e
            finally:  # a connection whose answer did not come whole (timeout, cancellation, error) is not reused
                if reuse and not connection.closed:
                    self._idle.append((connection, time.monotonic()))
                else:
                    connection.close()
        return status, headers, body

    def close(self) -> None:
        for connection, _ in self._idle:
            connection.close()
        self._idle.clear()


class TaskCredentials:
    """The signing credentials, fetched and refreshed off the event loop.

    `current()` answers the credentials in hand at once while they are good; once botocore says they are due (its
    advisory window, 15 minutes before expiry) one refresh runs in a thread and requests keep signing with the old
    ones meanwhile; a request waits for it only when there are none yet or they are about to expire (botocore's
    mandatory window). None found, or a refresh failing: looked for again `RETRY_SECONDS` later, never given up."""

    RETRY_SECONDS = 1.0
    MANDATORY_REFRESH_SECONDS = 10 * 60  # botocore's: credentials this close to expiry must be refreshed first
    CHECK_SECONDS = 1.0  # how often a request asks botocore whether a refresh is due (a cheap check, not per call)

    def __init__(self) -> None:
        self._source: Credentials | None = None
        self._frozen: ReadOnlyCredentials | None = None
        self._refresh: asyncio.Future[None] | None = None
        self._check_at = 0.0  # monotonic: when to ask botocore again whether a refresh is due
        self._retry_at = 0.0  # monotonic: after a failed look, not before this

    async def current(self) -> ReadOnlyCredentials:
        now = time.monotonic()
        if self._frozen is not None and now < self._check_at:
            return self._frozen
        if self._refresh is None and now >= self._retry_at and self._due():
            self._refresh = asyncio.ensure_future(asyncio.to_thread(self._load))
            self._refresh.add_done_callback(self._refreshed)
        if self._frozen is not None and not self._expiring():
            return self._frozen
        if self._refresh is not None:
            try:
                await asyncio.shield(self._refresh)
            except Exception as error:  # noqa: BLE001 - whatever the lookup raised, the call has no credentials
                raise NoCredentialsError() from error
        if self._frozen is None:
            raise NoCredentialsError()
        return self._frozen

    def _due(self) -> bool:
        if self._frozen is None or not isinstance(self._source, RefreshableCredentials):
            return self._frozen is None
        return bool(self._source.refresh_needed())

    def _expiring(self) -> bool:
        source = self._source
        return isinstance(source, RefreshableCredentials) and bool(
            source.refresh_needed(self.MANDATORY_REFRESH_SECONDS)
        )

    def _load(self) -> None:
        """In a thread: find the credentials if there are none yet, and freeze them (botocore refreshes if due)."""
        if self._source is None:
            self._source = boto3.session.Session().get_credentials()
        if self._source is not None:
            self._frozen = self._source.get_frozen_credentials()

    def _refreshed(self, done: asyncio.Future[None]) -> None:
        self._refresh = None
        now = time.monotonic()
        failed = done.cancelled() or done.exception() is not None or self._frozen is None
        if failed:
            self._retry_at = now + self.RETRY_SECONDS
        self._check_at = now + self.CHECK_SECONDS


class AsyncClient:
    """`await call("PublishBatch", TopicArn=..., ...)`: the parsed response, or ClientError / a BotoCoreError.
    For operations sent as a POST to the endpoint's root (the JSON and query protocols: DynamoDB, SNS, SQS...)."""

    def __init__(
        self,
        service: str,
        *,
        connect_timeout: float = aws.CONNECT_TIMEOUT_SECONDS,
        read_timeout: float = aws.READ_TIMEOUT_SECONDS,
        max_connections: int = 16,
        retries: int = aws.RETRIES,
    ) -> None:
        sync = aws.client(service)  # resolves endpoint and region as every other client does; never called
        self._model = sync.meta.service_model
        url = sync.meta.endpoint_url.rstrip("/")
        refuse_proxies(url)
        self._url = url
        parts = urlsplit(url)
        host = (parts.hostname or "") + (
            f":{parts.port}" if parts.port not in (None, DEFAULT_PORTS[parts.scheme]) else ""
        )
        self._signer = SigV4(host, sync.meta.region_name, self._model.signing_name)
        self._request_head = f"POST / HTTP/1.1\r\nUser-Agent: {USER_AGENT}\r\n"
        self._credentials = TaskCredentials()
        protocol = self._model.protocol
        self._serializer = serialize.create_serializer(protocol, include_validation=False)
        self._parser = parsers.create_parser(protocol)
        self._operations: dict[str, OperationModel] = {}
        self._retryable = StandardRetryConditions(max_attempts=retries + 1)
        self._backoff = ExponentialBackoff(service_name=self._model.service_name)
        self._pool_settings = {
            "size": max_connections,
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
        }
        self._pool: Pool | None = None  # made on the event loop, at the first call

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        model = self._operations.get(operation) or self._operations.setdefault(
            operation, self._model.operation_model(operation)
        )
        request = self._serialize(model, params)
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._send(request)
            except (HTTPClientError, BotoConnectionError) as e:
                context = RetryContext(attempt_number=attempt, operation_model=model, caught_exception=e)
                if not self._retryable.is_retryable(context):
                    raise
            else:
                parsed: dict[str, Any] = self._parser.parse(
                    {"headers": response.headers, "status_code": response.status_code, "body": response.content},
                    model.output_shape,
                )
                context = RetryContext(
                    attempt_number=attempt, operation_model=model, parsed_response=parsed, http_response=response
                )
                if not self._retryable.is_retryable(context):
                    if response.status_code >= 300 or "Error" in parsed:
                        raise ClientError(parsed, operation)
                    return parsed
            await asyncio.sleep(self._backoff.delay_amount(context))

    def _serialize(self, model: OperationModel, params: dict[str, Any]) -> tuple[dict[str, str], bytes]:
        """The operation's headers and body, as botocore would send them (a query-protocol body form-encoded)."""
        serialized = self._serializer.serialize_to_request(params, model)
        if serialized["method"] != "POST" or serialized["url_path"] != "/" or serialized["query_string"]:
            raise ValueError(f"{model.name} is not a POST to / without a query string")
        body = serialized["body"]
        if isinstance(body, dict):
            body = urlencode(body, doseq=True)
        return serialized["headers"], body.encode() if isinstance(body, str) else body

    async def _send(self, request: tuple[dict[str, str], bytes]) -> _HttpResponse:
        """One attempt, signed afresh (a retry must not reuse a stale date)."""
        credentials = await self._credentials.current()
        headers, body = request
        signed = self._signer.headers(credentials, headers, body, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
        head = "".join(f"{name}: {value}\r\n" for name, value in signed.items())
        if self._pool is None:
            self._pool = Pool(self._url, **self._pool_settings)  # type: ignore[arg-type]
        status, raw_headers, content = await self._pool.send(
            f"{self._request_head}{head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        return _HttpResponse(
            status, {n.decode("latin-1").lower(): v.decode("latin-1") for n, v in raw_headers}, content
        )
