"""Alarm thresholds around a flash sale: apply a profile live, show alarm states, send a test alert.

The alarms are Pulumi resources whose thresholds the program ignores once they exist (`ignore_changes`,
components/alarms.py): a live change stays through `pulumi up --refresh` until the next `apply`. `apply` says so and
prints the `pulumi config set alarmProfile ...` line that makes the profile the stack's for alarms created later.
"""

from __future__ import annotations

import argparse
import socket
import sys
from datetime import UTC, datetime
from typing import Any

from app import alarm_catalogue, aws
from ops import stack
from stackconfig import output_names
from stackconfig.alarm_profiles import ALARM_KEYS, ALARM_PROFILES, alarm_threshold

# --- The CLI: apply / status / test-notification ------------------------------------------------------------------

# What put_metric_alarm takes back from describe_alarms, so a re-put keeps everything it does not change.
_KEPT = (
    "AlarmName",
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "Threshold",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
)


def stack_alarms(cloudwatch: Any, prefix: str) -> dict[str, dict[str, Any]]:
    """The stack's catalogue alarms by key; refuses when there are none (wrong prefix, or not deployed)."""
    by_name = {alarm_catalogue.alarm_name(prefix, key): key for key in ALARM_KEYS}
    found: dict[str, dict[str, Any]] = {}
    for page in cloudwatch.get_paginator("describe_alarms").paginate(
        AlarmNamePrefix=f"{prefix}-", AlarmTypes=["MetricAlarm"]
    ):
        for alarm in page.get("MetricAlarms", []):
            if alarm["AlarmName"] in by_name:
                found[by_name[alarm["AlarmName"]]] = alarm
    if not found:
        raise stack.OpsError(
            f"no alarms named {prefix}-<key> found: check --alarm-prefix (the stack output "
            f"`{output_names.ALARM_PREFIX}`) and that the stack is deployed"
        )
    return found


def reput(cloudwatch: Any, alarm: dict[str, Any], **changes: Any) -> None:
    """Put an alarm again as described, with only `changes` different."""
    kept = {k: alarm[k] for k in _KEPT if alarm.get(k) not in (None, "")}
    cloudwatch.put_metric_alarm(**(kept | changes))


SPECS = {spec.key: spec for spec in alarm_catalogue.ALARMS}


def profile_threshold(profile: str, key: str, latency: float | None) -> float | None:
    """The profile's threshold for one alarm of the stack (expected-wait alarms need the stack's acceptable latency);
    None when the profile has no such alarm."""
    spec, thresholds = SPECS[key], ALARM_PROFILES[profile]
    if spec.per_latency and getattr(thresholds, key) is not None and latency is None:
        raise stack.OpsError(
            f"{alarm_catalogue.alarm_name('<prefix>', key)}'s threshold is a multiple of the stack's "
            f"acceptable latency: pass --acceptable-latency-seconds or the stack output "
            f"`{output_names.ACCEPTABLE_LATENCY}`"
        )
    return alarm_threshold(thresholds, spec, latency or 0.0)


def apply_profile(cloudwatch: Any, prefix: str, profile: str, latency: float | None) -> list[dict[str, Any]]:
    """Re-put each alarm with the profile's threshold, keeping its actions and everything else; an alarm the profile
    has no threshold for is kept as it is (it is in the stack because its own profile has one)."""
    changes = []
    for key, alarm in sorted(stack_alarms(cloudwatch, prefix).items()):
        new = profile_threshold(profile, key, latency)
        if new is not None:
            reput(cloudwatch, alarm, Threshold=new)
        changes.append({"alarm": alarm["AlarmName"], "key": key, "old": alarm.get("Threshold"), "new": new})
    return changes


def shorten_periods(cloudwatch: Any, prefix: str, factor: float) -> dict[str, int]:
    """LOCAL LAB ONLY: divide each alarm's period by `factor` (whole seconds, at least 1), keeping the rest.

    The lab runs the report's sale `factor` times faster; dividing the periods keeps the alarms' timing in step.
    AWS accepts only 10, 20, 30 s or multiples of 60 s; the emulator accepts any whole number.
    """
    periods = {}
    for alarm in stack_alarms(cloudwatch, prefix).values():
        if not alarm.get("Namespace"):  # metric math: its periods are in its queries (see LocalSystem)
            continue
        period = max(1, round(alarm["Period"] / factor))
        reput(cloudwatch, alarm, Period=period)
        periods[alarm["AlarmName"]] = period
    return periods


def matching_profiles(alarms: dict[str, dict[str, Any]], latency: float | None) -> list[str]:
    """The profiles whose thresholds these alarms have (an alarm a profile has no threshold for is not compared)."""

    def matches(name: str, key: str, alarm: dict[str, Any]) -> bool:
        wanted = profile_threshold(name, key, latency)
        return wanted is None or alarm.get("Threshold") == wanted

    return [name for name in ALARM_PROFILES if all(matches(name, k, a) for k, a in alarms.items())]


