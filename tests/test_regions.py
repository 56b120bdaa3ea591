"""Multi-region (docs/multi-region.md) under mocks: the `regions` config, one region unchanged, and with two or more a
copy of the async system per region under that region's provider, a global orders table, latency routing with health
checks, replication alarms and a dashboard of every region. The mocks compute ARNs, URLs and DNS names in the region
of each resource's provider, so a resource that missed its region's provider shows the primary's."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from app import alarm_catalogue, contract
from app.alarm_catalogue import System
from app.roles import Role
from components import pipeline, routing
from components.settings import ConfigError
from stackconfig import output_names
from stackconfig.alarm_profiles import ALARM_PROFILES
from stackconfig.files import ROOT
from stackconfig.regions import KNOWN_REGIONS, short_name
from stackconfig.schema import read_stack_file
from tests.infra_mocks import ALB_ZONES, PROVIDER, Declared, StackRun, run_program
from tests.test_infra import ALARM, MULTI_REGION_OUTPUTS, QUEUE, SERVICE, TABLE, TASK_DEFINITION, environment

PRIMARY, SECOND, THIRD = "us-west-2", "us-east-2", "eu-west-1"
ZONE, DOMAIN = "Z0123456789ABCDEFGHIJ", "orders.example.com"
REGIONAL = "flashsale:regions:RegionalCopy"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
RECORD = "aws:route53/record:Record"
ALB = "aws:lb/loadBalancer:LoadBalancer"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
NAME_LIMIT = 32  # ALB and target group names on AWS
AUTONAME_SUFFIX = 8  # Pulumi's "-" and 7 random characters


def config(*regions: str, **more: Any) -> dict[str, Any]:
    routed = {"flashsale:hostedZoneId": ZONE, "flashsale:ordersDomain": DOMAIN} if len(regions) > 1 else {}
    return (
        read_stack_file(ROOT / "Pulumi.normal.yaml")
        | {"flashsale:regions": list(regions)}
        | routed
        | {f"flashsale:{key}": value for key, value in more.items()}
    )


@pytest.fixture(scope="module")
def two() -> StackRun:
    return run_program("normal", config(PRIMARY, SECOND))


def region_of_arn(arn: str) -> str:
    return arn.split(":")[3]


def in_copy(run: StackRun, region: str) -> list[Declared]:
    """The resources of a region's copy: its RegionalCopy and everything named after it (`use2-...`)."""
    code = short_name(region)
    return [r for r in run.resources if r.name == code or r.name.startswith(f"{code}-")]


def graph(run: StackRun) -> dict[str, str]:
    """Each resource's inputs by URN, comparable (an asset archive by its files)."""
    return {
        r.urn: json.dumps(r.state, sort_keys=True, default=lambda o: sorted(getattr(o, "assets", {})))
        for r in run.resources
    }


def grants_of(run: StackRun, task_definition: Declared) -> set[str]:
    """The resources a task's role is granted anything on."""
    role_id = run.by_arn(task_definition["taskRoleArn"]).name + "-id"
    policies = [p for p in run.of_type("aws:iam/rolePolicy:RolePolicy") if p["role"] == role_id]
    return {st["Resource"] for p in policies for st in json.loads(p["policy"])["Statement"]}


def alb_of(run: StackRun, region: str) -> Declared:
    """A region's receiver ALB (the mocks' DNS name says its region)."""
    (alb,) = [
        a for a in run.of_type(ALB) if a.name.endswith("receiver-web-alb") and a["dnsName"].split(".")[1] == region
    ]
    return alb


def task_definitions(run: StackRun, role: Role) -> dict[str, Any]:
    """A role's task definitions by region (of their log configuration)."""
    found = {}
    for td in run.of_type(TASK_DEFINITION):
        if environment(td)[contract.ENV_ROLE] == role:
            (container,) = json.loads(td["containerDefinitions"])
            found[container["logConfiguration"]["options"]["awslogs-region"]] = td
    return found


# --- Config ------------------------------------------------------------------------------------------------------


