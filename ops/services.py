"""The one way to run a service process locally: `python -m app ROLE` as a child process on 127.0.0.1.

Used by ops.local, the tests, the lab, the benchmarks and the fault-injection tests. A Service starts the process with
the emulator's env + the stack outputs + settings, waits until it is healthy (HTTP /health, or the worker's
heartbeat file), stops it with SIGTERM (SIGKILL after a bound), kills it with SIGKILL on demand, and exposes its pid
(for CPU/RSS measurement), URL and log file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from app import contract
from ops.emulators import LOOPBACK, free_port, port_in_use

ROOT = Path(__file__).resolve().parent.parent
WEB_ROLES = ("sync", "receiver")
# Stack output -> the environment variable the services read it from.
OUTPUT_ENV = {
    contract.OUTPUT_ORDERS_TABLE: contract.ENV_ORDERS_TABLE,
    contract.OUTPUT_TOPIC_ARN: contract.ENV_TOPIC_ARN,
    contract.OUTPUT_QUEUE_URL: contract.ENV_QUEUE_URL,
}


class ServiceError(RuntimeError):
    pass


def service_env(aws_env: Mapping[str, str], outputs: Mapping[str, Any],
                settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """The child's environment: ours, the emulator's endpoint and credentials, the outputs it needs, the settings."""
    wired = {env: str(outputs[key]) for key, env in OUTPUT_ENV.items() if key in outputs}
    return {**os.environ, **aws_env, **wired, **(settings or {})}


def log_events(path: Path) -> list[dict[str, Any]]:
    """The structured (app.logs) lines of a process's log file; other lines, e.g. tracebacks, are skipped."""
    records = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                continue
    return records


@dataclass(frozen=True)
class ServiceArgs:
    role: str  # one of contract.ROLES
    env: Mapping[str, str]  # from service_env()
    log_path: Path
    port: int = 0  # web roles; 0 picks a free one
    # Instead of `python -m app ROLE`: another program that behaves as ROLE (a benchmark's peer worker, which must
    # touch $HEARTBEAT_FILE when ready, as the worker does).
    command: tuple[str, ...] = ()


@dataclass
class Service:
    """One running service process. Use as a context manager, or call start()/stop()."""

    args: ServiceArgs
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def role(self) -> str:
        return self.args.role

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ServiceError(f"{self.role} is not running")
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.args.log_path

    @property
    def heartbeat_file(self) -> Path:
        return self.args.log_path.with_suffix(".heartbeat")

    def start(self, timeout: float = 30.0) -> Service:
        if self.role not in contract.ROLES:
            raise ServiceError(f"unknown role {self.role!r}; choose one of {', '.join(contract.ROLES)}")
        command = list(self.args.command) or [sys.executable, "-m", "app", self.role]
        env = dict(self.args.env)
        if self.role in WEB_ROLES:
            self.port = self.args.port or free_port()
            if self.args.port and port_in_use(self.port):
                raise ServiceError(f"port {self.port} is taken: stop what uses it or choose another port")
            command += ["--host", LOOPBACK, "--port", str(self.port)]
        else:
            self.heartbeat_file.unlink(missing_ok=True)
            env[contract.ENV_HEARTBEAT_FILE] = str(self.heartbeat_file)
        self.args.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.args.log_path, "ab") as log:
            self.process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(f"{self.role} exited with code {self.process.returncode} while starting; "
                                   f"see {self.log_path}: {self._last_log_line()}")
            if self.healthy():
                return self
            time.sleep(0.05)
        self.kill()
        raise ServiceError(f"{self.role} was not healthy within {timeout:.0f} s; see {self.log_path}")

    def healthy(self) -> bool:
        if self.role not in WEB_ROLES:
            return self.heartbeat_file.exists()
        try:
            with urllib.request.urlopen(self.url + contract.HEALTH_PATH, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then SIGKILL after `timeout` seconds; returns the exit code (negative: killed by that signal)."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return int(self.process.wait())

    def kill(self) -> None:
        """SIGKILL: no cleanup, like a crashed task."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def events(self) -> list[dict[str, Any]]:
        """The structured log lines written so far (other lines, e.g. tracebacks, are skipped)."""
        return log_events(self.log_path)

    def _last_log_line(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(no output)"

    def __enter__(self) -> Service:
        return self.start() if self.process is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
