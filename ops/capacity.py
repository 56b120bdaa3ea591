"""`python -m ops.capacity`: how many workers and tasks a flash sale needs, by Little's law (planning.capacity).

Prints the plan for a rate (the report's sale by default), the drain table per worker count, where the lab report's
own numbers differ from this arithmetic, the plan's price and the AWS default quotas it meets (`ops.cost`): the bill
of the sale at the recommended tasks, each worker level's bill, and the first quota the sale would meet as its peak
rate grows; or, with --calendar, the schedule a stack file's sale calendar produces.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops import cost, stack
from planning import calendar
from planning.capacity import CapacityPlan, PlanInputs, duration, level, plan  # the arithmetic
from stackconfig import schema
from stackconfig.schema import CONFIG_DEFAULTS


def report_notes(result: CapacityPlan) -> list[str]:
    """Where the lab report's own numbers differ from this arithmetic, and why (only for the report's inputs)."""
    if result.inputs != PlanInputs():
        return []
    return [
        "The report's minimum of 180.18 workers comes from rounding 1/3 to 0.333; exactly, λ·S = 180 busy workers, "
        "and a queue only stays bounded with utilisation below 1, hence 181.",
        "Table 5.7's queue peaks (3,594 / 3,519 / 3,207 / 1,598) subtract the processed orders from the orders each "
        "run actually accepted (3,614, 3,619, ...), not from 60/s × 60 s = 3,600; hence 2.99 h there, 2.98 h here "
        "(as in the report's own 4.2).",
        "At 200 workers capacity (66.7/s) exceeds arrivals (60/s): no backlog builds, so the drain time is 0. The "
        "report's peak of 87 is burstiness around the average, which this fluid model does not show.",
        "The report's 200-worker 'Little's law validation' divides a queue length by a rate and calls it W; by "
        "Little's law the orders in the system average λ·W = 60 × (3 s payment + wait) ≥ 180, not 78, and L is a "
        "count of orders, not 'message-seconds'. Its 1-worker check applies L = λW to a queue that never reaches a "
        "steady state (utilisation 180), where the law does not hold.",
    ]


@dataclass(frozen=True)
class Priced:
    """A plan with its bill and the quotas it meets (what the CLI prints)."""

    plan: CapacityPlan
    sizing: cost.Sizing
    sale: cost.SaleCost
    level_costs: tuple[float, ...]  # USD, per worker level of the drain table
    quotas: tuple[cost.QuotaCheck, ...]
    prices: dict[str, float]
    limits: dict[str, float]


def price_plan(result: CapacityPlan, sizing: cost.Sizing, prices: dict[str, float], limits: dict[str, float]) -> Priced:
    i = result.inputs

    def bill(worker_tasks: int, drain: float) -> cost.SaleCost:
        return cost.plan_cost(
            rate=i.arrival_rate,
            sale_seconds=i.sale_seconds,
            drain_seconds=drain,
            worker_tasks=worker_tasks,
            sizing=sizing,
            price=prices,
        )

    recommended = bill(result.recommended_tasks, level(i, result.recommended_workers).drain_seconds)
    return Priced(
        plan=result,
        sizing=sizing,
        sale=recommended,
        level_costs=tuple(bill(row.tasks, row.drain_seconds).cost.total_usd for row in result.levels),
        quotas=tuple(cost.check_quotas(i.arrival_rate, sizing, limits)),
        prices=prices,
        limits=limits,
    )


def render(priced: Priced) -> str:
    result = priced.plan
    i = result.inputs
    lines = [
        f"Flash sale: {i.arrival_rate:g} orders/s for {i.sale_seconds:g} s, {i.payment_seconds:g} s per payment, "
        f"{i.workers_per_task} workers per task, safety margin {i.safety_margin:.0%}",
        f"Little's law: {i.arrival_rate:g}/s x {i.payment_seconds:g} s = {result.busy_workers:g} payments in progress",
        f"Minimum:      {result.minimum_workers} workers = {result.minimum_tasks} tasks (utilisation below 100 %)",
        f"Recommended:  {result.recommended_workers} workers = {result.recommended_tasks} tasks "
        f"(python -m ops.prescale --tasks {result.recommended_tasks})",
        "",
        "load = λ·S / workers: above 1 the queue grows for the whole sale.",
        f"{'workers':>8} {'tasks':>6} {'rate/s':>8} {'load':>7} {'processed':>10} {'queue peak':>11} {'drain':>9} "
        f"{'cost USD':>9}",
    ]
    for row, usd in zip(result.levels, priced.level_costs, strict=True):
        lines.append(
            f"{row.workers:>8} {row.tasks:>6} {row.processing_rate:>8.2f} {row.utilisation:>7.2f} "
            f"{row.processed_during_sale:>10,.0f} {row.queue_peak:>11,.0f} {duration(row.drain_seconds):>9} "
            f"{usd:>9.4f}"
        )
    lines += [
        "",
        *cost.render_cost(priced.sale, priced.prices, i.arrival_rate, priced.sizing),
        "",
        *cost.render_quotas(priced.quotas, i.arrival_rate),
    ]
    notes = report_notes(result)
    if notes:
        lines += ["", "Notes on the lab report:"] + [f"- {note}" for note in notes]
    return "\n".join(lines)


def read_calendar(path: Path) -> tuple[list[calendar.ScheduledStep], list[str]]:
    """The schedule a stack file's sale calendar produces, as the Pulumi program computes it (the whole config
    checked as the program checks it)."""
    try:
        config = schema.load_stack_file(path)
        return calendar.schedule(config.sales, calendar.inputs_of(config), datetime.now(UTC))
    except schema.ConfigError as error:
        raise stack.OpsError(str(error)) from None
    except calendar.CalendarError as error:
        raise stack.OpsError(f"{path.name}: {error}") from None


def render_schedule(steps: list[calendar.ScheduledStep], notes: list[str]) -> str:
    lines = ["Sale calendar: the worker service's MinCapacity, as scheduled actions (times in each sale's zone)"]
    lines += [
        f"  {step.local_time:%Y-%m-%d %H:%M %Z}  {step.sale:<20} {step.what:<10} MinCapacity -> {step.min_capacity}"
        for step in steps
    ] or ["  (no upcoming sale)"]
    lines += [f"note: {note}" for note in notes]
    return "\n".join(lines)


def schedule_json(steps: list[calendar.ScheduledStep], notes: list[str]) -> dict[str, Any]:
    return {
        "schedule": [
            {
                "sale": s.sale,
                "what": s.what,
                "at": s.at.isoformat(),
                "local": s.local_time.isoformat(),
                "timezone": s.timezone,
                "schedule": s.schedule,
                "min_capacity": s.min_capacity,
            }
            for s in steps
        ],
        "notes": notes,
    }


def parser() -> argparse.ArgumentParser:
    d = PlanInputs()
    p = argparse.ArgumentParser(
        prog="python -m ops.capacity",
        description=__doc__.split("\n\n")[0] + " Defaults are the lab report's flash sale.",
    )
    p.add_argument("--rate", type=float, default=d.arrival_rate, help="peak arrival rate, orders/s (%(default)s)")
    p.add_argument("--payment-seconds", type=float, default=d.payment_seconds, help="seconds per payment (%(default)s)")
    p.add_argument("--sale-seconds", type=float, default=d.sale_seconds, help="sale duration, s (%(default)s)")
    p.add_argument(
        "--workers-per-task",
        type=int,
        default=d.workers_per_task,
        help="concurrent payments per worker task, the stack's workerCount (%(default)s)",
    )
    p.add_argument("--margin", type=float, default=d.safety_margin, help="safety margin, 0.11 = 11%% (%(default)s)")
    p.add_argument(
        "--levels",
        type=int,
        nargs="+",
        default=list(d.worker_levels),
        metavar="N",
        help="worker counts for the drain table (%(default)s)",
    )
    p.add_argument(
        "--calendar",
        type=Path,
        metavar="STACK_FILE",
        help="print the schedule this stack file's sale calendar (the `sales` key) produces, instead",
    )
    p.add_argument(
        "--other-tasks",
        type=int,
        default=CONFIG_DEFAULTS.sync_task_count,
        help="tasks that do not grow with the rate, billed beside the workers and receivers "
        "(default %(default)s: the sync service's syncTaskCount; 0 without it)",
    )
    p.add_argument(
        "--receiver-cpu-ms",
        type=float,
        default=cost.RECEIVER_CPU_MS_PER_ORDER,
        help="receiver CPU per order, which sizes the receiver tasks (default %(default)s ms, measured "
        "by python -m bench.benchmarks on this machine)",
    )
    p.add_argument(
        "--price",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a list price of ops/cost.py PRICES (repeatable), e.g. fargate_vcpu_second=0.0000125",
    )
    p.add_argument(
        "--quota",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a quota of ops/cost.py QUOTAS (repeatable), e.g. fargate_vcpu=4000 once raised",
    )
    stack.add_json_argument(p)
    return p


def inputs_from(args: argparse.Namespace) -> PlanInputs:
    return PlanInputs(
        arrival_rate=args.rate,
        payment_seconds=args.payment_seconds,
        sale_seconds=args.sale_seconds,
        workers_per_task=args.workers_per_task,
        safety_margin=args.margin,
        worker_levels=tuple(args.levels),
    )


def sizing_of(args: argparse.Namespace) -> cost.Sizing:
    """The sale's sizing as ops.cost needs it, from the command line."""
    if args.other_tasks < 0 or not args.receiver_cpu_ms > 0:
        raise stack.OpsError("--other-tasks cannot be negative and --receiver-cpu-ms must be positive")
    return cost.Sizing(
        payment_seconds=args.payment_seconds,
        workers_per_task=args.workers_per_task,
        safety_margin=args.margin,
        other_tasks=args.other_tasks,
        receiver_cpu_ms=args.receiver_cpu_ms,
    )


def command(args: argparse.Namespace) -> int:
    if args.calendar is not None:
        steps, notes = read_calendar(args.calendar)
        stack.emit(args, schedule_json(steps, notes), render_schedule(steps, notes))
        return 0
    result = plan(inputs_from(args))
    priced = price_plan(
        result,
        sizing_of(args),
        cost.prices(cost.parse_overrides(args.price, "price")),
        cost.quotas(cost.parse_overrides(args.quota, "quota")),
    )
    first = priced.quotas[0]
    data = asdict(result) | {
        "notes": report_notes(result),
        "cost": priced.sale.to_json(),
        "level_costs_usd": list(priced.level_costs),
        "quotas": [asdict(check) for check in priced.quotas],
        "first_quota": {"key": first.key, "rate": first.hit_at_rate},
        "quotas_exceeded": [check.key for check in cost.exceeded(priced.quotas)],
        "prices": [asdict(f) | {"value": priced.prices[f.key]} for f in cost.PRICES],
    }
    stack.emit(args, data, render(priced))
    return 0


def main(argv: list[str] | None = None) -> int:
    return stack.run(parser(), command, argv)


if __name__ == "__main__":
    sys.exit(main())
