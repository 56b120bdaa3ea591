"""The local system: `bench.local up` as a person runs it, and the local ECS keeping the deployed services running.

The in-process tests share one LocalSystem (the normal stack, fast payments, the flash-sale alarm profile, queue
metrics fed every 0.2 s, and a worker drain bound far shorter than a payment, so that a busy task stopped by scale-in
would cut its payments off): its worker service's tasks are killed, scaled out with ops.prescale and scaled back.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from app import alarm_catalogue, aws, contract
from bench.localaws.emulators import Emulator
from bench.localaws.system import LocalArgs, LocalSystem
from bench.localaws.tasks import Task
from ops import alarms
from stackconfig import output_names
from stackconfig.files import ROOT
from tests.helpers import ORDER, wait_for
from tests.test_alarms import subscribed_queue

pytestmark = pytest.mark.slow


def _up(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.local",
            "up",
            "--dir",
            str(tmp_path),
            "--config",
            "paymentSeconds=0.2",
            "--config",
            "paymentDeclineRate=0",
            *args,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _roles(process: psutil.Process) -> list[str]:
    """The ROLE of each task process under `process` (the local ECS's children)."""
    roles = []
    for child in process.children(recursive=True):
        try:
            roles.append(child.environ().get(contract.ENV_ROLE, ""))
        except psutil.Error:
            continue
    return sorted(r for r in roles if r)


def test_up_deploys_the_program_serves_orders_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    local = _up(tmp_path, "--workers", "20")
    printed: list[str] = []
    assert local.stdout is not None
    for line in local.stdout:
        printed.append(line.rstrip())
        if line.startswith("Ctrl-C"):
            break
    text = "\n".join(printed)
    assert text.startswith("deployed stack normal to the local emulators: ")
    assert re.search(r"^\s+3 aws:ecs/service:Service$", text, re.MULTILINE)  # what it deployed, per type
    assert "stand-in: image not built" in text
    urls = {m.group(1): m.group(2) for m in re.finditer(r"^(sync|receiver): (http://\S+) ", text, re.MULTILINE)}
    outputs = tmp_path / "outputs.json"
    assert json.loads(outputs.read_text())[output_names.ASYNC_URL] == urls["receiver"]
    assert _roles(psutil.Process(local.pid)) == ["receiver", "sync", "sync", "worker"]  # syncTaskCount 2
    live = re.search(r"^live view: (http://127\.0\.0\.1:\d+/) \(updated every second\)$", text, re.MULTILINE)
    assert live, text
    assert httpx.get(live.group(1), timeout=10).text.startswith("<!doctype html>")
    assert httpx.get(live.group(1) + "api/state", timeout=10).json()["stack"] == "normal"

    accepted = httpx.post(urls["receiver"] + "/orders/async", json=ORDER, timeout=10).json()
    status = wait_for(
        lambda: (
            (s := httpx.get(f"{urls['receiver']}/orders/{accepted['order_id']}").json())["status"] == "completed" and s
        ),
        10,
        "the order to complete",
    )
    assert status["worker"].startswith("WORKER-")
    assert httpx.post(urls["sync"] + "/orders/sync", json=ORDER, timeout=10).status_code == 201
    # The outputs file names the emulators, so ops commands reach them with nothing exported.
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    status = subprocess.run(
        [sys.executable, "-m", "ops.alarms", "status", "--json", "--outputs", str(outputs)],
        cwd=ROOT,
        env=clean_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    assert len(json.loads(status.stdout)["alarms"]) == len(alarm_catalogue.ALARMS)

    children = psutil.Process(local.pid).children(recursive=True)
    local.send_signal(signal.SIGINT)
    assert local.wait(timeout=60) == 0
    assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children)


def test_a_taken_port_is_refused_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        local = _up(tmp_path, "--async-port", str(port))
        out, err = local.communicate(timeout=30)
    assert local.returncode != 0
    assert err.strip().splitlines() == [
        f"python -m bench.local: error: port {port} (--async-port) is taken: stop what uses it or choose another port"
    ]


@pytest.fixture(scope="module")
def local_system(
    tmp_path_factory: pytest.TempPathFactory, emulators: tuple[Emulator, Emulator]
) -> Iterator[LocalSystem]:
    args = LocalArgs(
        config={
            "paymentSeconds": 0.5,
            "paymentDeclineRate": 0,
            "alarmProfile": "flashsale",
            "acceptableLatencySeconds": 5,
        },
        env_overrides={contract.ENV_DRAIN_SECONDS: "0.05"},
        directory=tmp_path_factory.mktemp("local"),
        feed_seconds=0.2,
    )
    with pytest.MonkeyPatch.context() as monkeypatch, LocalSystem(args, emulators=emulators) as system:
        for key, value in system.env().items():
            monkeypatch.setenv(key, value)
        yield system


def _order_ids(count: int, url: str) -> list[str]:
    with httpx.Client(base_url=url, timeout=10) as client:
        return [client.post(contract.ASYNC_ORDERS_PATH, json=ORDER).json()["order_id"] for _ in range(count)]


def _all_completed(url: str, order_ids: list[str], timeout: float) -> None:
    def done() -> bool:
        with httpx.Client(base_url=url, timeout=10) as client:
            return all(client.get(f"/orders/{o}").json()["status"] == "completed" for o in order_ids)

    wait_for(done, timeout, "every accepted order to complete")


def test_a_killed_worker_task_is_replaced_and_every_accepted_order_completes(local_system: LocalSystem) -> None:
    workers = local_system.ecs.service("worker")
    url = local_system.outputs[output_names.ASYNC_URL]
    # Short visibility: the killed task's orders come back quickly (the program's 30 s would only make this slower).
    aws.client("sqs").set_queue_attributes(
        QueueUrl=local_system.outputs[output_names.QUEUE_URL], Attributes={"VisibilityTimeout": "3"}
    )
    orders = _order_ids(30, url)
    (victim,) = workers.tasks
    wait_for(lambda: any(e.get("event") == "processing" for e in victim.events()), 10, "the worker to start paying")
    victim.kill()
    replacement = wait_for(lambda: [t for t in workers.healthy() if t is not victim], 20, "a replacement task")[0]
    _all_completed(url, orders, 60)
    paid_by_replacement = {e["order_id"] for e in replacement.events() if e.get("event") == "payment_completed"}
    assert paid_by_replacement  # the replacement did pay (among them, what the killed task held)
    aws.client("sqs").set_queue_attributes(
        QueueUrl=local_system.outputs[output_names.QUEUE_URL], Attributes={"VisibilityTimeout": "30"}
    )


def test_prescale_raises_the_worker_service_and_more_processes_pay(local_system: LocalSystem) -> None:
    workers = local_system.ecs.service("worker")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ops.prescale",
            "--tasks",
            "3",
            "--poll",
            "0.2",
            "--outputs",
            str(local_system.outputs_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )
    assert done.returncode == 0, done.stderr
    tasks = wait_for(lambda: len(workers.healthy()) == 3 and workers.healthy(), 30, "three worker tasks")
    url = local_system.outputs[output_names.ASYNC_URL]
    orders = _order_ids(120, url)  # 20 slots each: more than one task's worth at once
    _all_completed(url, orders, 60)
    paying = [t for t in tasks if any(e.get("event") == "payment_completed" for e in t.events())]
    assert len(paying) >= 2
    restore = subprocess.run(
        [
            sys.executable,
            "-m",
            "ops.prescale",
            "--restore",
            "--step",
            "2",
            "--pause",
            "0",
            "--normal-tasks",
            "1",
            "--poll",
            "0.2",
            "--outputs",
            str(local_system.outputs_file),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
    )
    assert restore.returncode == 0, restore.stderr
    wait_for(lambda: len(workers.running()) == 1, 40, "the worker service back at one task")


def _cut_off(task: Task) -> set[str]:
    """Orders a task started paying and never finished (its log's `processing` without a `payment_*`)."""
    events = task.events()
    finished = {e["order_id"] for e in events if e.get("event", "").startswith("payment_")}
    return {e["order_id"] for e in events if e.get("event") == "processing"} - finished


def test_scale_in_during_a_stream_stops_only_idle_tasks_and_cuts_no_payment(local_system: LocalSystem) -> None:
    workers = local_system.ecs.service("worker")
    url = local_system.outputs[output_names.ASYNC_URL]
    outputs = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    prescale = [sys.executable, "-m", "ops.prescale", "--poll", "0.2", "--outputs", str(local_system.outputs_file)]
    assert (
        subprocess.run([*prescale, "--tasks", "3"], cwd=ROOT, env=outputs, capture_output=True, timeout=60).returncode
        == 0
    )
    tasks = wait_for(lambda: len(workers.healthy()) == 3 and list(workers.healthy()), 30, "three worker tasks")
    accepted: list[str] = []
    stream = threading.Thread(target=lambda: accepted.extend(_stream(url, rate=12, seconds=8)), daemon=True)
    stream.start()
    time.sleep(2)  # every task is paying now
    restore = subprocess.run(
        [*prescale, "--restore", "--step", "2", "--pause", "0", "--normal-tasks", "1"],
        cwd=ROOT,
        env=outputs,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert restore.returncode == 0, restore.stderr
    stream.join()
    wait_for(lambda: len(workers.running()) == 1, 60, "the scale-in to one task")
    _all_completed(url, accepted, 60)
    stopped = wait_for(lambda: len(gone := [t for t in tasks if not t.alive()]) == 2 and gone, 30, "two tasks to exit")
    assert all(t.process is not None and t.process.returncode == 0 for t in stopped)  # drained, not SIGKILLed
    assert not any(_cut_off(t) for t in tasks), {t.task_id: _cut_off(t) for t in tasks}
    assert all(local_system.ecs.agent.calls.get(t.task_id, 0) >= 2 for t in stopped)  # protected, then released


def _stream(url: str, rate: float, seconds: float) -> list[str]:
    """Orders at a steady rate; the ids of those accepted."""
    ids = []
    with httpx.Client(base_url=url, timeout=10) as client:
        started = time.monotonic()
        for n in range(int(rate * seconds)):
            time.sleep(max(0.0, started + n / rate - time.monotonic()))
            answer = client.post(contract.ASYNC_ORDERS_PATH, json=ORDER)
            if answer.status_code == 202:
                ids.append(answer.json()["order_id"])
    return ids


def test_an_underprovisioned_burst_pages_on_the_expected_and_the_buyers_wait_which_clears_after_the_drain(
    local_system: LocalSystem,
) -> None:
    """What the local runtime does in place of AWS, seen through one burst that one task pays late, and what the
    notifier (the Lambda's module, with its environment as deployed) relays of it:
    - the queue's depth and the worker service's running tasks reach CloudWatch, and the deployed expected-wait alarm
      (metric math) is evaluated and fires: a readable page that says how many tasks to add;
    - the worker's EMF lines become the metric (the local extractor standing in for CloudWatch Logs), the deployed
      p95 alarm fires while the burst's waits are over the acceptable latency, and clears once the queue has drained
      and its window holds no finished order."""
    outputs = local_system.outputs
    warning = alarm_catalogue.alarm_name(outputs[output_names.ALARM_PREFIX], "expected_wait_warning")
    name = alarm_catalogue.alarm_name(outputs[output_names.ALARM_PREFIX], "buyer_wait_p95")
    cloudwatch = aws.client("cloudwatch")

    def alarm() -> dict[str, Any]:
        return dict(cloudwatch.describe_alarms(AlarmNames=[name])["MetricAlarms"][0])

    # The period scaled down as the lab's time scale does (ops.alarms.shorten_periods): 60 s / 6.
    alarms.reput(cloudwatch, alarm(), Period=10)
    try:
        # An earlier test's orders may have fired it: start from a quiet system.
        wait_for(lambda: local_system.ecs.service("worker").healthy(), 30, "a worker task")
        wait_for(lambda: alarm()["StateValue"] != "ALARM", 60, "the alarm to be quiet before the sale")
        inbox = subscribed_queue(outputs[output_names.ALERTS_TOPIC_ARN], "inbox", raw=False)
        assert len(local_system.ecs.service("worker").running()) == 1  # 20 workers at 0.5 s: 40 orders/s
        # 600 orders at once: the last ones wait ~15 s, three times the 5 s acceptable latency and expected wait.
        with (
            httpx.Client(base_url=outputs[output_names.ASYNC_URL], timeout=10) as client,
            ThreadPoolExecutor(8) as pool,
        ):
            answers = list(
                pool.map(lambda _: client.post(contract.ASYNC_ORDERS_PATH, json=ORDER).status_code, range(600))
            )
        assert answers.count(202) >= 500
        sqs = aws.client("sqs")
        seen: list[tuple[str, str]] = []

        def relayed(prefix: str) -> list[str]:
            for m in sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
                envelope = json.loads(m["Body"])
                seen.append((envelope.get("Subject", ""), envelope["Message"]))
            return [body for subject, body in seen if subject.startswith(prefix)]

        [expected] = wait_for(lambda: relayed(f"[WARNING] ALARM: {warning}"), 90, "the expected-wait page")
        assert "Threshold:        > 5 s" in expected and "(1 running;" in expected
        assert re.search(r"Tasks to add:     [1-9]\d* \(1 running; \d+ bring the wait to 5 s", expected), expected

        [page] = wait_for(lambda: relayed(f"[WARNING] ALARM: {name}"), 60, "the buyers' wait page")
        assert "Flashsale BuyerWait, Stack=normal, Region=us-west-2; p95 over 10 s" in page, page
        assert "Threshold:        > 5 s" in page
        value = re.search(r"Current value:    ([0-9.]+) s", page)
        assert value and float(value.group(1)) > 5, page
        [resolved] = wait_for(lambda: relayed(f"[RESOLVED] {name} is OK again"), 90, "the all-clear")
        # After the drain: every order paid, the queue empty, and the alarm cleared for want of finished orders.
        counts = sqs.get_queue_attributes(
            QueueUrl=outputs[output_names.QUEUE_URL],
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert counts == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
        assert "missing data treated as notBreaching" in resolved, resolved
        assert local_system.emf.extracted >= 500 and local_system.emf.rejected == 0
    finally:
        alarms.reput(cloudwatch, alarm(), Period=alarms.SPECS["buyer_wait_p95"].period_seconds)
