"""The local stand-in for the ECS container credentials endpoint: each task gets its task role's credentials, and
nothing else.

ECS gives a task no keys in its environment: `AWS_CONTAINER_CREDENTIALS_FULL_URI` and
`AWS_CONTAINER_AUTHORIZATION_TOKEN` point the SDKs at an endpoint that answers the task role's temporary credentials,
which expire and are fetched again. The local ECS does the same: every task is granted a URL and a token here, and a
GET with that token assumes the task's role through the control plane's STS (moto's) and answers the SDKs' shape
(`AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration`, `RoleArn`).

The credentials are short-lived so the services refresh them many times in a test or a lab run: botocore refreshes
credentials that expire within 15 minutes (its advisory window: it tries, and keeps the old ones if that fails; 10
minutes before expiry it must succeed), so each answer expires `lifetime_seconds` after that window opens and every
process fetches again every `lifetime_seconds`. `delay_seconds` and `failing` make the endpoint slow or failing, as
a real one can be, for the tests that show a service unaffected.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import ThreadingHTTPServer
from typing import Any, Final

from botocore.config import Config

from bench.localaws import iam_gate
from bench.localaws.emulators import LOOPBACK, emulator_client
from bench.localaws.jsonhttp import JsonHandler

ENV_FULL_URI: Final = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
ENV_AUTHORIZATION_TOKEN: Final = "AWS_CONTAINER_AUTHORIZATION_TOKEN"
PATH_PREFIX: Final = "/v2/credentials/"
BOTOCORE_ADVISORY_REFRESH_SECONDS: Final = 15 * 60  # botocore.credentials.RefreshableCredentials
DEFAULT_LIFETIME_SECONDS: Final = 60.0  # each task fetches its credentials again about once a minute
STS_DURATION_SECONDS: Final = 3600  # what the endpoint asks STS for (moto does not enforce it)


@dataclass(frozen=True)
class Grant:
    """One task's right to its role's credentials."""

    task_id: str
    role_arn: str
    sts_endpoint: str
    region: str


@dataclass(frozen=True)
class Fetch:
    """One request to the endpoint: whose, when it arrived (monotonic), whether credentials were given."""

    task_id: str
    arrived: float
    served: bool


class CredentialsEndpoint:
    """Serves every granted task its role's credentials; `fetches` lists the requests, `served` counts the answers
    that gave credentials, per task."""

    def __init__(self, lifetime_seconds: float = DEFAULT_LIFETIME_SECONDS) -> None:
        self.lifetime_seconds = lifetime_seconds
        self.delay_seconds = 0.0  # each answer waits this long first (a slow endpoint)
        self.failing = False  # answer 500 (a failing endpoint)
        self.fetches: list[Fetch] = []
        self._lock = threading.Lock()
        self._grants: dict[str, Grant] = {}  # token -> grant
        endpoint = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                arrived = time.monotonic()
                if endpoint.delay_seconds:
                    time.sleep(endpoint.delay_seconds)
                self.answer(*endpoint.answer(self.path, self.headers.get("Authorization", ""), arrived))

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-credentials", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def grant(self, task_id: str, role_arn: str, *, sts_endpoint: str, region: str) -> dict[str, str]:
        """The environment that gives task `task_id` the credentials of `role_arn`, as ECS sets it."""
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._grants[token] = Grant(task_id, role_arn, sts_endpoint, region)
        return {ENV_FULL_URI: f"{self.url}{PATH_PREFIX}{task_id}", ENV_AUTHORIZATION_TOKEN: token}

    @property
    def served(self) -> Counter[str]:
        with self._lock:
            return Counter(fetch.task_id for fetch in self.fetches if fetch.served)

    def answer(self, path: str, token: str, arrived: float | None = None) -> tuple[int, dict[str, Any]]:
        """The answer to a GET of `path` with `token` in its Authorization header."""
        with self._lock:
            grant = self._grants.get(token)
        if grant is None or path != PATH_PREFIX + grant.task_id:
            return 403, {"code": "AccessDenied", "message": "no credentials for this token at this path"}
        fetch = Fetch(grant.task_id, time.monotonic() if arrived is None else arrived, served=not self.failing)
        with self._lock:
            self.fetches.append(fetch)
        if not fetch.served:
            return 500, {"code": "InternalError", "message": "the credentials endpoint is failing (injected)"}
        assumed = _sts(grant.sts_endpoint, grant.region).assume_role(
            RoleArn=grant.role_arn, RoleSessionName=grant.task_id[:64], DurationSeconds=STS_DURATION_SECONDS
        )["Credentials"]
        iam_gate.ledger().record_key(assumed["AccessKeyId"], grant.role_arn)  # before the task can use the key
        expires = datetime.now(UTC) + timedelta(seconds=BOTOCORE_ADVISORY_REFRESH_SECONDS + self.lifetime_seconds)
        return 200, {
            "AccessKeyId": assumed["AccessKeyId"],
            "SecretAccessKey": assumed["SecretAccessKey"],
            "Token": assumed["SessionToken"],
            "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "RoleArn": grant.role_arn,
        }

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def lambda_environment(role_arn: str, *, sts_endpoint: str, region: str) -> dict[str, str]:
    """What Lambda gives a function's process: its execution role's temporary keys in the environment."""
    assumed = _sts(sts_endpoint, region).assume_role(
        RoleArn=role_arn, RoleSessionName="local-lambda", DurationSeconds=STS_DURATION_SECONDS
    )["Credentials"]
    iam_gate.ledger().record_key(assumed["AccessKeyId"], role_arn)  # before the function can use the key
    return {
        "AWS_ACCESS_KEY_ID": assumed["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": assumed["SecretAccessKey"],
        "AWS_SESSION_TOKEN": assumed["SessionToken"],
    }


_STS: dict[tuple[str, str], Any] = {}
_SHARED: CredentialsEndpoint | None = None
_SHARED_LOCK = threading.Lock()


def _sts(endpoint_url: str, region: str) -> Any:
    """The control plane's STS, called with the emulators' own keys (the endpoint is the AWS side, not a task)."""
    with _SHARED_LOCK:
        if (endpoint_url, region) not in _STS:
            config = Config(connect_timeout=2, read_timeout=10, retries={"total_max_attempts": 2})
            _STS[endpoint_url, region] = emulator_client("sts", endpoint_url, region, config)
        return _STS[endpoint_url, region]


def shared() -> CredentialsEndpoint:
    """This process's endpoint, started at the first task granted (one serves every local task, as one agent serves
    every task of an ECS instance)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = CredentialsEndpoint()
        return _SHARED
