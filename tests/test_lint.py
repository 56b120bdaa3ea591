"""The code is linted and formatted by ruff, with the rules in pyproject.toml: what CI checks is what a developer
runs (`ruff check .` and `ruff format --check .`)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stackconfig.files import ROOT


@pytest.mark.parametrize("command", [("check", "."), ("format", "--check", ".")], ids=["check", "format"])
def test_ruff_is_clean(command: tuple[str, ...]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
