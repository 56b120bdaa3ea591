"""Two regions deploy to the local emulators with zero rejections (issue 21, docs/multi-region.md).

One emulator set per region: each region has its own ministack (its data plane: a region's loss can be staged by
stopping it alone), and one moto serves both regions' control planes (moto keeps a backend per region; Route 53 is
global there as on AWS). Each resource goes to the emulators of its provider's region: region B's queue is in B's
ministack and not in A's, its ALB in moto's B; the orders table is in both (the primary's and its replica, with the
same name, keys and a stream); the health checks and latency records are in moto's Route 53. The hosted zone is not
the stack's: it is created in moto first, as on AWS the domain's zone exists before the stack.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bench.localaws.deployer import DeployError, Deployment, Endpoints, deploy
from bench.localaws.emulators import Emulator
from bench.localaws.resources import dynamodb, route53
from bench.localaws.resources.registry import DATA_PLANE, Invalid
from bench.localaws.resources.route53 import create_hosted_zone
from stackconfig import output_names
from tests.conftest import TEST_CONFIG

PRIMARY, SECOND = "us-west-2", "us-east-2"
DOMAIN = "orders.flashsale.test"
QUEUE = "aws:sqs/queue:Queue"
TABLE = "aws:dynamodb/table:Table"
ALB = "aws:lb/loadBalancer:LoadBalancer"
HEALTH_CHECK = "aws:route53/healthCheck:HealthCheck"
RECORD = "aws:route53/record:Record"


@pytest.fixture(scope="module")
def second_ministack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """Region B's data plane."""
    with Emulator("ministack", log_path=tmp_path_factory.mktemp("ministack-b") / "ministack.log") as emulator:
        yield emulator


@pytest.fixture(scope="module")
def first_ministack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    """Region A's data plane, empty (the session's ministack holds other deploys' tables of the same names)."""
    with Emulator("ministack", log_path=tmp_path_factory.mktemp("ministack-a") / "ministack.log") as emulator:
        yield emulator


@pytest.fixture(scope="module")
def regions(first_ministack: Emulator, second_ministack: Emulator, moto: Emulator) -> dict[str, Endpoints]:
    return {
        PRIMARY: Endpoints(first_ministack.endpoint_url, moto.endpoint_url, PRIMARY),
        SECOND: Endpoints(second_ministack.endpoint_url, moto.endpoint_url, SECOND),
    }


@pytest.fixture(scope="module")
def zone_id(regions: dict[str, Endpoints]) -> str:
    return create_hosted_zone(regions[PRIMARY].client("route53"), DOMAIN)


def two_regions(zone_id: str) -> dict[str, Any]:
    return TEST_CONFIG | {"regions": [PRIMARY, SECOND], "hostedZoneId": zone_id, "ordersDomain": DOMAIN}


@pytest.fixture(scope="module")
def deployment(regions: dict[str, Endpoints], zone_id: str) -> Deployment:
    return deploy("normal", regions[PRIMARY], overrides=two_regions(zone_id), regions={SECOND: regions[SECOND]})


def test_two_regions_deploy_with_zero_rejections(deployment: Deployment) -> None:
    assert deployment.ok, deployment.summary()
    assert sorted(deployment.providers.values()) == [SECOND]
    assert {r.region or PRIMARY for r in deployment.resources} == {PRIMARY, SECOND}


def test_each_region_s_resources_are_in_its_own_emulators(
    deployment: Deployment, regions: dict[str, Endpoints]
) -> None:
    a, b = regions[PRIMARY], regions[SECOND]
    queues = {region: [q.outputs["name"] for q in deployment.in_region(region) if q.typ == QUEUE] for region in regions}
    assert queues[PRIMARY] and queues[SECOND] and not set(queues[PRIMARY]) & set(queues[SECOND])
    assert all(name.startswith("use2-") for name in queues[SECOND]), queues[SECOND]
    for name in queues[SECOND]:
        b.client("sqs").get_queue_url(QueueName=name)
        with pytest.raises(a.client("sqs").exceptions.QueueDoesNotExist):
            a.client("sqs").get_queue_url(QueueName=name)
    # The control plane: one moto, each region's load balancers in its own region there.
    for region, endpoints in regions.items():
        arns = {lb.outputs["arn"] for lb in deployment.in_region(region) if lb.typ == ALB}
        assert arns and all(f":{region}:" in arn for arn in arns)
        found = {lb["LoadBalancerArn"] for lb in endpoints.client("elbv2").describe_load_balancers()["LoadBalancers"]}
        assert arns <= found


