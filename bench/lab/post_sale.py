"""After Part VI, `python -m ops.report` on the local system for one strategy's sale, and its figures checked against
the lab's own measurements of the same run (issue 22, part 3).

The report runs as an operator runs it after a real sale: a subprocess reading the deployment's outputs file, with
the stack file as the lab deployed it (the stack file plus the lab's config, as `pulumi config set` would leave it:
the scheduled strategy's sale is in its calendar). The scheduled strategy's sale is named by the calendar (`--sale`);
without it (`--quick` runs no scheduled strategy) the pre-scaled run's orders are named by `--from/--to`. The report
works in wall-clock seconds and the lab in the report's time, so its durations are multiplied by K before they are
compared: within the report's metric resolution (one period) for a figure read from CloudWatch, exactly for one read
from the orders table (the same records the lab reads).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bench.lab.strategies import OrderTimes, StrategyRun
from bench.localaws.deployer import load_config, with_overrides
from ops import stack
from ops.report.run import HIGH_RESOLUTION_PERIODS
from stackconfig import files

TABLE_TOLERANCE = 1e-3  # seconds: both read the same records


@dataclass(frozen=True)
class Agreement:
    figure: str
    lab: float
    report: float  # converted to the lab's units
    tolerance: float
    source: str

    @property
    def agrees(self) -> bool:
        return math.isclose(self.lab, self.report, abs_tol=self.tolerance)


@dataclass(frozen=True)
class PostSale:
    strategy: str
    command: str
    path: Path  # report.md
    period: int
    verdict: str
    agreements: tuple[Agreement, ...]

    @property
    def agrees(self) -> bool:
        return all(a.agrees for a in self.agreements)


def period_for(feed_seconds: float) -> int:
    """The shortest period GetMetricData accepts that holds at least one of the local feed's samples."""
    return next((p for p in HIGH_RESOLUTION_PERIODS if p >= feed_seconds), 60)


def write_stack_file(stack_name: str, overrides: Mapping[str, Any], directory: Path) -> Path:
    """The stack file as the lab deployed it."""
    config = with_overrides(load_config(stack_name), overrides)
    path = directory / files.stack_file(stack_name).name
    path.write_text(yaml.safe_dump({"config": config}, sort_keys=True))
    return path


def run_report(args: Sequence[str]) -> dict[str, Any]:
    command = [sys.executable, "-m", "ops.report", *args, "--json"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}  # from the outputs file, as a user
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    if done.returncode != 0:
        raise stack.OpsError(f"python -m ops.report failed: {done.stderr.strip()[-500:]}")
    return dict(json.loads(done.stdout))


def window_args(records: Sequence[OrderTimes]) -> list[str]:
    """--from/--to around the run's orders."""
    created = [r.created_at for r in records]

    def iso(t: float) -> str:
        return datetime.fromtimestamp(t, tz=UTC).isoformat()

    return ["--from", iso(min(created) - 1), "--to", iso(max(created) + 1)]


def compare(run: StrategyRun, records: Sequence[OrderTimes], report: Mapping[str, Any], k: float) -> list[Agreement]:
    figures, period = report["figures"], float(report["window"]["period_seconds"])

    def measured(key: str) -> float:
        value = figures[key]["measured"]
        return math.nan if value is None else float(value)

    def wait_tolerance(key: str) -> float:
        return TABLE_TOLERANCE if figures[key]["source"].startswith("orders table") else period * k

    rows = [
        Agreement("orders accepted", run.accepted, measured("accepted"), 0, figures["accepted"]["source"]),
        Agreement(
            "orders paid or declined",
            sum(1 for r in records if r.finished_at is not None),
            measured("paid") + measured("failed"),
            0,
            figures["paid"]["source"],
        ),
    ]
    for p in (50, 95, 99):
        key = f"wait_p{p}"
        rows.append(
            Agreement(f"wait p{p} (s)", run.wait(p), measured(key) * k, wait_tolerance(key), figures[key]["source"])
        )
    rows.append(
        Agreement(
            "worker tasks at the peak", run.sale_tasks, measured("tasks_peak"), 0, figures["tasks_peak"]["source"]
        )
    )
    return rows


def markdown(post: PostSale, results: Path | None) -> list[str]:
    """The check; `results`: the folder to link the report from (None: named, not linked)."""
    where = f"[its report]({post.path.relative_to(results)})" if results else f"its report ({post.path.name})"
    lines = [
        f"`{post.command}` on the {post.strategy} run's sale, after Part VI: {where}. Its figures beside "
        f"the lab's own (the report's durations x K; tolerance: one {post.period} s metric period x K for a figure "
        "read from CloudWatch, none for one read from the orders table):",
        "",
        "| Figure | Lab | ops.report | Agrees | Report's source |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {a.figure} | {a.lab:,.2f} | {a.report:,.2f} | {'yes' if a.agrees else '**no**'} | {a.source} |"
        for a in post.agreements
    ]
    return lines + ["", f"Its verdict: {post.verdict}"]


def to_json(post: PostSale) -> dict[str, Any]:
    return {
        "strategy": post.strategy,
        "command": post.command,
        "report": str(post.path),
        "agrees": post.agrees,
        "agreements": [asdict(a) | {"agrees": a.agrees} for a in post.agreements],
    }
