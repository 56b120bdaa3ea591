"""Backend ceiling: what the emulator itself allows, so the receiver's throughput is quoted as a share of it.

A plain boto3 client in this process does the receiver's two calls per order (conditional PutItem of the pending
record, then SNS Publish) from a few threads as fast as it can, for a fixed time.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from app import aws, contract
from app.store import OrderStore
from benchmarks.bed import Bed, sample_order

THREADS = 8  # more threads only add GIL contention in this one client process


@dataclass(frozen=True)
class Ceiling:
    orders: int
    seconds: float
    threads: int
    rate: float  # put+publish orders per second


def backend_ceiling(bed: Bed, seconds: float) -> Ceiling:
    outputs = bed.fresh()
    store = OrderStore(aws.client("dynamodb", max_pool_connections=THREADS), outputs[contract.OUTPUT_ORDERS_TABLE])
    sns = aws.client("sns", max_pool_connections=THREADS)
    topic_arn = outputs[contract.OUTPUT_TOPIC_ARN]
    done = threading.Event()

    def orders_until_done() -> int:
        count = 0
        while not done.is_set():
            order = sample_order()
            store.put_pending(order.order_id, order.customer_id, order.items_json(), order.total)
            sns.publish(TopicArn=topic_arn, Message=order.to_json())
            count += 1
        return count

    with ThreadPoolExecutor(THREADS) as pool:
        started = time.monotonic()
        futures = [pool.submit(orders_until_done) for _ in range(THREADS)]
        time.sleep(seconds)
        done.set()
        total = sum(f.result() for f in futures)
        elapsed = time.monotonic() - started
    return Ceiling(orders=total, seconds=round(elapsed, 3), threads=THREADS, rate=round(total / elapsed, 1))
