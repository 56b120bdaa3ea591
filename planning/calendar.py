"""The sale calendar: when the worker service is raised before each announced sale, and how it steps down after.

A flash sale is announced in advance, and predictive scaling cannot forecast a one-off sale (AWS says to override it
with scheduled actions), so each sale of the stack's `sales` config becomes Application Auto Scaling scheduled
actions on the worker service: MinCapacity raised to the planner's tasks for the sale's peak rate (or the tasks it
names) a lead time before the start, held through the sale, then lowered gradually after the end in the same steps
`ops.prescale --restore` takes. The times are written in the sale's time zone (`timezone`, IANA; UTC by default),
as the scheduled actions carry it.

Pure (no AWS, no Pulumi): the program, `ops.capacity --calendar` and `ops.prescale --calendar` compute the same
schedule. Past sales are left out with a note; invalid or overlapping sales are errors naming `sales[i]`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, PositiveFloat, PositiveInt, ValidationError, model_validator

from app import contract
from planning.capacity import PlanInputs, plan

CONFIG_KEY = "sales"
MIN_NOTICE_SECONDS = 60  # a scheduled action must lie in the future; one due sooner is set for a minute from now


class CalendarError(ValueError):
    """A sale the calendar cannot schedule; the message names `sales[i]` and the field."""


class Sale(BaseModel):
    """One announced sale, as written in the stack file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    start: AwareDatetime
    end: AwareDatetime
    rate: PositiveFloat | None = None  # peak orders per second: the planner says how many tasks
    tasks: PositiveInt | None = None  # or the worker tasks, given
    timezone: str = "UTC"  # IANA zone the scheduled actions are written in

    @model_validator(mode="after")
    def _consistent(self) -> Sale:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}", self.name):
            raise ValueError("name must be 1..40 letters, digits, - or _")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if (self.rate is None) == (self.tasks is None):
            raise ValueError("give either rate (peak orders/s) or tasks")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone {self.timezone!r} is not an IANA time zone") from None
        return self


@dataclass(frozen=True)
class CalendarInputs:
    """What the schedule needs from the stack: its worker settings and scaling limits."""

    workers_per_task: int
    payment_seconds: float
    min_tasks: int
    max_tasks: int
    lead_seconds: float
    step_tasks: int = contract.STEP_DOWN_TASKS
    step_pause_seconds: float = contract.STEP_DOWN_PAUSE_SECONDS
    safety_margin: float = contract.REPORT_SAFETY_MARGIN


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


def from_stack_config(config: Any, project: str = "flashsale") -> tuple[list[Sale], CalendarInputs]:
    """The calendar and its inputs from a stack file's `config:` mapping (keys `project:name`; a missing key has its
    default from app.contract), for the ops commands that print a schedule without running the program."""
    def value(key: str) -> Any:
        return config.get(f"{project}:{key}", contract.CONFIG_DEFAULTS[key]) if isinstance(config, dict) else None

    inputs = CalendarInputs(workers_per_task=int(value("workerCount")), payment_seconds=float(value("paymentSeconds")),
                            min_tasks=int(value("minWorkerTasks")), max_tasks=int(value("maxWorkerTasks")),
                            lead_seconds=float(value("saleLeadSeconds")))
    return parse_sales(value(CONFIG_KEY)), inputs


def step_down(current: int, normal: int, step: int) -> list[int]:
    """The task counts from `current` down to `normal`, `step` at a time (what `ops.prescale --restore` goes
    through, and the calendar after a sale)."""
    if current <= normal:
        return []
    return list(range(current - step, normal, -step)) + [normal]


def parse_sales(raw: Any) -> list[Sale]:
    """The `sales` config value (a list of mappings) as Sales; errors name `sales[i].field`."""
    if not isinstance(raw, list):
        raise CalendarError(f"{CONFIG_KEY} must be a list of sales, got {type(raw).__name__}")
    sales = []
    for index, entry in enumerate(raw):
        try:
            sales.append(Sale.model_validate(entry))
        except ValidationError as error:
            problem = error.errors()[0]
            where = ".".join(str(part) for part in problem["loc"])
            raise CalendarError(f"{CONFIG_KEY}[{index}]{'.' + where if where else ''}: "
                                f"{problem['msg'].removeprefix('Value error, ')}") from None
    names = [sale.name for sale in sales]
    for index, name in enumerate(names):
        if names.index(name) != index:
            raise CalendarError(f"{CONFIG_KEY}[{index}].name: {name!r} is used twice")
    return sales


def sale_tasks(sale: Sale, inputs: CalendarInputs) -> int:
    if sale.tasks is not None:
        return sale.tasks
    if sale.rate is None:  # the model's validator makes this unreachable; said for the type checker
        raise CalendarError(f"sale {sale.name} has neither rate nor tasks")
    return plan(PlanInputs(arrival_rate=sale.rate, payment_seconds=inputs.payment_seconds,
                           workers_per_task=inputs.workers_per_task, safety_margin=inputs.safety_margin)).recommended_tasks


def schedule(sales: Sequence[Sale], inputs: CalendarInputs, now: datetime) -> tuple[list[ScheduledStep], list[str]]:
    """Every upcoming sale's scheduled actions, in time order, and notes for people (past sales, late raises)."""
    steps: list[ScheduledStep] = []
    notes: list[str] = []
    windows: list[tuple[datetime, datetime, int, Sale]] = []
    earliest = now + timedelta(seconds=MIN_NOTICE_SECONDS)
    for index, sale in enumerate(sales):
        if sale.end <= now:
            notes.append(f"{CONFIG_KEY}[{index}] {sale.name} ended at {sale.end.isoformat()}: not scheduled")
            continue
        tasks = sale_tasks(sale, inputs)
        if tasks > inputs.max_tasks:
            raise CalendarError(f"{CONFIG_KEY}[{index}] {sale.name} needs {tasks} worker tasks, above "
                                f"maxWorkerTasks {inputs.max_tasks}: raise maxWorkerTasks or lower the sale's rate")
        raise_at = sale.start - timedelta(seconds=inputs.lead_seconds)
        if raise_at < earliest:
            notes.append(f"{CONFIG_KEY}[{index}] {sale.name}: less than the lead time left; raised at "
                         f"{earliest.isoformat(timespec='seconds')} instead")
            raise_at = earliest
        sale_steps = [ScheduledStep(sale.name, "raise", raise_at.astimezone(timezone.utc), sale.timezone, tasks)]
        after = max(sale.end, raise_at + timedelta(seconds=MIN_NOTICE_SECONDS))
        for n, count in enumerate(step_down(tasks, inputs.min_tasks, inputs.step_tasks)):
            at = after + timedelta(seconds=n * inputs.step_pause_seconds)
            sale_steps.append(ScheduledStep(sale.name, "step down", at.astimezone(timezone.utc), sale.timezone, count))
        for other_start, other_end, other_index, other in windows:
            if sale_steps[0].at <= other_end and other_start <= sale_steps[-1].at:
                raise CalendarError(f"{CONFIG_KEY}[{index}] {sale.name} overlaps {CONFIG_KEY}[{other_index}] "
                                    f"{other.name} (from its raise to its last step down)")
        windows.append((sale_steps[0].at, sale_steps[-1].at, index, sale))
        steps += sale_steps
    return sorted(steps, key=lambda step: step.at), notes
