"""Go / no-go before a sale: check the deployed stack against the sale's plan, through the AWS APIs.

`python -m ops.preflight --rate R [--sale-start T --sale-duration D] (--stack NAME | --outputs FILE)` reads the live
stack with boto3 (the same calls against AWS and against the local system) and prints one line per check, PASS, WARN
or FAIL, with what it measured, what it expected and the one command or config change that fixes it. Any FAIL makes
the verdict NO-GO and the exit code 1.

This module is the command: it refuses bad sale input before reading anything, plans the sale's capacity from the
stack's outputs, reads the stack once and runs the families of checks (`CHECKS`, each in its own module) in order.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import asdict, replace
from datetime import UTC, datetime, tzinfo
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from botocore.exceptions import ClientError

from ops import stack
from ops.preflight.alerting import check_alarms, check_subscribers
from ops.preflight.limits import check_maximum, check_quota
from ops.preflight.live import FAIL, PASS, WARN, Live, Result, Sale, plan_text
from ops.preflight.notifier import check_notifier
from ops.preflight.queues import check_queue
from ops.preflight.schedule import check_calendar
from ops.preflight.services import check_services
from planning import capacity
from planning.report import REPORT_SALE_SECONDS
from stackconfig import output_names
from stackconfig.alarm_profiles import ALARM_PROFILES
from stackconfig.schema import CONFIG_DEFAULTS

REQUIRED_OUTPUTS: Final = (
    output_names.CLUSTER_NAME,
    output_names.WORKER_SERVICE_NAME,
    output_names.RECEIVER_SERVICE_NAME,
    output_names.QUEUE_URL,
    output_names.DLQ_URL,
    output_names.ALARM_PREFIX,
    output_names.ALARM_PROFILE,
    output_names.ALERTS_TOPIC_ARN,
    output_names.ALARM_TOPIC_ARN,
    output_names.WORKER_COUNT,
    output_names.PAYMENT_SECONDS,
    output_names.ACCEPTABLE_LATENCY,
)
OPTIONAL_OUTPUTS: Final = (output_names.NOTIFIER_FUNCTION_NAME, output_names.SALE_LEAD_SECONDS)


# (what a check reads, for the line that says it could not read it; the check)
CHECKS: Final[tuple[tuple[str, Callable[[Live], list[Result]]], ...]] = (
    ("capacity: scalable target", check_maximum),
    ("capacity: service quota", check_quota),
    ("calendar: scheduled actions", check_calendar),
    ("queue: attributes", check_queue),
    ("alarms: descriptions", check_alarms),
    ("alerts: subscriptions", check_subscribers),
    ("services: task definitions", check_services),
)


def run_checks(live: Live, checks: Iterable[tuple[str, Callable[[Live], list[Result]]]]) -> list[Result]:
    """Every check; one the credentials may not read (an AWS error) is a FAIL naming the call, and the rest go on."""
    results: list[Result] = []
    for name, check in checks:
        try:
            results += [r if r.status != PASS else replace(r, fix="") for r in check(live)]
        except ClientError as error:
            info = error.response.get("Error", {})
            results.append(
                Result(
                    name,
                    FAIL,
                    f"could not read: {error.operation_name}: {info.get('Code', '?')}",
                    "readable with these credentials",
                    "grant the read permission, or run preflight with a role that has it",
                    str(info.get("Message", "")),
                )
            )
    return results


def parse_duration(text: str, what: str) -> float:
    """`90s`, `15m`, `2h`, `1.5h` or plain seconds."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*", text)
    if not found:
        raise stack.OpsError(f"{what} takes a duration like 90s, 15m or 2h, got {text!r}")
    value = float(found.group(1)) * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[found.group(2) or "s"]
    if value <= 0:
        raise stack.OpsError(f"{what} must be positive, got {text!r}")
    return value


