"""AWS API calls on the event loop for the receiver's hot path: botocore's own serializer, SigV4 signer, parser and
standard retry conditions, sent over one aiohttp connection pool, without a thread.

Why not a boto3 client there: measured against ministack (one thread; the README's Performance section has the
figures), a boto3 call costs ~0.9 ms of CPU whatever the operation (event hooks, parameter validation, the
user-agent string, endpoint rules, urllib3 and http.client), aiobotocore the same, plus ~0.16 ms to hop to a
worker thread and back; the receiver makes two calls per order, which alone was over its CPU budget. This path
builds the same request (same serializer and signature), parses the answer with the same parser (so errors carry
the same codes, as ClientError), and costs ~0.4 ms a call.

Everything else comes from a boto3 client built once, so the endpoint (AWS_ENDPOINT_URL or the region's), the
region and the credentials (environment, or the ECS task role, refreshed by botocore before they expire: that
refresh, a few times an hour, is one blocking call on the event loop) are those every other client of the services
uses. Retries follow botocore's standard mode (transient errors, throttling, modeled retryable errors; jittered
exponential backoff), with the attempts given.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import boto3
from botocore import parsers, serialize
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import ClientError, EndpointConnectionError, HTTPClientError, NoCredentialsError
from botocore.model import OperationModel
from botocore.retries.standard import ExponentialBackoff, RetryContext, StandardRetryConditions

from app import aws


@dataclass(frozen=True)
class _HttpResponse:
    """What botocore's retry checkers read from a response."""

    status_code: int
    headers: Any
    content: bytes


class AsyncClient:
    """`await call("PublishBatch", TopicArn=..., ...)`: the parsed response, or ClientError / a BotoCoreError."""

    def __init__(self, service: str, *, connect_timeout: float = 2.0, read_timeout: float = 5.0,
                 max_connections: int = 16, retries: int = 1) -> None:
        sync = aws.client(service)  # resolves endpoint and region as every other client does; never called
        self._model = sync.meta.service_model
        self._url = sync.meta.endpoint_url.rstrip("/")
        self._region = sync.meta.region_name
        self._credentials = boto3.session.Session().get_credentials()
        protocol = self._model.protocol
        self._serializer = serialize.create_serializer(protocol, include_validation=False)
        self._parser = parsers.create_parser(protocol)
        self._operations: dict[str, OperationModel] = {}
        self._retryable = StandardRetryConditions(max_attempts=retries + 1)
        self._backoff = ExponentialBackoff(service_name=self._model.service_name)
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
        self._max_connections = max_connections
        self._http: aiohttp.ClientSession | None = None  # made on the event loop, at the first call

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        model = self._operations.get(operation) or self._operations.setdefault(
            operation, self._model.operation_model(operation))
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._send(model, params)
            except (HTTPClientError, EndpointConnectionError) as e:
                context = RetryContext(attempt_number=attempt, operation_model=model, caught_exception=e)
                if not self._retryable.is_retryable(context):
                    raise
            else:
                parsed: dict[str, Any] = self._parser.parse(
                    {"headers": response.headers, "status_code": response.status_code, "body": response.content},
                    model.output_shape)
                context = RetryContext(attempt_number=attempt, operation_model=model, parsed_response=parsed,
                                       http_response=response)
                if not self._retryable.is_retryable(context):
                    if response.status_code >= 300 or "Error" in parsed:
                        raise ClientError(parsed, operation)
                    return parsed
            await asyncio.sleep(self._backoff.delay_amount(context))

    async def _send(self, model: OperationModel, params: dict[str, Any]) -> _HttpResponse:
        credentials = self._credentials.get_frozen_credentials() if self._credentials else None
        if credentials is None:
            raise NoCredentialsError()
        serialized = self._serializer.serialize_to_request(params, model)
        request = AWSRequest(method=serialized["method"], url=self._url + serialized["url_path"],
                             data=serialized["body"], headers=serialized["headers"])
        SigV4Auth(credentials, self._model.signing_name, self._region).add_auth(request)
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=self._timeout, auto_decompress=False,
                                               connector=aiohttp.TCPConnector(limit=self._max_connections))
        try:
            async with self._http.request(request.method, request.url, data=request.body,
                                          headers=dict(request.headers.items())) as answer:
                return _HttpResponse(answer.status, answer.headers, await answer.read())
        except aiohttp.ClientConnectorError as e:
            raise EndpointConnectionError(endpoint_url=self._url, error=e) from e
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise HTTPClientError(error=e) from e
