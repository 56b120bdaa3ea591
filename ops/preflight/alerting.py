"""The alerting checks, alarm to person: every alarm the stack's profile sets present, none muted, each at the
profile's threshold and publishing to the alarm topic; and a confirmed subscriber on the alerts topic.

Against the local system, the alarm it mutes on purpose and its e-mail confirmation are said, not judged.
"""

from __future__ import annotations

from typing import Any

from app import alarm_catalogue
from ops import alarms
from ops.preflight.live import FAIL, PASS, WARN, Live, Result
from stackconfig import output_names
from stackconfig.alarm_profiles import ALARM_KEYS


def check_alarms(live: Live) -> list[Result]:
    """The alarms the program creates for this stack: each catalogue alarm the stack's profile sets a threshold for."""
    prefix, profile = str(live.outputs[output_names.ALARM_PREFIX]), str(live.outputs[output_names.ALARM_PROFILE])
    latency = float(live.outputs[output_names.ACCEPTABLE_LATENCY])
    wanted = {
        key: threshold
        for key in ALARM_KEYS
        if (threshold := alarms.profile_threshold(profile, key, latency)) is not None
    }
    names = {key: alarm_catalogue.alarm_name(prefix, key) for key in wanted}
    found = {
        a["AlarmName"]: a
        for a in live.client("cloudwatch").describe_alarms(AlarmNames=list(names.values()), AlarmTypes=["MetricAlarm"])[
            "MetricAlarms"
        ]
    }
    present = {key: found[name] for key, name in names.items() if name in found}
    missing = [name for name in names.values() if name not in found]
    results = [
        Result(
            "alarms: present",
            FAIL if missing else PASS,
            f"missing {', '.join(missing)}" if missing else f"{len(present)} of {len(names)}",
            f"{len(names)} of {len(names)} (app/alarm_catalogue.py ALARMS with a threshold in "
            f"stackconfig/alarm_profiles.py {profile})",
            f"{live.pulumi_up} (the program creates every alarm)",
        )
    ]

    topic = live.outputs[output_names.ALARM_TOPIC_ARN]
    muted = {key for key, a in present.items() if not a.get("ActionsEnabled", True)}
    unwired = {key for key, a in present.items() if topic not in a.get("AlarmActions", [])}
    said = live.local.muted_alarms if live.local else {}
    local_muted = {key for key in muted if key in said} - unwired
    wrong = sorted((muted | unwired) - local_muted)
    note = "; ".join(
        f"{names[key]} muted by the local system on purpose ({said[key]}); on AWS a muted alarm is a FAIL"
        for key in sorted(local_muted)
    )
    if wrong:
        enable = [names[k] for k in wrong if k in muted]
        fix = (
            f"aws cloudwatch enable-alarm-actions --alarm-names {' '.join(enable)}"
            if enable
            else f"{live.pulumi_up} (the program points every alarm at the alarm topic)"
        )
        results.append(
            Result(
                "alarms: actions enabled",
                FAIL,
                "muted: "
                + ", ".join(
                    f"{names[k]} ({'actions disabled' if k in muted else 'not wired to the alarm topic'})"
                    for k in wrong
                ),
                "every alarm's actions enabled, publishing to the alarm topic",
                fix,
                note,
            )
        )
    else:
        local_names = " ".join(names[k] for k in sorted(local_muted))
        results.append(
            Result(
                "alarms: actions enabled",
                WARN if local_muted else PASS,
                f"{len(present) - len(local_muted)} of {len(present)} enabled"
                + (f", {local_names} muted" if local_muted else ""),
                "every alarm's actions enabled, publishing to the alarm topic",
                f"on AWS: aws cloudwatch enable-alarm-actions --alarm-names {local_names}" if local_muted else "",
                note,
            )
        )

    off = {key: a.get("Threshold") for key, a in present.items() if a.get("Threshold") != wanted[key]}
    others = [p for p in alarms.matching_profiles(present, latency) if p != profile] if off else []
    name, expected = "alarms: thresholds", f"profile {profile} (the stack's alarmProfile)"
    if not off:
        results.append(Result(name, PASS, f"{len(present)} alarm(s) at profile {profile}", expected))
    elif others:
        results.append(
            Result(
                name,
                WARN,
                f"all at profile {others[0]}, applied live",
                expected,
                f"pulumi config set alarmProfile {others[0]} -s {live.stack_name} to keep them (the next "
                f"pulumi up restores {profile}), or python -m ops.alarms apply --profile {profile} "
                f"{live.source}",
            )
        )
    else:
        results.append(
            Result(
                name,
                FAIL,
                ", ".join(f"{names[key]} {value:g} (expected {wanted[key]:g})" for key, value in off.items()),
                expected,
                f"python -m ops.alarms apply --profile {profile} {live.source}",
            )
        )
    return results


def subscriptions(sns: Any, topic: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(confirmed, pending) subscriptions of a topic. AWS lists a pending one with the ARN "PendingConfirmation"; an
    emulator may list its ARN and say so in its attributes."""
    confirmed: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    for page in sns.get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic):
        for sub in page.get("Subscriptions", []):
            arn = sub.get("SubscriptionArn", "")
            waiting = (
                arn.replace(" ", "").lower() == "pendingconfirmation"
                or sns.get_subscription_attributes(SubscriptionArn=arn)["Attributes"].get("PendingConfirmation")
                == "true"
            )
            (pending if waiting else confirmed).append(sub)
    return confirmed, pending


def check_subscribers(live: Live) -> list[Result]:
    confirmed, pending = subscriptions(live.client("sns"), live.outputs[output_names.ALERTS_TOPIC_ARN])
    name, expected = "alerts: confirmed subscriber", ">= 1 confirmed subscription on the alerts topic, none pending"
    said = ", ".join(f"{s['Protocol']} {s['Endpoint']}" for s in confirmed) or "none"
    if pending:
        emails = [s["Endpoint"] for s in pending if s.get("Protocol") == "email"]
        return [
            Result(
                name,
                FAIL,
                "pending confirmation: "
                + ", ".join(f"{s['Protocol']} {s['Endpoint']}" for s in pending)
                + f"; confirmed: {said}",
                expected,
                (
                    f'open the e-mail AWS sent to {", ".join(emails)} (subject "AWS Notification - '
                    'Subscription Confirmation") and confirm'
                    if emails
                    else "the endpoint must confirm: it gets a SubscriptionConfirmation with a SubscribeURL"
                )
                + "; or drop the address from alertEmails and "
                + live.pulumi_up,
            )
        ]
    if not confirmed:
        return [
            Result(
                name,
                FAIL,
                "no subscription: alarms reach nobody",
                expected,
                f"pulumi config set --path 'alertEmails[0]' oncall@example.com -s {live.stack_name} && "
                f"{live.pulumi_up}, then confirm the e-mail",
            )
        ]
    note = live.local.email if live.local and any(s.get("Protocol") == "email" for s in confirmed) else ""
    return [Result(name, PASS, f"confirmed: {said}", expected, note=note)]
