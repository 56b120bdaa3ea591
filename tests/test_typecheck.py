"""Everything type-checks (mypy --strict over the paths pyproject.toml lists): the Pulumi program, where mypy
catches the wrong argument names and nested keys that mocks accept and only `pulumi up` would reject (pulumi-aws
ships typed Args/ArgsDict classes), and the services, the stack config, the ops commands, the planner, the bench and
the tests."""

from __future__ import annotations

import subprocess
import sys
import tomllib

import pytest

from stackconfig.files import ROOT

POLICY_PACK = "policypack/flashsale_policies"  # the pack's rules: a package inside the pack's own folder


def test_the_type_check_covers_every_package() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["files"])
    packages = {path.name for path in ROOT.iterdir() if (path / "__init__.py").exists()}
    assert listed == packages | {"__main__.py", POLICY_PACK}, (
        f"pyproject.toml mypy files: {sorted(listed)}; packages: {sorted(packages)}"
    )


@pytest.mark.slow  # ~3 min cold on 2 cores (pulumi_aws is large); seconds with a warm .mypy_cache
@pytest.mark.timeout(900)  # cold beside other work it passed the suite's 300 s (a new worktree, a loaded machine)
def test_everything_that_runs_type_checks() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
