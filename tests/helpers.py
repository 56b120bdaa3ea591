"""Shared test helpers: the session's deployment with a fresh data plane, and its services as task processes.

Use: `from tests.helpers import system  # noqa: F401` in a test module, then `system.start("receiver", ...)`: the
task runs what the deployed task definition says (its environment as the program set it), plus the settings given.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import aws, contract
from bench.localaws.deployer import Deployment, Endpoints, deploy
from bench.localaws.ecs import LocalService, deployed_services, service_of
from bench.localaws.emulators import LOOPBACK, Emulator
from bench.localaws.resources.registry import DATA_PLANE
from bench.localaws.tasks import Task
from stackconfig import output_names
from tests.conftest import TEST_CONFIG

CUSTOMER_ID = 1234
ORDER_ITEM: dict[str, Any] = {"product_id": "PROD-001", "quantity": 2, "price": 49.99}
ORDER: dict[str, Any] = {"customer_id": CUSTOMER_ID, "items": [ORDER_ITEM]}


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def unread_bytes(port: int) -> int:
    """Bytes sent to 127.0.0.1:`port` that its server has not read yet, over every connection (Linux's
    /proc/net/tcp): how a test sees that a call has reached an emulator it stopped with SIGSTOP."""
    local = f"0100007F:{port:04X}"
    total = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[3] == "01":  # ESTABLISHED, the server's end
            total += int(fields[4].split(":")[1], 16)  # rx_queue
    return total


@dataclass
class System:
    """The deployed stack with a fresh data plane, and the tasks started for one test (stopped at teardown)."""

    deployment: Deployment
    aws_env: dict[str, str]
    logs: Path
    services: list[LocalService]
    tasks: list[Task] = field(default_factory=list)

    @property
    def outputs(self) -> dict[str, Any]:
        return self.deployment.stack_outputs()

    def task(self, role: str, **settings: str) -> Task:
        """A task of the role's service as deployed, with `settings` on top; not started."""
        name = f"{role}-{sum(t.role == role for t in self.tasks)}"
        task = service_of(self.services, role).spec.task(self.logs / f"{name}.log", settings)
        self.tasks.append(task)
        return task

    def start(self, role: str, **settings: str) -> Task:
        return self.task(role, **settings).start()

    def order(self, order_id: str) -> dict[str, Any] | None:
        item = aws.client("dynamodb").get_item(
            TableName=self.outputs[output_names.ORDERS_TABLE],
            Key={contract.ORDER_KEY: {"S": order_id}},
            ConsistentRead=True,
        )
        return {k: v.get("S", v.get("N")) for k, v in item["Item"].items()} if "Item" in item else None

    def orders(self) -> list[dict[str, Any]]:
        items = aws.client("dynamodb").scan(TableName=self.outputs[output_names.ORDERS_TABLE])["Items"]
        return [{k: v.get("S", v.get("N")) for k, v in item.items()} for item in items]

    def queue_counts(self, output: str = output_names.QUEUE_URL) -> tuple[int, int]:
        """(visible, in flight) messages of the order queue (or of the queue named by another output)."""
        attributes = aws.client("sqs").get_queue_attributes(
            QueueUrl=self.outputs[output],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def wait_status(self, order_id: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
        found: dict[str, Any] = wait_for(
            lambda: (o := self.order(order_id)) and o["status"] == status and o,
            timeout,
            f"order {order_id} to be {status}",
        )
        return found


@contextlib.contextmanager
def own_data_plane(
    tmp_path: Path, moto: Emulator, monkeypatch: pytest.MonkeyPatch, persist_dir: Path | None = None
) -> Iterator[tuple[Emulator, Deployment, list[LocalService]]]:
    """A ministack of the test's own (to stop and restart it) with the normal stack deployed to it and the session's
    moto, and this process's boto3 pointed at it."""
    with Emulator("ministack", log_path=tmp_path / "ministack.log", persist_dir=persist_dir) as emulator:
        endpoints = Endpoints(emulator.endpoint_url, moto.endpoint_url)
        for key, value in endpoints.env().items():
            monkeypatch.setenv(key, value)
        deployed = deploy("normal", endpoints, overrides=TEST_CONFIG)
        assert deployed.ok, deployed.summary()
        yield emulator, deployed, deployed_services(deployed)


def post(task: Task, path: str, body: Any = ORDER, **kwargs: Any) -> httpx.Response:
    return httpx.post(task.url + path, json=body, timeout=30, **kwargs)


def payments(tasks: list[Task], order_id: str) -> int:
    """How many payments completed for an order, across every worker's log (proof against double payment)."""
    return sum(
        1
        for t in tasks
        if t.role == "worker"
        for e in t.events()
        if e.get("event") == "payment_completed" and e.get("order_id") == order_id
    )


@pytest.fixture
def system(
    deployment: Deployment, services: list[LocalService], ministack: Emulator, aws_env: dict[str, str], tmp_path: Path
) -> Iterator[System]:
    deployment.reapply(DATA_PLANE)  # `aws_env` reset ministack: the same queues, topics, table and alarms again
    running = System(deployment=deployment, aws_env=aws_env, logs=tmp_path, services=services)
    yield running
    for task in running.tasks:
        task.stop(timeout=10)


@contextlib.contextmanager
def module_system(
    deployment: Deployment, services: list[LocalService], ministack: Emulator, logs: Path
) -> Iterator[System]:
    """A System for a whole module, for tests that only send the services requests and read the answers (nothing of
    theirs outlives their request): the tasks they need are started once, a start per test was most of their time.
    Its data plane is fresh when it begins; a `system` test of the module resets it again, under the same names."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        ministack.reset()
        for key, value in deployment.endpoints.env().items():
            monkeypatch.setenv(key, value)
        deployment.reapply(DATA_PLANE)
        shared = System(deployment=deployment, aws_env=dict(os.environ), logs=logs, services=services)
        try:
            yield shared
        finally:
            for task in shared.tasks:
                task.stop(timeout=10)


class StallingProxy:
    """A TCP relay to 127.0.0.1:`port` that can stall: from `stall()` on, every byte either way is held, as by an AWS
    endpoint that stops answering (connections stay open, calls hang until their client gives up)."""

    def __init__(self, port: int) -> None:
        self._target = port
        self._server = socket.create_server((LOOPBACK, 0))
        self.url = f"http://{LOOPBACK}:{self._server.getsockname()[1]}"
        self._stalled = threading.Event()
        self._closed = threading.Event()
        self._held: list[bytes] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def stall(self) -> None:
        self._stalled.set()

    def holds(self, marker: bytes) -> bool:
        """Whether a call carrying `marker` (e.g. its X-Amz-Target) is held."""
        with self._lock:
            return any(marker in chunk for chunk in self._held)

    def close(self) -> None:
        self._closed.set()
        self._server.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection((LOOPBACK, self._target))
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                if self._stalled.is_set():
                    with self._lock:
                        self._held.append(chunk)
                    self._closed.wait()
                    return
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for end in (source, target):
                end.close()


class AnswerDroppingProxy:
    """A TCP relay to 127.0.0.1:`port` that loses the answer to the first request carrying `marker`: the request
    reaches the emulator (which acts on it), its answer is read and thrown away and the connection closed, as when a
    network path drops after AWS did the work. The caller sees a closed connection and retries."""

    def __init__(self, port: int, marker: bytes) -> None:
        self._target = port
        self._marker = marker
        self._server = socket.create_server((LOOPBACK, 0))
        self.url = f"http://{LOOPBACK}:{self._server.getsockname()[1]}"
        self.dropped = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection((LOOPBACK, self._target))
            doomed = threading.Event()  # this connection's next answer is to be lost
            threading.Thread(target=self._requests, args=(client, upstream, doomed), daemon=True).start()
            threading.Thread(target=self._answers, args=(upstream, client, doomed), daemon=True).start()

    def _requests(self, client: socket.socket, upstream: socket.socket, doomed: threading.Event) -> None:
        try:
            while chunk := client.recv(65536):
                if self._marker in chunk:
                    with self._lock:
                        if self.dropped == 0:
                            self.dropped = 1
                            doomed.set()
                upstream.sendall(chunk)
        except OSError:
            pass

    def _answers(self, upstream: socket.socket, client: socket.socket, doomed: threading.Event) -> None:
        try:
            while chunk := upstream.recv(65536):
                if doomed.is_set():  # the emulator has answered, so it acted: lose the answer
                    break
                client.sendall(chunk)
        except OSError:
            pass
        finally:  # shut down first: a close alone sends no FIN while the other thread is in recv()
            for end in (client, upstream):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
