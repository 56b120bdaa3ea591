"""What each way of scaling the worker service does to one flash sale: a fluid model, second by second.

The capacity planner (`planning.capacity`) answers for a fixed number of workers; a strategy changes the number while
the sale runs, so this steps the same model through time: orders arrive at the sale's rate, each worker starts the
oldest waiting order as soon as it is free (the queue is FIFO, as SQS standard is nearly) and pays for
`payment_seconds`, and the worker tasks follow the strategy:

- fixed: the tasks the stack deploys, all along (the report's situation);
- pre-scaled / scheduled: the sale's tasks running before it starts (`ops.prescale`, or the calendar's raise a lead
  time before) and stepped down after it;
- auto-scaled: the normal tasks, changed by `planning.scaling`'s rules (target tracking on backlog per task, the
  age guardrail) every evaluation period, each new task running `startup_seconds` after it is wanted.

It predicts what the lab's Part VI measures: the wait until paid of every order (p50, p95, max), the peak backlog,
the drain, the tasks over time, when auto-scaling first acts, and the task-seconds the bill counts. Times are the
report's seconds from the sale's start.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from planning import scaling
from planning.calendar import STEP_DOWN_PAUSE_SECONDS, STEP_DOWN_TASKS, step_down

STEP_SECONDS = 0.5
MAX_SECONDS = 6 * 3600.0  # a sale that has not drained by then is reported as not drained


class Strategy(str, Enum):  # noqa: UP042  (StrEnum would change str() and format() of the members, which are printed)
    FIXED = "fixed"
    AUTO_SCALED = "auto-scaled"
    PRE_SCALED = "pre-scaled"
    SCHEDULED = "scheduled"


@dataclass(frozen=True)
class SaleLoad:
    rate: float  # orders per second
    seconds: float

    @property
    def orders(self) -> float:
        return self.rate * self.seconds


@dataclass(frozen=True)
class WorkerService:
    """The worker service as the stack declares it."""

    workers_per_task: int
    payment_seconds: float
    normal_tasks: int  # deployed, and the scalable target's MinCapacity
    max_tasks: int
    startup_seconds: float = scaling.FARGATE_STARTUP_SECONDS  # a task wanted now runs this much later

    def rate(self, tasks: float) -> float:
        return tasks * self.workers_per_task / self.payment_seconds


@dataclass(frozen=True)
class AutoScaling:
    """The declared policy (cooldowns in seconds), the guardrail's alarm, and the clock of the evaluations."""

    policy: scaling.ScalingPolicy
    guardrail_age_seconds: float  # the acceptable latency
    guardrail_period_seconds: float
    first_evaluation: float = scaling.EVALUATION_SECONDS  # seconds after the sale's start (its phase)
    evaluation_seconds: float = scaling.EVALUATION_SECONDS


@dataclass(frozen=True)
class Plan:
    strategy: Strategy
    sale_tasks: int = 0  # pre-scaled / scheduled: the worker tasks during the sale
    lead_seconds: float = 0.0  # they are wanted this long before the sale (the stack's saleLeadSeconds)
    step_tasks: int = STEP_DOWN_TASKS  # stepped down after the drain by this many ...
    step_pause_seconds: float = STEP_DOWN_PAUSE_SECONDS  # ... every this many seconds


@dataclass(frozen=True)
class Prediction:
    strategy: Strategy
    waits: tuple[float, ...]  # each order's wait until paid, in arrival order
    peak_backlog: float  # orders in the queue (waiting + being paid)
    drain_seconds: float  # after the sale's end, until the queue is empty (inf: not within MAX_SECONDS)
    first_scale_out: float | None  # auto-scaled: seconds after the sale's start
    timeline: tuple[tuple[float, float, int, int], ...]  # (t, orders in the queue, running, wanted) every second
    task_seconds_before: float  # worker task-seconds before the sale (pre-scaling, the calendar's lead)
    task_seconds_during: float  # from the sale's start until the queue is empty
    task_seconds_after: float  # from then until the service is back at its normal tasks

    @property
    def task_seconds(self) -> float:
        return self.task_seconds_before + self.task_seconds_during + self.task_seconds_after

    def wait_percentile(self, p: float) -> float:
        return percentile(self.waits, p)


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank percentile (p in 0..100) of values; NaN for none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def step_down_seconds(tasks: int, normal: int, plan: Plan) -> float:
    """Task-seconds from the drain until the service is back at `normal`: `ops.prescale --restore` and the calendar
    step down alike, the first step at once, each count held for one pause, the normal count ending it."""
    return sum(step_down(tasks, normal, plan.step_tasks)[:-1]) * plan.step_pause_seconds


