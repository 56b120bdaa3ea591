"""app.aws_async, the receiver's event-loop AWS client: its SigV4 signature is botocore's own, byte for byte; against
ministack its calls share one keep-alive connection and its errors parse as botocore's; at the connection's edges it
behaves as botocore's client does (an answer cut off is retried on a new connection, a silent server is a read
timeout, a refused port a connection error), provoked by a raw socket server."""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Awaitable, Callable
from unittest import mock

import boto3
import psutil
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from app.aws_async import AsyncClient, SigV4
from bench.localaws.emulators import Emulator, free_port

JSON_HEADERS = {"X-Amz-Target": "DynamoDB_20120810.BatchExecuteStatement", "Content-Type": "application/x-amz-json-1.0"}
FORM_HEADERS = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


@pytest.mark.parametrize(
    "url, service, headers, body",
    [
        ("http://127.0.0.1:4566", "dynamodb", JSON_HEADERS, b'{"Statements": [{"Statement": "INSERT"}]}'),
        ("https://sns.eu-west-1.amazonaws.com:443", "sns", FORM_HEADERS, b"Action=PublishBatch&Message=%7B%22a%22%7D"),
        ("https://dynamodb.eu-west-1.amazonaws.com", "dynamodb", {**JSON_HEADERS, "X-Odd": "  two   spaces "}, b""),
    ],
)
@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEBYaDH+token/=="])
def test_the_signature_is_botocores(
    url: str, service: str, headers: dict[str, str], body: bytes, token: str | None
) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    frozen = credentials.get_frozen_credentials()
    now = datetime.datetime(2026, 12, 1, 23, 59, 59)
    with mock.patch("botocore.auth.get_current_datetime", return_value=now):
        reference = AWSRequest(method="POST", url=url + "/", data=body, headers=dict(headers))
        SigV4Auth(frozen, service, "eu-west-1").add_auth(reference)
    host = url.split("//")[1].removesuffix(":443")
    signer = SigV4(host, "eu-west-1", service)
    for _ in range(2):  # the second time from the cached signing key
        ours = signer.headers(frozen, headers, body, now.strftime("%Y%m%dT%H%M%SZ"))
        assert ours == {"host": host} | {
            name.lower(): " ".join(value.split()) for name, value in reference.headers.items()
        }


def test_calls_share_one_keep_alive_connection_and_errors_parse_as_botocores(
    aws_env: dict[str, str], ministack: Emulator
) -> None:
    topic = boto3.client("sns").create_topic(Name="aws-async")["TopicArn"]
    port = int(ministack.endpoint_url.rsplit(":", 1)[1])

    def local_ports() -> set[int]:
        return {
            c.laddr.port
            for c in psutil.Process().net_connections("tcp")
            if c.raddr and c.raddr.port == port and c.status == psutil.CONN_ESTABLISHED
        }

    others = local_ports()  # this process's other clients' (earlier tests', boto3's)

    async def calls() -> tuple[list[int], set[int], str]:
        client = AsyncClient("sns")
        published, ports = [], set()
        try:
            for size in (1, 2, 10) * 5:
                answer = await client.call(
                    "PublishBatch",
                    TopicArn=topic,
                    PublishBatchRequestEntries=[
                        {"Id": str(n), "Message": f'{{"n": {n}, "text": "ä & = +"}}'} for n in range(size)
                    ],
                )
                published.append(len(answer["Successful"]))
                await asyncio.sleep(0.01)  # a connection closed after the call is gone by now
                ports |= local_ports() - others
            with pytest.raises(ClientError) as missing:
                await client.call(
                    "PublishBatch", TopicArn=topic + "-gone", PublishBatchRequestEntries=[{"Id": "0", "Message": "{}"}]
                )
            return published, ports, missing.value.response["Error"]["Code"]
        finally:
            await client.close()

    published, connections, code = asyncio.run(calls())
    assert published == [1, 2, 10] * 5
    assert len(connections) == 1  # the same connection (local port) all along
    with pytest.raises(ClientError) as boto3_missing:
        boto3.client("sns").publish_batch(
            TopicArn=topic + "-gone", PublishBatchRequestEntries=[{"Id": "0", "Message": "{}"}]
        )
    assert code == boto3_missing.value.response["Error"]["Code"]


Handler = Callable[[int, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
EMPTY_ANSWER = (
    b'HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\nContent-Length: 16\r\n\r\n{"Responses":[]}'
)


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    await reader.readexactly(length)


async def _against(handler: Handler, monkeypatch: pytest.MonkeyPatch, **client: float) -> tuple[object, float]:
    """Make one BatchExecuteStatement call against a raw server running `handler` for each connection; returns
    the result (or the exception) and how long it took."""
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            await handler(connections, reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    async with server:
        aws = AsyncClient("dynamodb", **client)  # type: ignore[arg-type]
        started = time.monotonic()
        try:
            result: object = await aws.call("BatchExecuteStatement", Statements=[{"Statement": "SELECT 1"}])
        except Exception as e:
            result = e
        took = time.monotonic() - started
        await aws.close()
    return result, took


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")


@pytest.mark.usefixtures("credentials")
def test_an_answer_cut_off_is_retried_on_a_new_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    async def cut_first(connection: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        if connection > 1:  # the first connection closes without an answer
            writer.write(EMPTY_ANSWER)
            await writer.drain()
            await _read_request(reader)  # and keeps the connection for the next request

    result, took = asyncio.run(_against(cut_first, monkeypatch, retries=1))
    assert isinstance(result, dict) and result["Responses"] == []
    assert took < 2  # the cut was noticed at once, not at the read timeout (5 s)


@pytest.mark.usefixtures("credentials")
def test_a_silent_server_is_a_read_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    async def silent(connection: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)

    result, took = asyncio.run(_against(silent, monkeypatch, read_timeout=0.3, retries=0))
    assert isinstance(result, ReadTimeoutError)
    assert 0.3 <= took < 2


@pytest.mark.usefixtures("credentials")
def test_a_refused_connection_is_a_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")

    async def call() -> None:
        aws = AsyncClient("dynamodb", retries=0)
        try:
            await aws.call("BatchExecuteStatement", Statements=[{"Statement": "SELECT 1"}])
        finally:
            await aws.close()

    with pytest.raises(EndpointConnectionError):
        asyncio.run(call())
