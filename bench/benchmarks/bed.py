"""The bench: the emulators for the whole run, the normal stack deployed to them once by the local deployer, its data
plane created afresh for each benchmark, and the services as task processes of the deployed task definitions."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from app.orders import Order, parse_order
from bench.localaws.deployer import DeployError, Deployment, Endpoints, deploy
from bench.localaws.ecs import LocalService, deployed_services, service_of
from bench.localaws.emulators import Emulator
from bench.localaws.resources.registry import DATA_PLANE
from bench.localaws.tasks import Task

# The report's single-order test body (3.3): what every benchmark sends.
SAMPLE_ORDER: dict[str, Any] = {
    "customer_id": 1234,
    "items": [{"product_id": "PROD-001", "quantity": 2, "price": 49.99}],
}


def sample_order() -> Order:
    """A new order (fresh id) with the report's body."""
    return parse_order(SAMPLE_ORDER)


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used so far: its own accounting, not wall time."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def peak_rss_mb(pid: int) -> float:
    """The process's peak resident memory (Linux VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


def log_time(stamp: str) -> float:
    """A service log line's `ts` (app.logs) as epoch seconds."""
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


@dataclass
class Bed:
    """The data-plane emulator and the deployment on it; `fresh()` gives each benchmark empty queues and table."""

    emulator: Emulator
    deployment: Deployment
    logs: Path
    services: list[LocalService] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.services = deployed_services(self.deployment)

    @property
    def outputs(self) -> dict[str, Any]:
        return self.deployment.stack_outputs()

    def fresh(self) -> dict[str, Any]:
        self.emulator.reset()
        os.environ.update(self.deployment.endpoints.env())  # this process's boto3 clients (loaders) reach it too
        self.deployment.reapply(DATA_PLANE)
        return self.outputs

    def emulator_cpu(self) -> float:
        if self.emulator.process is None:
            raise RuntimeError("the emulator is not running")
        return cpu_seconds(self.emulator.process.pid)

    def service(
        self,
        role: str,
        name: str,
        command: tuple[str, ...] = (),
        settings: Mapping[str, str] | None = None,
        *,
        https: bool = True,
    ) -> Task:
        """A started task (stop it, or use it as a context manager) with these settings on top of the deployed ones;
        `command` runs another program in the task's place (a benchmark's peer worker, which must touch
        $HEARTBEAT_FILE when ready, as the worker does); `https=False` points it at the emulators' own plain HTTP
        ports, without the TLS fronts (to tell what TLS costs it)."""
        services = self.services if https else deployed_services(self.deployment, https=False)
        spec = service_of(services, role).spec
        if command:
            spec = dataclasses.replace(spec, command=command)
        return spec.task(self.logs / f"{name}.log", settings).start()


@contextlib.contextmanager
def deployed_task_env(role: str, logs: Path) -> Iterator[dict[str, str]]:
    """The emulators with the normal stack deployed to them, and the whole environment a task of `role` runs with
    (for benchmarks that start the service their own way)."""
    with (
        Emulator("ministack", log_path=logs / "ministack.log") as emulator,
        Emulator("moto", log_path=logs / "moto.log") as control_plane,
    ):
        deployment = deploy("normal", Endpoints(emulator.endpoint_url, control_plane.endpoint_url))
        if not deployment.ok:
            raise DeployError(deployment.summary())
        os.environ.update(deployment.endpoints.env())
        yield service_of(deployed_services(deployment), role).spec.environment()
