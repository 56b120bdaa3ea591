"""The capacity planner's arithmetic: how many workers and tasks a flash sale needs, by Little's law.

Each worker completes one payment every `payment_seconds`, so it serves 1/S orders a second. Little's law
(L = λW) says that at arrival rate λ the payments in progress average λ·S: that many workers are busy on average.
The queue only stays bounded when the workers outnumber that (utilisation λ·S/N below 1), which gives the minimum;
the recommended count adds the safety margin to λ·S. During a sale of T seconds an under-provisioned pool
processes N/S·T orders, the rest (the queue peak) waits and drains at N/S a second after the sale ends.

Pure (no AWS, no Pulumi): the Pulumi program (the sale calendar), `ops.capacity`, `ops.prescale`, `ops.validate` and
the lab all import the same numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from app import contract
from planning.report import REPORT_ARRIVAL_RATE, REPORT_SAFETY_MARGIN, REPORT_SALE_SECONDS, REPORT_WORKER_LEVELS
from stackconfig.schema import CONFIG_DEFAULTS


class PlanError(ValueError):
    """Inputs the arithmetic has no meaning for; the message says which."""


# Rounding guard: 60 × 3 × 1.11 is 199.80000000000001 in floating point, and must not become 201 after ceil().
_EPSILON = 1e-9


@dataclass(frozen=True)
class PlanInputs:
    arrival_rate: float = REPORT_ARRIVAL_RATE  # orders per second at the peak
    payment_seconds: float = contract.SERVICE_DEFAULTS.payment_seconds
    sale_seconds: float = REPORT_SALE_SECONDS
    workers_per_task: int = CONFIG_DEFAULTS.worker_count
    safety_margin: float = REPORT_SAFETY_MARGIN
    worker_levels: tuple[int, ...] = REPORT_WORKER_LEVELS

    def check(self) -> None:
        """Refuse inputs the arithmetic has no meaning for (argparse callers get a one-line error)."""
        numbers = (self.arrival_rate, self.payment_seconds, self.sale_seconds)
        if not all(math.isfinite(n) and n > 0 for n in numbers):
            raise PlanError("rate, payment seconds and sale seconds must be positive")
        if self.workers_per_task < 1 or any(level < 1 for level in self.worker_levels):
            raise PlanError("worker counts must be at least 1")
        if self.safety_margin < 0:
            raise PlanError("the safety margin cannot be negative")


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
