"""The lab report's figures, defined here once: the flash sale the planner plans for by default (Part II and V) and
what the report's Go system measured (1.4-5.7), which `python -m bench.lab` and `python -m bench.benchmarks` print
beside their own measurements. Not shipped with the services (they never read them)."""

from __future__ import annotations

import math
from typing import Final, NamedTuple

# --- The report's flash sale (Part II and V), the capacity planner's defaults ------------------------------------

REPORT_ARRIVAL_RATE: Final = 60.0  # orders per second
REPORT_SALE_SECONDS: Final = 60.0
REPORT_SAFETY_MARGIN: Final = 0.11
REPORT_WORKER_LEVELS: Final = (1, 5, 20, 100, 200)

# --- What the report measured (its sections 1.4, 1.5, 3.4, 5.2-5.7): the lab and the benchmarks print it beside ours -

REPORT_SYNC: Final[dict[str, dict[str, float]]] = {
    "normal": {
        "requests": 147,
        "paid": 147,
        "accepted": 140,
        "timeouts": 0,
        "rate": 4.90,
        "p50": 3020,
        "p95": 3090,
        "max": 3189,
    },
    "flashsale": {
        "requests": 1203,
        "paid": math.nan,
        "accepted": 25,
        "timeouts": 1178,
        "rate": 20.05,
        "p50": 9890,
        "p95": 10098,
        "max": 10127,
    },
}
# The async receiver under the flash sale (3.4), response times in ms.
REPORT_ASYNC: Final[dict[str, float]] = {
    "requests": 3614,
    "accepted": 3614,
    "rate": 60.23,
    "avg": 47,
    "p50": 45,
    "p95": 69,
    "p99": 81,
    "max": 89,
}


class ReportLevel(NamedTuple):
    """One worker level of the report's Part V (5.2-5.7), per worker task."""

    rate: float  # orders paid per second
    processed: int  # during the sale
    queue_at_end: int
    queue_peak: int
    drain_seconds: float
    cpu_percent: float  # of the task's 0.25 vCPU
    memory_mb: float


REPORT_LEVELS: Final = {
    1: ReportLevel(0.33, 20, 3594, 3594, 10782, 5.2, 112),
    5: ReportLevel(1.67, 100, 3519, 3519, 2111, 18.7, 156),
    20: ReportLevel(6.67, 400, 3207, 3207, 481, 47.3, 198),
    100: ReportLevel(33.3, 2000, 1598, 1598, 48, 89.4, 367),
    200: ReportLevel(66.6, 3612, 0, 87, 0, 97.1, 478),
}

# --- The report's measured Go system (3.4 and 5.6): what `python -m bench.benchmarks` compares against ---------

REPORT_ACCEPT_LATENCY_MS: Final = {key: float(REPORT_ASYNC[key]) for key in ("avg", "p50", "p95", "p99")}  # async
REPORT_WORKER_TASK_LIMIT: Final = 200  # concurrent 3-s payments at which one 0.25 vCPU / 512 MB worker task topped out
REPORT_WORKER_CPU_PERCENT: Final = REPORT_LEVELS[REPORT_WORKER_TASK_LIMIT].cpu_percent  # of the task's 0.25 vCPU
REPORT_WORKER_MEMORY_MB: Final = REPORT_LEVELS[REPORT_WORKER_TASK_LIMIT].memory_mb
