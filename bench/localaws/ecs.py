"""The local ECS: runs the ECS services the program deployed as local processes, the way Fargate runs their tasks.

Each service's tasks run its task definition as deployed: the image's ENTRYPOINT (read from the Dockerfile of the
build context the program built the image from), with the container's environment from the task definition, the
image's ENV under it, what Fargate adds (AWS_REGION...), the emulators' endpoints and, in place of keys, a URL and a
token for the task role's expiring credentials (`bench.localaws.credentials`, as ECS serves them). Nothing else of
this machine's environment reaches a task, so a setting the program forgets to pass is missing locally too.
Local-only overrides (the lab's time scale) are explicit and announced.

A reconciliation loop makes the processes follow the control plane (moto's ECS): one process per desired task,
more or fewer when `desiredCount` changes (`ops.prescale`, auto-scaling), a task that exits is replaced, and a task
is stopped as ECS stops it (out of its load balancer first, SIGTERM, SIGKILL after the container's stopTimeout).
Scale-in stops tasks without scale-in protection first (newest first); a protected task is stopped only once it
unprotects or its protection expires (`bench.localaws.agent` serves each task's ECS_AGENT_URI). The task metadata
endpoint (ECS_CONTAINER_METADATA_URI_V4) is not served: its CPU limit (0.25 vCPU) is not enforced here, so a task
sizing itself by it would hold back on a core it does have; tasks fall back to their cgroup, as outside ECS.
A service with a load balancer gets one local URL (`bench.localaws.proxy`) spreading connections over its healthy tasks.
"""

from __future__ import annotations

import itertools
import json
import os
import posixpath
import shlex
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import contract, roles
from bench.localaws.agent import Agent
from bench.localaws.credentials import CredentialsEndpoint
from bench.localaws.credentials import shared as shared_credentials
from bench.localaws.deployer import Deployment, Endpoints
from bench.localaws.proxy import Balancer, Balancers
from bench.localaws.resources.registry import Image
from bench.localaws.tasks import DEFAULT_STOP_TIMEOUT, Task, TaskArgs, TaskError

SERVICE = "aws:ecs/service:Service"
LISTENER = "aws:lb/listener:Listener"
LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
POLL_SECONDS = 0.5
START_TIMEOUT_SECONDS = 60.0
# Of this machine's environment, only what any process needs; the rest would mask settings the program forgot.
PASS_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT")
_TASK_NUMBERS = itertools.count(1)  # each task's credentials session, unique in this process


class LocalEcsError(RuntimeError):
    pass


@dataclass(frozen=True)
class DockerImage:
    """What the Dockerfile says a container runs: ENTRYPOINT + CMD, ENV, and where WORKDIR is in the context."""

    command: tuple[str, ...]
    env: dict[str, str]
    cwd: Path


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined, lines = "", []
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            joined += line[:-1] + " "
            continue
        lines.append(joined + line)
        joined = ""
    return [(instruction.upper(), rest.strip()) for instruction, _, rest in (line.partition(" ") for line in lines)]


def _words(arguments: str) -> list[str]:
    """The exec form (a JSON list) or the shell form of ENTRYPOINT/CMD."""
    if arguments.startswith("["):
        return [str(word) for word in json.loads(arguments)]
    return ["/bin/sh", "-c", arguments]


def read_image(image: Image) -> DockerImage:
    """Run the context as the image would: the working directory is WORKDIR relative to where COPY puts `.`."""
    entrypoint: list[str] = []
    cmd: list[str] = []
    env: dict[str, str] = {}
    workdir, copied_to = "/", ""
    for instruction, arguments in _instructions(image.dockerfile):
        if instruction == "ENTRYPOINT":
            entrypoint = _words(arguments)
        elif instruction == "CMD":
            cmd = _words(arguments)
        elif instruction == "ENV":
            env |= dict(pair.split("=", 1) for pair in shlex.split(arguments) if "=" in pair)
        elif instruction == "WORKDIR":
            workdir = posixpath.join(workdir, arguments)
        elif instruction == "COPY":
            source, destination = shlex.split(arguments)[-2:]
            if source == ".":
                copied_to = posixpath.join(workdir, destination)
    if not entrypoint and not cmd:
        raise LocalEcsError(f"{image.dockerfile} has no ENTRYPOINT or CMD: nothing to run")
    if not copied_to:
        raise LocalEcsError(f"{image.dockerfile} never copies its build context (COPY . DEST)")
    command = [*entrypoint, *cmd]
    if command[0] in ("python", "python3"):
        command[0] = sys.executable  # the image's interpreter is this machine's virtualenv Python
    return DockerImage(tuple(command), env, image.context / posixpath.relpath(workdir, copied_to))


