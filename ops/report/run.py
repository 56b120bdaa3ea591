"""`python -m ops.report`: after a sale, what it did beside what the planner forecast, as a Markdown report with plots.

For a sale of the stack's calendar (`--sale NAME`) or a window (`--from T --to T`), it reads the live stack: the
orders accepted in the window and their outcomes (the orders table), the dead letters among them (the DLQ, peeked),
the buyers' wait (CloudWatch `Flashsale/BuyerWait` p50/p95/p99; the orders table's own timestamps beside it), the
backlog and the worker tasks (AWS/SQS, Container Insights), when each alarm fired and cleared (alarm history), the
worker service's events, and prices the sale with `ops.cost`. Each figure stands beside the planner's forecast for
the same calendar entry at the arrival rate measured, with the ratio, and a verdict closes it. It writes report.md,
its plots and report.json into --out; prints a summary (or the JSON with --json).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from app import aws, contract
from ops import cost, stack
from ops.report import read, render
from ops.report.figures import WAIT_STATS, Readings, StackFacts, Window, build
from ops.report.read import Missing, Query
from planning import calendar
from stackconfig import files, output_names, schema
from stackconfig.schema import CONFIG_DEFAULTS

REQUIRED_OUTPUTS = (
    output_names.ORDERS_TABLE,
    output_names.QUEUE_URL,
    output_names.DLQ_URL,
    output_names.CLUSTER_NAME,
    output_names.WORKER_SERVICE_NAME,
    output_names.ALARM_PREFIX,
    output_names.WORKER_COUNT,
    output_names.PAYMENT_SECONDS,
    output_names.ACCEPTABLE_LATENCY,
)
OPTIONAL_OUTPUTS = (output_names.SALE_LEAD_SECONDS,)
LOCAL_OUTPUTS = (output_names.LOCAL_ENDPOINT, output_names.LOCAL_CAVEATS)
DEFAULT_PERIOD = 60  # CloudWatch's standard resolution
HIGH_RESOLUTION_PERIODS = (1, 5, 10, 30)  # and multiples of 60: what GetMetricData accepts


def parse_time(text: str, flag: str) -> float:
    """ISO 8601; without an offset, UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise stack.OpsError(f"{flag} {text!r} is not an ISO 8601 time (2026-12-05T18:00:00+01:00)") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def stack_name(args: argparse.Namespace, outputs: dict[str, Any]) -> str:
    """The Pulumi stack's name: --stack, else the alarm prefix's tail (`flashsale-<stack>`), as ops.preflight reads
    it."""
    return str(args.stack or str(outputs[output_names.ALARM_PREFIX]).split("-", 1)[-1])


def load_config(path: Path) -> schema.StackConfig | None:
    if not path.exists():
        return None
    try:
        return schema.load_stack_file(path)
    except schema.ConfigError as error:
        raise stack.OpsError(str(error)) from None


def resolve(args: argparse.Namespace, outputs: dict[str, Any], now: float) -> tuple[Window, StackFacts, list[str]]:
    """The window and the stack's facts; bad input is refused before anything is read from AWS."""
    name = stack_name(args, outputs)
    path = args.stack_file or files.stack_file(name)
    config = load_config(path)
    notes = [] if config else [f"no stack file {path}: minWorkerTasks, maxWorkerTasks and paymentDeclineRate defaults"]
    lead = float(outputs.get(output_names.SALE_LEAD_SECONDS) or (config or CONFIG_DEFAULTS).sale_lead_seconds)
    inputs = calendar.CalendarInputs(
        workers_per_task=int(outputs[output_names.WORKER_COUNT]),
        payment_seconds=float(outputs[output_names.PAYMENT_SECONDS]),
        min_tasks=(config or CONFIG_DEFAULTS).min_worker_tasks,
        max_tasks=(config or CONFIG_DEFAULTS).max_worker_tasks,
        lead_seconds=lead,
    )
    if args.sale is not None and (args.start or args.end):
        raise stack.OpsError("name the sale either by --sale or by --from/--to, not both")
    if args.sale is not None:
        if config is None:
            raise stack.OpsError(
                f"--sale {args.sale}: no stack file {path} to read the sale calendar from (--stack-file)"
            )
        sale = next((s for s in config.sales if s.name == args.sale), None)
        if sale is None:
            known = ", ".join(s.name for s in config.sales) or "none"
            raise stack.OpsError(f"no sale {args.sale!r} in the calendar of {path.name} (its sales: {known})")
        window = Window(sale.start.timestamp(), sale.end.timestamp(), sale=sale, lead_seconds=lead)
    else:
        if args.start is None or args.end is None:
            raise stack.OpsError("name the sale: --sale NAME, or --from T and --to T")
        start, end = parse_time(args.start, "--from"), parse_time(args.end, "--to")
        if start >= end:
            raise stack.OpsError(f"--from {args.start} is not before --to {args.end}")
        window = Window(start, end)
    if window.start > now:
        raise stack.OpsError(
            f"the {window.label} starts at {render.utc(window.start)}, in the future: nothing to report yet"
        )
    facts = StackFacts(
        name=name,
        prefix=str(outputs[output_names.ALARM_PREFIX]),
        workers_per_task=inputs.workers_per_task,
        payment_seconds=inputs.payment_seconds,
        acceptable_latency=float(outputs[output_names.ACCEPTABLE_LATENCY]),
        calendar=inputs,
        decline_rate=config.payment_decline_rate if config else None,
        local=stack.LocalCaveats.of(outputs),
    )
    return window, facts, notes


