"""Schemathesis against both web services as real processes, from the OpenAPI document each serves: whatever the
generated request (valid orders, broken bodies, odd path ids), no answer is a 5xx and every answer matches the
document (status code, content type, headers, body schema). Bounded: MAX_EXAMPLES per operation and mode."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import contract, openapi
from bench.localaws.deployer import Deployment
from bench.localaws.ecs import LocalService
from bench.localaws.emulators import Emulator
from bench.localaws.tasks import Task
from tests.helpers import module_system

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 300
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# A quick payment (no 504 from waiting on the one slot) and no declines: the fuzzer exercises input handling.
FUZZ_SETTINGS = {contract.ENV_PAYMENT_SECONDS: "0.01", contract.ENV_PAYMENT_DECLINE_RATE: "0"}


@pytest.fixture(scope="module")
def tasks(
    ministack: Emulator, deployment: Deployment, services: list[LocalService], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Task]]:
    """The sync service and the receiver as deployed, started once for the module on a fresh data plane."""
    with module_system(deployment, services, ministack, tmp_path_factory.mktemp("fuzz")) as shared:
        yield {role: shared.start(role, **FUZZ_SETTINGS) for role in ("sync", "receiver")}


# The documents are loaded in-process at import (schemathesis' lazy `from_fixture` loader breaks on pytest 9: it sets
# a private node attribute); test_served_documents_are_the_fuzzed_ones proves they are what the services serve.
DOCUMENTS = {"sync": openapi.sync_document(), "receiver": openapi.receiver_document()}
CONFIG = SchemathesisConfig.from_dict({"generation": {"mode": "all"}})  # valid requests and broken ones
sync = schemathesis.openapi.from_dict(DOCUMENTS["sync"], config=CONFIG)
receiver = schemathesis.openapi.from_dict(DOCUMENTS["receiver"], config=CONFIG)
bounded = settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


def test_served_documents_are_the_fuzzed_ones(tasks: dict[str, Task]) -> None:
    for role, task in tasks.items():
        assert httpx.get(task.url + contract.OPENAPI_PATH).json() == DOCUMENTS[role]


@sync.parametrize()
@bounded
def test_sync_service_never_5xx_and_matches_its_schema(case: schemathesis.Case[Any], tasks: dict[str, Task]) -> None:
    case.call_and_validate(base_url=tasks["sync"].url, checks=CHECKS)


@receiver.parametrize()
@bounded
def test_receiver_never_5xx_and_matches_its_schema(case: schemathesis.Case[Any], tasks: dict[str, Task]) -> None:
    case.call_and_validate(base_url=tasks["receiver"].url, checks=CHECKS)
