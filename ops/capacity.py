"""Capacity planner: how many workers and tasks a flash sale needs, by Little's law.

Each worker completes one payment every `payment_seconds`, so it serves 1/S orders a second. Little's law
(L = λW) says that at arrival rate λ the payments in progress average λ·S: that many workers are busy on average.
The queue only stays bounded when the workers outnumber that (utilisation λ·S/N below 1), which gives the minimum;
the recommended count adds the safety margin to λ·S. During a sale of T seconds an under-provisioned pool
processes N/S·T orders, the rest (the queue peak) waits and drains at N/S a second after the sale ends.

`plan()` is pure so that prescale, validate and the lab import the same numbers the CLI prints. The CLI also prices
the plan and checks it against AWS's default quotas (`ops.cost`): the bill of the sale at the recommended tasks,
each worker level's bill, and the first quota the sale would meet as its peak rate grows.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import asdict, dataclass

from app import contract
from ops import cost, stack

# Rounding guard: 60 × 3 × 1.11 is 199.80000000000001 in floating point, and must not become 201 after ceil().
_EPSILON = 1e-9


@dataclass(frozen=True)
class PlanInputs:
    arrival_rate: float = contract.REPORT_ARRIVAL_RATE  # orders per second at the peak
    payment_seconds: float = contract.SERVICE_DEFAULTS.payment_seconds
    sale_seconds: float = contract.REPORT_SALE_SECONDS
    workers_per_task: int = contract.CONFIG_DEFAULTS["workerCount"]
    safety_margin: float = contract.REPORT_SAFETY_MARGIN
    worker_levels: tuple[int, ...] = contract.REPORT_WORKER_LEVELS

    def check(self) -> None:
        """Refuse inputs the arithmetic has no meaning for (argparse callers get a one-line error)."""
        if self.arrival_rate <= 0 or self.payment_seconds <= 0 or self.sale_seconds <= 0:
            raise stack.OpsError("rate, payment seconds and sale seconds must be positive")
        if self.workers_per_task < 1 or any(level < 1 for level in self.worker_levels):
            raise stack.OpsError("worker counts must be at least 1")
        if self.safety_margin < 0:
            raise stack.OpsError("the safety margin cannot be negative")


@dataclass(frozen=True)
class WorkerLevel:
    """What one worker count does to the report's sale: the rows of table 5.7."""

    workers: int
    tasks: int
    processing_rate: float  # orders per second
    utilisation: float  # λ·S / N; above 1 the queue grows for the whole sale
    arrivals: float  # orders offered during the sale
    processed_during_sale: float
    queue_peak: float  # at the end of the sale
    drain_seconds: float  # from the end of the sale to an empty queue


@dataclass(frozen=True)
class CapacityPlan:
    inputs: PlanInputs
    busy_workers: float  # λ·S, Little's L for the payments in progress
    minimum_workers: int
    recommended_workers: int
    minimum_tasks: int
    recommended_tasks: int
    levels: tuple[WorkerLevel, ...]


def tasks_for(workers: int, workers_per_task: int) -> int:
    return math.ceil(workers / workers_per_task)


def level(inputs: PlanInputs, workers: int) -> WorkerLevel:
    """The sale's queue for one worker count (a fluid model: arrivals and payments at their average rates)."""
    rate = workers / inputs.payment_seconds
    arrivals = inputs.arrival_rate * inputs.sale_seconds
    processed = min(arrivals, rate * inputs.sale_seconds)
    peak = arrivals - processed
    return WorkerLevel(
        workers=workers,
        tasks=tasks_for(workers, inputs.workers_per_task),
        processing_rate=rate,
        utilisation=inputs.arrival_rate * inputs.payment_seconds / workers,
        arrivals=arrivals,
        processed_during_sale=processed,
        queue_peak=peak,
        drain_seconds=peak / rate,
    )


def plan(inputs: PlanInputs) -> CapacityPlan:
    inputs.check()
    busy = inputs.arrival_rate * inputs.payment_seconds
    minimum = math.floor(busy + _EPSILON) + 1  # utilisation strictly below 1
    recommended = max(minimum, math.ceil(busy * (1 + inputs.safety_margin) - _EPSILON))
    return CapacityPlan(
        inputs=inputs,
        busy_workers=busy,
        minimum_workers=minimum,
        recommended_workers=recommended,
        minimum_tasks=tasks_for(minimum, inputs.workers_per_task),
        recommended_tasks=tasks_for(recommended, inputs.workers_per_task),
        levels=tuple(level(inputs, workers) for workers in inputs.worker_levels),
    )


