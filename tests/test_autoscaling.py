"""The local model of Application Auto Scaling acting on what the program declares: target tracking with AWS's
3-period high alarm, the scale-out it computes, the task start-up delay, and a scheduled action of the calendar."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from app import aws, contract
from bench.localaws.emulators import Emulator
from bench.localaws.system import LocalArgs, LocalSystem
from planning import scaling
from stackconfig import output_names
from tests.helpers import ORDER, wait_for

pytestmark = pytest.mark.slow
SCALE = 20.0  # the model's minute is 3 s
STARTUP = 2.0
# Target tracking acts after 3 evaluation periods (3 s each here) above 4 waiting orders per task, while the guardrail
# has already added tasks (up to 4, 16 orders/s): 150 orders were nearly drained by the third period (the test failed
# under load, when the periods fell late); 300 keep the backlog over the target well past it.
BURST = 300


@pytest.fixture(scope="module")
def scaled_system(
    tmp_path_factory: pytest.TempPathFactory, emulators: tuple[Emulator, Emulator]
) -> Iterator[LocalSystem]:
    # 2 workers of 0.5 s per task: target tracking aims at 1 s / 0.5 s x 2 = 4 waiting orders per task.
    args = LocalArgs(
        config={
            "paymentSeconds": 0.5,
            "paymentDeclineRate": 0,
            "workerCount": 2,
            "acceptableLatencySeconds": 1,
            "maxWorkerTasks": 4,
        },
        directory=tmp_path_factory.mktemp("scaling"),
        feed_seconds=0.5,
        autoscaling=True,
        time_scale=SCALE,
        task_startup_seconds=STARTUP,
    )
    with pytest.MonkeyPatch.context() as monkeypatch, LocalSystem(args, emulators=emulators) as system:
        for key, value in system.env().items():
            monkeypatch.setenv(key, value)
        yield system


def test_a_burst_trips_the_guardrail_first_then_target_tracking_after_three_periods(scaled_system: LocalSystem) -> None:
    model = scaled_system.autoscaling
    assert model is not None and model.policy.target == 4
    workers = scaled_system.ecs.service("worker")
    with (
        httpx.Client(base_url=scaled_system.outputs[output_names.ASYNC_URL], timeout=10) as client,
        ThreadPoolExecutor(8) as pool,
    ):
        sent_at = time.time()
        codes = pool.map(lambda _: client.post(contract.ASYNC_ORDERS_PATH, json=ORDER).status_code, range(BURST))
        assert all(code == 202 for code in codes)
    tracking = wait_for(
        lambda: [h for h in model.state.history if h[2].startswith("target tracking")], 40, "a target-tracking decision"
    )
    guardrail = [h for h in model.state.history if h[2].startswith("guardrail")]
    # The oldest order passes the 1 s acceptable latency at once: the guardrail adds 50 % (at least one task) first.
    assert guardrail and guardrail[0][1] == 2 and guardrail[0][0] < tracking[0][0]
    # Target tracking waits for 3 evaluation periods above the target (its high alarm's datapoints), then asks
    # ceil(tasks x backlog per task / 4), here more than the maximum: MaxCapacity.
    assert tracking[0][0] - sent_at >= (scaling.HIGH_PERIODS - 1) * scaling.EVALUATION_SECONDS / SCALE
    assert tracking[0][1] == 4
    wanted_at = time.monotonic() - (time.time() - guardrail[0][0])
    running = wait_for(lambda: len(workers.healthy()) == 4 and workers.healthy(), 30, "four worker tasks")
    assert min(t.started_at for t in running[1:]) - wanted_at >= STARTUP - 0.2  # provisioned, then started


def test_a_scheduled_action_raises_the_minimum_when_it_is_due(
    scaled_system: LocalSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = scaled_system.outputs
    resource = f"service/{outputs[output_names.CLUSTER_NAME]}/{outputs[output_names.WORKER_SERVICE_NAME]}"
    model = scaled_system.autoscaling
    assert model is not None
    # What a reader of the model sees at the moment the new minimum is written: the action must not count as done yet.
    done_before_minimum: list[bool] = []
    register = model.scaling.register_scalable_target

    def observed(**kwargs: object) -> object:
        done_before_minimum.append("sale-raise-3" in model.state.done_actions)
        return register(**kwargs)

    monkeypatch.setattr(model.scaling, "register_scalable_target", observed)
    due = datetime.now(UTC) + timedelta(seconds=2)
    aws.client("application-autoscaling").put_scheduled_action(
        ServiceNamespace="ecs",
        ScheduledActionName="sale-raise-3",
        ResourceId=resource,
        ScalableDimension="ecs:service:DesiredCount",
        Schedule=f"at({due:%Y-%m-%dT%H:%M:%S})",
        Timezone="UTC",
        ScalableTargetAction={"MinCapacity": 3},
    )
    wait_for(lambda: "sale-raise-3" in model.state.done_actions, 10, "the scheduled action")
    # Done means done: its minimum and the desired count are already written when the action counts as done.
    assert done_before_minimum and not any(done_before_minimum)
    assert model.limits()[0] == 3 and model.desired() >= 3


def test_the_ecs_api_counts_the_tasks_that_run_not_the_ones_wanted(scaled_system: LocalSystem) -> None:
    # moto alone would answer runningCount = desiredCount the moment it changes; the local system's ECS API says
    # what runs, so `ops.prescale` waits for the start-up as it does on AWS.
    outputs = scaled_system.outputs
    cluster, name = outputs[output_names.CLUSTER_NAME], outputs[output_names.WORKER_SERVICE_NAME]
    ecs = aws.client("ecs")
    desired = ecs.describe_services(cluster=cluster, services=[name])["services"][0]["desiredCount"]
    aws.client("application-autoscaling").register_scalable_target(  # the model may not scale it back in
        ServiceNamespace="ecs",
        ResourceId=f"service/{cluster}/{name}",
        ScalableDimension="ecs:service:DesiredCount",
        MinCapacity=desired + 1,
        MaxCapacity=desired + 1,
    )
    ecs.update_service(cluster=cluster, service=name, desiredCount=desired + 1)
    service = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
    assert (service["desiredCount"], service["runningCount"]) == (desired + 1, desired)
    # Pending from the local ECS's next round (every 0.5 s, slower on a loaded machine) for STARTUP seconds at least:
    # the deadline is for that round to come, not the start-up.
    wait_for(
        lambda: ecs.describe_services(cluster=cluster, services=[name])["services"][0]["pendingCount"] == 1,
        STARTUP + 10,
        "the new task pending (provisioning)",
    )
    wait_for(
        lambda: ecs.describe_services(cluster=cluster, services=[name])["services"][0]["runningCount"] == desired + 1,
        STARTUP + 10,
        "the new task running",
    )
    assert ecs.describe_services(cluster=cluster, services=[name])["services"][0]["pendingCount"] == 0
