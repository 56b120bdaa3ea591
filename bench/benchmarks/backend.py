"""Backend ceiling: what the emulator itself allows, so the receiver's throughput is quoted as a share of it.

A plain boto3 client in this process makes the receiver's calls for batches of orders as fast as it can, from a few
threads, for a fixed time: the pending records of STATEMENT_BATCH orders in one BatchExecuteStatement (PartiQL
INSERTs), then their events in PublishBatch calls of PUBLISH_BATCH. These are the receiver's calls at their fullest,
so the rate is the most the emulator gives for them.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from app import aws
from app.receiver import PUBLISH_BATCH
from app.store import STATEMENT_BATCH, OrderStore, statement_errors
from bench.benchmarks.bed import Bed, sample_order
from stackconfig import output_names

THREADS = 8  # more threads only add GIL contention in this one client process


class CeilingError(RuntimeError):
    pass


@dataclass(frozen=True)
class Ceiling:
    orders: int
    seconds: float
    threads: int
    orders_per_call: int  # records per BatchExecuteStatement; events go PUBLISH_BATCH a call
    rate: float  # orders per second, record and event each


def backend_ceiling(bed: Bed, seconds: float) -> Ceiling:
    outputs = bed.fresh()
    dynamodb = aws.client("dynamodb", max_pool_connections=THREADS)
    store = OrderStore(dynamodb, outputs[output_names.ORDERS_TABLE])
    sns = aws.client("sns", max_pool_connections=THREADS)
    topic_arn = outputs[output_names.TOPIC_ARN]
    done = threading.Event()

    def orders_until_done() -> int:
        count = 0
        while not done.is_set():
            orders = [sample_order() for _ in range(STATEMENT_BATCH)]
            response = dynamodb.batch_execute_statement(
                Statements=[store.pending_insert(o.order_id, o.customer_id, o.items_json(), o.total) for o in orders]
            )
            if any(statement_errors(response)):
                raise CeilingError(f"an INSERT failed: {next(e for e in statement_errors(response) if e)}")
            for start in range(0, len(orders), PUBLISH_BATCH):
                published = sns.publish_batch(
                    TopicArn=topic_arn,
                    PublishBatchRequestEntries=[
                        {"Id": str(n), "Message": o.to_json()}
                        for n, o in enumerate(orders[start : start + PUBLISH_BATCH])
                    ],
                )
                if published.get("Failed"):
                    raise CeilingError(f"a publish failed: {published['Failed'][0]}")
            count += len(orders)
        return count

    with ThreadPoolExecutor(THREADS) as pool:
        started = time.monotonic()
        futures = [pool.submit(orders_until_done) for _ in range(THREADS)]
        time.sleep(seconds)
        done.set()
        total = sum(f.result() for f in futures)
        elapsed = time.monotonic() - started
    return Ceiling(
        orders=total,
        seconds=round(elapsed, 3),
        threads=THREADS,
        orders_per_call=STATEMENT_BATCH,
        rate=round(total / elapsed, 1),
    )
