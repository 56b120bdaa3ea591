"""`python -m ops.config`: check stack files as the Pulumi program checks its config, or list the keys it reads.

Every `Pulumi.<stack>.yaml` of the repository by default, or the files given: each problem is one line naming the
file, the key, the value and what is allowed (exit 1 if any), with no Pulumi CLI needed. `--keys` lists every key
with its type, default, allowed range and help text, as `stackconfig.schema` defines them (with --json, the model's
JSON Schema). `--project-config` prints the `config:` declarations of Pulumi.yaml made from the same model (the suite
checks Pulumi.yaml holds exactly these).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from ops import stack
from planning import calendar
from stackconfig import files, schema


def check(paths: list[Path]) -> list[dict[str, Any]]:
    """Each file's problems (none: the program would accept its config)."""
    results = []
    for path in paths:
        problems: list[str] = []
        try:
            config = schema.read_stack_file(path)
        except schema.ConfigError as error:  # not a stack file at all
            results.append({"file": str(path), "ok": False, "problems": [str(error)]})
            continue
        try:
            schema.region_of(config, source=path.name)
        except schema.ConfigError as error:
            problems.append(str(error))
        try:
            checked = schema.from_config(config, source=path.name)
            # What the program checks next, when it computes the calendar's scheduled actions.
            calendar.schedule(checked.sales, calendar.inputs_of(checked), datetime.now(UTC))
        except schema.ConfigError as error:
            problems += str(error).splitlines()
        except calendar.CalendarError as error:
            problems.append(f"{path.name}: {error}")
        results.append({"file": str(path), "ok": not problems, "problems": problems})
    return results


def _kind(prop: dict[str, Any]) -> str:
    if prop.get("secret"):
        return "secret string"
    if prop.get("type") == "array":
        return "list of " + ("sales" if "$ref" in prop.get("items", {}) else f"{prop['items']['type']}s")
    return str(prop.get("type", "?"))


def keys_table() -> str:
    """Every key: type, default, range or choices, help."""
    lines = []
    for key, prop in schema.StackConfig.model_json_schema(by_alias=True)["properties"].items():
        allowed = (
            f" {prop['minimum']:g}..{prop['maximum']:g}"
            if "minimum" in prop
            else f" {' | '.join(prop['enum'])}"
            if "enum" in prop
            else ""
        )
        default = "" if prop.get("default") in (None, "", []) else f", default {json.dumps(prop['default'])}"
        lines.append(f"{key:<26} {_kind(prop)}{allowed}{default}\n{'':<26} {prop['description']}")
    return "\n".join(lines)


def project_config_yaml() -> str:
    """Pulumi.yaml's `config:` block, as the model declares the keys."""
    return str(yaml.safe_dump({"config": schema.project_config()}, sort_keys=False, width=116))


def command(args: argparse.Namespace) -> int:
    if args.project_config:
        print(project_config_yaml(), end="")
        return 0
    if args.keys:
        stack.emit(args, schema.StackConfig.model_json_schema(by_alias=True), keys_table())
        return 0
    results = check(args.files or files.stack_files())
    text = "\n".join(line for r in results for line in (r["problems"] or [f"{Path(r['file']).name}: ok"]))
    stack.emit(args, results, text)
    return 0 if all(r["ok"] for r in results) else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ops.config", description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="*", type=Path, help="stack files (default: every Pulumi.*.yaml of the repository)")
    p.add_argument("--keys", action="store_true", help="list the config keys instead")
    p.add_argument(
        "--project-config",
        action="store_true",
        help="print Pulumi.yaml's config: declarations (type, default, help of every key)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(argv: list[str] | None = None) -> int:
    return stack.run(parser(), command, argv)


if __name__ == "__main__":
    sys.exit(main())