def test_one_listed_region_is_the_single_region_stack() -> None:
    """`regions: [aws:region]` is the stack without the key: same URNs, same inputs (the stack files' graphs before
    and after this change were compared too, docs/multi-region.md)."""
    plain = run_program("normal", read_stack_file(ROOT / "Pulumi.normal.yaml"))
    listed = run_program("normal", config(PRIMARY))
    assert graph(listed) == graph(plain)
    assert not [r for r in plain.resources if r.typ in (PROVIDER, HEALTH_CHECK, RECORD, REGIONAL)]


@pytest.mark.parametrize(
    ("regions", "more", "says"),
    [
        ([PRIMARY, SECOND, SECOND], {}, "regions[2]: 'us-east-2' is listed twice"),
        ([PRIMARY, "mars-north-1"], {}, "regions[1]: 'mars-north-1' is not a known region"),
        ([SECOND, PRIMARY], {}, "the primary region us-west-2 (aws:region) must come first"),
        ([SECOND, THIRD], {}, "regions must start with the stack's aws:region us-west-2"),
        ("us-west-2", {}, "regions must be a list of AWS regions"),
        ([PRIMARY, "us-east-1", SECOND, "us-west-1", THIRD, "eu-west-2"], {}, "regions may list at most 5 regions"),
        ([PRIMARY, SECOND], {"deployAsync": False}, "only the async system has regional copies"),
        ([PRIMARY, SECOND], {"hostedZoneId": ""}, "set hostedZoneId (the latency records"),
        ([PRIMARY, SECOND], {"ordersDomain": ""}, "set ordersDomain (the latency records"),
        ([PRIMARY, SECOND], {"hostedZoneId": "example.com"}, "hostedZoneId must be a Route 53 hosted zone id"),
        ([PRIMARY, SECOND], {"ordersDomain": "https://orders.example.com"}, "ordersDomain must be a DNS name"),
        (
            [PRIMARY, SECOND],
            {"certificateArn": "arn:aws:acm:us-west-2:123456789012:certificate/0"},
            "certificateArn is one region's ACM certificate",
        ),
    ],
)
def test_bad_regions_fail_naming_file_and_key(regions: Any, more: dict[str, Any], says: str) -> None:
    cfg = config() | {"flashsale:regions": regions, "flashsale:hostedZoneId": ZONE, "flashsale:ordersDomain": DOMAIN}
    with pytest.raises(ConfigError) as error:
        run_program("normal", cfg | {f"flashsale:{key}": value for key, value in more.items()})
    assert str(error.value).startswith("Pulumi.normal.yaml: "), str(error.value)
    assert says in str(error.value)


@pytest.mark.parametrize("region", KNOWN_REGIONS)
def test_every_known_regions_alb_and_target_group_names_fit(region: str) -> None:
    for logical in (f"{short_name(region)}-receiver-web-alb", f"{short_name(region)}-receiver-web-tg"):
        assert len(logical) + AUTONAME_SUFFIX <= NAME_LIMIT, logical


# --- Two regions -------------------------------------------------------------------------------------------------


def test_each_other_region_has_its_copy_under_its_own_provider(two: StackRun) -> None:
    (provider,) = two.of_type(PROVIDER)
    assert provider["region"] == SECOND and provider.urn.split("::")[2] == f"{REGIONAL}${PROVIDER}"
    copy = in_copy(two, SECOND)
    counts = Counter(r.typ for r in copy)
    for typ in (SERVICE, QUEUE, "aws:sns/topic:Topic", ALB, "aws:ecs/cluster:Cluster", "aws:ecr/repository:Repository"):
        assert counts[typ] >= 1, f"the {SECOND} copy has no {typ}"
    assert counts[TABLE] == 0, "a regional copy uses its replica of the primary's table"
    assert counts[SERVICE] == 2  # receiver and workers; the sync service stays in the primary
    for r in copy:
        if "arn" in r.state and r.typ not in (PROVIDER,) and not r.typ.startswith(("flashsale:", "awsx:")):
            assert region_of_arn(r["arn"]) == SECOND, f"{r.urn}: made in {region_of_arn(r['arn'])}"
    for r in two.resources:
        if r not in copy and r.typ.startswith("aws:") and "arn" in r.state:
            assert region_of_arn(r["arn"]) == PRIMARY, f"{r.urn}: outside the copy, not in the primary"


