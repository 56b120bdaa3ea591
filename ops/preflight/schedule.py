"""The sale calendar checks: a scheduled action raises the worker service's capacity to the plan far enough ahead of
the sale's start, in the sale's time zone, nothing lowers it before the end, and something steps it down after.

Fixes name the stack's `sales` config when the calendar (planning.calendar) made the action, an AWS CLI command when
someone put it by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app import contract
from ops.preflight.live import FAIL, PASS, WARN, Live, Result, Sale
from planning import calendar, capacity
from stackconfig.schema import CONFIG_DEFAULTS, SALES_KEY

_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_UTC_NAMES = {"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Universal", "Zulu", "Etc/Universal", "Etc/Zulu"}


@dataclass(frozen=True)
class Scheduled:
    """One scheduled action on the worker service's scalable target."""

    name: str
    schedule: str
    zone: str  # the action's Timezone; UTC when it has none, as Application Auto Scaling reads it
    wall: datetime | None  # the at(...) time as written (naive); None for cron/rate schedules
    min_capacity: int | None
    max_capacity: int | None

    @property
    def fires(self) -> datetime | None:
        """When a one-off at(...) action runs, in UTC (None for recurring schedules or an unknown zone)."""
        if self.wall is None:
            return None
        try:
            return self.wall.replace(tzinfo=ZoneInfo(self.zone)).astimezone(UTC)
        except (ZoneInfoNotFoundError, ValueError):
            return None

    def describe(self) -> str:
        return f"{self.name} {self.schedule} {self.zone} -> MinCapacity {self.min_capacity}"


def scheduled(action: dict[str, Any]) -> Scheduled:
    schedule = str(action.get("Schedule", ""))
    found = _AT.match(schedule)
    target = action.get("ScalableTargetAction") or {}
    return Scheduled(
        name=str(action.get("ScheduledActionName", "?")),
        schedule=schedule,
        zone=str(action.get("Timezone") or "UTC"),
        wall=datetime.fromisoformat(found.group(1)) if found else None,
        min_capacity=target.get("MinCapacity"),
        max_capacity=target.get("MaxCapacity"),
    )


def same_zone(action_zone: str, sale: Sale, moment: datetime) -> bool:
    """The action's zone is the sale's (a zone name, or the same UTC offset at that moment when the sale gave one)."""
    if isinstance(sale.zone, ZoneInfo):
        return action_zone == sale.zone.key or {action_zone, sale.zone.key} <= _UTC_NAMES
    try:
        return ZoneInfo(action_zone).utcoffset(moment) == sale.zone.utcoffset(moment)
    except (ZoneInfoNotFoundError, ValueError):
        return False


def put_action(live: Live, name: str, when: datetime, min_capacity: int) -> str:
    """The AWS CLI command that schedules one capacity change, written in the sale's zone when it has a name."""
    zone = live.sale.zone.key if isinstance(live.sale.zone, ZoneInfo) else "UTC"
    wall = when.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
    maximum = max(min_capacity, int((live.target or {}).get("MaxCapacity", min_capacity)))
    return (
        f"aws application-autoscaling put-scheduled-action --service-namespace ecs --scalable-dimension "
        f"{contract.SCALABLE_DIMENSION} --resource-id {live.resource_id} --scheduled-action-name {name} --schedule "
        f"'at({wall:%Y-%m-%dT%H:%M:%S})' --timezone {zone} --scalable-target-action "
        f"MinCapacity={min_capacity},MaxCapacity={maximum}"
    )


def calendar_fix(live: Live, change: str, where: str = "in") -> str:
    """The config change for a sale the stack's calendar schedules (`sales`, planning.calendar)."""
    return f"{change} {where} the stack's `{SALES_KEY}` config (Pulumi.{live.stack_name}.yaml), then {live.pulumi_up}"


def sale_entry(live: Live) -> str:
    """This sale as an entry of the stack's `sales` config."""
    sale = live.sale
    assert sale.start is not None
    zone = sale.zone if isinstance(sale.zone, ZoneInfo) else ZoneInfo("UTC")
    start = sale.start.astimezone(zone)
    end = (start + timedelta(seconds=sale.duration_seconds)).isoformat() if sale.duration_seconds else "END"
    return f"{{name: sale, start: '{start.isoformat()}', end: '{end}', rate: {sale.rate:g}, timezone: {zone.key}}}"


