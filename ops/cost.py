"""What a flash sale costs on AWS, and which AWS default quota it meets first as it grows.

PRICES and QUOTAS are the one table of each: a value, its unit, when it was read and where. Where a figure could not
be confirmed in AWS's own documentation as searched here, its source says so; every value can be overridden
(`python -m ops.capacity --price KEY=VALUE --quota KEY=VALUE`). The functions are pure, so the capacity planner
(planned task-seconds) and the lab (measured task-seconds and orders) price a sale with the same arithmetic:

    cost = task-seconds x (vCPU x price per vCPU-second + GB x price per GB-second)
         + orders x the requests each order makes (REQUESTS_PER_ORDER) x their list prices
         + the workers' empty long polls

Task-seconds are billed per second with a one-minute minimum per task. Not included: the load balancers' hours and
capacity units, CloudWatch, data transfer, storage, and free tiers (monthly and account-wide).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from app import contract
from app.shedding import CPU_SATURATED_SHARE
from app.worker import receive_loops
from ops import stack
from stackconfig.schema import CONFIG_DEFAULTS

TASK_VCPU = contract.TASK_CPU_UNITS / 1024  # every task of the stack has this size (components/fargate.py)
TASK_MEMORY_GB = contract.TASK_MEMORY_MB / 1024


@dataclass(frozen=True)
class Figure:
    """One price or quota, as read: what it is, its unit, when and where."""

    key: str
    value: float
    unit: str
    what: str
    as_of: str  # when it was read: a page's own date, or the day it was read here through stored copies
    source: str


READ_HERE = "2026-12-01"  # the day the AWS documentation pages cited were read (from stored copies of them)

PRICES: tuple[Figure, ...] = (
    Figure(
        "fargate_vcpu_second",
        0.000011244,
        "USD per vCPU-second",
        "Fargate on-demand, Linux/x86, us-east-1",
        "2026-10-09",
        "aws.amazon.com/fargate/pricing (its rate table is drawn by script, so read through copies: "
        "the ECS pricing page's worked example, transcribed 2026-09-20; third-party 2026 pages give $0.04048 per "
        "vCPU-hour); us-west-2, the stack's region, not confirmed here",
    ),
    Figure(
        "fargate_gb_second",
        0.000001235,
        "USD per GB-second",
        "Fargate on-demand, Linux/x86, us-east-1",
        "2026-10-09",
        "aws.amazon.com/fargate/pricing, read through a copy of 2026-10-09; third-party 2026 pages "
        "give $0.004445 per GB-hour; us-west-2 not confirmed here",
    ),
    Figure(
        "fargate_minimum_seconds",
        60,
        "seconds per task",
        "Fargate bills per second with a one-minute minimum",
        "2026-09-20",
        "aws.amazon.com/ecs/pricing ('A minimum charge of one minute applies', transcribed copy)",
    ),
    Figure(
        "sqs_request",
        0.40e-6,
        "USD per request",
        "SQS standard queue, each 64 KB of a request, up to 100 billion requests a month",
        "2026-06",
        "third-party pages (cloudburn.io 2026-03, factualminds.com "
        "2026-06); not confirmed on aws.amazon.com/sqs/pricing here",
    ),
    Figure(
        "sns_publish",
        0.50e-6,
        "USD per publish",
        "SNS standard topic, each 64 KB of a publish",
        "2026-06-13",
        "factualminds.com 2026-06-13 (third party); not confirmed on aws.amazon.com/sns/pricing here",
    ),
    Figure(
        "sns_sqs_delivery",
        0.0,
        "USD per delivery",
        "SNS delivery to an SQS queue",
        "-",
        "not confirmed here: AWS's SNS pricing has listed deliveries to SQS as free; override if it changed",
    ),
    Figure(
        "dynamodb_write_unit",
        0.625e-6,
        "USD per write request unit",
        "DynamoDB on-demand, us-east-1 (after the November 2024 cut)",
        "2025-07-21",
        "airbyte.com 2025-07-21 (third party); not confirmed on aws.amazon.com/dynamodb/pricing here",
    ),
    Figure(
        "dynamodb_read_unit",
        0.125e-6,
        "USD per read request unit",
        "DynamoDB on-demand, us-east-1",
        "2025-07-21",
        "airbyte.com 2025-07-21 (third party); not confirmed on aws.amazon.com/dynamodb/pricing here",
    ),
)

QUOTAS: tuple[Figure, ...] = (
    Figure(
        "fargate_vcpu",
        6,
        "vCPUs running at once",
        "Fargate On-Demand vCPU resource count, per Region (new accounts may start lower)",
        "2026-10-09",
        "docs.aws.amazon.com/general/latest/gr/ecs-service.html, "
        "quoted in a copy read 2026-10-09; the AWS Batch API reference says 'The default ... is 6 vCPUs'",
    ),
    Figure(
        "fargate_launch_burst",
        100,
        "tasks launched at once",
        "Fargate task launch rate: a bucket of 100, refilled at 20 tasks/s",
        READ_HERE,
        "docs.aws.amazon.com/AmazonECS/latest/developerguide/throttling.html",
    ),
    Figure(
        "ecs_tasks_per_service",
        5000,
        "tasks",
        "Amazon ECS tasks per service",
        "-",
        "not confirmed here: ecs-service.html found, its table not in the searched text; 5,000 from a "
        "third-party planning note",
    ),
    Figure(
        "alb_targets",
        1000,
        "targets",
        "targets per Application Load Balancer (and per target group)",
        READ_HERE,
        "docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-limits.html",
    ),
    Figure(
        "sns_publish_rate",
        9000,
        "publishes/s",
        "SNS Publish to standard topics, us-west-2 (30,000 in us-east-1)",
        "-",
        "not confirmed here: docs.aws.amazon.com/general/latest/gr/sns.html found, its "
        "quota table not in the searched text",
    ),
    Figure(
        "sqs_in_flight",
        120000,
        "messages",
        "in-flight messages (received, not deleted) per standard queue; its API rate is 'nearly unlimited'",
        READ_HERE,
        "docs.aws.amazon.com/AWSSimpleQueueService/latest/"
        "SQSDeveloperGuide/quotas-queues.html and quotas-messages.html",
    ),
    Figure(
        "dynamodb_new_table_writes",
        4000,
        "write units/s",
        "a new on-demand table's warm throughput (then up to twice its previous peak; pre-warm before a sale)",
        READ_HERE,
        "docs.aws.amazon.com/amazondynamodb/latest/developerguide/pre-warming-on-demand-capacity-mode.html",
    ),
    Figure(
        "dynamodb_new_table_reads",
        12000,
        "read units/s",
        "a new on-demand table's warm throughput (reads)",
        READ_HERE,
        "pre-warming-on-demand-capacity-mode.html (as above)",
    ),
    Figure(
        "dynamodb_table_writes",
        40000,
        "write units/s",
        "table-level on-demand throughput quota",
        READ_HERE,
        "docs.aws.amazon.com/amazondynamodb/latest/developerguide/on-demand-capacity-mode-max-throughput.html",
    ),
    Figure(
        "dynamodb_table_reads",
        40000,
        "read units/s",
        "table-level on-demand throughput quota",
        READ_HERE,
        "on-demand-capacity-mode-max-throughput.html (as above)",
    ),
)


@dataclass(frozen=True)
class RequestsPerOrder:
    """The AWS requests one accepted order makes, by the code in app/ (orders are far under 1 KB)."""

    sns_publishes: float = 1.0  # the receiver publishes it once
    sns_sqs_deliveries: float = 1.0  # the order topic's one subscription, the order queue
    # The worker receives and deletes in batches of 10 (at full batches: while orders wait; a quiet queue answers
    # a receive with fewer, so up to one receive per order).
    sqs_requests: float = 2 / contract.ORDER_QUEUE.receive_batch_size
    dynamodb_writes: float = 2.0  # the receiver's pending record; the worker's conditional status write
    dynamodb_reads: float = 1.0  # the worker's strongly consistent look-up of the record (BatchGetItem)


REQUESTS_PER_ORDER = RequestsPerOrder()
# What the receiver spends per accepted order: measured by `python -m bench.benchmarks` here (docs/performance.md:
# 4.5-6.7 ms across runs, on this machine's cores, not a Fargate vCPU); sizes the receiver tasks of a plan.
RECEIVER_CPU_MS_PER_ORDER = 4.85


class CostError(stack.OpsError):
    pass


def _table(figures: Sequence[Figure], overrides: Mapping[str, float], kind: str) -> dict[str, float]:
    values = {f.key: f.value for f in figures}
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise CostError(f"unknown {kind} {', '.join(unknown)} (known: {', '.join(values)})")
    bad = [key for key, value in overrides.items() if not value >= 0 or math.isinf(value)]
    if bad:
        raise CostError(f"{kind} {', '.join(bad)} must be a number of at least 0")
    return values | dict(overrides)


def prices(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    return _table(PRICES, overrides or {}, "price")


def quotas(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    return _table(QUOTAS, overrides or {}, "quota")


def parse_overrides(pairs: Sequence[str], kind: str) -> dict[str, float]:
    """KEY=VALUE pairs from the command line."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            parsed[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise CostError(f"--{kind} takes KEY=VALUE with a number, got {pair!r}")
    return parsed