@dataclass
class _Fluid:
    service: WorkerService
    sale: SaleLoad
    running: int
    wanted: list[float] = field(default_factory=list)  # when each task not yet running was wanted
    arrived: float = 0.0
    started: float = 0.0
    starts: list[tuple[float, float]] = field(default_factory=list)  # (t, cumulative started), for the waits
    paying: list[tuple[float, float]] = field(default_factory=list)  # (ends at, orders)

    @property
    def desired(self) -> int:
        return self.running + len(self.wanted)

    @property
    def in_queue(self) -> float:
        return self.arrived - self.started + sum(n for _, n in self.paying)

    def oldest_age(self, t: float) -> float:
        """Age of the oldest order still waiting (its arrival, FIFO: order number `started`)."""
        return t - self.started / self.sale.rate if self.arrived - self.started > 1e-9 else 0.0

    def step(self, t: float, dt: float, startup: float) -> None:
        """From t to t + dt: the step's arrivals come in; at its end, payments due finish, tasks due start, and
        free workers start the oldest orders."""
        if t < self.sale.seconds:
            self.arrived = min(self.sale.orders, self.arrived + self.sale.rate * dt)
        end = t + dt
        while self.wanted and end - self.wanted[0] >= startup - 1e-9:
            self.wanted.pop(0)
            self.running += 1
        self.paying = [(due, n) for due, n in self.paying if due > end + 1e-9]
        free = self.running * self.service.workers_per_task - sum(n for _, n in self.paying)
        start = max(0.0, min(self.arrived - self.started, free))
        if start > 0:
            self.started += start
            self.paying.append((end + self.service.payment_seconds, start))
            self.starts.append((end, self.started))

    def set_desired(self, t: float, count: int) -> None:
        count = max(self.service.normal_tasks, min(self.service.max_tasks, count))
        if count > self.desired:
            self.wanted += [t] * (count - self.desired)
        elif count < self.desired:
            cut = self.desired - count
            dropped = min(cut, len(self.wanted))
            del self.wanted[len(self.wanted) - dropped :]
            self.running -= cut - dropped

    def waits(self) -> tuple[float, ...]:
        """Each order's wait: from its arrival to the end of its payment."""
        times = [t for t, _ in self.starts]
        totals = [n for _, n in self.starts]
        waits = []
        for k in range(1, math.floor(self.sale.orders + 1e-9) + 1):
            i = bisect.bisect_left(totals, k - 1e-6)
            if i == len(totals):
                waits.append(math.inf)
                continue
            waits.append(times[i] - (k - 1) / self.sale.rate + self.service.payment_seconds)
        return tuple(waits)


def predict(plan: Plan, sale: SaleLoad, service: WorkerService, auto: AutoScaling | None = None) -> Prediction:
    """Step the fluid model through the sale and its drain under `plan` (auto-scaled needs `auto`)."""
    if plan.strategy is Strategy.AUTO_SCALED and auto is None:
        raise ValueError("the auto-scaled strategy needs the declared scaling (AutoScaling)")
    raised = plan.strategy in (Strategy.PRE_SCALED, Strategy.SCHEDULED)
    tasks = min(service.max_tasks, plan.sale_tasks) if raised else service.normal_tasks
    fluid = _Fluid(service=service, sale=sale, running=tasks)
    startup = service.startup_seconds
    state = scaling.ScalingState()
    next_evaluation = auto.first_evaluation if auto else math.inf
    ages: list[tuple[float, float]] = []
    timeline: list[tuple[float, float, int, int]] = []
    first_scale_out: float | None = None
    peak, during, t = 0.0, 0.0, 0.0
    while t < MAX_SECONDS:
        fluid.step(t, STEP_SECONDS, startup)
        ages.append((t, fluid.oldest_age(t)))
        if auto is not None and t >= next_evaluation - 1e-9:
            next_evaluation += auto.evaluation_seconds
            before = fluid.desired
            running = fluid.running
            metric = (fluid.arrived - fluid.started) / running if running else None
            decision = scaling.tracking_decision(auto.policy, state, t, fluid.desired, metric)
            if decision is not None:
                fluid.set_desired(t, decision[0])
            window = [age for at, age in ages if at > t - auto.guardrail_period_seconds]
            alarm = max(window, default=0.0) > auto.guardrail_age_seconds
            decision = scaling.guardrail_decision(auto.policy, state, t, fluid.desired, alarm)
            if decision is not None:
                fluid.set_desired(t, decision[0])
            if fluid.desired > before and first_scale_out is None:
                first_scale_out = t
        peak = max(peak, fluid.in_queue)
        during += (fluid.running + len(fluid.wanted)) * STEP_SECONDS
        if abs(t - round(t)) < 1e-9:
            timeline.append((t, fluid.in_queue, fluid.running, fluid.desired))
        t += STEP_SECONDS
        if t > sale.seconds and fluid.in_queue < 1e-6 and fluid.arrived >= sale.orders - 1e-6:
            break
    drained = t if fluid.in_queue < 1e-6 else math.inf
    before_sale = tasks * plan.lead_seconds if raised else 0.0
    after = 0.0
    if raised:
        after = step_down_seconds(fluid.desired, service.normal_tasks, plan)
    elif auto is not None and fluid.desired > service.normal_tasks:
        due = scaling.scale_in_due(auto.policy, state, next_evaluation, auto.evaluation_seconds)
        after = fluid.desired * max(0.0, due - t)
    return Prediction(
        strategy=plan.strategy,
        waits=fluid.waits(),
        peak_backlog=peak,
        drain_seconds=drained - sale.seconds,
        first_scale_out=first_scale_out,
        timeline=tuple(timeline),
        task_seconds_before=before_sale,
        task_seconds_during=during,
        task_seconds_after=after,
    )
