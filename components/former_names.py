"""Where resources lived in earlier releases: their old URNs, given as `aliases` so that `pulumi up` on a stack an
earlier commit of main deployed updates them in place instead of replacing them (new, empty tables and queues).

Two renames happened since the first program (3d4fb47): e0c5885 dropped the stack prefix from logical names
(`flashsale-<stack>-alerts` became `alerts`), and f81c3ad cut the async and sync systems into the patterns
(`AsyncOrderStack`'s `async-orders-table` became `OrderPipeline`'s `orders-table`). `with_former_names` is a
stack transformation that adds the aliases: the top-level components get their prefixed
names and so do their direct children (whose names start with the component's), and each resource in `FORMER` its
old URNs under both names. tests/test_urns.py checks the result against every URN main ever deployed
(tests/released_urns.json); docs/runbook/teardown.md says why and what it does not cover yet.
"""

from __future__ import annotations

import pulumi

ASYNC = "flashsale:async:AsyncOrderStack"  # the async system as one component, until f81c3ad
SYNC = "flashsale:sync:SyncOrderStack"
FARGATE = "flashsale:fargate:FargateService"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"

# (type, logical name now) -> (the type chain of its old parents, its name from e0c5885 to f81c3ad); before e0c5885
# the same name had the stack prefix in front.
FORMER: dict[tuple[str, str], tuple[str, str]] = {
    ("aws:dynamodb/table:Table", "orders-table"): (ASYNC, "async-orders-table"),
    ("aws:sqs/queue:Queue", "orders-queue"): (ASYNC, "async-orders-queue"),
    ("aws:sqs/queue:Queue", "orders-dlq"): (ASYNC, "async-orders-dlq"),
    ("aws:sns/topic:Topic", "orders-topic"): (ASYNC, "async-orders"),
    (LOG_GROUP, "receiver-svc-logs"): (f"{ASYNC}${FARGATE}", "async-receiver-logs"),
    (LOG_GROUP, "worker-svc-logs"): (f"{ASYNC}${FARGATE}", "async-worker-logs"),
    (LOG_GROUP, "sync-svc-logs"): (f"{SYNC}${FARGATE}", "sync-svc-logs"),
}
# Top-level components named `<prefix>-<name>` before e0c5885, with the same type.
PREFIXED = {
    ("flashsale:network:Network", "net"),
    ("flashsale:image:ServiceImage", "image"),
    ("flashsale:alerts:Alerts", "alerts"),
    ("flashsale:monitoring:Alarms", "alarms"),
    ("flashsale:monitoring:Dashboard", "dashboard"),
}


def former_urns(prefix: str, typ: str, name: str) -> list[str]:
    """The old URNs of the resource `typ` `name` now (none for one that was never renamed)."""
    if (typ, name) not in FORMER:
        return []
    chain, old = FORMER[(typ, name)]
    base = f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{chain}${typ}"
    return [f"{base}::{old}", f"{base}::{prefix}-{old}"]


def with_former_names(prefix: str) -> pulumi.ResourceTransformation:
    """The stack transformation that gives each renamed resource its old names as aliases."""

    def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
        aliases: list[pulumi.Input[str | pulumi.Alias]] = list(former_urns(prefix, args.type_, args.name))
        if (args.type_, args.name) in PREFIXED:
            aliases.append(pulumi.Alias(name=f"{prefix}-{args.name}"))
        parent = args.opts.parent if args.opts else None
        parent_key = (getattr(parent, "_type", ""), getattr(parent, "_name", ""))
        if parent_key in PREFIXED and args.name.startswith(f"{parent_key[1]}-"):  # a child of a prefixed component
            old = f"{parent_key[0]}${args.type_}::{prefix}-{args.name}"
            aliases.append(f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{old}")
        if not aliases:
            return None
        opts = pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(aliases=aliases))
        return pulumi.ResourceTransformationResult(args.props, opts)

    return transform
