"""One boto3 client factory for the services and the ops tools.

boto3 honours `AWS_ENDPOINT_URL`, so the same code talks to AWS or to the local emulator.
"""

from __future__ import annotations

import os
from typing import Any, Final

import boto3
from botocore.config import Config

from app import contract

# Every client's bounds, boto3's (`client`) and the receiver's event-loop client's (app.aws_async) alike.
CONNECT_TIMEOUT_SECONDS: Final = 2.0
READ_TIMEOUT_SECONDS: Final = 10.0
RETRIES: Final = 2  # after the first attempt
# Calls on a buyer's request path (the receiver's, the sync service's key records): shorter bounds than the defaults.
REQUEST_PATH_READ_TIMEOUT_SECONDS: Final = 5.0
REQUEST_PATH_RETRIES: Final = 1


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or contract.AWS_REGION_DEFAULT


def client(
    service: str,
    *,
    read_timeout: float = READ_TIMEOUT_SECONDS,
    max_pool_connections: int = 50,
    retries: int = RETRIES,
    session: boto3.session.Session | None = None,
) -> Any:
    """A client with bounded timeouts: a dead backend must surface as an error in seconds, not hang a request.

    Long-polling callers pass a read_timeout above the 20 s receive wait. A caller making clients for many services
    passes one `session`: each new session reads botocore's endpoint data again (~0.2 s of CPU).
    """
    config = Config(
        region_name=region(),
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
        read_timeout=read_timeout,
        max_pool_connections=max_pool_connections,
        retries={"total_max_attempts": retries + 1, "mode": "standard"},
    )
    return (session or boto3.session.Session()).client(service, config=config)