def queue_queries(outputs: dict[str, Any]) -> list[Query]:
    queue = {"QueueName": str(outputs[output_names.QUEUE_URL]).rstrip("/").rsplit("/", 1)[-1]}
    service = {
        "ClusterName": str(outputs[output_names.CLUSTER_NAME]).rsplit("/", 1)[-1],
        "ServiceName": str(outputs[output_names.WORKER_SERVICE_NAME]),
    }
    return [
        Query("waiting", "AWS/SQS", "ApproximateNumberOfMessagesVisible", queue, "Maximum"),
        Query("in_flight", "AWS/SQS", "ApproximateNumberOfMessagesNotVisible", queue, "Maximum"),
        Query("tasks", "ECS/ContainerInsights", "RunningTaskCount", service, "Maximum"),
        Query("tasks_avg", "ECS/ContainerInsights", "RunningTaskCount", service, "Average"),
    ]


def wait_queries(stack_name_: str) -> list[Query]:
    dimensions = {contract.WAIT_DIMENSION_STACK: stack_name_, contract.WAIT_DIMENSION_REGION: aws.region()}
    return [
        Query(
            stat if stat != "SampleCount" else "count",
            contract.WAIT_METRIC_NAMESPACE,
            contract.WAIT_METRIC_NAME,
            dimensions,
            stat,
        )
        for stat in (*WAIT_STATS, "SampleCount")
    ]


def read_window(
    args: argparse.Namespace, outputs: dict[str, Any], window: Window, facts: StackFacts, now: float
) -> Readings:
    period = args.period
    stack.progress(
        f"report: reading the orders accepted in the {window.label} from {outputs[output_names.ORDERS_TABLE]}"
    )
    orders = read.scan_orders(
        aws.client("dynamodb"), str(outputs[output_names.ORDERS_TABLE]), window.start, min(window.end, now)
    )
    if not orders:
        raise stack.OpsError(
            f"no orders were accepted from {render.utc(window.start)} to {render.utc(min(window.end, now))} "
            f"(orders table {outputs[output_names.ORDERS_TABLE]}): nothing to report; check the window (UTC "
            "unless it carries an offset) and the stack"
        )
    stack.progress(f"report: {len(orders):,} orders; peeking at the DLQ")
    dead = read.dead_letters(aws.client("sqs"), str(outputs[output_names.DLQ_URL]), {o.order_id for o in orders})
    finished = [o.finished_at for o in orders if o.finished_at is not None]
    last = max([window.end, *finished]) if finished else window.end
    observed = (window.raised_at - period, min(now, last + 2 * period))
    cloudwatch = aws.client("cloudwatch")
    stack.progress("report: reading the metrics (GetMetricData)")
    queue = read.get_series(cloudwatch, queue_queries(outputs), *observed, period)
    waits = read.get_series(cloudwatch, wait_queries(facts.name), *observed, period)
    missing = Missing(
        f"no buyers' wait metric in the window ({contract.WAIT_DIMENSION_STACK}={facts.name}, "
        f"{contract.WAIT_DIMENSION_REGION}={aws.region()})"
    )
    wait_series: dict[str, read.Series] | Missing = waits if waits["count"] else missing
    wait_whole: dict[str, float] | Missing = missing
    whole_period = None
    if finished and waits["count"]:
        length = read.one_period(min(finished), max(finished), period)
        if length is not None:
            start = read.aligned(min(finished), length).timestamp()
            whole = read.get_series(cloudwatch, wait_queries(facts.name), start, start + length, length)
            wait_whole = {key: series.values[0] for key, series in whole.items() if series}
            whole_period = (start, length)
    stack.progress("report: reading the alarm history and the worker service's events")
    alarms: list[read.AlarmSpan] | Missing
    try:
        alarms = read.alarm_spans(cloudwatch, facts.prefix, *observed)
    except ClientError as error:
        alarms = Missing(f"DescribeAlarmHistory: {error.response.get('Error', {}).get('Code', '?')}")
    events: list[read.ServiceEvent] | Missing = read.service_events(
        aws.client("ecs"),
        str(outputs[output_names.CLUSTER_NAME]),
        str(outputs[output_names.WORKER_SERVICE_NAME]),
        *observed,
    )
    if not events and facts.local is not None and facts.local.service_events:
        events = Missing(facts.local.service_events)
    return Readings(
        orders=orders,
        dead=dead,
        period=period,
        observed=observed,
        queue=queue,
        wait_series=wait_series,
        wait_whole=wait_whole,
        wait_whole_period=whole_period,
        alarms=alarms,
        events=events,
    )