def duration(seconds: float) -> str:
    """People-sized durations: 48 s, 8.0 min, 2.98 h."""
    if seconds < 1e-9:
        return "0 s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def report_notes(result: CapacityPlan) -> list[str]:
    """Where the lab report's own numbers differ from this arithmetic, and why (only for the report's inputs)."""
    if result.inputs != PlanInputs():
        return []
    return [
        "The report's minimum of 180.18 workers comes from rounding 1/3 to 0.333; exactly, λ·S = 180 busy workers, "
        "and a queue only stays bounded with utilisation below 1, hence 181.",
        "Table 5.7's queue peaks (3,594 / 3,519 / 3,207 / 1,598) subtract the processed orders from the orders each "
        "run actually accepted (3,614, 3,619, ...), not from 60/s × 60 s = 3,600; hence 2.99 h there, 2.98 h here (as in the report's own 4.2).",
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


def price_plan(result: CapacityPlan, sizing: cost.Sizing, prices: dict[str, float],
               limits: dict[str, float]) -> Priced:
    i = result.inputs

    def bill(worker_tasks: int, drain: float) -> cost.SaleCost:
        return cost.plan_cost(rate=i.arrival_rate, sale_seconds=i.sale_seconds, drain_seconds=drain,
                              worker_tasks=worker_tasks, sizing=sizing, price=prices)

    recommended = bill(result.recommended_tasks, level(i, result.recommended_workers).drain_seconds)
    return Priced(plan=result, sizing=sizing, sale=recommended,
                  level_costs=tuple(bill(row.tasks, row.drain_seconds).cost.total_usd for row in result.levels),
                  quotas=tuple(cost.check_quotas(i.arrival_rate, sizing, limits)), prices=prices, limits=limits)


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
    for row, usd in zip(result.levels, priced.level_costs):
        lines.append(
            f"{row.workers:>8} {row.tasks:>6} {row.processing_rate:>8.2f} {row.utilisation:>7.2f} "
            f"{row.processed_during_sale:>10,.0f} {row.queue_peak:>11,.0f} {duration(row.drain_seconds):>9} "
            f"{usd:>9.4f}"
        )
    lines += ["", *cost.render_cost(priced.sale, priced.prices, i.arrival_rate, priced.sizing),
              "", *cost.render_quotas(priced.quotas, i.arrival_rate)]
    notes = report_notes(result)
    if notes:
        lines += ["", "Notes on the lab report:"] + [f"- {note}" for note in notes]
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    d = PlanInputs()
    p = argparse.ArgumentParser(prog="python -m ops.capacity", description=__doc__.split("\n\n")[0] + " "
                                "Defaults are the lab report's flash sale.")
    p.add_argument("--rate", type=float, default=d.arrival_rate, help="peak arrival rate, orders/s (%(default)s)")
    p.add_argument("--payment-seconds", type=float, default=d.payment_seconds, help="seconds per payment (%(default)s)")
    p.add_argument("--sale-seconds", type=float, default=d.sale_seconds, help="sale duration, s (%(default)s)")
    p.add_argument("--workers-per-task", type=int, default=d.workers_per_task,
                   help="concurrent payments per worker task, the stack's workerCount (%(default)s)")
    p.add_argument("--margin", type=float, default=d.safety_margin, help="safety margin, 0.11 = 11%% (%(default)s)")
    p.add_argument("--levels", type=int, nargs="+", default=list(d.worker_levels), metavar="N",
                   help="worker counts for the drain table (%(default)s)")
    p.add_argument("--other-tasks", type=int, default=contract.CONFIG_DEFAULTS["syncTaskCount"],
                   help="tasks that do not grow with the rate, billed beside the workers and receivers "
                        "(default %(default)s: the sync service's syncTaskCount; 0 without it)")
    p.add_argument("--receiver-cpu-ms", type=float, default=cost.RECEIVER_CPU_MS_PER_ORDER,
                   help="receiver CPU per order, which sizes the receiver tasks (default %(default)s ms, measured "
                        "by python -m benchmarks on this machine)")
    p.add_argument("--price", action="append", default=[], metavar="KEY=VALUE",
                   help="override a list price of ops/cost.py PRICES (repeatable), e.g. fargate_vcpu_second=0.0000125")
    p.add_argument("--quota", action="append", default=[], metavar="KEY=VALUE",
                   help="override a quota of ops/cost.py QUOTAS (repeatable), e.g. fargate_vcpu=4000 once raised")
    stack.add_json_argument(p)
    return p


def inputs_from(args: argparse.Namespace) -> PlanInputs:
    return PlanInputs(arrival_rate=args.rate, payment_seconds=args.payment_seconds, sale_seconds=args.sale_seconds,
                      workers_per_task=args.workers_per_task, safety_margin=args.margin,
                      worker_levels=tuple(args.levels))


def sizing_of(args: argparse.Namespace) -> cost.Sizing:
    """The sale's sizing as ops.cost needs it, from the command line."""
    if args.other_tasks < 0 or not args.receiver_cpu_ms > 0:
        raise stack.OpsError("--other-tasks cannot be negative and --receiver-cpu-ms must be positive")
    return cost.Sizing(payment_seconds=args.payment_seconds, workers_per_task=args.workers_per_task,
                       safety_margin=args.margin, other_tasks=args.other_tasks, receiver_cpu_ms=args.receiver_cpu_ms)


def command(args: argparse.Namespace) -> int:
    result = plan(inputs_from(args))
    priced = price_plan(result, sizing_of(args), cost.prices(cost.parse_overrides(args.price, "price")),
                        cost.quotas(cost.parse_overrides(args.quota, "quota")))
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
