"""The post-sale report's figures: what the stack measured in the window, each beside the planner's forecast for the
same sale at the arrival rate measured, their ratio, where each came from, and the verdict (pure functions).

The forecast is `planning.strategies.predict`, the capacity planner's fluid model: for a calendar entry, the tasks the
calendar raised for it (`planning.calendar.sale_tasks`) from its lead time; for a window given by --from/--to, the
worker tasks that ran when the first order came in, held through the sale. Its waits are percentiles of the same
definition as the measured ones (`planning.strategies.percentile`, nearest rank), its bill `ops.cost`'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from app import contract
from ops import cost, stack
from ops.report.read import AlarmSpan, DeadLetters, Missing, Order, Series, ServiceEvent, expected_waits
from planning import calendar, capacity, strategies
from planning.strategies import percentile
from stackconfig.schema import Sale

PERCENTILES = (50, 95, 99)
WAIT_STATS = tuple(f"p{p}" for p in PERCENTILES)
TABLE = "orders table"
METRIC = f"CloudWatch {contract.WAIT_METRIC_NAMESPACE}/{contract.WAIT_METRIC_NAME}"


@dataclass(frozen=True)
class Window:
    """The sale as the operator named it: its orders were accepted in [start, end]."""

    start: float
    end: float
    sale: Sale | None = None  # the calendar entry, when named by --sale
    lead_seconds: float = 0.0  # the calendar raises the workers this long before the start

    @property
    def raised_at(self) -> float:
        return self.start - self.lead_seconds

    @property
    def label(self) -> str:
        return f"sale {self.sale.name}" if self.sale else "window"


@dataclass(frozen=True)
class StackFacts:
    """The stack's settings the forecast needs (outputs win over the stack file, which supplies the rest)."""

    name: str
    prefix: str
    workers_per_task: int
    payment_seconds: float
    acceptable_latency: float
    calendar: calendar.CalendarInputs
    decline_rate: float | None  # None: no stack file to read it from
    local: stack.LocalCaveats | None


@dataclass(frozen=True)
class Readings:
    """What `ops.report.read` found for the window."""

    orders: list[Order]
    dead: DeadLetters
    period: int  # seconds per point of the metric series
    observed: tuple[float, float]  # the span the metrics were read over
    queue: Mapping[str, Series]  # "waiting", "in_flight" (Maximum), "tasks" (Maximum), "tasks_avg" (Average)
    wait_series: Mapping[str, Series] | Missing  # the BuyerWait metric: p50, p95, p99, count
    wait_whole: Mapping[str, float] | Missing  # ...over one period holding the whole drain
    wait_whole_period: tuple[float, int] | None  # that period's start and length
    alarms: list[AlarmSpan] | Missing
    events: list[ServiceEvent] | Missing


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    measured: float | None
    forecast: float | None
    source: str
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.measured is None or self.forecast is None or self.forecast == 0:
            return None
        return self.measured / self.forecast


@dataclass(frozen=True)
class ScaleOut:
    at: float
    before: int
    after: int


@dataclass(frozen=True)
class Report:
    window: Window
    facts: StackFacts
    readings: Readings
    planned_tasks: int
    prediction: strategies.Prediction
    rate: float  # measured arrival rate, orders/s
    sale_seconds: float  # first to last order accepted (at least one arrival interval)
    sale_end: float  # the last order accepted
    drained_at: float | None  # the last order of the window finished (None: some still pending)
    figures: list[Figure]
    wait_timeline: Mapping[str, Series]  # p50/p95/p99 per period: the metric's, else the orders table's
    wait_timeline_source: str
    expected_wait: Series  # the alarms' formula per period
    scale_outs: list[ScaleOut]
    verdict: str
    notes: list[str] = field(default_factory=list)

    def figure(self, key: str) -> Figure:
        return next(f for f in self.figures if f.key == key)


def arrival(orders: Sequence[Order]) -> tuple[float, float]:
    """The measured arrival rate (orders/s) and the sale's length: n orders over the n - 1 intervals between the
    first and the last."""
    first, last = orders[0].created_at, orders[-1].created_at
    if len(orders) < 2 or last <= first:
        return float(len(orders)), 1.0
    rate = (len(orders) - 1) / (last - first)
    return rate, len(orders) / rate


