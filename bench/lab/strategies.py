"""Lab Part VI: the same flash sale under each scaling strategy, measured, beside `planning.strategies`' prediction,
with the bill of its workers (pure functions: the runs themselves are in bench.lab).

What a run measures, each converted to the report's time (x K):
- the wait until paid of every accepted order, from its record (`finished_at - created_at`, written by the receiver
  and the worker); orders still unpaid when a run stops (a drain too long to wait for) are given the time they would
  be paid at the measured rate, in arrival order, and counted as extrapolated;
- the orders in the queue (waiting + being paid) and the worker tasks (running; wanted = running + provisioning)
  sampled every SAMPLE_SECONDS, hence the peak backlog, the drain and the tasks over time;
- when auto-scaling first added tasks (the local model's decisions).

The bill counts the worker tasks (the receiver and sync tasks are the same under every strategy and left out) and
the requests each order makes, with `ops.cost`'s prices: worker task-seconds from the first task wanted for the sale
to the last one back at the normal level. The part the lab does not wait through is computed by the strategy's own
rule: before the sale, the sale's tasks for the stack's `saleLeadSeconds` (pre-scaled, scheduled); after the drain,
`ops.prescale --restore`'s and the calendar's steps down (STEP_DOWN_TASKS every STEP_DOWN_PAUSE_SECONDS), or target
tracking's scale-in once its low alarm has 15 periods (auto-scaled).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

from bench.lab.watch import Sample  # noqa: E402
from ops import cost  # noqa: E402
from planning import calendar, capacity  # noqa: E402
from planning.strategies import Prediction, Strategy, percentile  # noqa: E402

PERCENTILES = (50, 95)


@dataclass(frozen=True)
class OrderTimes:
    """The two fields of an order's record (contract.OrderRecord) that its wait until paid needs."""

    created_at: float  # epoch, lab clock
    finished_at: float | None  # None: not paid when the run stopped


def order_records(dynamodb: Any, table: str) -> list[OrderTimes]:
    """Every order of the table (a Scan: the lab's table holds one sale)."""
    found: list[OrderTimes] = []
    kwargs: dict[str, Any] = {"TableName": table, "ProjectionExpression": "created_at, finished_at"}
    while True:
        page = dynamodb.scan(**kwargs)
        for item in page.get("Items", []):
            if "created_at" in item:
                finished = item.get("finished_at", {}).get("N")
                found.append(OrderTimes(float(item["created_at"]["N"]), float(finished) if finished else None))
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def waits(
    records: Sequence[OrderTimes], k: float, stopped_at: float, rate: float, payment_seconds: float
) -> tuple[list[float], int]:
    """Each order's wait until paid (report seconds) and how many were extrapolated: unpaid orders, oldest first,
    are paid from `stopped_at` on at `rate` a second (lab clock), each one payment after it starts."""
    paid = [(r.finished_at - r.created_at) * k for r in records if r.finished_at is not None]
    unpaid = sorted(r.created_at for r in records if r.finished_at is None)
    if unpaid and not rate > 0:
        raise ValueError("unpaid orders and no measured rate to extrapolate their payment from")
    later = [(stopped_at + (n + 1) / rate + payment_seconds - created) * k for n, created in enumerate(unpaid)]
    return paid + later, len(later)


def wanted_tasks(sample: Sample) -> int:
    return max(sample.running, sample.wanted)


def task_seconds(samples: Sequence[Sample], start: float, end: float) -> float:
    """The integral of the wanted worker tasks over [start, end] (lab seconds), step-wise between samples."""
    total = 0.0
    for before, after in pairwise(samples):
        low, high = max(before.t, start), min(after.t, end)
        if high > low:
            total += wanted_tasks(before) * (high - low)
    if samples and end > samples[-1].t:  # the last sample holds until the end
        total += wanted_tasks(samples[-1]) * (end - max(samples[-1].t, start))
    return total


