"""The post-sale report for people (Markdown with two plots, and a summary for the terminal) and for machines (JSON).

Times in the tables are UTC and seconds from the sale's start (T+s); every figure names its source.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file-only backend)

from ops.report.figures import Figure, Report, duration  # noqa: E402
from ops.report.read import Missing  # noqa: E402

PLOTS = {"waits": "report-waits.png", "queue": "report-queue.png"}
JSON_VERSION = 1


def utc(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def since_start(report: Report, t: float) -> str:
    return f"T{t - report.window.start:+.0f} s"


def _value(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-" if value is None else "not drained"
    if unit == "s":
        return duration(value)
    if unit == "USD":
        return f"{value:.4f} USD"
    if unit == "orders/s":
        return f"{value:,.1f}/s"
    return f"{value:,.0f}"


def _ratio(figure: Figure) -> str:
    ratio = figure.ratio
    return "-" if ratio is None or not math.isfinite(ratio) else f"{ratio:.2f}"


def table(report: Report) -> list[str]:
    lines = ["| Figure | Measured | Forecast | Ratio | Source |", "|---|---|---|---|---|"]
    for f in report.figures:
        measured = _value(f.measured, f.unit) if f.measured is not None else "not available from this stack"
        source = f.source + (f" ({f.note})" if f.note else "")
        lines.append(f"| {f.label} | {measured} | {_value(f.forecast, f.unit)} | {_ratio(f)} | {source} |")
    return lines


def _heading(report: Report) -> str:
    w = report.window
    what = f"sale `{w.sale.name}` of the calendar" if w.sale else "the window"
    return f"Post-sale report: {what}, stack {report.facts.name}"


def alarm_lines(report: Report) -> list[str]:
    alarms = report.readings.alarms
    if isinstance(alarms, Missing):
        return [f"Not available from this stack: {alarms.reason}."]
    if not alarms:
        return ["No alarm of the stack changed state in the window."]
    lines = ["| Alarm | Fired | Cleared | Why |", "|---|---|---|---|"]
    for a in alarms:
        fired = "before the window" if a.fired is None else f"{utc(a.fired)} ({since_start(report, a.fired)})"
        cleared = "still firing" if a.cleared is None else f"{utc(a.cleared)} ({since_start(report, a.cleared)})"
        lines.append(f"| {a.name} | {fired} | {cleared} | {a.reason} |")
    muted = report.facts.local.muted_alarms if report.facts.local else {}
    lines += [f"\nLocal system: alarm `{key}` muted ({why})." for key, why in muted.items()]
    return lines


def scaling_lines(report: Report) -> list[str]:
    lines = [
        "From RunningTaskCount (Maximum per period): "
        + (
            ", ".join(f"{utc(s.at)} ({since_start(report, s.at)}) {s.before} -> {s.after}" for s in report.scale_outs)
            or "no scale-out in the window"
        )
        + "."
    ]
    events = report.readings.events
    if isinstance(events, Missing):
        lines.append(f"ECS service events: not available from this stack ({events.reason}).")
    elif not events:
        lines.append("ECS service events: none in the window.")
    else:
        lines += ["", "ECS service events of the worker service:", ""]
        lines += [f"- {utc(e.at)} ({since_start(report, e.at)}): {e.message}" for e in events]
    return lines


def markdown(report: Report, plots: dict[str, str], command: str) -> str:
    w, facts = report.window, report.facts
    sale = w.sale
    lines = [
        f"# {_heading(report)}",
        "",
        f"Written by `{command}` at {utc(datetime.now(UTC).timestamp())}. Orders accepted from {utc(w.start)} to "
        f"{utc(w.end)}"
        + (
            f" (the calendar's entry `{sale.name}`: {sale.rate or '-'} orders/s, "
            f"{sale.tasks or report.planned_tasks} tasks raised {duration(w.lead_seconds)} before)"
            if sale
            else ""
        )
        + f"; metrics read from {utc(report.readings.observed[0])} to {utc(report.readings.observed[1])} in "
        f"{report.readings.period} s periods." + (" **Local system** (the emulators)." if facts.local else ""),
        "",
        "## Verdict",
        "",
        report.verdict,
        "",
        "## Figures beside the forecast",
        "",
        f"The forecast is the capacity planner's (`planning.strategies`) for {report.planned_tasks} worker tasks of "
        f"{facts.workers_per_task} workers at {facts.payment_seconds:g} s a payment and the measured "
        f"{report.rate:,.1f} orders/s for {duration(report.sale_seconds)}; ratio = measured / forecast.",
        "",
        *table(report),
        "",
        "## The buyers' wait over time",
        "",
        f"![Buyers' wait]({plots['waits']})",
        "",
        f"Per {report.readings.period} s period, from {report.wait_timeline_source}; the expected wait is the alarms' "
        "formula over the queue and the running tasks; the acceptable latency is "
        f"{duration(facts.acceptable_latency)}.",
        "",
        "## Backlog and worker tasks",
        "",
        f"![Backlog and tasks]({plots['queue']})",
        "",
        "## Scale-out",
        "",
        *scaling_lines(report),
        "",
        "## Alarms",
        "",
        *alarm_lines(report),
    ]
    if report.notes:
        lines += ["", "## Notes", "", *[f"- {note}" for note in report.notes]]
    return "\n".join(lines) + "\n"


def _shade(report: Report, ax: Any) -> None:
    ax.axvspan(0, report.sale_end - report.window.start, color="grey", alpha=0.12)
    alarms = report.readings.alarms
    for a in [] if isinstance(alarms, Missing) else alarms:
        start = (a.fired if a.fired is not None else report.readings.observed[0]) - report.window.start
        end = (a.cleared if a.cleared is not None else report.readings.observed[1]) - report.window.start
        ax.axvspan(start, end, color="red", alpha=0.06)


def plot(report: Report, directory: Path) -> dict[str, str]:
    t0, period = report.window.start, report.readings.period
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for stat, style in (("p50", "-"), ("p95", "--"), ("p99", ":")):
        series = report.wait_timeline.get(stat)
        if series:
            ax.step([t - t0 for t in series.times], series.values, where="post", linestyle=style, label=f"wait {stat}")
    if report.expected_wait:
        times = [t - t0 for t in report.expected_wait.times]
        ax.step(times, report.expected_wait.values, where="post", color="C3", alpha=0.6, label="expected wait (alarms)")
    ax.axhline(report.facts.acceptable_latency, color="C3", linestyle="-.", label="acceptable latency")
    _shade(report, ax)
    ax.set_xlabel(f"seconds from the sale's start ({period} s periods; grey: orders arriving; red: an alarm firing)")
    ax.set_ylabel("seconds")
    ax.set_title("The buyers' wait, accepted to paid or declined")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(directory / PLOTS["waits"], dpi=100)
    plt.close(fig)

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    queue = report.readings.queue
    for key, label in (("waiting", "waiting"), ("in_flight", "being paid")):
        series = queue[key]
        top.step([t - t0 for t in series.times], series.values, where="post", label=label)
    timeline = report.prediction.timeline
    top.plot([t for t, *_ in timeline], [q for _, q, _, _ in timeline], color="grey", linestyle=":", label="forecast")
    tasks = queue["tasks"]
    bottom.step([t - t0 for t in tasks.times], tasks.values, where="post", label="running (measured)")
    bottom.step([t for t, *_ in timeline], [w for *_, w in timeline], where="post", color="grey", linestyle=":")
    bottom.axhline(report.planned_tasks, color="C2", linestyle="-.", label=f"planned ({report.planned_tasks})")
    for ax in (top, bottom):
        _shade(report, ax)
        ax.grid(alpha=0.3)
        ax.legend()
    top.set_ylabel("orders in the queue")
    top.set_title("Backlog and worker tasks (dotted: the forecast)")
    bottom.set_ylabel("worker tasks")
    bottom.set_xlabel(f"seconds from the sale's start ({period} s periods)")
    fig.tight_layout()
    fig.savefig(directory / PLOTS["queue"], dpi=100)
    plt.close(fig)
    return dict(PLOTS)


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


def to_json(report: Report, files: dict[str, str]) -> dict[str, Any]:
    w = report.window
    alarms, events = report.readings.alarms, report.readings.events
    return {
        "version": JSON_VERSION,
        "stack": report.facts.name,
        "local": report.facts.local is not None,
        "window": {
            "from": utc(w.start),
            "to": utc(w.end),
            "sale": w.sale.name if w.sale else None,
            "lead_seconds": w.lead_seconds,
            "metrics_from": utc(report.readings.observed[0]),
            "metrics_to": utc(report.readings.observed[1]),
            "period_seconds": report.readings.period,
        },
        "planned_tasks": report.planned_tasks,
        "arrival_rate": report.rate,
        "sale_seconds": report.sale_seconds,
        "figures": {
            f.key: {
                "label": f.label,
                "unit": f.unit,
                "measured": _number(f.measured),
                "forecast": _number(f.forecast),
                "ratio": _number(f.ratio),
                "source": f.source,
                "note": f.note,
            }
            for f in report.figures
        },
        "wait_timeline_source": report.wait_timeline_source,
        "scale_outs": [{"at": utc(s.at), "before": s.before, "after": s.after} for s in report.scale_outs],
        "alarms": {"available": False, "reason": alarms.reason}
        if isinstance(alarms, Missing)
        else [
            {
                "name": a.name,
                "fired": None if a.fired is None else utc(a.fired),
                "cleared": None if a.cleared is None else utc(a.cleared),
                "reason": a.reason,
            }
            for a in alarms
        ],
        "service_events": {"available": False, "reason": events.reason}
        if isinstance(events, Missing)
        else [{"at": utc(e.at), "message": e.message} for e in events],
        "verdict": report.verdict,
        "notes": report.notes,
        "files": files,
    }


def json_text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, default=str) + "\n"


def console(report: Report, files: dict[str, str]) -> str:
    width = max(len(f.label) for f in report.figures)
    lines = [_heading(report), ""]
    for f in report.figures:
        measured = _value(f.measured, f.unit) if f.measured is not None else "n/a"
        lines.append(f"  {f.label:<{width}}  {measured:>14}  forecast {_value(f.forecast, f.unit):>12}  {_ratio(f):>6}")
    lines += ["", report.verdict, "", f"Report: {files['report']}"]
    return "\n".join(lines)