def waits_by_period(orders: Sequence[Order], period: int) -> dict[str, Series]:
    """The orders table's waits as the metric would hold them: each at its finish, percentiles per period."""
    buckets: dict[float, list[float]] = {}
    for order in orders:
        if order.finished_at is not None and order.wait is not None:
            buckets.setdefault(math.floor(order.finished_at / period) * period, []).append(order.wait)
    times = tuple(sorted(buckets))
    series = {
        stat: Series(times, tuple(percentile(buckets[t], p) for t in times))
        for stat, p in zip(WAIT_STATS, PERCENTILES, strict=True)
    }
    series["count"] = Series(times, tuple(float(len(buckets[t])) for t in times))
    return series


def integral(series: Series, period: int, start: float, end: float) -> float:
    """The series' value x seconds over [start, end], each value holding for its period."""
    return sum(
        value * max(0.0, min(t + period, end) - max(t, start))
        for t, value in zip(series.times, series.values, strict=True)
    )


def scale_outs(tasks: Series) -> list[ScaleOut]:
    found, previous = [], None
    for t, value in zip(tasks.times, tasks.values, strict=True):
        if previous is not None and value > previous:
            found.append(ScaleOut(t, int(previous), int(value)))
        previous = value
    return found


def forecast(
    window: Window, facts: StackFacts, rate: float, sale_seconds: float, tasks_at_start: int
) -> tuple[int, strategies.Prediction]:
    """The planner's tasks for the sale and its prediction at the measured rate (see the module docstring)."""
    c = facts.calendar
    service = strategies.WorkerService(
        workers_per_task=facts.workers_per_task,
        payment_seconds=facts.payment_seconds,
        normal_tasks=c.min_tasks,
        max_tasks=max(c.max_tasks, tasks_at_start),
    )
    if window.sale is not None:
        tasks = min(c.max_tasks, calendar.sale_tasks(window.sale, c))
        plan = strategies.Plan(strategies.Strategy.SCHEDULED, sale_tasks=tasks, lead_seconds=window.lead_seconds)
    else:
        tasks = tasks_at_start
        plan = strategies.Plan(strategies.Strategy.PRE_SCALED, sale_tasks=tasks)
    return tasks, strategies.predict(plan, strategies.SaleLoad(rate=rate, seconds=sale_seconds), service)


def _usd(task_seconds: float, orders: float, prices: Mapping[str, float]) -> float:
    return cost.cost(cost.Usage(task_seconds=task_seconds, orders=orders), prices).total_usd


