"""The lab's results as the report's tables (1.5, 3.4, 5.7: report, predicted, measured, ratio), PNG plots and JSON.

Measured times are converted back to the report's time (x K; rates / K) so every number reads against the report.
The async receiver's response times are not payments and are shown as measured (not scaled).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

from app import contract  # noqa: E402
from bench import docs  # noqa: E402
from bench.lab import post_sale  # noqa: E402
from bench.lab import strategies as lab_strategies  # noqa: E402
from bench.lab.analysis import LevelMeasure, LevelWindow, in_queue  # noqa: E402
from bench.lab.args import LabArgs  # noqa: E402
from bench.lab.post_sale import PostSale  # noqa: E402
from bench.lab.strategies import OrderTimes, StrategyRun  # noqa: E402
from bench.lab.watch import Sample  # noqa: E402
from ops import loadtest  # noqa: E402
from ops.capacity import report_notes  # noqa: E402
from planning import capacity  # noqa: E402
from planning.report import REPORT_ASYNC, REPORT_LEVELS, REPORT_SYNC  # noqa: E402
from stackconfig.alarm_profiles import ALARM_PROFILES  # noqa: E402
from stackconfig.files import stack_file  # noqa: E402
from stackconfig.schema import load_stack_file  # noqa: E402

# The lab's SLO: the flash-sale stack's acceptableLatencySeconds, as its stack file sets it.
LATENCY_SECONDS = load_stack_file(stack_file("flashsale")).acceptable_latency_seconds
FLASH_SALE = loadtest.profile("flashsale", "async")  # the report's flash sale (report time)

D = contract.SERVICE_DEFAULTS
RATE_TOLERANCE = 0.10


def in_lab_time(args: LabArgs) -> str:
    """The report's payment and flash sale at the lab's time scale (its progress line and its report say it)."""
    k = args.time_scale
    return (
        f"payment {D.payment_seconds / k:g} s, flash sale {FLASH_SALE.duration_seconds * args.sale_fraction / k:g}"
        f" s at {FLASH_SALE.rate * k:g} orders/s"
    )


@dataclass(frozen=True)
class PartResult:
    profile: loadtest.LoadProfile  # the report's (unscaled)
    result: loadtest.LoadResult
    records: list[loadtest.RequestRecord]


@dataclass(frozen=True)
class Notification:
    at: float  # epoch: when the readable alert was published
    since: float  # epoch: the start of the sale it belongs to
    subject: str
    body: str


@dataclass(frozen=True)
class LevelResult:
    workers: int
    part: PartResult
    prediction: capacity.WorkerLevel
    measure: LevelMeasure
    window: LevelWindow
    samples: list[Sample]
    notifications: list[Notification]
    records: list[OrderTimes] = field(default_factory=list)  # the orders' records (the fixed strategy's level)


@dataclass(frozen=True)
class LabResult:
    args: LabArgs
    parts: list[PartResult]
    levels: list[LevelResult]
    periods: dict[str, int]
    feed_seconds: float
    sync_slots: int
    quick_changes: Sequence[str]
    strategies: list[StrategyRun] = field(default_factory=list)  # Part VI
    post_sale: PostSale | None = None  # ops.report on a Part VI sale, beside the lab's measurements
    iam_unused: list[str] = field(default_factory=list)  # grants no deployment's calls used (bench.localaws.iam_gate)


def ratio(measured: float, predicted: float) -> str:
    if not predicted or math.isnan(measured):
        return "-"
    return f"{measured / predicted:.2f}"


def _n(value: float, digits: int = 0) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f} %"


# --- Predictions ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyncPrediction:
    paid: float  # payments that finish before the client's timeout (approved or declined)
    accepted: float
    timeouts: float


def sync_prediction(part: PartResult, slots: int) -> SyncPrediction:
    """`slots` payments of S seconds at a time, during the load and until the last request's timeout."""
    p = part.profile
    requests = part.result.requests
    paid = min(requests, slots * (p.duration_seconds * _fraction(part) + p.timeout_seconds) / D.payment_seconds)
    return SyncPrediction(paid=paid, accepted=paid * (1 - D.payment_decline_rate), timeouts=requests - paid)


