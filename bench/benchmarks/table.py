"""The report's figures, the goals (issues 6 and 12), the table that puts our measurements beside them, and the
table that puts flashsale's worker beside its peers measured in the same run.

A measurement that did not finish is in the result as its identity and `"error": "<why>"` (benchmarks.__main__),
and in the tables as a row `did not finish: <why>` in place of its figures."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from app import contract
from planning.report import (
    REPORT_ACCEPT_LATENCY_MS,
    REPORT_WORKER_CPU_PERCENT,
    REPORT_WORKER_MEMORY_MB,
    REPORT_WORKER_TASK_LIMIT,
)

# The report's worker task at its limit: 97.1 % of 0.25 vCPU for 200 / 3 s = 66.6 orders/s, i.e. ~3.6 ms per order.
REPORT_WORKER_RATE = REPORT_WORKER_TASK_LIMIT / contract.SERVICE_DEFAULTS.payment_seconds
REPORT_WORKER_CPU_MS = 1000 * contract.TASK_CPU_UNITS / 1024 * REPORT_WORKER_CPU_PERCENT / 100 / REPORT_WORKER_RATE
GOAL_WORKER_CPU_MS = 2.0
GOAL_EFFICIENCY = 0.95  # at and above REPORT_WORKER_TASK_LIMIT workers
GOAL_PEAK_RSS_MB = 200.0
GOAL_RECEIVER_CPU_MS = 2.0  # at the report's 60 orders/s
GOAL_RECEIVER_CAPACITY_CPU_MS = 1.0  # at capacity, where orders share calls
GOAL_CAPACITY_RATE = 600.0  # orders/s accepted by one process...
GOAL_CAPACITY_SHARE = 0.9  # ...or this share of the emulator's ceiling for the same calls, whichever is lower
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


def unfinished(measurement: dict[str, Any]) -> str:
    """The cell of a measurement that did not finish."""
    return f"did not finish: {measurement['error']}"


def rows(result: dict[str, Any]) -> list[Row]:
    """The table, from the JSON result of a run (so `--json` and the table never disagree)."""
    out: list[Row] = []
    biggest = max((level["workers"] for level in result["worker"]), default=0)  # where the memory goal applies
    for level in result["worker"]:
        n = level["workers"]
        if "error" in level:
            out.append(Row(f"worker {n}", "-", unfinished(level), "-", False))
            continue
        big = n >= REPORT_WORKER_TASK_LIMIT
        out.append(
            Row(
                f"worker {n}: CPU per processed order",
                f"{REPORT_WORKER_CPU_MS:.1f} ms" if n == REPORT_WORKER_TASK_LIMIT else "-",
                f"{level['cpu_ms_per_order']:.2f} ms",
                f"<= {GOAL_WORKER_CPU_MS:g} ms",
                _at_most(level["cpu_ms_per_order"], GOAL_WORKER_CPU_MS),
            )
        )
        out += _wait_metric_rows(result, level)
        out.append(
            Row(
                f"worker {n}: processed rate / (workers / payment time)",
                "100 %" if n == REPORT_WORKER_TASK_LIMIT else "-",
                f"{100 * level['efficiency']:.1f} % ({level['orders'] / level['drain_seconds']:.1f}/s of "
                f"{n / level['payment_seconds']:.1f}/s)",
                f">= {100 * GOAL_EFFICIENCY:g} %" if big else "-",
                level["efficiency"] >= GOAL_EFFICIENCY if big else None,
            )
        )
        out.append(
            Row(
                f"worker {n}: peak RSS",
                f"{REPORT_WORKER_MEMORY_MB:g} MB" if n == REPORT_WORKER_TASK_LIMIT else "-",
                f"{level['peak_rss_mb']:.0f} MB",
                f"<= {GOAL_PEAK_RSS_MB:g} MB" if n == biggest else "-",
                _at_most(level["peak_rss_mb"], GOAL_PEAK_RSS_MB) if n == biggest else None,
            )
        )
    return out + (_receiver_rows(result) if "receiver" in result else [])


def _wait_metric_rows(result: dict[str, Any], on: dict[str, Any]) -> list[Row]:
    """What the buyers' wait metric costs at one level: CPU and log bytes per order with it (as deployed) beside
    without it, measured in the same run; no goal (issue 22 asks for the figures)."""
    n = on["workers"]
    off = next((level for level in result.get("worker_no_wait_metric", []) if level["workers"] == n), None)
    if off is None:
        return []
    figure = f"worker {n}: with the wait metric / without (CPU, log per order)"
    if "error" in off:
        return [Row(figure, "-", unfinished(off), "-", None)]
    return [
        Row(
            figure,
            "-",
            f"{on['cpu_ms_per_order']:.2f} / {off['cpu_ms_per_order']:.2f} ms, "
            f"{on['log_bytes_per_order']:.0f} / {off['log_bytes_per_order']:.0f} B",
            "-",
            None,
        )
    ]


def _receiver_rows(result: dict[str, Any]) -> list[Row]:
    ceiling, bench = result["backend"], result["receiver"]
    ceiling_row = Row(
        "backend ceiling: the receiver's batched calls, plain boto3 client",
        "-",
        unfinished(ceiling)
        if "error" in ceiling
        else f"{ceiling['rate']:.0f} orders/s ({ceiling['threads']} threads, {ceiling['orders_per_call']} "
        "records a call)",
        "-",
        None,
    )
    if "error" in bench:
        return [Row("receiver", "-", unfinished(bench), "-", False), ceiling_row]
    at60, plain, capacity, overload = (
        bench[k] for k in ("report_rate", "report_rate_plain_http", "capacity", "overload")
    )
    latency = REPORT_ACCEPT_LATENCY_MS
    capacity_goal = min(GOAL_CAPACITY_RATE, GOAL_CAPACITY_SHARE * ceiling["rate"])
    return [
        Row(
            "receiver: CPU per accepted order (60/s, TLS)",
            "-",
            f"{at60['cpu_ms_per_accepted']:.2f} ms",
            f"<= {GOAL_RECEIVER_CPU_MS:g} ms",
            _at_most(at60["cpu_ms_per_accepted"], GOAL_RECEIVER_CPU_MS),
        ),
        # The goal is for the receiver as deployed, over TLS; this row tells how much of it TLS takes.
        Row(
            "receiver: CPU per accepted order (60/s, plain HTTP)",
            "-",
            f"{plain['cpu_ms_per_accepted']:.2f} ms",
            "-",
            None,
        ),
        Row(
            "receiver: CPU per accepted order (capacity)",
            "-",
            f"{capacity['cpu_ms_per_accepted']:.2f} ms",
            f"<= {GOAL_RECEIVER_CAPACITY_CPU_MS:g} ms",
            _at_most(capacity["cpu_ms_per_accepted"], GOAL_RECEIVER_CAPACITY_CPU_MS),
        ),
        Row(
            "receiver: orders per call, records / events (60/s; capacity)",
            "-",
            f"{at60['records_per_call']:.1f} / {at60['events_per_call']:.1f}; "
            f"{capacity['records_per_call']:.1f} / {capacity['events_per_call']:.1f}",
            "-",
            None,
        ),
        Row(
            "receiver: accept latency p50 / p95 / p99 (p99 inside the receiver) (60/s)",
            f"{latency['p50']:g} / {latency['p95']:g} / {latency['p99']:g} ms",
            f"{at60['p50_ms']:.1f} / {at60['p95_ms']:.1f} / {at60['p99_ms']:.1f} ms ({at60['inside_p99_ms']:.1f} ms)",
            f"p99 <= {GOAL_ACCEPT_P99_MS:g} ms",
            _at_most(at60["p99_ms"], GOAL_ACCEPT_P99_MS),
        ),
        Row(
            "receiver: accepted at 60/s offered",
            "100 %",
            f"{at60['accepted']} of {at60['requests']}",
            "all",
            at60["accepted"] == at60["requests"],
        ),
        ceiling_row,
        Row(
            "receiver capacity (one process)",
            "-",
            f"{capacity['accepted_rate']:.0f} orders/s = {100 * result['receiver_to_backend']:.0f} % of the ceiling",
            f">= {capacity_goal:.0f}/s ({GOAL_CAPACITY_RATE:.0f}/s or {100 * GOAL_CAPACITY_SHARE:.0f} % of the "
            "ceiling, the lower)",
            capacity["accepted_rate"] >= capacity_goal,
        ),
        Row(
            "overload: accepted rate at 3x capacity",
            "-",
            f"{overload['accepted_rate']:.0f}/s of {overload['offered_rate']:.0f}/s offered",
            f">= {100 * GOAL_OVERLOAD_KEPT:g} % of capacity",
            overload["accepted_rate"] >= GOAL_OVERLOAD_KEPT * capacity["accepted_rate"],
        ),
        Row(
            "overload: p99 of accepted (inside the receiver)",
            "-",
            f"{overload['p99_ms']:.0f} ms ({overload['inside_p99_ms']:.0f} ms)",
            f"<= {GOAL_OVERLOAD_P99_MS:g} ms",
            _at_most(overload["p99_ms"], GOAL_OVERLOAD_P99_MS),
        ),
        Row(
            "overload: shed with 503 (+ Retry-After)",
            "-",
            f"{100 * overload['shed_share']:.0f} % of requests, Retry-After "
            f"{'on every 503' if bench['retry_after'] else 'MISSING'}",
            "503 + Retry-After",
            overload["shed_share"] > 0 and bench["retry_after"],
        ),
        Row(
            "overload: timeouts, 5xx but 503, crash",
            "1,178 timeouts (sync)",
            f"{overload['failures']} failures, receiver {'alive' if overload['alive'] else 'DEAD'}",
            "none",
            overload["failures"] == 0 and overload["alive"],
        ),
    ]


@dataclass(frozen=True)
class PeerRow:
    """One figure at one level, for flashsale's worker and each peer (with the peer's value / flashsale's)."""

    figure: str
    values: dict[str, str]  # contender -> the figure, formatted

    def to_json(self) -> dict[str, Any]:
        return {"figure": self.figure, **self.values}