@dataclass(frozen=True)
class TaskSpec:
    """What every task of a service runs, from its task definition as deployed."""

    task_definition: str
    role: str  # a name in roles.ROLES
    command: tuple[str, ...]
    env: dict[str, str]
    cwd: Path
    stop_timeout: float
    task_role_arn: str | None  # its tasks get this role's credentials, and no others (none without a task role)
    endpoints: Endpoints  # where the control plane's STS answers, for those credentials

    def environment(
        self, env: Mapping[str, str] | None = None, *, credentials: CredentialsEndpoint | None = None
    ) -> dict[str, str]:
        """A new task's whole environment: the spec's, a fresh grant of the task role's credentials at `credentials`
        (default: this process's endpoint; none without a task role), and `env` on top (tests and benchmarks)."""
        granted = {}
        if self.task_role_arn:
            task_id = f"{self.role}-{next(_TASK_NUMBERS)}"
            granted = (credentials or shared_credentials()).grant(
                task_id, self.task_role_arn, sts_endpoint=self.endpoints.control_plane, region=self.endpoints.region
            )
        return {**self.env, **granted, **(env or {})}

    def task(
        self,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        port: int = 0,
        *,
        credentials: CredentialsEndpoint | None = None,
    ) -> Task:
        """A task of this spec (not started), with `environment(env, credentials=credentials)`."""
        return Task(
            TaskArgs(
                role=self.role,
                env=self.environment(env, credentials=credentials),
                log_path=log_path,
                command=self.command,
                cwd=self.cwd,
                port=port,
                stop_timeout=self.stop_timeout,
            )
        )


def task_spec(
    deployment: Deployment, task_definition: str, overrides: Mapping[str, str] | None = None, *, https: bool = True
) -> TaskSpec:
    """What a task of `task_definition` runs, read back from the control plane as the program deployed it
    (`https=False`: reaching the emulators over plain HTTP, `Endpoints.task_env`)."""
    found = deployment.endpoints.client("ecs").describe_task_definition(taskDefinition=task_definition)[
        "taskDefinition"
    ]
    containers = found["containerDefinitions"]
    if len(containers) != 1:
        raise LocalEcsError(f"{task_definition}: the local ECS runs one container per task, found {len(containers)}")
    (container,) = containers
    image = next((i for i in deployment.images if i.uri == container["image"]), None)
    if image is None:
        raise LocalEcsError(
            f"{task_definition}: image {container['image']} is not one this deployment built; "
            "the local ECS can only run the program's own images"
        )
    docker = read_image(image)
    region = deployment.endpoints.region
    env = {key: os.environ[key] for key in PASS_THROUGH if key in os.environ}
    env |= docker.env
    env |= {item["name"]: item["value"] for item in container.get("environment", [])}
    env |= {"AWS_REGION": region, "AWS_DEFAULT_REGION": region, "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE"}
    env |= deployment.endpoints.task_env(https=https)  # no keys: each task is granted its role's (TaskSpec.task)
    env |= dict(overrides or {})
    return TaskSpec(
        task_definition=task_definition,
        role=role_of(task_definition, container, env).name,
        command=(*docker.command, *container.get("command", [])),
        env=env,
        cwd=docker.cwd,
        stop_timeout=float(container.get("stopTimeout", DEFAULT_STOP_TIMEOUT)),
        task_role_arn=found.get("taskRoleArn"),
        endpoints=deployment.endpoints,
    )


def role_of(task_definition: str, container: Mapping[str, Any], env: Mapping[str, str]) -> roles.RoleSpec:
    """The registered role the container runs (its ROLE); a task definition whose port mappings contradict the role
    (a web role without a port, a port on any other) is the program's mistake, refused here as ECS would fail it."""
    try:
        role = roles.role(env.get(contract.ENV_ROLE, ""))
    except roles.UnknownRole as e:
        raise LocalEcsError(f"{task_definition}: {e}") from None
    if bool(container.get("portMappings")) != role.web:
        maps = container.get("portMappings") or "no port"
        raise LocalEcsError(
            f"{task_definition}: role {role.name} is {'a' if role.web else 'not a'} web role "
            f"(app.roles.ROLES), but its container maps {maps}"
        )
    return role