def _latency(outputs: dict[str, Any]) -> float | None:
    value = outputs.get(output_names.ACCEPTABLE_LATENCY)
    return None if value is None else float(value)


def pulumi_hint(profile: str, stack_name: str | None) -> str:
    return (
        f"The stack ignores live thresholds (ignore_changes): `pulumi up` keeps these until the next `apply`. "
        f"Go back with `apply --profile` of the stack's profile; to make this one the stack's for alarms created "
        f"later: pulumi config set alarmProfile {profile} -s {stack_name or 'STACK'}"
    )


def _threshold(value: Any) -> str:
    return "?" if value is None else f"{value:g}"


def cmd_apply(args: argparse.Namespace) -> int:
    outputs = stack.resolve_outputs(args, ALARM_OUTPUTS, optional=(output_names.ACCEPTABLE_LATENCY,))
    changes = apply_profile(
        aws.client("cloudwatch"), outputs[output_names.ALARM_PREFIX], args.profile, _latency(outputs)
    )
    hint = pulumi_hint(args.profile, args.stack)
    lines = [f"Applied alarm profile {args.profile!r}:"]
    lines += [
        f"  {c['alarm']:<44} {_threshold(c['old']):>8} -> "
        f"{_threshold(c['new']) if c['new'] is not None else 'kept (not in this profile)'}"
        for c in changes
    ]
    stack.emit(args, {"profile": args.profile, "changes": changes, "note": hint}, "\n".join(lines + ["", hint]))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    outputs = stack.resolve_outputs(args, ALARM_OUTPUTS, optional=(output_names.ACCEPTABLE_LATENCY,))
    alarms = stack_alarms(aws.client("cloudwatch"), outputs[output_names.ALARM_PREFIX])
    rows = [
        {
            "alarm": a["AlarmName"],
            "key": key,
            "state": a.get("StateValue"),
            "threshold": a.get("Threshold"),
            "comparison": a.get("ComparisonOperator"),
            "metric": a.get("MetricName"),
            "actions": len(a.get("AlarmActions", [])),
            "reason": a.get("StateReason", ""),
        }
        for key, a in sorted(alarms.items())
    ]
    profiles = matching_profiles(alarms, _latency(outputs))
    lines = [f"{'alarm':<44} {'state':<17} {'threshold':>9}  reason"]
    lines += [f"{r['alarm']:<44} {r['state']:<17} {_threshold(r['threshold']):>9}  {r['reason'][:60]}" for r in rows]
    lines.append(f"Thresholds match profile: {' / '.join(profiles) or 'none (edited by hand?)'}")
    stack.emit(args, {"alarms": rows, "profiles": profiles}, "\n".join(lines))
    return 0


def delivery_check(sent_by: str) -> tuple[str, str]:
    """(subject, body) of a clearly marked test alert; `sent_by` is the command that sends it."""
    sent_at = datetime.now(UTC).isoformat(timespec="seconds")
    return TEST_SUBJECT, (
        f"TEST ALERT - no action needed.\n\nThis message checks that alerts reach the on-call. It "
        f"was sent by `{sent_by}` at {sent_at} from {socket.gethostname()}.\n"
        "If you received it, e-mail/chat delivery of real alarms works."
    )


def cmd_test_notification(args: argparse.Namespace) -> int:
    outputs = stack.resolve_outputs(args, (output_names.ALERTS_TOPIC_ARN,))
    topic = outputs[output_names.ALERTS_TOPIC_ARN]
    subject, body = delivery_check("python -m ops.alarms test-notification")
    message_id = aws.client("sns").publish(TopicArn=topic, Subject=subject, Message=body)["MessageId"]
    stack.emit(
        args,
        {"topic": topic, "message_id": message_id, "subject": TEST_SUBJECT},
        f"Published a test alert to {topic} (message {message_id}).",
    )
    return 0


TEST_SUBJECT = "[TEST] flashsale alert delivery check - no action needed"
ALARM_OUTPUTS = (output_names.ALARM_PREFIX, output_names.ACCEPTABLE_LATENCY)
COMMANDS = {"apply": cmd_apply, "status": cmd_status, "test-notification": cmd_test_notification}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ops.alarms", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    apply = sub.add_parser("apply", help="set the stack's alarm thresholds from a profile (keeps actions)")
    apply.add_argument("--profile", required=True, choices=sorted(ALARM_PROFILES))
    status = sub.add_parser("status", help="each alarm's state and threshold")
    test = sub.add_parser("test-notification", help="publish a clearly marked TEST alert to the alerts topic")
    for command, keys in ((apply, ALARM_OUTPUTS), (status, ALARM_OUTPUTS), (test, (output_names.ALERTS_TOPIC_ARN,))):
        stack.add_output_arguments(command, keys)
        stack.add_json_argument(command)
    return p


def main(argv: list[str] | None = None) -> int:
    return stack.run(parser(), lambda args: COMMANDS[args.command](args), argv)


if __name__ == "__main__":
    sys.exit(main())
