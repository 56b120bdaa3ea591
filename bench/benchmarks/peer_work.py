"""What a peer worker does with one order: flashsale's worker's per-order work, in the blocking style of a thread or
a greenlet, so that the peers are compared on the same work.

Check the record (an order already final, or unknown, is not paid), log `processing`, pay (the simulated gateway of
app.payment: PAYMENT_SECONDS, declined at PAYMENT_DECLINE_RATE, here as a blocking sleep), commit the outcome with
the same conditional status write (app.store.finish_many, one statement), log the payment line. The log lines are
app.logs lines, so the benchmark times every contender from the same events.
"""

from __future__ import annotations

import random
import time

from app import logs
from app.contract import OrderStatus
from app.orders import parse_order_message
from app.payment import DECLINE_REASON
from app.settings import PaymentSettings
from app.store import OrderStore, Outcome, WriteFailed, now


def pay_order(body: str, worker: str, store: OrderStore, payment: PaymentSettings) -> bool:
    """Pay one order message; True when the message is finished with (delete or acknowledge it), False for a
    poison message (left for the DLQ). Raises on backend errors (the message comes back)."""
    try:
        order = parse_order_message(body)
    except ValueError:
        return False
    record = store.get_many([order.order_id]).get(order.order_id)  # the worker's one read, BatchGetItem (its grant)
    if isinstance(record, ValueError):
        return False
    if record is None or record.status.final:
        return True
    logs.event("processing", f"[{worker}] Processing order {order.order_id}", order_id=order.order_id, worker=worker)
    started = time.monotonic()
    time.sleep(payment.seconds)
    approved = random.random() >= payment.decline_rate
    status = OrderStatus.COMPLETED if approved else OrderStatus.FAILED
    outcome = Outcome(status, worker, time.monotonic() - started, now(), "" if approved else DECLINE_REASON)
    (written,) = store.finish_many([(order.order_id, outcome)])
    if isinstance(written, WriteFailed):
        raise written
    logs.event(
        f"payment_{status}",
        f"[{worker}] Order {order.order_id} payment "
        f"{'COMPLETED' if approved else 'DECLINED'} in {outcome.duration:.2f}s",
        order_id=order.order_id,
        worker=worker,
        seconds=round(outcome.duration, 3),
    )
    return True
