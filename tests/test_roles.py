"""The role registry (app.roles.ROLES) is the one list of roles: a role registered there is known to the dispatcher
(`python -m app`), the settings, the container health check and the local runtime without any other edit. Tested with
throwaway roles registered by the test, one without a port and one web role."""

from __future__ import annotations

import http.server
import pkgutil
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app import __main__ as dispatcher
from app import contract, healthcheck, roles, settings
from bench.localaws.ecs import LocalEcsError, role_of
from bench.localaws.tasks import Task, TaskArgs

PROBE = roles.RoleSpec("probe", web=False, entry=f"{__name__}:run_probe", settings=f"{__name__}:probe_settings")
PROBE_WEB = roles.RoleSpec(
    "probe-web", web=True, entry=f"{__name__}:build_probe", settings=f"{__name__}:probe_settings"
)
RAN: list[ProbeSettings] = []  # what run_probe was given


@dataclass(frozen=True)
class ProbeSettings:
    greeting: str
    http: settings.HttpSettings


def probe_settings() -> ProbeSettings:
    return ProbeSettings("hello", settings.http())


def run_probe(probe: ProbeSettings) -> None:
    RAN.append(probe)


def build_probe(probe: ProbeSettings) -> None:  # never served here: the web roles' serving is the services' tests
    raise AssertionError("not called")


# The local task processes: a web role's gets --host/--port and must answer GET /health; another's gets its own
# HEARTBEAT_FILE to touch.
WEB_TASK = """
import http.server, sys
port = int(sys.argv[sys.argv.index("--port") + 1])
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""
HEARTBEAT_TASK = """
import os, pathlib, sys, time
if "--port" in sys.argv:
    sys.exit("a role without a port was given one")
pathlib.Path(os.environ["HEARTBEAT_FILE"]).touch()
time.sleep(60)
"""


@pytest.fixture
def probes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(roles.ROLES, PROBE.name, PROBE)
    monkeypatch.setitem(roles.ROLES, PROBE_WEB.name, PROBE_WEB)
    RAN.clear()
    yield


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the handler's API)
        self.send_response(200 if self.path == contract.HEALTH_PATH else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_every_named_role_is_registered_and_resolves() -> None:
    assert set(roles.ROLES) == set(roles.Role)
    for name, role in roles.ROLES.items():
        assert role.name == name
        assert callable(pkgutil.resolve_name(role.entry)), role.entry
        assert callable(pkgutil.resolve_name(role.settings)), role.settings
    assert [r.name for r in roles.ROLES.values() if r.web] == ["sync", "receiver"]
    assert roles.ROLES["worker"].health_check is roles.HealthCheck.HEARTBEAT


def test_unknown_roles_are_named_with_the_registered_ones() -> None:
    with pytest.raises(roles.UnknownRole, match=r"'nope' is not a role \(sync \| receiver \| worker\)"):
        roles.role("nope")
    assert healthcheck.check({contract.ENV_ROLE: "nope"}) == "ROLE 'nope' is not a role (sync | receiver | worker)"


@pytest.mark.usefixtures("probes")
def test_the_dispatcher_offers_and_runs_a_registered_role(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        dispatcher.main(["--help"])
    assert exited.value.code == 0
    assert "{sync,receiver,worker,probe,probe-web}" in capsys.readouterr().out
    assert dispatcher.main(["probe"]) == 0
    assert RAN == [probe_settings()]  # its entry, given what its settings loader read


@pytest.mark.usefixtures("probes")
def test_the_settings_load_a_registered_roles_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.load("probe") == probe_settings()
    monkeypatch.setenv(contract.ENV_MAX_CONNECTIONS, "many")
    with pytest.raises(settings.SettingsError, match=contract.ENV_MAX_CONNECTIONS):
        settings.load("probe-web")
    assert dispatcher.main(["probe-web"]) == 2  # a bad variable is a message and exit 2, not a traceback


@pytest.mark.usefixtures("probes")
def test_the_health_check_follows_the_registered_role(tmp_path: Path, health_server: int) -> None:
    heartbeat = tmp_path / "heartbeat"
    role_without_port = {
        contract.ENV_ROLE: "probe",
        contract.ENV_HEARTBEAT_FILE: str(heartbeat),
        contract.ENV_PORT: str(health_server),
    }
    assert healthcheck.check(role_without_port) == f"no heartbeat file {heartbeat}"  # its port is not asked
    heartbeat.touch()
    assert healthcheck.check(role_without_port) is None
    web = {contract.ENV_ROLE: "probe-web", contract.ENV_HEARTBEAT_FILE: str(heartbeat)}
    assert "unreachable" in str(healthcheck.check(web | {contract.ENV_PORT: "1"}))  # its heartbeat is not read
    assert healthcheck.check(web | {contract.ENV_PORT: str(health_server)}) is None


@pytest.mark.usefixtures("probes")
def test_the_local_runtime_runs_a_registered_role_as_the_registry_says(tmp_path: Path) -> None:
    for role, script in (("probe-web", WEB_TASK), ("probe", HEARTBEAT_TASK)):
        task = Task(
            TaskArgs(
                role=role,
                env={},
                log_path=tmp_path / f"{role}.log",
                command=(sys.executable, "-c", script),
                stop_timeout=2,
            )
        )
        with task.start(timeout=10):  # healthy by the container's health check, or TaskError
            assert task.web is roles.ROLES[role].web
            assert (task.port != 0) is task.web
            assert task.env[contract.ENV_ROLE] == role
        assert not task.healthy()


@pytest.mark.usefixtures("probes")
def test_the_local_ecs_refuses_a_task_definition_that_contradicts_the_registry() -> None:
    port = {"portMappings": [{"containerPort": contract.CONTAINER_PORT}]}
    assert role_of("td:1", port, {contract.ENV_ROLE: "probe-web"}) is PROBE_WEB
    assert role_of("td:1", {}, {contract.ENV_ROLE: "probe"}) is PROBE
    with pytest.raises(LocalEcsError, match=r"role probe is not a web role .*, but its container maps \[\{"):
        role_of("td:1", port, {contract.ENV_ROLE: "probe"})
    with pytest.raises(LocalEcsError, match="role probe-web is a web role .*, but its container maps no port"):
        role_of("td:1", {}, {contract.ENV_ROLE: "probe-web"})
    with pytest.raises(LocalEcsError, match="td:1: ROLE 'nobody' is not a role"):
        role_of("td:1", {}, {contract.ENV_ROLE: "nobody"})
