"""What one worker level of the lab measured, from the worker's payment log and the queue samples (pure functions).

Times here are wall-clock epoch seconds; the report converts them to the report's time with the lab's scale.
The processing rate is measured only while the workers are saturated (orders waiting in the queue): saturated
workers finish their payments in bursts, one every payment time (N at once for N workers started together), so it
is the payments finished from the first burst up to, not including, the last one, over the time between those two
bursts: whole bursts count exactly (for one worker it is 1 / the mean time between payments).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench.lab.watch import Sample

PAYMENT_EVENTS = ("payment_completed", "payment_failed")


@dataclass(frozen=True)
class LevelWindow:
    """The moments that bound one level's measurement."""

    sale_start: float
    sale_end: float
    payment_seconds: float  # wall clock
    observe_end: float  # drained (measured) or the end of the observation window (extrapolated)
    extrapolated: bool


@dataclass(frozen=True)
class LevelMeasure:
    workers: int
    extrapolated: bool
    processed_during_sale: int
    queue_at_end: int  # orders in the queue at the end of the sale (waiting + being paid)
    peak: int
    drain_seconds: float  # after the sale; extrapolated from the measured rate when `extrapolated`
    saturated: bool  # orders waited for a worker: the rate below is the workers' own rate
    rate: float  # payments per second (while saturated; else over the sale)
    cpu_percent: float  # mean over the busy time, percent of one core
    rss_mb: float  # peak resident memory


def epoch(ts: str) -> float:
    """The services' log timestamps (`2025-10-30T19:15:25.123Z`) as epoch seconds."""
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


def payment_ends(events: Sequence[dict[str, Any]]) -> list[float]:
    """When each payment finished (approved or declined), sorted."""
    return sorted(epoch(e["ts"]) for e in events if e.get("event") in PAYMENT_EVENTS)


def in_queue(sample: Sample) -> int:
    return sample.visible + sample.in_flight


def at_or_after(samples: Sequence[Sample], t: float) -> Sample:
    """The first sample taken at or after t (the last one when none is)."""
    return next((s for s in samples if s.t >= t), samples[-1])


def at_or_before(samples: Sequence[Sample], t: float) -> Sample:
    """The last sample taken at or before t (the first one when none is)."""
    return next((s for s in reversed(samples) if s.t <= t), samples[0])


def saturated_rate(ends: Sequence[float], until: float, payment_seconds: float) -> float:
    busy = [t for t in ends if t <= until]
    if len(busy) < 2 or busy[-1] <= busy[0]:
        return math.nan
    last_burst = next(t for t in busy if t > busy[-1] - payment_seconds / 2)  # the last burst's first payment
    counted = sum(1 for t in busy if t < last_burst)
    return counted / (last_burst - busy[0]) if last_burst > busy[0] else math.nan


def is_saturated(workers: int, sale: Sequence[Sample]) -> bool:
    """All workers busy with orders still waiting, for most of the sale (a moment's burst does not count)."""
    busy = sum(1 for s in sale if s.visible > 0 and s.in_flight >= workers)
    return busy > len(sale) / 2


def measure_level(
    workers: int, window: LevelWindow, events: Sequence[dict[str, Any]], samples: Sequence[Sample]
) -> LevelMeasure:
    ends = payment_ends(events)
    during = [s for s in samples if window.sale_start <= s.t <= window.observe_end] or list(samples)
    at_end = in_queue(at_or_after(samples, window.sale_end))
    # Saturated while orders waited: until the queue had no waiting message after the sale (or the window ended).
    emptied = next((s.t for s in samples if s.t >= window.sale_end and s.visible == 0), window.observe_end)
    saturated = is_saturated(workers, [s for s in samples if window.sale_start <= s.t <= window.sale_end])
    rate = saturated_rate(ends, emptied, window.payment_seconds) if saturated else math.nan
    if math.isnan(rate):  # keeping up: the orders that arrived during the sale are paid one payment time later
        lag = window.payment_seconds
        paid = [t for t in ends if window.sale_start + lag <= t <= window.sale_end + lag]
        rate = len(paid) / (window.sale_end - window.sale_start)
    if window.extrapolated:
        left = in_queue(at_or_before(samples, window.observe_end))
        drain = (window.observe_end - window.sale_end) + left / rate
    else:
        drained = next((s.t for s in samples if s.t >= window.sale_end and in_queue(s) == 0), window.observe_end)
        drain = max(0.0, drained - window.sale_end)
    cpu = [s.cpu_percent for s in during if not math.isnan(s.cpu_percent)]
    rss = [s.rss_mb for s in during if not math.isnan(s.rss_mb)]
    return LevelMeasure(
        workers=workers,
        extrapolated=window.extrapolated,
        processed_during_sale=sum(1 for t in ends if t <= window.sale_end),
        queue_at_end=at_end,
        peak=max(in_queue(s) for s in during),
        drain_seconds=drain,
        saturated=saturated,
        rate=rate,
        cpu_percent=sum(cpu) / len(cpu) if cpu else math.nan,
        rss_mb=max(rss) if rss else math.nan,
    )
