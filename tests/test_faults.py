"""Fault injection: a steady stream of orders (20/s, 0.3 s payments, 5 % declines) through the real services while
workers and the receiver are SIGKILLed, the emulator goes away, payments outlive the visibility timeout and poison
messages arrive. Every order answered 202 must end `completed` or `failed`, and none may be paid twice.

Run alone with `pytest -m faults -s` (the tally lines are printed); each test prints
`accepted=N completed=N failed=N lost=0 duplicated=0`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import aws, contract
from app.orders import Order, parse_order
from app.store import OrderStore
from app.worker import MAX_BACKOFF_SECONDS
from bench.localaws.emulators import Emulator
from bench.localaws.tasks import Task
from stackconfig import output_names
from stackconfig.files import ROOT
from tests.faults_helpers import CONNECTION_ERROR, RetryingStream, Stream, orders_per_key, settle
from tests.helpers import ORDER, System, own_data_plane, system, wait_for  # noqa: F401

pytestmark = [pytest.mark.faults, pytest.mark.slow]

VISIBILITY = 3  # seconds: a killed worker's messages come back in 3 s rather than the report's 30
WORKER = {contract.ENV_WORKER_COUNT: "10", contract.ENV_PAYMENT_DECLINE_RATE: "0.05"}


def set_visibility(outputs: dict[str, str], seconds: int) -> None:
    aws.client("sqs").set_queue_attributes(
        QueueUrl=outputs[output_names.QUEUE_URL], Attributes={"VisibilityTimeout": str(seconds)}
    )


def events(service: Task, name: str) -> list[dict[str, Any]]:
    return [e for e in service.events() if e.get("event") == name]


def unfinished(worker: Task) -> set[str]:
    """Orders this worker started paying and never finished (in flight, or cut off by a kill)."""
    finished = {e["order_id"] for e in worker.events() if e.get("event", "").startswith("payment_")}
    return {e["order_id"] for e in events(worker, "processing")} - finished


def backoff_delays(worker: Task) -> list[float]:
    """The delays the worker chose after failed receives, from its log lines (`... retrying in 1.3s`)."""
    found = (re.search(r"retrying in ([\d.]+)s", e["msg"]) for e in events(worker, "receive_failed"))
    return [float(m.group(1)) for m in found if m]


def restart(system: System, task: Task) -> Task:
    """Start the same task again, same settings and port, logging to a new file."""
    n = sum(t.role == task.role for t in system.tasks)
    args = dataclasses.replace(task.args, port=task.port, log_path=task.log_path.with_name(f"{task.role}-{n}.log"))
    started = Task(args).start()
    system.tasks.append(started)
    return started


def test_worker_sigkilled_mid_batch_twice_loses_and_doubles_nothing(system: System) -> None:  # noqa: F811
    """Two SIGKILLs cut off payments in flight; their messages come back after the visibility timeout and are paid by
    the restarted worker. A charge is committed by the conditional status write, so none is ever committed twice."""
    set_visibility(system.outputs, VISIBILITY)
    receiver = system.start("receiver")
    worker = system.start("worker", **WORKER)
    interrupted = 0
    with Stream(receiver.url) as stream:
        for _ in range(2):
            stream.wait_accepted(120)  # ~6 s at 20/s
            wait_for(functools.partial(unfinished, worker), 5, "payments in flight")
            worker.kill()
            interrupted += len(unfinished(worker))
            worker = restart(system, worker)
        stream.wait_accepted(120)
    tally = settle(system, stream.accepted)
    print(f"payments cut off by the two SIGKILLs: {interrupted}")
    assert interrupted > 0  # the kills really hit work in flight
    assert tally.accepted >= 300 and tally.lost == 0 and tally.duplicated == 0
    assert tally.completed + tally.failed == tally.accepted


def test_receiver_sigkilled_and_restarted_never_acknowledges_a_lost_order(system: System) -> None:  # noqa: F811
    receiver = system.start("receiver")
    system.start("worker", **WORKER)
    with Stream(receiver.url) as stream:
        stream.wait_accepted(120)
        receiver.kill()
        time.sleep(1)  # the crash lasts a second before the restart
        receiver = restart(system, receiver)
        stream.wait_accepted(120)
    tally = settle(system, stream.accepted)
    orphans = [o for o in system.orders() if o[contract.ORDER_KEY] not in set(stream.accepted)]
    print(f"answers: {dict(stream.answers)}; records of unacknowledged orders: {len(orphans)}")
    assert stream.count(CONNECTION_ERROR) > 0  # clients saw the crash as errors, not as 202s
    assert tally.accepted >= 200 and tally.lost == 0 and tally.duplicated == 0


def test_clients_retrying_with_their_key_through_a_receiver_stall_get_one_order_each(system: System) -> None:  # noqa: F811
    """Clients time out after 0.5 s and retry with the same Idempotency-Key while the receiver is stalled (SIGSTOP
    for 2 s): their requests pile up and all arrive when it resumes. Each key must end as exactly one order, the one
    its 202 named, paid once."""
    receiver = system.start("receiver")
    system.start("worker", **WORKER)
    assert receiver.process is not None
    with RetryingStream(receiver.url) as stream:
        stream.wait_accepted(80)
        receiver.process.send_signal(signal.SIGSTOP)
        time.sleep(2.0)  # the stall's length: 4 client timeouts
        receiver.process.send_signal(signal.SIGCONT)
        stream.wait_accepted(80)
    tally = settle(system, stream.accepted)
    found = orders_per_key(system, stream.keys)
    duplicated_orders = sum(len(ids) - 1 for ids in found.values() if len(ids) > 1)
    print(
        f"answers: {dict(stream.answers)}; attempts {stream.attempts} for {len(stream.keys)} keys; "
        f"duplicated orders={duplicated_orders}"
    )
    assert stream.count("timeout") > 0  # the stall really made clients time out and retry
    assert stream.attempts > len(stream.keys)
    assert duplicated_orders == 0
    assert all(found[key] == {order_id} for key, order_id in stream.keys.items())
    assert tally.accepted >= 100 and tally.lost == 0 and tally.duplicated == 0


@pytest.fixture
def outage_system(tmp_path: Path, moto: Emulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[System, Emulator]]:
    """A ministack of its own that keeps its state across a restart (PERSIST_STATE=1), with the stack deployed to it,
    for a test that stops it; the session's emulator stays untouched."""
    with own_data_plane(tmp_path, moto, monkeypatch, persist_dir=tmp_path / "state") as (emulator, deployed, services):
        running = System(deployment=deployed, aws_env=dict(os.environ), logs=tmp_path, services=services)
        yield running, emulator
        for task in running.tasks:
            task.stop(timeout=10)


