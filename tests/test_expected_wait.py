"""The expected wait's one definition (app.expected_wait): the Python function, the CloudWatch expression the alarms
and the dashboard evaluate, and the scaling target derived from it say the same thing."""

from __future__ import annotations

import pytest

from app import expected_wait
from bench.localaws import metric_math

CASES = [(0, 1, 20, 3.0), (9, 3, 1, 4.0), (3_600, 2, 200, 3.0), (3_600, 10, 200, 3.0), (7, 4, 3, 0.25)]


@pytest.mark.parametrize(("waiting", "tasks", "per_task", "payment"), CASES)
def test_the_alarms_expression_is_the_function(waiting: int, tasks: int, per_task: int, payment: float) -> None:
    values = {expected_wait.WAITING.id: float(waiting), expected_wait.RUNNING_TASKS.id: float(tasks)}
    computed = metric_math.evaluate(expected_wait.expression(per_task, payment), values)
    assert computed == pytest.approx(expected_wait.seconds(waiting, tasks, per_task, payment))


def test_the_wait_counts_every_running_task() -> None:
    # The flashsale stack: 200 workers per task, 3 s a payment; pre-scaled from 2 to 10 tasks the wait is a fifth.
    assert expected_wait.seconds(3_600, 2, 200, 3.0) == pytest.approx(27.0)
    assert expected_wait.seconds(3_600, 10, 200, 3.0) == pytest.approx(5.4)


def test_no_running_task_gives_no_wait_and_bad_input_is_refused() -> None:
    assert expected_wait.seconds(10, 0, 20, 3.0) is None
    assert metric_math.evaluate(expected_wait.expression(20, 3.0), {"m1": 10.0, "m2": 0.0}) is None
    with pytest.raises(ValueError, match="workers at least 1"):
        expected_wait.seconds(10, 1, 0, 3.0)
    with pytest.raises(ValueError, match="must be positive"):
        expected_wait.tasks_for(10.0, 1, 0)


def test_the_scaling_target_is_the_backlog_whose_wait_is_the_latency() -> None:
    target = expected_wait.backlog_per_task_target(30, 200, 3.0)
    assert expected_wait.seconds(target, 1, 200, 3.0) == pytest.approx(30)
    values = {expected_wait.WAITING.id: 2 * target, expected_wait.RUNNING_TASKS.id: 2.0}
    assert metric_math.evaluate(expected_wait.BACKLOG_PER_TASK, values) == pytest.approx(target)


def test_tasks_for_brings_the_wait_to_the_target() -> None:
    wait = expected_wait.seconds(3_600, 2, 200, 3.0)
    assert wait is not None
    needed = expected_wait.tasks_for(wait, 2, 10.0)
    assert needed == 6  # 27 s over 2 tasks: 5.4 tasks for 10 s, so 6
    after = expected_wait.seconds(3_600, needed, 200, 3.0)
    assert after is not None and after <= 10.0
