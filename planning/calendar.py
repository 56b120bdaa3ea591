"""The sale calendar: when the worker service is raised before each announced sale, and how it steps down after.

A flash sale is announced in advance, and predictive scaling cannot forecast a one-off sale (AWS says to override it
with scheduled actions), so each sale of the stack's `sales` config becomes Application Auto Scaling scheduled
actions on the worker service: MinCapacity raised to the planner's tasks for the sale's peak rate (or the tasks it
names) a lead time before the start, held through the sale, then lowered gradually after the end in the same steps
`ops.prescale --restore` takes. The times are written in the sale's time zone (`timezone`, IANA; UTC by default),
as the scheduled actions carry it.

Pure (no AWS, no Pulumi): the program, `ops.capacity --calendar` and `ops.prescale --calendar` compute the same
schedule. A sale's own rules (`stackconfig.schema.Sale`) are checked with the rest of the stack config; here, past
sales are left out with a note, and overlapping sales or sales above maxWorkerTasks are errors naming `sales[i]`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from planning.capacity import PlanInputs, plan
from planning.report import REPORT_SAFETY_MARGIN
from stackconfig.schema import SALES_KEY, Sale, StackConfig

# After a sale (the calendar) and with `ops.prescale --restore`: the worker service steps down this many tasks at a
# time, pausing between steps (report 6.3: "scale down gradually").
STEP_DOWN_TASKS: Final = 2
STEP_DOWN_PAUSE_SECONDS: Final = 60
MIN_NOTICE_SECONDS = 60  # a scheduled action must lie in the future; one due sooner is set for a minute from now


class CalendarError(ValueError):
    """A sale the calendar cannot schedule; the message names `sales[i]` and the field."""


@dataclass(frozen=True)
class CalendarInputs:
    """What the schedule needs from the stack: its worker settings and scaling limits."""

    workers_per_task: int
    payment_seconds: float
    min_tasks: int
    max_tasks: int
    lead_seconds: float
    step_tasks: int = STEP_DOWN_TASKS
    step_pause_seconds: float = STEP_DOWN_PAUSE_SECONDS
    safety_margin: float = REPORT_SAFETY_MARGIN


@dataclass(frozen=True)
class ScheduledStep:
    """One scheduled action: at `at` (UTC), MinCapacity becomes `min_capacity`."""

    sale: str
    what: str  # "raise" | "step down"
    at: datetime
    timezone: str
    min_capacity: int

    @property
    def local_time(self) -> datetime:
        return self.at.astimezone(ZoneInfo(self.timezone))

    @property
    def schedule(self) -> str:
        """Application Auto Scaling's one-time schedule, in the action's time zone."""
        return f"at({self.local_time:%Y-%m-%dT%H:%M:%S})"

    @property
    def action_name(self) -> str:
        return f"{self.sale}-{'raise' if self.what == 'raise' else 'down'}-{self.min_capacity}-{self.at:%Y%m%d%H%M}"


# A deployed step's name: the program's logical name, ending in ScheduledStep.action_name, and Pulumi's autoname suffix.
ACTION_NAME = re.compile(r"-(?P<what>raise|down)-(?P<tasks>\d+)-(?P<at>\d{12})(?:-[0-9a-f]{7})?$")


def from_calendar(action_name: str) -> bool:
    """Whether a scheduled action is one the calendar declares (else someone put it by hand)."""
    return ACTION_NAME.search(action_name) is not None


def inputs_of(config: StackConfig) -> CalendarInputs:
    """What the schedule needs from a stack's config."""
    return CalendarInputs(
        workers_per_task=config.worker_count,
        payment_seconds=config.payment_seconds,
        min_tasks=config.min_worker_tasks,
        max_tasks=config.max_worker_tasks,
        lead_seconds=config.sale_lead_seconds,
    )


def step_down(current: int, normal: int, step: int) -> list[int]:
    """The task counts from `current` down to `normal`, `step` at a time (what `ops.prescale --restore` goes
    through, and the calendar after a sale)."""
    if current <= normal:
        return []
    return list(range(current - step, normal, -step)) + [normal]


def sale_tasks(sale: Sale, inputs: CalendarInputs) -> int:
    if sale.tasks is not None:
        return sale.tasks
    if sale.rate is None:  # the model's validator makes this unreachable; said for the type checker
        raise CalendarError(f"sale {sale.name} has neither rate nor tasks")
    return plan(
        PlanInputs(
            arrival_rate=sale.rate,
            payment_seconds=inputs.payment_seconds,
            workers_per_task=inputs.workers_per_task,
            safety_margin=inputs.safety_margin,
        )
    ).recommended_tasks


def schedule(sales: Sequence[Sale], inputs: CalendarInputs, now: datetime) -> tuple[list[ScheduledStep], list[str]]:
    """Every upcoming sale's scheduled actions, in time order, and notes for people (past sales, late raises)."""
    steps: list[ScheduledStep] = []
    notes: list[str] = []
    windows: list[tuple[datetime, datetime, int, Sale]] = []
    earliest = now + timedelta(seconds=MIN_NOTICE_SECONDS)
    for index, sale in enumerate(sales):
        if sale.end <= now:
            notes.append(f"{SALES_KEY}[{index}] {sale.name} ended at {sale.end.isoformat()}: not scheduled")
            continue
        tasks = sale_tasks(sale, inputs)
        if tasks > inputs.max_tasks:
            raise CalendarError(
                f"{SALES_KEY}[{index}] {sale.name} needs {tasks} worker tasks, above "
                f"maxWorkerTasks {inputs.max_tasks}: raise maxWorkerTasks or lower the sale's rate"
            )
        raise_at = sale.start - timedelta(seconds=inputs.lead_seconds)
        if raise_at < earliest:
            notes.append(
                f"{SALES_KEY}[{index}] {sale.name}: less than the lead time left; raised at "
                f"{earliest.isoformat(timespec='seconds')} instead"
            )
            raise_at = earliest
        sale_steps = [ScheduledStep(sale.name, "raise", raise_at.astimezone(UTC), sale.timezone, tasks)]
        after = max(sale.end, raise_at + timedelta(seconds=MIN_NOTICE_SECONDS))
        for n, count in enumerate(step_down(tasks, inputs.min_tasks, inputs.step_tasks)):
            at = after + timedelta(seconds=n * inputs.step_pause_seconds)
            sale_steps.append(ScheduledStep(sale.name, "step down", at.astimezone(UTC), sale.timezone, count))
        for other_start, other_end, other_index, other in windows:
            if sale_steps[0].at <= other_end and other_start <= sale_steps[-1].at:
                raise CalendarError(
                    f"{SALES_KEY}[{index}] {sale.name} overlaps {SALES_KEY}[{other_index}] "
                    f"{other.name} (from its raise to its last step down)"
                )
        windows.append((sale_steps[0].at, sale_steps[-1].at, index, sale))
        steps += sale_steps
    return sorted(steps, key=lambda step: step.at), notes
