"""ops.prescale against moto's ECS and Application Auto Scaling, run the way an operator runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from app import aws
from bench.localaws.deployer import Deployment, Endpoints, deploy
from stackconfig import output_names
from stackconfig.files import ROOT
from stackconfig.schema import CONFIG_DEFAULTS
from tests.conftest import TEST_CONFIG

MAX_TASKS = CONFIG_DEFAULTS.max_worker_tasks


@dataclass(frozen=True)
class Ecs:
    """The worker service the program deploys (normal stack: 1 task, scalable 1..maxWorkerTasks), fresh per test."""

    env: dict[str, str]
    cluster: str
    service_name: str
    deployment: Deployment

    def max_capacity(self) -> int:
        targets = aws.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace="ecs", ResourceIds=[self.resource_id]
        )["ScalableTargets"]
        return int(targets[0]["MaxCapacity"])

    def service(self) -> dict[str, int]:
        found = aws.client("ecs").describe_services(cluster=self.cluster, services=[self.service_name])["services"][0]
        return {"desired": found["desiredCount"], "running": found["runningCount"]}

    @property
    def resource_id(self) -> str:
        return f"service/{self.cluster}/{self.service_name}"

    def min_capacity(self) -> int:
        targets = aws.client("application-autoscaling").describe_scalable_targets(
            ServiceNamespace="ecs", ResourceIds=[self.resource_id]
        )["ScalableTargets"]
        return int(targets[0]["MinCapacity"])

    def prescale(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [
            sys.executable,
            "-m",
            "ops.prescale",
            "--cluster-name",
            self.cluster,
            "--worker-service-name",
            self.service_name,
            "--workers-per-task",
            "20",
            "--poll",
            "0.1",
            "--timeout",
            "20",
            *args,
        ]
        return subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def ecs(aws_env: dict[str, str], endpoints: Endpoints) -> Ecs:
    deployed = deploy("normal", endpoints, overrides=TEST_CONFIG)
    assert deployed.ok, deployed.summary()
    outputs = deployed.outputs
    return Ecs(aws_env, outputs[output_names.CLUSTER_NAME], outputs[output_names.WORKER_SERVICE_NAME], deployed)


def test_dry_run_prints_the_plan_and_changes_nothing(ecs: Ecs) -> None:
    done = ecs.prescale("--tasks", "8", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "MinCapacity -> 8, desiredCount -> 8" in done.stdout
    assert "Dry run: nothing changed." in done.stdout
    assert ecs.service()["desired"] == 1
    assert ecs.min_capacity() == 1


def test_prescale_from_the_planner_lifts_min_capacity_and_desired_count(ecs: Ecs) -> None:
    done = ecs.prescale("--json")  # the report's sale: 200 workers at 20 per task
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["steps"] == [10]
    assert "10/10 running" in done.stderr  # the progress display
    assert ecs.service() == {"desired": 10, "running": 10}
    assert ecs.min_capacity() == 10


def test_restore_steps_down_gradually_to_the_normal_level(ecs: Ecs) -> None:
    assert ecs.prescale("--tasks", "7").returncode == 0
    done = ecs.prescale("--restore", "--step", "3", "--pause", "0", "--normal-tasks", "1")
    assert done.returncode == 0, done.stderr
    assert [line.split("desiredCount -> ")[1] for line in done.stderr.splitlines() if "desiredCount" in line] == [
        "4",
        "1",
    ]
    assert ecs.service() == {"desired": 1, "running": 1}
    assert ecs.min_capacity() == 1


SCALABLE_TARGET = "aws:appautoscaling/target:Target"


def test_a_refresh_and_up_after_prescale_keeps_the_raised_minimum(ecs: Ecs, endpoints: Endpoints) -> None:
    """`pulumi up --refresh` during a pre-scaled sale: the program ignores MinCapacity (ignore_changes), so the
    refreshed state's value stands, even when another change (a new maxWorkerTasks) updates the target."""
    assert ecs.prescale("--tasks", "6").returncode == 0
    again = deploy("normal", endpoints, overrides=TEST_CONFIG, state=ecs.deployment)
    assert again.ok and not again.deleted, again.summary()
    assert ecs.min_capacity() == 6 and ecs.service() == {"desired": 6, "running": 6}
    assert again.updated == []  # nothing to do: MinCapacity 6 is the refreshed state's, and ignored

    raised = deploy("normal", endpoints, overrides=TEST_CONFIG | {"maxWorkerTasks": MAX_TASKS + 2}, state=again)
    assert raised.ok, raised.summary()
    assert [r.typ for r in raised.resources if r.urn in raised.updated] == [SCALABLE_TARGET]
    assert (ecs.min_capacity(), ecs.max_capacity()) == (6, MAX_TASKS + 2)
    assert ecs.service() == {"desired": 6, "running": 6}


def test_refuses_more_tasks_than_max_capacity(ecs: Ecs) -> None:
    done = ecs.prescale("--tasks", str(MAX_TASKS + 1))
    assert done.returncode == 1
    assert f"exceed the scalable target's MaxCapacity {MAX_TASKS}" in done.stderr
    assert "Traceback" not in done.stderr
    assert ecs.service()["desired"] == 1


def test_refuses_a_missing_service(ecs: Ecs) -> None:
    done = ecs.prescale("--tasks", "2", "--worker-service-name", "nope")
    assert done.returncode == 1
    assert "ECS service 'nope' not found" in done.stderr


def test_refuses_a_service_without_scalable_target(ecs: Ecs) -> None:
    aws.client("application-autoscaling").deregister_scalable_target(
        ServiceNamespace="ecs", ResourceId=ecs.resource_id, ScalableDimension="ecs:service:DesiredCount"
    )
    done = ecs.prescale("--tasks", "2")
    assert done.returncode == 1
    assert "no Application Auto Scaling target" in done.stderr


def test_needs_the_cluster_from_somewhere(aws_env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ops.prescale", "--tasks", "2"],
        cwd=ROOT,
        env=aws_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "stack output `clusterName` is missing: pass --cluster-name, --outputs FILE or --stack NAME" in done.stderr


def test_names_the_outputs_file_that_lacks_a_value(aws_env: dict[str, str], tmp_path: Path) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps({"queueUrl": "x"}))
    done = subprocess.run(
        [sys.executable, "-m", "ops.prescale", "--tasks", "2", "--outputs", str(outputs)],
        cwd=ROOT,
        env=aws_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert f"stack output `clusterName` is not in {outputs}: pass --cluster-name" in done.stderr
