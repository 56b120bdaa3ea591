"""`python -m app.healthcheck`: the container health check, one command for every role.

Web roles: GET /health on the local port answers 200. Worker (no HTTP port): its heartbeat file, touched every few
seconds while the receive loops run, is fresh. Exit 0 healthy, 1 not (with one line saying why).
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from pathlib import Path

from app import contract

MAX_HEARTBEAT_AGE_SECONDS = 30.0


def check() -> str | None:
    """None when healthy, else the reason."""
    if os.environ.get(contract.ENV_ROLE) == "worker":
        path = Path(os.environ.get(contract.ENV_HEARTBEAT_FILE) or contract.SERVICE_DEFAULTS.heartbeat_file)
        try:
            age = time.time() - path.stat().st_mtime
        except OSError:
            return f"no heartbeat file {path}"
        return None if age <= MAX_HEARTBEAT_AGE_SECONDS else f"heartbeat {age:.0f}s old"
    port = os.environ.get(contract.ENV_PORT) or str(contract.CONTAINER_PORT)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{contract.HEALTH_PATH}", timeout=3) as response:
            return None if response.status == 200 else f"/health answered {response.status}"
    except OSError as e:
        return f"/health unreachable: {e}"


def main() -> int:
    reason = check()
    if reason:
        print(f"unhealthy: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