@dataclass(frozen=True)
class StrategyRun:
    """One strategy's measurements, in report time from the sale's start."""

    strategy: Strategy
    requests: int
    accepted: int
    waits: tuple[float, ...]
    extrapolated_waits: int
    peak_backlog: int
    drain_seconds: float
    drain_extrapolated: bool
    first_scale_out: float | None
    timeline: tuple[tuple[float, int, int], ...]  # (t, orders in the queue, wanted worker tasks)
    task_seconds_before: float
    task_seconds_during: float
    task_seconds_after: float
    sale_tasks: int  # the most worker tasks wanted during the run
    prediction: Prediction
    workers_per_task: int

    @property
    def task_seconds(self) -> float:
        return self.task_seconds_before + self.task_seconds_during + self.task_seconds_after

    def wait(self, p: float) -> float:
        return percentile(self.waits, p)

    def usage(self) -> cost.Usage:
        """What the bill counts: the worker task-seconds, the orders, and the empty long polls while the tasks wait
        for the sale or for their scale-in (an upper bound: every receive loop, every receive wait)."""
        idle = self.task_seconds_before + self.task_seconds_after
        return cost.Usage(
            task_seconds=self.task_seconds,
            orders=self.accepted,
            idle_polls=cost.idle_polls(1, self.workers_per_task, idle),
        )

    def predicted_usage(self) -> cost.Usage:
        p = self.prediction
        idle = p.task_seconds_before + p.task_seconds_after
        return cost.Usage(
            task_seconds=p.task_seconds, orders=len(p.waits), idle_polls=cost.idle_polls(1, self.workers_per_task, idle)
        )


def timeline(samples: Sequence[Sample], sale_start: float, k: float) -> tuple[tuple[float, int, int], ...]:
    return tuple(((s.t - sale_start) * k, s.visible + s.in_flight, wanted_tasks(s)) for s in samples)


# --- Report --------------------------------------------------------------------------------------------------------


def duration(seconds: float | None) -> str:
    if seconds is None or math.isnan(seconds):
        return "-"
    return capacity.duration(seconds) if math.isfinite(seconds) else "not drained"


def _pair(predicted: float | None, measured: float | None) -> str:
    return f"{duration(predicted)} / {duration(measured)}"


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:,.1f}"


def table(runs: Sequence[StrategyRun], prices: Mapping[str, float]) -> list[str]:
    """The Part VI table: predicted / measured for each strategy, then the bill."""
    header = (
        "Strategy",
        "Accepted",
        "Wait until paid p50",
        "p95",
        "max",
        "Peak backlog",
        "Drain",
        "First scale-out",
        "Worker task-min (before + during + after)",
        "Cost USD (per 1,000 orders)",
    )
    rows = []
    for run in runs:
        p = run.prediction
        bill, predicted_bill = cost.cost(run.usage(), prices), cost.cost(run.predicted_usage(), prices)
        rows.append(
            (
                run.strategy.value + (f" ({run.sale_tasks} tasks)" if run.sale_tasks > 1 else ""),
                f"{run.accepted:,} of {run.requests:,}",
                *(_pair(p.wait_percentile(q), run.wait(q)) for q in PERCENTILES),
                _pair(max(p.waits, default=math.nan), max(run.waits, default=math.nan))
                + (f" ({run.extrapolated_waits:,} extrapolated)" if run.extrapolated_waits else ""),
                f"{p.peak_backlog:,.0f} / {run.peak_backlog:,}",
                _pair(p.drain_seconds, run.drain_seconds) + (" (extrapolated)" if run.drain_extrapolated else ""),
                _pair(p.first_scale_out, run.first_scale_out) if run.strategy is Strategy.AUTO_SCALED else "-",
                f"{_minutes(p.task_seconds)} / {_minutes(run.task_seconds)} ({_minutes(run.task_seconds_before)} + "
                f"{_minutes(run.task_seconds_during)} + {_minutes(run.task_seconds_after)})",
                f"{predicted_bill.total_usd:.4f} / {bill.total_usd:.4f} ({bill.usd_per_1000_orders:.4f})",
            )
        )
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def to_json(run: StrategyRun, prices: Mapping[str, float]) -> dict[str, Any]:
    p, usage = run.prediction, run.usage()
    return {
        "strategy": run.strategy.value,
        "requests": run.requests,
        "accepted": run.accepted,
        "sale_tasks": run.sale_tasks,
        **{f"wait_p{q}_seconds": run.wait(q) for q in PERCENTILES},
        "wait_max_seconds": max(run.waits, default=math.nan),
        "extrapolated_waits": run.extrapolated_waits,
        "peak_backlog": run.peak_backlog,
        "drain_seconds": run.drain_seconds,
        "drain_extrapolated": run.drain_extrapolated,
        "first_scale_out_seconds": run.first_scale_out,
        "task_seconds": {
            "before": run.task_seconds_before,
            "during": run.task_seconds_during,
            "after": run.task_seconds_after,
        },
        "usage": {"task_seconds": usage.task_seconds, "orders": usage.orders, "idle_polls": usage.idle_polls},
        "cost_usd": cost.cost(usage, prices).total_usd,
        "predicted": {
            **{f"wait_p{q}_seconds": p.wait_percentile(q) for q in PERCENTILES},
            "wait_max_seconds": max(p.waits, default=math.nan),
            "peak_backlog": p.peak_backlog,
            "drain_seconds": p.drain_seconds,
            "first_scale_out_seconds": p.first_scale_out,
            "task_seconds": p.task_seconds,
            "cost_usd": cost.cost(run.predicted_usage(), prices).total_usd,
        },
    }


