"""The role registry: the services the one image runs (`python -m app ROLE`, the container's ROLE).

A role is one RoleSpec in ROLES; the dispatcher (app/__main__.py), the settings (app/settings.py `load`), the container
health check (app/healthcheck.py) and the local runtime derive what they do for a role from it. Its own module, not
app/contract.py: its entries name the service modules, which the image ships and the notifier Lambda (which imports
the contract) does not. Standard library only, like the contract: the program and ops import it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from app import contract


class HealthCheck(StrEnum):
    """How a task of a role is known to be healthy: by `python -m app.healthcheck` in the container, and by the local
    ECS for its processes."""

    HTTP = "http"  # GET contract.HEALTH_PATH on the task's port answers 200 (the load balancer checks the same path)
    HEARTBEAT = "heartbeat"  # the role touches its heartbeat file (contract.ENV_HEARTBEAT_FILE) while it works


@dataclass(frozen=True)
class RoleSpec:
    """One role. `entry` and `settings` are "module:function" references (resolved when the role starts, so the
    program and ops import no service code): `settings` reads the role's settings from the environment (a function of
    app.settings, raising SettingsError), `entry` gets them. A web role's entry returns the ASGI app that
    app.http_server serves on the container port (its settings carry `http`, the server's limits); another role's
    entry runs the service until SIGTERM."""

    name: str
    web: bool  # listens on contract.CONTAINER_PORT behind a load balancer, checking contract.HEALTH_PATH
    entry: str
    settings: str

    @property
    def health_check(self) -> HealthCheck:
        """A web role answers its load balancer's health check; a role without a port has only its heartbeat."""
        return HealthCheck.HTTP if self.web else HealthCheck.HEARTBEAT


class Role(StrEnum):
    """The registered roles' names, for code that means one of them (a typo is a type error, not a silent miss)."""

    SYNC = "sync"
    RECEIVER = "receiver"
    WORKER = "worker"


# The registry: everything that handles roles in general (the dispatcher, the settings, the health check, the local
# runtime) reads it, so a role added here is known to all of them. Each role's IAM permissions stay with the grant
# methods of the resources it uses (components/pipeline.py), which the program gives its service.
ROLES: Final[dict[str, RoleSpec]] = {
    spec.name: spec
    for spec in (
        RoleSpec(Role.SYNC.value, web=True, entry="app.sync_service:build", settings="app.settings:sync"),
        RoleSpec(Role.RECEIVER.value, web=True, entry="app.receiver:build", settings="app.settings:receiver"),
        RoleSpec(Role.WORKER.value, web=False, entry="app.worker:run", settings="app.settings:worker"),
    )
}


class UnknownRole(KeyError):
    """A role name that is not in ROLES; the message lists the registered ones."""

    def __str__(self) -> str:
        return str(self.args[0])


def role(name: str) -> RoleSpec:
    """The registered role called `name`."""
    try:
        return ROLES[name]
    except KeyError:
        raise UnknownRole(f"{contract.ENV_ROLE} {name!r} is not a role ({' | '.join(ROLES)})") from None
