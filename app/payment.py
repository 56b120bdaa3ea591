"""The simulated payment gateway of the report: each payment takes PAYMENT_SECONDS and is declined at random.

A payment is an asyncio sleep, not a thread, so one process holds thousands of them. Every charge names an
idempotency key, the order id, and the gateway keeps a ledger of the keys it charged: a second charge for a key gets
the first charge's answer (`replayed`) and charges nothing, as a real gateway's idempotency keys do (Stripe keeps them
24 hours). That ledger is what keeps an order from being charged twice where the orders table cannot: its conditional
writes are checked only against the local replica of a global table, so two regions can both see an order pending
(docs/multi-region.md). The worker's conditional status write and its check of the record before paying stay, and
make a replay rare.

The simulator's ledger lives in its process (the last LEDGER_KEYS keys): it dedups the charges of one task, a
redelivery to it or a duplicate message paid concurrently. A real gateway is one service every task and region
calls: with PAYMENT_GATEWAY_URL set, tasks call one (`RemoteGateway`; locally bench.localaws.gateway serves the
simulator so, and its ledger is then shared like a real gateway's).

`PaymentProcessor` adds the report's bottleneck: a fixed number of slots (default 1), like the Go version's buffered
channel.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from urllib.parse import quote, urlsplit

from app.aws_async import Pool
from app.settings import PaymentSettings

DECLINE_REASON = "card declined by the payment gateway"
# Keys the simulator remembers: far more than one task charges within a message's redeliveries (minutes), and at
# ~0.3 KB a key, ~15 MB of a task's 512 MB.
LEDGER_KEYS = 50_000
CHARGES_PATH = "/charges"  # a shared gateway's: POST /charges/{key} {"payer": ...} -> the PaymentResult as JSON
CONNECT_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class PaymentResult:
    """The gateway's answer for one key: the same every time it is asked (only `replayed` says whether this call
    charged)."""

    approved: bool
    seconds: float  # time spent in the gateway
    charged_at: float  # epoch seconds (to the millisecond), when the gateway decided
    payer: str  # who made the charge (the caller's label, kept with the charge like a real gateway's metadata)
    reason: str = ""
    replayed: bool = False  # the key was charged before: this is that charge's answer, nothing was charged now


class PaymentTimeout(Exception):
    """The payment could not finish before the caller's deadline; no payment was left running."""


class _Abandoned(Exception):
    """The first charge of a key was cancelled before it charged: the next caller charges."""


class Gateway:
    """The simulated gateway with its ledger of charged keys (see the module's docstring)."""

    def __init__(self, settings: PaymentSettings, keep: int = LEDGER_KEYS) -> None:
        self.settings = settings
        self._keep = keep
        self._ledger: OrderedDict[str, asyncio.Future[PaymentResult]] = OrderedDict()

    async def charge(self, key: str, payer: str) -> PaymentResult:
        """Charge once per key: a key charged (or being charged) gets that charge's answer, replayed."""
        while (earlier := self._ledger.get(key)) is not None:
            try:
                return replace(await asyncio.shield(earlier), replayed=True)
            except _Abandoned:
                continue
        mine: asyncio.Future[PaymentResult] = asyncio.get_running_loop().create_future()
        self._ledger[key] = mine
        if len(self._ledger) > self._keep:
            self._ledger.popitem(last=False)
        try:
            result = await self._decide(payer)
        except BaseException:
            if self._ledger.get(key) is mine:
                del self._ledger[key]
            mine.set_exception(_Abandoned())
            mine.exception()  # retrieved: nobody may be waiting for it
            raise
        mine.set_result(result)
        return result

    async def _decide(self, payer: str) -> PaymentResult:
        started = time.monotonic()
        await asyncio.sleep(self.settings.seconds)
        approved = random.random() >= self.settings.decline_rate
        return PaymentResult(
            approved=approved,
            seconds=time.monotonic() - started,
            charged_at=round(time.time(), 3),
            payer=payer,
            reason="" if approved else DECLINE_REASON,
        )


class GatewayError(Exception):
    """The shared gateway answered with an error: the payment's outcome is unknown (a retry under its key is safe)."""


class RemoteGateway:
    """A gateway every task calls at `url` (its ledger is that service's): `Gateway.charge` over HTTP, on the event
    loop (app.aws_async's keep-alive connections, at most `connections` at once, one per payment slot)."""

    def __init__(self, settings: PaymentSettings, url: str, connections: int) -> None:
        self._pool = Pool(
            url,
            size=connections,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=settings.seconds + CONNECT_TIMEOUT_SECONDS,
        )
        self._host = urlsplit(url).netloc

    async def charge(self, key: str, payer: str) -> PaymentResult:
        body = json.dumps({"payer": payer}).encode()
        head = (
            f"POST {CHARGES_PATH}/{quote(key, safe='')} HTTP/1.1\r\nHost: {self._host}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        status, _, answer = await self._pool.send(head.encode() + body)
        if status != 200:
            raise GatewayError(f"payment gateway answered {status}: {answer[:200]!r}")
        return PaymentResult(**json.loads(answer))


def gateway(settings: PaymentSettings, connections: int) -> Gateway | RemoteGateway:
    """The shared gateway when the task is given one (PAYMENT_GATEWAY_URL), else the in-process simulator."""
    if settings.gateway_url:
        return RemoteGateway(settings, settings.gateway_url, connections)
    return Gateway(settings)


class PaymentProcessor:
    """At most `slots` payments at a time; callers wait for a slot, in arrival order."""

    def __init__(self, *, settings: PaymentSettings, slots: int) -> None:
        self.settings = settings
        self.slots = slots
        self._slots = asyncio.Semaphore(slots)
        self._gateway = gateway(settings, slots)
        self.waiting = 0
        self.processing = 0

    async def verify(self, key: str, *, deadline: float) -> PaymentResult:
        """Pay under `key` (the order id) once a slot is free; raise PaymentTimeout as soon as the payment cannot end
        by `deadline`.

        Waiting for the slot is cancelled at the deadline, and a slot obtained too late to finish in time is handed
        back at once instead of starting a payment that nobody will wait for.
        """
        self.waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise PaymentTimeout from None
        finally:
            self.waiting -= 1
        try:
            if time.monotonic() + self.settings.seconds > deadline:
                raise PaymentTimeout
            self.processing += 1
            try:
                return await self._gateway.charge(key, "SYNC")
            finally:
                self.processing -= 1
        finally:
            self._slots.release()