def test_emulator_outage_answers_503_with_retry_after_and_everything_recovers(
    outage_system: tuple[System, Emulator],
) -> None:
    """The emulator is stopped for 5 s and started again on the same port with PERSIST_STATE=1: its queues,
    in-flight messages, subscription and orders survive, as AWS's would (resources are not re-created).

    The queue keeps the report's 30 s visibility timeout: a payment made during the outage must be recorded by
    retrying the status write, not by redelivery (which would pay it again)."""
    system, emulator = outage_system
    receiver = system.start("receiver")
    worker = system.start("worker", **{**WORKER, contract.ENV_WORKER_COUNT: "20"})  # two receive loops
    with Stream(receiver.url) as stream:
        stream.wait_accepted(120)
        emulator.stop()
        unavailable_before = stream.count("503")
        time.sleep(5)  # the outage's length
        unavailable = stream.count("503") - unavailable_before
        emulator.start()
        accepted_before = stream.count("202")
        stream.wait_accepted(160)  # ~8 s at 20/s: the receiver accepts again by itself
        recovered = stream.count("202") - accepted_before
    tally = settle(system, stream.accepted, timeout=90)
    delays = backoff_delays(worker)
    retried = len(events(worker, "record_failed"))
    print(f"answers: {dict(stream.answers)}; worker backoffs (s): {delays}; status writes retried: {retried}")
    assert unavailable > 0 and stream.unavailable_without_retry_after == 0
    assert recovered > 0  # the receiver accepts again by itself
    assert len(delays) >= 3 and len(set(delays)) > 1  # retried, with jittered (not fixed) delays
    assert all(0 <= d <= MAX_BACKOFF_SECONDS for d in delays)
    assert receiver.process and receiver.process.poll() is None and worker.process and worker.process.poll() is None
    assert tally.accepted >= 200 and tally.lost == 0 and tally.duplicated == 0