def default_out(facts: StackFacts, window: Window) -> Path:
    label = window.sale.name if window.sale else datetime.fromtimestamp(window.start, tz=UTC).strftime("%Y%m%dT%H%M")
    return Path("results") / f"report-{facts.name}-{label}-{datetime.now():%Y%m%d-%H%M%S}"


def command(args: argparse.Namespace, argv: list[str]) -> int:
    if args.period not in HIGH_RESOLUTION_PERIODS and (args.period < 60 or args.period % 60):
        raise stack.OpsError(f"--period must be 1, 5, 10, 30 or a multiple of 60 seconds, got {args.period}")
    prices = cost.prices(cost.parse_overrides(args.price, "price"))
    outputs = stack.resolve_outputs(
        args, REQUIRED_OUTPUTS + OPTIONAL_OUTPUTS + LOCAL_OUTPUTS, optional=OPTIONAL_OUTPUTS + LOCAL_OUTPUTS
    )
    now = time.time()
    window, facts, notes = resolve(args, outputs, now)
    try:
        readings = read_window(args, outputs, window, facts, now)
    except EndpointConnectionError as error:
        raise stack.OpsError(f"the stack is not reachable: {error}") from None
    report = build(window, facts, readings, prices)
    report = replace(report, notes=[*notes, *report.notes])
    out: Path = args.out or default_out(facts, window)
    out.mkdir(parents=True, exist_ok=True)
    plots = render.plot(report, out)
    command_line = shlex.join(["python", "-m", "ops.report", *argv])
    (out / "report.md").write_text(render.markdown(report, plots, command_line))
    files_ = {
        "report": str(out / "report.md"),
        "json": str(out / "report.json"),
        **{k: str(out / v) for k, v in plots.items()},
    }
    data = render.to_json(report, files_)
    (out / "report.json").write_text(render.json_text(data))
    stack.emit(args, data, render.console(report, files_))
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ops.report",
        description="After a sale: what it did, read from the live stack, beside what the planner forecast, as a "
        "Markdown report with plots.",
        epilog="Exit code 1 with a one-line error when the window is in the future or holds no order, or the stack "
        "cannot be read.",
    )
    which = p.add_argument_group("the sale (one of)")
    which.add_argument(
        "--sale", metavar="NAME", help="an entry of the stack's sale calendar (`sales` in its stack file)"
    )
    which.add_argument(
        "--from", dest="start", metavar="T", help="orders accepted from T (ISO 8601; UTC without an offset)"
    )
    which.add_argument("--to", dest="end", metavar="T", help="...until T")
    p.add_argument(
        "--stack-file",
        type=Path,
        metavar="FILE",
        help="the stack file with the sale calendar and the scaling limits (default: Pulumi.<stack>.yaml here)",
    )
    p.add_argument(
        "--period",
        type=int,
        default=DEFAULT_PERIOD,
        metavar="S",
        help="seconds per point of the metrics over time: 1, 5, 10, 30 (high-resolution) or a multiple of 60 "
        "(%(default)s)",
    )
    p.add_argument("--out", type=Path, metavar="DIR", help="where to write the report (default results/report-...)")
    p.add_argument(
        "--price", action="append", default=[], metavar="KEY=VALUE", help="override a price of ops/cost.py PRICES"
    )
    stack.add_output_arguments(p, REQUIRED_OUTPUTS + OPTIONAL_OUTPUTS)
    stack.add_json_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    return stack.run(parser(), lambda args: command(args, given), given)