PEER_NAMES = {"flashsale": "flashsale", "celery": "Celery (gevent pool)", "report-threads": "report's design (threads)"}
PEER_FIGURES: tuple[tuple[str, str, str], ...] = (
    # (figure, result key, format)
    ("CPU per processed order", "cpu_ms_per_order", "{:.2f} ms"),
    ("processed rate / (workers / payment time)", "efficiency", "{:.1%}"),
    ("peak RSS", "peak_rss_mb", "{:.0f} MB"),
)


def peer_rows(result: dict[str, Any]) -> list[PeerRow]:
    """flashsale's worker beside each peer at the peers' levels, each peer's figure with its ratio to ours (none
    when ours did not finish); after a level's figures, a row with why each contender that did not finish stopped."""
    ours = {level["workers"]: level for level in result["worker"]}
    out: list[PeerRow] = []
    for workers in sorted({peer["workers"] for peer in result["peers"]}):
        base = ours[workers]
        contenders = [base, *(p for p in result["peers"] if p["workers"] == workers)]
        for figure, key, fmt in PEER_FIGURES:
            values: dict[str, str] = {}
            for level in contenders:
                if "error" in level:
                    values[level["contender"]] = "-"
                elif level is base or "error" in base:
                    values[level["contender"]] = fmt.format(level[key])
                else:
                    ratio = level[key] / base[key] if base[key] else float("nan")
                    values[level["contender"]] = f"{fmt.format(level[key])} ({ratio:.2f}x)"
            out.append(PeerRow(f"{workers} workers: {figure}", values))
        failed = {level["contender"]: unfinished(level) for level in contenders if "error" in level}
        if failed:
            out.append(PeerRow(f"{workers} workers", failed))
    return out