def parse_sale(args: argparse.Namespace, now: datetime, lead_seconds: float) -> Sale:
    zone: tzinfo | None = None
    if args.timezone:
        try:
            zone = ZoneInfo(args.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise stack.OpsError(
                f"--timezone: unknown time zone {args.timezone!r} (an IANA name such as Europe/Berlin or UTC)"
            ) from None
    start = None
    if args.sale_start:
        try:
            start = datetime.fromisoformat(args.sale_start)
        except ValueError:
            raise stack.OpsError(
                f"--sale-start takes ISO 8601, e.g. 2026-12-05T18:00+01:00, got {args.sale_start!r}"
            ) from None
        if start.tzinfo is None:
            if zone is None:
                raise stack.OpsError(
                    "--sale-start has no UTC offset: add one (2026-12-05T18:00+01:00) or pass --timezone ZONE"
                )
            start = start.replace(tzinfo=zone)
        elif zone is not None and zone.utcoffset(start) != start.utcoffset():
            raise stack.OpsError(
                f"--sale-start's offset {start:%z} is not {args.timezone}'s on that day ({start.astimezone(zone):%z})"
            )
        if start <= now:
            raise stack.OpsError(f"--sale-start {start.isoformat()} is in the past")
    elif args.sale_duration:
        raise stack.OpsError("--sale-duration needs --sale-start")
    return Sale(
        rate=args.rate,
        start=start,
        zone=zone or (start.tzinfo if start and start.tzinfo else UTC),
        duration_seconds=parse_duration(args.sale_duration, "--sale-duration") if args.sale_duration else None,
        lead_seconds=lead_seconds,
    )


def number_output(outputs: dict[str, Any], key: str, kind: Callable[[Any], Any]) -> Any:
    try:
        return kind(outputs[key])
    except (TypeError, ValueError):
        raise stack.OpsError(f"stack output `{key}` must be a number, got {outputs[key]!r}") from None


def render(live: Live, results: list[Result]) -> str:
    counts = {status: sum(r.status == status for r in results) for status in (FAIL, WARN, PASS)}
    sale = live.sale
    when = (f" from {sale.at(sale.start)}" if sale.start else "") + (
        f" for {capacity.duration(sale.duration_seconds)}" if sale.duration_seconds else ""
    )
    verdict = "NO-GO" if counts[FAIL] else "GO"
    lines = [
        f"Preflight of {live.outputs[output_names.ALARM_PREFIX]} for {sale.rate:g} orders/s{when}"
        + (" (local system)" if live.local else ""),
        f"Plan: {plan_text(live.plan)} = {live.planned} worker tasks",
        "",
    ]
    width = max(len(r.check) for r in results)
    for r in results:
        lines.append(f"{r.status}  {r.check:<{width}}  {r.measured} | expected: {r.expected}")
        if r.fix and r.status != PASS:
            lines.append(f"{'':6}fix: {r.fix}")
        if r.note:
            lines.append(f"{'':6}note: {r.note}")
    lines += ["", f"{verdict}: {counts[FAIL]} FAIL, {counts[WARN]} WARN, {counts[PASS]} PASS"]
    return "\n".join(lines)


def command(args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    lead = parse_duration(args.lead_time, "--lead-time") if args.lead_time else None
    sale = parse_sale(args, now, lead or 0.0)  # bad input is refused before anything is read
    local = (output_names.LOCAL_ENDPOINT, output_names.LOCAL_CAVEATS)
    outputs = stack.resolve_outputs(
        args, REQUIRED_OUTPUTS + OPTIONAL_OUTPUTS + local, optional=OPTIONAL_OUTPUTS + local
    )
    if lead is None:  # the calendar's own lead time (the config key saleLeadSeconds)
        stacked = output_names.SALE_LEAD_SECONDS in outputs
        sale = replace(
            sale,
            lead_from="the stack's saleLeadSeconds" if stacked else "saleLeadSeconds' default",
            lead_seconds=number_output(outputs, output_names.SALE_LEAD_SECONDS, float)
            if stacked
            else float(CONFIG_DEFAULTS.sale_lead_seconds),
        )
    plan = capacity.plan(
        capacity.PlanInputs(
            arrival_rate=args.rate,
            payment_seconds=number_output(outputs, output_names.PAYMENT_SECONDS, float),
            sale_seconds=sale.duration_seconds or REPORT_SALE_SECONDS,
            workers_per_task=number_output(outputs, output_names.WORKER_COUNT, int),
            safety_margin=args.margin,
        )
    )
    prefix = str(outputs[output_names.ALARM_PREFIX])
    if outputs[output_names.ALARM_PROFILE] not in ALARM_PROFILES:
        raise stack.OpsError(
            f"stack output `{output_names.ALARM_PROFILE}` must be one of "
            f"{', '.join(ALARM_PROFILES)}, got {outputs[output_names.ALARM_PROFILE]!r}"
        )
    number_output(outputs, output_names.ACCEPTABLE_LATENCY, float)
    live = Live(
        outputs=outputs,
        local=stack.LocalCaveats.of(outputs),
        source=f"--stack {args.stack}"
        if args.stack
        else f"--outputs {args.outputs}"
        if args.outputs
        else "--stack STACK",
        stack_name=args.stack or prefix.split("-", 1)[-1],
        plan=plan,
        sale=sale,
        now=now,
    )
    live.read()
    checks = CHECKS + ((("notifier: invoke", check_notifier),) if args.send_test_alert else ())
    results = run_checks(live, checks)
    failed = any(r.status == FAIL for r in results)
    stack.emit(
        args,
        {
            "verdict": "NO-GO" if failed else "GO",
            "local": live.local is not None,
            "plan": {"rate": sale.rate, "workers": plan.recommended_workers, "tasks": live.planned},
            "sale": {
                "start": sale.start.isoformat() if sale.start else None,
                "zone": sale.zone_label,
                "duration_seconds": sale.duration_seconds,
                "lead_seconds": sale.lead_seconds,
            },
            "checks": [asdict(r) for r in results],
        },
        render(live, results),
    )
    return 1 if failed else 0


def parser() -> argparse.ArgumentParser:
    d = capacity.PlanInputs()
    p = argparse.ArgumentParser(
        prog="python -m ops.preflight",
        description=__doc__.split("\n\n")[0],
        epilog="Exit code 1 on any FAIL (NO-GO), 0 otherwise (WARNs included).",
    )
    p.add_argument("--rate", type=float, required=True, help="the sale's expected peak, orders/s")
    p.add_argument(
        "--sale-start",
        metavar="T",
        help="when the sale starts, ISO 8601 (2026-12-05T18:00+01:00, or without an offset with --timezone)",
    )
    p.add_argument("--sale-duration", metavar="D", help="how long it lasts (90m, 2h): checks the step-down after it")
    p.add_argument(
        "--timezone",
        metavar="ZONE",
        help="the sale's time zone, an IANA name (Europe/Berlin); default: --sale-start's UTC offset",
    )
    p.add_argument(
        "--lead-time",
        metavar="D",
        help="how long before the start capacity must be raised (default: "
        "the stack's saleLeadSeconds, as the calendar raises it)",
    )
    p.add_argument("--margin", type=float, default=d.safety_margin, help="the planner's safety margin (%(default)s)")
    p.add_argument(
        "--send-test-alert", action="store_true", help="also send a clearly marked test alert through the notifier"
    )
    stack.add_output_arguments(p, REQUIRED_OUTPUTS + OPTIONAL_OUTPUTS)
    stack.add_json_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    return stack.run(parser(), command, argv)


if __name__ == "__main__":
    sys.exit(main())
