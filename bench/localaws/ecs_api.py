"""The ECS API as the local system's clients see it: moto's, with each service's task counts the local ECS's.

moto sets a service's runningCount to its desiredCount the moment UpdateService changes it (and reports 0 before
any UpdateService), whatever runs; on AWS runningCount counts the tasks in RUNNING and pendingCount those still
starting, which is what `ops.prescale` waits on, what `ops.preflight` judges and what the notifier's "tasks to add"
reads. So every ECS call of the local system and of the ops commands pointed at it goes through this facade: each
request is forwarded to moto unchanged, and in DescribeServices answers the services the local ECS runs get its
counts (healthy tasks running; wanted ones starting or not yet healthy, pending), in the service and in its primary
deployment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench.localaws.serving import ThreadedServer

DESCRIBE_SERVICES = "AmazonEC2ContainerServiceV20141113.DescribeServices"
# Hop-by-hop and length headers: the facade's server sets its own.
NOT_FORWARDED = {"host", "content-length", "transfer-encoding", "connection", "content-encoding"}

Counts = Callable[[str, str], tuple[int, int] | None]  # (cluster ARN or name, service name) -> (running, pending)


def with_counts(body: dict[str, Any], counts: Counts) -> dict[str, Any]:
    """A DescribeServices answer with the local ECS's counts written in."""
    for service in body.get("services", []):
        found = counts(service.get("clusterArn", ""), service.get("serviceName", ""))
        if found is None:
            continue
        running, pending = found
        service["runningCount"], service["pendingCount"] = running, pending
        primary = next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), None)
        if primary is not None:
            primary["runningCount"], primary["pendingCount"] = running, pending
    return body


class EcsApi:
    """The facade's server; `url` is the ECS endpoint to give the system's clients."""

    def __init__(self, moto_url: str, counts: Counts) -> None:
        self.moto_url = moto_url
        self.counts = counts
        self._client: httpx.AsyncClient | None = None  # made in the server's event loop, on the first request
        self._server = ThreadedServer(self.app(), name="ECS API facade")

    @property
    def url(self) -> str:
        return self._server.url

    def app(self) -> Starlette:
        async def forward(request: Request) -> Response:
            body = await request.body()
            headers = {k: v for k, v in request.headers.items() if k.lower() not in NOT_FORWARDED}
            if self._client is None:
                self._client = httpx.AsyncClient(base_url=self.moto_url, timeout=30)
            answer = await self._client.request(
                request.method, request.url.path, params=request.query_params, content=body, headers=headers
            )
            content = answer.content
            if request.headers.get("x-amz-target") == DESCRIBE_SERVICES and answer.status_code == 200:
                content = json.dumps(with_counts(answer.json(), self.counts)).encode()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in NOT_FORWARDED}
            return Response(content, status_code=answer.status_code, headers=kept)

        return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST", "PUT", "DELETE"])])

    def start(self) -> EcsApi:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()
