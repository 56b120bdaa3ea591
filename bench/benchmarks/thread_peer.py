"""`python -m bench.benchmarks.thread_peer`: the report's worker design ported literally, a peer for `python -m
bench.benchmarks`.

WORKER_COUNT threads (the Go version's goroutines), each on its own: long-poll the order queue for one message (20 s),
pay it (bench.benchmarks.peer_work: flashsale's per-order work), delete it, again. One boto3 client per service, shared
by
the threads (boto3 clients are thread-safe), with a connection for each thread. Ready once every thread runs: it
touches $HEARTBEAT_FILE. SIGTERM ends it at once (the benchmark stops it only after the queue is drained).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app import aws, contract, settings
from app.settings import WorkerSettings
from app.store import OrderStore
from bench.benchmarks.peer_work import pay_order

WAIT_SECONDS = contract.ORDER_QUEUE.receive_wait_time_seconds
ERROR_PAUSE_SECONDS = 1.0


def work(n: int, config: WorkerSettings, sqs: Any, store: OrderStore) -> None:
    worker = f"WORKER-{n}"
    while True:
        try:
            messages = sqs.receive_message(
                QueueUrl=config.queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=WAIT_SECONDS
            ).get("Messages", [])
            for message in messages:
                if pay_order(message["Body"], worker, store, config.payment):
                    sqs.delete_message(QueueUrl=config.queue_url, ReceiptHandle=message["ReceiptHandle"])
        except (BotoCoreError, ClientError):
            time.sleep(ERROR_PAUSE_SECONDS)  # the message comes back after its visibility timeout


def main() -> int:
    config = settings.worker()
    pool = config.worker_count
    sqs = aws.client("sqs", read_timeout=WAIT_SECONDS + 10, max_pool_connections=pool)
    store = OrderStore(aws.client("dynamodb", read_timeout=5, max_pool_connections=pool), config.table)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    for n in range(1, config.worker_count + 1):
        threading.Thread(target=work, args=(n, config, sqs, store), daemon=True, name=f"worker-{n}").start()
    Path(config.heartbeat_file).touch()
    stop.wait()
    sys.stdout.flush()
    os._exit(0)  # threads blocked in a long poll would hold the exit for up to 20 s


if __name__ == "__main__":
    sys.exit(main())