def _grid(lines: list[tuple[str, ...]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def render(table: list[Row]) -> str:
    mark = {True: "yes", False: "NO", None: ""}
    return _grid(
        [
            ("figure", "report (Go)", "ours", "goal", "met"),
            *((r.figure, r.report, r.ours, r.goal, mark[r.met]) for r in table),
        ]
    )


def render_peers(table: list[PeerRow]) -> str:
    """Columns: flashsale, then each peer as `value (peer / flashsale)`."""
    contenders = list(dict.fromkeys(name for row in table for name in row.values))
    return _grid(
        [
            ("figure", *(PEER_NAMES.get(c, c) for c in contenders)),
            *((row.figure, *(row.values.get(c, "-") for c in contenders)) for row in table),
        ]
    )


def _markdown_table(lines: list[tuple[str, ...]]) -> list[str]:
    cells = [[cell.replace("|", "\\|") for cell in line] for line in lines]
    return ["| " + " | ".join(cells[0]) + " |", "|" + "|".join("---" for _ in cells[0]) + "|"] + [
        "| " + " | ".join(line) + " |" for line in cells[1:]
    ]


def markdown(result: dict[str, Any]) -> str:
    """The docs' page of a run (`python -m bench.benchmarks --docs`): both tables as Markdown, from the JSON result
    (the same rows as the printed tables), and the machine they were measured on."""
    mark = {True: "yes", False: "NO", None: ""}
    table = rows(result)
    lines = [
        "# Benchmarks, measured",
        "",
        f"{'The quick run' if result.get('quick') else 'A full run'} on {result['machine']['cpus']} CPUs, "
        f"1-minute load average {result['machine']['load_average_1m']:g} at the end, {result['seconds']:g} s. "
        "What each figure means: [performance.md](performance.md).",
        "",
        "## Our figures beside the report's Go system and the goals",
        "",
        *_markdown_table(
            [
                ("figure", "report (Go)", "ours", "goal", "met"),
                *((r.figure, r.report, r.ours, r.goal, mark[r.met]) for r in table),
            ]
        ),
    ]
    peers = peer_rows(result)
    if peers:
        contenders = list(dict.fromkeys(name for row in peers for name in row.values))
        lines += [
            "",
            "## The worker beside its peers (same run; in brackets: the peer's figure / flashsale's)",
            "",
            *_markdown_table(
                [
                    ("figure", *(PEER_NAMES.get(c, c) for c in contenders)),
                    *((row.figure, *(row.values.get(c, "-") for c in contenders)) for row in peers),
                ]
            ),
        ]
    return "\n".join(lines) + "\n"