def test_payments_outliving_the_visibility_timeout_are_not_paid_twice(system: System) -> None:  # noqa: F811
    """Visibility 2 s, payments 3 s, two workers: the worker extends visibility, so no order is handed out twice;
    a duplicate message sent while its order is being paid is skipped or voided by the conditional status write."""
    set_visibility(system.outputs, 2)
    receiver = system.start("receiver")
    slow = {**WORKER, contract.ENV_PAYMENT_SECONDS: "3"}
    workers = [system.start("worker", **slow), system.start("worker", **slow)]
    with Stream(receiver.url, rate=4) as stream:
        stream.wait_accepted(20)
    duplicates = stream.accepted[:3]
    template = parse_order(ORDER)
    for order_id in duplicates:  # as SNS may deliver a message twice
        aws.client("sqs").send_message(
            QueueUrl=system.outputs[output_names.QUEUE_URL], MessageBody=Order.new(template, order_id).to_json()
        )
    tally = settle(system, stream.accepted)
    handed_out = [e["order_id"] for w in workers for e in events(w, "processing")]
    second_delivery = [
        e["order_id"]
        for w in workers
        for e in events(w, "skipped") + events(w, "duplicate_payment") + events(w, "payment_replayed")
    ]
    print(f"deliveries: {len(handed_out)} paid, {len(second_delivery)} skipped or voided")
    assert sorted(o for o in handed_out if o not in duplicates) == sorted(stream.accepted[3:])  # each once
    assert sorted(second_delivery) == sorted(duplicates)
    assert tally.accepted >= 15 and tally.lost == 0 and tally.duplicated == 0


def dlq_command(system: System, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "ops.dlq", *args, "--json", "--dlq-url", system.outputs[output_names.DLQ_URL]],
        cwd=ROOT,
        env=system.aws_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_poison_messages_are_dead_lettered_logged_once_and_redriven(system: System) -> None:  # noqa: F811
    receiver = system.start("receiver")
    worker = system.start("worker", **WORKER)
    item = {"product_id": "PROD-001", "quantity": 2, "price": 49.99}
    poison = {
        "not JSON": "<order>1</order>",
        "unknown schema": json.dumps({"sku": "PROD-001", "qty": 2}),
        "huge": json.dumps({"order_id": "huge", "customer_id": 1, "items": [item] * 3000}),
    }
    queue = system.outputs[output_names.QUEUE_URL]
    ids = {
        aws.client("sqs").send_message(QueueUrl=queue, MessageBody=body)["MessageId"]: kind
        for kind, body in poison.items()
    }
    with Stream(receiver.url) as stream:
        stream.wait_accepted(160)
    wait_for(lambda: system.queue_counts(output_names.DLQ_URL)[0] == 3, 20, "the poison messages in the DLQ")
    logged = events(worker, "poison")
    print("poison reasons: " + "; ".join(f"{ids[e['message_id']]}: {e['reason'][:60]}" for e in logged))
    assert sorted(e["message_id"] for e in logged) == sorted(ids)  # each logged once, with its reason
    assert all(e["reason"] for e in logged)
    listed = dlq_command(system, "list")
    assert len(listed) == 3 and {d["size"] for d in listed} >= {len(poison["huge"])}
    stranded = parse_order(ORDER)  # accepted, then dead-lettered as if a since-fixed bug had failed it 3 times
    OrderStore(aws.client("dynamodb"), system.outputs[output_names.ORDERS_TABLE]).put_pending(
        stranded.order_id, stranded.customer_id, stranded.items_json(), stranded.total
    )
    aws.client("sqs").send_message(QueueUrl=system.outputs[output_names.DLQ_URL], MessageBody=stranded.to_json())
    moved = dlq_command(system, "redrive", "--queue-url", queue)
    assert moved["moved"] == 4 and moved["failures"] == []  # poison that came straight back is not moved again
    tally = settle(system, [*stream.accepted, stranded.order_id])
    wait_for(lambda: sum(system.queue_counts(output_names.DLQ_URL)) == 3, 20, "the poison back in the DLQ")
    assert httpx.get(f"{receiver.url}/orders/{stranded.order_id}").json()["status"] in ("completed", "failed")
    assert tally.accepted >= 100 and tally.lost == 0 and tally.duplicated == 0
