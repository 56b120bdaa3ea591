"""The lab report's figures: the flash sale the planner plans for by default (Part II and V) and what the report's
Go system measured (3.4 and 5.6), which `python -m bench.benchmarks` and the lab compare against. Not shipped with the
services (they never read them)."""

from __future__ import annotations

from typing import Final

# --- The report's flash sale (Part II and V), the capacity planner's defaults ------------------------------------

REPORT_ARRIVAL_RATE: Final = 60.0  # orders per second
REPORT_SALE_SECONDS: Final = 60.0
REPORT_SAFETY_MARGIN: Final = 0.11
REPORT_WORKER_LEVELS: Final = (1, 5, 20, 100, 200)

# --- The report's measured Go system (3.4 and 5.6): what `python -m bench.benchmarks` compares against
# ------------------

REPORT_ACCEPT_LATENCY_MS: Final = {"avg": 47.0, "p50": 45.0, "p95": 69.0, "p99": 81.0}  # async, 60 orders/s
REPORT_WORKER_TASK_LIMIT: Final = 200  # concurrent 3-s payments at which one 0.25 vCPU / 512 MB worker task topped out
REPORT_WORKER_CPU_PERCENT: Final = 97.1  # of the task's 0.25 vCPU, at that limit
REPORT_WORKER_MEMORY_MB: Final = 478.0  # at that limit