def _fraction(part: PartResult) -> float:
    """The share of the report's duration this run lasted (quick runs are shorter)."""
    return part.result.duration_seconds * part.result.offered_rate / (part.profile.duration_seconds * part.profile.rate)


# --- Markdown ------------------------------------------------------------------------------------------------------


def _timeouts(result: loadtest.LoadResult) -> int:
    return result.errors.get("504", 0) + result.errors.get("timeout", 0)


def part_one(part: PartResult, k: float, slots: int) -> list[str]:
    r, p = part.result, part.profile
    pred = sync_prediction(part, slots)
    rep = REPORT_SYNC[p.name]
    rows = [
        (
            "Offered rate (orders/s)",
            _n(rep["rate"], 2),
            _n(p.rate, 2),
            _n(r.achieved_rate / k, 2),
            ratio(r.achieved_rate / k, p.rate),
        ),
        (
            "Requests",
            _n(rep["requests"]),
            _n(p.rate * p.duration_seconds * _fraction(part)),
            _n(r.requests),
            ratio(r.requests, p.rate * p.duration_seconds * _fraction(part)),
        ),
        (
            "Paid in time (201 + 402)",
            _n(rep["paid"]),
            _n(pred.paid),
            _n(r.accepted + r.declined),
            ratio(r.accepted + r.declined, pred.paid),
        ),
        ("Accepted (201)", _n(rep["accepted"]), _n(pred.accepted), _n(r.accepted), ratio(r.accepted, pred.accepted)),
        (
            "Acceptance rate",
            _pct(rep["accepted"] / rep["requests"]),
            _pct(pred.accepted / max(1, r.requests)),
            _pct(r.acceptance_rate),
            ratio(r.acceptance_rate, pred.accepted / max(1, r.requests)),
        ),
        (
            "Timeouts (504 or client timeout)",
            _n(rep["timeouts"]),
            _n(pred.timeouts),
            _n(_timeouts(r)),
            ratio(_timeouts(r), pred.timeouts),
        ),
        ("Median response (ms)", _n(rep["p50"]), "-", _n(r.latency_all.p50_ms * k), "-"),
        ("95th percentile (ms)", _n(rep["p95"]), "-", _n(r.latency_all.p95_ms * k), "-"),
        ("Max (ms)", _n(rep["max"]), "-", _n(r.latency_all.max_ms * k), "-"),
    ]
    return _table(("Metric", "Report", "Predicted", "Measured", "Measured / predicted"), rows)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def part_three(sync: PartResult, flash: LevelResult, k: float) -> list[str]:
    s, a = sync.result, flash.part.result
    rep = REPORT_SYNC["flashsale"]
    rows = [
        (
            "Acceptance rate",
            _pct(rep["accepted"] / rep["requests"]),
            _pct(s.acceptance_rate),
            _pct(REPORT_ASYNC["accepted"] / REPORT_ASYNC["requests"]),
            _pct(a.acceptance_rate),
        ),
        ("Requests", _n(rep["requests"]), _n(s.requests), _n(REPORT_ASYNC["requests"]), _n(a.requests)),
        (
            "Failed requests",
            _n(rep["requests"] - rep["accepted"]),
            _n(s.requests - s.accepted),
            "0",
            _n(a.requests - a.accepted),
        ),
        (
            "Median response (ms)",
            _n(rep["p50"]),
            _n(s.latency_all.p50_ms * k),
            _n(REPORT_ASYNC["p50"]),
            _n(a.latency_all.p50_ms, 1),
        ),
        (
            "95th percentile (ms)",
            _n(rep["p95"]),
            _n(s.latency_all.p95_ms * k),
            _n(REPORT_ASYNC["p95"]),
            _n(a.latency_all.p95_ms, 1),
        ),
        (
            "99th percentile (ms)",
            "-",
            _n(s.latency_all.p99_ms * k),
            _n(REPORT_ASYNC["p99"]),
            _n(a.latency_all.p99_ms, 1),
        ),
        (
            "Max (ms)",
            _n(rep["max"]),
            _n(s.latency_all.max_ms * k),
            _n(REPORT_ASYNC["max"]),
            _n(a.latency_all.max_ms, 1),
        ),
    ]
    return _table(("Metric", "Sync (report)", "Sync (measured)", "Async (report)", "Async (measured)"), rows)