def build(window: Window, facts: StackFacts, readings: Readings, prices: Mapping[str, float]) -> Report:
    orders, period = readings.orders, readings.period
    rate, sale_seconds = arrival(orders)
    sale_end = orders[-1].created_at
    by_status = {s: sum(1 for o in orders if o.status == s) for s in contract.OrderStatus}
    pending = [o for o in orders if o.status == contract.OrderStatus.PENDING]
    dead = len(readings.dead.in_window)
    finished = [o.finished_at for o in orders if o.finished_at is not None]
    drained_at = max(finished) if finished and len(pending) == dead else None
    if drained_at is not None:
        drained_at = max(drained_at, sale_end)

    tasks, tasks_avg = readings.queue["tasks"], readings.queue["tasks_avg"]
    at_start = tasks.at(window.start)
    tasks_at_start = int(at_start) if at_start is not None else facts.calendar.min_tasks
    planned, prediction = forecast(window, facts, rate, sale_seconds, tasks_at_start)
    notes: list[str] = []

    waits = sorted(w for o in orders if (w := o.wait) is not None)
    table_source = f"{TABLE} (finished_at - created_at of {len(waits):,} finished orders)"
    figures = [
        Figure("accepted", "Orders accepted", "orders", len(orders), None, TABLE, "the forecast is made at this rate"),
        Figure(
            "paid",
            "Orders paid",
            "orders",
            by_status[contract.OrderStatus.COMPLETED],
            None if facts.decline_rate is None else len(orders) * (1 - facts.decline_rate),
            TABLE,
            "" if facts.decline_rate is not None else "no stack file: no paymentDeclineRate to forecast from",
        ),
        Figure(
            "failed",
            "Orders failed (declined)",
            "orders",
            by_status[contract.OrderStatus.FAILED],
            None if facts.decline_rate is None else len(orders) * facts.decline_rate,
            TABLE,
        ),
        Figure(
            "dead_lettered",
            "Orders dead-lettered",
            "orders",
            dead,
            0,
            "the DLQ (peeked, nothing consumed)",
            "" if readings.dead.read_all else f"the DLQ holds more than the {readings.dead.total:,} read",
        ),
        Figure("pending", "Orders still pending (not dead-lettered)", "orders", len(pending) - dead, 0, TABLE),
        Figure(
            "arrival_rate",
            "Arrival rate",
            "orders/s",
            rate,
            window.sale.rate if window.sale is not None else None,
            f"{TABLE} (created_at, first to last)",
            "forecast: the calendar entry's rate" if window.sale is not None and window.sale.rate else "",
        ),
    ]
    for stat, p in zip(WAIT_STATS, PERCENTILES, strict=True):
        figures.append(
            Figure(
                f"wait_{stat}",
                f"Buyers' wait {stat}",
                "s",
                percentile(waits, p) if waits else None,
                prediction.wait_percentile(p),
                table_source,
            )
        )
    figures.append(
        Figure(
            "wait_max",
            "Buyers' wait max",
            "s",
            waits[-1] if waits else None,
            max(prediction.waits, default=None),
            table_source,
        )
    )
    if isinstance(readings.wait_whole, Missing):
        for stat, p in zip(WAIT_STATS, PERCENTILES, strict=True):
            figures.append(
                Figure(
                    f"metric_wait_{stat}",
                    f"Buyers' wait {stat} (metric)",
                    "s",
                    None,
                    prediction.wait_percentile(p),
                    METRIC,
                    readings.wait_whole.reason,
                )
            )
    else:
        start_, length = readings.wait_whole_period or (0.0, 0)
        note = (
            f"one {length} s period from {_utc(start_)} (CloudWatch's percentiles; the period may hold orders "
            "outside the window)"
        )
        for stat, p in zip(WAIT_STATS, PERCENTILES, strict=True):
            figures.append(
                Figure(
                    f"metric_wait_{stat}",
                    f"Buyers' wait {stat} (metric)",
                    "s",
                    readings.wait_whole.get(stat),
                    prediction.wait_percentile(p),
                    METRIC,
                    note,
                )
            )

    queue_note = f"Maximum per {period} s period"
    backlog = [
        w + i for w, i in zip(readings.queue["waiting"].values, readings.queue["in_flight"].values, strict=False)
    ]
    figures.append(
        Figure(
            "peak_backlog",
            "Peak backlog (waiting + being paid)",
            "orders",
            max(backlog) if backlog else None,
            prediction.peak_backlog,
            "CloudWatch AWS/SQS ApproximateNumberOfMessagesVisible + NotVisible",
            queue_note if backlog else "no queue metric in the window",
        )
    )
    expected = read_expected(readings, facts)
    figures.append(
        Figure(
            "expected_wait_peak",
            "Expected wait at the peak (the alarms' formula)",
            "s",
            max(expected.values) if expected else None,
            facts.acceptable_latency,
            "waiting orders and RunningTaskCount (app/expected_wait.py)",
            "forecast: the acceptable latency it pages above" if expected else "no queue or task metric in the window",
        )
    )
    figures.append(
        Figure(
            "drain",
            "Drain (last order accepted to last order finished)",
            "s",
            None if drained_at is None else drained_at - sale_end,
            prediction.drain_seconds,
            TABLE,
            "" if drained_at is not None else f"not drained: {len(pending) - dead:,} orders still pending",
        )
    )
    in_sale = [
        v
        for t, v in zip(tasks.times, tasks.values, strict=True)
        if window.raised_at - period < t <= (drained_at or readings.observed[1])
    ]
    figures.append(
        Figure(
            "tasks_peak",
            "Worker tasks at the peak",
            "tasks",
            max(in_sale) if in_sale else None,
            planned,
            "CloudWatch ECS/ContainerInsights RunningTaskCount",
            queue_note if in_sale else "no task metric in the window",
        )
    )
    ready = next(
        (t for t, v in zip(tasks.times, tasks.values, strict=True) if t >= window.raised_at - period and v >= planned),
        None,
    )
    if window.sale is not None:  # the calendar's raise, against its lead time
        figures.append(
            Figure(
                "tasks_ready",
                f"The {planned} planned tasks running, from the sale's start",
                "s",
                None if ready is None else ready - window.start,
                -window.lead_seconds,
                "CloudWatch ECS/ContainerInsights RunningTaskCount",
                f"to the {period} s period" if ready is not None else f"never {planned} tasks in the window",
            )
        )
    end = drained_at or readings.observed[1]
    task_seconds = integral(tasks_avg, period, window.raised_at, end) if tasks_avg else None
    predicted_seconds = prediction.task_seconds_before + prediction.task_seconds_during
    figures.append(
        Figure(
            "task_seconds",
            "Worker task-seconds (raise or window start to drain)",
            "task-s",
            task_seconds,
            predicted_seconds,
            "CloudWatch RunningTaskCount (Average per period)",
            "the step-down after the drain is not counted",
        )
    )
    figures.append(
        Figure(
            "cost",
            "Cost of the worker tasks and the orders' requests",
            "USD",
            None if task_seconds is None else _usd(task_seconds, len(orders), prices),
            _usd(predicted_seconds, len(prediction.waits), prices),
            "ops/cost.py PRICES",
            "",
        )
    )
    timeline: Mapping[str, Series]
    if isinstance(readings.wait_series, Missing):
        timeline, timeline_source = waits_by_period(orders, period), table_source
        notes.append(f"{readings.wait_series.reason}: the waits over time are the orders table's")
    else:
        timeline, timeline_source = readings.wait_series, METRIC
    report = Report(
        window=window,
        facts=facts,
        readings=readings,
        planned_tasks=planned,
        prediction=prediction,
        rate=rate,
        sale_seconds=sale_seconds,
        sale_end=sale_end,
        drained_at=drained_at,
        figures=figures,
        wait_timeline=timeline,
        wait_timeline_source=timeline_source,
        expected_wait=expected,
        scale_outs=scale_outs(tasks),
        verdict="",
        notes=notes,
    )
    return replace(report, verdict=verdict(report))