# --- cost -------------------------------------------------------------------------------------------------------


def billed_seconds(seconds: float, price: Mapping[str, float]) -> float:
    """One task's billed time: whole seconds, at least the minimum."""
    return max(price["fargate_minimum_seconds"], math.ceil(seconds - 1e-9))


@dataclass(frozen=True)
class Usage:
    """What a sale used: billed task-seconds, orders, and the workers' empty long polls."""

    task_seconds: float
    orders: float
    idle_polls: float = 0.0
    requests: RequestsPerOrder = REQUESTS_PER_ORDER


@dataclass(frozen=True)
class CostLine:
    item: str
    quantity: float
    unit: str
    usd: float


@dataclass(frozen=True)
class Cost:
    lines: tuple[CostLine, ...]
    total_usd: float
    usd_per_1000_orders: float


def cost(usage: Usage, price: Mapping[str, float]) -> Cost:
    r, orders = usage.requests, usage.orders
    rows = [
        ("Fargate vCPU", usage.task_seconds * TASK_VCPU, "vCPU-s", price["fargate_vcpu_second"]),
        ("Fargate memory", usage.task_seconds * TASK_MEMORY_GB, "GB-s", price["fargate_gb_second"]),
        ("SNS publishes", orders * r.sns_publishes, "publishes", price["sns_publish"]),
        ("SNS deliveries to SQS", orders * r.sns_sqs_deliveries, "deliveries", price["sns_sqs_delivery"]),
        ("SQS requests", orders * r.sqs_requests + usage.idle_polls, "requests", price["sqs_request"]),
        ("DynamoDB writes", orders * r.dynamodb_writes, "write units", price["dynamodb_write_unit"]),
        ("DynamoDB reads", orders * r.dynamodb_reads, "read units", price["dynamodb_read_unit"]),
    ]
    lines = tuple(CostLine(item, quantity, unit, quantity * each) for item, quantity, unit, each in rows)
    total = sum(line.usd for line in lines)
    return Cost(lines=lines, total_usd=total, usd_per_1000_orders=1000 * total / orders if orders else 0.0)