def test_the_primary_keeps_every_urn_of_the_single_region_stack(two: StackRun) -> None:
    """Adding a region adds resources and updates some: it replaces nothing of the primary's."""
    single = run_program("normal", read_stack_file(ROOT / "Pulumi.normal.yaml"))
    assert {r.urn for r in single.resources} <= {r.urn for r in two.resources}


def test_each_region_runs_receivers_and_workers_on_its_own_queue_and_the_one_table(two: StackRun) -> None:
    (table,) = [t for t in two.of_type(TABLE) if t.name == "orders-table"]
    for role in (Role.RECEIVER, Role.WORKER):
        by_region = task_definitions(two, role)
        assert set(by_region) == {PRIMARY, SECOND}
        for region, td in by_region.items():
            env = environment(td)
            assert env[contract.ENV_ORDERS_TABLE] == table["name"], "a global table's replicas share its name"
            assert f"https://sqs.{region}." in env[contract.ENV_QUEUE_URL], f"{role} in {region}: another queue"
    assert set(task_definitions(two, Role.SYNC)) == {PRIMARY}


def test_each_regional_task_role_is_granted_its_regions_replica(two: StackRun) -> None:
    (table,) = [t for t in two.of_type(TABLE) if t.name == "orders-table"]
    replica = pipeline.replica_arn(table["arn"], SECOND)
    for role in (Role.RECEIVER, Role.WORKER):
        by_region = task_definitions(two, role)
        assert replica in grants_of(two, by_region[SECOND]) and table["arn"] not in grants_of(two, by_region[SECOND])
        assert table["arn"] in grants_of(two, by_region[PRIMARY]) and replica not in grants_of(two, by_region[PRIMARY])


def test_the_orders_table_is_a_global_table_with_a_replica_per_other_region(two: StackRun) -> None:
    (table,) = [t for t in two.of_type(TABLE) if t.name == "orders-table"]
    assert table["replicas"] == [{"regionName": SECOND, "pointInTimeRecovery": True}]
    assert table["streamEnabled"] is True and table["streamViewType"] == pipeline.GLOBAL_TABLE_STREAM
    assert table.opts is not None and table.opts.protect is not False  # still protected (protectData)
    (keys,) = [t for t in two.of_type(TABLE) if t.name == "sync-keys-table"]
    assert "replicas" not in keys.state  # the sync service's records stay in the primary


def test_route53_health_checks_each_regions_receiver_and_latency_records_route_to_it(two: StackRun) -> None:
    checks = {r["tags"]["Name"].split()[-1]: r for r in two.of_type(HEALTH_CHECK)}
    records = {r["setIdentifier"]: r for r in two.of_type(RECORD)}
    assert set(checks) == set(records) == {PRIMARY, SECOND}
    for region in (PRIMARY, SECOND):
        alb = alb_of(two, region)
        check, record = checks[region], records[region]
        assert (check["type"], check["fqdn"], check["port"], check["resourcePath"]) == (
            "HTTP",
            alb["dnsName"],
            80,
            contract.HEALTH_PATH,
        )
        assert check["requestInterval"] == routing.HEALTH_CHECK_INTERVAL_SECONDS
        assert check["failureThreshold"] == routing.HEALTH_CHECK_FAILURES
        assert (record["zoneId"], record["name"], record["type"]) == (ZONE, DOMAIN, "A")
        assert record["latencyRoutingPolicies"] == [{"region": region}]
        assert record["healthCheckId"] == check.id
        assert record["aliases"] == [
            {"name": alb["dnsName"], "zoneId": ALB_ZONES[region], "evaluateTargetHealth": True}
        ]
    assert two.outputs[output_names.ORDERS_DOMAIN_URL] == f"http://{DOMAIN}"
    assert two.outputs[output_names.REGIONAL_ASYNC_URLS] == {SECOND: f"http://{alb_of(two, SECOND)['dnsName']}"}
    assert MULTI_REGION_OUTPUTS <= set(two.outputs)


