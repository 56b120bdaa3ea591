"""One ECS task as a local process: the image's command, with the task's environment, on 127.0.0.1.

The local ECS (`bench.localaws.ecs`) starts tasks from the task definitions the program deployed; tests, the lab and the
benchmarks start them the same way, through the deployment. What a task is comes from its role in the registry
(`app.roles.ROLES`): a web role gets a port, another its own heartbeat file, and a task is healthy when
`app.healthcheck` (the container's health check: GET /health, or a fresh heartbeat) says so of its environment. It
stops like ECS stops a task (SIGTERM, then SIGKILL after the container's stop timeout), can be SIGKILLed on demand
like a crashed task, and exposes its pid (for CPU/RSS measurement), URL and log file.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from app import contract, healthcheck, roles
from bench.localaws.emulators import LOOPBACK, PortReservation, port_in_use
from stackconfig.files import ROOT

DEFAULT_STOP_TIMEOUT = 30.0  # ECS's default stopTimeout
APP_COMMAND = (sys.executable, "-m", "app")  # the image's ENTRYPOINT, with this machine's Python


class TaskError(RuntimeError):
    pass


@dataclass(frozen=True)
class TaskArgs:
    role: str  # the container's ROLE, a name in roles.ROLES: what the task runs and how its health is told
    env: Mapping[str, str]  # the whole environment of the process (launch adds the port or the heartbeat file)
    log_path: Path
    command: Sequence[str] = APP_COMMAND
    cwd: Path = ROOT
    port: int = 0  # web tasks; 0 picks a free one (each Fargate task has its own address; here, its own port)
    stop_timeout: float = DEFAULT_STOP_TIMEOUT


@dataclass
class Task:
    """One running task process. Use as a context manager, or call start()/stop()."""

    args: TaskArgs
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    started_at: float = field(default=0.0, init=False)
    env: dict[str, str] = field(default_factory=dict, init=False)  # the process's environment, once launched
    # The port picked for a web task, held until the task listens on it (healthy) or ends.
    _reservation: PortReservation | None = field(default=None, init=False, repr=False)

    @property
    def role(self) -> str:
        return self.args.role

    @property
    def web(self) -> bool:
        """The role listens on a port (a web role of the registry)."""
        return roles.role(self.role).web

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise TaskError(f"{self.role} is not running")
        return self.process.pid

    @property
    def log_path(self) -> Path:
        return self.args.log_path

    @property
    def task_id(self) -> str:
        """The task's id in the local ECS (its log file is named after it)."""
        return self.args.log_path.stem

    @property
    def heartbeat_file(self) -> Path:
        return self.args.log_path.with_suffix(".heartbeat")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def launch(self) -> Task:
        """Start the process without waiting for it to be healthy (the local ECS waits in its own loop)."""
        command = list(self.args.command)
        env = dict(self.args.env) | {contract.ENV_ROLE: self.role}
        if self.web:
            if self.args.port:
                if port_in_use(self.args.port):
                    raise TaskError(f"port {self.args.port} is taken: stop what uses it or choose another port")
                self.port = self.args.port
            else:
                self._reservation = PortReservation()
                self.port = self._reservation.port
            command += ["--host", LOOPBACK, "--port", str(self.port)]
            env[contract.ENV_PORT] = str(self.port)
        else:  # each task has its own /tmp on Fargate; here, its own heartbeat file
            self.heartbeat_file.unlink(missing_ok=True)
            env[contract.ENV_HEARTBEAT_FILE] = str(self.heartbeat_file)
        self.env = env
        self.args.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.args.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, env=env, cwd=self.args.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.started_at = time.monotonic()
        return self

    def start(self, timeout: float = 30.0) -> Task:
        """Start the process and wait until it is healthy."""
        self.launch()
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TaskError(
                    f"{self.role} exited with code {self.process.returncode} while starting; "
                    f"see {self.log_path}: {self.last_log_line()}"
                )
            if self.healthy():
                return
            time.sleep(0.05)
        self.kill()
        raise TaskError(f"{self.role} was not healthy within {timeout:.0f} s; see {self.log_path}")

    def healthy(self) -> bool:
        """Running, and what the container health check would say of it (a short timeout: the local ECS asks of
        every task each round)."""
        healthy = self.alive() and healthcheck.check(self.env, timeout=1.0) is None
        if healthy:  # it listens on its port now: the port is its own
            self._release_port()
        return healthy

    def _release_port(self) -> None:
        if self._reservation is not None:
            self._reservation.release()
            self._reservation = None

    def terminate(self) -> None:
        """SIGTERM, as ECS's first step in stopping a task; `stop` waits for the exit."""
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float | None = None) -> int:
        """SIGTERM, then SIGKILL after the stop timeout; returns the exit code (negative: killed by that signal)."""
        self._release_port()
        if self.process is None:
            return 0
        self.terminate()
        try:
            self.process.wait(timeout=self.args.stop_timeout if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        return int(self.process.wait())

    def kill(self) -> None:
        """SIGKILL: no cleanup, like a crashed task."""
        self._release_port()
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def events(self) -> list[dict[str, Any]]:
        """The structured log lines written so far (other lines, e.g. tracebacks, are skipped)."""
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records

    def last_log_line(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines() if self.log_path.exists() else []
        return lines[-1] if lines else "(no output)"

    def __enter__(self) -> Task:
        return self.start() if self.process is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