def read_expected(readings: Readings, facts: StackFacts) -> Series:
    points = list(
        expected_waits(
            readings.queue["waiting"], readings.queue["tasks"], facts.workers_per_task, facts.payment_seconds
        )
    )
    return Series(tuple(t for t, _ in points), tuple(w for _, w in points))


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(seconds: float) -> str:
    """The planner's durations, with a decimal under 10 s (a payment, a wait in the lab) and a sign."""
    if seconds < 0:
        return "-" + duration(-seconds)
    return f"{seconds:.1f} s" if abs(seconds) < 10 else capacity.duration(seconds)


def verdict(report: Report) -> str:
    """One paragraph: was the target met, why not, and what the forecast said."""
    target = report.facts.acceptable_latency
    p95 = report.figure("wait_p95")
    ready_at = next((f.measured for f in report.figures if f.key == "tasks_ready"), None)
    sentences = []
    if p95.measured is None:
        sentences.append("No order of the window finished: nothing to judge the wait by.")
    else:
        met = p95.measured <= target
        sentences.append(
            f"{'Met' if met else 'Missed'} the target: 95 % of the buyers waited at most "
            f"{duration(p95.measured)} against the acceptable latency of {duration(target)} "
            f"({p95.measured / target:.1f}x)"
            + (f"; the forecast was {duration(p95.forecast)}" if p95.forecast is not None else "")
            + "."
        )
    if report.window.sale is not None and ready_at is not None and ready_at > 0:
        over = over_target(report)
        sentences.append(
            f"The pre-scale lead was {duration(ready_at)} short: the {report.planned_tasks} planned tasks, raised "
            f"{duration(report.window.lead_seconds)} before the start, ran only {duration(ready_at)} after it"
            + (
                f", and the first {duration(over[0])} waited up to {over[1]:.1f}x the target."
                if over is not None
                else "."
            )
        )
    elif report.window.sale is not None and ready_at is None and report.readings.queue["tasks"]:
        peak = report.figure("tasks_peak").measured
        sentences.append(
            f"The worker service never ran the {report.planned_tasks} planned tasks in the window (at most "
            f"{peak or 0:.0f})."
        )
    trouble = [
        f"{int(f.measured):,} {what}"
        for key, what in (("dead_lettered", "dead-lettered (`python -m ops.dlq list`)"), ("pending", "still pending"))
        if (f := report.figure(key)).measured
    ]
    if trouble:
        sentences.append("Orders not paid and not declined: " + ", ".join(trouble) + ".")
    return " ".join(sentences)


def over_target(report: Report) -> tuple[float, float] | None:
    """How long from the sale's start the per-period p95 wait stayed above the target, and its worst ratio."""
    p95, target = report.wait_timeline.get("p95"), report.facts.acceptable_latency
    if not p95:
        return None
    run = [
        (t, v) for t, v in zip(p95.times, p95.values, strict=True) if t + report.readings.period > report.window.start
    ]
    above = []
    for t, v in run:
        if v <= target:
            break
        above.append((t, v))
    if not above:
        return None
    return above[-1][0] + report.readings.period - report.window.start, max(v for _, v in above) / target