def plot(runs: Sequence[StrategyRun], sale_seconds: float, path: Path) -> None:
    """Backlog (top) and wanted worker tasks (bottom) over time, one colour per strategy: measured solid, the
    prediction dotted."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    for n, run in enumerate(runs):
        colour = f"C{n}"
        shown = [point for point in run.timeline if point[0] >= -30]
        label = run.strategy.value + (" (its drain extrapolated: the straight end)" if run.drain_extrapolated else "")
        top.plot([t for t, _, _ in shown], [q for _, q, _ in shown], color=colour, label=label)
        bottom.step(
            [t for t, _, _ in shown], [w for _, _, w in shown], where="post", color=colour, label=run.strategy.value
        )
        predicted = run.prediction.timeline
        top.plot([t for t, _, _, _ in predicted], [q for _, q, _, _ in predicted], color=colour, linestyle=":")
        bottom.step(
            [t for t, _, _, _ in predicted], [w for _, _, _, w in predicted], where="post", color=colour, linestyle=":"
        )
    for ax in (top, bottom):
        ax.axvspan(0, sale_seconds, color="grey", alpha=0.12)
        ax.grid(alpha=0.3)
    top.set_ylabel("orders in the queue")
    top.set_title("The same flash sale under each strategy (solid: measured; dotted: predicted; grey: the sale)")
    top.legend()
    bottom.set_ylabel("worker tasks (running + starting)")
    bottom.set_xlabel("report time since the sale started (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def cost_note(prices: Mapping[str, float]) -> str:
    return (
        f"Prices (`ops/cost.py` PRICES, `--price KEY=VALUE` overrides): Fargate "
        f"{prices['fargate_vcpu_second']:g} USD per vCPU-second and {prices['fargate_gb_second']:g} per "
        f"GB-second for {cost.TASK_VCPU:g} vCPU / {cost.TASK_MEMORY_GB:g} GB tasks; SQS "
        f"{prices['sqs_request']:g}, SNS {prices['sns_publish']:g}, DynamoDB writes "
        f"{prices['dynamodb_write_unit']:g} and reads {prices['dynamodb_read_unit']:g} per request. Steps down "
        f"by {calendar.STEP_DOWN_TASKS} tasks every {calendar.STEP_DOWN_PAUSE_SECONDS} s."
    )