def predicted_rate(level: LevelResult) -> float:
    """Saturated workers pay N / S a second; otherwise they keep up with the arrivals."""
    p = level.prediction
    return p.processing_rate if p.utilisation >= 1 else level.part.profile.rate


def part_five(levels: Sequence[LevelResult], k: float) -> list[str]:
    rows = []
    for lv in levels:
        m, p = lv.measure, lv.prediction
        rate_pred = predicted_rate(lv)
        drain = capacity.duration(m.drain_seconds * k) + (" (extrapolated)" if m.extrapolated else "")
        rows.append(
            (
                str(lv.workers),
                f"{_n(rate_pred, 2)} / {_n(m.rate / k, 2)} / {ratio(m.rate / k, rate_pred)}",
                f"{_n(p.processed_during_sale)} / {_n(m.processed_during_sale)} / "
                f"{ratio(m.processed_during_sale, p.processed_during_sale)}",
                f"{_n(p.queue_peak)} / {_n(m.queue_at_end)} / {ratio(m.queue_at_end, p.queue_peak)}",
                f"{_n(p.queue_peak)} / {_n(m.peak)} / {ratio(m.peak, p.queue_peak)}",
                f"{capacity.duration(p.drain_seconds)} / {drain} / {ratio(m.drain_seconds * k, p.drain_seconds)}",
            )
        )
    header = ("Workers", "Processing rate /s", "Processed during sale", "Queue at sale end", "Queue peak", "Drain time")
    return _table(header, rows)


def resources(levels: Sequence[LevelResult]) -> list[str]:
    rows = []
    for lv in levels:
        rep = REPORT_LEVELS.get(lv.workers)
        rows.append(
            (
                str(lv.workers),
                f"{rep.cpu_percent} %" if rep else "-",
                f"{_n(lv.measure.cpu_percent, 1)} %",
                f"{rep.memory_mb} MB" if rep else "-",
                f"{_n(lv.measure.rss_mb)} MB",
            )
        )
    return _table(
        (
            "Workers",
            "CPU (report, of 0.25 vCPU)",
            "CPU (measured, of one core)",
            "Memory (report)",
            "Memory (measured, peak RSS)",
        ),
        rows,
    )


def alarm_section(result: LabResult) -> list[str]:
    k = result.args.time_scale
    flash = ALARM_PROFILES["flashsale"]
    lines = [
        f"The stack deployed with `alarmProfile=flashsale`: the pages are on the expected wait of a new order "
        f"(warning above {flash.expected_wait_warning:g} x, critical above {flash.expected_wait_critical:g} x "
        f"the acceptable latency of the flash-sale stack, {LATENCY_SECONDS} s in report time, a config key "
        f"scaled by {k:g} like every duration) and on the p95 of the waits the buyers had (above "
        f"{flash.buyer_wait_p95:g} x; the workers' Embedded Metric Format lines, which the local runtime extracts "
        f"as CloudWatch Logs would, `bench.localaws.emf`). Alarm periods divided by {k:g} "
        "(`ops.alarms.shorten_periods`): "
        + ", ".join(sorted({f"{v} s" for v in result.periods.values()}))
        + f"; the local runtime's metrics feeder (`bench.localaws.queue_metrics`) ran every "
        f"{result.feed_seconds:g} s. The lab waits for the alarms to clear after the first level's sale "
        "only; the other levels list what had fired when their run ended.",
        "",
    ]
    notes = [(lv.workers, n) for lv in result.levels for n in lv.notifications]
    rows = [
        (str(w), f"T+{(n.at - n.since) * k:,.0f} s", datetime.fromtimestamp(n.at).strftime("%H:%M:%S"), n.subject)
        for w, n in notes
    ]
    lines += _table(("Workers", "Fired (report time after sale start)", "Wall clock", "Notification subject"), rows)
    if notes:
        lines += [
            "",
            "The first notification, exactly as a person receives it:",
            "",
            "```",
            f"Subject: {notes[0][1].subject}",
            "",
            notes[0][1].body,
            "```",
        ]
    return lines