def test_the_orders_table_is_in_both_regions_with_a_stream(
    deployment: Deployment, regions: dict[str, Endpoints]
) -> None:
    (table,) = [t for t in deployment.of_type(TABLE) if t.outputs.get("replicas")]
    assert table.region == "" and [r["regionName"] for r in table.outputs["replicas"]] == [SECOND]
    described = {
        region: endpoints.client("dynamodb").describe_table(TableName=table.declared.name)["Table"]
        for region, endpoints in regions.items()
    }
    a, b = described[PRIMARY], described[SECOND]
    assert a["KeySchema"] == b["KeySchema"] and a["AttributeDefinitions"] == b["AttributeDefinitions"]
    for region, found in described.items():
        assert found["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}, region
        assert found["LatestStreamArn"]
    assert [replica["RegionName"] for replica in a.get("Replicas", [])] == [SECOND]
    # Region B's services are pointed at the replica: the same name, in B.
    assert table.outputs["replicas"][0]["arn"] == b["TableArn"]
    ttl = regions[SECOND].client("dynamodb").describe_time_to_live(TableName=table.declared.name)
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"


def test_health_checks_and_latency_records_are_in_route53(
    deployment: Deployment, regions: dict[str, Endpoints], zone_id: str
) -> None:
    route53 = regions[PRIMARY].client("route53")
    checks = {c.id: c for c in deployment.of_type(HEALTH_CHECK)}
    assert len(checks) == 2
    for check_id in checks:
        config = route53.get_health_check(HealthCheckId=check_id)["HealthCheck"]["HealthCheckConfig"]
        assert (config["Type"], config["ResourcePath"], config["RequestInterval"]) == ("HTTP", "/health", 30)
    records = [
        r
        for r in route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
        if r["Name"] == f"{DOMAIN}." and r["Type"] == "A"
    ]
    assert sorted(r["Region"] for r in records) == sorted(regions)
    balancers = {
        region: {lb["DNSName"]: lb for lb in endpoints.client("elbv2").describe_load_balancers()["LoadBalancers"]}
        for region, endpoints in regions.items()
    }
    for r in records:
        assert r["SetIdentifier"] == r["Region"] and r["HealthCheckId"] in checks
        target = balancers[r["Region"]][r["AliasTarget"]["DNSName"]]  # each region's record aliases its own ALB
        assert r["AliasTarget"]["HostedZoneId"] == target["CanonicalHostedZoneId"]
        assert r["AliasTarget"]["EvaluateTargetHealth"] is True
    assert deployment.outputs[output_names.ORDERS_DOMAIN_URL] == f"http://{DOMAIN}"
    assert set(deployment.outputs[output_names.REGIONAL_ASYNC_URLS]) == {SECOND}  # the other regions (asyncUrl: A)


def test_a_region_without_emulators_is_refused_before_the_program_runs(
    regions: dict[str, Endpoints], zone_id: str
) -> None:
    with pytest.raises(DeployError, match=r"us-east-2.*no emulators"):
        deploy("normal", regions[PRIMARY], overrides=two_regions(zone_id))


def test_a_record_in_a_zone_that_does_not_exist_is_refused(deployment: Deployment) -> None:
    (record,) = [r for r in deployment.of_type(RECORD) if r.declared.inputs["setIdentifier"] == SECOND]
    declared = replace(record.declared, inputs={**record.declared.inputs, "zoneId": "ZNOSUCHZONE0000000000"})
    with pytest.raises(ClientError, match="NoSuchHostedZone"):
        route53.record(deployment.context(), declared)


def test_a_latency_alias_must_name_its_load_balancer_s_zone(deployment: Deployment) -> None:
    (record,) = [r for r in deployment.of_type(RECORD) if r.declared.inputs["setIdentifier"] == SECOND]
    (alias,) = record.declared.inputs["aliases"]
    wrong = {**alias, "zoneId": "Z1H1FL5HABSF5" if alias["zoneId"] != "Z1H1FL5HABSF5" else "Z35SXDOTRQ7X7K"}
    declared = replace(record.declared, inputs={**record.declared.inputs, "aliases": [wrong]})
    with pytest.raises(Invalid, match="does not lie within the target zone"):
        route53.record(deployment.context(), declared)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"requestInterval": 20}, "requestInterval must be 10 or 30"),
        ({"failureThreshold": 11}, "failureThreshold must be between 1 and 10"),
    ],
)
def test_a_health_check_aws_would_refuse_is_refused(
    deployment: Deployment, change: dict[str, Any], message: str
) -> None:
    check = deployment.of_type(HEALTH_CHECK)[0]
    with pytest.raises(Invalid, match=message):
        route53.health_check(deployment.context(), replace(check.declared, inputs={**check.declared.inputs, **change}))


