"""The orphan sweeper: closes orders left pending with no message behind them, so none stays pending for ever.

A pending record with no message cannot be finished by any worker. The receiver leaves one only if it stops between
its record write and its publish (killed, its task lost); a retried write whose first attempt landed is no orphan
(the receiver goes on to publish it). `handler` (the AWS Lambda entry, run by an EventBridge schedule,
`contract.SWEEP_SCHEDULE`; on one machine the bench's `bench.localaws.sweeps` calls `sweep` on the same clock) finds
the pending records older than `contract.ORPHAN_AFTER_SECONDS`, the age past which no message for the order can exist,
and closes each as failed with `contract.ORPHAN_REASON`: never paid, never re-published. Re-publishing would be safe
per order id (the worker pays an order id once), but its client was told 503 or got no answer, and one who retried
without an Idempotency-Key already has a second order: paying this one too would charge that customer twice.

Each close is conditional on the record still being pending (the worker's status-write condition), so a payment that
commits meanwhile wins and a final status is never overwritten. One log line per closed order, one per run with the
counts.

Scan with a filter, not an index: a run reads the whole table (the filter only trims what comes back), 1 read unit
per 8 KB eventually consistent, so a million kept orders of ~300 bytes cost ~37,500 on-demand read units a run,
under a cent (on-demand prices when written: $0.125 per million reads, $0.625 per million writes), and a daily run
(`contract.SWEEP_EVERY_SECONDS`; the bound is 15 days, a day more hurts no one) ~$0.15 a month per million orders
kept. A sparse index of pending orders would read only the pending ones, but every order would pay for it on the hot
path: an index write when the receiver records it and another when the worker settles it, ~$1.25 per million orders
sold, and the worker's one status write would also have to remove the indexed attribute. A flash sale writes many
orders at once and orphans are rare: the daily scan costs less as long as the table keeps under about eight months
of sales, and leaves the hot path as it is. (A table that large is sharded with a parallel Scan, `Segment`.)

It ships in a Lambda, so it imports only boto3 and the standard library (so do the app modules it ships with,
`components.sweeper.SWEEPER`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from app import aws, contract, logs
from app.store import STATEMENT_BATCH, OrderStore, WriteFailed


@dataclass
class Swept:
    """One run's counts."""

    found: int = 0  # pending records past the bound
    closed: int = 0  # closed as failed
    settled_meanwhile: int = 0  # final by the time of the write (a worker won): left as they are
    errors: int = 0  # the write failed for another reason; the next run tries again


def sweep(store: OrderStore, now: float, older_than: float = contract.ORPHAN_AFTER_SECONDS) -> Swept:
    """Close every pending record recorded more than `older_than` seconds before `now`."""
    swept = Swept()
    batch: list[str] = []

    def close() -> None:
        for order_id, result in zip(batch, store.close_many(batch, contract.ORPHAN_REASON), strict=True):
            if isinstance(result, WriteFailed):
                swept.errors += 1
                logs.event("sweep_error", f"[SWEEPER] Order {order_id} not closed: {result}", order_id=order_id)
            elif result:
                swept.closed += 1
                logs.event(
                    "orphan_closed",
                    f"[SWEEPER] Order {order_id} closed as failed: {contract.ORPHAN_REASON}",
                    order_id=order_id,
                )
            else:
                swept.settled_meanwhile += 1
        batch.clear()

    for order_id in store.pending_before(now - older_than):
        swept.found += 1
        batch.append(order_id)
        if len(batch) == STATEMENT_BATCH:
            close()
    if batch:
        close()
    logs.event(
        "sweep",
        f"[SWEEPER] {swept.closed} orphaned orders closed ({swept.found} found, "
        f"{swept.settled_meanwhile} settled meanwhile, {swept.errors} errors)",
        **vars(swept),
    )
    return swept


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """AWS Lambda entry: the function runs on the EventBridge schedule."""
    store = OrderStore(aws.client("dynamodb"), os.environ[contract.ENV_ORDERS_TABLE])
    return vars(sweep(store, time.time()))
