"""ECS task scale-in protection for the worker: a task that holds orders is not chosen when the service scales in.

Scale-in picks tasks without protection; so the worker protects its task when it goes from idle to busy (it holds at
least one order: paying it, or waiting for a slot) and unprotects it when it has been idle for IDLE_GRACE_SECONDS.
The agent endpoint (`$ECS_AGENT_URI/task-protection/v1/state`, answered with the task role's credentials, hence
`ecs:UpdateTaskProtection` in the worker's task role) is rate-limited, so it is called on those transitions only,
plus a renewal while the task stays busy: protection expires after `expires_minutes` (bounded by the visibility
timeout, so a task that hangs with protection on is released about when its orders would be redelivered anyway).
Failed calls are logged, never fatal: without protection the task still drains on SIGTERM.

Outside ECS (no ECS_AGENT_URI) protection is off and nothing is called.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from app import logs

STATE_PATH = "/task-protection/v1/state"
IDLE_GRACE_SECONDS = 2.0  # busy again within this, and no call is made: the endpoint is rate-limited
CHECK_SECONDS = 0.25
TIMEOUT_SECONDS = 3.0
RETRY_SECONDS = 10.0  # after a failed call, the next try waits this long


def expiry_minutes(visibility_timeout_seconds: float) -> int:
    """Protection outlives one visibility timeout, at the agent's granularity of whole minutes (at least 1)."""
    return max(1, math.ceil(visibility_timeout_seconds / 60))


@dataclass
class ProtectionState:
    protected: bool = False
    since: float = 0.0  # monotonic time of the last successful call
    retry_at: float = 0.0  # after a failure, no call before this (monotonic)
    calls: int = 0
    failures: int = 0


class TaskProtection:
    """Follows `busy()` and sets the task's protection on transitions (and renews it while busy)."""

    def __init__(self, agent_uri: str, expires_minutes: int, busy: Callable[[], bool]) -> None:
        self.url = agent_uri.rstrip("/") + STATE_PATH
        self.expires_minutes = expires_minutes
        self.busy = busy
        self.state = ProtectionState()

    async def run(self, stopping: asyncio.Event) -> None:
        """Until `stopping`; then unprotects (the task is going away, its work is drained or released)."""
        idle_since: float | None = None
        while not stopping.is_set():
            now = time.monotonic()
            if now < self.state.retry_at:
                pass
            elif self.busy():
                idle_since = None
                renew = self.state.protected and now - self.state.since > self.expires_minutes * 60 / 2
                if not self.state.protected or renew:
                    await self._set(True)
            elif self.state.protected:
                idle_since = idle_since if idle_since is not None else now
                if now - idle_since >= IDLE_GRACE_SECONDS:
                    await self._set(False)
            try:
                await asyncio.wait_for(stopping.wait(), CHECK_SECONDS)
            except TimeoutError:
                pass
        if self.state.protected:
            await self._set(False)

    async def _set(self, enabled: bool) -> None:
        body: dict[str, object] = {"ProtectionEnabled": enabled} | (
            {"ExpiresInMinutes": self.expires_minutes} if enabled else {}
        )
        try:
            answer = await asyncio.get_running_loop().run_in_executor(None, self._put, body)
        except (OSError, ValueError) as error:  # urllib's errors are OSErrors; a non-JSON answer a ValueError
            self._failed(enabled, str(error))
            return
        if answer.get("failure"):
            self._failed(enabled, str(answer["failure"]))
            return
        self.state.protected, self.state.since = enabled, time.monotonic()
        self.state.calls += 1
        logs.event(
            "protection",
            f"[WORKER-1] Scale-in protection {'on' if enabled else 'off'}"
            + (f" for {self.expires_minutes} min" if enabled else ""),
            protected=enabled,
        )

    def _put(self, body: dict[str, object]) -> dict[str, object]:
        request = urllib.request.Request(
            self.url, data=json.dumps(body).encode(), method="PUT", headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            answer = json.loads(response.read() or b"{}")
        return answer if isinstance(answer, dict) else {}

    def _failed(self, enabled: bool, reason: str) -> None:
        self.state.failures += 1
        self.state.retry_at = time.monotonic() + RETRY_SECONDS  # a failing endpoint is not hammered
        logs.event(
            "protection_failed",
            f"[WORKER-1] Could not turn scale-in protection {'on' if enabled else 'off'}: {reason}",
            level="warning",
            protected=enabled,
        )
