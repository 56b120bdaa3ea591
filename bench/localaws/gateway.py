"""The payment gateway as one service (issue 21 item 2): app.payment's simulator behind `POST /charges/{key}`, served
in a thread of the local runtime. Tasks given its URL (PAYMENT_GATEWAY_URL) all charge through it, so its ledger of
charged keys is shared by every worker, as a real gateway's is by every task of every region: an order charged by
one task is answered from the ledger, not charged again, when another task pays it under the same order id."""

from __future__ import annotations

from dataclasses import asdict

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from app.payment import CHARGES_PATH, Gateway
from app.settings import PaymentSettings
from bench.localaws.serving import ThreadedServer


def gateway_app(settings: PaymentSettings) -> Starlette:
    gateway = Gateway(settings)

    async def charge(request: Request) -> JSONResponse:
        payer = str((await request.json())["payer"])
        return JSONResponse(asdict(await gateway.charge(request.path_params["key"], payer)))

    return Starlette(routes=[Route(CHARGES_PATH + "/{key}", charge, methods=["POST"])])


def serve(settings: PaymentSettings) -> ThreadedServer:
    """The gateway, started on a free loopback port (`.url`; `.stop()` ends it)."""
    return ThreadedServer(gateway_app(settings), name="payment-gateway").start()
