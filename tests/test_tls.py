"""AWS endpoints are HTTPS: the local tasks reach the emulators through TLS fronts with certificate and hostname
checks, and the receiver's event-loop client honours the CA bundle, refuses proxies it would go around, reconnects
when the server closes, and does not reuse connections idle past its bound."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError

from app.aws_async import AsyncClient, Pool, UnsupportedProxy
from bench.localaws import tls
from bench.localaws.deployer import Deployment
from bench.localaws.ecs import LocalService, deployed_services
from bench.localaws.emulators import Emulator
from tests.helpers import System, system, wait_for  # noqa: F401


@pytest.fixture
def front(ministack: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[tls.TlsFront]:
    """A TLS front of the test's own before the session's ministack, and this process's boto3 pointed at it."""
    ca = tls.shared()
    served = ca.new_front(ministack.endpoint_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", served.url)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(ca.bundle))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    yield served
    served.close()


def calls(client: AsyncClient, count: int) -> list[dict[str, object]]:
    async def run() -> list[dict[str, object]]:
        try:
            return [await client.call("ListQueues") for _ in range(count)]
        finally:
            await client.close()

    return asyncio.run(run())


def test_every_task_reaches_aws_over_https_with_the_local_ca(services: list[LocalService]) -> None:
    for service in services:
        env = service.spec.environment()
        endpoints = {key: value for key, value in env.items() if key.startswith("AWS_ENDPOINT_URL")}
        assert endpoints and all(url.startswith(f"https://{tls.HOSTNAME}:") for url in endpoints.values()), endpoints
        assert "BEGIN CERTIFICATE" in Path(env["AWS_CA_BUNDLE"]).read_text()


def test_a_task_asked_for_plain_http_reaches_the_emulators_own_ports_without_a_bundle(deployment: Deployment) -> None:
    """The receiver benchmark's plain-HTTP row: the same tasks, without the fronts."""
    ours = deployment.endpoints
    plain = {ours.data_plane, ours.control_plane, ours.ecs_api}
    for service in deployed_services(deployment, https=False):
        env = service.spec.environment()
        endpoints = {key: value for key, value in env.items() if key.startswith("AWS_ENDPOINT_URL")}
        assert endpoints and set(endpoints.values()) <= plain, endpoints
        assert "AWS_CA_BUNDLE" not in env


def test_the_certificate_and_the_hostname_are_checked(front: tls.TlsFront, monkeypatch: pytest.MonkeyPatch) -> None:
    assert calls(AsyncClient("sqs"), 2)  # the right name, the local CA trusted

    monkeypatch.setenv("AWS_ENDPOINT_URL", front.url.replace(tls.HOSTNAME, "127.0.0.1"))  # a name not certified
    with pytest.raises(BotoCoreError) as refused:
        calls(AsyncClient("sqs", retries=0), 1)
    assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)
    assert "127.0.0.1" in str(refused.value.__cause__)  # "IP address mismatch, certificate is not valid for ..."

    monkeypatch.delenv("AWS_CA_BUNDLE")  # the right name, but a CA nobody trusts
    monkeypatch.setenv("AWS_ENDPOINT_URL", front.url)
    with pytest.raises(BotoCoreError) as refused:
        calls(AsyncClient("sqs", retries=0), 1)
    assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)
    assert "unable to get local issuer certificate" in str(refused.value.__cause__)


def test_a_connection_the_server_closed_is_replaced(front: tls.TlsFront) -> None:
    client = AsyncClient("sqs")

    async def run() -> None:
        try:
            await client.call("ListQueues")
            assert front.connections == 1
            front.drop_connections()
            await asyncio.to_thread(wait_for, lambda: not front._open, 5, "the front to close its connection")
            await client.call("ListQueues")  # on a new connection, without an error
            assert front.connections == 2
        finally:
            await client.close()

    asyncio.run(run())


def test_idle_connections_are_reused_only_within_the_idle_bound(
    front: tls.TlsFront, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls(AsyncClient("sqs"), 3)
    assert front.connections == 1  # kept alive

    monkeypatch.setattr(Pool, "IDLE_SECONDS", 0.0)  # every idle connection is past the bound
    calls(AsyncClient("sqs"), 3)
    assert front.connections == 1 + 3


def test_a_proxy_the_client_would_go_around_is_refused_at_start(
    front: tls.TlsFront, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    with pytest.raises(UnsupportedProxy, match="NO_PROXY"):
        AsyncClient("sqs")
    monkeypatch.setenv("NO_PROXY", tls.HOSTNAME)  # as boto3 would, the endpoint is reached directly
    assert calls(AsyncClient("sqs"), 1)


def test_a_receiver_behind_a_proxy_it_would_go_around_exits_saying_so(system: System) -> None:
    task = system.task("receiver", HTTPS_PROXY="http://127.0.0.1:3128")
    task.launch()
    assert wait_for(lambda: not task.alive(), 30, "the receiver to exit")
    said = task.args.log_path.read_text()
    assert "error: a proxy (http://127.0.0.1:3128) applies to https://localhost:" in said and "Traceback" not in said


def test_the_local_ca_is_what_a_client_must_trust(front: tls.TlsFront) -> None:
    """A plain client (not botocore) sees the same: trusted with the local CA by the certified name only."""
    context = tls.shared().client_context()
    with socket.create_connection(("127.0.0.1", front.port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=tls.HOSTNAME) as wrapped:
            assert wrapped.version() in ("TLSv1.2", "TLSv1.3")
    with socket.create_connection(("127.0.0.1", front.port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(raw, server_hostname="127.0.0.1")
