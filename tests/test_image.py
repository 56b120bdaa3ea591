"""The service image, checked without a Docker engine: what the build context holds and what the Dockerfile says.

No image can be built here, so these read app/Dockerfile and the services' imports: the build context (app/) must
hold everything the services import, the container must run as the non-root user the Pulumi program declares, with a
health check for every role and a writable /tmp under a read-only root filesystem.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from app import contract

APP = Path(__file__).resolve().parent.parent / "app"
DOCKERFILE = (APP / "Dockerfile").read_text()


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


def test_the_build_context_holds_everything_the_services_import() -> None:
    allowed = set(sys.stdlib_module_names) | {"app"} | _requirements()
    for path in sorted(APP.glob("*.py")):
        outside = _top_level_imports(path) - allowed
        assert not outside, f"{path.name} imports {sorted(outside)}: not in app/ nor in app/requirements.txt"


def test_runs_as_the_non_root_user_the_stack_declares() -> None:
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE, re.MULTILINE)
    assert users and users[-1] == str(contract.CONTAINER_UID) and users[-1] not in ("0", "root")


def test_has_a_health_check_for_every_role_and_a_writable_tmp() -> None:
    check = re.search(r"^HEALTHCHECK .*CMD \[(.*)\]", DOCKERFILE, re.MULTILINE)
    assert check and '"app.healthcheck"' in check.group(1)
    assert (APP / "healthcheck.py").exists()
    assert re.search(rf'^VOLUME \["{contract.WRITABLE_PATH}"\]', DOCKERFILE, re.MULTILINE)
    assert re.search(r'^ENTRYPOINT \["python", "-m", "app"\]', DOCKERFILE, re.MULTILINE)
