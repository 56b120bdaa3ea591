"""Fault-injection helpers: a steady stream of orders from a thread, and the tally of what became of each 202.

The stream is the test's client: it remembers every order id answered 202 and every other answer, so the tally can
prove that nothing accepted was lost (still `pending`) or paid twice (counted from the workers' payment log lines).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import httpx

from app import contract
from bench.localaws.tasks import Task
from tests.helpers import ORDER, ORDER_ITEM, System, wait_for

RATE = 20.0  # orders per second, the report's flash-sale rate (Part I, 1.5)
CLIENT_TIMEOUT = 10.0  # the report's client timeout
CONNECTION_ERROR = "connection error"
RETRY_SECONDS = 15.0  # how long a careless client keeps retrying one order
RETRY_PAUSE_SECONDS = 0.05
FINAL = ("completed", "failed")


@dataclass
class Stream:
    """POST an order to `url` every 1/rate seconds from a background thread until the `with` block ends.

    Requests run in a small pool, so a slow answer (a receiver waiting on a dead backend) does not slow the stream.
    """

    url: str
    rate: float = RATE
    accepted: list[str] = field(default_factory=list)
    answers: Counter[str] = field(default_factory=Counter)  # "202", "503", CONNECTION_ERROR, ...
    unavailable_without_retry_after: int = 0
    client_timeout: float = CLIENT_TIMEOUT
    threads: int = 8
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _post(self, client: httpx.Client) -> None:
        try:
            response = client.post(self.url + contract.ASYNC_ORDERS_PATH, json=ORDER)
        except httpx.TransportError:
            with self._lock:
                self.answers[CONNECTION_ERROR] += 1
            return
        with self._lock:
            self.answers[str(response.status_code)] += 1
            if response.status_code == 202:
                self.accepted.append(response.json()["order_id"])
            elif response.status_code == 503 and not response.headers.get("Retry-After"):
                self.unavailable_without_retry_after += 1

    def _run(self) -> None:
        with httpx.Client(timeout=self.client_timeout) as client:
            pool = ThreadPoolExecutor(self.threads)
            try:
                tick = time.monotonic()
                while not self._stop.is_set():
                    pool.submit(self._post, client)
                    tick += 1 / self.rate
                    self._stop.wait(max(0.0, tick - time.monotonic()))
            finally:
                # Orders queued behind a slow receiver are not sent once the stream ends, so the stream's records
                # are final when `with` ends (they grew after the tally was taken).
                pool.shutdown(wait=True, cancel_futures=True)

    def count(self, answer: str) -> int:
        with self._lock:
            return self.answers[answer]

    def wait_accepted(self, more: int, timeout: float = 60.0) -> None:
        """Wait until `more` orders beyond those accepted so far are answered 202: a phase of a test lasts a number of
        orders, not of seconds, so a loaded machine makes it longer instead of making the tally too small."""
        with self._lock:
            total = len(self.accepted) + more
        wait_for(lambda: len(self.accepted) >= total, timeout, f"{more} more orders accepted")

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="order-stream", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=RETRY_SECONDS + CLIENT_TIMEOUT)  # the longest a request in flight can take
            assert not self._thread.is_alive(), "the order stream did not stop"


@dataclass
class RetryingStream(Stream):
    """Careless clients: each order has its own Idempotency-Key (also its product id, so its orders can be found in
    the table) and is sent again with that key after a timeout of `client_timeout`, a connection error, a 503 or a
    409, until a 202 or RETRY_SECONDS."""

    # Well under the stall (so every client caught in it times out and retries) and well over an answer on a loaded
    # 2-core machine: at 50 ms, with the machine loaded by other suites, no request was ever answered in time.
    client_timeout: float = 0.5
    threads: int = 32
    keys: dict[str, str] = field(default_factory=dict)  # key -> the order id its 202 carried
    attempts: int = 0

    def _post(self, client: httpx.Client) -> None:
        key = str(uuid.uuid4())
        body = {**ORDER, "items": [{**ORDER_ITEM, "product_id": key}]}
        deadline = time.monotonic() + RETRY_SECONDS
        while time.monotonic() < deadline:
            with self._lock:
                self.attempts += 1
            try:
                response = client.post(
                    self.url + contract.ASYNC_ORDERS_PATH, json=body, headers={contract.IDEMPOTENCY_KEY_HEADER: key}
                )
            except httpx.TransportError as error:
                answer = "timeout" if isinstance(error, httpx.TimeoutException) else CONNECTION_ERROR
            else:
                answer = str(response.status_code)
                if response.status_code == 202:
                    with self._lock:
                        self.answers[answer] += 1
                        self.keys[key] = response.json()["order_id"]
                        self.accepted.append(response.json()["order_id"])
                    return
            with self._lock:
                self.answers[answer] += 1
            time.sleep(RETRY_PAUSE_SECONDS)


def orders_per_key(system: System, keys: dict[str, str]) -> dict[str, set[str]]:
    """The order ids recorded for each of these keys (found by the product id, which is the key)."""
    found: dict[str, set[str]] = defaultdict(set)
    for record in system.orders():
        if "items" in record:
            product = json.loads(record["items"])[0]["product_id"]
            if product in keys:
                found[product].add(record[contract.ORDER_KEY])
    return found


def payment_counts(workers: list[Task]) -> Counter[str]:
    """Committed payments per order id across every worker's log (a worker logs a payment once its conditional status
    write committed it; a voided second delivery logs `duplicate_payment` instead)."""
    return Counter(
        event["order_id"]
        for worker in workers
        for event in worker.events()
        if event.get("event") in ("payment_completed", "payment_failed")
    )


def paid_twice(system: System, order_ids: list[str]) -> set[str]:
    paid = payment_counts([s for s in system.tasks if s.role == "worker"])
    return {o for o in order_ids if paid[o] > 1}


@dataclass(frozen=True)
class Tally:
    accepted: int
    completed: int
    failed: int
    lost: int  # answered 202 but not final
    duplicated: int  # paid more than once

    def __str__(self) -> str:
        return (
            f"accepted={self.accepted} completed={self.completed} failed={self.failed} lost={self.lost} "
            f"duplicated={self.duplicated}"
        )


def settle(system: System, accepted: list[str], timeout: float = 60.0) -> Tally:
    """Wait until every accepted order is final (or the timeout), then count; prints the tally line."""
    wanted = set(accepted)

    def statuses() -> dict[str, str]:
        return {o[contract.ORDER_KEY]: o["status"] for o in system.orders() if o[contract.ORDER_KEY] in wanted}

    try:
        wait_for(
            lambda: len(s := statuses()) == len(wanted) and all(v in FINAL for v in s.values()),
            timeout,
            "every accepted order to be final",
        )
    except AssertionError:
        pass  # counted as lost below
    final = statuses()
    tally = Tally(
        accepted=len(wanted),
        completed=sum(s == "completed" for s in final.values()),
        failed=sum(s == "failed" for s in final.values()),
        lost=sum(final.get(o) not in FINAL for o in wanted),
        duplicated=len(paid_twice(system, accepted)),
    )
    print(tally)
    return tally
