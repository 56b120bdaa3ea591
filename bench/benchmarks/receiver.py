"""Receiver benchmarks: CPU per accepted order and accept latency at the report's 60 orders/s, its capacity, and
its behaviour when offered three times that capacity. The receiver reaches the emulators over HTTPS
(bench.localaws.tls), as a task reaches AWS; the 60/s load is also run on a receiver reaching them over plain HTTP,
so that what TLS costs the receiver is the difference.

Load comes from ops.loadtest (Locust in its own process, open loop). CPU is the receiver process's own accounting
(psutil) across the load, after a short warm-up so that lazy start-up work is not charged to the orders.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from app import contract
from bench.benchmarks.bed import SAMPLE_ORDER, Bed, cpu_seconds, log_time
from bench.localaws.tasks import Task
from ops.loadtest import LoadProfile, LoadResult, percentile, run_load
from planning.report import REPORT_ARRIVAL_RATE

WARM_UP_ORDERS = 50
# Capacity: offered from CAPACITY_FIRST_RATE, doubling until the receiver sheds at least SATURATED_SHED of the
# requests (it cannot take more), at most up to twice the backend's ceiling. Offering far more than needed does not
# find more: on a small machine the load generator then takes the cores the receiver and the emulator need.
CAPACITY_FIRST_RATE = 1200.0
SATURATED_SHED = 0.05
SHED = "503"  # the only 5xx the receiver may answer


def failures(errors: dict[str, int]) -> int:
    """What overload must never produce: timeouts, connection errors, any 5xx but 503."""
    return sum(
        n
        for kind, n in errors.items()
        if kind in ("timeout", "connection_error") or (kind.startswith("5") and kind != SHED)
    )


@dataclass(frozen=True)
class ReceiverLoad:
    offered_rate: float
    accepted_rate: float  # accepted orders per second of the sending window
    accepted: int
    requests: int
    cpu_ms_per_accepted: float
    p50_ms: float
    p95_ms: float
    p99_ms: float  # of accepted requests, as the load generator saw them
    inside_p99_ms: float  # of the same orders' time inside the receiver's handler (its `accepted` log lines)
    shed_share: float  # 503 answers / requests
    failures: int  # timeouts, connection errors and 5xx other than 503
    alive: bool  # the receiver process still runs afterwards
    records_per_call: float  # orders per batched record write during this load (from the receiver's /stats)
    events_per_call: float  # orders per PublishBatch


@dataclass(frozen=True)
class ReceiverBench:
    report_rate: ReceiverLoad  # the report's 60 orders/s
    report_rate_plain_http: ReceiverLoad  # the same, on a receiver whose AWS endpoints are plain HTTP (no TLS)
    capacity: ReceiverLoad  # offered more than it can take (see capacity()): accepted_rate is its capacity
    overload: ReceiverLoad  # offered 3x that capacity
    retry_after: bool  # every 503 of a burst beyond MAX_IN_FLIGHT carries Retry-After


def _profile(rate: float, seconds: float) -> LoadProfile:
    return LoadProfile("benchmark", "async", rate=rate, duration_seconds=seconds, users=1, spawn_rate=1)


def _batching(receiver: Task) -> dict[str, dict[str, float]]:
    stats = httpx.get(receiver.url + contract.STATS_PATH, timeout=10).json()
    return {kind: stats[kind] for kind in ("record_writes", "event_publishes")}


def _per_call(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], kind: str) -> float:
    calls = after[kind]["calls"] - before[kind]["calls"]
    return round((after[kind]["orders"] - before[kind]["orders"]) / calls, 2) if calls else 0.0


def _inside_p99_ms(receiver: Task, since: float, until: float) -> float:
    """p99 of the handler times the receiver logged for the orders it accepted between `since` and `until`: what
    the receiver itself adds, without the load generator's own delays (it shares the machine's cores)."""
    took = sorted(
        1000 * float(e["duration"])
        for e in receiver.events()
        if e.get("event") == "accepted" and since <= log_time(e["ts"]) <= until
    )
    return round(percentile(took, 99), 1)


def _load(receiver: Task, rate: float, seconds: float, results: Path) -> ReceiverLoad:
    batching = _batching(receiver)
    before, since = cpu_seconds(receiver.pid), time.time()
    result: LoadResult = run_load(receiver.url, _profile(rate, seconds), results)
    cpu, until = cpu_seconds(receiver.pid) - before, time.time()
    alive = receiver.process is not None and receiver.process.poll() is None
    batched = _batching(receiver) if alive else batching
    window = result.requests / result.achieved_rate if result.achieved_rate else seconds
    return ReceiverLoad(
        offered_rate=round(rate, 1),
        accepted_rate=round(result.accepted / window, 1),
        accepted=result.accepted,
        requests=result.requests,
        cpu_ms_per_accepted=round(1000 * cpu / result.accepted, 3) if result.accepted else float("nan"),
        p50_ms=result.latency_accepted.p50_ms,
        p95_ms=result.latency_accepted.p95_ms,
        p99_ms=result.latency_accepted.p99_ms,
        inside_p99_ms=_inside_p99_ms(receiver, since, until),
        shed_share=round(result.errors.get(SHED, 0) / result.requests, 4) if result.requests else 0.0,
        failures=failures(result.errors),
        alive=alive,
        records_per_call=_per_call(batching, batched, "record_writes"),
        events_per_call=_per_call(batching, batched, "event_publishes"),
    )


async def _burst(url: str, requests: int) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=requests)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        return await asyncio.gather(
            *(client.post(contract.ASYNC_ORDERS_PATH, json=SAMPLE_ORDER) for _ in range(requests))
        )


def retry_after_on_shed(receiver: Task, max_in_flight: int) -> bool:
    """Fire 3 x MAX_IN_FLIGHT requests at once: some must be shed, and every 503 must say when to retry."""
    responses = asyncio.run(_burst(receiver.url, 3 * max_in_flight))
    shed = [r for r in responses if r.status_code == 503]
    return bool(shed) and all(r.headers.get("retry-after") for r in shed)


def capacity(receiver: Task, seconds: float, ceiling_rate: float, logs: Path) -> ReceiverLoad:
    """The first load, doubling from CAPACITY_FIRST_RATE, that the receiver could not take whole (it shed at least
    SATURATED_SHED), or the last one offered (twice the backend's ceiling)."""
    rate = min(CAPACITY_FIRST_RATE, 2 * ceiling_rate)
    while True:
        load = _load(receiver, rate, seconds, logs / f"load-capacity-{rate:.0f}")
        if load.shed_share >= SATURATED_SHED or rate >= 2 * ceiling_rate:
            return load
        rate = min(2 * rate, 2 * ceiling_rate)


def _at_report_rate(receiver: Task, seconds: float, results: Path) -> ReceiverLoad:
    """The warm-up orders, then `seconds` at the report's rate."""
    asyncio.run(_burst(receiver.url, WARM_UP_ORDERS))
    return _load(receiver, REPORT_ARRIVAL_RATE, seconds, results)


def run(bed: Bed, *, seconds: float, ceiling_rate: float) -> ReceiverBench:
    """`seconds` at the report's rate over plain HTTP, then as much over TLS on a receiver of its own, which then
    takes the capacity and overload runs (half that each). The plain run comes first, on the fresh emulator, so
    that the two 60/s runs find it alike (the capacity runs leave it full)."""
    bed.fresh()
    max_in_flight = contract.SERVICE_DEFAULTS.max_in_flight
    with bed.service("receiver", "receiver-plain-http", https=False) as plain:
        report_rate_plain_http = _at_report_rate(plain, seconds, bed.logs / "load-60-plain-http")
    with bed.service("receiver", "receiver") as receiver:
        report_rate = _at_report_rate(receiver, seconds, bed.logs / "load-60")
        capacity_load = capacity(receiver, seconds / 2, ceiling_rate, bed.logs)
        overload = _load(receiver, 3 * capacity_load.accepted_rate, seconds / 2, bed.logs / "load-overload")
        retry_after = retry_after_on_shed(receiver, max_in_flight)
    return ReceiverBench(
        report_rate=report_rate,
        report_rate_plain_http=report_rate_plain_http,
        capacity=capacity_load,
        overload=overload,
        retry_after=retry_after,
    )