def test_replication_latency_is_alarmed_from_each_region_to_each_other(two: StackRun) -> None:
    spec = alarm_catalogue.REPLICATION_LATENCY
    (table,) = [t for t in two.of_type(TABLE) if t.name == "orders-table"]
    alarms = [a for a in two.of_type(ALARM) if a.get("metricName") == spec.metric_name]
    pairs = {(region_of_arn(a["arn"]), a["dimensions"]["ReceivingRegion"]) for a in alarms}
    assert pairs == {(PRIMARY, SECOND), (SECOND, PRIMARY)} and len(alarms) == 2
    for alarm in alarms:
        source = region_of_arn(alarm["arn"])
        assert alarm["dimensions"]["TableName"] == table["name"]
        assert (alarm["namespace"], alarm["statistic"], alarm["threshold"]) == (
            spec.namespace,
            spec.statistic,
            spec.threshold_milliseconds,
        )
        assert alarm["name"] == alarm_catalogue.replication_alarm_name(
            "flashsale-normal", short_name(alarm["dimensions"]["ReceivingRegion"])
        )
        # CloudWatch only acts on a topic in the alarm's region: each region has its own alarm topic.
        assert {region_of_arn(arn) for arn in alarm["alarmActions"] + alarm["okActions"]} == {source}


def test_each_region_has_the_catalogues_async_alarms(two: StackRun) -> None:
    thresholds = ALARM_PROFILES["normal"]
    expected = {
        alarm_catalogue.alarm_name("flashsale-normal", spec.key)
        for spec in alarm_catalogue.ALARMS
        if spec.subject.system is System.ASYNC and getattr(thresholds, spec.key) is not None
    }
    for region in (PRIMARY, SECOND):
        names = {a["name"] for a in two.of_type(ALARM) if region_of_arn(a["arn"]) == region}
        assert expected <= names, f"{region}: missing {sorted(expected - names)}"


def test_the_dashboard_draws_every_region_and_the_replication_lag(two: StackRun) -> None:
    (dashboard,) = two.of_type(DASHBOARD)
    widgets = json.loads(dashboard["dashboardBody"])["widgets"]
    regions = Counter(w["properties"]["title"].split(": ")[0] for w in widgets if ": " in w["properties"]["title"])
    assert set(regions) == {PRIMARY, SECOND} and regions[SECOND] >= 6
    for widget in widgets:
        title, region = widget["properties"]["title"], widget["properties"]["region"]
        if title.startswith(f"{SECOND}: "):
            assert region == SECOND, f"{title} reads {region}'s metrics"
    queue = [q for q in in_copy(two, SECOND) if q.typ == QUEUE and q.name.endswith("orders-queue")][0]
    assert queue["name"] in dashboard["dashboardBody"]
    (lag,) = [w for w in widgets if w["properties"]["title"] == "Orders table replication lag (ms)"]
    assert {(m[-1]["region"], m[5]) for m in lag["properties"]["metrics"]} == {(PRIMARY, SECOND), (SECOND, PRIMARY)}


def test_every_alb_and_target_group_name_fits_with_its_suffix(two: StackRun) -> None:
    for r in two.of_type(ALB) + two.of_type(TARGET_GROUP):
        assert len(r.name) + AUTONAME_SUFFIX <= NAME_LIMIT, r.urn


def test_every_resource_is_parented_and_named_after_its_component(two: StackRun) -> None:
    components = [(r.typ, r.name) for r in two.resources if r.typ.startswith("flashsale:")]
    for r in two.resources:
        parent_type = r.urn.split("::")[2].split("$")[-2]
        if parent_type == "pulumi:pulumi:Stack":
            assert r.typ.startswith("flashsale:"), f"{r.urn}: not parented to a component"
            continue
        assert any(typ == parent_type and r.name.startswith(f"{name}-") for typ, name in components), r.urn


def test_three_regions() -> None:
    run = run_program("normal", config(PRIMARY, SECOND, THIRD))
    (table,) = [t for t in run.of_type(TABLE) if t.name == "orders-table"]
    assert [r["regionName"] for r in table["replicas"]] == [SECOND, THIRD]
    assert sorted(p["region"] for p in run.of_type(PROVIDER)) == [THIRD, SECOND]
    assert {r["setIdentifier"] for r in run.of_type(RECORD)} == {PRIMARY, SECOND, THIRD}
    assert len(run.of_type(HEALTH_CHECK)) == 3
    assert len([a for a in run.of_type(ALARM) if a.get("metricName") == "ReplicationLatency"]) == 6
