"""The simulated payment gateway of the report: each payment takes PAYMENT_SECONDS and is declined at random.

A payment is an asyncio sleep, not a thread, so one process holds thousands of them. In the async system a charge
is committed by the worker's conditional status write, keyed by the order id: the simulated gateway's idempotency
key. A real gateway must be called with the order id as its idempotency key for the same guarantee (a worker that
dies between the gateway's answer and the status write is then answered, not charged, on redelivery).
`PaymentProcessor` adds the
report's bottleneck: a fixed number of slots (default 1), like the Go version's buffered channel.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

from app.settings import PaymentSettings

DECLINE_REASON = "card declined by the payment gateway"


@dataclass(frozen=True)
class PaymentResult:
    approved: bool
    seconds: float  # time spent in the gateway
    reason: str = ""


class PaymentTimeout(Exception):
    """The payment could not finish before the caller's deadline; no payment was left running."""


async def charge(settings: PaymentSettings) -> PaymentResult:
    started = time.monotonic()
    await asyncio.sleep(settings.seconds)
    approved = random.random() >= settings.decline_rate
    return PaymentResult(
        approved=approved, seconds=time.monotonic() - started, reason="" if approved else DECLINE_REASON
    )


class PaymentProcessor:
    """At most `slots` payments at a time; callers wait for a slot, in arrival order."""

    def __init__(self, *, settings: PaymentSettings, slots: int) -> None:
        self.settings = settings
        self.slots = slots
        self._slots = asyncio.Semaphore(slots)
        self.waiting = 0
        self.processing = 0

    async def verify(self, *, deadline: float) -> PaymentResult:
        """Pay once a slot is free; raise PaymentTimeout as soon as the payment cannot end by `deadline`.

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
                return await charge(self.settings)
            finally:
                self.processing -= 1
        finally:
            self._slots.release()