def ahead(seconds: float) -> str:
    return capacity.duration(abs(seconds)) + (" before" if seconds >= 0 else " after")


def prescale_result(live: Live, actions: list[Scheduled]) -> Result:
    """The pre-scale for a sale with a start: the latest action that raises MinCapacity to the plan at least the lead
    time before the start, and nothing lowering it again before the sale ends."""
    sale, planned, name = live.sale, live.planned, "calendar: pre-scale before the sale"
    assert sale.start is not None
    deadline = sale.start - timedelta(seconds=sale.lead_seconds)
    end = sale.start + timedelta(seconds=sale.duration_seconds or 0)
    future = sorted((a for a in actions if a.fires and a.fires > live.now), key=lambda a: a.fires or live.now)
    raises = [a for a in future if (a.min_capacity or 0) >= planned]
    expected = (
        f"MinCapacity >= {planned} tasks by {sale.at(deadline)} ({capacity.duration(sale.lead_seconds)} "
        f"before the start, {sale.lead_from}), in {sale.zone_label}"
    )
    fix = calendar_fix(live, f"add {sale_entry(live)}", "to")
    current = int((live.target or {}).get("MinCapacity", 0))
    on_time = [a for a in raises if a.fires and a.fires <= deadline]
    since = max((a.fires for a in on_time if a.fires), default=None)
    if current >= planned and since is None:
        since = live.now
    if since is not None:
        lowered = [
            a
            for a in future
            if a.fires and since < a.fires < end and a.min_capacity is not None and a.min_capacity < planned
        ]
        if lowered:
            first = lowered[0]
            return Result(
                name,
                FAIL,
                f"{first.describe()} lowers it at {sale.at(first.fires or end)}, before the sale ends",
                expected,
                f"aws application-autoscaling delete-scheduled-action --service-namespace "
                f"ecs --scalable-dimension {contract.SCALABLE_DIMENSION} --resource-id {live.resource_id} "
                f"--scheduled-action-name {first.name}",
            )
        if not on_time:
            return Result(
                name,
                PASS,
                f"MinCapacity already {current} tasks (pre-scaled), nothing lowers it before the end",
                expected,
            )
        best = max(on_time, key=lambda a: a.fires or live.now)
        fires = best.fires or deadline
        measured = f"{best.describe()}: fires {sale.at(fires)}, {ahead((sale.start - fires).total_seconds())} the start"
        if not same_zone(best.zone, sale, fires):
            rezone = (
                calendar_fix(live, f"set the sale's timezone to {sale.zone_label}")
                if calendar.from_calendar(best.name)
                else put_action(live, best.name, fires, planned)
            )
            return Result(
                name,
                WARN,
                measured,
                expected,
                rezone,
                f"the action's time zone is {best.zone}, the sale's {sale.zone_label}: the times agree, but "
                "a calendar kept in two zones goes wrong the day one of them is edited",
            )
        return Result(name, PASS, measured, expected)
    late = [a for a in raises if a.fires and a.fires > deadline]
    if late:
        first = late[0]
        fires = first.fires or deadline
        note = ""
        ours = calendar.from_calendar(first.name)
        fix = (
            calendar_fix(
                live, f"start the sale at {sale.start.isoformat()} and set saleLeadSeconds >= {sale.lead_seconds:g}"
            )
            if ours
            else put_action(live, first.name, deadline, planned)
        )
        if first.wall is not None and not same_zone(first.zone, sale, fires):
            meant = first.wall.replace(tzinfo=sale.zone)
            if isinstance(sale.zone, ZoneInfo) and meant <= deadline:
                note = (
                    f"its time zone is {first.zone}; read in the sale's zone ({sale.zone_label}) it would fire "
                    f"at {sale.at(meant)}, in time"
                )
                fix = (
                    calendar_fix(live, f"set the sale's timezone to {sale.zone_label}")
                    if ours
                    else put_action(live, first.name, meant, planned)
                )
        return Result(
            name,
            FAIL,
            f"{first.describe()}: fires {sale.at(fires)}, {ahead((sale.start - fires).total_seconds())} the start",
            expected,
            fix,
            note,
        )
    short = [a for a in future if a.fires and a.fires <= sale.start and a.min_capacity is not None]
    if short:
        best = short[-1]
        return Result(
            name,
            FAIL,
            f"{best.describe()}: sets it to {best.min_capacity}, the plan needs {planned}",
            expected,
            calendar_fix(live, f"set the sale's rate to {sale.rate:g} (or tasks: {planned})")
            if calendar.from_calendar(best.name)
            else put_action(live, best.name, best.fires or deadline, planned),
        )
    recurring = [a.describe() for a in actions if a.wall is None]
    note = (
        (
            "not evaluated (preflight reads one-off at(...) actions, which a sale calendar creates): "
            + "; ".join(recurring)
        )
        if recurring
        else ""
    )
    return Result(
        name, FAIL, f"no scheduled action raises MinCapacity to {planned} before the sale", expected, fix, note
    )


