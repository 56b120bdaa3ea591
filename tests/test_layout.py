"""The layout's rule, checked: what ships (app/, the Pulumi program, ops/) never imports the bench or the tests, the
packages stack in layers, and no two modules of a package import each other (the contracts in pyproject.toml,
run by import-linter's `lint-imports`)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from stackconfig.files import ROOT

PACKAGES = ("app", "stackconfig", "planning", "components", "ops", "bench", "tests")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter over the packages under `root`, with the contracts of its pyproject.toml."""
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"]
    return subprocess.run(
        command,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )


def copy_of_the_tree(tmp_path: Path) -> Path:
    """The packages' Python files and the contracts, to break on purpose without touching the checkout."""
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.css", "*.js", "*.html")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def test_the_checkout_keeps_every_import_contract() -> None:
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout, done.stdout


def test_a_shipped_module_importing_the_bench_breaks_the_contract(tmp_path: Path) -> None:
    tree = copy_of_the_tree(tmp_path)
    with open(tree / "ops" / "capacity.py", "a") as module:
        module.write("\nfrom bench.localaws import emulators  # noqa: E402\n")
    done = lint_imports(tree)
    assert done.returncode != 0, done.stdout
    assert "never imports the bench or the tests BROKEN" in " ".join(done.stdout.split()), done.stdout
    assert "ops.capacity -> bench.localaws.emulators" in done.stdout, done.stdout


def test_a_circle_between_two_modules_breaks_the_contract(tmp_path: Path) -> None:
    tree = copy_of_the_tree(tmp_path)
    with open(tree / "bench" / "localaws" / "console.py", "a") as module:  # system.py imports console.py
        module.write("\nfrom bench.localaws import system  # noqa: E402\n")
    done = lint_imports(tree)
    assert done.returncode != 0, done.stdout
    assert "No import circles between the modules of one package BROKEN" in " ".join(done.stdout.split()), done.stdout
