"""Data survives refactors: every URN a stack had at a commit of main (which CI deploys) still names a resource at
HEAD, as its own URN or as an alias, unless it was retired on purpose (never one that holds data); the orders table and
queues are protected while `protectData` holds. The URNs of the past are `tests/released_urns.json`, written by
`python -m bench.urn_history --write`; HEAD's come from the program under mocks, with the engine's URNs and aliases."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import urn_history
from stackconfig import files
from stackconfig.schema import read_stack_file
from tests.infra_mocks import Registered, registrations

RECORD: dict[str, Any] = json.loads(urn_history.RECORD.read_text())
STACKS = sorted(RECORD["stacks"])

# Types whose replacement loses what they hold, or an identity others depend on (subscribers confirmed to a topic,
# keys that encrypt what is queued, the logs of past tasks): none of them may lose its URN without an alias.
STATEFUL = {
    "aws:dynamodb/table:Table",
    "aws:sqs/queue:Queue",
    "aws:s3/bucket:Bucket",
    "aws:ecr/repository:Repository",
    "aws:sns/topic:Topic",
    "aws:kms/key:Key",
    "aws:cloudwatch/logGroup:LogGroup",
}
# What the program deletes on purpose: type::name of the old resource (the stack's name written STACK) -> why.
RETIRED: dict[str, str] = {}
# The resources `protectData` protects, by type and the end of their logical name.
PROTECTED = {
    ("aws:dynamodb/table:Table", "orders-table"),
    ("aws:sqs/queue:Queue", "orders-queue"),
    ("aws:sqs/queue:Queue", "orders-dlq"),
}


def type_of(urn: str) -> str:
    return urn.split("::")[2].split("$")[-1]


def retired_key(urn: str, stack: str) -> str:
    """An old URN as RETIRED names it: its own type and logical name, the stack's name written STACK."""
    return f"{type_of(urn)}::{urn.split('::')[3].replace(f'-{stack}-', '-STACK-')}"


def head(stack: str, **overrides: Any) -> dict[str, Registered]:
    config = read_stack_file(files.stack_file(stack)) | {f"flashsale:{k}": v for k, v in overrides.items()}
    return registrations(stack, config)


@pytest.fixture(scope="module", params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def now(stack: str) -> dict[str, Registered]:
    return head(stack)


def test_every_stateful_urn_ever_deployed_still_names_a_resource(stack: str, now: dict[str, Registered]) -> None:
    """A URN of the past that names nothing now is a resource `pulumi up` would delete (and, renamed, create anew):
    for a table or a queue, new and empty ones. (Stateless resources renamed by f81c3ad, roles, services, load
    balancers, are not all aliased yet: docs/runbook/teardown.md.)"""
    named = set(now) | {alias for r in now.values() for alias in r.aliases}
    lost = [
        f"{urn} (first deployed at {first})"
        for urn, first in RECORD["stacks"][stack].items()
        if urn not in named and type_of(urn) in STATEFUL and retired_key(urn, stack) not in RETIRED
    ]
    assert not lost, "these URNs lost their resource; add the old URN to its successor's `aliases`:\n" + "\n".join(lost)


def test_only_stateless_resources_are_retired() -> None:
    assert not [key for key in RETIRED if key.split("::")[0] in STATEFUL]


def test_the_orders_table_and_queues_are_protected(stack: str, now: dict[str, Registered]) -> None:
    protected = {(r.typ, r.urn.split("::")[3]) for r in now.values() if r.protect}
    assert protected == PROTECTED, "protectData protects exactly the orders table and queues"


def test_protect_data_false_unprotects_them_for_a_teardown(stack: str) -> None:
    assert not [r.urn for r in head(stack, protectData=False).values() if r.protect]
