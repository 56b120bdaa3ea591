"""`python -m app.healthcheck`: the container health check, one command for every role.

Which check a role gets is its `health_check` in the role registry (app.roles.ROLES): HTTP, GET /health on the
local port answers 200; HEARTBEAT, the heartbeat file the role touches every few seconds while it works is fresh.
Exit 0 healthy, 1 not (with one line saying why). The local ECS calls `check` with each task's environment, so a local
task is healthy exactly when its container would be.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from app import contract, roles

MAX_HEARTBEAT_AGE_SECONDS = 30.0


@dataclass(frozen=True)
class HealthCheck:
    """The container health check: this module as a command, and how often ECS runs it. ECS runs the task
    definition's (components.fargate renders this) and ignores the image's HEALTHCHECK, which `docker run` uses:
    app/Dockerfile says `dockerfile_line()` word for word (tests/test_image.py)."""

    command: tuple[str, ...] = ("python", "-m", "app.healthcheck")
    interval_seconds: int = 30
    timeout_seconds: int = 5
    start_period_seconds: int = 15
    retries: int = 3

    def dockerfile_line(self) -> str:
        return (
            f"HEALTHCHECK --interval={self.interval_seconds}s --timeout={self.timeout_seconds}s "
            f"--start-period={self.start_period_seconds}s --retries={self.retries} CMD {json.dumps(self.command)}"
        )


HEALTH_CHECK: Final = HealthCheck()


def check(env: Mapping[str, str] = os.environ, timeout: float = 3.0) -> str | None:
    """None when the task whose environment is `env` is healthy, else the reason."""
    try:
        role = roles.role(env.get(contract.ENV_ROLE, ""))
    except roles.UnknownRole as e:
        return str(e)
    if role.health_check is roles.HealthCheck.HEARTBEAT:
        path = Path(env.get(contract.ENV_HEARTBEAT_FILE) or contract.SERVICE_DEFAULTS.heartbeat_file)
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            return f"no heartbeat file {path}"
        return None if age <= MAX_HEARTBEAT_AGE_SECONDS else f"heartbeat {age:.0f}s old"
    port = env.get(contract.ENV_PORT) or str(contract.CONTAINER_PORT)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{contract.HEALTH_PATH}", timeout=timeout) as response:
            return None if response.status == 200 else f"{contract.HEALTH_PATH} answered {response.status}"
    except OSError as e:
        return f"{contract.HEALTH_PATH} unreachable: {e}"


def main() -> int:
    reason = check()
    if reason:
        print(f"unhealthy: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
