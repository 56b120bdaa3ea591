"""Worker benchmark: CPU per processed order, processed rate against `workers / payment_time`, peak RSS, for
flashsale's worker and, measured the same way in the same run, its peers (Celery, and the report's design ported
literally: bench.benchmarks.celery_peer, bench.benchmarks.thread_peer).

For each level the pending records are pre-loaded (BatchWriteItem) and the orders are sent at once (flashsale and the
thread port: SendMessageBatch to the order queue; Celery: its own client, `apply_async`) while the worker process
idles on its long poll, so what is timed is the worker alone draining `rounds x workers` orders: ideally
`rounds x payment_seconds` from its first `processing` line to its last payment line.

flashsale's worker is measured twice at each level: as deployed, its payment lines carrying the buyers' wait metric
(Embedded Metric Format, `app.worker`), and without it (FLASHSALE_STACK empty: the worker then writes no metric), so
the metric's cost is the difference: CPU per order, and the log bytes per order that CloudWatch Logs would ingest
(the worker's log file over the orders).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from app import aws, contract
from app.orders import Order
from app.store import OrderStore
from bench.benchmarks.bed import Bed, cpu_seconds, log_time, peak_rss_mb, sample_order
from bench.localaws.tasks import Task
from stackconfig import output_names

SQS_BATCH = contract.ORDER_QUEUE.receive_batch_size  # also SendMessageBatch's maximum
DYNAMODB_BATCH = 25  # BatchWriteItem's maximum
LOADER_THREADS = 8
DRAIN_POLL_SECONDS = 0.25
PAYMENT_LINES = ("payment_completed", "payment_failed")


class WorkerBenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class WorkerLevel:
    contender: str  # flashsale | celery | report-threads
    workers: int
    payment_seconds: float
    orders: int
    drain_seconds: float  # first `processing` line to last payment line, from the worker's own log
    efficiency: float  # processed rate / (workers / payment_seconds)
    cpu_ms_per_order: float
    log_bytes_per_order: float  # the worker's whole log over the orders: what the awslogs driver would ship
    peak_rss_mb: float
    emulator_cpu_share: float  # of one core, during the drain: near 1.0 means the emulator, not the worker, limits


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[n : n + size] for n in range(0, len(items), size)]


def _put_records(table: str, orders: list[Order]) -> None:
    dynamodb = aws.client("dynamodb", max_pool_connections=LOADER_THREADS)
    store = OrderStore(dynamodb, table)

    def write(chunk: list[Order]) -> None:
        requests: list[dict[str, Any]] = [
            {"PutRequest": {"Item": store.item(store.pending(o.order_id, o.customer_id, o.items_json(), o.total))}}
            for o in chunk
        ]
        while requests:
            unprocessed = dynamodb.batch_write_item(RequestItems={table: requests}).get("UnprocessedItems", {})
            requests = unprocessed.get(table, [])

    with ThreadPoolExecutor(LOADER_THREADS) as pool:
        list(pool.map(write, _chunks(orders, DYNAMODB_BATCH)))


def _send_messages(queue_url: str, orders: list[Order]) -> None:
    sqs = aws.client("sqs", max_pool_connections=LOADER_THREADS)

    def send(chunk: list[Order]) -> None:
        response = sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(n), "MessageBody": o.to_json()} for n, o in enumerate(chunk)]
        )
        if response.get("Failed"):
            raise WorkerBenchError(f"SendMessageBatch failed: {response['Failed'][0]}")

    with ThreadPoolExecutor(LOADER_THREADS) as pool:
        list(pool.map(send, _chunks(orders, SQS_BATCH)))


def _queue_empty(queue_url: str) -> bool:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )
    return all(v == "0" for v in attributes["Attributes"].values())


def _celery_feed(orders: list[Order]) -> str:
    """Celery's own client sends the orders (from a few threads, as the loader does); returns its queue's URL."""
    from bench.benchmarks import celery_peer  # imports Celery: only for the runs that need it

    with ThreadPoolExecutor(LOADER_THREADS) as pool:
        list(pool.map(lambda o: celery_peer.pay.apply_async(args=[o.to_json()]), orders))
    return str(aws.client("sqs").get_queue_url(QueueName=celery_peer.QUEUE_NAME)["QueueUrl"])


@dataclass(frozen=True)
class Contender:
    """A worker implementation, started and fed the same way at every level."""

    name: str
    command: Callable[[int], tuple[str, ...]]  # the process for `workers` concurrent payments; () = flashsale's
    feed: Callable[[str, list[Order]], str]  # (order queue URL, orders) -> the URL of the queue that drains
    settings: Mapping[str, str] = field(default_factory=dict)  # on top of the deployed task's
    https: bool = True  # reaches AWS as the tasks do (TLS fronts, the role's credentials, IAM enforced)


def _stack_queue_feed(queue_url: str, orders: list[Order]) -> str:
    _send_messages(queue_url, orders)
    return queue_url


FLASHSALE = Contender("flashsale", lambda workers: (), _stack_queue_feed)
# The same worker without the buyers' wait metric: a worker that is told no stack writes none.
FLASHSALE_NO_WAIT_METRIC = Contender(
    "flashsale-no-wait-metric", lambda workers: (), _stack_queue_feed, {contract.ENV_STACK_NAME: ""}
)
CELERY = Contender(
    "celery",
    lambda workers: (
        sys.executable,
        "-m",
        "celery",
        "-A",
        "bench.benchmarks.celery_peer",
        "worker",
        "--pool",
        "gevent",
        "--concurrency",
        str(workers),
        "--loglevel",
        "warning",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
    ),
    lambda queue_url, orders: _celery_feed(orders),
    # kombu's SQS transport takes its keys from the broker URL and speaks plain HTTP to the endpoint: Celery runs on
    # the emulator's own port with the emulator's keys, outside the TLS fronts and the IAM gate (no TLS cost).
    https=False,
)
REPORT_THREADS = Contender(
    "report-threads", lambda workers: (sys.executable, "-m", "bench.benchmarks.thread_peer"), _stack_queue_feed
)


def run_level(
    bed: Bed, workers: int, rounds: int, payment_seconds: float, contender: Contender = FLASHSALE
) -> WorkerLevel:
    """Drain `rounds x workers` pre-loaded orders with one worker process of `workers` concurrent payments."""
    outputs = bed.fresh()
    orders = [sample_order() for _ in range(rounds * workers)]
    _put_records(outputs[output_names.ORDERS_TABLE], orders)
    ideal = rounds * payment_seconds
    name = f"{contender.name}-{workers}"
    with bed.service(
        "worker",
        name,
        contender.command(workers),
        {
            **contender.settings,
            contract.ENV_WORKER_COUNT: str(workers),
            contract.ENV_PAYMENT_SECONDS: str(payment_seconds),
        },
        https=contender.https,
    ) as worker:
        cpu_before, emulator_before, wall_before = cpu_seconds(worker.pid), bed.emulator_cpu(), time.monotonic()
        queue_url = contender.feed(outputs[output_names.QUEUE_URL], orders)
        allowed = 3 * ideal + 30
        deadline = time.monotonic() + allowed
        while not _queue_empty(queue_url):
            if worker.process is None or worker.process.poll() is not None:
                raise WorkerBenchError(f"{name} exited while draining {len(orders)} orders; see {worker.log_path}")
            if time.monotonic() > deadline:
                worker.kill()  # failed already: a graceful stop would only wait for payments in flight
                raise WorkerBenchError(
                    f"{name} did not drain {len(orders)} orders within {allowed:.0f} s "
                    f"(3 x the ideal {ideal:g} s + 30 s); see {worker.log_path}"
                )
            time.sleep(DRAIN_POLL_SECONDS)
        cpu = cpu_seconds(worker.pid) - cpu_before
        emulator_share = (bed.emulator_cpu() - emulator_before) / (time.monotonic() - wall_before)
        peak = peak_rss_mb(worker.pid)
        worker.kill()  # measured: a graceful stop would only wait for long polls (Celery's take up to 10 s)
    return _level(contender, worker, workers, payment_seconds, len(orders), cpu, peak, emulator_share)


def _level(
    contender: Contender,
    worker: Task,
    workers: int,
    payment_seconds: float,
    orders: int,
    cpu: float,
    peak: float,
    emulator_share: float,
) -> WorkerLevel:
    events = worker.events()
    started = [log_time(e["ts"]) for e in events if e.get("event") == "processing"]
    paid = [log_time(e["ts"]) for e in events if e.get("event") in PAYMENT_LINES]
    if len(paid) != orders:
        raise WorkerBenchError(f"{len(paid)} of {orders} orders were paid; see {worker.log_path}")
    drain = max(paid) - min(started)
    ideal = orders / workers * payment_seconds
    return WorkerLevel(
        contender=contender.name,
        workers=workers,
        payment_seconds=payment_seconds,
        orders=orders,
        drain_seconds=round(drain, 3),
        efficiency=round(ideal / drain, 4),
        cpu_ms_per_order=round(1000 * cpu / orders, 3),
        log_bytes_per_order=round(worker.log_path.stat().st_size / orders, 1),
        peak_rss_mb=round(peak, 1),
        emulator_cpu_share=round(emulator_share, 2),
    )
