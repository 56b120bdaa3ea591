"""`python -m bench.urn_history`: the URNs every stack had at each point of main's history that could have been
deployed, so a refactor that renames a logical name without an alias is caught (tests/test_urns.py).

main is what CI deploys (`pulumi up` on every push to main, .github/workflows/pulumi.yml), so each first-parent commit
of main that changed the program (its components, `__main__.py`, the contract and config it reads, the stack files)
is a state some stack may be in. For each, the commit's own tree is extracted (`git archive`, nothing checked out)
and its program runs in a child process under echoing Pulumi mocks with that commit's stack files; the URNs and
types it declares are kept. `--write` stores, per stack, every URN ever declared with its type and the first commit
that declared it, in tests/released_urns.json (checked in: old commits do not change, so only new ones are run;
`--all` runs every one again).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any

from stackconfig.files import ROOT

RECORD = ROOT / "tests" / "released_urns.json"
FIRST_PROGRAM = "3d4fb47"  # the first commit with a Pulumi program
PROGRAM_PATHS = (
    "components",
    "__main__.py",
    "app/contract.py",
    "app/alarm_catalogue.py",
    "app/roles.py",
    "stackconfig",
    "Pulumi.normal.yaml",
    "Pulumi.flashsale.yaml",
)

# Run inside the child: the old commit's program, its stack file's config, echoing mocks; prints the URNs as JSON.
_CHILD = r"""
import asyncio, json, runpy, sys
import pulumi, yaml
from pulumi.runtime.mocks import MockMonitor

stack, stack_file = sys.argv[1], sys.argv[2]
ACCOUNT, REGION = "123456789012", "us-west-2"

class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        name = args.inputs.get("name") or f"{args.name}-1a2b3c"
        kind = args.typ.partition(":")[2]
        computed = {"arn": f"arn:aws:{kind.split('/')[0]}:{REGION}:{ACCOUNT}:{name}", "name": name,
                    "url": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}", "bucket": name,
                    "vpcId": "vpc-0", "publicSubnetIds": ["subnet-0a", "subnet-0b"], "privateSubnetIds": [],
                    "imageUri": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/x@sha256:0",
                    "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}",
                    "dnsName": f"{name}.elb.amazonaws.com", "arnSuffix": f"app/{name}/0",
                    "dashboardName": args.inputs.get("dashboardName", name)}
        return f"{args.name}-id", {**computed, **args.inputs}
    def call(self, args):
        if args.token.endswith("getCallerIdentity"):
            return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/x", "userId": "x", "id": ACCOUNT}
        if args.token.endswith("getServiceAccount"):
            return {"arn": "arn:aws:iam::797873946194:root", "id": "797873946194"}
        return {}

asyncio.set_event_loop(asyncio.new_event_loop())
class Engine(MockMonitor):  # URNs as the engine makes them: the parent's whole type chain, the root stack left out
    def make_urn(self, parent, type_, name):
        parent_type = parent.split("::")[2] if parent else ""
        qualified = f"{parent_type}${type_}" if parent_type and parent_type != "pulumi:pulumi:Stack" else type_
        return f"urn:pulumi:{stack}::flashsale::{qualified}::{name}"

config = yaml.safe_load(open(stack_file))["config"]
pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
monitor = Engine(Mocks())
pulumi.runtime.set_mocks(monitor.mocks, project="flashsale", stack=stack, preview=False, monitor=monitor)

@pulumi.runtime.test
def body():
    runpy.run_path("__main__.py", run_name="__main__")
    return pulumi.Output.from_input(None)

body()
print(json.dumps(sorted(monitor.get_registered_resources())))
"""


def program_commits() -> list[str]:
    """main's first-parent commits that changed the program, oldest first (full hashes)."""
    found = subprocess.run(
        ["git", "log", "--first-parent", "--reverse", "--format=%H", f"{FIRST_PROGRAM}^..HEAD", "--", *PROGRAM_PATHS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return found


def urns_at(commit: str, stack: str) -> list[str] | None:
    """The URNs `stack` declared at `commit` (None: no such stack file then)."""
    archive = subprocess.run(["git", "archive", "--format=tar", commit], cwd=ROOT, capture_output=True, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        stack_file = Path(tmp) / f"Pulumi.{stack}.yaml"
        if not stack_file.exists():
            return None
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, stack, str(stack_file)],
            cwd=tmp,
            env={"PYTHONPATH": tmp, "PATH": "/usr/bin:/bin", "PULUMI_TEST_MODE": "true"},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{commit[:7]} {stack}: the program failed:\n{done.stderr[-2000:]}")
    urns: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return urns


def record(rerun_all: bool = False) -> dict[str, Any]:
    """{"commits": [...], "stacks": {stack: {urn: first commit}}}, extending the stored record with new commits."""
    stored: dict[str, Any] = json.loads(RECORD.read_text()) if RECORD.exists() and not rerun_all else {}
    done = set(stored.get("commits", []))
    stacks: dict[str, dict[str, str]] = stored.get("stacks", {"normal": {}, "flashsale": {}})
    commits = program_commits()
    for commit in commits:
        if commit in done:
            continue
        for stack, seen in stacks.items():
            for urn in urns_at(commit, stack) or []:
                seen.setdefault(urn, commit[:7])
        print(f"{commit[:7]}: done", file=sys.stderr)
    return {"commits": commits, "stacks": {s: dict(sorted(u.items())) for s, u in stacks.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.urn_history", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"store the record in {RECORD.relative_to(ROOT)}")
    parser.add_argument("--all", action="store_true", help="run every commit again, not only new ones")
    args = parser.parse_args(argv)
    result = record(rerun_all=args.all)
    text = json.dumps(result, indent=1) + "\n"
    if args.write:
        RECORD.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