def notes(result: LabResult) -> list[str]:
    k = result.args.time_scale
    rep = REPORT_SYNC
    own = [
        f"Sync flash sale: the report's 20 closed-loop users with {rep['flashsale']['p50']:,} ms median answers "
        f"could offer at most 20 / {rep['flashsale']['p50'] / 1000:.1f} s = "
        f"{20 / (rep['flashsale']['p50'] / 1000):.1f} req/s (Little's law), not {rep['flashsale']['rate']} req/s. "
        "The lab offers 20 orders/s open loop, which is what a flash sale does.",
        f"Sync normal load: 5 closed-loop users with ~3 s answers offer at most 5 / 3.05 = 1.6 req/s, not 4.90, and "
        f"{result.sync_slots} payment slots of 3 s serve at most {result.sync_slots / D.payment_seconds:.2f} "
        "orders/s, so the report's 95 % success at 4.90 req/s cannot be: offered 4.9 orders/s open loop, the sync "
        "service collapses here too.",
        f"Time scale {k:g}: ministack evaluates a single-metric alarm at every PutMetricData over the points of the "
        f"last period x evaluation periods (wall clock), ignoring the metric's dimensions; it does not evaluate "
        f"metric math, so the local runtime evaluates the expected-wait alarms itself from the same metrics "
        f"(`bench.localaws.metric_math`), and it leaves an alarm as it was when its window holds no point, so the "
        f"local runtime applies the missing-data rule to the buyers' wait alarm (`bench.localaws.emf`). The "
        f"catalogue's 60 s periods are divided by {k:g} here, so an alarm fires "
        f"within one feeder period of its number crossing the threshold and clears one (scaled) period after the "
        f"queue empties: the same report-time behaviour as 60 s on AWS.",
        "Because ministack ignores dimensions, the DLQ alarm would see the order queue's depth; the lab disables "
        "its actions (on AWS it watches only the DLQ). The age-of-oldest-message alarm counts wall-clock seconds "
        "(300 s threshold) and does not fire in these short scaled runs; on AWS the 1-worker backlog would fire it.",
        "CPU: the report's percentages are of a 0.25 vCPU task; ours are of one core of this machine, so compare the "
        "trend (it grows with the payment rate), not the values. Payments are asyncio sleeps: CPU follows the rate "
        "of orders handled, not the number of workers.",
    ]
    return own + report_notes(capacity.plan(capacity.PlanInputs()))