def test_a_latency_record_without_a_set_identifier_is_refused(deployment: Deployment) -> None:
    record = deployment.of_type(RECORD)[0]
    inputs = {k: v for k, v in record.declared.inputs.items() if k != "setIdentifier"}
    with pytest.raises(Invalid, match="needs a setIdentifier"):
        route53.record(deployment.context(), replace(record.declared, inputs=inputs))


def test_both_data_planes_can_be_applied_again_with_the_same_names(
    deployment: Deployment, first_ministack: Emulator, second_ministack: Emulator, regions: dict[str, Endpoints]
) -> None:
    (table,) = [t for t in deployment.of_type(TABLE) if t.outputs.get("replicas")]
    first_ministack.reset()
    second_ministack.reset()
    deployment.reapply(DATA_PLANE)
    for region, endpoints in regions.items():
        endpoints.client("dynamodb").describe_table(TableName=table.declared.name)
        for queue in (q for q in deployment.in_region(region) if q.typ == QUEUE):
            assert (
                endpoints.client("sqs").get_queue_url(QueueName=queue.outputs["name"])["QueueUrl"]
                == queue.outputs["url"]
            )


def test_a_record_in_a_zone_that_does_not_exist_is_the_records_rejection(
    moto: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The whole deploy, on fresh data planes: only the two latency records are refused, each naming its URN."""
    logs = tmp_path_factory.mktemp("missing-zone")
    with (
        Emulator("ministack", log_path=logs / "a.log") as a,
        Emulator("ministack", log_path=logs / "b.log") as b,
    ):
        deployment = deploy(
            "normal",
            Endpoints(a.endpoint_url, moto.endpoint_url),
            overrides=two_regions("ZNOSUCHZONE0000000000"),
            regions={SECOND: Endpoints(b.endpoint_url, moto.endpoint_url)},
        )
    assert not deployment.skipped
    assert sorted(r.urn.rpartition("::")[2] for r in deployment.rejections) == ["dns-use2", "dns-usw2"]
    assert all(
        "NoSuchHostedZone" in r.message and "LatencyRouting$aws:route53/record:Record" in r.urn
        for r in deployment.rejections
    ), deployment.summary()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"streamViewType": "NEW_IMAGE"}, "needs its stream enabled with NEW_AND_OLD_IMAGES"),
        ({"replicas": [{"regionName": PRIMARY}]}, "cannot be in the table's own region"),
        ({"replicas": [{"regionName": SECOND}, {"regionName": SECOND}]}, "each replica must be in its own region"),
        ({"replicas": [{"regionName": "eu-west-1"}]}, "no emulators for region eu-west-1"),
    ],
)
def test_a_global_table_aws_would_refuse_is_refused(
    deployment: Deployment, change: dict[str, Any], message: str
) -> None:
    (table,) = [t for t in deployment.of_type(TABLE) if t.outputs.get("replicas")]
    declared = replace(table.declared, name="flashsale-refused", inputs={**table.declared.inputs, **change})
    with pytest.raises(Invalid, match=message):
        dynamodb.table(deployment.context(), declared)
