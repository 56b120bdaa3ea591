"""The sale calendar: each announced sale becomes scheduled actions on the worker service, planned as the capacity
planner plans, stepped down as ops.prescale --restore steps down; checked pure, under mocks for both stack files,
through the local deployer on moto's Application Auto Scaling, and from the operator's commands."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench.localaws.deployer import Endpoints, deploy
from planning import calendar
from planning.capacity import PlanInputs, plan
from stackconfig import files, output_names, schema
from stackconfig.files import ROOT
from stackconfig.schema import ConfigError, read_stack_file
from tests.infra_mocks import run_program

NOW = datetime(2027, 11, 1, tzinfo=UTC)
INPUTS = calendar.CalendarInputs(workers_per_task=20, payment_seconds=3.0, min_tasks=1, max_tasks=20, lead_seconds=300)
TWO_SALES = [  # far enough ahead to be upcoming whenever the tests run
    {
        "name": "black-friday",
        "start": "2030-11-29T09:00:00-05:00",
        "end": "2030-11-29T10:00:00-05:00",
        "rate": 120,
        "timezone": "America/New_York",
    },
    {"name": "cyber-monday", "start": "2030-12-02T12:00:00Z", "end": "2030-12-02T12:30:00Z", "tasks": 6},
]
SCHEDULED = "aws:appautoscaling/scheduledAction:ScheduledAction"


def sales(*entries: dict[str, Any]) -> tuple[schema.Sale, ...]:
    return schema.from_config({"flashsale:sales": list(entries)}, source="test").sales


def test_a_sale_is_raised_a_lead_time_before_it_and_stepped_down_after() -> None:
    steps, notes = calendar.schedule(sales(TWO_SALES[0]), INPUTS, NOW)
    tasks = plan(PlanInputs(arrival_rate=120, payment_seconds=3.0, workers_per_task=20)).recommended_tasks
    assert tasks == 20 and not notes
    assert (steps[0].what, steps[0].min_capacity, steps[0].schedule, steps[0].timezone) == (
        "raise",
        tasks,
        "at(2030-11-29T08:55:00)",
        "America/New_York",
    )
    downs = [s for s in steps if s.what == "step down"]
    assert [s.min_capacity for s in downs] == calendar.step_down(tasks, 1, calendar.STEP_DOWN_TASKS)
    assert downs[0].at == datetime(2030, 11, 29, 15, 0, tzinfo=UTC)  # at the end, 10:00 EST
    assert [(b.at - a.at).total_seconds() for a, b in pairwise(downs)] == [calendar.STEP_DOWN_PAUSE_SECONDS] * (
        len(downs) - 1
    )


def test_past_sales_are_left_out_with_a_note_and_a_late_raise_is_moved_to_the_next_minute() -> None:
    past = {"name": "old", "start": "2027-10-01T09:00:00Z", "end": "2027-10-01T10:00:00Z", "tasks": 3}
    soon = {
        "name": "soon",
        "start": (NOW + timedelta(minutes=2)).isoformat(),
        "end": (NOW + timedelta(hours=1)).isoformat(),
        "tasks": 3,
    }
    steps, notes = calendar.schedule(sales(past, soon), INPUTS, NOW)
    assert {s.sale for s in steps} == {"soon"}
    assert notes[0].startswith("sales[0] old ended at") and "less than the lead time left" in notes[1]
    assert steps[0].at == NOW + timedelta(seconds=calendar.MIN_NOTICE_SECONDS)


@pytest.mark.parametrize(
    "entry, says",
    [
        (
            {"name": "x", "start": "2030-01-01T10:00:00Z", "end": "2030-01-01T09:00:00Z", "tasks": 2},
            "sales[0]: end must be after start",
        ),
        (
            {"name": "x", "start": "2030-01-01T10:00:00", "end": "2030-01-01T11:00:00Z", "tasks": 2},
            "sales[0].start: Input should have timezone info",
        ),
        (
            {"name": "x", "start": "2030-01-01T10:00:00Z", "end": "2030-01-01T11:00:00Z"},
            "give either rate (peak orders/s) or tasks",
        ),
        (
            {"name": "x", "start": "2030-01-01T10:00:00Z", "end": "2030-01-01T11:00:00Z", "rate": 5, "tasks": 2},
            "either rate",
        ),
        (
            {
                "name": "x",
                "start": "2030-01-01T10:00:00Z",
                "end": "2030-01-01T11:00:00Z",
                "tasks": 2,
                "timezone": "Mars/Base",
            },
            "timezone 'Mars/Base' is not an IANA time zone",
        ),
        (
            {"name": "x", "start": "2030-01-01T10:00:00Z", "end": "2030-01-01T11:00:00Z", "tasks": 2, "rte": 5},
            "sales[0].rte: Extra inputs",
        ),
    ],
)
def test_an_invalid_sale_is_an_error_naming_the_entry_and_field(entry: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as error:
        sales(entry)
    assert says in str(error.value)


def test_overlapping_sales_and_sales_beyond_the_maximum_are_refused() -> None:
    first = {"name": "a", "start": "2030-01-01T10:00:00Z", "end": "2030-01-01T11:00:00Z", "tasks": 10}
    second = {"name": "b", "start": "2030-01-01T11:02:00Z", "end": "2030-01-01T12:00:00Z", "tasks": 2}
    with pytest.raises(calendar.CalendarError, match=r"sales\[1\] b overlaps sales\[0\] a"):
        calendar.schedule(sales(first, second), INPUTS, NOW)
    with pytest.raises(calendar.CalendarError, match="needs 30 worker tasks, above maxWorkerTasks 20"):
        calendar.schedule(sales(first | {"tasks": 30}), INPUTS, NOW)


def with_calendar(stack_file: Path, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return read_stack_file(stack_file) | {"flashsale:sales": entries, "flashsale:maxWorkerTasks": 20}


@pytest.mark.parametrize("stack_file", files.stack_files(), ids=files.stack_of)
def test_the_program_turns_the_calendar_into_scheduled_actions(stack_file: Path) -> None:
    config = with_calendar(stack_file, TWO_SALES)
    run = run_program(files.stack_of(stack_file), config)
    (target,) = run.of_type("aws:appautoscaling/target:Target")
    checked = schema.from_config(config, source=stack_file.name)
    expected, _ = calendar.schedule(checked.sales, calendar.inputs_of(checked), datetime.now(UTC))
    actions = run.of_type(SCHEDULED)
    assert sorted((a["schedule"], a["timezone"], a["scalableTargetAction"]["minCapacity"]) for a in actions) == sorted(
        (s.schedule, s.timezone, s.min_capacity) for s in expected
    ), [a.urn for a in actions]
    assert {a["resourceId"] for a in actions} == {target["resourceId"]}
    assert len(actions) > 2  # both sales, and their steps down


def test_a_bad_calendar_stops_the_program_naming_the_file_and_the_key() -> None:
    bad = [{"name": "x", "start": "2030-01-01T10:00:00Z", "end": "2030-01-01T09:00:00Z", "tasks": 2}]
    with pytest.raises(ConfigError, match=r"^Pulumi.normal.yaml: sales\[0\]: end must be after start"):
        run_program("normal", with_calendar(ROOT / "Pulumi.normal.yaml", bad))


@pytest.mark.parametrize("stack", ["normal", "flashsale"])
def test_both_stacks_with_a_two_sale_calendar_deploy_and_moto_lists_the_actions(
    stack: str, endpoints: Endpoints
) -> None:
    deployment = deploy(stack, endpoints, overrides={"sales": TWO_SALES, "maxWorkerTasks": 20})
    assert deployment.ok, deployment.summary()
    (target,) = deployment.of_type("aws:appautoscaling/target:Target")
    listed = endpoints.client("application-autoscaling").describe_scheduled_actions(
        ServiceNamespace="ecs", ResourceId=target.id
    )["ScheduledActions"]
    declared = deployment.of_type(SCHEDULED)
    assert len(listed) == len(declared) > 2
    assert {(a["Schedule"], a.get("Timezone"), a["ScalableTargetAction"]["MinCapacity"]) for a in listed} == {
        (d.outputs["schedule"], d.outputs["timezone"], d.outputs["scalableTargetAction"]["minCapacity"])
        for d in declared
    }


def test_ops_capacity_and_prescale_print_the_schedule(tmp_path: Path) -> None:
    stack_file = tmp_path / "Pulumi.sale.yaml"
    stack_file.write_text(yaml.safe_dump({"config": with_calendar(ROOT / "Pulumi.normal.yaml", TWO_SALES)}))
    for command in ("ops.capacity", "ops.prescale"):
        done = subprocess.run(
            [sys.executable, "-m", command, "--calendar", str(stack_file), "--json"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        schedule = json.loads(done.stdout)["schedule"]
        assert schedule[0]["sale"] == "black-friday" and schedule[0]["schedule"] == "at(2030-11-29T08:55:00)"
    text = subprocess.run(
        [sys.executable, "-m", "ops.capacity", "--calendar", str(stack_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "2030-11-29 08:55 EST  black-friday         raise      MinCapacity -> 20" in text


def test_prescale_says_when_a_calendar_entry_will_override_it(aws_env: dict[str, str], endpoints: Endpoints) -> None:
    deployment = deploy("normal", endpoints, overrides={"sales": TWO_SALES, "maxWorkerTasks": 20})
    assert deployment.ok, deployment.summary()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "ops.prescale",
            "--tasks",
            "3",
            "--dry-run",
            "--cluster-name",
            deployment.outputs[output_names.CLUSTER_NAME],
            "--worker-service-name",
            deployment.outputs[output_names.WORKER_SERVICE_NAME],
        ],
        cwd=ROOT,
        env=aws_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "note: the sale calendar sets MinCapacity to 20 at 2030-11-29T13:55+00:00" in done.stdout
