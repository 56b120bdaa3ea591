"""The live view of the local system: one small page, updated every second, and the JSON it reads.

`LocalSystem` serves it on 127.0.0.1 (Starlette + uvicorn in one thread of the local runtime's process): `GET /` is
a static page (`console_static/`: HTML, CSS and plain JavaScript, no build step) that polls `GET /api/state` once a
second. The state is sampled when asked, at most once every MIN_SAMPLE_SECONDS whoever asks, so the view costs
nothing while nobody watches, and its own CPU is in the JSON (`console.cpu_percent`).

Where each number comes from (SOURCES; the page shows them too):
- queue depth: SQS GetQueueAttributes of the order queue and its DLQ;
- tasks per service: the local ECS's own processes (alive, and healthy at its last round), beside the desired count
  of the control plane (moto's ECS);
- orders accepted / paid / failed: the services' event lines in their task logs, read as they are appended. The
  receiver writes `accepted` after the order's record and its publish succeeded, just before the 202; a worker writes
  `payment_completed` / `payment_failed` (declined) after the conditional status write committed the payment. They
  count what the order table records, without scanning the table every second;
- payments in flight: the workers' `processing` lines whose order has no outcome line yet, in running tasks;
- expected wait: the expected-wait alarms' formula (`app.expected_wait.seconds`) over the waiting (visible) orders and
  the worker tasks the local ECS runs, with the service's WORKER_COUNT and PAYMENT_SECONDS;
- alarms: CloudWatch DescribeAlarms of the stack's alarms; notifications: the alerts the notifier relay published.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app import alarm_catalogue, contract, expected_wait, roles
from app.notifier import COMPARISONS
from bench.localaws.deployer import Deployment, Endpoints
from bench.localaws.ecs import LocalEcs, LocalService
from bench.localaws.logtail import LogTail
from bench.localaws.relay import Alert
from bench.localaws.serving import ServingError, ThreadedServer
from stackconfig import output_names

STATE_PATH = "/api/state"
STATIC = Path(__file__).with_name("console_static")
MIN_SAMPLE_SECONDS = 0.5  # a second viewer (or a reload) gets the same sample instead of another round of calls
RATE_WINDOW_SECONDS = 5.0  # rates per second are averaged over this window
NOTIFICATIONS_SHOWN = 10
# Event lines the view counts (app/receiver.py, app/worker.py) -> the total they add to.
COUNTED = {"accepted": "accepted", "payment_completed": "paid", "payment_failed": "failed"}
PAYMENT_STARTED = "processing"
PAYMENT_ENDED = ("payment_completed", "payment_failed", "duplicate_payment", "payment_replayed")
SOURCES = {
    "queue": "SQS GetQueueAttributes: visible = waiting, in flight = received by a worker and not yet deleted",
    "tasks": "the local ECS's processes (running = alive, healthy = at its last round); desired = the ECS service",
    "orders": "event lines in the task logs: receiver `accepted`, worker `payment_completed` / `payment_failed`",
    "payments": "worker `processing` lines without their order's outcome line yet, in running tasks",
    "wait": "waiting orders / (running worker tasks x WORKER_COUNT / PAYMENT_SECONDS)",
    "alarms": "CloudWatch DescribeAlarms (muted: actions disabled locally, as ministack pools every queue's series); "
    "notifications: what the notifier relay published",
}


class ConsoleError(RuntimeError):
    pass


class TaskLog:
    """One task's event lines: how many of each counted event so far, and the payments started and not finished."""

    def __init__(self, path: Path) -> None:
        self.tail = LogTail(path)
        self.counts: Counter[str] = Counter()
        self.paying: dict[str, float] = {}  # order id -> when its `processing` line was read (monotonic)

    def read(self, now: float) -> None:
        for line in self.tail.lines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            event = record.get("event")
            if event in COUNTED:
                self.counts[COUNTED[event]] += 1
            if event == PAYMENT_STARTED:
                self.paying[str(record.get("order_id"))] = now
            elif event in PAYMENT_ENDED:
                self.paying.pop(str(record.get("order_id")), None)

    def in_flight(self, now: float, longest: float) -> int:
        """Payments started and not finished; one older than `longest` ended without an outcome line (its status
        write gave up, or the task drained past its deadline) and is dropped."""
        for order_id in [o for o, started in self.paying.items() if now - started > longest]:
            del self.paying[order_id]
        return len(self.paying)


