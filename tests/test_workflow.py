"""The GitHub workflow teams start from (.github/): linted offline against GitHub's own schemas (check-jsonschema
ships them; nothing is downloaded), and checked for what a schema cannot see: tests before any Pulumi command, a
policy-pack preview per stack file on pull requests, `pulumi up` on main only behind the approval environment, and
OIDC instead of stored cloud keys."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackconfig.files import ROOT, stack_of
from tests.infra_mocks import STACK_FILES

WORKFLOW = ROOT / ".github" / "workflows" / "pulumi.yml"
SETUP_ACTION = ROOT / ".github" / "actions" / "pulumi-setup" / "action.yml"
LOCAL_SETUP = "./.github/actions/pulumi-setup"


def lint(path: Path, schema: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def load(path: Path) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load(path.read_text())
    return document


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def uses(job: dict[str, Any], action: str) -> dict[str, Any]:
    (step,) = [s for s in steps(job) if str(s.get("uses", "")).split("@")[0] == action]
    return step


@pytest.mark.parametrize(
    ("path", "schema"), [(WORKFLOW, "vendor.github-workflows"), (SETUP_ACTION, "vendor.github-actions")]
)
def test_the_workflow_passes_the_offline_lint(path: Path, schema: str) -> None:
    done = lint(path, schema)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_lint_refuses_a_broken_workflow(tmp_path: Path) -> None:
    broken = load(WORKFLOW)
    del broken["jobs"]["preview"]["runs-on"]
    broken["jobs"]["up"]["strategy"]["max-parallel"] = "one"
    path = tmp_path / "pulumi.yml"
    path.write_text(yaml.safe_dump(broken))
    done = lint(path, "vendor.github-workflows")
    assert done.returncode == 1 and "runs-on" in done.stdout + done.stderr, done.stdout


def test_tests_run_before_any_pulumi_command() -> None:
    jobs = load(WORKFLOW)["jobs"]
    assert [s.get("run") for s in steps(jobs["test"]) if "run" in s] == ["make test"]
    for name in ("preview", "up"):
        assert jobs[name]["needs"] == "test", name


def test_pull_requests_preview_every_stack_file_with_the_policy_pack() -> None:
    workflow = load(WORKFLOW)
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"pull_request", "push"}
    preview = workflow["jobs"]["preview"]
    assert preview["if"] == "github.event_name == 'pull_request'"
    assert sorted(preview["strategy"]["matrix"]["stack"]) == sorted(stack_of(path) for path in STACK_FILES)
    action = uses(preview, "pulumi/actions")["with"]
    assert (action["command"], action["policyPacks"]) == ("preview", "policypack")
    assert action["stack-name"].endswith("/${{ matrix.stack }}")


def test_up_runs_on_main_only_behind_the_approval_environment() -> None:
    up = load(WORKFLOW)["jobs"]["up"]
    assert up["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert up["environment"] == "production"
    assert sorted(up["strategy"]["matrix"]["stack"]) == sorted(stack_of(path) for path in STACK_FILES)
    action = uses(up, "pulumi/actions")["with"]
    assert (action["command"], action["policyPacks"]) == ("up", "policypack")


def test_credentials_come_from_oidc_never_from_stored_keys() -> None:
    text = WORKFLOW.read_text() + SETUP_ACTION.read_text()
    assert "secrets." not in text, "a stored secret: use the OIDC exchanges of the setup action"
    jobs = load(WORKFLOW)["jobs"]
    assert "id-token" not in load(WORKFLOW)["permissions"], "only the Pulumi jobs may request an OIDC token"
    for name in ("preview", "up"):
        assert jobs[name]["permissions"]["id-token"] == "write", name
        assert uses(jobs[name], LOCAL_SETUP)["with"]["aws-role-arn"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}", name
    setup = {str(s.get("uses", "")).split("@")[0] for s in load(SETUP_ACTION)["runs"]["steps"]}
    assert {"pulumi/auth-actions", "aws-actions/configure-aws-credentials"} <= setup


def test_the_jobs_set_up_what_pulumi_yaml_and_the_pack_name() -> None:
    """The program runs in Pulumi.yaml's virtualenv and the pack in PulumiPolicy.yaml's: the setup makes both."""
    program_venv = load(ROOT / "Pulumi.yaml")["runtime"]["options"]["virtualenv"]
    pack_venv = load(ROOT / "policypack" / "PulumiPolicy.yaml")["runtime"]["options"]["virtualenv"]
    (install,) = [s["run"] for s in load(SETUP_ACTION)["runs"]["steps"] if "run" in s]
    assert f"make {program_venv}/.requirements-installed" in install
    assert f"python -m venv policypack/{pack_venv}" in install
    assert f"policypack/{pack_venv}/" in (ROOT / ".gitignore").read_text()


def test_one_python_version() -> None:
    version = (ROOT / ".python-version").read_text().strip()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["mypy"]["python_version"] == version
    assert pyproject["tool"]["ruff"]["target-version"] == "py" + version.replace(".", "")
    assert f"{sys.version_info.major}.{sys.version_info.minor}" == version, "the suite runs on another Python"
