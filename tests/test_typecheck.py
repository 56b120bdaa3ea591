"""Everything that runs type-checks (mypy --strict over the paths mypy.ini lists): the Pulumi program, where mypy
catches the wrong argument names and nested keys that mocks accept and only `pulumi up` would reject (pulumi-aws
ships typed Args/ArgsDict classes), and the services, the stack config, the ops commands, the planner and the local
runtime."""

from __future__ import annotations

import configparser
import subprocess
import sys

import pytest

from tests.infra_mocks import ROOT

NOT_CHECKED = {"tests", "benchmarks"}  # measurement and test code, not what runs the system
POLICY_PACK = "policypack/flashsale_policies"  # the pack's rules: a package inside the pack's own folder


def test_the_type_check_covers_every_package_that_runs() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "mypy.ini")
    listed = {path.strip() for path in config["mypy"]["files"].split(",")}
    packages = {path.name for path in ROOT.iterdir() if (path / "__init__.py").exists()} - NOT_CHECKED
    assert listed == packages | {"__main__.py", POLICY_PACK}, f"mypy.ini files: {sorted(listed)}; packages: {sorted(packages)}"


@pytest.mark.slow  # ~3 min cold on 2 cores (pulumi_aws is large); seconds with a warm .mypy_cache
def test_everything_that_runs_type_checks() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
