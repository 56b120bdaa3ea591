"""The local stand-in for the ECS agent's task-protection endpoint (`$ECS_AGENT_URI/task-protection/v1/state`).

Each local task gets its own ECS_AGENT_URI (`http://127.0.0.1:PORT/api/<task id>`), as ECS gives each task one; the
local ECS asks `protected(task_id)` before it scales a service in, so a task that protected itself is stopped only
once it unprotects or its protection expires, as ECS does. The answers have the agent's shape: `{"protection":
{"ProtectionEnabled": ..., "ExpirationDate": ..., "TaskArn": ...}}`, or `{"failure": {...}}` for a bad request.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any

from bench.localaws.emulators import LOOPBACK
from bench.localaws.jsonhttp import JsonHandler

STATE_SUFFIX = "/task-protection/v1/state"
MAX_EXPIRES_MINUTES = 2880  # the agent's maximum (48 h)
DEFAULT_EXPIRES_MINUTES = 120  # the agent's default


class Agent:
    """Serves every local task's protection state; `calls` counts the PUTs, per task (the endpoint is rate-limited on
    ECS, so callers should make few)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}  # task id -> monotonic expiry of its protection
        self.calls: dict[str, int] = {}
        agent = self

        class Handler(JsonHandler):
            def do_PUT(self) -> None:  # noqa: N802 (http.server's name)
                task_id = agent._task_id(self.path)
                try:
                    body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                    enabled = bool(body["ProtectionEnabled"])
                    minutes = int(body.get("ExpiresInMinutes", DEFAULT_EXPIRES_MINUTES))
                    if not 1 <= minutes <= MAX_EXPIRES_MINUTES:
                        raise ValueError(f"ExpiresInMinutes must be 1..{MAX_EXPIRES_MINUTES}")
                except (KeyError, TypeError, ValueError) as error:
                    self.answer(400, {"failure": {"Arn": task_id, "Reason": "InvalidParameter", "Detail": str(error)}})
                    return
                if task_id is None:
                    self.answer(404, {"failure": {"Reason": "TASK_NOT_FOUND"}})
                    return
                self.answer(200, {"protection": agent.set(task_id, enabled, minutes)})

            def do_GET(self) -> None:  # noqa: N802
                task_id = agent._task_id(self.path)
                if task_id is None:
                    self.answer(404, {"failure": {"Reason": "TASK_NOT_FOUND"}})
                    return
                self.answer(200, {"protection": agent.describe(task_id)})

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-ecs-agent", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def uri_for(self, task_id: str) -> str:
        """The task's ECS_AGENT_URI."""
        return f"{self.url}/api/{task_id}"

    @staticmethod
    def _task_id(path: str) -> str | None:
        prefix, _, rest = path.partition("/api/")
        task_id, _, suffix = rest.partition("/")
        return task_id if not prefix and task_id and "/" + suffix == STATE_SUFFIX else None

    def set(self, task_id: str, enabled: bool, minutes: int) -> dict[str, Any]:
        with self._lock:
            self.calls[task_id] = self.calls.get(task_id, 0) + 1
            if enabled:
                self._until[task_id] = time.monotonic() + minutes * 60
            else:
                self._until.pop(task_id, None)
        return self.describe(task_id)

    def protected(self, task_id: str) -> bool:
        with self._lock:
            return self._until.get(task_id, 0.0) > time.monotonic()

    def describe(self, task_id: str) -> dict[str, Any]:
        with self._lock:
            left = self._until.get(task_id, 0.0) - time.monotonic()
        expires = (datetime.now(UTC) + timedelta(seconds=left)).isoformat() if left > 0 else None
        return {"ProtectionEnabled": left > 0, "ExpirationDate": expires, "TaskArn": task_id}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
