"""The Pulumi program under mocks, once per stack file with its real config: every check is a policy whose message
names the offending resource's URN."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic.alias_generators import to_camel, to_snake

from app import alarm_catalogue, contract, expected_wait, healthcheck
from app.alarm_catalogue import AlarmSubject, System
from app.roles import ROLES
from bench.localaws.program import config_strings
from components import cluster, keys, pipeline
from components.settings import ConfigError
from components.watched import Watched
from stackconfig import output_names, schema
from stackconfig.alarm_profiles import ALARM_PROFILES, alarm_threshold
from stackconfig.files import ROOT, stack_of
from stackconfig.schema import read_stack_file
from tests.infra_mocks import STACK_FILES, Declared, StackRun, is_secret, run_program

SERVICE = "aws:ecs/service:Service"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
QUEUE = "aws:sqs/queue:Queue"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
LISTENER = "aws:lb/listener:Listener"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TABLE = "aws:dynamodb/table:Table"
FARGATE = "flashsale:fargate:FargateService"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"
FUNCTION = "aws:lambda/function:Function"
PERMISSION = "aws:lambda/permission:Permission"
# What each pattern holds itself (its direct children), as aws-ecs-patterns cut them.
PATTERNS = {
    "flashsale:patterns:LoadBalancedService": ["flashsale:web:PublicEndpoint", FARGATE],
    "flashsale:patterns:QueueWorkerService": [
        FARGATE,
        "aws:appautoscaling/target:Target",
        SCALING_POLICY,
        SCALING_POLICY,
        ALARM,
    ],
    "flashsale:messaging:OrderPipeline": [TOPIC, QUEUE, QUEUE, "aws:sqs/queuePolicy:QueuePolicy", SUBSCRIPTION, TABLE],
    "flashsale:compute:ServiceCluster": ["aws:ecs/cluster:Cluster"],
    "flashsale:storage:KeyTable": [TABLE],
}
CERTIFICATE = "arn:aws:acm:us-west-2:123456789012:certificate/0c0ffee0-0000-4000-8000-000000000000"
LOCAL_ONLY_OUTPUTS = {
    output_names.LOCAL_ENDPOINT,
    output_names.LOCAL_SERVICE_ENDPOINTS,
    output_names.LOCAL_CREDENTIALS,
    output_names.LOCAL_CAVEATS,
}
# Two or more regions only (tests/test_regions.py): the stack files deploy one.
MULTI_REGION_OUTPUTS = {output_names.ORDERS_DOMAIN_URL, output_names.REGIONAL_ASYNC_URLS}


@pytest.fixture(scope="module", params=STACK_FILES, ids=stack_of)
def stack_file(request: pytest.FixtureRequest) -> Path:
    path: Path = request.param
    return path


@pytest.fixture(scope="module")
def run(stack_file: Path) -> StackRun:
    return run_program(stack_of(stack_file), read_stack_file(stack_file))


def setting(stack_file: Path, key: str) -> Any:
    """The value the stack file gives a key, read as the program reads it (the engine's strings), else the
    default."""
    config = schema.from_config(config_strings(read_stack_file(stack_file)), source=stack_file.name)
    return getattr(config, to_snake(key))


def wait_dimensions(run: StackRun, stack_file: Path) -> dict[str, str]:
    """The buyers' wait metric's dimensions on this stack: its name, and the region its stack file deploys to."""
    region = read_stack_file(stack_file)["aws:region"]
    return {contract.WAIT_DIMENSION_STACK: run.stack, contract.WAIT_DIMENSION_REGION: region}


def containers(task_definition: Declared) -> list[dict[str, Any]]:
    return list(json.loads(task_definition["containerDefinitions"]))


def environment(task_definition: Declared) -> dict[str, str]:
    (container,) = containers(task_definition)
    return {item["name"]: item["value"] for item in container["environment"]}


def task_definition_of(run: StackRun, role: str) -> Declared:
    found = [td for td in run.of_type(TASK_DEFINITION) if environment(td)[contract.ENV_ROLE] == role]
    assert len(found) == 1, f"{run.stack}: expected one {role} task definition, got {[td.urn for td in found]}"
    return found[0]


def service_of(run: StackRun, role: str) -> Declared:
    arn = task_definition_of(run, role)["arn"]
    (service,) = [s for s in run.of_type(SERVICE) if s["taskDefinition"] == arn]
    return service


def statements(run: StackRun) -> list[tuple[Declared, dict[str, Any]]]:
    return [(p, st) for p in run.of_type(ROLE_POLICY) for st in json.loads(p["policy"])["Statement"]]


def role_grants(run: StackRun, role: str) -> dict[str, tuple[str, ...]]:
    """The task role policy of one service: resource ARN -> actions."""
    role_arn = task_definition_of(run, role)["taskRoleArn"]
    role_id = run.by_arn(role_arn).name + "-id"
    return {st["Resource"]: tuple(st["Action"]) for p, st in statements(run) if p["role"] == role_id}


# --- The stack files --------------------------------------------------------------------------------------------


def test_pulumi_project_file() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "flashsale"
    assert project["runtime"]["name"] == "python"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"


def test_stack_files_exist_for_both_levels() -> None:
    assert {stack_of(path) for path in STACK_FILES} >= {"normal", "flashsale"}


def test_every_stack_file_key_is_one_the_program_reads(stack_file: Path) -> None:
    known = {f"flashsale:{key}" for key in schema.KEYS}
    config = read_stack_file(stack_file)
    assert config["aws:region"] == "us-west-2", f"{stack_file.name}: aws:region"
    for key in config:
        assert key == "aws:region" or key in known, f"{stack_file.name}: {key} is not a key the program reads"


def test_no_secret_in_stack_files(stack_file: Path) -> None:
    config = read_stack_file(stack_file)
    for key in schema.SECRET_KEYS:
        value = config.get(f"flashsale:{key}")
        if value is not None:
            assert isinstance(value, dict) and "secure" in value, f"{stack_file.name}: {key} is in plain text"


def test_flash_sale_level_is_the_reports() -> None:
    flash, normal = ROOT / "Pulumi.flashsale.yaml", ROOT / "Pulumi.normal.yaml"
    assert setting(flash, "workerCount") == 200  # report 5.6: 200 workers keep the queue near zero
    assert setting(flash, "workerTasks") > setting(normal, "workerTasks")  # pre-scaled
    assert setting(flash, "alarmProfile") == "flashsale"
    tight, loose = ALARM_PROFILES["flashsale"], ALARM_PROFILES["normal"]
    assert tight.oldest_message_age < loose.oldest_message_age and tight.queue_depth_warning is None


# --- Config errors ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("workerCount", 5000, "workerCount must be 1..2000, got 5000"),
        ("workerCount", "many", "workerCount must be a whole number"),
        ("deploySync", "yes", "deploySync must be true or false"),
        ("paymentSeconds", 0, "paymentSeconds must be 0.001..60"),
        ("alarmProfile", "panic", "alarmProfile must be one of normal, flashsale"),
        ("alertEmails", "ops@example.com", "alertEmails must be a list of strings"),
        ("alertEmails", ["not-an-address"], "alertEmails must hold e-mail addresses"),
        ("certificateArn", "my-cert", "certificateArn must be an ACM certificate ARN"),
        ("minWorkerTasks", 5, "workerTasks must be within minWorkerTasks..maxWorkerTasks"),
        ("alertWebhookUrl", "https://hooks.example.com/T0/B0/secret", "alertWebhookUrl is a secret"),
        ("workerCont", 20, "unknown key flashsale:workerCont"),
    ],
)
def test_bad_config_fails_naming_file_and_key(key: str, value: Any, says: str) -> None:
    path = ROOT / "Pulumi.normal.yaml"
    config = read_stack_file(path) | {f"flashsale:{key}": value}
    with pytest.raises(ConfigError) as error:
        run_program("normal", config)
    assert str(error.value).startswith("Pulumi.normal.yaml: "), str(error.value)
    assert says in str(error.value)


def test_nothing_to_deploy_fails() -> None:
    config = read_stack_file(ROOT / "Pulumi.normal.yaml") | {
        "flashsale:deploySync": False,
        "flashsale:deployAsync": False,
    }
    with pytest.raises(ConfigError, match="deployAsync and deploySync are both false"):
        run_program("normal", config)


# --- Components ----------------------------------------------------------------------------------------------------


def test_every_resource_is_parented_and_named_after_its_component(run: StackRun) -> None:
    """Children are named `<component name>-<role>` (style rule 3), and logical names carry no project or stack:
    autonamed physical names inherit them, and some AWS names are capped at 32 characters."""
    components = [(r.typ, r.name) for r in run.resources if r.typ.startswith("flashsale:")]
    for r in run.resources:
        assert not r.name.startswith(f"flashsale-{run.stack}"), f"{r.urn}: logical name carries the stack prefix"
        parent_type = r.urn.split("::")[2].split("$")[-2]
        if parent_type == "pulumi:pulumi:Stack":
            assert r.typ.startswith("flashsale:"), f"{r.urn}: not parented to a component"
            continue
        assert any(typ == parent_type and r.name.startswith(f"{name}-") for typ, name in components), (
            f"{r.urn}: name does not start with its parent component's name"
        )


def test_each_pattern_holds_its_parts(run: StackRun) -> None:
    instances = [r for r in run.resources if r.typ in PATTERNS]
    assert Counter(r.typ for r in instances) == {
        "flashsale:patterns:LoadBalancedService": 2,
        "flashsale:patterns:QueueWorkerService": 1,
        "flashsale:messaging:OrderPipeline": 1,
        "flashsale:compute:ServiceCluster": 1,
        "flashsale:storage:KeyTable": 1,
    }
    for pattern in instances:
        parts = [
            r.typ
            for r in run.resources
            if r.urn.split("::")[2].split("$")[-2] == pattern.typ and r.name.startswith(f"{pattern.name}-")
        ]
        assert Counter(parts) == Counter(PATTERNS[pattern.typ]), f"{pattern.urn}: holds {sorted(parts)}"


def test_the_stack_has_one_cluster_three_services_and_its_profiles_alarms(run: StackRun, stack_file: Path) -> None:
    counts = Counter(r.typ for r in run.resources)
    thresholds = ALARM_PROFILES[setting(stack_file, "alarmProfile")]
    catalogue = [spec for spec in alarm_catalogue.ALARMS if getattr(thresholds, spec.key) is not None]
    assert counts["aws:ecs/cluster:Cluster"] == 1
    assert counts[SERVICE] == counts[TASK_DEFINITION] == counts[FARGATE] == len(ROLES)
    assert counts["aws:lb/loadBalancer:LoadBalancer"] == counts["flashsale:web:PublicEndpoint"] == 2  # web roles
    assert counts["aws:iam/role:Role"] == 2 * len(ROLES) + 2  # every role's execution and task roles, 2 functions
    assert counts[ALARM] == len(catalogue) + 1  # and the scaling guardrail


def test_a_deployed_subject_without_dimensions_fails_instead_of_dropping_its_alarms() -> None:
    dims = {
        AlarmSubject.QUEUE: {"QueueName": "q"},
        AlarmSubject.WORKER_SERVICE: {"ServiceName": "w"},
        AlarmSubject.RECEIVER_SERVICE: {"ServiceName": "r"},
        AlarmSubject.RECEIVER_ALB: {"LoadBalancer": "a"},
        AlarmSubject.BUYER_WAIT: {contract.WAIT_DIMENSION_STACK: "s", contract.WAIT_DIMENSION_REGION: "r"},
    }
    with pytest.raises(ValueError, match=r"missing \['dlq'\]"):
        Watched(systems=frozenset({System.ASYNC}), dimensions=dims)
    with pytest.raises(ValueError, match=r"not deployed \['buyer_wait', 'queue', 'receiver_alb'"):
        Watched(
            systems=frozenset({System.SYNC}),
            dimensions=dims
            | {AlarmSubject.SYNC_ALB: {"LoadBalancer": "s"}, AlarmSubject.SYNC_SERVICE: {"ServiceName": "s"}},
        )
    watched = Watched(systems=frozenset({System.ASYNC}), dimensions=dims | {AlarmSubject.DLQ: {"QueueName": "d"}})
    assert watched.has(AlarmSubject.EXPECTED_WAIT) and not watched.has(AlarmSubject.SYNC_ALB)


def test_outputs_are_the_ones_ops_reads(run: StackRun, stack_file: Path) -> None:
    names = {
        value for key, value in vars(output_names).items() if key.isupper() and not key.startswith("CAVEAT_")
    } - LOCAL_ONLY_OUTPUTS
    assert set(run.outputs) == names - MULTI_REGION_OUTPUTS
    assert run.outputs[output_names.WORKER_COUNT] == setting(stack_file, "workerCount")
    assert run.outputs[output_names.ALARM_PREFIX] == f"flashsale-{run.stack}"
    assert run.outputs[output_names.ALARM_PROFILE] == setting(stack_file, "alarmProfile")
    assert run.outputs[output_names.SALE_LEAD_SECONDS] == setting(stack_file, "saleLeadSeconds")
    services = {s["name"]: s for s in run.of_type(SERVICE)}
    assert services[run.outputs[output_names.RECEIVER_SERVICE_NAME]].name.startswith("receiver-")
    assert services[run.outputs[output_names.WORKER_SERVICE_NAME]].name.startswith("worker-")
    function = run.one(FUNCTION, "-notifier")
    assert run.outputs[output_names.NOTIFIER_FUNCTION_NAME] == function["name"]
    assert run.outputs[output_names.SWEEPER_FUNCTION_NAME] == run.one(FUNCTION, "-sweeper-fn")["name"]
    assert run.outputs[output_names.SYNC_URL].startswith("http://")
    assert "#dashboards:name=" in run.outputs[output_names.DASHBOARD_URL]


# --- Messaging and storage -----------------------------------------------------------------------------------------


def test_order_queue_has_the_reports_timings_and_a_dlq(run: StackRun) -> None:
    q = contract.ORDER_QUEUE
    queue = run.one(QUEUE, "-orders-queue")
    dlq = run.one(QUEUE, "-orders-dlq")
    assert queue["visibilityTimeoutSeconds"] == q.visibility_timeout_seconds, queue.urn
    assert queue["messageRetentionSeconds"] == q.message_retention_seconds, queue.urn
    assert queue["receiveWaitTimeSeconds"] == q.receive_wait_time_seconds, queue.urn
    redrive = json.loads(queue["redrivePolicy"])
    assert redrive == {"deadLetterTargetArn": dlq["arn"], "maxReceiveCount": 3}, f"{queue.urn}: redrive {redrive}"
    assert dlq["messageRetentionSeconds"] == 14 * 24 * 3600, dlq.urn
    assert run.outputs[output_names.QUEUE_URL] == queue["url"]
    assert run.outputs[output_names.DLQ_URL] == dlq["url"]


def test_topic_delivers_raw_to_the_queue(run: StackRun) -> None:
    queue = run.one(QUEUE, "-orders-queue")
    (sub,) = [s for s in run.of_type(SUBSCRIPTION) if s["protocol"] == "sqs"]
    assert sub["endpoint"] == queue["arn"], sub.urn
    assert sub["topic"] == run.outputs[output_names.TOPIC_ARN], sub.urn
    assert sub["rawMessageDelivery"] is True, f"{sub.urn}: raw delivery off"


def test_queue_policy_admits_only_its_topic(run: StackRun) -> None:
    (policy,) = run.of_type("aws:sqs/queuePolicy:QueuePolicy")
    queue = run.one(QUEUE, "-orders-queue")
    assert policy["queueUrl"] == queue["url"], policy.urn
    document = json.loads(policy["policy"])
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow", policy.urn
        assert statement["Principal"] == {"Service": "sns.amazonaws.com"}, policy.urn
        assert statement["Action"] == "sqs:SendMessage", policy.urn
        assert statement["Resource"] == queue["arn"], policy.urn
        condition = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
        assert condition == run.outputs[output_names.TOPIC_ARN], f"{policy.urn}: admits {condition}"


def test_tables_are_on_demand_and_expire_key_records(run: StackRun) -> None:
    """The orders table (orders, and the receiver's Idempotency-Key records) and the sync service's key table."""
    tables = {name: run.one(TABLE, name) for name in ("-orders-table", "sync-keys-table")}
    for table in tables.values():
        assert table["billingMode"] == "PAY_PER_REQUEST", table.urn
        assert table["hashKey"] == contract.ORDER_KEY, table.urn
        assert table["ttl"] == {"attributeName": contract.IDEMPOTENCY_TTL_ATTRIBUTE, "enabled": True}, table.urn
    assert run.outputs[output_names.ORDERS_TABLE] == tables["-orders-table"]["name"]


def test_sync_tasks_share_one_key_table(run: StackRun) -> None:
    """Every sync task gets the same table (a retry the ALB sends to another task finds the first one's record)."""
    td = task_definition_of(run, "sync")
    assert environment(td)[contract.ENV_KEYS_TABLE] == run.one(TABLE, "sync-keys-table")["name"], td.urn


def test_alarm_topic_key_lets_cloudwatch_publish(run: StackRun) -> None:
    (key,) = run.of_type("aws:kms/key:Key")
    alarm_topic = run.by_arn(run.outputs[output_names.ALARM_TOPIC_ARN])
    assert alarm_topic["kmsMasterKeyId"] == key["arn"], alarm_topic.urn
    assert key["enableKeyRotation"] is True, key.urn
    principals = [st["Principal"] for st in json.loads(key["policy"])["Statement"]]
    assert {"Service": "cloudwatch.amazonaws.com"} in principals, f"{key.urn}: CloudWatch cannot use the key"


# --- Compute ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_task_definition_is_the_reports_size_and_hardened(run: StackRun, role: str) -> None:
    td = task_definition_of(run, role)
    assert (td["cpu"], td["memory"]) == ("256", "512"), td.urn
    assert td["requiresCompatibilities"] == ["FARGATE"] and td["networkMode"] == "awsvpc", td.urn
    assert td["runtimePlatform"]["cpuArchitecture"] == "X86_64", td.urn
    (container,) = containers(td)
    (image,) = run.of_type("awsx:ecr:Image")
    assert container["image"] == image["imageUri"], f"{td.urn}: not the shared service image"
    assert (image["context"], image["platform"]) == (str(ROOT / "app"), contract.IMAGE_PLATFORM), image.urn
    tmp = [m for m in container["mountPoints"] if m["containerPath"] == contract.WRITABLE_PATH]
    assert tmp and tmp[0]["sourceVolume"] in {v["name"] for v in td["volumes"]}, f"{td.urn}: no writable /tmp"
    assert container["logConfiguration"]["logDriver"] == "awslogs", td.urn
    # The image's HEALTHCHECK says the same (tests/test_image.py); ECS runs only this one.
    check = healthcheck.HEALTH_CHECK
    assert container["healthCheck"] == {
        "command": ["CMD", *check.command],
        "interval": check.interval_seconds,
        "timeout": check.timeout_seconds,
        "retries": check.retries,
        "startPeriod": check.start_period_seconds,
    }, f"{td.urn}: container health check"
    assert (ROOT / "app" / "healthcheck.py").is_file()
    exposed = [p["containerPort"] for p in container["portMappings"]]
    assert exposed == ([] if role == "worker" else [contract.CONTAINER_PORT]), f"{td.urn}: ports {exposed}"


def test_worker_runs_worker_count_payments(run: StackRun, stack_file: Path) -> None:
    td = task_definition_of(run, "worker")
    env = environment(td)
    assert env[contract.ENV_WORKER_COUNT] == str(setting(stack_file, "workerCount")), td.urn
    assert env[contract.ENV_QUEUE_URL] == run.outputs[output_names.QUEUE_URL], td.urn
    assert env[contract.ENV_ORDERS_TABLE] == run.outputs[output_names.ORDERS_TABLE], td.urn
    assert float(env[contract.ENV_PAYMENT_SECONDS]) == setting(stack_file, "paymentSeconds"), td.urn


def test_receiver_publishes_to_its_topic(run: StackRun, stack_file: Path) -> None:
    td = task_definition_of(run, "receiver")
    env = environment(td)
    assert env[contract.ENV_TOPIC_ARN] == run.outputs[output_names.TOPIC_ARN], td.urn
    assert env[contract.ENV_ORDERS_TABLE] == run.outputs[output_names.ORDERS_TABLE], td.urn
    # The receiver reports num_workers and estimates the expected wait from the workers' settings and the worker
    # service's running tasks.
    assert env[contract.ENV_WORKER_COUNT] == str(setting(stack_file, "workerCount")), td.urn
    assert float(env[contract.ENV_PAYMENT_SECONDS]) == setting(stack_file, "paymentSeconds"), td.urn
    assert env[contract.ENV_WORKER_CLUSTER] == run.outputs[output_names.CLUSTER_NAME], td.urn
    assert env[contract.ENV_WORKER_SERVICE] == service_of(run, "worker")["name"], td.urn


@pytest.mark.parametrize(
    ("role", "count_key"), [("sync", "syncTaskCount"), ("receiver", "receiverTasks"), ("worker", "workerTasks")]
)
def test_services_leave_desired_count_to_scaling_and_roll_back(
    run: StackRun, stack_file: Path, role: str, count_key: str
) -> None:
    service = service_of(run, role)
    assert service["desiredCount"] == setting(stack_file, count_key), service.urn
    assert service.opts is not None and "desiredCount" in (service.opts.ignore_changes or []), (
        f"{service.urn}: pulumi up would fight auto-scaling over desiredCount"
    )
    assert service["launchType"] == "FARGATE", service.urn
    network = service["networkConfiguration"]
    tasks_sg = run.one("aws:ec2/securityGroup:SecurityGroup", "-net-tasks")
    assert network["securityGroups"] == [tasks_sg.name + "-id"], f"{service.urn}: not in the tasks security group"


def ignored(resource: Declared) -> set[str]:
    """The properties a resource's `ignore_changes` names, in Pulumi's spelling (the SDK translates snake_case)."""
    return {to_camel(name) for name in (resource.opts.ignore_changes or [])} if resource.opts else set()


def test_what_the_run_time_changes_is_ignored(run: StackRun) -> None:
    """ops.prescale and the sale calendar own MinCapacity, ops.alarms apply the thresholds: a refresh-and-up in a
    sale must not put them back (tests/test_prescale.py and tests/test_alarms.py run one on the emulators)."""
    (target,) = run.of_type("aws:appautoscaling/target:Target")
    assert "minCapacity" in ignored(target), f"{target.urn}: pulumi up --refresh would undo ops.prescale"
    assert "maxCapacity" not in ignored(target), f"{target.urn}: maxWorkerTasks would no longer apply"
    for alarm in run.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        if alarm["name"].startswith(run.outputs[output_names.ALARM_PREFIX] + "-"):  # the catalogue's
            assert "threshold" in ignored(alarm), f"{alarm.urn}: pulumi up --refresh would undo ops.alarms apply"


@pytest.mark.parametrize("role", ["sync", "receiver"])
def test_web_services_sit_behind_their_alb(run: StackRun, role: str) -> None:
    service = service_of(run, role)
    (lb,) = service["loadBalancers"]
    target_group = run.by_arn(lb["targetGroupArn"])
    assert (lb["containerName"], lb["containerPort"]) == (role, contract.CONTAINER_PORT), service.urn
    check = target_group["healthCheck"]
    assert (check["path"], check["interval"]) == (contract.HEALTH_PATH, 30), target_group.urn
    assert target_group["targetType"] == "ip", target_group.urn
    assert service.opts is not None and service.opts.depends_on, f"{service.urn}: may start before its listener"


def test_every_service_runs_in_the_one_cluster_with_container_insights(run: StackRun) -> None:
    (cluster,) = run.of_type("aws:ecs/cluster:Cluster")
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"], cluster.urn
    assert run.outputs[output_names.CLUSTER_NAME] == cluster["name"]
    for service in run.of_type(SERVICE):
        assert service["cluster"] == cluster["arn"], f"{service.urn}: runs in {service['cluster']}"


def test_workers_scale_on_backlog_per_task(run: StackRun, stack_file: Path) -> None:
    (target,) = run.of_type("aws:appautoscaling/target:Target")
    worker = service_of(run, "worker")
    cluster = run.outputs[output_names.CLUSTER_NAME]
    assert target["resourceId"] == f"service/{cluster}/{worker['name']}", target.urn
    assert target["scalableDimension"] == "ecs:service:DesiredCount", target.urn
    assert target["minCapacity"] == setting(stack_file, "minWorkerTasks"), target.urn
    assert target["maxCapacity"] == setting(stack_file, "maxWorkerTasks"), target.urn
    (policy,) = [
        p for p in run.of_type("aws:appautoscaling/policy:Policy") if p["policyType"] == "TargetTrackingScaling"
    ]
    assert policy["resourceId"] == target["resourceId"], policy.urn
    tracking = policy["targetTrackingScalingPolicyConfiguration"]
    expected = (
        setting(stack_file, "acceptableLatencySeconds")
        / setting(stack_file, "paymentSeconds")
        * setting(stack_file, "workerCount")
    )
    assert tracking["targetValue"] == pytest.approx(expected), f"{policy.urn}: target {tracking['targetValue']}"
    metrics = {m["id"]: m for m in tracking["customizedMetricSpecification"]["metrics"]}
    (result,) = [m for m in metrics.values() if m["returnData"]]
    assert result["expression"] == "m1 / m2", policy.urn
    visible, tasks = metrics["m1"]["metricStat"]["metric"], metrics["m2"]["metricStat"]["metric"]
    assert (visible["namespace"], visible["metricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert visible["dimensions"] == [{"name": "QueueName", "value": run.one(QUEUE, "-orders-queue")["name"]}]
    assert (tasks["namespace"], tasks["metricName"]) == ("ECS/ContainerInsights", "RunningTaskCount")
    assert {"name": "ServiceName", "value": worker["name"]} in tasks["dimensions"], policy.urn
    # The expected-wait alarms' queries, statistic included: the scaling acts on the backlog the alarms measure.
    assert {metrics[key]["metricStat"]["stat"] for key in ("m1", "m2")} == {expected_wait.STATISTIC}, policy.urn


def test_a_guardrail_adds_tasks_when_the_oldest_order_is_older_than_the_acceptable_latency(
    run: StackRun, stack_file: Path
) -> None:
    (target,) = run.of_type("aws:appautoscaling/target:Target")
    (step,) = [p for p in run.of_type("aws:appautoscaling/policy:Policy") if p["policyType"] == "StepScaling"]
    assert step["resourceId"] == target["resourceId"], step.urn
    configuration = step["stepScalingPolicyConfiguration"]
    assert configuration["adjustmentType"] == "PercentChangeInCapacity" and configuration["minAdjustmentMagnitude"] == 1
    assert all(a["scalingAdjustment"] > 0 for a in configuration["stepAdjustments"]), f"{step.urn}: only adds"
    (alarm,) = [a for a in run.of_type(ALARM) if a["alarmActions"] == [step["arn"]]]
    assert (alarm["namespace"], alarm["metricName"]) == ("AWS/SQS", "ApproximateAgeOfOldestMessage"), alarm.urn
    assert alarm["dimensions"] == {"QueueName": run.one(QUEUE, "-orders-queue")["name"]}, alarm.urn
    assert alarm["threshold"] == setting(stack_file, "acceptableLatencySeconds"), alarm.urn


def test_no_alarm_reaches_critical_while_the_scaling_would_not_yet_act(run: StackRun, stack_file: Path) -> None:
    """At the minimum task count (nothing scaled out yet), every CRITICAL page must need more than the scaling
    triggers need: backlog per task over the target (expected wait over the acceptable latency), or an oldest order
    older than the acceptable latency (the guardrail)."""
    latency = setting(stack_file, "acceptableLatencySeconds")
    target = latency / setting(stack_file, "paymentSeconds") * setting(stack_file, "workerCount")  # per task
    scaling_backlog = setting(stack_file, "minWorkerTasks") * target  # waiting orders at which scaling acts
    by_key = {a["name"].removeprefix(f"flashsale-{run.stack}-").replace("-", "_"): a for a in run.of_type(ALARM)}
    for spec in alarm_catalogue.ALARMS:
        if spec.severity != "CRITICAL" or spec.key not in by_key:
            continue
        threshold = by_key[spec.key]["threshold"]
        if spec.subject is AlarmSubject.EXPECTED_WAIT:
            assert threshold >= latency, f"{by_key[spec.key].urn}: pages at {threshold} s of wait, scaling at {latency}"
        elif spec.metric_name == "ApproximateNumberOfMessagesVisible":
            assert threshold >= scaling_backlog, (
                f"{by_key[spec.key].urn}: pages at {threshold:g} waiting, the scaling acts above {scaling_backlog:g}"
            )
        elif spec.metric_name == "ApproximateAgeOfOldestMessage":
            assert threshold >= latency, f"{by_key[spec.key].urn}: pages at age {threshold}, guardrail at {latency}"


# --- Security (the rules any stack must keep are the policy pack's: tests/test_policies.py) ---------------------------


@pytest.mark.parametrize("role", ROLES)
def test_containers_stop_after_the_worker_drain_bound(run: StackRun, role: str) -> None:
    (container,) = containers(task_definition_of(run, role))
    assert container["stopTimeout"] == contract.STOP_TIMEOUT_SECONDS, task_definition_of(run, role).urn
    assert contract.SERVICE_DEFAULTS.drain_seconds < contract.STOP_TIMEOUT_SECONDS  # draining is never SIGKILLed


def test_task_roles_hold_exactly_the_grants_of_their_uses(run: StackRun) -> None:
    topic = run.outputs[output_names.TOPIC_ARN]
    queue = run.one(QUEUE, "-orders-queue")["arn"]
    table = run.one("aws:dynamodb/table:Table", "-orders-table")["arn"]
    # The agent protects a task with the task role's credentials: without this every call is refused on AWS.
    cluster_tasks = f"arn:aws:ecs:us-west-2:123456789012:task/{run.outputs[output_names.CLUSTER_NAME]}/*"
    worker_service = service_of(run, "worker").name + "-id"  # its running tasks, for the order-status estimate
    expected = {
        "sync": {run.one(TABLE, "sync-keys-table")["arn"]: keys.RECORD_ACTIONS},
        "receiver": {
            topic: pipeline.PUBLISH_ACTIONS,
            table: pipeline.WRITE_ORDERS_ACTIONS,
            queue: pipeline.QUEUE_DEPTH_ACTIONS,
            worker_service: ("ecs:DescribeServices",),
        },
        "worker": {
            queue: pipeline.CONSUME_ACTIONS,
            table: pipeline.SETTLE_ORDERS_ACTIONS,
            cluster_tasks: cluster.TASK_PROTECTION_ACTIONS,
        },
    }
    for role, grants in expected.items():
        assert role_grants(run, role) == grants, f"{task_definition_of(run, role).urn}: task role grants"


def test_tasks_admit_only_the_alb(run: StackRun) -> None:
    alb_sg = run.one("aws:ec2/securityGroup:SecurityGroup", "-net-alb")
    tasks_sg = run.one("aws:ec2/securityGroup:SecurityGroup", "-net-tasks")
    into_tasks = [r for r in run.of_type(INGRESS) if r["securityGroupId"] == tasks_sg.name + "-id"]
    assert into_tasks, "no ingress to the tasks"
    for rule in into_tasks:
        assert rule["referencedSecurityGroupId"] == alb_sg.name + "-id", f"{rule.urn}: admits more than the ALB"
        assert "cidrIpv4" not in rule.state, f"{rule.urn}: open to an address range"
        assert (rule["fromPort"], rule["toPort"]) == (contract.CONTAINER_PORT, contract.CONTAINER_PORT), rule.urn
    into_alb = [r for r in run.of_type(INGRESS) if r["securityGroupId"] == alb_sg.name + "-id"]
    assert {(r["fromPort"], r["toPort"]) for r in into_alb} == {(80, 80)}, "ALB opens more than port 80 on HTTP"
    for rule in run.of_type(EGRESS):
        if rule["securityGroupId"] == alb_sg.name + "-id":
            assert rule["referencedSecurityGroupId"] == tasks_sg.name + "-id", f"{rule.urn}: ALB egress not to tasks"


def test_alb_serves_plain_http_without_a_certificate(run: StackRun) -> None:
    listeners = run.of_type(LISTENER)
    assert len(listeners) == 2
    for listener in listeners:
        assert (listener["protocol"], listener["port"]) == ("HTTP", 80), listener.urn
        assert listener["defaultActions"][0]["type"] == "forward", listener.urn


def test_alb_serves_https_and_redirects_http_with_a_certificate() -> None:
    config = read_stack_file(ROOT / "Pulumi.normal.yaml") | {"flashsale:certificateArn": CERTIFICATE}
    run = run_program("normal", config)
    listeners = run.of_type(LISTENER)
    https = [x for x in listeners if x["protocol"] == "HTTPS"]
    http = [x for x in listeners if x["protocol"] == "HTTP"]
    assert len(https) == len(http) == 2
    for listener in https:
        assert listener["port"] == 443 and listener["certificateArn"] == CERTIFICATE, listener.urn
        assert listener["sslPolicy"].startswith("ELBSecurityPolicy-TLS13"), listener.urn
        assert listener["defaultActions"][0]["type"] == "forward", listener.urn
    for listener in http:
        (action,) = listener["defaultActions"]
        assert action["type"] == "redirect", f"{listener.urn}: HTTP still serves"
        assert action["redirect"] == {"port": "443", "protocol": "HTTPS", "statusCode": "HTTP_301"}, listener.urn
    ports = {r["fromPort"] for r in run.of_type(INGRESS) if r.get("cidrIpv4")}
    assert ports == {80, 443}
    assert run.outputs[output_names.ASYNC_URL].startswith("https://")


# --- Alarms, alerts, dashboard -------------------------------------------------------------------------------------


def test_every_catalogue_alarm_watches_its_metric_with_the_profile_threshold(run: StackRun, stack_file: Path) -> None:
    thresholds = ALARM_PROFILES[setting(stack_file, "alarmProfile")]
    latency = setting(stack_file, "acceptableLatencySeconds")
    prefix = f"flashsale-{run.stack}-"
    alarms = {a["name"]: a for a in run.of_type(ALARM) if a["name"].startswith(prefix)}
    alarm_topic = run.outputs[output_names.ALARM_TOPIC_ARN]
    dimensions = {
        AlarmSubject.QUEUE: {"QueueName": run.one(QUEUE, "-orders-queue")["name"]},
        AlarmSubject.DLQ: {"QueueName": run.one(QUEUE, "-orders-dlq")["name"]},
        AlarmSubject.WORKER_SERVICE: {
            "ClusterName": run.outputs[output_names.CLUSTER_NAME],
            "ServiceName": run.outputs[output_names.WORKER_SERVICE_NAME],
        },
        AlarmSubject.RECEIVER_ALB: {
            "LoadBalancer": run.one("aws:lb/loadBalancer:LoadBalancer", "-receiver-web-alb")["arnSuffix"]
        },
        # What the worker writes into its payment lines: its task's stack and region (test_the_worker_is_told_...).
        AlarmSubject.BUYER_WAIT: wait_dimensions(run, stack_file),
    }
    expected = [s for s in alarm_catalogue.ALARMS if getattr(thresholds, s.key) is not None]
    assert sorted(alarms) == sorted(alarm_catalogue.alarm_name(prefix.rstrip("-"), s.key) for s in expected)
    for spec in expected:
        alarm = alarms[alarm_catalogue.alarm_name(prefix.rstrip("-"), spec.key)]
        threshold = alarm_threshold(thresholds, spec, latency)
        assert alarm["threshold"] == threshold, f"{alarm.urn}: threshold {alarm['threshold']}"
        assert alarm["comparisonOperator"] == spec.comparison, alarm.urn
        assert alarm["alarmActions"] == alarm["okActions"] == [alarm_topic], f"{alarm.urn}: actions"
        assert spec.action in alarm["alarmDescription"], alarm.urn
        if spec.subject is AlarmSubject.EXPECTED_WAIT:
            queries = {q["id"]: q for q in alarm["metricQueries"]}
            assert queries["e1"]["returnData"] and queries["e1"]["expression"] == expected_wait.expression(
                setting(stack_file, "workerCount"), setting(stack_file, "paymentSeconds")
            ), alarm.urn
            assert queries["m1"]["metric"]["stat"] == queries["m2"]["metric"]["stat"] == expected_wait.STATISTIC
            assert queries["m1"]["metric"]["dimensions"] == dimensions[AlarmSubject.QUEUE], alarm.urn
            assert queries["m2"]["metric"]["dimensions"] == dimensions[AlarmSubject.WORKER_SERVICE], alarm.urn
            assert queries["m2"]["metric"]["metricName"] == "RunningTaskCount", alarm.urn
            continue
        assert (alarm["namespace"], alarm["metricName"]) == (spec.namespace, spec.metric_name), alarm.urn
        statistic = "extendedStatistic" if spec.percentile else "statistic"
        assert alarm[statistic] == spec.statistic and len({"statistic", "extendedStatistic"} & set(alarm.state)) == 1, (
            f"{alarm.urn}: {statistic}"
        )
        assert alarm["treatMissingData"] == "notBreaching", alarm.urn
        assert alarm["period"] == spec.period_seconds, alarm.urn
        assert alarm["dimensions"] == dimensions[spec.subject], f"{alarm.urn}: watches {alarm['dimensions']}"


def test_the_buyers_wait_alarm_is_the_p95_of_the_workers_metric_at_the_acceptable_latency(
    run: StackRun, stack_file: Path
) -> None:
    (alarm,) = [a for a in run.of_type(ALARM) if a["name"] == f"flashsale-{run.stack}-buyer-wait-p95"]
    assert (alarm["namespace"], alarm["metricName"]) == (contract.WAIT_METRIC_NAMESPACE, contract.WAIT_METRIC_NAME)
    assert alarm["extendedStatistic"] == "p95" and "statistic" not in alarm.state, alarm.urn
    assert alarm["threshold"] == setting(stack_file, "acceptableLatencySeconds"), alarm.urn  # the scaling's aim
    assert alarm["comparisonOperator"] == "GreaterThanThreshold", alarm.urn
    assert alarm["evaluateLowSampleCountPercentiles"] == "evaluate", alarm.urn
    # No finished order, no wait: the alarm clears after the drain (queue-reading alarms page on stuck workers).
    assert alarm["treatMissingData"] == "notBreaching", alarm.urn
    assert alarm["dimensions"] == wait_dimensions(run, stack_file), alarm.urn


def test_the_worker_is_told_its_stack_for_the_wait_metric(run: StackRun) -> None:
    worker = task_definition_of(run, "worker")
    assert environment(worker)[contract.ENV_STACK_NAME] == run.stack, worker.urn
    others = [td for td in run.of_type(TASK_DEFINITION) if td is not worker]
    assert all(contract.ENV_STACK_NAME not in environment(td) for td in others), "only the worker writes the metric"


def test_the_reports_alarm_levels_are_in_the_normal_stack() -> None:
    run = run_program("normal", read_stack_file(ROOT / "Pulumi.normal.yaml"))
    thresholds = {
        a["name"].removeprefix("flashsale-normal-"): a["threshold"]
        for a in run.of_type(ALARM)
        if a["name"].startswith("flashsale-normal-")
    }
    assert thresholds["queue-depth-warning"] == 1_000
    assert thresholds["queue-depth-critical"] == 5_000
    assert thresholds["oldest-message-age"] == 30 * 60
    assert thresholds["worker-cpu-high"] == 90
    assert thresholds["dlq-not-empty"] == 0


def test_notifier_turns_alarms_into_alerts(run: StackRun, stack_file: Path) -> None:
    function = run.one(FUNCTION, "-notifier")
    alarm_topic = run.outputs[output_names.ALARM_TOPIC_ARN]
    alerts_topic = run.outputs[output_names.ALERTS_TOPIC_ARN]
    assert function["runtime"] == "python3.12" and function["handler"] == "app.notifier.handler", function.urn
    worker = service_of(run, "worker")
    assert function["environment"]["variables"] == {
        contract.ENV_ALERTS_TOPIC_ARN: alerts_topic,
        contract.ENV_WORKER_CLUSTER: run.outputs[output_names.CLUSTER_NAME],
        contract.ENV_WORKER_SERVICE: worker["name"],
        contract.ENV_ACCEPTABLE_LATENCY: str(setting(stack_file, "acceptableLatencySeconds")),
    }, function.urn
    assets = function["code"].assets
    assert set(assets) == {
        "app/__init__.py",
        "app/notifier.py",
        "app/contract.py",
        "app/alarm_catalogue.py",
        "app/expected_wait.py",
        "app/aws.py",
    }, function.urn
    for name, asset in assets.items():
        assert Path(asset.path) == ROOT / name and Path(asset.path).is_file(), (
            f"{function.urn}: {name} from {asset.path}"
        )
    subs = run.of_type(SUBSCRIPTION)
    assert [
        s for s in subs if s["protocol"] == "lambda" and s["topic"] == alarm_topic and s["endpoint"] == function["arn"]
    ]
    permission = run.one(PERMISSION, "-notifier-invoke")
    assert (permission["principal"], permission["sourceArn"]) == ("sns.amazonaws.com", alarm_topic), permission.urn
    emails = sorted(s["endpoint"] for s in subs if s["protocol"] == "email" and s["topic"] == alerts_topic)
    assert emails == sorted(setting(stack_file, "alertEmails"))
    dlq = run.one(QUEUE, "-notifier-dlq")
    assert function["deadLetterConfig"] == {"targetArn": dlq["arn"]}, f"{function.urn}: a failed alarm leaves no trace"
    grants = [st for p, st in statements(run) if p["role"] == run.by_arn(function["role"]).name + "-id"]
    assert {r for st in grants for r in [st["Resource"]] if "log-stream" not in r} == {
        alerts_topic,
        worker.name + "-id",
        dlq["arn"],
    }, function.urn  # the worker service: its running tasks
    assert {a for st in grants for a in st["Action"]} == {
        "sns:Publish",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "ecs:DescribeServices",
        "sqs:SendMessage",
    }


def test_the_orphan_sweeper_runs_daily_on_the_orders_table_with_exactly_its_calls(run: StackRun) -> None:
    """Issue 24 item 6: a scheduled Lambda closes orders pending past the orphan bound (app.sweeper)."""
    function = run.one(FUNCTION, "-sweeper-fn")
    table = run.one(TABLE, "-orders-table")
    assert function["handler"] == "app.sweeper.handler" and function["runtime"] == "python3.12", function.urn
    assert function["environment"]["variables"] == {contract.ENV_ORDERS_TABLE: table["name"]}, function.urn
    assets = function["code"].assets
    assert {"app/sweeper.py", "app/store.py", "app/contract.py"} <= set(assets), function.urn
    assert all(Path(a.path) == ROOT / name and Path(a.path).is_file() for name, a in assets.items()), function.urn
    dlq = run.one(QUEUE, "-sweeper-fn-dlq")
    assert function["deadLetterConfig"] == {"targetArn": dlq["arn"]}, function.urn
    logs = run.one("aws:cloudwatch/logGroup:LogGroup", "-sweeper-fn-logs")
    assert function["loggingConfig"]["logGroup"] == logs["name"] and logs["retentionInDays"] > 0, function.urn
    rule = run.one("aws:cloudwatch/eventRule:EventRule", "-sweeper-schedule")
    assert rule["scheduleExpression"] == contract.SWEEP_SCHEDULE, rule.urn
    target = run.one("aws:cloudwatch/eventTarget:EventTarget", "-sweeper-target")
    assert (target["rule"], target["arn"]) == (rule["name"], function["arn"]), target.urn
    permission = run.one(PERMISSION, "-sweeper-invoke")
    assert (permission["principal"], permission["sourceArn"], permission["function"]) == (
        "events.amazonaws.com",
        rule["arn"],
        function["name"],
    ), permission.urn
    grants = {
        st["Resource"]: tuple(st["Action"])
        for p, st in statements(run)
        if p["role"] == run.by_arn(function["role"]).name + "-id"
    }
    (log_streams,) = [r for r in grants if "log-stream" in r]
    assert grants == {
        table["arn"]: ("dynamodb:Scan", "dynamodb:PartiQLUpdate"),
        log_streams: ("logs:CreateLogStream", "logs:PutLogEvents"),
        dlq["arn"]: ("sqs:SendMessage",),
    }, function.urn


def test_alert_emails_subscribe_and_the_notifier_posts_to_the_secret_webhook() -> None:
    url = "https://hooks.example.com/services/T0/B0/XYZ"
    config = read_stack_file(ROOT / "Pulumi.normal.yaml") | {
        "flashsale:alertEmails": ["oncall@example.com", "lead@example.com"],
        "flashsale:alertWebhookUrl": url,
    }
    run = run_program("normal", config, secret_keys=["flashsale:alertWebhookUrl"])
    alerts_topic = run.outputs[output_names.ALERTS_TOPIC_ARN]
    subs = [s for s in run.of_type(SUBSCRIPTION) if s["topic"] == alerts_topic]
    emails = {s["endpoint"] for s in subs if s["protocol"] == "email"}
    assert emails == {"oncall@example.com", "lead@example.com"}
    assert [s for s in subs if s["protocol"] in ("http", "https")] == [], "a chat webhook cannot confirm SNS"
    function = run.one(FUNCTION, "-notifier")
    (secret,) = run.of_type("aws:secretsmanager/secret:Secret")
    (version,) = run.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert version["secretId"] == secret.name + "-id", version.urn
    assert is_secret(version["secretString"]) and version["secretString"]["value"] == url, (
        f"{version.urn}: webhook URL is not kept secret in the state"
    )
    assert function["environment"]["variables"][contract.ENV_ALERT_WEBHOOK_SECRET_ARN] == secret["arn"], function.urn
    assert url not in json.dumps(function.state, default=str), f"{function.urn}: the URL is in the configuration"
    grants = [st for p, st in statements(run) if p["role"] == run.by_arn(function["role"]).name + "-id"]
    assert {"Resource": secret["arn"], "Action": ["secretsmanager:GetSecretValue"], "Effect": "Allow"} in grants


def test_dashboard_shows_both_systems(run: StackRun) -> None:
    (dashboard,) = run.of_type("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dashboard["dashboardBody"])
    titles = {w["properties"]["title"] for w in body["widgets"]}
    assert {
        "Order queue",
        "Age of oldest order (s)",
        "Workers CPU and memory (%)",
        "Running tasks",
        "Receiver ALB requests and 5xx",
        "Receiver ALB latency (s)",
        "Sync ALB requests and 5xx",
    } <= titles
    metrics = {m[1] for w in body["widgets"] for m in w["properties"]["metrics"] if len(m) > 1}
    assert {
        "ApproximateNumberOfMessagesVisible",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateAgeOfOldestMessage",
        "CPUUtilization",
        "MemoryUtilization",
        "RunningTaskCount",
        "RequestCount",
        "TargetResponseTime",
        "HTTPCode_Target_5XX_Count",
    } <= metrics
    assert run.one(QUEUE, "-orders-queue")["name"] in dashboard["dashboardBody"]


def test_the_dashboard_draws_the_expected_wait_as_the_alarms_compute_it(run: StackRun) -> None:
    (dashboard,) = run.of_type("aws:cloudwatch/dashboard:Dashboard")
    (widget,) = [
        w for w in json.loads(dashboard["dashboardBody"])["widgets"] if w["properties"]["title"] == "Expected wait (s)"
    ]
    *terms, (result,) = widget["properties"]["metrics"]
    (alarm,) = [a for a in run.of_type(ALARM) if a["name"].endswith("-expected-wait-warning")]
    queries = {q["id"]: q for q in alarm["metricQueries"]}
    assert result["expression"] == queries["e1"]["expression"], dashboard.urn
    for *metric, options in terms:
        query = queries[options["id"]]["metric"]
        assert metric[:2] == [query["namespace"], query["metricName"]], dashboard.urn
        assert dict(zip(metric[2::2], metric[3::2], strict=True)) == query["dimensions"], dashboard.urn
        assert options["stat"] == query["stat"], dashboard.urn


def test_the_dashboard_draws_the_buyers_wait_percentiles_beside_the_acceptable_latency(
    run: StackRun, stack_file: Path
) -> None:
    (dashboard,) = run.of_type("aws:cloudwatch/dashboard:Dashboard")
    widgets = json.loads(dashboard["dashboardBody"])["widgets"]
    (widget,) = [w for w in widgets if w["properties"]["title"] == "Buyers' wait, acceptance to paid (s)"]
    (alarm,) = [a for a in run.of_type(ALARM) if a["name"].endswith("-buyer-wait-p95")]
    lines = widget["properties"]["metrics"]
    assert [line[-1]["stat"] for line in lines] == ["p50", "p95", "p99"], dashboard.urn
    for *metric, _ in lines:
        assert metric[:2] == [alarm["namespace"], alarm["metricName"]], dashboard.urn
        assert dict(zip(metric[2::2], metric[3::2], strict=True)) == alarm["dimensions"], dashboard.urn
    (line,) = widget["properties"]["annotations"]["horizontal"]
    assert line["value"] == setting(stack_file, "acceptableLatencySeconds") == alarm["threshold"], dashboard.urn


# --- Optional systems -----------------------------------------------------------------------------------------------


def test_deploy_sync_false_builds_no_sync_resources() -> None:
    config = read_stack_file(ROOT / "Pulumi.normal.yaml") | {"flashsale:deploySync": False}
    run = run_program("normal", config)
    sync = [r.urn for r in run.resources if r.name == "sync" or r.name.startswith("sync-")]
    assert sync == [], f"sync resources built: {sync}"
    assert output_names.SYNC_URL not in run.outputs
    assert len(run.of_type(SERVICE)) == 2 and len(run.of_type("aws:lb/loadBalancer:LoadBalancer")) == 1
    body = run.of_type("aws:cloudwatch/dashboard:Dashboard")[0]["dashboardBody"]
    assert "Sync ALB" not in body


def test_deploy_async_false_builds_only_the_sync_system() -> None:
    config = read_stack_file(ROOT / "Pulumi.normal.yaml") | {"flashsale:deployAsync": False}
    run = run_program("normal", config)
    assert [q.name for q in run.of_type(QUEUE)] == ["alerts-notifier-dlq"] and run.of_type(ALARM) == []
    assert [f.name for f in run.of_type(FUNCTION)] == ["alerts-notifier"]  # no orders, no orphan sweeper
    assert [environment(td)[contract.ENV_ROLE] for td in run.of_type(TASK_DEFINITION)] == ["sync"]
    assert output_names.QUEUE_URL not in run.outputs and output_names.SYNC_URL in run.outputs