@dataclass
class LocalService:
    cluster: str
    name: str
    spec: TaskSpec
    target_groups: tuple[str, ...]
    desired: int = 0
    tasks: list[Task] = field(default_factory=list)
    started: int = 0  # tasks started so far, for their ids
    balancers: list[Balancer] = field(default_factory=list)  # the local listeners in front of it
    healthy_count: int = 0  # healthy tasks at the last reconciliation round (what the balancers were given)
    logs: list[Path] = field(default_factory=list)  # the log of every task started so far, stopped ones included

    def running(self) -> list[Task]:
        return [task for task in self.tasks if task.alive()]

    def healthy(self) -> list[Task]:
        return [task for task in self.running() if task.healthy()]


def deployed_services(
    deployment: Deployment, overrides: Mapping[str, str] | None = None, *, https: bool = True
) -> list[LocalService]:
    """Every ECS service the deployment created, with what its tasks run (`https`: see `task_spec`)."""
    services = []
    for resource in deployment.of_type(SERVICE):
        declared = resource.outputs
        services.append(
            LocalService(
                cluster=declared["cluster"],
                name=declared["name"],
                spec=task_spec(deployment, declared["taskDefinition"], overrides, https=https),
                target_groups=tuple(lb["targetGroupArn"] for lb in declared.get("loadBalancers", [])),
            )
        )
    return services


def service_of(services: list[LocalService], role: str) -> LocalService:
    found = [s for s in services if s.spec.role == role]
    if len(found) != 1:
        raise LocalEcsError(f"expected one service with ROLE {role}, found {[s.name for s in found]}")
    return found[0]