def part_six(result: LabResult) -> list[str]:
    a = result.args
    runs = result.strategies
    sale = FLASH_SALE
    lines = [
        f"The same flash sale ({sale.rate:g} orders/s for {sale.duration_seconds * a.sale_fraction:g} s) on the "
        f"{D.payment_seconds:g} s payments of the normal stack's worker service, under each strategy "
        "(predicted by `planning.strategies` / measured; times in report seconds):",
        "",
        *lab_strategies.table(runs, a.prices),
        "",
        "- **fixed**: the stack's own worker tasks all along, no scaling (the report's situation): Part V's run at the "
        "stack's `workerCount`.",
        "- **auto-scaled**: the stack as declared, with the LOCAL MODEL of Application Auto Scaling acting on it "
        "(`bench.localaws.autoscaling`, rules in `planning.scaling`): target tracking on orders waiting per running "
        "task, evaluated every 60 s (here 60 / K from the real queue metrics), scaling out after 3 periods above "
        "its target and in after 15 below, and the step guardrail adding a share of the tasks while the oldest "
        "order is older than the acceptable latency; every cooldown as declared.",
        "- **pre-scaled**: `ops.prescale` (the planner's tasks for the rate) before the sale; after it, "
        "`ops.prescale --restore` steps down (its plan, `--dry-run`).",
        "- **scheduled**: the sale in the stack's `sales` calendar; its scheduled actions raise the service a lead "
        "time before the start and step it down after, carried out by the same local model.",
        "",
        f"New tasks start {a.startup_seconds:g} s after they are wanted (report time; `--task-startup-seconds`): "
        '"It is normal for new AWS Fargate tasks to take 30-45 seconds or longer to start" (AWS\'s answer on '
        'repost.aws, "How to speed up provisioning of ECS Fargate task"), plus the pull of this project\'s image. '
        "Waits until paid are from each order's record (`finished_at - created_at`); a drain too long to wait for "
        "(fixed) is extrapolated at the measured rate, oldest order first.",
        "",
        "Worker task-minutes: before the sale, the sale's tasks for the stack's `saleLeadSeconds` (pre-scaled and "
        "scheduled: the lab's own lead is set by its time scale and the calendar's one-minute notice, so the bill "
        "uses the stack's); during, measured from the sale's start to the empty queue; after, until the service is "
        "back at its normal tasks by the strategy's rule (steps down, or target tracking's scale-in after 15 "
        "periods below its target), not waited through. The bill counts those worker tasks (billed from the moment "
        "they are wanted) and the requests of the accepted orders; the receiver and the sync service run alike "
        "under every strategy and are left out. " + lab_strategies.cost_note(a.prices),
    ]
    auto = next((r for r in runs if r.strategy.value == "auto-scaled"), None)
    if auto is not None:
        lines += [
            "",
            f"Auto-scaling's lag: its first new task was wanted {lab_strategies.duration(auto.first_scale_out)}"
            f" after the sale started (predicted {lab_strategies.duration(auto.prediction.first_scale_out)}) "
            f"and ran {a.startup_seconds:g} s later; a {sale.duration_seconds * a.sale_fraction:g} s sale is "
            "over before target tracking's three periods above its target have passed, which is why the "
            "report's 6.3 says to pre-scale.",
        ]
    return lines


def markdown(result: LabResult, plots: dict[str, str], linked: bool = True) -> str:
    """The run's report; `linked`: beside the run's files (the docs page links no post-sale report)."""
    a, k = result.args, result.args.time_scale
    by_name = {p.profile.name: p for p in result.parts}
    first = result.levels[0] if result.levels else None
    lines = [
        "# The flash-sale lab, measured",
        "",
        f"`python -m bench.lab{' --quick' if a.quick else ''} --time-scale {k:g}` on {datetime.now():%Y-%m-%d %H:%M}. "
        f"Time scale {k:g}: every duration / {k:g}, every rate x {k:g} ({in_lab_time(a)}, "
        f"client timeout {D.request_timeout_seconds / k:g} s), so workers needed (rate x payment time) and orders per "
        "test stay the report's. All times and rates below are converted back to the report's time.",
    ]
    if result.quick_changes:
        lines += ["", "`--quick` changes: " + "; ".join(result.quick_changes) + "."]
    lines += ["", f"## Part I: the sync service ({result.sync_slots} payment slots, the report's 2 tasks)"]
    for name, part in by_name.items():
        lines += ["", f"### {name} load ({part.profile.rate:g} orders/s open loop)", ""]
        lines += part_one(part, k, result.sync_slots)
    if first is not None and "flashsale" in by_name:
        lines += [
            "",
            f"## Part III: async vs sync under the flash sale (async with {first.workers} worker(s), as in "
            "the report's 3.4)",
            "",
        ]
        lines += part_three(by_name["flashsale"], first, k)
        lines += [
            "",
            "Async response times are as measured (accepting an order involves no payment, nothing to "
            "scale); sync ones are converted to the report's time.",
        ]
    lines += ["", "## Part V: worker scaling (predicted by `ops.capacity` / measured / ratio)", ""]
    lines += part_five(result.levels, k)
    lines += [
        "",
        "Processing rate: payments per second while every worker was busy (saturated); where the workers "
        "outpace the arrivals, the predicted rate is the arrival rate. Drains longer than the wall-clock limit "
        "are measured over a window at steady rate and extrapolated.",
        "",
    ]
    lines += resources(result.levels)
    if result.strategies:
        lines += ["", "## Part VI: scaling strategies for the same flash sale", ""] + part_six(result)
    if result.post_sale is not None:
        lines += ["", "## The post-sale report of a Part VI sale", ""]
        lines += post_sale.markdown(result.post_sale, result.args.results if linked else None)
    lines += ["", "## Alarms and notifications", ""] + alarm_section(result)
    lines += ["", "## Where the report's numbers disagree with each other or with Little's law", ""]
    lines += [f"- {n}" for n in notes(result)]
    lines += ["", "## Plots", ""] + [f"![{name}]({path})" for name, path in plots.items()]
    return "\n".join(lines) + "\n"


