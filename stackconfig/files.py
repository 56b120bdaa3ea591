"""Where the Pulumi project lives: its root (beside `Pulumi.yaml`), its entry point and its stack files.

One definition for every package that needs a path: the program (the image's build context), the operator commands
(`python -m ops.config` checks every stack file), the bench (the local deployer runs `__main__.py`) and the tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
MAIN: Final = ROOT / "__main__.py"


def stack_file(stack: str) -> Path:
    """`Pulumi.<stack>.yaml` at the project root."""
    return ROOT / f"Pulumi.{stack}.yaml"


def stack_files() -> list[Path]:
    return sorted(ROOT.glob("Pulumi.*.yaml"))


def stack_of(path: Path) -> str:
    """`Pulumi.normal.yaml` -> `normal`."""
    return path.name.removeprefix("Pulumi.").removesuffix(".yaml")
