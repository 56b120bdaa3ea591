"""The receiver sizes itself from the ECS task, not the host: the task metadata endpoint's CPU limit."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from app import contract
from app.shedding import cpu_budget
from app.task_limits import task_cpu_limit
from bench.localaws.emulators import LOOPBACK, free_port

# The shape of Fargate's task metadata v4 `/task` answer (AWS: "Amazon ECS task metadata v4 examples for tasks on
# Fargate"), trimmed to what matters here.
TASK_DOCUMENT = {
    "Cluster": "arn:aws:ecs:us-west-2:123456789012:cluster/c",
    "Family": "flashsale-normal-receiver",
    "Limits": {"CPU": 0.25, "Memory": 512},
    "Containers": [{"Name": "receiver", "Limits": {"CPU": 0}}],
}


@pytest.fixture
def metadata(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A served task metadata endpoint; the test sets the document it answers."""
    served: dict[str, Any] = {"document": TASK_DOCUMENT}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            body = json.dumps(served["document"]).encode() if self.path.endswith("/task") else b"{}"
            self.send_response(200 if self.path.endswith("/task") else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

    server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(contract.ENV_ECS_METADATA_URI, f"http://{LOOPBACK}:{server.server_address[1]}/v4/abc")
    yield served
    server.shutdown()


def test_the_task_limit_is_read_from_the_metadata_endpoint(metadata: dict[str, Any]) -> None:
    assert task_cpu_limit() == 0.25
    assert cpu_budget() == 0.25  # the task's quarter core, not the host's cores


def test_cpu_units_are_taken_as_units(metadata: dict[str, Any]) -> None:
    metadata["document"] = {"Limits": {"CPU": 512}}
    assert task_cpu_limit() == 0.5


def test_a_document_without_limits_falls_back(metadata: dict[str, Any]) -> None:
    metadata["document"] = {"Limits": {}}
    assert task_cpu_limit() is None


def test_no_endpoint_or_a_dead_one_falls_back_to_the_cgroup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(contract.ENV_ECS_METADATA_URI, raising=False)
    assert task_cpu_limit() is None
    monkeypatch.setenv(contract.ENV_ECS_METADATA_URI, f"http://{LOOPBACK}:{free_port()}/v4/abc")
    assert task_cpu_limit() is None
    assert 0 < cpu_budget() <= 1.0
