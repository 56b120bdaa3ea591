"""The Pulumi program type-checks: mypy catches the wrong argument names and nested keys that mocks accept and only
`pulumi up` would reject (pulumi-aws ships typed Args/ArgsDict classes)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.infra_mocks import ROOT


@pytest.mark.slow  # ~50 s cold on 2 cores (pulumi_aws is large); seconds with a warm .mypy_cache
def test_pulumi_program_type_checks() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini", "components", "__main__.py", "local_runtime",
         "app/contract.py"],  # named: mypy.ini silences app/ when followed, and the alarm catalogue must be checked
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
