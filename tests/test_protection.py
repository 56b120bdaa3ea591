"""Scale-in never kills a payment: the worker's task protection against the local ECS agent endpoint."""

from __future__ import annotations

import asyncio
import threading

from app.protection import IDLE_GRACE_SECONDS, TaskProtection, expiry_minutes
from bench.localaws.agent import Agent
from bench.localaws.emulators import LOOPBACK, free_port


def test_expiry_outlives_one_visibility_timeout_in_whole_minutes() -> None:
    assert [expiry_minutes(s) for s in (2, 30, 60, 61, 300)] == [1, 1, 1, 2, 5]


def test_protection_follows_busy_and_idle_with_one_call_per_transition() -> None:
    agent = Agent()
    busy = threading.Event()
    protection = TaskProtection(agent.uri_for("worker-1"), 1, busy=busy.is_set)

    async def scenario() -> list[tuple[bool, int]]:
        stopping = asyncio.Event()
        loop = asyncio.create_task(protection.run(stopping))
        seen = []
        await asyncio.sleep(0.5)
        seen.append((agent.protected("worker-1"), agent.calls.get("worker-1", 0)))  # idle: nothing called
        busy.set()
        await asyncio.sleep(0.6)
        seen.append((agent.protected("worker-1"), agent.calls["worker-1"]))  # busy: protected, one call
        for _ in range(4):  # short idle gaps (under the grace) make no calls
            busy.clear()
            await asyncio.sleep(0.3)
            busy.set()
            await asyncio.sleep(0.3)
        seen.append((agent.protected("worker-1"), agent.calls["worker-1"]))
        busy.clear()
        await asyncio.sleep(IDLE_GRACE_SECONDS + 0.6)
        seen.append((agent.protected("worker-1"), agent.calls["worker-1"]))  # idle past the grace: unprotected
        stopping.set()
        await loop
        return seen

    try:
        assert asyncio.run(scenario()) == [(False, 0), (True, 1), (True, 1), (False, 2)]
    finally:
        agent.close()


def test_a_failing_endpoint_is_logged_and_not_hammered() -> None:
    protection = TaskProtection(f"http://{LOOPBACK}:{free_port()}/api/worker-1", 1, busy=lambda: True)

    async def scenario() -> None:
        stopping = asyncio.Event()
        loop = asyncio.create_task(protection.run(stopping))
        await asyncio.sleep(1.0)
        stopping.set()
        await loop

    asyncio.run(scenario())
    assert protection.state.failures == 1 and not protection.state.protected  # one try, then the retry delay