# --- Plots ---------------------------------------------------------------------------------------------------------


def plot_queue(levels: Sequence[LevelResult], k: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 5))
    for lv in levels:
        t0 = lv.window.sale_start
        shown = [s for s in lv.samples if s.t <= lv.window.observe_end + 1]
        label = f"{lv.workers} workers (drain {capacity.duration(lv.measure.drain_seconds * k)}" + (
            ", extrapolated)" if lv.measure.extrapolated else ")"
        )
        ax.plot([(s.t - t0) * k for s in shown], [in_queue(s) for s in shown], label=label)
    if levels:
        ax.axvline(
            (levels[0].window.sale_end - levels[0].window.sale_start) * k,
            color="grey",
            linestyle="--",
            label="sale ends",
        )
    ax.set_xlabel("report time since the sale started (s)")
    ax.set_ylabel("orders in the queue (waiting + being paid)")
    ax.set_title("Queue depth during the flash sale, per worker count")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_latency(sync: PartResult, async_: PartResult, k: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 5))
    for label, part, factor in ((f"sync (x {k:g}, report time)", sync, k), ("async (as measured)", async_, 1.0)):
        values = sorted(r.latency_ms * factor for r in part.records if r.latency_ms is not None)
        if values:
            ax.plot(values, [(i + 1) / len(values) for i in range(len(values))], label=label)
    ax.set_xscale("log")
    ax.set_xlabel("response time (ms)")
    ax.set_ylabel("share of requests answered within")
    ax.set_title("Response times under the flash sale: sync vs async")
    ax.legend()
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- Output --------------------------------------------------------------------------------------------------------


def write_plots(result: LabResult, directory: Path, prefix: str = "") -> dict[str, str]:
    """The PNGs in `directory`, each file name starting with `prefix`; returns their file names by plot."""
    k = result.args.time_scale
    plots: dict[str, str] = {}
    if result.levels:
        plot_queue(result.levels, k, directory / f"{prefix}queue-depth.png")
        plots["queue depth"] = f"{prefix}queue-depth.png"
    sync_flash = next((p for p in result.parts if p.profile.name == "flashsale"), None)
    if sync_flash is not None and result.levels:
        plot_latency(sync_flash, result.levels[0].part, k, directory / f"{prefix}latency.png")
        plots["latency"] = f"{prefix}latency.png"
    if result.strategies:
        sale = FLASH_SALE.duration_seconds * result.args.sale_fraction
        lab_strategies.plot(result.strategies, sale, directory / f"{prefix}strategies.png")
        plots["strategies"] = f"{prefix}strategies.png"
    return plots


def write(result: LabResult, directory: Path) -> dict[str, str]:
    """report.md, summary.json and the PNGs in `directory`; returns their paths by name."""
    plots = write_plots(result, directory)
    (directory / "report.md").write_text(markdown(result, plots))
    (directory / "summary.json").write_text(json.dumps(summary(result), indent=2) + "\n")
    return {
        "report": str(directory / "report.md"),
        "summary": str(directory / "summary.json"),
        **{name: str(directory / p) for name, p in plots.items()},
    }


