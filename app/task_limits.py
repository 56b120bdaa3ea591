"""What the task may use, as ECS says: the task's CPU limit from the task metadata endpoint.

On Fargate the task's CPU limit (256 units = 0.25 vCPU here) is enforced on the task, not on the container's own
cgroup, so the container cannot read it from /sys/fs/cgroup; ECS injects ECS_CONTAINER_METADATA_URI_V4 into every
container, and `<uri>/task` answers the task's `Limits` (`{"CPU": 0.25, "Memory": 512}`: vCPUs at task level).
Outside ECS there is no such endpoint and callers fall back to the cgroup quota (app.shedding.cpu_budget).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

from app import contract

TIMEOUT_SECONDS = 1.0
MAX_TASK_VCPUS = 16.0  # Fargate's largest task; a larger number is CPU units (1,024 per vCPU)


def task_cpu_limit() -> float | None:
    """The task's CPU limit in vCPUs, or None when not on ECS or the endpoint does not say."""
    uri = os.environ.get(contract.ENV_ECS_METADATA_URI)
    if not uri:
        return None
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/task", timeout=TIMEOUT_SECONDS) as response:
            document = json.loads(response.read())
    except (OSError, ValueError):  # no endpoint, a timeout, or not JSON: the caller falls back
        return None
    cpu = (document.get("Limits") or {}).get("CPU") if isinstance(document, dict) else None
    if not isinstance(cpu, (int, float)) or isinstance(cpu, bool) or cpu <= 0:
        return None
    return float(cpu) / 1024 if cpu > MAX_TASK_VCPUS else float(cpu)
