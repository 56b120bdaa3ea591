"""The report's figures, the goals (issue 6) and the table that puts our measurements beside them."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from app import contract

# The report's worker task at its limit: 97.1 % of 0.25 vCPU for 200 / 3 s = 66.6 orders/s, i.e. ~3.6 ms per order.
REPORT_WORKER_RATE = contract.REPORT_WORKER_TASK_LIMIT / contract.SERVICE_DEFAULTS.payment_seconds
REPORT_WORKER_CPU_MS = (1000 * contract.TASK_CPU_UNITS / 1024 * contract.REPORT_WORKER_CPU_PERCENT / 100
                        / REPORT_WORKER_RATE)
GOAL_WORKER_CPU_MS = 2.0
GOAL_EFFICIENCY = 0.95  # at and above REPORT_WORKER_TASK_LIMIT workers
GOAL_PEAK_RSS_MB = 200.0
GOAL_RECEIVER_CPU_MS = 2.5
GOAL_ACCEPT_P99_MS = 25.0
GOAL_OVERLOAD_P99_MS = 250.0
GOAL_OVERLOAD_KEPT = 0.8  # accepted rate under overload, as a share of the measured capacity ("about its capacity")


@dataclass(frozen=True)
class Row:
    figure: str
    report: str  # the report's Go system, or "-"
    ours: str
    goal: str
    met: bool | None  # None: no goal, shown for context

    def to_json(self) -> dict[str, Any]:
        return {"figure": self.figure, "report": self.report, "ours": self.ours, "goal": self.goal, "met": self.met}


def _at_most(value: float, limit: float) -> bool:
    return not math.isnan(value) and value <= limit


def rows(result: dict[str, Any]) -> list[Row]:
    """The table, from the JSON result of a run (so `--json` and the table never disagree)."""
    out: list[Row] = []
    for level in result["worker"]:
        n = level["workers"]
        big = n >= contract.REPORT_WORKER_TASK_LIMIT
        out.append(Row(f"worker {n}: CPU per processed order",
                       f"{REPORT_WORKER_CPU_MS:.1f} ms" if n == contract.REPORT_WORKER_TASK_LIMIT else "-",
                       f"{level['cpu_ms_per_order']:.2f} ms", f"<= {GOAL_WORKER_CPU_MS:g} ms",
                       _at_most(level["cpu_ms_per_order"], GOAL_WORKER_CPU_MS)))
        out.append(Row(f"worker {n}: processed rate / (workers / payment time)",
                       "100 %" if n == contract.REPORT_WORKER_TASK_LIMIT else "-",
                       f"{100 * level['efficiency']:.1f} % ({level['orders'] / level['drain_seconds']:.1f}/s of "
                       f"{n / level['payment_seconds']:.1f}/s)",
                       f">= {100 * GOAL_EFFICIENCY:g} %" if big else "-",
                       level["efficiency"] >= GOAL_EFFICIENCY if big else None))
        out.append(Row(f"worker {n}: peak RSS", f"{contract.REPORT_WORKER_MEMORY_MB:g} MB"
                       if n == contract.REPORT_WORKER_TASK_LIMIT else "-", f"{level['peak_rss_mb']:.0f} MB",
                       f"<= {GOAL_PEAK_RSS_MB:g} MB" if n == max(l["workers"] for l in result["worker"]) else "-",
                       _at_most(level["peak_rss_mb"], GOAL_PEAK_RSS_MB)
                       if n == max(l["workers"] for l in result["worker"]) else None))
    at60, capacity, overload = (result["receiver"][k] for k in ("report_rate", "capacity", "overload"))
    latency = contract.REPORT_ACCEPT_LATENCY_MS
    out += [
        Row("receiver: CPU per accepted order (60/s)", "-", f"{at60['cpu_ms_per_accepted']:.2f} ms",
            f"<= {GOAL_RECEIVER_CPU_MS:g} ms", _at_most(at60["cpu_ms_per_accepted"], GOAL_RECEIVER_CPU_MS)),
        Row("receiver: accept latency p50 / p95 / p99 (60/s)",
            f"{latency['p50']:g} / {latency['p95']:g} / {latency['p99']:g} ms",
            f"{at60['p50_ms']:.1f} / {at60['p95_ms']:.1f} / {at60['p99_ms']:.1f} ms",
            f"p99 <= {GOAL_ACCEPT_P99_MS:g} ms", _at_most(at60["p99_ms"], GOAL_ACCEPT_P99_MS)),
        Row("receiver: accepted at 60/s offered", "100 %", f"{at60['accepted']} of {at60['requests']}",
            "all", at60["accepted"] == at60["requests"]),
        Row("backend ceiling: put+publish, plain boto3 client", "-",
            f"{result['backend']['rate']:.0f} orders/s ({result['backend']['threads']} threads)", "-", None),
        Row("receiver capacity (one process)", "-",
            f"{capacity['accepted_rate']:.0f} orders/s = {100 * result['receiver_to_backend']:.0f} % of the ceiling",
            "-", None),
        Row("overload: accepted rate at 3x capacity", "-",
            f"{overload['accepted_rate']:.0f}/s of {overload['offered_rate']:.0f}/s offered",
            f">= {100 * GOAL_OVERLOAD_KEPT:g} % of capacity",
            overload["accepted_rate"] >= GOAL_OVERLOAD_KEPT * capacity["accepted_rate"]),
        Row("overload: p99 of accepted", "-", f"{overload['p99_ms']:.0f} ms", f"<= {GOAL_OVERLOAD_P99_MS:g} ms",
            _at_most(overload["p99_ms"], GOAL_OVERLOAD_P99_MS)),
        Row("overload: shed with 503 (+ Retry-After)", "-",
            f"{100 * overload['shed_share']:.0f} % of requests, Retry-After "
            f"{'on every 503' if result['receiver']['retry_after'] else 'MISSING'}", "503 + Retry-After",
            overload["shed_share"] > 0 and result["receiver"]["retry_after"]),
        Row("overload: timeouts, 500s, crash", "1,178 timeouts (sync)",
            f"{overload['failures']} failures, receiver {'alive' if overload['alive'] else 'DEAD'}", "none",
            overload["failures"] == 0 and overload["alive"]),
    ]
    return out


def render(table: list[Row]) -> str:
    header = Row("figure", "report (Go)", "ours", "goal", None)
    mark = {True: "yes", False: "NO", None: ""}
    lines = [(r.figure, r.report, r.ours, r.goal, mark[r.met] if r is not header else "met") for r in [header, *table]]
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)
