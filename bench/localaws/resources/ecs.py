"""ECS handlers: clusters, task definitions (with Fargate's CPU and memory pairs checked, which the emulator does
not) and services."""

from __future__ import annotations

from typing import Any

from bench.localaws.resources.registry import (
    CONTROL,
    Context,
    Created,
    Declared,
    Invalid,
    handles,
    json_text,
    refreshes,
    whole,
)

# Fargate's CPU units -> the memory sizes (MiB) allowed with them (AWS: "Task CPU and memory", Amazon ECS docs).
FARGATE_MEMORY: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}


@handles("aws:ecs/cluster:Cluster", CONTROL)
def cluster(ctx: Context, r: Declared) -> Created:
    settings = [dict(setting) for setting in r.inputs.get("settings", [])]  # ECS's API is camelCase, like Pulumi's
    arn = ctx.client("ecs").create_cluster(clusterName=r.name, settings=settings)["cluster"]["clusterArn"]
    return arn, {"arn": arn}


@handles("aws:ecs/taskDefinition:TaskDefinition", CONTROL)
def task_definition(ctx: Context, r: Declared) -> Created:
    containers = json_text(r.inputs["containerDefinitions"], "containerDefinitions")
    if not isinstance(containers, list) or not containers:
        raise Invalid("containerDefinitions must be a non-empty JSON list")
    arguments: dict[str, Any] = {
        "family": r.name,
        "containerDefinitions": containers,
        "networkMode": r.inputs.get("networkMode", "bridge"),
        "requiresCompatibilities": list(r.inputs.get("requiresCompatibilities", [])),
    }
    if "FARGATE" in arguments["requiresCompatibilities"]:
        try:
            cpu, memory = int(r.inputs["cpu"]), int(r.inputs["memory"])
        except (KeyError, ValueError):
            raise Invalid("a Fargate task definition needs task-level cpu and memory") from None
        if memory not in FARGATE_MEMORY.get(cpu, ()):
            raise Invalid(f"No Fargate configuration exists for given values: {cpu} CPU, {memory} memory")
        if arguments["networkMode"] != "awsvpc":
            raise Invalid("Fargate tasks must use the awsvpc network mode")
    for key in ("cpu", "memory", "executionRoleArn", "taskRoleArn"):
        if r.inputs.get(key):
            arguments[key] = r.inputs[key]
    if r.inputs.get("runtimePlatform"):
        arguments["runtimePlatform"] = dict(r.inputs["runtimePlatform"])
    if r.inputs.get("volumes"):
        arguments["volumes"] = [dict(v) for v in r.inputs["volumes"]]
    found = ctx.client("ecs").register_task_definition(**arguments)["taskDefinition"]
    return found["taskDefinitionArn"], {
        "arn": found["taskDefinitionArn"],
        "revision": found["revision"],
        "arnWithoutRevision": found["taskDefinitionArn"].rsplit(":", 1)[0],
    }


@handles("aws:ecs/service:Service", CONTROL)
def ecs_service(ctx: Context, r: Declared) -> Created:
    network = r.inputs.get("networkConfiguration") or {}
    arguments: dict[str, Any] = {
        "cluster": r.inputs["cluster"],
        "serviceName": r.name,
        "taskDefinition": r.inputs["taskDefinition"],
        "desiredCount": whole(r.inputs.get("desiredCount", 0)),
        "launchType": r.inputs.get("launchType", "EC2"),
        "loadBalancers": [whole(dict(lb)) for lb in r.inputs.get("loadBalancers", [])],
        "propagateTags": r.inputs.get("propagateTags", "NONE"),
        "enableECSManagedTags": bool(r.inputs.get("enableEcsManagedTags", False)),
    }
    if network:
        arguments["networkConfiguration"] = {
            "awsvpcConfiguration": {
                "subnets": list(network.get("subnets", [])),
                "securityGroups": list(network.get("securityGroups", [])),
                "assignPublicIp": "ENABLED" if network.get("assignPublicIp") else "DISABLED",
            }
        }
    if r.inputs.get("healthCheckGracePeriodSeconds") is not None:
        arguments["healthCheckGracePeriodSeconds"] = whole(r.inputs["healthCheckGracePeriodSeconds"])
    if r.inputs.get("deploymentCircuitBreaker"):
        arguments["deploymentConfiguration"] = {"deploymentCircuitBreaker": dict(r.inputs["deploymentCircuitBreaker"])}
    arn = ctx.client("ecs").create_service(**arguments)["service"]["serviceArn"]
    return arn, {"arn": arn}


@refreshes("aws:ecs/service:Service")
def read_ecs_service(ctx: Context, r: Declared) -> dict[str, Any]:
    """The desired count as it is now: auto-scaling and ops.prescale change it."""
    found = ctx.client("ecs").describe_services(cluster=r.inputs["cluster"], services=[r.name])["services"]
    return {"desiredCount": found[0]["desiredCount"]} if found else {}