class Observed(Protocol):
    """What the live view reads of the system it shows (`bench.localaws.system.LocalSystem` is one)."""

    outputs: dict[str, Any]
    ecs: LocalEcs
    deployment: Deployment
    alerts: deque[Alert]

    @property
    def endpoints(self) -> Endpoints: ...

    def read_alerts(self) -> list[Alert]: ...


def _iso(value: Any) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else None


class LiveState:
    """Samples the system for the page; `state()` is what GET /api/state answers."""

    def __init__(self, system: Observed) -> None:
        self.system = system
        self._sqs = system.endpoints.client("sqs")
        self._cloudwatch = system.endpoints.client("cloudwatch")
        self._logs: dict[Path, TaskLog] = {}  # every task log of every service, by path
        self._history: deque[tuple[float, Counter[str], float]] = deque()  # (monotonic, totals, thread CPU)
        self._lock = threading.Lock()
        self._last: tuple[float, dict[str, Any]] | None = None

    def state(self) -> dict[str, Any]:
        with self._lock:
            now = time.monotonic()
            if self._last is None or now - self._last[0] >= MIN_SAMPLE_SECONDS:
                self._last = (now, self._sample(now))
            return self._last[1]

    def _sample(self, now: float) -> dict[str, Any]:
        errors: list[str] = []
        outputs = self.system.outputs
        services = list(self.system.ecs.services)
        queue = self._queue(outputs, errors)
        totals, paying = self._orders(services, now)
        self._history.append((now, totals, time.thread_time()))
        while len(self._history) > 2 and now - self._history[1][0] >= RATE_WINDOW_SECONDS:
            self._history.popleft()
        then, before, cpu_before = self._history[0]
        elapsed = now - then
        self.system.read_alerts()
        return {
            "time": time.time(),
            "stack": self.system.deployment.stack,
            "queue": queue,
            "payments_in_flight": paying,
            "services": [self._service(service) for service in services],
            "totals": {name: totals[name] for name in COUNTED.values()},
            "rates": {
                name: round((totals[name] - before[name]) / elapsed, 2) if elapsed > 0 else None
                for name in COUNTED.values()
            },
            "rate_window_seconds": round(elapsed, 2),
            "expected_wait": self._wait(services, queue),
            "alarms": self._alarms(outputs, errors),
            "notifications": [
                {"seen_at": alert.seen_at, "subject": alert.subject}
                for alert in list(self.system.alerts)[-NOTIFICATIONS_SHOWN:][::-1]
            ],
            "console": {
                "cpu_percent": round(100 * (time.thread_time() - cpu_before) / elapsed, 2) if elapsed > 0 else None
            },
            "sources": SOURCES,
            "errors": errors,
        }

    def _queue(self, outputs: Mapping[str, Any], errors: list[str]) -> dict[str, int | None]:
        found: dict[str, int | None] = {"visible": None, "in_flight": None, "dlq": None}
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        try:
            if output_names.QUEUE_URL in outputs:
                counts = self._sqs.get_queue_attributes(QueueUrl=outputs[output_names.QUEUE_URL], AttributeNames=names)[
                    "Attributes"
                ]
                found["visible"], found["in_flight"] = int(counts[names[0]]), int(counts[names[1]])
            if output_names.DLQ_URL in outputs:
                counts = self._sqs.get_queue_attributes(
                    QueueUrl=outputs[output_names.DLQ_URL], AttributeNames=names[:1]
                )["Attributes"]
                found["dlq"] = int(counts[names[0]])
        except (BotoCoreError, ClientError) as error:
            errors.append(f"queue depth: {error}")
        return found

    def _orders(self, services: list[LocalService], now: float) -> tuple[Counter[str], int]:
        """Totals over every task that ever ran (a stopped task's lines still count), payments in running tasks."""
        totals: Counter[str] = Counter()
        paying = 0
        for service in services:
            env = service.spec.env
            longest = (
                float(env.get(contract.ENV_PAYMENT_SECONDS, contract.SERVICE_DEFAULTS.payment_seconds))
                + contract.ORDER_QUEUE.visibility_timeout_seconds
            )
            alive = {task.log_path for task in list(service.tasks) if task.alive()}
            for path in list(service.logs):
                log = self._logs.setdefault(path, TaskLog(path))
                log.read(now)
                totals += log.counts
                if path in alive:
                    paying += log.in_flight(now, longest)
        return totals, paying

    @staticmethod
    def _service(service: LocalService) -> dict[str, Any]:
        return {
            "role": service.spec.role,
            "name": service.name,
            "desired": service.desired,
            "running": sum(task.alive() for task in list(service.tasks)),
            "healthy": service.healthy_count,
        }

    @staticmethod
    def _wait(services: list[LocalService], queue: Mapping[str, int | None]) -> dict[str, Any]:
        """Report 6.5's estimate for the whole worker service: the queue ahead of a new order, paid at full speed."""
        workers = [s for s in services if s.spec.role == roles.Role.WORKER]
        if not workers:
            return {"seconds": None, "why": "no worker service"}
        service = workers[0]
        env = service.spec.env
        per_task = int(env.get(contract.ENV_WORKER_COUNT, contract.SERVICE_DEFAULTS.worker_count))
        payment = float(env.get(contract.ENV_PAYMENT_SECONDS, contract.SERVICE_DEFAULTS.payment_seconds))
        tasks = sum(task.alive() for task in list(service.tasks))
        waiting = queue["visible"]
        found = {
            "waiting": waiting,
            "worker_tasks": tasks,
            "workers_per_task": per_task,
            "payment_seconds": payment,
            "paid_per_second": round(tasks * per_task / payment, 2),
        }
        if waiting is None:
            return found | {"seconds": None, "why": "queue depth unknown"}
        wait = expected_wait.seconds(waiting, tasks, per_task, payment)
        if wait is None:
            return found | {"seconds": None, "why": "no worker task running"}
        return found | {"seconds": round(wait, 2), "why": ""}

    def _alarms(self, outputs: Mapping[str, Any], errors: list[str]) -> list[dict[str, Any]]:
        prefix = outputs.get(output_names.ALARM_PREFIX)
        if not prefix:
            return []
        try:
            found = self._cloudwatch.describe_alarms(AlarmNamePrefix=str(prefix))["MetricAlarms"]
        except (BotoCoreError, ClientError) as error:
            errors.append(f"alarms: {error}")
            return []
        specs = {alarm_catalogue.alarm_name(str(prefix), spec.key): spec for spec in alarm_catalogue.ALARMS}
        alarms = []
        for alarm in sorted(found, key=lambda a: str(a["AlarmName"])):
            spec = specs.get(alarm["AlarmName"])
            comparison = str(alarm.get("ComparisonOperator", ""))
            alarms.append(
                {
                    "name": alarm["AlarmName"],
                    "state": alarm.get("StateValue"),
                    "since": _iso(alarm.get("StateUpdatedTimestamp")),
                    "threshold": f"{COMPARISONS.get(comparison, comparison)} {alarm.get('Threshold', 0):g}",
                    "severity": spec.severity if spec else None,
                    "measures": spec.measures if spec else None,
                    "actions_enabled": bool(alarm.get("ActionsEnabled", True)),
                }
            )
        return alarms


class Console:
    """The live view's web server, in a daemon thread; `url` once started."""

    def __init__(self, system: Observed, *, port: int = 0) -> None:
        self.live = LiveState(system)
        self._server = ThreadedServer(self.app(), port=port, name="live view")

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        return f"{self._server.url}/"

    def app(self) -> Starlette:
        async def state(request: Request) -> JSONResponse:
            # Sampled in the server's own thread (a few emulator calls): its CPU is the view's, measured in the JSON.
            return JSONResponse(self.live.state(), headers={"Cache-Control": "no-store"})

        return Starlette(
            routes=[Route(STATE_PATH, state, methods=["GET"]), Mount("/", StaticFiles(directory=STATIC, html=True))]
        )

    def start(self) -> Console:
        try:
            self._server.start()
        except ServingError as error:
            raise ConsoleError(str(error)) from None
        return self

    def cpu_seconds(self) -> float:
        """CPU the view's server thread has used so far (serving and sampling both run in it)."""
        return self._server.cpu_seconds()

    def stop(self) -> None:
        self._server.stop()
