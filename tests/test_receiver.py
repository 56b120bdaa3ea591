"""The async receiver (report Part III) as a real process against ministack: 202 then pending -> completed, order
status with queue estimate, 503 + Retry-After on backend failure (and no pending record left) and on overload."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app import aws, contract
from local_runtime.emulators import Emulator
from local_runtime.resources import DATA_PLANE
from tests.helpers import ORDER, System, own_data_plane, payments, post, system  # noqa: F401


def test_async_order_goes_pending_then_completed(system: System) -> None:  # noqa: F811
    receiver = system.start("receiver")
    accepted = post(receiver, "/orders/async")
    assert accepted.status_code == 202
    body = accepted.json()
    assert body["status"] == "pending" and body["message"] and body["duration"] < 1
    order_id = body["order_id"]
    pending = httpx.get(f"{receiver.url}/orders/{order_id}").json()
    assert pending["status"] == "pending"
    assert pending["queue_position"] >= 1 and pending["estimated_completion_seconds"] > 0
    worker = system.start("worker", WORKER_COUNT="5")
    system.wait_status(order_id, "completed")
    done = httpx.get(f"{receiver.url}/orders/{order_id}").json()
    assert done["status"] == "completed" and "queue_position" not in done
    assert payments([worker], order_id) == 1
    assert system.queue_counts() == (0, 0)


def test_unknown_order_is_404(system: System) -> None:  # noqa: F811
    receiver = system.start("receiver")
    assert httpx.get(f"{receiver.url}/orders/no-such-order").status_code == 404


def test_declined_payment_ends_failed_with_reason_and_is_not_retried(system: System) -> None:  # noqa: F811
    receiver = system.start("receiver")
    system.start("worker", PAYMENT_DECLINE_RATE="1", PAYMENT_SECONDS="0.05")
    order_id = post(receiver, "/orders/async").json()["order_id"]
    failed = system.wait_status(order_id, "failed")
    assert failed["reason"]
    assert httpx.get(f"{receiver.url}/orders/{order_id}").json()["reason"] == failed["reason"]
    time.sleep(0.3)
    assert system.queue_counts() == (0, 0)


def test_failed_publish_answers_503_and_leaves_no_pending_record(system: System) -> None:  # noqa: F811
    receiver = system.start("receiver")
    aws.client("sns").delete_topic(TopicArn=system.outputs[contract.OUTPUT_TOPIC_ARN])
    response = post(receiver, "/orders/async")
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert system.orders() == []


def test_emulator_stopped_gives_503_and_the_receiver_recovers(tmp_path: Path, moto: Emulator,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with own_data_plane(tmp_path, moto, monkeypatch) as (emulator, deployed, services):
        receiver_service = next(s for s in services if s.spec.role == "receiver")
        with receiver_service.spec.task(tmp_path / "receiver.log") as receiver:
            emulator.stop()
            started = time.monotonic()
            response = post(receiver, "/orders/async")
            assert response.status_code == 503 and response.headers["Retry-After"] == "1"
            assert time.monotonic() - started < 5
            assert httpx.get(receiver.url + "/health").status_code == 200
            emulator.start()  # same port, empty state: the same resources again
            deployed.reapply(DATA_PLANE)
            assert post(receiver, "/orders/async").status_code == 202
            table = deployed.outputs[contract.OUTPUT_ORDERS_TABLE]
            assert len(aws.client("dynamodb").scan(TableName=table)["Items"]) == 1


def test_too_many_in_flight_sheds_with_503_at_once(system: System, ministack: Emulator) -> None:  # noqa: F811
    receiver = system.start("receiver", MAX_IN_FLIGHT="1")
    assert ministack.process is not None
    with ThreadPoolExecutor(1) as pool:
        os.kill(ministack.process.pid, signal.SIGSTOP)  # the backend stalls: the first order holds the only slot
        try:
            held = pool.submit(post, receiver, "/orders/async")
            time.sleep(0.3)  # (not /stats: it reads the queue depth from the stalled emulator)
            started = time.monotonic()
            response = post(receiver, "/orders/async")
            assert response.status_code == 503 and response.headers["Retry-After"] == "1"
            assert time.monotonic() - started < 0.5
        finally:
            os.kill(ministack.process.pid, signal.SIGCONT)
        assert held.result().status_code in (202, 503)
    assert httpx.get(receiver.url + "/stats").json()["shed"] == 1


def test_health_and_schema(system: System) -> None:  # noqa: F811
    receiver = system.start("receiver", WORKER_COUNT="7")
    assert httpx.get(receiver.url + "/health").json() == {"status": "healthy", "mode": "async-enabled",
                                                          "num_workers": 7}
    paths = httpx.get(receiver.url + "/openapi.json").json()["paths"]
    assert {"/orders/async", "/orders/{order_id}", "/health", "/stats"} <= set(paths)