def stepdown_result(live: Live, actions: list[Scheduled]) -> Result:
    """After the sale, capacity should come down by itself (report 6.3: "scale down gradually")."""
    sale, planned = live.sale, live.planned
    assert sale.start is not None and sale.duration_seconds is not None
    end = sale.start + timedelta(seconds=sale.duration_seconds)
    downs = [
        a for a in actions if a.fires and a.fires >= end and a.min_capacity is not None and a.min_capacity < planned
    ]
    expected = f"an action lowering MinCapacity below {planned} after the end, {sale.at(end)}"
    if downs:
        first = min(downs, key=lambda a: a.fires or end)
        return Result(
            "calendar: step down after the sale",
            PASS,
            f"{first.describe()}: fires {sale.at(first.fires or end)}",
            expected,
        )
    normal = int((live.target or {}).get("MinCapacity", 1))
    normal = normal if normal < planned else CONFIG_DEFAULTS.min_worker_tasks
    if any(calendar.from_calendar(a.name) for a in actions):
        fix = f"{live.pulumi_up} (the calendar declares the step-down after each sale)"
    elif any((a.min_capacity or 0) >= planned for a in actions):  # raised by hand: step down by hand
        fix = (
            put_action(live, "sale-stepdown", end, normal) + f" (or after the sale: python -m ops.prescale "
            f"--restore {live.source})"
        )
    else:
        fix = (
            f"the sale in `{SALES_KEY}` (the pre-scale line's fix) steps down after it too; or after the "
            f"sale: python -m ops.prescale --restore {live.source}"
        )
    return Result(
        "calendar: step down after the sale",
        WARN,
        f"nothing lowers MinCapacity after {sale.at(end)}: the {planned} tasks keep running (and costing)",
        expected,
        fix,
    )


def check_calendar(live: Live) -> list[Result]:
    found = live.client("application-autoscaling").describe_scheduled_actions(
        ServiceNamespace=contract.SCALING_NAMESPACE,
        ResourceId=live.resource_id,
        ScalableDimension=contract.SCALABLE_DIMENSION,
    )["ScheduledActions"]
    actions = [scheduled(a) for a in found]
    if live.sale.start is not None:
        results = [prescale_result(live, actions)]
        if live.sale.duration_seconds is not None:
            results.append(stepdown_result(live, actions))
        return results
    upcoming = sorted(
        (a for a in actions if a.fires and a.fires > live.now and a.min_capacity is not None),
        key=lambda a: a.fires or live.now,
    )
    name = "calendar: scheduled pre-scale"
    if not upcoming:
        return [
            Result(
                name,
                WARN,
                f"no --sale-start given and no scheduled action on {live.resource_id}",
                "a scheduled action raising capacity before the sale",
                "pass --sale-start (ISO 8601) to check the calendar against the sale, or pre-scale by hand: "
                f"python -m ops.prescale --tasks {live.planned} {live.source}",
            )
        ]
    first = upcoming[0]
    return [
        Result(
            name,
            PASS if (first.min_capacity or 0) >= live.planned else FAIL,
            f"next: {first.describe()} at {live.sale.at(first.fires or live.now)}",
            f"MinCapacity >= {live.planned} tasks (pass --sale-start to check its timing)",
            put_action(live, first.name, first.fires or live.now, live.planned),
        )
    ]