def idle_polls(worker_tasks: int, workers_per_task: int, seconds: float) -> float:
    """At most one long poll per receive loop every receive wait, while the queue is empty (an upper bound)."""
    return worker_tasks * receive_loops(workers_per_task) * seconds / contract.ORDER_QUEUE.receive_wait_time_seconds


# --- quotas -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizing:
    """How a sale's peak rate turns into tasks and requests (the capacity planner's sizing, as functions)."""

    payment_seconds: float
    workers_per_task: int
    safety_margin: float
    other_tasks: int  # tasks that do not grow with the rate (the sync service's)
    minimum_receiver_tasks: int = CONFIG_DEFAULTS.receiver_tasks
    receiver_cpu_ms: float = RECEIVER_CPU_MS_PER_ORDER
    requests: RequestsPerOrder = REQUESTS_PER_ORDER

    def worker_tasks(self, rate: float) -> int:
        workers = math.ceil(rate * self.payment_seconds * (1 + self.safety_margin) - 1e-9)
        return math.ceil(workers / self.workers_per_task)

    def receiver_tasks(self, rate: float) -> int:
        """Enough tasks that none passes the CPU share where the receiver starts shedding (app.shedding)."""
        needed = math.ceil(rate * self.receiver_cpu_ms / 1000 / (TASK_VCPU * CPU_SATURATED_SHARE) - 1e-9)
        return max(self.minimum_receiver_tasks, needed)

    def vcpus(self, rate: float) -> float:
        return TASK_VCPU * (self.worker_tasks(rate) + self.receiver_tasks(rate) + self.other_tasks)


