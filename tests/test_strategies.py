"""The strategy predictions (planning.strategies) against closed forms, and the lab's Part VI measurements from
records and samples (pure)."""

from __future__ import annotations

import math

import pytest

from bench.lab import strategies as lab_strategies
from bench.lab.strategies import OrderTimes
from bench.lab.watch import Sample
from planning import capacity, scaling
from planning.strategies import AutoScaling, Plan, SaleLoad, Strategy, WorkerService, predict, step_down_seconds

SALE = SaleLoad(rate=60, seconds=60)  # the report's flash sale
SERVICE = WorkerService(workers_per_task=20, payment_seconds=3, normal_tasks=1, max_tasks=10, startup_seconds=60)
POLICY = scaling.ScalingPolicy(
    target=200,
    scale_out_cooldown=60,
    scale_in_cooldown=300,
    guardrail_percent=50,
    guardrail_min_adjustment=1,
    guardrail_cooldown=60,
)
AUTO = AutoScaling(policy=POLICY, guardrail_age_seconds=30, guardrail_period_seconds=60, first_evaluation=60)


def test_fixed_tasks_drain_as_the_planner_says_and_the_last_order_waits_the_drain() -> None:
    fixed = predict(Plan(Strategy.FIXED), SALE, SERVICE)
    level = capacity.level(capacity.PlanInputs(), 20)
    assert fixed.peak_backlog == pytest.approx(level.queue_peak + 20, abs=1)  # + the 20 being paid
    assert fixed.drain_seconds == pytest.approx(level.drain_seconds, abs=1)
    # FIFO: the last order (at 60 s) is paid when the queue empties; the first one after one payment.
    assert max(fixed.waits) == pytest.approx(level.drain_seconds, abs=1)
    assert fixed.waits[0] == pytest.approx(SERVICE.payment_seconds, abs=0.5)
    assert fixed.task_seconds == pytest.approx(SALE.seconds + fixed.drain_seconds, abs=1)


def test_pre_scaled_to_the_planner_keeps_up_with_little_s_law_in_the_queue() -> None:
    plan = Plan(Strategy.PRE_SCALED, sale_tasks=10, lead_seconds=300, step_tasks=2, step_pause_seconds=60)
    raised = predict(plan, SALE, SERVICE)
    assert raised.peak_backlog == pytest.approx(SALE.rate * SERVICE.payment_seconds, abs=2)  # λ·S being paid
    assert max(raised.waits) == pytest.approx(SERVICE.payment_seconds, abs=0.6)
    assert raised.task_seconds_before == 10 * 300
    # Down 10 -> 8 -> 6 -> 4 -> 2 -> 1, one pause at each count above the normal one.
    assert raised.task_seconds_after == (8 + 6 + 4 + 2) * 60 == step_down_seconds(10, 1, plan)


def test_auto_scaling_acts_on_the_guardrail_first_and_on_target_tracking_three_periods_in() -> None:
    auto = predict(Plan(Strategy.AUTO_SCALED), SALE, SERVICE, AUTO)
    # The oldest order passes 30 s at t = 30: the guardrail's alarm fires over the period ending at the first
    # evaluation (60 s) and adds 50 % of one task, at least one.
    assert auto.first_scale_out == 60
    tasks = {t: wanted for t, _, _, wanted in auto.timeline}
    assert tasks[59] == 1 and tasks[60] == 2
    # Target tracking needs three periods above its target: its scale-out comes at the third evaluation (180 s).
    assert tasks[179] < tasks[180] == SERVICE.max_tasks
    # Running one start-up after wanted.
    running = {t: r for t, _, r, _ in auto.timeline}
    assert running[119] == 1 and running[120] == 2 and running[240] == SERVICE.max_tasks
    # It drains sooner than fixed, and keeps its tasks for target tracking's 15 low periods afterwards.
    assert auto.drain_seconds < predict(Plan(Strategy.FIXED), SALE, SERVICE).drain_seconds
    assert auto.task_seconds_after > SERVICE.max_tasks * (scaling.LOW_PERIODS - 5) * scaling.EVALUATION_SECONDS


def test_scale_in_waits_for_fifteen_periods_below_and_the_cooldown() -> None:
    state = scaling.ScalingState(below=3, last_scale_in=-math.inf)
    assert scaling.scale_in_due(POLICY, state, next_evaluation=100) == 100 + (15 - 3 - 1) * 60
    state = scaling.ScalingState(below=20, last_scale_in=90)
    assert scaling.scale_in_due(POLICY, state, next_evaluation=100) == 100 + 5 * 60  # 300 s after the last one


def test_waits_come_from_the_records_and_unpaid_orders_are_paid_in_arrival_order() -> None:
    records = [OrderTimes(100.0, 101.5), OrderTimes(100.5, 103.0), OrderTimes(101.0, None), OrderTimes(100.8, None)]
    waits, extrapolated = lab_strategies.waits(records, k=2, stopped_at=110.0, rate=2.0, payment_seconds=1.5)
    assert extrapolated == 2
    # Paid: 1.5 and 2.5 lab seconds, x 2. Unpaid, oldest (100.8) first: started at 110.5 and 111, paid 1.5 s later.
    assert waits == pytest.approx([3.0, 5.0, (112.0 - 100.8) * 2, (112.5 - 101.0) * 2])
    with pytest.raises(ValueError):
        lab_strategies.waits(records, k=2, stopped_at=110.0, rate=math.nan, payment_seconds=1.5)


def test_task_seconds_integrate_the_tasks_wanted_between_samples() -> None:
    samples = [
        Sample(0, 0, 0, math.nan, math.nan, running=1, wanted=1),
        Sample(10, 0, 0, math.nan, math.nan, running=1, wanted=4),  # 3 more starting: billed
        Sample(20, 0, 0, math.nan, math.nan, running=4, wanted=4),
    ]
    assert lab_strategies.task_seconds(samples, 5, 25) == 1 * 5 + 4 * 10 + 4 * 5
