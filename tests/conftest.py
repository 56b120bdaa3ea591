"""Shared fixtures: the local AWS emulators, started once per test session on free loopback ports, and the normal
stack deployed to them once by the local deployer (the Pulumi program itself, with test settings)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bench.localaws.deployer import Deployment, Endpoints, deploy
from bench.localaws.ecs import LocalService, deployed_services
from bench.localaws.emulators import Emulator

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
