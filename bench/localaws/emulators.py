"""Start and stop the local AWS emulators on 127.0.0.1, and say which of them serves which AWS service.

ministack is the data plane (SNS, SQS, DynamoDB, CloudWatch with alarms that fire, CloudWatch Logs): fast, and it
evaluates alarms. moto's server is the control plane (ECS, EC2, ELBv2, IAM, Application Auto Scaling, Lambda, KMS,
ECR, STS), which ministack lacks or serves too loosely: moto validates IAM policy grammar, target-group names and
repository names as AWS does, and its Application Auto Scaling checks that the ECS service exists. Both run as child
processes so that tests, the local runtime and the lab use the same real boto3 code paths as on AWS.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config

from app import contract

LOOPBACK = "127.0.0.1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def emulator_client(service: str, endpoint_url: str, region: str, config: Config) -> Any:
    """A boto3 client signing with the emulators' own keys: the AWS side of the local system (deploying, handing out
    credentials, reading policies, standing in for an invocation), never a task's calls, which the IAM gate checks."""
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint_url,
        region_name=region,
        config=config,
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )


# The services ministack needs to serve for this project; the rest stay unloaded (faster start, fewer ports).
MINISTACK_SERVICES = "sns,sqs,dynamodb,dynamodbstreams,monitoring,sts,logs,secretsmanager"
# boto3 service name -> the suffix of its AWS_ENDPOINT_URL_<SERVICE> variable, for the services moto serves.
CONTROL_PLANE = {
    "ecs": "ECS",
    "ec2": "EC2",
    "elbv2": "ELASTIC_LOAD_BALANCING_V2",
    "iam": "IAM",
    "application-autoscaling": "APPLICATION_AUTO_SCALING",
    "lambda": "LAMBDA",
    "kms": "KMS",
    "ecr": "ECR",
    "sts": "STS",
    "s3": "S3",
    "events": "EVENTBRIDGE",
    "route53": "ROUTE_53",  # global: one moto serves every region's records and health checks
}
# moto loads AWS managed policies (AmazonECSTaskExecutionRolePolicy...) only when asked: the program attaches one.
MOTO_ENV = {"MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}

# Where the emulators differ from AWS in what an ops check reads: a check run against them says so instead of judging.
# Alarms the local runtime mutes (bench.localaws.system): ministack evaluates an alarm over every series of its metric
# name whatever the dimensions, so the DLQ alarm would see the order queue's depth.
MUTED_ALARM_KEYS = ("dlq_not_empty",)
MUTED_ALARM_REASON = "ministack ignores alarm dimensions, so it would see the order queue's depth"
NO_ROLLOUTS = "moto models no ECS rollouts: a service's first deployment stays IN_PROGRESS"
EMAIL_CONFIRMED_AT_ONCE = "ministack confirms e-mail subscriptions at once and sends no e-mail"
NO_SERVICE_EVENTS = "moto keeps no ECS service events"


class EmulatorError(RuntimeError):
    pass


def free_port() -> int:
    """A port free now; nothing keeps it free (for a child process to listen on, use PortReservation)."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


class PortReservation:
    """A free loopback port held for a child process to listen on, until `release()`.

    A port from free_port() is free again the moment it is returned: until the child binds it, another process's
    free port (an xdist worker starting its emulators) or the automatic port of any outgoing connection can take it,
    and the child fails to start, or a health check answered by someone else's server passes. Held here by a bound,
    not listening socket with SO_REUSEADDR, it is skipped by both, while a server that sets SO_REUSEADDR (uvicorn,
    hypercorn, werkzeug: every child of the local runtime) can still bind and listen on it.
    """

    def __init__(self) -> None:
        self._socket: socket.socket | None = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((LOOPBACK, 0))
        self.port = int(self._socket.getsockname()[1])

    def release(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((LOOPBACK, port)) == 0


def aws_env(endpoint_url: str, region: str = contract.AWS_REGION_DEFAULT) -> dict[str, str]:
    """Environment for a process whose boto3 calls must reach the emulator at endpoint_url, with the emulators' keys."""
    return {**DUMMY_CREDENTIALS, **endpoint_env(endpoint_url, region)}


def endpoint_env(endpoint_url: str, region: str = contract.AWS_REGION_DEFAULT) -> dict[str, str]:
    """Where a process's boto3 calls go, without keys (a local task gets its role's: bench.localaws.credentials)."""
    return {"AWS_ENDPOINT_URL": endpoint_url, "AWS_REGION": region, "AWS_DEFAULT_REGION": region}


def control_plane_env(endpoint_url: str) -> dict[str, str]:
    """boto3 sends a service to AWS_ENDPOINT_URL_<SERVICE> when that is set: the control plane goes to moto."""
    return {f"AWS_ENDPOINT_URL_{suffix}": endpoint_url for suffix in CONTROL_PLANE.values()}


def endpoint_for(service: str, data_plane: str, control_plane: str) -> str:
    return control_plane if service in CONTROL_PLANE else data_plane


def _venv_bin(name: str) -> str:
    candidate = Path(sys.executable).with_name(name)
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise EmulatorError(f"'{name}' is not installed: run `pip install -r requirements.txt`")
    return found


@dataclass
class Emulator:
    """A running emulator process. Use as a context manager, or call start()/stop()."""

    kind: str  # "ministack" | "moto"
    port: int = 0
    log_path: Path | None = None
    persist_dir: Path | None = None  # ministack only: keep state across restarts (PERSIST_STATE=1)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    # A port picked here stays reserved until the context ends, also while stopped (a restart gets it back).
    _reservation: PortReservation | None = field(default=None, init=False, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def env(self) -> dict[str, str]:
        return aws_env(self.endpoint_url)

    def _command(self) -> tuple[list[str], dict[str, str]]:
        env = {**os.environ, **DUMMY_CREDENTIALS}
        if self.kind == "ministack":
            env |= {
                "BIND_HOST": LOOPBACK,
                "GATEWAY_PORT": str(self.port),
                "MINISTACK_HOST": LOOPBACK,
                "LOG_LEVEL": "WARNING",
                "SERVICES": MINISTACK_SERVICES,
                "IOT_MTLS_ENABLED": "0",
                "SFTP_ENABLED": "0",
            }
            if self.persist_dir is not None:
                env |= {"PERSIST_STATE": "1", "STATE_DIR": str(self.persist_dir)}
            return [_venv_bin("ministack")], env
        if self.kind == "moto":
            return [_venv_bin("moto_server"), "-H", LOOPBACK, "-p", str(self.port)], env | MOTO_ENV
        raise EmulatorError(f"unknown emulator {self.kind!r}")

    def _ready(self) -> bool:
        path = "/_ministack/health" if self.kind == "ministack" else "/moto-api/"
        try:
            with urllib.request.urlopen(self.endpoint_url + path, timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def start(self, timeout: float = 30.0) -> Emulator:
        if self.port == 0:
            self._reservation = PortReservation()
            self.port = self._reservation.port
        elif port_in_use(self.port):
            raise EmulatorError(f"port {self.port} is taken: stop what uses it or choose another port")
        command, env = self._command()
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmulatorError(
                    f"{self.kind} exited with code {self.process.returncode} while starting"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            if self._ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise EmulatorError(f"{self.kind} did not answer on {self.endpoint_url} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def reset(self) -> None:
        """Clear all emulator state (between tests)."""
        path = "/_ministack/reset" if self.kind == "ministack" else "/moto-api/reset"
        request = urllib.request.Request(self.endpoint_url + path, method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def __enter__(self) -> Emulator:
        return self.start() if self.process is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self._reservation is not None:
            self._reservation.release()
