"""Shared fixtures: the local AWS emulators, started once per test session on free loopback ports, and the normal
stack deployed to them once by the local deployer (the Pulumi program itself, with test settings)."""

from __future__ import annotations

import ast
import functools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bench.localaws import iam_gate
from bench.localaws.deployer import Deployment, Endpoints, deploy
from bench.localaws.ecs import LocalService, deployed_services
from bench.localaws.emulators import Emulator


def _one_thread_at_a_time(parse: Callable[..., Any]) -> Callable[..., Any]:
    lock = threading.RLock()

    @functools.wraps(parse)
    def parse_alone(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return parse(*args, **kwargs)

    return parse_alone


# CPython before 3.11.8 counts the AST constructor's recursion in one place per interpreter (gh-106905): two threads
# building AST objects at once can raise "SystemError: AST constructor recursion depth mismatch". A test process has
# several parsers: pytest in the test's thread (assertion rewriting at import, failure reports), and Python 3.11's
# traceback formatting in whichever thread logs an exception (uvicorn's servers in the local system's threads). One
# such clash crashed an xdist worker while it reported a failure in tests/test_console.py (INTERNALERROR, every
# later test of that worker lost).
if sys.version_info < (3, 11, 8):
    ast.parse = _one_thread_at_a_time(ast.parse)

# Config overrides for the session's deployment, as `pulumi config set` would make them: fast payments, no declines.
TEST_CONFIG = {"paymentSeconds": 0.3, "paymentDeclineRate": 0}


@pytest.fixture(scope="session")
def ministack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """ministack (SNS, SQS, DynamoDB, CloudWatch) for the whole session; tests reset it when they need a clean slate."""
    log = tmp_path_factory.mktemp("ministack") / "ministack.log"
    with Emulator("ministack", log_path=log) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """moto's server: the control plane (ECS, ELBv2, IAM, Application Auto Scaling, Lambda, ...)."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with Emulator("moto", log_path=log) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def emulators(ministack: Emulator, moto: Emulator) -> tuple[Emulator, Emulator]:
    """The session's emulators, for a test's LocalSystem to deploy to (`LocalSystem(args, emulators=...)`): fresh
    ones and a first deploy to them take ~15 s on a loaded 2-core machine, a deploy to these ~1 s. The system resets
    the data plane (the tests after it reset it again); its control plane sits beside the session's, under its own
    names."""
    return ministack, moto


@pytest.fixture(scope="session")
def endpoints(ministack: Emulator, moto: Emulator) -> Endpoints:
    return Endpoints(ministack.endpoint_url, moto.endpoint_url)


@pytest.fixture(scope="session")
def deployment(endpoints: Endpoints) -> Deployment:
    """The normal stack, deployed once for the session; `system` re-creates its data plane for each test."""
    deployed = deploy("normal", endpoints, overrides=TEST_CONFIG)
    assert deployed.ok, deployed.summary()
    return deployed


@pytest.fixture(scope="session")
def services(deployment: Deployment) -> list[LocalService]:
    """The deployment's ECS services, with what their tasks run (the task definitions as deployed)."""
    return deployed_services(deployment)


@pytest.fixture
def aws_env(ministack: Emulator, endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point this test's boto3 clients at a freshly reset ministack (and moto for the control plane); returns the env
    for child processes."""
    ministack.reset()
    for key, value in endpoints.env().items():
        monkeypatch.setenv(key, value)
    return dict(os.environ)


class IamRefusals:
    """The calls the local IAM gate refused during one test (bench.localaws.iam_gate). A test that means to provoke
    refusals asks for this fixture and calls `expected()`; in any other test a refusal fails it."""

    def __init__(self) -> None:
        self._ledger = iam_gate.ledger()
        self._before = self._ledger.seen()
        self._expected = False

    def now(self) -> list[iam_gate.Denial]:
        return self._ledger.usage_since(self._before).denials

    def expected(self) -> list[iam_gate.Denial]:
        """The refusals so far, taken by the test: they no longer fail it."""
        self._expected = True
        return self.now()

    def unexpected(self) -> list[iam_gate.Denial]:
        return [] if self._expected else self.now()


@pytest.fixture(autouse=True)
def iam_refusals() -> Iterator[IamRefusals]:
    """Every call a task made in the test was allowed by its role's policies as deployed; a refusal fails the test
    with the role, the action and the resource."""
    refusals = IamRefusals()
    yield refusals
    unexpected = refusals.unexpected()
    assert not unexpected, "IAM refused calls the services made:\n" + "\n".join(map(str, unexpected))
