"""The bench: one ministack for the whole run, the stack created afresh for each benchmark, services as processes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from app.orders import Order, parse_order
from ops.bootstrap import BootstrapArgs, bootstrap
from ops.emulators import Emulator
from ops.services import Service, ServiceArgs, service_env

PREFIX = "bench"
# The report's single-order test body (3.3): what every benchmark sends.
SAMPLE_ORDER: dict[str, Any] = {"customer_id": 1234, "items": [{"product_id": "PROD-001", "quantity": 2,
                                                                 "price": 49.99}]}


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
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


@dataclass
class Bed:
    """The emulator plus the current stack's outputs; `fresh()` gives each benchmark an empty stack."""

    emulator: Emulator
    logs: Path
    outputs: dict[str, Any] = field(default_factory=dict)

    def fresh(self) -> dict[str, Any]:
        self.emulator.reset()
        os.environ.update(self.emulator.env())  # this process's boto3 clients (bootstrap, loaders) reach it too
        self.outputs = bootstrap(BootstrapArgs(prefix=PREFIX))
        return self.outputs

    def emulator_cpu(self) -> float:
        if self.emulator.process is None:
            raise RuntimeError("the emulator is not running")
        return cpu_seconds(self.emulator.process.pid)

    def service(self, role: str, name: str, command: tuple[str, ...] = (), **settings: str) -> Service:
        """A started service (stop it, or use it as a context manager) with these settings on top of the stack's;
        `command` runs another program in the role (see ServiceArgs)."""
        env = service_env(self.emulator.env(), self.outputs, settings)
        return Service(ServiceArgs(role, env, self.logs / f"{name}.log", command=command)).start()
