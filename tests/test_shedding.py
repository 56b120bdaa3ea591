"""The receiver's load-shedding guard: its adaptive cap (Little's law while the CPU is the bottleneck, MAX_IN_FLIGHT
otherwise) and its 503 + Retry-After ahead of routing. Its effect under a real overload: `python -m
bench.benchmarks`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app import contract
from app.shedding import MIN_LIMIT, CpuWindow, Shedder, ShedPolicy

POLICY = ShedPolicy(contract.ASYNC_ORDERS_PATH, max_in_flight=64, cpu_saturated=0.8)


@dataclass
class Counters:
    in_flight: int = 0
    shed: int = 0


class FixedCpu(CpuWindow):
    def __init__(self, cores: float) -> None:
        super().__init__()
        self.fixed = cores

    def cores(self) -> float:
        return self.fixed


async def accept(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True}, status_code=202)


def guard(cores: float, counters: Counters) -> Shedder:
    app = Starlette(
        routes=[
            Route(contract.ASYNC_ORDERS_PATH, accept, methods=["POST"]),
            Route(contract.HEALTH_PATH, accept, methods=["GET"]),
        ]
    )
    shedder = Shedder(app, policy=POLICY, counters=counters)
    shedder.cpu = FixedCpu(cores)
    return shedder


def test_saturated_and_slow_caps_in_flight_to_meet_the_latency_target() -> None:
    counters = Counters(in_flight=40)
    shedder = guard(0.95, counters)
    for _ in range(10):
        shedder.observe(0.1)  # 2x the 50 ms target
    shedder.adapt()
    assert shedder.limit == 40 * POLICY.latency_target_seconds / 0.1


def test_the_cap_never_falls_below_its_floor() -> None:
    counters = Counters(in_flight=40)
    shedder = guard(0.95, counters)
    shedder.observe(2.0)  # 40x the target would ask for a cap of 1
    shedder.adapt()
    assert shedder.limit == MIN_LIMIT


def test_a_slow_backend_without_cpu_saturation_keeps_the_full_cap() -> None:
    counters = Counters(in_flight=60)
    shedder = guard(0.3, counters)  # a stall: requests wait on the backend, the CPU idles
    shedder.observe(0.8)
    shedder.adapt()
    assert shedder.limit == POLICY.max_in_flight


def test_the_cap_grows_back_once_the_cpu_has_room() -> None:
    counters = Counters(in_flight=40)
    shedder = guard(0.95, counters)
    shedder.observe(1.0)
    shedder.adapt()
    low = shedder.limit
    shedder.cpu = FixedCpu(0.3)
    counters.in_flight = 0
    shedder.adapt()
    assert low < shedder.limit < POLICY.max_in_flight
    for _ in range(100):
        shedder.adapt()
    assert shedder.limit == POLICY.max_in_flight


def test_beyond_the_cap_orders_get_503_with_retry_after_and_health_never_does() -> None:
    counters = Counters(in_flight=64)  # the cap is full

    async def requests() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=guard(0.3, counters))
        async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
            shed = await client.post(contract.ASYNC_ORDERS_PATH, json={})
            health = await client.get(contract.HEALTH_PATH)
            counters.in_flight = 0
            return [shed, health, await client.post(contract.ASYNC_ORDERS_PATH, json={})]

    shed, health, accepted = asyncio.run(requests())
    assert shed.status_code == 503 and shed.headers["Retry-After"] == "1" and counters.shed == 1
    assert health.status_code == 202  # routed as usual, never shed
    assert accepted.status_code == 202 and counters.in_flight == 0  # counted while in the handler only
