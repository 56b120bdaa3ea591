"""Shared fixtures: the local AWS emulators, started once per test session on free loopback ports."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ops.emulators import Emulator

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def ministack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """ministack (SNS, SQS, DynamoDB, CloudWatch) for the whole session; tests reset it when they need a clean slate."""
    log = tmp_path_factory.mktemp("ministack") / "ministack.log"
    with Emulator("ministack", log_path=log) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """moto's server, only for ECS and Application Auto Scaling."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with Emulator("moto", log_path=log) as emulator:
        yield emulator


def _point_at(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    emulator.reset()
    for key, value in emulator.env().items():
        monkeypatch.setenv(key, value)
    return dict(os.environ)


@pytest.fixture
def aws_env(ministack: Emulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point this test's boto3 clients at a freshly reset ministack; returns the env for child processes."""
    return _point_at(ministack, monkeypatch)


@pytest.fixture
def moto_env(moto: Emulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Likewise for moto's server (ECS and Application Auto Scaling)."""
    return _point_at(moto, monkeypatch)
