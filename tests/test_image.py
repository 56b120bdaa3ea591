"""The service image and the Lambdas, checked without a Docker engine: what they ship and what the Dockerfile
says.

No image can be built here, so these read app/Dockerfile, app/.dockerignore and the modules' imports: the build
context (app/ less .dockerignore) must hold exactly what the image's entry points import, the Lambda's bundle exactly
what its handler imports, and app/ nothing that neither imports; the container must run as the non-root user the
Pulumi program declares, with a health check for every role and a writable /tmp under a read-only root filesystem.
"""

from __future__ import annotations

import ast
import fnmatch
import re
import sys
from pathlib import Path

import pytest

from app import contract, healthcheck
from components.alerts import NOTIFIER
from components.functions import AppCode
from components.sweeper import SWEEPER
from stackconfig.files import ROOT

APP = ROOT / "app"
DOCKERFILE = (APP / "Dockerfile").read_text()
# What the image runs: its ENTRYPOINT (`python -m app`) and its HEALTHCHECK (`python -m app.healthcheck`).
IMAGE_ENTRY_POINTS = ("__main__", "healthcheck")
LAMBDA_RUNTIME_PACKAGES = {"boto3", "botocore"}  # what the Lambda Python runtime provides
# A module named in a string (a registry entry such as "app.worker:run", a handler "app.notifier.handler").
MODULE_NAMED = re.compile(r"^app(\.\w+)+(:\w+)?$")


def _requirements() -> set[str]:
    lines = (APP / "requirements.txt").read_text().splitlines()
    return {re.split(r"[=<>\[]", line)[0].strip().lower() for line in lines if line.strip() and line[0] != "#"}


def _top_level_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _app_imports(path: Path) -> set[str]:
    """The app/ modules a module imports, at any depth of its code (also relative imports), or names in a string."""
    modules = {p.stem for p in APP.glob("*.py")}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ("app" + (f".{node.module}" if node.module else "")) if node.level == 1 else node.module or ""
            names = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and MODULE_NAMED.match(node.value):
            names = [node.value.replace(":", ".")]
        else:
            continue
        found |= {parts[1] for parts in (name.split(".") for name in names) if parts[0] == "app" and len(parts) > 1}
    return found & modules


def _closure(*entry_points: str) -> set[str]:
    """app/ files the entry points import, directly or not, with the package's __init__.py."""
    seen, todo = set(), list(entry_points)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo += sorted(_app_imports(APP / f"{module}.py"))
    return {f"{module}.py" for module in seen} | {"__init__.py"}


def _ignored(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatch(name, pattern.rstrip("/")) for pattern in patterns)


def _build_context() -> set[str]:
    """What `COPY . /srv/app` copies: app/ less what .dockerignore excludes (app/ is flat: patterns are names)."""
    lines = (APP / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return {p.name for p in APP.iterdir() if not _ignored(p.name, patterns)}


def test_the_build_context_holds_exactly_what_the_image_runs() -> None:
    shipped = _build_context()
    needed = _closure(*IMAGE_ENTRY_POINTS) | {"requirements.txt"}  # the Dockerfile installs requirements.txt
    assert not needed - shipped, f"the image lacks {sorted(needed - shipped)}: add them to app/ or to its imports"
    assert not shipped - needed, (
        f"the image ships {sorted(shipped - needed)}, which no service imports: "
        "move it out of app/ or list it in app/.dockerignore"
    )


@pytest.mark.parametrize("code", [NOTIFIER, SWEEPER], ids=lambda c: c.handler)
def test_each_lambda_ships_exactly_what_its_handler_imports(code: AppCode) -> None:
    module = code.handler.rsplit(".", 1)[0].removeprefix("app.")
    needed = {f"app/{name}" for name in _closure(module)}
    assert set(code.files) == needed, (
        f"{code.handler}: its files lack {sorted(needed - set(code.files))}, ship "
        f"{sorted(set(code.files) - needed)} it does not import"
    )
    outside = set().union(*(_top_level_imports(APP.parent / f) for f in code.files)) - set(sys.stdlib_module_names)
    assert outside <= {"app"} | LAMBDA_RUNTIME_PACKAGES, f"the Lambda runtime has no {sorted(outside)}"


def test_app_holds_only_what_the_image_or_the_lambdas_import() -> None:
    handlers = [code.handler.rsplit(".", 1)[0].removeprefix("app.") for code in (NOTIFIER, SWEEPER)]
    used = _closure(*IMAGE_ENTRY_POINTS) | _closure(*handlers)
    unused = {p.name for p in APP.glob("*.py")} - used
    assert not unused, f"app/ holds {sorted(unused)}, which neither the services nor the Lambdas import"


def test_the_build_context_holds_everything_the_services_import() -> None:
    allowed = set(sys.stdlib_module_names) | {"app"} | _requirements()
    for name in sorted(_closure(*IMAGE_ENTRY_POINTS)):
        outside = _top_level_imports(APP / name) - allowed
        assert not outside, f"{name} imports {sorted(outside)}: not in app/ nor in app/requirements.txt"


def test_runs_as_the_non_root_user_the_stack_declares() -> None:
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert users and users[-1] == str(contract.CONTAINER_UID) and users[-1] not in ("0", "root")


def test_has_the_stacks_health_check_for_every_role_and_a_writable_tmp() -> None:
    # ECS runs the task definition's health check (healthcheck.HEALTH_CHECK); `docker run` the image's: the same one.
    assert re.findall(r"^HEALTHCHECK .*$", DOCKERFILE, re.MULTILINE) == [healthcheck.HEALTH_CHECK.dockerfile_line()]
    assert (APP / "healthcheck.py").exists()
    assert re.search(rf'^VOLUME \["{contract.WRITABLE_PATH}"\]', DOCKERFILE, re.MULTILINE)
    assert re.search(r'^ENTRYPOINT \["python", "-m", "app"\]', DOCKERFILE, re.MULTILINE)