class LocalEcs:
    """The deployment's ECS services as processes; `start()` runs them and keeps them at their desired counts."""

    def __init__(
        self,
        deployment: Deployment,
        logs: Path,
        *,
        overrides: Mapping[str, str] | None = None,
        on_event: Callable[[str], None] = lambda message: None,
        ports: Mapping[str, int] | None = None,
        startup_seconds: float = 0.0,
    ) -> None:
        """`startup_seconds`: a task wanted after start() is launched that long after (Fargate's provisioning and
        image pull take about a minute); the tasks of the first deployment start at once."""
        self.deployment = deployment
        self.logs = logs
        self.overrides = dict(overrides or {})
        self.on_event = on_event
        self._ecs = deployment.endpoints.client("ecs")
        self.agent = Agent()
        self._balancers = Balancers()
        self._stop = threading.Event()
        self._loop: threading.Thread | None = None
        self._lock = threading.RLock()
        self.services = deployed_services(deployment, self.overrides)
        self.startup_seconds = startup_seconds
        self._provisioning: dict[str, list[float]] = {}  # service name -> when each task not started was wanted
        self.balancers = self._listeners(dict(ports or {}))

    def _listeners(self, ports: Mapping[str, int]) -> dict[str, Balancer]:
        """One local balancer per load balancer that forwards to a target group a service registers with, keyed by
        the load balancer's DNS name (what the stack's URL outputs hold). `ports` pins a role's balancer port."""
        dns = {r.outputs["arn"]: r.outputs["dnsName"] for r in self.deployment.of_type(LOAD_BALANCER)}
        balancers: dict[str, Balancer] = {}
        for listener in self.deployment.of_type(LISTENER):
            groups = {a["targetGroupArn"] for a in listener.outputs["defaultActions"] if a["type"] == "forward"}
            served = [s for s in self.services if groups & set(s.target_groups)]
            if not served:
                continue
            name = dns[listener.outputs["loadBalancerArn"]]
            balancer = Balancer(name)
            self._balancers.add(balancer, ports.get(served[0].spec.role, 0))
            balancers[name] = balancer
            for service in served:
                service.balancers.append(balancer)
        return balancers

    # --- the loop -------------------------------------------------------------------------------------------------

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> LocalEcs:
        """Run every service at its desired count, wait until all are healthy, then keep reconciling."""
        self.reconcile()
        deadline = time.monotonic() + timeout
        while True:
            waiting = [s.name for s in self.services if len(s.healthy()) < s.desired]
            if not waiting:
                break
            if time.monotonic() > deadline:
                raise LocalEcsError(f"{', '.join(waiting)} not healthy within {timeout:.0f} s; see {self.logs}")
            time.sleep(0.1)
            self.reconcile()
        self.reconcile()  # the balancers learn of the tasks that just became healthy
        self._loop = threading.Thread(target=self._run, name="local-ecs", daemon=True)
        self._loop.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.reconcile()
            except Exception as error:  # noqa: BLE001 - the emulator may be going away (Ctrl-C); try again
                self.on_event(f"local ECS: round skipped: {error}")

    def reconcile(self) -> None:
        """One round: read desired counts, replace dead tasks, start or stop tasks, update the balancers."""
        with self._lock:
            for service in self.services:
                service.desired = self._desired(service)
                for task in [t for t in service.tasks if not t.alive()]:
                    service.tasks.remove(task)
                    code = task.process.returncode if task.process else None
                    if not self._stop.is_set():
                        self.on_event(
                            f"{service.spec.role} task {task.task_id} exited with code {code}: ECS starts a replacement"
                        )
                while self._provisioned(service) and len(service.tasks) < service.desired and not self._stop.is_set():
                    task = self._launch(service)
                    service.tasks.append(task)
                    if self._loop is not None:  # after start(): a change people should see
                        self.on_event(f"{service.spec.role} task {task.task_id} starting (desired {service.desired})")
                extra = self._scale_in_choice(service)
                if extra:
                    service.tasks = [task for task in service.tasks if task not in extra]
                    self._update_balancers(service)
                    for task in extra:
                        self.on_event(f"{service.spec.role} task {task.task_id} stopping (desired {service.desired})")
                        threading.Thread(target=task.stop, name=f"stop-{task.task_id}", daemon=True).start()
                self._update_balancers(service)

    def _provisioned(self, service: LocalService) -> bool:
        """Whether one more of the tasks the service wants may start now: after start(), only `startup_seconds`
        after it was wanted (Fargate provisions each task and pulls its image before the container starts)."""
        missing = service.desired - len(service.tasks)
        if self._loop is None or not self.startup_seconds:
            return missing > 0
        wanted = self._provisioning.setdefault(service.name, [])
        del wanted[max(0, missing) :]  # no longer wanted: the newest requests go first
        now = time.monotonic()
        wanted += [now] * (missing - len(wanted))
        if wanted and now - wanted[0] >= self.startup_seconds:
            wanted.pop(0)
            return True
        return False

    def provisioning(self, service: LocalService) -> int:
        """Tasks wanted and not started yet (Fargate's PROVISIONING and PENDING): billed, not serving."""
        return len(self._provisioning.get(service.name, []))

    def _scale_in_choice(self, service: LocalService) -> list[Task]:
        """The tasks to stop to reach the desired count: unprotected ones, newest first; protected ones wait."""
        surplus = len(service.tasks) - service.desired
        if surplus <= 0:
            return []
        unprotected = [task for task in reversed(service.tasks) if not self.agent.protected(task.task_id)]
        return unprotected[:surplus]

    def _desired(self, service: LocalService) -> int:
        found = self._ecs.describe_services(cluster=service.cluster, services=[service.name])["services"]
        return int(found[0]["desiredCount"]) if found and found[0].get("status") == "ACTIVE" else 0

    def _launch(self, service: LocalService) -> Task:
        service.started += 1
        task_id = f"{service.spec.role}-{service.started}"
        log = self.logs / service.name / f"{task_id}.log"
        log.unlink(missing_ok=True)  # a log left by an earlier run of the system is not this task's
        service.logs.append(log)
        task = service.spec.task(log, {contract.ENV_ECS_AGENT_URI: self.agent.uri_for(task_id)})
        try:
            return task.launch()
        except (TaskError, OSError) as error:
            raise LocalEcsError(f"{service.name}: cannot start a task: {error}") from error

    def _update_balancers(self, service: LocalService) -> None:
        healthy = service.healthy()
        service.healthy_count = len(healthy)
        ports = [task.port for task in healthy]
        for balancer in service.balancers:
            balancer.set_targets(ports)

    def stop(self) -> None:
        """Stop every task as ECS does (in parallel, each within its stop timeout), then the balancers."""
        self._stop.set()
        if self._loop is not None:
            self._loop.join(timeout=10)
        with self._lock:
            tasks = [task for service in self.services for task in service.tasks]
            for service in self.services:
                service.tasks = []
                self._update_balancers(service)
        for task in tasks:
            task.terminate()
        for task in tasks:
            task.stop()
        self._balancers.close()
        self.agent.close()

    # --- for people and tests ---------------------------------------------------------------------------------

    def service(self, role: str) -> LocalService:
        return service_of(self.services, role)

    def url_of(self, role: str) -> str:
        balancers = self.service(role).balancers
        if not balancers:
            raise LocalEcsError(f"the {role} service has no load balancer")
        return balancers[0].url

    def local_outputs(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """The stack outputs with each load balancer URL pointing at its local balancer."""
        local = dict(outputs)
        for key, value in outputs.items():
            if isinstance(value, str) and "://" in value:
                host = value.split("://", 1)[1].split("/", 1)[0]
                if host in self.balancers:
                    local[key] = self.balancers[host].url
        return local
