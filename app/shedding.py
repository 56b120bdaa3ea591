"""Load shedding that bounds how long accepted orders wait: a pure-ASGI guard ahead of the receiver's routing.

A fixed cap on requests in flight alone does not: when the process itself is the bottleneck, every request in
flight is slowed by all the others (threads taking turns on the GIL, or on a CPU quota), so 64 in flight at ~250
orders/s made accepted orders wait ~0.2-0.4 s. A stalled backend, on the other hand, slows requests without using
CPU, and they should still be accepted (the lab's stalls last well under a second). So the cap adapts: while the
process uses nearly all the CPU it can get (one core, for the GIL, or its cgroup quota) and requests take longer
than the target, the cap becomes what Little's law says keeps them at the target (in flight x target / latency);
while they are faster it probes one higher; without CPU saturation it is MAX_IN_FLIGHT, the backstop for a stalled
backend. Beyond the cap a new order gets 503 + Retry-After at once (no routing, no body read).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send

from app.task_limits import task_cpu_limit
from app.web import error_response

TICK_SECONDS = 0.05
WINDOW_SECONDS = 0.25
CPU_SATURATED_SHARE = 0.8  # of the CPU the process can get (GIL hand-overs keep it from ever reaching 1)
LIMIT_GROWTH = 1.1  # per tick while orders are fast or the CPU has room: from MIN_LIMIT to 64 in ~1.5 s
LATENCY_TARGET_SECONDS = 0.05  # mean time in the receiver of the orders it takes, while it is saturated
# The floor of the cap, by Little's law: at the receiver's capacity (~300 orders/s on one core) 16 in flight means
# ~50 ms each, the latency target, so shedding below 16 cannot help accepted orders; it only turned a short stall at
# sale rates (120 orders/s in the lab) into 503s (the quick lab once shed 1 % at 200 workers with a floor of 4).
MIN_LIMIT = 16
CGROUP_V2_MAX = Path("/sys/fs/cgroup/cpu.max")  # "25000 100000": a quarter of a core (a 256-unit ECS task)
CGROUP_V1 = Path("/sys/fs/cgroup/cpu")


class InFlightCounters(Protocol):
    in_flight: int
    shed: int


def cpu_budget() -> float:
    """Cores this process can use: one (the GIL), or less under the ECS task's CPU limit or a cgroup CPU quota."""
    task_limit = task_cpu_limit()
    if task_limit is not None:
        return min(1.0, task_limit)
    try:
        quota, period = CGROUP_V2_MAX.read_text().split()[:2]
    except (OSError, ValueError):
        try:
            quota = (CGROUP_V1 / "cpu.cfs_quota_us").read_text().strip()
            period = (CGROUP_V1 / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return 1.0
    if quota in ("max", "-1") or not period.isdigit() or int(period) == 0:
        return 1.0
    return min(1.0, int(quota) / int(period))


@dataclass(frozen=True)
class ShedPolicy:
    path: str  # only POST to this path is ever shed (health checks and status reads never are)
    max_in_flight: int
    cpu_saturated: float  # cores: above this over the window, the process is the bottleneck
    latency_target_seconds: float = LATENCY_TARGET_SECONDS


class CpuWindow:
    """The process's CPU use (all threads) over the last WINDOW_SECONDS, in cores."""

    def __init__(self) -> None:
        self._samples: deque[tuple[float, float]] = deque([(time.monotonic(), time.process_time())])

    async def tick(self) -> None:
        await asyncio.sleep(TICK_SECONDS)
        now = time.monotonic()
        self._samples.append((now, time.process_time()))
        while len(self._samples) > 2 and self._samples[1][0] <= now - WINDOW_SECONDS:
            self._samples.popleft()

    def cores(self) -> float:
        (wall0, cpu0), (wall1, cpu1) = self._samples[0], self._samples[-1]
        return (cpu1 - cpu0) / (wall1 - wall0) if wall1 > wall0 else 0.0


class Shedder:
    """Answers 503 + Retry-After to new orders beyond the adaptive cap; `watch()` adapts it every TICK_SECONDS."""

    def __init__(self, app: ASGIApp, *, policy: ShedPolicy, counters: InFlightCounters) -> None:
        self.app = app
        self.policy = policy
        self.counters = counters
        self.cpu = CpuWindow()
        self.limit = float(policy.max_in_flight)
        self._took = 0.0  # seconds spent in the receiver by the orders finished this tick
        self._finished = 0
        self._shed = error_response(503, "too many orders in flight, retry shortly", retry_after=True)

    async def watch(self) -> None:
        while True:
            await self.cpu.tick()
            self.adapt()

    def observe(self, seconds: float) -> None:
        """An order spent `seconds` in the receiver."""
        self._took += seconds
        self._finished += 1

    def adapt(self) -> None:
        """Once a tick: Little's law while saturated and slow, else grow back towards MAX_IN_FLIGHT."""
        policy, in_flight, finished = self.policy, self.counters.in_flight, self._finished
        latency = self._took / finished if finished else 0.0
        self._took, self._finished = 0.0, 0
        if self.cpu.cores() > policy.cpu_saturated and latency > policy.latency_target_seconds:
            self.limit = max(MIN_LIMIT, min(self.limit, in_flight * policy.latency_target_seconds / latency))
        elif finished or in_flight == 0:
            self.limit = min(float(policy.max_in_flight), self.limit * LIMIT_GROWTH)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.policy.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        counters = self.counters
        if counters.in_flight >= self.limit:
            counters.shed += 1
            await self._shed(scope, receive, send)
            return
        started = time.monotonic()
        counters.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            counters.in_flight -= 1
            self.observe(time.monotonic() - started)
