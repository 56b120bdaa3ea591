"""Tasks get what ECS gives them: no keys, their task role's expiring credentials from a credentials endpoint, and a
receiver that keeps serving while that endpoint is slow, failing or down at start."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app import contract
from bench.localaws.credentials import ENV_AUTHORIZATION_TOKEN, ENV_FULL_URI, PATH_PREFIX, CredentialsEndpoint
from bench.localaws.ecs import LocalService, service_of
from bench.localaws.tasks import Task
from tests.helpers import ORDER, System, system, wait_for  # noqa: F401

KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@pytest.fixture
def endpoint() -> Iterator[CredentialsEndpoint]:
    """An endpoint of the test's own, with credentials that are due for a refresh every second."""
    served = CredentialsEndpoint(lifetime_seconds=1.0)
    yield served
    served.close()


def start(system: System, role: str, endpoint: CredentialsEndpoint, **settings: str) -> Task:
    task = service_of(system.services, role).spec.task(system.logs / f"{role}.log", settings, credentials=endpoint)
    system.tasks.append(task)
    return task.start()


def task_id(task: Task) -> str:
    return task.env[ENV_FULL_URI].rpartition(PATH_PREFIX)[2]


def test_a_task_has_no_keys_only_its_role_at_a_credentials_endpoint(
    services: list[LocalService], tmp_path: Path, endpoint: CredentialsEndpoint
) -> None:
    with_role = set()
    for service in services:
        spec = service.spec
        env = spec.task(tmp_path / f"{spec.role}.log", credentials=endpoint).args.env
        assert not set(KEYS) & set(env), f"{spec.role}: static keys in the task's environment"
        if not spec.task_role_arn:  # no task role: no credentials at all, as on ECS
            assert ENV_FULL_URI not in env and ENV_AUTHORIZATION_TOKEN not in env
            continue
        with_role.add(spec.role)
        path = env[ENV_FULL_URI].removeprefix(endpoint.url)
        assert path.startswith(PATH_PREFIX)
        code, answer = endpoint.answer(path, env[ENV_AUTHORIZATION_TOKEN])
        assert code == 200 and answer["RoleArn"] == spec.task_role_arn, answer
        assert answer["AccessKeyId"] and answer["SecretAccessKey"] and answer["Token"]
        assert endpoint.answer(path, "not-the-token")[0] == 403  # another task's token, or none, gets nothing
    assert {"receiver", "worker"} <= with_role


def test_services_refresh_their_expiring_credentials_and_keep_working(
    system: System, endpoint: CredentialsEndpoint
) -> None:
    receiver = start(system, "receiver", endpoint)
    worker = start(system, "worker", endpoint)
    ids: list[str] = []

    def refreshed_while_ordering() -> bool:  # an SDK fetches credentials again when a call finds them due
        answer = httpx.post(receiver.url + contract.ASYNC_ORDERS_PATH, json=ORDER, timeout=10)
        assert answer.status_code == 202, answer.text
        ids.append(answer.json()["order_id"])
        return min(endpoint.served[task_id(receiver)], endpoint.served[task_id(worker)]) >= 4

    wait_for(refreshed_while_ordering, 30, "both tasks to fetch their credentials four times")
    for order_id in ids:
        system.wait_status(order_id, contract.OrderStatus.COMPLETED)


def test_a_slow_or_failing_credentials_endpoint_leaves_health_and_intake_unaffected(
    system: System, endpoint: CredentialsEndpoint
) -> None:
    receiver = start(system, "receiver", endpoint)
    with httpx.Client(base_url=receiver.url, timeout=2.5) as client, ThreadPoolExecutor(4) as pool:

        def ask(n: int) -> float:
            started = time.monotonic()
            answer = client.get(contract.HEALTH_PATH) if n % 2 else client.post(contract.ASYNC_ORDERS_PATH, json=ORDER)
            assert answer.status_code in (200, 202), answer.text
            return time.monotonic() - started

        # Orders until every client of the receiver holds credentials and has refreshed them.
        wait_for(lambda: list(pool.map(ask, range(2))) and endpoint.served[task_id(receiver)] >= 6, 15, "refreshes")

        # Slower than botocore's 2 s timeout, three tries: a refresh made on the event loop would hold every request
        # ~9 s. Then failing outright. Requests keep signing with the credentials they have, which are still good.
        endpoint.delay_seconds = 3.0
        slowest = 0.0
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline:  # through a whole failed refresh
            slowest = max([slowest, *pool.map(ask, range(4))])
        endpoint.failing = True
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            slowest = max([slowest, *pool.map(ask, range(4))])
        assert slowest < 2.5

        healed = time.monotonic()
        endpoint.delay_seconds, endpoint.failing = 0.0, False

        def refreshed_after_healing() -> bool:
            list(pool.map(ask, range(2)))
            return any(f.task_id == task_id(receiver) and f.served and f.arrived > healed for f in endpoint.fetches)

        wait_for(refreshed_after_healing, 20, "the receiver to refresh once it can")


def test_credentials_missing_at_the_first_call_are_looked_for_again(
    system: System, endpoint: CredentialsEndpoint
) -> None:
    receiver = start(system, "receiver", endpoint)  # its thread-pool clients got credentials at start
    endpoint.failing = True  # the event-loop clients look for theirs at their first call
    refused = httpx.post(receiver.url + contract.ASYNC_ORDERS_PATH, json=ORDER, timeout=15)
    assert refused.status_code == 503, refused.text  # no credentials: nothing accepted, and the client may retry

    endpoint.failing = False
    accepted = wait_for(
        lambda: (
            (a := httpx.post(receiver.url + contract.ASYNC_ORDERS_PATH, json=ORDER, timeout=15)).status_code == 202
            and a
        ),
        20,
        "an order accepted once the credentials endpoint answers",
    )
    system.wait_status(accepted.json()["order_id"], contract.OrderStatus.PENDING)


def test_a_task_without_credentials_at_start_exits_saying_so(system: System, endpoint: CredentialsEndpoint) -> None:
    endpoint.failing = True
    task = service_of(system.services, "worker").spec.task(system.logs / "worker.log", credentials=endpoint)
    system.tasks.append(task)
    task.launch()
    assert wait_for(lambda: not task.alive(), 30, "the worker to exit")
    said = (system.logs / "worker.log").read_text()
    assert "error: no AWS credentials for the worker:" in said and "Traceback" not in said, said
