"""`python -m ops.local up` as a user runs it: prints the URLs, serves an order end to end, Ctrl-C stops everything,
and a taken port is refused with one line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import psutil

from app import aws, contract
from ops.bootstrap import BootstrapArgs, bootstrap
from ops.local import run_local_alarms
from ops.services import ROOT
from tests.helpers import ORDER, wait_for
from tests.test_alarms import subscribed_queue


def _up(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PAYMENT_SECONDS": "0.2", "PAYMENT_DECLINE_RATE": "0"}
    return subprocess.Popen([sys.executable, "-m", "ops.local", "up", "--dir", str(tmp_path), *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_up_serves_orders_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    local = _up(tmp_path, "--workers", "20")
    urls: dict[str, str] = {}
    assert local.stdout is not None
    for line in local.stdout:
        name, _, value = line.partition(": ")
        urls[name] = value.strip()
        if name == "outputs":
            break
    children = psutil.Process(local.pid).children()
    assert len(children) == 5  # ministack, moto (ECS + auto-scaling control plane), sync, receiver, worker
    accepted = httpx.post(urls["async"] + "/orders/async", json=ORDER, timeout=10).json()
    status = wait_for(lambda: (s := httpx.get(f"{urls['async']}/orders/{accepted['order_id']}").json())["status"]
                      == "completed" and s, 10, "the order to complete")
    assert status["worker"].startswith("WORKER-")
    assert httpx.post(urls["sync"] + "/orders/sync", json=ORDER, timeout=10).status_code == 201
    # The outputs file names the emulators, so ops commands reach them with nothing exported.
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    status = subprocess.run([sys.executable, "-m", "ops.alarms", "status", "--json", "--outputs", urls["outputs"]],
                            cwd=ROOT, env=clean_env, capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert len(json.loads(status.stdout)["alarms"]) == 6
    prescale = subprocess.run([sys.executable, "-m", "ops.prescale", "--tasks", "3", "--poll", "0.1", "--outputs",
                               urls["outputs"]], cwd=ROOT, env=clean_env, capture_output=True, text=True, timeout=60)
    assert prescale.returncode == 0, prescale.stderr
    assert "runs 3 tasks, auto-scaling min 3" in prescale.stdout
    local.send_signal(signal.SIGINT)
    assert local.wait(timeout=30) == 0
    assert not any(child.is_running() and child.status() != psutil.STATUS_ZOMBIE for child in children)
    assert (tmp_path / "outputs.json").exists() and (tmp_path / "logs" / "worker.log").exists()


def test_a_taken_port_is_refused_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        local = _up(tmp_path, "--async-port", str(port))
        out, err = local.communicate(timeout=30)
    assert local.returncode != 0
    assert err.strip().splitlines() == [f"error: port {port} (--async-port) is taken: stop what uses it or choose "
                                        "another port"]


def test_local_alarm_loop_feeds_queue_metrics_and_relays_readable_alerts(aws_env: dict[str, str]) -> None:
    """What ops.local does in place of AWS: the queue's depth reaches CloudWatch, the real alarm fires, and the
    notifier relay turns its raw message into a readable alert on the alerts topic."""
    outputs = bootstrap(BootstrapArgs(prefix="loop", profile="flashsale"))  # queue-depth warning above 500
    inbox = subscribed_queue(outputs[contract.OUTPUT_ALERTS_TOPIC_ARN], "loop-inbox", raw=False)
    sqs = aws.client("sqs")
    for batch in range(51):
        sqs.send_message_batch(QueueUrl=outputs[contract.OUTPUT_QUEUE_URL], Entries=[
            {"Id": str(n), "MessageBody": json.dumps({"order_id": f"o-{batch}-{n}"})} for n in range(10)])
    stop = threading.Event()
    loop = threading.Thread(target=run_local_alarms, args=(outputs, stop, 0.2), daemon=True)
    loop.start()
    warning = contract.alarm_name("loop", "queue_depth_warning")

    def relayed() -> list[str]:
        found = sqs.receive_message(QueueUrl=inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        return [json.loads(m["Body"])["Message"] for m in found
                if json.loads(m["Body"]).get("Subject", "").startswith(f"[WARNING] ALARM: {warning}")]

    try:
        [body] = wait_for(relayed, 20, "the queue-depth alert")
    finally:
        stop.set()
        loop.join(timeout=5)
    assert "Current value:    510" in body and "Threshold:        > 500" in body