def write_docs(result: LabResult, directory: Path, command: str, at_commit: str | None = None) -> dict[str, str]:
    """The lab's page of the docs (`python -m bench.lab --docs`): the report's tables as `docs.LAB_PAGE`, under a
    header naming `command` and the commit, and its plots beside it as lab-*.png; returns their paths by name."""
    directory.mkdir(parents=True, exist_ok=True)
    plots = write_plots(result, directory, prefix="lab-")
    page = docs.write_page(directory / docs.LAB_PAGE, command, markdown(result, plots, linked=False), at_commit)
    return {"docs": str(page), **{f"docs {name}": str(directory / p) for name, p in plots.items()}}


def summary(result: LabResult) -> dict[str, Any]:
    k = result.args.time_scale
    return {
        "time_scale": k,
        "quick": result.args.quick,
        "sync": {
            p.profile.name: {
                "requests": p.result.requests,
                "acceptance_rate": p.result.acceptance_rate,
                "timeouts": _timeouts(p.result),
                "p50_ms_report_time": p.result.latency_all.p50_ms * k,
            }
            for p in result.parts
        },
        "levels": [
            {
                "workers": lv.workers,
                "acceptance_rate": lv.part.result.acceptance_rate,
                "requests": lv.part.result.requests,
                "saturated": lv.measure.saturated,
                "rate_measured": lv.measure.rate / k,
                "rate_predicted": predicted_rate(lv),
                "processed_during_sale": lv.measure.processed_during_sale,
                "queue_at_end": lv.measure.queue_at_end,
                "peak": lv.measure.peak,
                "drain_seconds": lv.measure.drain_seconds * k,
                "drain_predicted_seconds": lv.prediction.drain_seconds,
                "extrapolated": lv.measure.extrapolated,
                "cpu_percent": lv.measure.cpu_percent,
                "rss_mb": lv.measure.rss_mb,
                "notifications": [
                    {"subject": n.subject, "after_sale_start_seconds": (n.at - n.since) * k} for n in lv.notifications
                ],
            }
            for lv in result.levels
        ],
        "strategies": [lab_strategies.to_json(run, result.args.prices) for run in result.strategies],
        "post_sale_report": post_sale.to_json(result.post_sale) if result.post_sale else None,
        "iam": {"refused": [], "unused_grants": result.iam_unused},  # a refused call fails the lab before this
    }


def console(result: LabResult, files: dict[str, str], elapsed: float) -> str:
    k = result.args.time_scale
    lines = [f"Time scale {k:g}; finished in {elapsed:.0f} s.", ""]
    for p in result.parts:
        lines.append(
            f"sync {p.profile.name}: {p.result.requests} requests, acceptance "
            f"{_pct(p.result.acceptance_rate)}, {_timeouts(p.result)} timeouts"
        )
    if result.levels:
        lines.append(f"async flash sale: acceptance {_pct(result.levels[0].part.result.acceptance_rate)}")
        lines += ["", "Part V (predicted / measured / ratio, report time):"] + part_five(result.levels, k)
    if result.strategies:
        lines += ["", "Part VI (predicted / measured, report time):"] + lab_strategies.table(
            result.strategies, result.args.prices
        )
    count = sum(len(lv.notifications) for lv in result.levels)
    lines += ["", f"{count} alarm notifications captured.", ""]
    if result.post_sale is not None:
        post = result.post_sale
        lines += [
            f"ops.report on the {post.strategy} sale: {post.path} "
            + ("(its figures agree with the lab's)" if post.agrees else "(SOME FIGURES DISAGREE with the lab's)"),
            "",
        ]
    lines += [
        "IAM: every call the services made was allowed by its role's policies as deployed; "
        + (f"grants no part used ({len(result.iam_unused)}):" if result.iam_unused else "every grant was used."),
        *(f"  {grant}" for grant in result.iam_unused),
        "",
    ]
    lines += [f"{name}: {path}" for name, path in files.items()]
    return "\n".join(lines)
