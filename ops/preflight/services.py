"""The service checks, for the worker and the receiver: tasks running at the desired count, the last deployment
completed (no circuit-breaker rollback), and the running task definition carrying the stack's WORKER_COUNT and
PAYMENT_SECONDS (a revision registered by hand would not). Locally, ECS rollouts are said, not judged."""

from __future__ import annotations

from typing import Any

from app import contract, roles
from ops import stack
from ops.preflight.live import FAIL, PASS, SERVICE_OUTPUTS, WARN, Live, Result
from stackconfig import output_names


def service_results(
    role: str, service: dict[str, Any] | None, *, local: stack.LocalCaveats | None, scale: str, events: str
) -> list[Result]:
    """Tasks running at the desired count, and the last deployment completed (no circuit-breaker rollback)."""
    if service is None:
        return [Result(f"service {role}: tasks", FAIL, "not found or not ACTIVE", "an ACTIVE service", scale)]
    desired, running, pending = (int(service.get(k, 0)) for k in ("desiredCount", "runningCount", "pendingCount"))
    if desired < 1:
        tasks = Result(f"service {role}: tasks", FAIL, "desired 0: scaled to zero", ">= 1 task, all running", scale)
    else:
        tasks = Result(
            f"service {role}: tasks",
            PASS if running >= desired and pending == 0 else FAIL,
            f"running {running} of {desired}" + (f", {pending} pending" if pending else ""),
            f"running {desired} of {desired}",
            events,
        )
    deployments = service.get("deployments", [])
    failed = [d for d in deployments if d.get("rolloutState") == "FAILED"]
    primary: dict[str, Any] = next((d for d in deployments if d.get("status") == "PRIMARY"), {})
    shown = "; ".join(
        f"{d.get('status')} {d.get('rolloutState', '-')} {str(d.get('taskDefinition', '')).rsplit('/', 1)[-1]}"
        for d in deployments
    )
    name, expected = f"service {role}: deployment", "one PRIMARY deployment, COMPLETED"
    if failed or len(deployments) > 1:
        reason = "; ".join(str(d.get("rolloutStateReason", "")) for d in failed if d.get("rolloutStateReason"))
        deployment = Result(
            name,
            FAIL,
            (f"circuit breaker: {reason}; " if failed else "rollout in progress: ") + shown,
            expected,
            f"wait for it to settle and read why tasks failed: {events}",
        )
    elif primary.get("rolloutState", "COMPLETED") == "COMPLETED":
        deployment = Result(name, PASS, shown or "no deployments listed", expected)
    elif local:
        deployment = Result(name, WARN, shown, expected, note=f"{local.rollouts}: not judged locally")
    else:
        deployment = Result(name, FAIL, f"not completed: {shown}", expected, events)
    return [tasks, deployment]


def environment(task_definition: dict[str, Any], role: str) -> dict[str, str]:
    containers = task_definition.get("containerDefinitions", [])
    container = next((c for c in containers if c.get("name") == role), containers[0] if containers else {})
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def task_definition_result(live: Live, role: str) -> Result:
    """The running task definition carries the stack's settings (a revision registered by hand would not)."""
    name = f"service {role}: task definition"
    workers, payment = int(live.outputs[output_names.WORKER_COUNT]), float(live.outputs[output_names.PAYMENT_SECONDS])
    expected = (
        f"{contract.ENV_WORKER_COUNT}={workers}, {contract.ENV_PAYMENT_SECONDS}={payment:g} (the stack's "
        "workerCount, paymentSeconds)"
    )
    found = live.task_definitions.get(role)
    if found is None:
        return Result(name, FAIL, "no service, no task definition", expected, live.pulumi_up)
    env = environment(found, role)
    revision = f"{found.get('family')}:{found.get('revision')}"

    def number(key: str) -> float | None:
        try:
            return float(env[key])
        except (KeyError, ValueError):
            return None

    ok = number(contract.ENV_WORKER_COUNT) == workers and number(contract.ENV_PAYMENT_SECONDS) == payment
    return Result(
        name,
        PASS if ok else FAIL,
        f"{revision}: {contract.ENV_WORKER_COUNT}="
        f"{env.get(contract.ENV_WORKER_COUNT, 'unset')}, {contract.ENV_PAYMENT_SECONDS}="
        f"{env.get(contract.ENV_PAYMENT_SECONDS, 'unset')}",
        expected,
        f"{live.pulumi_up} (deploys the stack's task definition; a revision set by hand is drift)",
    )


def check_services(live: Live) -> list[Result]:
    results = []
    for role, output in SERVICE_OUTPUTS.items():
        service_name = live.outputs[output]
        scale = (
            f"python -m ops.prescale --tasks {live.planned} {live.source}"
            if role is roles.Role.WORKER
            else f"aws ecs update-service --cluster {live.cluster} --service {service_name} --desired-count N "
            "(the stack's receiverTasks)"
        )
        events = (
            f"aws ecs describe-services --cluster {live.cluster} --services {service_name} --query "
            "'services[0].events[:5]'"
        )
        results += service_results(role, live.services.get(role), local=live.local, scale=scale, events=events)
        results.append(task_definition_result(live, role))
    return results
