"""Locust users for POST /orders/sync and /orders/async with an open-loop arrival rate.

Use it as the report did (1.4, 1.5, 3.4), from the repository root:

    locust -f ops/locustfile.py --host URL --endpoint sync --load-profile normal \\
        --users 5 --spawn-rate 1 --run-time 30s --headless

Why open loop: a closed-loop Locust user waits for each answer before sending the next, so a slow service throttles
its own load (20 users waiting 8 s offer ~2.4 orders/s, not 20). Here every user fires `rate / users` orders a second
on a fixed schedule, each in its own greenlet, whatever the response times; --users and --spawn-rate only shape the
ramp-up. In-flight requests are capped (--max-in-flight): an arrival that finds the cap full is counted as not sent
rather than waiting for a free slot, which would close the loop again.

With --retry every order carries its own Idempotency-Key and is sent again with it after a timeout, a connection
error, a 503 or a 409 (waiting Retry-After, at most 1 s), up to RETRY_ATTEMPTS sends; when the load ends, each
answered key is asked once more and the order id it names is recorded beside the first (ops.loadtest counts keys
whose answers named two orders as duplicated orders).

`ops.loadtest.run_load` runs this file in its own process (Locust monkey-patches the standard library with gevent)
and reads the per-request file it writes (--requests-file).
"""

from __future__ import annotations

import csv
import random
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import astuple, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, cast

import gevent
import gevent.pool
from geventhttpclient.client import HTTPClientPool
from locust import FastHttpUser, events, task
from locust.env import Environment
from locust.event import EventHook

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `locust -f` adds only ops/ to the import path

from app import contract  # noqa: E402
from ops.loadtest import (  # noqa: E402  (after the path fix above)
    ENDPOINTS,
    PROFILE_NAMES,
    PROGRESS_MARK,
    REQUEST_FIELDS,
    RETRY_ATTEMPTS,
    RETRYABLE,
    RequestRecord,
    default_max_in_flight,
    outcome_of,
    profile,
)

RETRY_PAUSE_SECONDS = 0.1  # before a retry when the answer gave no Retry-After (a timeout, a connection error)
MAX_RETRY_PAUSE_SECONDS = 1.0

Handler = TypeVar("Handler", bound=Callable[..., None])


def listener(hook: EventHook) -> Callable[[Handler], Handler]:
    """`@hook.add_listener`, typed: locust leaves add_listener unannotated; it returns the handler unchanged."""
    return cast(Callable[[Handler], Handler], hook.add_listener)


@listener(events.init_command_line_parser)
def _options(parser: Any) -> None:
    parser.add_argument(
        "--endpoint",
        choices=ENDPOINTS,
        default="async",
        env_var="FLASHSALE_ENDPOINT",
        help="which order endpoint to load (default async)",
    )
    parser.add_argument(
        "--load-profile",
        choices=PROFILE_NAMES,
        default="normal",
        env_var="FLASHSALE_PROFILE",
        help="the report's load profile; gives the arrival rate unless --rate is set (default normal)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        env_var="FLASHSALE_RATE",
        help="offered orders per second over all users (default: the profile's)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=0.0,
        env_var="FLASHSALE_TIMEOUT",
        help="client timeout in seconds (default: the profile's, the report's 10 s)",
    )
    parser.add_argument(
        "--max-in-flight",
        type=int,
        default=0,
        env_var="FLASHSALE_MAX_IN_FLIGHT",
        help="cap on requests in flight; arrivals beyond it are counted as not sent (default: twice rate x timeout)",
    )
    parser.add_argument(
        "--requests-file",
        default="",
        env_var="FLASHSALE_REQUESTS_FILE",
        help="write one CSV row per arrival (send time, latency, status, order_id) here",
    )
    parser.add_argument(
        "--retry",
        action="store_true",
        default=False,
        env_var="FLASHSALE_RETRY",
        help="send each order with its own Idempotency-Key and retry it with that key on 503, 409, "
        "timeouts and connection errors",
    )
    parser.add_argument(
        "--progress-seconds",
        type=float,
        default=0.0,
        include_in_web_ui=False,
        help="print a progress line this often (0: never)",
    )


