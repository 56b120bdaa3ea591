"""The alarm threshold profiles a stack chooses with its `alarmProfile` key (report 4.4 and 6.3).

What each alarm watches (metric, severity, what to do) is the alarm catalogue, `app.alarm_catalogue.ALARMS`: the
notifier
needs it to word its alerts. The thresholds are deploy-time facts only the program and the ops commands read.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

from app.alarm_catalogue import AlarmSpec


@dataclass(frozen=True)
class AlarmThresholds:
    """One alarm profile. Field names are the alarm keys of ALARMS; None: the profile has no such alarm."""

    expected_wait_warning: float  # x acceptableLatencySeconds: the wait buyers feel, the primary page
    expected_wait_critical: float  # likewise
    buyer_wait_p95: float  # x acceptableLatencySeconds: the p95 of the waits the buyers did have
    oldest_message_age: float  # seconds
    dlq_not_empty: float  # messages; the alarm fires above this
    worker_cpu_high: float  # percent
    alb_5xx: float  # 5xx responses per period
    queue_depth_warning: float | None = None  # orders waiting: the report's raw-depth alarms, secondary
    queue_depth_critical: float | None = None


ALARM_PROFILES: Final[dict[str, AlarmThresholds]] = {
    # Buyers feel wait time, not queue depth: the pages are on expected wait, at the stack's acceptable latency and
    # twice it, and on the p95 of the waits the buyers did have, at the acceptable latency; the report's production
    # recommendation (6.3: warn at 1,000 waiting, critical at 5,000, oldest message 30 min) is kept as secondary
    # alarms.
    "normal": AlarmThresholds(
        expected_wait_warning=1.0,
        expected_wait_critical=2.0,
        buyer_wait_p95=1.0,
        oldest_message_age=1_800,
        dlq_not_empty=0,
        worker_cpu_high=90,
        alb_5xx=10,
        queue_depth_warning=1_000,
        queue_depth_critical=5_000,
    ),
    # During a sale a raw depth says nothing (200 workers x 2 tasks hold 4,000 waiting orders within 30 s, and a depth
    # page below that fired before the scaling could act): only expected wait, and an older oldest-message page.
    "flashsale": AlarmThresholds(
        expected_wait_warning=1.0,
        expected_wait_critical=2.0,
        buyer_wait_p95=1.0,
        oldest_message_age=300,
        dlq_not_empty=0,
        worker_cpu_high=90,
        alb_5xx=10,
    ),
}
DEFAULT_ALARM_PROFILE: Final = "normal"

ALARM_KEYS: Final = tuple(f.name for f in fields(AlarmThresholds))


def alarm_threshold(thresholds: AlarmThresholds, spec: AlarmSpec, acceptable_latency_seconds: float) -> float | None:
    """The alarm's threshold for a stack: the profile's number, times the acceptable latency for per-latency alarms;
    None when the profile has no such alarm."""
    value = getattr(thresholds, spec.key)
    if value is None:
        return None
    return float(value) * acceptable_latency_seconds if spec.per_latency else float(value)
