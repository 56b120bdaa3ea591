"""The services' contract with the Pulumi program that deploys them: what a task is given and what it serves.

Defined here, once: environment variable names, HTTP paths, service defaults, the container's limits, the order
record and its statuses, the order queue's settings and the age past which a pending order is an orphan. The other
shared facts have homes by audience: the alarm catalogue and its runbook text in `app.alarm_catalogue` (the
notifier Lambda renders it), the stack output names the operator commands read in `stackconfig.output_names`, the
stack's config keys and the alarm threshold profiles in `stackconfig/`, the lab report's figures in
`planning/report.py`. The role registry is app/roles.py: its entries
name the service modules, which the Lambda does not ship.

This module imports nothing but the standard library, so the service image (`app/` is its build context), the
notifier and sweeper Lambdas, `components/` and `ops/` can all import it.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from typing import Any, Final

AWS_REGION_DEFAULT: Final = "us-west-2"  # the report's region, where no AWS_REGION is set

# --- Environment variables the services read -------------------------------------------------------------------

ENV_ROLE: Final = "ROLE"  # a name in app.roles.ROLES: which service the image runs
ENV_PORT: Final = "PORT"
ENV_ORDERS_TABLE: Final = "ORDERS_TABLE"
ENV_KEYS_TABLE: Final = "IDEMPOTENCY_TABLE"  # sync service: the Idempotency-Key records every sync task shares
ENV_TOPIC_ARN: Final = "ORDER_TOPIC_ARN"
ENV_QUEUE_URL: Final = "ORDER_QUEUE_URL"
ENV_WORKER_COUNT: Final = "WORKER_COUNT"
ENV_PAYMENT_SECONDS: Final = "PAYMENT_SECONDS"
ENV_PAYMENT_DECLINE_RATE: Final = "PAYMENT_DECLINE_RATE"
ENV_PAYMENT_SLOTS: Final = "PAYMENT_SLOTS"
# A payment gateway every task calls (app.payment.RemoteGateway; locally bench.localaws.gateway, the simulator as one
# service, whose ledger two regions' workers share, as a real gateway's). Unset: each task's in-process simulator.
ENV_PAYMENT_GATEWAY_URL: Final = "PAYMENT_GATEWAY_URL"
ENV_REQUEST_TIMEOUT_SECONDS: Final = "REQUEST_TIMEOUT_SECONDS"
ENV_ALERTS_TOPIC_ARN: Final = "ALERTS_TOPIC_ARN"  # the alarm notifier publishes readable alerts here
# The worker service, whose running tasks (ECS DescribeServices) the expected wait divides by: the receiver's
# order-status estimate, and the notifier's tasks to add for the wait to fall back to the acceptable latency.
ENV_WORKER_CLUSTER: Final = "WORKER_CLUSTER"
ENV_WORKER_SERVICE: Final = "WORKER_SERVICE"
ENV_ACCEPTABLE_LATENCY: Final = "ACCEPTABLE_LATENCY_SECONDS"
ENV_ALARM_EVENTS_QUEUE_URL: Final = "ALARM_EVENTS_QUEUE_URL"  # local runtime: the queue the notifier polls
ENV_ALERT_WEBHOOK_URL: Final = "ALERT_WEBHOOK_URL"  # local relay: optional chat webhook (the secret alertWebhookUrl)
# The Lambda notifier: the Secrets Manager secret holding that webhook URL (the URL itself never sits in its config).
ENV_ALERT_WEBHOOK_SECRET_ARN: Final = "ALERT_WEBHOOK_SECRET_ARN"
ENV_MAX_IN_FLIGHT: Final = "MAX_IN_FLIGHT"  # receiver: requests in flight beyond this are shed with 503
ENV_DRAIN_SECONDS: Final = "DRAIN_SECONDS"  # worker: how long SIGTERM waits for in-flight payments
ENV_HEARTBEAT_FILE: Final = "HEARTBEAT_FILE"  # worker: touched while it polls; the container health check reads it
# Set by ECS in every task (the local ECS sets them too): the agent endpoint (task scale-in protection) and the task
# metadata endpoint (the task's CPU limit).
ENV_ECS_AGENT_URI: Final = "ECS_AGENT_URI"
ENV_ECS_METADATA_URI: Final = "ECS_CONTAINER_METADATA_URI_V4"
# Web roles' HTTP limits (app.http_server); the defaults are ServiceDefaults' below, tests set them short.
ENV_HEADER_TIMEOUT_SECONDS: Final = "HTTP_HEADER_TIMEOUT_SECONDS"  # a request's headers must arrive within this
ENV_BODY_TIMEOUT_SECONDS: Final = "HTTP_BODY_TIMEOUT_SECONDS"  # ...and its body within this after them
ENV_MAX_CONNECTIONS: Final = "HTTP_MAX_CONNECTIONS"  # open connections; idle ones are closed first beyond it

# --- HTTP ---------------------------------------------------------------------------------------------------------

CONTAINER_PORT: Final = 8080
HEALTH_PATH: Final = "/health"
STATS_PATH: Final = "/stats"
SYNC_ORDERS_PATH: Final = "/orders/sync"
ASYNC_ORDERS_PATH: Final = "/orders/async"
ORDER_STATUS_PATH: Final = "/orders/{order_id}"
OPENAPI_PATH: Final = "/openapi.json"

# Idempotent submission (app.idempotency): the IETF httpapi draft's header, Stripe's limits and retention.
IDEMPOTENCY_KEY_HEADER: Final = "Idempotency-Key"
IDEMPOTENCY_REPLAYED_HEADER: Final = "Idempotent-Replayed"  # "true" on an answer sent again from the record
MAX_IDEMPOTENCY_KEY: Final = 255  # characters
IDEMPOTENCY_KEEP_SECONDS: Final = 24 * 3600  # at least; DynamoDB's TTL deletes expired records within days
IDEMPOTENCY_TTL_ATTRIBUTE: Final = "expires_at"  # the orders table's TTL attribute (set by the Pulumi program)

# --- The container (report Part I: Fargate, 256 CPU units, 512 MB, linux/amd64) ----------------------------------

TASK_CPU_UNITS: Final = 256
TASK_MEMORY_MB: Final = 512
# How long ECS waits after SIGTERM before SIGKILL (the container's stopTimeout, set explicitly by the program; Fargate
# allows up to 120). The worker's whole shutdown is bounded by it (ShutdownBudget), so a draining payment or a status
# write is never SIGKILLed.
STOP_TIMEOUT_SECONDS: Final = 30


@dataclass(frozen=True)
class ShutdownBudget:
    """How the worker spends the time between SIGTERM and ECS's SIGKILL, step by step (app.worker `_drain`).

    Every step after SIGTERM has its own bound; each AWS call in it is abandoned at that bound (its messages then
    come back after their visibility timeout instead of at once, which costs time, never an order). The drain of
    in-flight payments, status writes included, gets what is left of `stop_timeout_seconds` after the other steps
    and `exit_seconds`, so the whole sequence (`sequence_seconds`) ends before the SIGKILL by that margin.
    """

    stop_timeout_seconds: float
    release_seconds: float = 1.0  # each of the two releases: the unstarted messages, then the unfinished ones
    receive_grace_seconds: float = 0.5  # for a long poll that is returning messages right now
    settle_seconds: float = 2.0  # the deletes of finished messages and the background calls still running
    exit_seconds: float = 1.5  # the interpreter's exit and a loaded host's scheduling, left unspent

    @property
    def after_drain_seconds(self) -> float:
        """The steps' bounds other than the drain's (and the exit's)."""
        return 2 * self.release_seconds + self.receive_grace_seconds + self.settle_seconds

    @property
    def drain_seconds(self) -> float:
        """The longest drain of in-flight payments that keeps the sequence within the stop timeout."""
        return self.stop_timeout_seconds - self.exit_seconds - self.after_drain_seconds

    def sequence_seconds(self, drain_seconds: float) -> float:
        """The bound of the whole sequence, from SIGTERM to the process's exit, with a drain of `drain_seconds`."""
        return drain_seconds + self.after_drain_seconds


SHUTDOWN: Final = ShutdownBudget(STOP_TIMEOUT_SECONDS)
IMAGE_PLATFORM: Final = "linux/amd64"
CONTAINER_UID: Final = 10001  # non-root; the image's files must be readable by it (app/Dockerfile's USER)
WRITABLE_PATH: Final = "/tmp"  # the only path the services write; the root filesystem is read-only in ECS


@dataclass(frozen=True)
class ServiceDefaults:
    """The report's numbers (Part I and II): one payment slot, 3 s a payment, 5 % declines, 10 s client timeout."""

    payment_seconds: float = 3.0
    payment_decline_rate: float = 0.05
    payment_slots: int = 1
    request_timeout_seconds: float = 10.0
    worker_count: int = 1
    max_in_flight: int = 64  # receiver: the cap for a stalled backend; app.shedding lowers it while CPU-bound
    drain_seconds: float = SHUTDOWN.drain_seconds  # worker: SIGTERM waits this for payments (and at most this)
    heartbeat_file: str = "/tmp/flashsale-worker.heartbeat"  # /tmp: the root filesystem may be read-only
    # Web roles' HTTP limits: slow or flooding clients must not hold the service (app.http_server).
    header_timeout_seconds: float = 10.0  # request line + headers, from the first byte (or the connection)
    body_timeout_seconds: float = 10.0  # the whole body (at most 64 KiB), once the headers are in
    max_connections: int = 1_000  # beyond it the oldest idle connections are closed, else new ones refused (503)
    keep_alive_seconds: float = 75.0  # idle keep-alive; above the ALB's 60 s, or the ALB would race our close
    # Lingering close (nginx's lingering_time / lingering_timeout): after an answer sent before its request was read
    # to the end (413, 400, 431), stop writing and read and discard what the client is still sending, so that closing
    # with unread bytes does not reset the connection (a reset makes the client, or the ALB, lose the answer). Bounded
    # in bytes and time; a lingering connection counts against max_connections and is the first closed to make room.
    linger_seconds: float = 10.0  # at most this long in all
    linger_idle_seconds: float = 1.0  # ends once nothing has arrived for this long (or at once if nothing had)
    linger_max_bytes: int = 8 << 20  # ends once this much was discarded: covers what is in flight, and a 1 MiB body
    # The store's currency: its minor unit's decimal places (ISO 4217: 2 for USD and EUR, 0 for JPY, 3 for KWD), 0..3.
    # A price must be a whole number of minor units (app.orders). One value for the image, not a stack key: the
    # OpenAPI documents, the receiver and the worker (which re-checks every queued order) must all agree on it.
    currency_decimals: int = 2


SERVICE_DEFAULTS: Final = ServiceDefaults()

# --- Order store --------------------------------------------------------------------------------------------------

ORDER_KEY: Final = "order_id"


class OrderStatus(StrEnum):
    """An order's status in its record. The receiver records it pending; the worker's one conditional status write
    makes it completed or failed (final). There is no "being paid" status: writing one would cost every order a
    second conditional write on the worker's CPU, and a worker killed mid-payment would leave its order showing it
    while the order waits in the queue again; pending is true until the payment is committed."""

    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self is not OrderStatus.PENDING


INTERNAL: Final = "internal"  # OrderRecord field metadata: kept in the record, not shown by GET /orders/{id}
# OrderRecord field metadata: written by the receiver with the pending record although optional, because records of an
# older version lack it (a rolling deployment's workers must still read them).
AT_ACCEPTANCE: Final = "at_acceptance"


@dataclass(frozen=True)
class OrderRecord:
    """One order's item in the orders table, attribute for attribute: the one definition of the record that the store
    writes and reads, the worker checks, GET /orders/{id} shows and the OpenAPI document describes. Each field's type
    gives its DynamoDB type (str -> S, int and float -> N). The receiver writes the fields without a default and those
    marked AT_ACCEPTANCE (status pending); the worker's status write sets the status and every other field with a
    default. GET /orders/{id} shows every field not marked INTERNAL that is set and not empty (a completed order's
    reason is "").

    The status write's fields are a pure function of the payment gateway's answer for the order id (app.worker
    `final_outcome`): with the orders table a global table (last writer wins), two regions that both write an order's
    final status write the same record, so whichever write wins, nothing of it is lost (docs/multi-region.md)."""

    order_id: str
    status: OrderStatus
    customer_id: int
    items: str = field(metadata={INTERNAL: True})  # the order's items as JSON, as the order event carries them
    total: float
    created_at: float  # epoch seconds, when the receiver recorded it
    # The AWS region whose receiver accepted the order (its task's AWS_REGION): only that region's workers pay it.
    # None in records from before home regions, which are the one region's.
    home_region: str | None = field(default=None, metadata={AT_ACCEPTANCE: True})
    finished_at: float | None = None  # epoch seconds, when the payment gateway decided the payment
    duration: float | None = None  # seconds the payment took in the gateway
    reason: str | None = None  # why a payment failed ("" when it completed)
    worker: str | None = None  # the payment slot that made the charge (WORKER-n), as the gateway recorded it

    def shown(self) -> dict[str, Any]:
        """The record as GET /orders/{id} answers it."""
        return {
            f.name: value
            for f in fields(self)
            if not f.metadata.get(INTERNAL) and (value := getattr(self, f.name)) is not None and value != ""
        }

    @classmethod
    def pending_fields(cls) -> tuple[str, ...]:
        """What the receiver writes: the fields without a default and those marked AT_ACCEPTANCE."""
        return tuple(f.name for f in fields(cls) if f.default is MISSING or f.metadata.get(AT_ACCEPTANCE))

    @classmethod
    def outcome_fields(cls) -> tuple[str, ...]:
        """What the worker's status write sets: the status and the other fields with a default."""
        pending = cls.pending_fields()
        return ("status", *(f.name for f in fields(cls) if f.name not in pending))


# --- Worker scaling: Application Auto Scaling's scalable target (the program registers it, ops.prescale and
# ops.preflight act on it) -------------------------------------------------------------------------------------------

SCALING_NAMESPACE: Final = "ecs"
SCALABLE_DIMENSION: Final = "ecs:service:DesiredCount"  # an ECS service's task count


def scalable_resource_id(cluster: str, service: str) -> str:
    """The scalable target's ResourceId of an ECS service."""
    return f"service/{cluster}/{service}"


# --- The order queue (report 3.1 and 6.5) -------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueSettings:
    """The order queue and its dead-letter queue, as the report configured them (plus the DLQ it asked for)."""

    visibility_timeout_seconds: int = 30
    message_retention_seconds: int = 345_600  # 4 days
    receive_wait_time_seconds: int = 20  # long polling
    max_receive_count: int = 3
    dlq_retention_seconds: int = 1_209_600  # 14 days, the SQS maximum
    receive_batch_size: int = 10  # the SQS maximum per ReceiveMessage

    def redrive_policy(self, dlq_arn: str) -> str:
        return json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": self.max_receive_count})


ORDER_QUEUE: Final = QueueSettings()


# --- Orphaned orders: pending records no message will ever finish (app.sweeper) ------------------------------------


def orphan_after_seconds(queue: QueueSettings, resend_window_seconds: float) -> int:
    """How old a pending record must be before no message for its order can still exist: then nothing will ever
    finish it, and the sweeper closes it.

    An order's event is sent when the receiver accepts it, or again by a retry with its Idempotency-Key, which can
    resume it for `resend_window_seconds` (the key's record's life). A message then lives at most the longer of the
    queue's retention and the DLQ's (SQS keeps a message's original enqueue time when it moves it to the DLQ, and the
    DLQ's retention counts from there), plus one visibility timeout for a worker that received it just before it
    expired. A tighter bound would need the receiver to mark each record once its event is out: a second write on
    every order's hot path, for the rare receiver that stops between its two calls; not worth it."""
    longest_message = max(queue.message_retention_seconds, queue.dlq_retention_seconds)
    return int(resend_window_seconds) + longest_message + queue.visibility_timeout_seconds


ORPHAN_AFTER_SECONDS: Final = orphan_after_seconds(ORDER_QUEUE, IDEMPOTENCY_KEEP_SECONDS)
# The reason a swept order shows (GET /orders/{id}): it was never paid and no message for it is left.
ORPHAN_REASON: Final = (
    "never published: the receiver stopped before its event went out; "
    f"closed unpaid after {ORPHAN_AFTER_SECONDS // 86_400} days"
)
SWEEP_EVERY_SECONDS: Final = 86_400  # an orphan is closed within this of the bound (the local runtime's clock too)
SWEEP_SCHEDULE: Final = f"rate({SWEEP_EVERY_SECONDS // 60} minutes)"  # the EventBridge rule's schedule expression


def queue_policy(queue_arn: str, topic_arn: str) -> dict[str, Any]:
    """The order queue's resource policy: only the order topic may send to it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OrderTopicOnly",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }


# --- The buyers' wait, measured: one value per finished order, from acceptance to its final status ---------------
# The worker writes it as an Embedded Metric Format line in its log (CloudWatch extracts it; no API call per order).
# Its p95 alarm, the dashboard widget and `ops.report` read it by these names.

WAIT_METRIC_NAMESPACE: Final = "Flashsale"
WAIT_METRIC_NAME: Final = "BuyerWait"
WAIT_METRIC_UNIT: Final = "Seconds"
WAIT_DIMENSION_STACK: Final = "Stack"  # the Pulumi stack's name (ENV_STACK_NAME)
WAIT_DIMENSION_REGION: Final = "Region"  # the task's AWS_REGION
ENV_STACK_NAME: Final = "FLASHSALE_STACK"
