"""The lab's instruments while a sale runs: queue depth, the worker tasks, one worker's CPU and memory.

One background thread samples the order queue (visible and in-flight messages), the worker service's tasks (running,
and wanted: running plus those still starting) and, for a one-task level, the worker process (psutil) every
`sample_seconds` (the local runtime's feeder publishes the queue metrics the alarms evaluate).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench.localaws import queue_metrics


@dataclass(frozen=True)
class Sample:
    t: float  # time.time()
    visible: int
    in_flight: int
    cpu_percent: float  # of one core; NaN before the first interval (and without a worker process to watch)
    rss_mb: float
    running: int = 0  # worker tasks serving
    wanted: int = 0  # worker tasks running or starting (billed)


@dataclass(frozen=True)
class WatchArgs:
    queue_url: str
    worker_pid: int | None  # None: several tasks come and go (no one process to follow)
    sample_seconds: float
    tasks: Callable[[], tuple[int, int]] = lambda: (0, 0)  # (running, wanted) worker tasks


@dataclass
class Watch:
    """Samples in a daemon thread from start() to stop(); `samples` is the time series."""

    args: WatchArgs
    sqs: Any
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    error: str | None = None

    def start(self) -> Watch:
        self._thread = threading.Thread(target=self._run, name="lab-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def latest(self) -> Sample | None:
        return self.samples[-1] if self.samples else None

    def _run(self) -> None:
        process = None if self.args.worker_pid is None else psutil.Process(self.args.worker_pid)
        if process is not None:
            process.cpu_percent()  # the first call only starts the interval
        try:
            while not self._stop.is_set():
                now = time.time()
                visible, in_flight = queue_counts(self.sqs, self.args.queue_url)
                cpu, rss = _process_usage(process) if process is not None else (math.nan, math.nan)
                running, wanted = self.args.tasks()
                self.samples.append(Sample(now, visible, in_flight, cpu, rss, running, wanted))
                self._stop.wait(self.args.sample_seconds)
        except Exception as e:  # reported by the lab after the level, never a silent gap in the series
            self.error = f"{type(e).__name__}: {e}"


def queue_counts(sqs: Any, queue_url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    names = list(queue_metrics.ATTRIBUTES.values())
    found = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=names)["Attributes"]
    return int(found[names[0]]), int(found[names[1]])


def _process_usage(process: psutil.Process) -> tuple[float, float]:
    try:
        return process.cpu_percent(), process.memory_info().rss / 2**20
    except psutil.Error:  # the worker exited between samples
        return float("nan"), float("nan")
