"""Celery with its SQS broker, a peer for `python -m bench.benchmarks`: the Python ecosystem's usual task queue doing
flashsale's worker's per-order work (bench.benchmarks.peer_work) as a task.

The worker: `celery -A bench.benchmarks.celery_peer worker -P gevent -c N`. The gevent pool is the one Celery's
documentation gives for I/O-bound work ("eventlet and gevent: designed for IO-bound tasks"; its gevent page runs
`-P gevent -c 1000`), and a payment is a 3 s wait. Celery's defaults otherwise (prefetch multiplier 4, long polls of
10 s), with two settings to match flashsale's guarantees and measurement: late acknowledgement (a message is deleted
after its payment, not on receipt: at-least-once, like flashsale) and task output straight to stdout (the
benchmark reads the app.logs lines). Fed by Celery's own client (`pay.apply_async`). The broker reaches the emulator
through AWS_ENDPOINT_URL (plain HTTP, its region); kombu's boto3 client gets a connection per concurrent task.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from celery.signals import worker_ready

from app import aws, contract, settings
from app.settings import PaymentSettings
from app.store import OrderStore
from bench.benchmarks.peer_work import pay_order

QUEUE_NAME = "celery"  # Celery's default queue, created by the broker on first use


def broker_url(endpoint_url: str) -> str:
    """Celery's SQS broker URL for an emulator endpoint (dummy credentials: the emulator takes any)."""
    return f"sqs://x:x@{urlsplit(endpoint_url).netloc}"


app = Celery("flashsale-peer", broker=broker_url(os.environ.get("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")))
app.conf.update(
    broker_transport_options={
        "region": aws.region(),
        "is_secure": False,
        "client-config": {
            "max_pool_connections": int(
                os.environ.get(contract.ENV_WORKER_COUNT) or contract.SERVICE_DEFAULTS.worker_count
            )
        },
    },
    task_acks_late=True,
    task_ignore_result=True,
    worker_redirect_stdouts=False,
)


@functools.cache
def _worker() -> tuple[OrderStore, PaymentSettings]:
    config = settings.worker()
    return (
        OrderStore(aws.client("dynamodb", read_timeout=5, max_pool_connections=config.worker_count), config.table),
        config.payment,
    )


@app.task(name="flashsale.pay")
def pay(body: str) -> None:
    store, payment = _worker()
    pay_order(body, "CELERY", store, payment)


@worker_ready.connect
def _ready(**_: Any) -> None:
    Path(os.environ[contract.ENV_HEARTBEAT_FILE]).touch()