@dataclass
class Arrivals:
    """The open-loop state shared by every user of this process."""

    path: str
    rate: float
    timeout: float
    pool: gevent.pool.Pool
    retry: bool = False
    started: float = field(default_factory=time.monotonic)
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)  # retrying mode: each key's order
    records: list[RequestRecord] = field(default_factory=list)
    reporter: gevent.Greenlet[[], None] | None = None
    arrivals: int = 0
    last_arrival: float = 0.0  # seconds after the start

    def fire(self, user: FastHttpUser) -> None:
        """One arrival: send it in its own greenlet, or count it as not sent when the in-flight cap is full."""
        offset = time.monotonic() - self.started
        self.arrivals, self.last_arrival = self.arrivals + 1, offset
        if self.pool.full():
            self.records.append(RequestRecord(round(offset, 4), round(time.time(), 4), None, 0, "not_sent", ""))
        else:
            self.pool.spawn(self._order, user, offset)

    def _order(self, user: FastHttpUser, offset: float) -> None:
        body = {
            "customer_id": random.randint(1, 100_000),
            "items": [
                {"product_id": f"PROD-{random.randint(1, 50):03d}", "quantity": random.randint(1, 3), "price": 49.99}
            ],
        }
        key = str(uuid.uuid4()) if self.retry else ""
        headers = {contract.IDEMPOTENCY_KEY_HEADER: key} if key else None
        sent_at = time.time()
        started = time.perf_counter()
        attempts = 0
        while True:
            attempts += 1
            response = user.client.post(self.path, json=body, name=self.path, headers=headers)
            status = response.status_code or 0
            outcome = outcome_of(status, getattr(response, "error", None))
            if not key or outcome not in RETRYABLE or attempts >= RETRY_ATTEMPTS:
                break
            gevent.sleep(_retry_pause(response))
        latency_ms = (time.perf_counter() - started) * 1000
        order_id = _order_id(response) if status else ""
        if key and order_id:
            self.bodies[key] = body
        self.records.append(
            RequestRecord(
                round(offset, 4), round(sent_at, 4), round(latency_ms, 2), status, outcome, order_id, key, attempts
            )
        )

    def confirm(self, user: FastHttpUser) -> None:
        """Retrying mode, after the load: ask each answered key once more and record the order id it names now."""

        def ask(index: int, record: RequestRecord) -> None:
            response = user.client.post(
                self.path,
                json=self.bodies[record.key],
                name=self.path + " (asked again)",
                headers={contract.IDEMPOTENCY_KEY_HEADER: record.key},
            )
            self.records[index] = replace(
                record, confirmed_order_id=_order_id(response) if response.status_code else ""
            )

        for index, record in enumerate(self.records):
            if record.key in self.bodies:
                self.pool.spawn(ask, index, record)
        self.pool.join(timeout=self.timeout + 2)

    def progress(self) -> str:
        elapsed = time.monotonic() - self.started
        answered = [r for r in self.records if r.outcome != "not_sent"]
        accepted = sum(r.outcome == "accepted" for r in answered)
        pace = self.arrivals / self.last_arrival if self.last_arrival > 0 else 0.0
        return (
            f"{elapsed:5.0f}s  arrivals {self.arrivals} ({pace:.1f}/s of {self.rate:g}/s offered)  "
            f"answered {len(answered)}  accepted {accepted}  in flight {len(self.pool)}  "
            f"not sent {len(self.records) - len(answered)}"
        )


def _order_id(response: Any) -> str:
    try:
        return str(response.json().get("order_id", ""))
    except (ValueError, AttributeError):
        return ""


def _retry_pause(response: Any) -> float:
    """Retry-After when the answer has one (503, 409), capped, else a short pause; jittered so retries spread."""
    try:
        pause = float(response.headers.get("Retry-After") or RETRY_PAUSE_SECONDS)
    except (AttributeError, TypeError, ValueError):
        pause = RETRY_PAUSE_SECONDS
    return random.uniform(0.5, 1.0) * min(MAX_RETRY_PAUSE_SECONDS, pause)


STATE: dict[str, Arrivals] = {}


@listener(events.init)
def _init(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    if options is None:
        return
    chosen = profile(options.load_profile, options.endpoint)
    rate = options.rate or chosen.rate
    timeout = options.timeout or chosen.timeout_seconds
    cap = options.max_in_flight or default_max_in_flight(rate, timeout)
    # As many connections as requests in flight, so no request waits for a connection (which would close the loop).
    OrderUser.client_pool = HTTPClientPool(concurrency=cap, network_timeout=timeout, connection_timeout=timeout)
    STATE["arrivals"] = Arrivals(
        path=chosen.path, rate=rate, timeout=timeout, pool=gevent.pool.Pool(cap), retry=options.retry
    )


@listener(events.test_start)
def _start(environment: Environment, **_: Any) -> None:
    arrivals = STATE["arrivals"]
    arrivals.started = time.monotonic()
    every = environment.parsed_options.progress_seconds if environment.parsed_options else 0
    if every > 0:

        def report() -> None:
            while True:
                gevent.sleep(every)
                print(PROGRESS_MARK + arrivals.progress(), flush=True)

        arrivals.reporter = gevent.spawn(report)


@listener(events.test_stop)
def _stop(environment: Environment, **_: Any) -> None:
    """Let the requests in flight finish (bounded by the client timeout), then write the per-request file."""
    arrivals = STATE["arrivals"]
    arrivals.pool.join(
        timeout=RETRY_ATTEMPTS * (arrivals.timeout + MAX_RETRY_PAUSE_SECONDS) + 2
        if arrivals.retry
        else arrivals.timeout + 2
    )
    arrivals.pool.kill()
    if arrivals.retry:
        arrivals.confirm(OrderUser(environment))
        arrivals.pool.kill()
    if arrivals.reporter is not None:
        arrivals.reporter.kill()
    target = environment.parsed_options.requests_file if environment.parsed_options else ""
    if target:
        with open(target, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(REQUEST_FIELDS)
            writer.writerows(astuple(r) for r in sorted(arrivals.records, key=lambda r: r.offset_s))


class OrderUser(FastHttpUser):
    """An arrival stream of `rate / users` orders a second (open loop: it never waits for an answer)."""

    @task
    def arrive(self) -> None:
        arrivals = STATE["arrivals"]
        users = max(1, self.environment.runner.target_user_count if self.environment.runner else 1)
        interval = users / arrivals.rate
        due = time.monotonic() + random.uniform(0, interval)  # users spread over the interval, not in lockstep
        while True:
            gevent.sleep(max(0.0, due - time.monotonic()))
            arrivals.fire(self)
            due += interval
