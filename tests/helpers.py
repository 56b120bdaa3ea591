"""Shared test helpers: a bootstrapped emulator plus the real services as processes (`system` fixture).

Use: `from tests.helpers import system  # noqa: F401` in a test module, then `system.start("receiver", ...)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import aws, contract
from ops.bootstrap import BootstrapArgs, bootstrap
from ops.services import Service, ServiceArgs, service_env

ORDER = {"customer_id": 1234, "items": [{"product_id": "PROD-001", "quantity": 2, "price": 49.99}]}
FAST = {contract.ENV_PAYMENT_SECONDS: "0.3", contract.ENV_PAYMENT_DECLINE_RATE: "0"}


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class System:
    """The bootstrapped emulator, and the services started for one test (stopped at teardown)."""

    aws_env: dict[str, str]
    outputs: dict[str, Any]
    logs: Path
    services: list[Service] = field(default_factory=list)

    def start(self, role: str, **settings: str) -> Service:
        name = f"{role}-{sum(s.role == role for s in self.services)}"
        env = service_env(self.aws_env, self.outputs, {**FAST, **settings})
        service = Service(ServiceArgs(role, env, self.logs / f"{name}.log")).start()
        self.services.append(service)
        return service

    def order(self, order_id: str) -> dict[str, Any] | None:
        item = aws.client("dynamodb").get_item(TableName=self.outputs[contract.OUTPUT_ORDERS_TABLE],
                                               Key={contract.ORDER_KEY: {"S": order_id}}, ConsistentRead=True)
        return {k: v.get("S", v.get("N")) for k, v in item["Item"].items()} if "Item" in item else None

    def orders(self) -> list[dict[str, Any]]:
        items = aws.client("dynamodb").scan(TableName=self.outputs[contract.OUTPUT_ORDERS_TABLE])["Items"]
        return [{k: v.get("S", v.get("N")) for k, v in item.items()} for item in items]

    def queue_counts(self, output: str = contract.OUTPUT_QUEUE_URL) -> tuple[int, int]:
        """(visible, in flight) messages of the order queue (or of the queue named by another output)."""
        attributes = aws.client("sqs").get_queue_attributes(
            QueueUrl=self.outputs[output],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def wait_status(self, order_id: str, status: str, timeout: float = 15.0) -> dict[str, Any]:
        return wait_for(lambda: (o := self.order(order_id)) and o["status"] == status and o, timeout,
                        f"order {order_id} to be {status}")


def post(service: Service, path: str, body: Any = ORDER, **kwargs: Any) -> httpx.Response:
    return httpx.post(service.url + path, json=body, timeout=30, **kwargs)


def payments(services: list[Service], order_id: str) -> int:
    """How many payments completed for an order, across every worker's log (proof against double payment)."""
    return sum(1 for s in services if s.role == "worker" for e in s.events()
               if e.get("event") == "payment_completed" and e.get("order_id") == order_id)


@pytest.fixture
def system(aws_env: dict[str, str], tmp_path: Path) -> Iterator[System]:
    outputs = bootstrap(BootstrapArgs(prefix="test"))
    running = System(aws_env=aws_env, outputs=outputs, logs=tmp_path)
    yield running
    for service in running.services:
        service.stop(timeout=10)