@dataclass(frozen=True)
class QuotaCheck:
    key: str
    what: str
    limit: float
    unit: str
    demand: float  # at the checked rate
    hit_at_rate: float | None  # orders/s where demand first exceeds the limit (None: never, within MAX_RATE)
    source: str
    as_of: str


MAX_RATE = 1e7  # orders/s searched


def demands(sizing: Sizing) -> dict[str, Callable[[float], float]]:
    """Each quota's demand at a peak rate of orders/s."""
    r = sizing.requests
    return {
        "fargate_vcpu": sizing.vcpus,
        "fargate_launch_burst": lambda rate: sizing.worker_tasks(rate) + sizing.receiver_tasks(rate),
        "ecs_tasks_per_service": lambda rate: max(sizing.worker_tasks(rate), sizing.receiver_tasks(rate)),
        "alb_targets": lambda rate: sizing.receiver_tasks(rate),
        "sns_publish_rate": lambda rate: rate * r.sns_publishes,
        "sqs_in_flight": lambda rate: rate * sizing.payment_seconds,  # Little's law: orders being paid
        "dynamodb_new_table_writes": lambda rate: rate * r.dynamodb_writes,
        "dynamodb_new_table_reads": lambda rate: rate * r.dynamodb_reads,
        "dynamodb_table_writes": lambda rate: rate * r.dynamodb_writes,
        "dynamodb_table_reads": lambda rate: rate * r.dynamodb_reads,
    }


def hit_at(demand: Callable[[float], float], limit: float) -> float | None:
    """The lowest rate (to a millionth) whose demand exceeds the limit; demand only grows with the rate."""
    if demand(MAX_RATE) <= limit:
        return None
    low, high = 0.0, MAX_RATE
    while high - low > max(1e-6, 1e-6 * low):
        middle = (low + high) / 2
        if demand(middle) > limit:
            high = middle
        else:
            low = middle
    return high


def check_quotas(rate: float, sizing: Sizing, limits: Mapping[str, float]) -> list[QuotaCheck]:
    """Every quota at this peak rate, in the order the sale meets them as it grows."""
    figures = {f.key: f for f in QUOTAS}
    checks = [
        QuotaCheck(
            key=key,
            what=figures[key].what,
            limit=limits[key],
            unit=figures[key].unit,
            demand=demand(rate),
            hit_at_rate=hit_at(demand, limits[key]),
            source=figures[key].source,
            as_of=figures[key].as_of,
        )
        for key, demand in demands(sizing).items()
    ]
    return sorted(checks, key=lambda c: math.inf if c.hit_at_rate is None else c.hit_at_rate)


def exceeded(checks: Sequence[QuotaCheck]) -> list[QuotaCheck]:
    """The quotas the checked rate already exceeds."""
    return [check for check in checks if check.demand > check.limit]


