"""The orphan sweeper (app.sweeper) against ministack, with the deployed stack's table: a pending record with no
message behind it, older than the bound, is closed as failed with its reason, and GET /orders/{id} says so; a young
pending order with its message waiting is left alone; a worker that pays an order while the sweeper runs wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from app import aws, contract
from app.contract import OrderStatus
from app.store import OrderStore, Outcome
from app.sweeper import sweep
from bench.localaws.resources.events import rate_seconds
from bench.localaws.resources.registry import Invalid
from bench.localaws.scheduled import SCHEDULED
from components.sweeper import SWEEPER_HANDLER
from stackconfig import output_names
from stackconfig.files import ROOT
from tests.helpers import System, payments, post, system, wait_for  # noqa: F401


def _store(system: System) -> OrderStore:  # noqa: F811
    return OrderStore(aws.client("dynamodb"), system.outputs[output_names.ORDERS_TABLE])


def _orphan(store: OrderStore, table: str, order_id: str, age: float) -> None:
    """A pending record as the receiver writes it, `age` seconds old, with no event published for it (the receiver
    stopped between its two calls)."""
    record = store.pending(order_id, 1234, '[{"product_id":"PROD-001","quantity":1,"price":1.0}]', 1.0)
    old = store.item(record) | {"created_at": {"N": repr(round(time.time() - age, 3))}}
    aws.client("dynamodb").put_item(TableName=table, Item=old)


def test_an_old_orphan_is_closed_with_its_reason_and_a_young_order_with_its_message_is_left(
    system: System,  # noqa: F811
) -> None:
    store, table = _store(system), system.outputs[output_names.ORDERS_TABLE]
    receiver = system.start("receiver")
    young = post(receiver, "/orders/async").json()["order_id"]  # its message waits: no worker runs yet
    orphans = [f"0000000{n}-0000-4000-8000-000000000000" for n in range(3)]
    for order_id in orphans:
        _orphan(store, table, order_id, contract.ORPHAN_AFTER_SECONDS + 60)
    almost = "10000000-0000-4000-8000-000000000000"
    _orphan(store, table, almost, contract.ORPHAN_AFTER_SECONDS - 60)  # not yet past the bound: a message may exist

    swept = sweep(store, time.time())

    assert (swept.found, swept.closed, swept.settled_meanwhile, swept.errors) == (3, 3, 0, 0)
    for order_id in orphans:
        shown = httpx.get(f"{receiver.url}/orders/{order_id}").json()
        assert shown["status"] == "failed" and shown["reason"] == contract.ORPHAN_REASON, shown
        assert "queue_position" not in shown and "worker" not in shown
    assert system.order(almost)["status"] == "pending"  # type: ignore[index]
    assert system.order(young)["status"] == "pending"  # type: ignore[index]
    assert system.queue_counts() == (1, 0)  # the young order's message is still there: it will be paid
    worker = system.start("worker", PAYMENT_SECONDS="0.1", PAYMENT_DECLINE_RATE="0")
    system.wait_status(young, "completed")
    wait_for(lambda: payments([worker], young) == 1, 10, "the young order's payment")
    assert sweep(store, time.time()).found == 0  # closed orders are not found again


def test_more_orphans_than_one_write_call_takes_are_all_closed(system: System) -> None:  # noqa: F811
    store, table = _store(system), system.outputs[output_names.ORDERS_TABLE]
    orphans = [f"2{n:07d}-0000-4000-8000-000000000000" for n in range(30)]  # 25 a BatchExecuteStatement
    for order_id in orphans:
        _orphan(store, table, order_id, contract.ORPHAN_AFTER_SECONDS + 1)
    assert sweep(store, time.time()).closed == 30
    assert {o["status"] for o in system.orders()} == {"failed"}


class WorkerPaysFirst(OrderStore):
    """The race: each order the sweeper finds is paid by a worker (its real status write) before the sweeper's write."""

    def pending_before(self, cutoff: float) -> Iterator[str]:
        for order_id in super().pending_before(cutoff):
            paid = Outcome(OrderStatus.COMPLETED, "WORKER-1", 0.1, time.time())
            assert self.finish_many([(order_id, paid)]) == [True]
            yield order_id


def test_a_worker_paying_while_the_sweeper_runs_wins_and_its_status_stands(system: System) -> None:  # noqa: F811
    store, table = _store(system), system.outputs[output_names.ORDERS_TABLE]
    order_id = "30000000-0000-4000-8000-000000000000"
    _orphan(store, table, order_id, contract.ORPHAN_AFTER_SECONDS + 1)
    racing = WorkerPaysFirst(aws.client("dynamodb"), system.outputs[output_names.ORDERS_TABLE])
    swept = sweep(racing, time.time())
    assert (swept.found, swept.closed, swept.settled_meanwhile) == (1, 0, 1)
    record = store.get(order_id)
    assert record is not None and record.status is OrderStatus.COMPLETED and record.worker == "WORKER-1"
    assert record.reason == ""  # the sweeper's reason was not written over the payment


def test_the_deployed_schedule_runs_the_sweeper_locally_with_its_deployed_environment(system: System) -> None:  # noqa: F811
    """What the local system starts for the EventBridge rule (moto never fires it): the function's handler, with the
    function's environment as deployed, on the rule's period; here once."""
    (schedule,) = system.deployment.schedules
    assert (schedule.handler, schedule.every_seconds) == (SWEEPER_HANDLER, contract.SWEEP_EVERY_SECONDS)
    store, table = _store(system), system.outputs[output_names.ORDERS_TABLE]
    order_id = "40000000-0000-4000-8000-000000000000"
    _orphan(store, table, order_id, contract.ORPHAN_AFTER_SECONDS + 1)
    done = subprocess.run(
        [sys.executable, "-m", "bench.localaws.scheduled", "--handler", schedule.handler, "--once"],
        env={**os.environ, **system.aws_env, **schedule.environment},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [e["order_id"] for e in events if e["event"] == "orphan_closed"] == [order_id]
    (run,) = [line for line in done.stdout.splitlines() if line.startswith(SCHEDULED)]
    assert json.loads(run.split(" ", 2)[2])["closed"] == 1
    assert system.order(order_id)["reason"] == contract.ORPHAN_REASON  # type: ignore[index]


@pytest.mark.parametrize(
    ("expression", "seconds"), [("rate(1440 minutes)", 86_400), ("rate(1 day)", 86_400), ("rate(2 hours)", 7_200)]
)
def test_rate_expressions_read_as_eventbridge_reads_them(expression: str, seconds: int) -> None:
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize("expression", ["rate(1 days)", "rate(2 hour)", "rate(0 minutes)", "cron(0 3 * * ? *)"])
def test_rate_expressions_eventbridge_refuses_and_cron_which_is_not_modelled_are_refused(expression: str) -> None:
    with pytest.raises(Invalid):
        rate_seconds(expression)
