"""The services' settings, read once from the environment (names and defaults from the contract).

One loader per role (`sync`, `receiver`, `worker` below); which one a role uses is its `settings` in the role registry
(app.roles.ROLES), and `load` reads it.
"""

from __future__ import annotations

import os
import pkgutil
from dataclasses import dataclass
from typing import Any

from app import contract, roles

D = contract.SERVICE_DEFAULTS


class SettingsError(ValueError):
    """A missing or malformed environment variable; the message names it."""


def _number(name: str, default: float, low: float, high: float) -> float:
    raw = os.environ.get(name, "")
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be within {low:g}..{high:g}, got {value:g}")
    return value


def _integer(name: str, default: int, low: int, high: int) -> int:
    value = _number(name, default, low, high)
    if value != int(value):
        raise SettingsError(f"{name} must be a whole number, got {value:g}")
    return int(value)


def _required(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SettingsError(f"{name} is not set (the Pulumi program sets it in the task definition)")
    return value


@dataclass(frozen=True)
class PaymentSettings:
    seconds: float
    decline_rate: float
    gateway_url: str | None = None  # a shared gateway's; None: the in-process simulator


@dataclass(frozen=True)
class HttpSettings:
    """The web roles' limits on slow and flooding clients (app.http_server, app.web.BufferedBody)."""

    header_timeout_seconds: float
    body_timeout_seconds: float
    max_connections: int
    keep_alive_seconds: float


@dataclass(frozen=True)
class SyncSettings:
    keys_table: str  # the Idempotency-Key records, shared by every sync task
    payment: PaymentSettings
    slots: int
    request_timeout_seconds: float
    http: HttpSettings


@dataclass(frozen=True)
class ReceiverSettings:
    table: str
    topic_arn: str
    queue_url: str
    worker_count: int  # workers per worker task: for /health and the expected wait
    payment_seconds: float
    worker_cluster: str  # the worker service, whose running tasks the expected wait divides by
    worker_service: str
    max_in_flight: int
    http: HttpSettings


@dataclass(frozen=True)
class WorkerSettings:
    table: str
    queue_url: str
    worker_count: int
    payment: PaymentSettings
    drain_seconds: float
    heartbeat_file: str
    agent_uri: str | None  # ECS's agent endpoint (task protection); None outside ECS
    # The stack the task belongs to: the buyers' wait metric's Stack dimension. None (a worker run outside a stack,
    # or a measurement without it): no wait metric in the payment lines.
    stack_name: str | None


def payment() -> PaymentSettings:
    return PaymentSettings(
        seconds=_number(contract.ENV_PAYMENT_SECONDS, D.payment_seconds, 0, 3600),
        decline_rate=_number(contract.ENV_PAYMENT_DECLINE_RATE, D.payment_decline_rate, 0, 1),
        gateway_url=os.environ.get(contract.ENV_PAYMENT_GATEWAY_URL) or None,
    )


def worker_count() -> int:
    return _integer(contract.ENV_WORKER_COUNT, D.worker_count, 1, 10_000)


def http() -> HttpSettings:
    return HttpSettings(
        header_timeout_seconds=_number(contract.ENV_HEADER_TIMEOUT_SECONDS, D.header_timeout_seconds, 0.01, 600),
        body_timeout_seconds=_number(contract.ENV_BODY_TIMEOUT_SECONDS, D.body_timeout_seconds, 0.01, 600),
        max_connections=_integer(contract.ENV_MAX_CONNECTIONS, D.max_connections, 1, 1_000_000),
        keep_alive_seconds=D.keep_alive_seconds,
    )


def sync() -> SyncSettings:
    return SyncSettings(
        keys_table=_required(contract.ENV_KEYS_TABLE),
        payment=payment(),
        slots=_integer(contract.ENV_PAYMENT_SLOTS, D.payment_slots, 1, 10_000),
        request_timeout_seconds=_number(contract.ENV_REQUEST_TIMEOUT_SECONDS, D.request_timeout_seconds, 0.001, 3600),
        http=http(),
    )


def receiver() -> ReceiverSettings:
    return ReceiverSettings(
        table=_required(contract.ENV_ORDERS_TABLE),
        topic_arn=_required(contract.ENV_TOPIC_ARN),
        queue_url=_required(contract.ENV_QUEUE_URL),
        worker_count=worker_count(),
        payment_seconds=payment().seconds,
        worker_cluster=_required(contract.ENV_WORKER_CLUSTER),
        worker_service=_required(contract.ENV_WORKER_SERVICE),
        max_in_flight=_integer(contract.ENV_MAX_IN_FLIGHT, D.max_in_flight, 1, 100_000),
        http=http(),
    )


def worker() -> WorkerSettings:
    return WorkerSettings(
        table=_required(contract.ENV_ORDERS_TABLE),
        queue_url=_required(contract.ENV_QUEUE_URL),
        worker_count=worker_count(),
        payment=payment(),
        # At most the stop timeout's share for it: a longer drain would be SIGKILLed mid-write.
        drain_seconds=_number(contract.ENV_DRAIN_SECONDS, D.drain_seconds, 0, contract.SHUTDOWN.drain_seconds),
        heartbeat_file=os.environ.get(contract.ENV_HEARTBEAT_FILE) or D.heartbeat_file,
        agent_uri=os.environ.get(contract.ENV_ECS_AGENT_URI) or None,
        stack_name=os.environ.get(contract.ENV_STACK_NAME) or None,
    )


def load(role: str) -> Any:
    """The settings of the registered role `role`, from its loader (SettingsError names a bad variable). Any: each
    role has its own settings type, which only its entry reads."""
    return pkgutil.resolve_name(roles.role(role).settings)()