# --- a plan's cost ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SaleCost:
    """A sale sized by the planner: its tasks, each running from the sale's start until the queue is drained."""

    worker_tasks: int
    receiver_tasks: int
    other_tasks: int
    billed_seconds_per_task: float
    usage: Usage
    cost: Cost

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def plan_cost(
    *,
    rate: float,
    sale_seconds: float,
    drain_seconds: float,
    worker_tasks: int,
    sizing: Sizing,
    price: Mapping[str, float],
) -> SaleCost:
    """The bill when `worker_tasks` run beside the receiver tasks the rate needs and the tasks that do not scale."""
    receivers = sizing.receiver_tasks(rate)
    billed = billed_seconds(sale_seconds + drain_seconds, price)
    usage = Usage(
        task_seconds=billed * (worker_tasks + receivers + sizing.other_tasks),
        orders=rate * sale_seconds,
        idle_polls=idle_polls(worker_tasks, sizing.workers_per_task, billed),
        requests=sizing.requests,
    )
    return SaleCost(
        worker_tasks=worker_tasks,
        receiver_tasks=receivers,
        other_tasks=sizing.other_tasks,
        billed_seconds_per_task=billed,
        usage=usage,
        cost=cost(usage, price),
    )


# --- for people -------------------------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 or value == int(value) else f"{value:,.3g}"


def render_cost(sale: SaleCost, price: Mapping[str, float], rate: float, sizing: Sizing) -> list[str]:
    lines = [
        f"Cost of the sale: {sale.worker_tasks} worker + {sale.receiver_tasks} receiver + {sale.other_tasks} "
        f"other tasks ({TASK_VCPU:g} vCPU, {TASK_MEMORY_GB:g} GB each), each billed "
        f"{sale.billed_seconds_per_task:,.0f} s (receivers: {rate:g}/s x {sizing.receiver_cpu_ms:g} ms CPU per "
        f"order, at most {CPU_SATURATED_SHARE:.0%} of a task's vCPU)",
        f"  {'item':<22} {'quantity':>12} {'unit':<12} {'USD':>10}",
    ]
    lines += [
        f"  {line.item:<22} {_number(line.quantity):>12} {line.unit:<12} {line.usd:>10.4f}" for line in sale.cost.lines
    ]
    lines.append(
        f"  {'total':<22} {'':>12} {'':<12} {sale.cost.total_usd:>10.4f}  "
        f"({sale.cost.usd_per_1000_orders:.4f} per 1,000 orders)"
    )
    lines += ["", "Prices (ops/cost.py PRICES; --price KEY=VALUE overrides; sources in --json):"]
    lines += [
        f"  {f.key:<24} {price[f.key]:<12g} {f.unit:<28} " + ("not dated" if f.as_of == "-" else f"read {f.as_of}")
        for f in PRICES
    ]
    return lines


def render_quotas(checks: Sequence[QuotaCheck], rate: float) -> list[str]:
    first = checks[0]
    lines = [
        f"AWS default quotas as the sale grows (ops/cost.py QUOTAS; --quota KEY=VALUE overrides), at {rate:g}/s "
        "and where each is first exceeded:",
        f"  {'quota':<26} {'default':>9} {'at this rate':>13} {'exceeded at':>14}  source",
    ]
    for n, check in enumerate(checks, 1):
        at = "never" if check.hit_at_rate is None else f"{check.hit_at_rate:,.0f}/s"
        lines.append(f"  {check.key:<26} {_number(check.limit):>9} {_number(check.demand):>13} {at:>14}  [{n}]")
    if first.hit_at_rate is not None:
        verdict = (
            "already exceeded at this rate"
            if first.hit_at_rate <= rate
            else f"{first.hit_at_rate / rate:.1f}x this rate"
        )
        lines += [
            "",
            f"First quota the sale meets: {first.key} ({first.what}: {_number(first.limit)} {first.unit}) "
            f"at {first.hit_at_rate:,.0f} orders/s ({verdict}): request an increase before the day.",
        ]
    over = exceeded(checks)
    if over:
        lines.append(
            f"Exceeded at {rate:g}/s, to raise or plan for before the day: "
            + "; ".join(f"{c.key} (needs {_number(c.demand)}, default {_number(c.limit)})" for c in over)
        )
    lines += ["", "Sources:"] + [
        f"  [{n}] {c.source}" + ("" if c.as_of == "-" else f" (read {c.as_of})") for n, c in enumerate(checks, 1)
    ]
    return lines
